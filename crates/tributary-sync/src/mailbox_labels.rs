//! A member's mailbox labels, read live from Gmail (`labels.list`), so that members pick
//! the extra labels they sync from what their mailbox really has, by name.
//!
//! The listing is an interactive read (a person waits for the page): it is charged to
//! the tenant's shared pacer like every Gmail call, but not retried; a refusal comes
//! back at once as [`RuntimeError::Provider`], with the taxonomy status and Google's own
//! message, for the caller to show with [`LinkErrorStatus::fix_hint`].
//!
//! Saving a member's choice ([`Runtime::save_member_labels`]) checks it against that
//! listing: each label costs Gmail calls on every run and an unknown one puts the link
//! in an error status, so a new label must be one the mailbox has (by id or name), at
//! most [`MAX_MEMBER_LABELS`] of at most [`MAX_LABEL_LEN`] characters. When Google
//! cannot be asked, the save is not refused outright: chosen labels can be kept or
//! dropped and only the system labels every mailbox has can be added.
//!
//! [`LinkErrorStatus::fix_hint`]: tributary_core::LinkErrorStatus::fix_hint

use crate::pacing::units;
use crate::runtime::{LabelError, MAX_LABEL_LEN, MAX_MEMBER_LABELS, Runtime, RuntimeError};
use serde::Serialize;
use std::cmp::Ordering;
use tributary_google::{Label, LabelKind};
use tributary_store::{LinkStatus, MemberId, MemberView, StoreError, TenantId, label_key};

/// Gmail system labels a member is not offered, each for a reason:
/// - `DRAFT`: drafts were never sent, so they are not correspondence with anyone;
/// - `CHAT`: chat transcripts, not mail, and without the headers extraction reads;
/// - `SPAM`, `TRASH`: junk and deleted mail, which must not become a relationship (Gmail
///   itself leaves them out of every listing unless asked);
/// - `UNREAD`: a reading state, not a place: mail would join and leave it as the member
///   reads, so "syncing it" would capture whatever happened to be unread at the time.
///
/// `STARRED`, `IMPORTANT` and the inbox categories stay: they are stable groupings a
/// member may well want captured when the policy does not sync the whole inbox.
const NOT_PICKABLE: [&str; 5] = ["DRAFT", "CHAT", "SPAM", "TRASH", "UNREAD"];

/// Pickable Gmail system labels every mailbox has: while the mailbox cannot be listed,
/// these are the only new choices that can be known to be right.
const EVERY_MAILBOX_HAS: [&str; 9] = [
    "INBOX",
    "SENT",
    "STARRED",
    "IMPORTANT",
    "CATEGORY_PERSONAL",
    "CATEGORY_SOCIAL",
    "CATEGORY_PROMOTIONS",
    "CATEGORY_UPDATES",
    "CATEGORY_FORUMS",
];

/// How many of the mailbox's labels an error names before it says "and N more".
const NAMED_IN_ERRORS: usize = 100;

/// Whether Gmail or the member made a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MailboxLabelKind {
    /// Made by the member (`Label_12` named `Projects/Atlas`); listed first.
    User,
    /// Gmail's own (`INBOX`, `STARRED`, `CATEGORY_UPDATES`).
    System,
}

impl MailboxLabelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MailboxLabelKind::User => "user",
            MailboxLabelKind::System => "system",
        }
    }
}

/// One label of a mailbox: its id (what the store keeps and sync lists by) and the
/// name the member knows it by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MailboxLabel {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: MailboxLabelKind,
}

impl MailboxLabel {
    fn from_gmail(label: Label) -> Self {
        let kind = match label.kind {
            Some(LabelKind::User) => MailboxLabelKind::User,
            Some(LabelKind::System) => MailboxLabelKind::System,
            // Gmail always says; without it, its id scheme does (`Label_N` are users').
            None if label.id.starts_with("Label_") => MailboxLabelKind::User,
            None => MailboxLabelKind::System,
        };
        MailboxLabel {
            id: label.id,
            name: label.name,
            kind,
        }
    }

    /// Whether a member may sensibly choose to sync this label (see [`NOT_PICKABLE`]).
    pub fn pickable(&self) -> bool {
        self.kind == MailboxLabelKind::User
            || !NOT_PICKABLE
                .iter()
                .any(|hidden| hidden.eq_ignore_ascii_case(&self.id))
    }
}

