//! A member's mailbox labels, read live from Gmail (`labels.list`), so that members pick
//! the extra labels they sync from what their mailbox really has, by name.
//!
//! The listing is an interactive read (a person waits for the page): it is charged to
//! the tenant's shared pacer like every Gmail call, but not retried; a refusal comes
//! back at once as [`RuntimeError::Provider`], with the taxonomy status and Google's own
//! message, for the caller to show with [`LinkErrorStatus::fix_hint`].
//!
//! [`LinkErrorStatus::fix_hint`]: tributary_core::LinkErrorStatus::fix_hint

use crate::pacing::units;
use crate::runtime::{Runtime, RuntimeError};
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