/// One entry of a member's label choices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabelChoice {
    /// The label id: what is stored and synced.
    pub id: String,
    /// The mailbox's name for it; the id itself when the mailbox no longer has it.
    pub name: String,
    /// `None` when the mailbox no longer has the label.
    #[serde(rename = "type")]
    pub kind: Option<MailboxLabelKind>,
    /// Among the member's extra labels now.
    pub chosen: bool,
    /// `false` for a chosen label the mailbox no longer has (deleted or renamed away):
    /// kept in the list so that the member sees it and can drop it.
    pub in_mailbox: bool,
}

/// What a member is offered: the mailbox's pickable labels and any label it has chosen
/// (even one [`MailboxLabel::pickable`] hides, so it can be unchosen), minus those
/// `policy_labels` syncs for everyone anyway, then chosen labels the mailbox no longer
/// has. Ids compare case-insensitively, as the store does. User labels come first, by
/// name.
pub fn label_choices(
    mailbox: &[MailboxLabel],
    policy_labels: &[String],
    chosen: &[String],
) -> Vec<LabelChoice> {
    let is_policy = |id: &str| policy_labels.iter().any(|p| label_key(p) == label_key(id));
    let is_chosen = |id: &str| chosen.iter().any(|c| label_key(c) == label_key(id));
    let mut choices: Vec<LabelChoice> = mailbox
        .iter()
        .filter(|label| !is_policy(&label.id) && (label.pickable() || is_chosen(&label.id)))
        .map(|label| LabelChoice {
            id: label.id.clone(),
            name: label.name.clone(),
            kind: Some(label.kind),
            chosen: is_chosen(&label.id),
            in_mailbox: true,
        })
        .collect();
    choices.sort_by(|a, b| by_kind_then_name((a.kind, &a.name, &a.id), (b.kind, &b.name, &b.id)));
    let mut gone: Vec<LabelChoice> = chosen
        .iter()
        .filter(|id| !is_policy(id))
        .filter(|id| !mailbox.iter().any(|l| label_key(&l.id) == label_key(id)))
        .map(|id| LabelChoice {
            id: id.clone(),
            name: id.clone(),
            kind: None,
            chosen: true,
            in_mailbox: false,
        })
        .collect();
    gone.sort_by_key(|choice| label_key(&choice.id));
    gone.dedup_by_key(|choice| label_key(&choice.id));
    choices.extend(gone);
    choices
}

/// `labels` trimmed, without case-insensitive repeats (the first wins), within
/// [`MAX_MEMBER_LABELS`] and [`MAX_LABEL_LEN`].
fn bounded_labels(labels: &[String]) -> Result<Vec<String>, LabelError> {
    let mut seen = std::collections::HashSet::new();
    let mut distinct = Vec::new();
    for label in labels {
        let label = label.trim();
        if label.chars().count() > MAX_LABEL_LEN {
            return Err(LabelError::TooLong);
        }
        if seen.insert(label_key(label)) {
            distinct.push(label.to_owned());
        }
    }
    if distinct.len() > MAX_MEMBER_LABELS {
        return Err(LabelError::TooMany(distinct.len()));
    }
    Ok(distinct)
}

/// The labels to save for `wanted`: a label already chosen (`before`) stays as it is,
/// even one the mailbox has since lost, so that saving never depends on Gmail for
/// what was checked then. A new one must be a pickable label of the mailbox, named by
/// id or by name (saved as its id); when the mailbox could not be listed (`listing`
/// is the reason), only the system labels every mailbox has can be added.
fn checked_labels(
    wanted: &[String],
    before: &[String],
    listing: Result<&[MailboxLabel], &str>,
) -> Result<Vec<String>, LabelError> {
    let mut saved = Vec::new();
    let mut unknown = Vec::new();
    for label in wanted {
        let key = label_key(label);
        if let Some(kept) = before.iter().find(|b| label_key(b) == key) {
            saved.push(kept.clone());
            continue;
        }
        let found = match listing {
            Ok(mailbox) => find_pickable(mailbox, label).map(|l| l.id.clone()),
            Err(_) => EVERY_MAILBOX_HAS
                .iter()
                .find(|id| id.eq_ignore_ascii_case(label))
                .map(|id| (*id).to_owned()),
        };
        match found {
            Some(id) => saved.push(id),
            None => unknown.push(label.clone()),
        }
    }
    if unknown.is_empty() {
        return Ok(saved);
    }
    Err(match listing {
        Ok(mailbox) => LabelError::Unknown {
            unknown,
            existing: pickable_names(mailbox),
        },
        Err(reason) => LabelError::Unverifiable {
            unknown,
            reason: reason.to_owned(),
        },
    })
}

/// The pickable label `wanted` names: by id, else by name (both ignoring case).
fn find_pickable<'a>(mailbox: &'a [MailboxLabel], wanted: &str) -> Option<&'a MailboxLabel> {
    let key = label_key(wanted);
    let pickable = || mailbox.iter().filter(|l| l.pickable());
    pickable()
        .find(|l| label_key(&l.id) == key)
        .or_else(|| pickable().find(|l| label_key(&l.name) == key))
}

/// The mailbox's pickable labels as a person reads them: `name (id)` for the member's
/// own, the id for Gmail's; at most [`NAMED_IN_ERRORS`], then how many more.
fn pickable_names(mailbox: &[MailboxLabel]) -> Vec<String> {
    let pickable: Vec<&MailboxLabel> = mailbox.iter().filter(|l| l.pickable()).collect();
    let mut names: Vec<String> = pickable
        .iter()
        .take(NAMED_IN_ERRORS)
        .map(|l| match l.kind {
            MailboxLabelKind::User => format!("{} ({})", l.name, l.id),
            MailboxLabelKind::System => l.id.clone(),
        })
        .collect();
    if pickable.len() > NAMED_IN_ERRORS {
        names.push(format!("and {} more", pickable.len() - NAMED_IN_ERRORS));
    }
    if names.is_empty() {
        names.push("none".to_owned());
    }
    names
}

/// User labels before system ones, then by name ignoring case, then by id.
fn by_kind_then_name<K: Ord>(a: (K, &str, &str), b: (K, &str, &str)) -> Ordering {
    a.0.cmp(&b.0)
        .then_with(|| a.1.to_lowercase().cmp(&b.1.to_lowercase()))
        .then_with(|| a.2.cmp(b.2))
}

impl Runtime {
    /// The labels of `member`'s mailbox as Gmail lists them now, user labels first by
    /// name. The mailbox is the one the member's link syncs (which may be the directory's
    /// primary address of an alias the member was added by), else the member's address.
    ///
    /// Errors: [`RuntimeError::NotConnected`] without a Google connection, a store
    /// [`StoreError::UnknownMember`] for a member not in `tenant`, and
    /// [`RuntimeError::Provider`] (taxonomy status and Google's message) when Google
    /// refuses or fails.
    pub async fn mailbox_labels(
        &self,
        tenant: &TenantId,
        member: MemberId,
    ) -> Result<Vec<MailboxLabel>, RuntimeError> {
        let member = self.member(tenant, member).await?;
        let mailbox = self.synced_mailbox(tenant, &member).await?;
        let (connector, _) = self.connector(tenant).await?;
        self.pacer(tenant)
            .acquire(&mailbox, units::LABELS_LIST)
            .await;
        let labels = connector.gmail(&mailbox).list_labels().await?;
        let mut labels: Vec<MailboxLabel> =
            labels.into_iter().map(MailboxLabel::from_gmail).collect();
        labels
            .sort_by(|a, b| by_kind_then_name((a.kind, &a.name, &a.id), (b.kind, &b.name, &b.id)));
        Ok(labels)
    }

    /// Replaces `member`'s extra labels after checking them: at most
    /// [`MAX_MEMBER_LABELS`] of at most [`MAX_LABEL_LEN`] characters, and every new one
    /// a pickable label of the member's mailbox (Gmail `labels.list`, asked only when
    /// something new is chosen). When Google cannot be asked (not connected, or it
    /// refuses), labels already chosen can still be kept or dropped and only the system
    /// labels every mailbox has can be added: a typo would otherwise cost a Gmail call
    /// on every run and leave the link in an error status. Answers what was saved.
    ///
    /// Errors: [`RuntimeError::Labels`] naming the labels refused (and the mailbox's
    /// own), a store [`StoreError::InvalidLabel`] for an empty name.
    pub async fn save_member_labels(
        &self,
        tenant: &TenantId,
        member: MemberId,
        labels: &[String],
        actor: &str,
    ) -> Result<Vec<String>, RuntimeError> {
        if labels.iter().any(|l| l.trim().is_empty()) {
            return Err(StoreError::InvalidLabel {
                label: String::new(),
            }
            .into());
        }
        let wanted = bounded_labels(labels)?;
        let before = self.store().member_labels(tenant, member).await?;
        let all_kept = wanted
            .iter()
            .all(|w| before.iter().any(|b| label_key(b) == label_key(w)));
        let listed = if all_kept {
            Ok(Vec::new())
        } else {
            match self.mailbox_labels(tenant, member).await {
                Ok(mailbox) => Ok(mailbox),
                Err(RuntimeError::Provider { status, message }) => {
                    Err(format!("Google refused ({status}): {message}"))
                }
                Err(RuntimeError::NotConnected) => {
                    Err("Google Workspace is not connected yet".to_owned())
                }
                Err(other) => return Err(other),
            }
        };
        let listing = listed.as_deref().map_err(String::as_str);
        let saved = checked_labels(&wanted, &before, listing)?;
        self.store()
            .set_member_labels(tenant, member, &saved, actor)
            .await?;
        Ok(saved)
    }

    async fn member(&self, tenant: &TenantId, id: MemberId) -> Result<MemberView, RuntimeError> {
        self.store().member(tenant, id).await?.ok_or_else(|| {
            StoreError::UnknownMember {
                tenant: tenant.as_str().to_owned(),
                member: id.0,
            }
            .into()
        })
    }

    /// The address `member`'s mail is synced from: its link's mailbox (one still linked
    /// first), else its own primary address.
    async fn synced_mailbox(
        &self,
        tenant: &TenantId,
        member: &MemberView,
    ) -> Result<String, RuntimeError> {
        let links = self.store().links_of_member(tenant, member.id).await?;
        let linked = links
            .iter()
            .find(|l| l.status != LinkStatus::Unlinked)
            .or(links.first());
        Ok(linked.map_or_else(|| member.email.clone(), |l| l.mailbox.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(id: &str, name: &str, kind: MailboxLabelKind) -> MailboxLabel {
        MailboxLabel {
            id: id.into(),
            name: name.into(),
            kind,
        }
    }

    fn mailbox() -> Vec<MailboxLabel> {
        vec![
            label("INBOX", "INBOX", MailboxLabelKind::System),
            label("SENT", "SENT", MailboxLabelKind::System),
            label("STARRED", "STARRED", MailboxLabelKind::System),
            label("TRASH", "TRASH", MailboxLabelKind::System),
            label("UNREAD", "UNREAD", MailboxLabelKind::System),
            label("Label_2", "zeta", MailboxLabelKind::User),
            label("Label_1", "Projects/Atlas", MailboxLabelKind::User),
        ]
    }

    fn ids(choices: &[LabelChoice]) -> Vec<&str> {
        choices.iter().map(|c| c.id.as_str()).collect()
    }

    #[test]
    fn choices_are_user_labels_by_name_then_pickable_system_ones_without_the_policys() {
        let policy = ["INBOX".to_owned(), "SENT".to_owned()];
        let choices = label_choices(&mailbox(), &policy, &[]);
        assert_eq!(ids(&choices), ["Label_1", "Label_2", "STARRED"]);
        assert_eq!(choices[0].name, "Projects/Atlas");
        assert!(choices.iter().all(|c| c.in_mailbox && !c.chosen));
    }

    #[test]
    fn chosen_labels_stay_listed_even_hidden_or_gone_and_policy_ones_drop() {
        let policy = ["inbox".to_owned()];
        let chosen = [
            "label_2".to_owned(),
            "TRASH".to_owned(),
            "Label_99".to_owned(),
            "LABEL_99".to_owned(),
            "INBOX".to_owned(),
        ];
        let choices = label_choices(&mailbox(), &policy, &chosen);
        assert_eq!(
            ids(&choices),
            ["Label_1", "Label_2", "SENT", "STARRED", "TRASH", "Label_99"]
        );
        let by_id = |id: &str| choices.iter().find(|c| c.id == id).unwrap();
        assert!(by_id("Label_2").chosen && by_id("Label_2").in_mailbox);
        assert!(by_id("TRASH").chosen);
        let gone = by_id("Label_99");
        assert!(gone.chosen && !gone.in_mailbox && gone.kind.is_none());
        assert_eq!(gone.name, "Label_99");
        assert!(!by_id("Label_1").chosen);
    }

    fn strings(labels: &[&str]) -> Vec<String> {
        labels.iter().map(|l| (*l).to_owned()).collect()
    }

    #[test]
    fn new_labels_must_be_the_mailboxs_by_id_or_name() {
        let saved = checked_labels(
            &strings(&["label_1", "zeta", "starred"]),
            &[],
            Ok(&mailbox()),
        )
        .unwrap();
        assert_eq!(saved, ["Label_1", "Label_2", "STARRED"]);
        let refused = checked_labels(
            &strings(&["Label_1", "Label_999", "TRASH"]),
            &[],
            Ok(&mailbox()),
        )
        .unwrap_err();
        let LabelError::Unknown { unknown, existing } = &refused else {
            panic!("{refused:?}");
        };
        assert_eq!(unknown, &["Label_999", "TRASH"]);
        assert!(existing.contains(&"Projects/Atlas (Label_1)".to_owned()));
        assert!(!existing.contains(&"TRASH".to_owned()), "{existing:?}");
        assert!(refused.to_string().contains("Label_999"), "{refused}");
    }

    #[test]
    fn chosen_labels_stay_and_only_universal_ones_are_added_blind() {
        let before = strings(&["Label_77"]);
        let kept = checked_labels(&strings(&["label_77"]), &before, Ok(&mailbox())).unwrap();
        assert_eq!(kept, ["Label_77"]);
        let blind =
            checked_labels(&strings(&["Label_77", "important"]), &before, Err("down")).unwrap();
        assert_eq!(blind, ["Label_77", "IMPORTANT"]);
        let refused = checked_labels(&strings(&["Label_5"]), &before, Err("down")).unwrap_err();
        assert!(matches!(refused, LabelError::Unverifiable { .. }));
        assert!(refused.to_string().contains("down"), "{refused}");
    }

    #[test]
    fn label_lists_are_bounded() {
        let too_many: Vec<String> = (0..=MAX_MEMBER_LABELS).map(|i| format!("L{i}")).collect();
        assert_eq!(
            bounded_labels(&too_many),
            Err(LabelError::TooMany(MAX_MEMBER_LABELS + 1))
        );
        let repeated = vec!["Label_1".to_owned(); 10_000];
        assert_eq!(bounded_labels(&repeated).unwrap(), ["Label_1"]);
        let long = vec!["x".repeat(MAX_LABEL_LEN + 1)];
        assert_eq!(bounded_labels(&long), Err(LabelError::TooLong));
        assert!(bounded_labels(&["x".repeat(MAX_LABEL_LEN)]).is_ok());
    }

    #[test]
    fn only_states_junk_drafts_and_chats_are_hidden() {
        for hidden in NOT_PICKABLE {
            assert!(!label(hidden, hidden, MailboxLabelKind::System).pickable());
        }
        assert!(label("IMPORTANT", "IMPORTANT", MailboxLabelKind::System).pickable());
        assert!(label("CATEGORY_UPDATES", "x", MailboxLabelKind::System).pickable());
        // A user label is the member's own, whatever it is called.
        assert!(label("Label_5", "TRASH", MailboxLabelKind::User).pickable());
    }

    #[test]
    fn a_label_without_a_type_is_typed_by_its_id() {
        let gmail = |id: &str| Label {
            id: id.into(),
            name: id.into(),
            kind: None,
            messages_total: None,
            messages_unread: None,
            threads_total: None,
            threads_unread: None,
        };
        assert_eq!(
            MailboxLabel::from_gmail(gmail("Label_3")).kind,
            MailboxLabelKind::User
        );
        assert_eq!(
            MailboxLabel::from_gmail(gmail("STARRED")).kind,
            MailboxLabelKind::System
        );
    }

    #[test]
    fn labels_serialize_with_gmails_type_field() {
        let json = serde_json::to_value(label("Label_1", "A", MailboxLabelKind::User)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "id": "Label_1", "name": "A", "type": "user" })
        );
    }
}
