//! The emulated organization's state: what the generator (`org`) produces and the HTTP
//! server (`server`) serves and mutates. Mutations that Gmail records in its history
//! (a message added or deleted, labels added or removed) go through [`Mailbox`]'s methods
//! so that every path, generated or live, produces the same history records.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// System labels every Gmail mailbox has.
pub const SYSTEM_LABELS: &[&str] = &[
    "INBOX",
    "SENT",
    "DRAFT",
    "SPAM",
    "TRASH",
    "UNREAD",
    "STARRED",
    "IMPORTANT",
    "CATEGORY_PERSONAL",
    "CATEGORY_SOCIAL",
    "CATEGORY_PROMOTIONS",
    "CATEGORY_UPDATES",
    "CATEGORY_FORUMS",
];

/// One Google Workspace customer: its domains, its directory and every user's mailbox.
#[derive(Debug, Clone)]
pub struct Organization {
    /// Directory customer id, e.g. `C03az79cb`.
    pub customer_id: String,
    /// The primary domain first, then the other domains the organization owns.
    pub domains: Vec<String>,
    pub users: Vec<DirectoryUser>,
    /// Keyed by the user's primary email, lowercase.
    pub mailboxes: BTreeMap<String, Mailbox>,
    /// The instant the organization was generated around (epoch ms); message dates are
    /// spread over the two years before it.
    pub now_ms: i64,
}

impl Organization {
    pub fn primary_domain(&self) -> &str {
        &self.domains[0]
    }

    /// Finds a user by primary email or any alias, case-insensitively.
    pub fn find_user(&self, address: &str) -> Option<&DirectoryUser> {
        let address = address.to_ascii_lowercase();
        self.users.iter().find(|u| u.owns_address(&address))
    }
}

/// A user as the Admin SDK Directory API describes it.
#[derive(Debug, Clone)]
pub struct DirectoryUser {
    /// Numeric string, as Google's user ids are.
    pub id: String,
    pub primary_email: String,
    pub given_name: String,
    pub family_name: String,
    pub aliases: Vec<String>,
    pub non_editable_aliases: Vec<String>,
    pub suspended: bool,
    pub archived: bool,
    pub is_admin: bool,
    pub is_mailbox_setup: bool,
    pub org_unit_path: String,
    /// RFC 3339.
    pub creation_time: String,
    /// Deleted users stay known for a while: the token endpoint answers
    /// "The account has been deleted" for them instead of "Invalid email or User ID".
    pub deleted: bool,
}

impl DirectoryUser {
    /// `address` must already be lowercase.
    pub fn owns_address(&self, address: &str) -> bool {
        self.primary_email.eq_ignore_ascii_case(address)
            || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(address))
            || self
                .non_editable_aliases
                .iter()
                .any(|a| a.eq_ignore_ascii_case(address))
    }

    pub fn full_name(&self) -> String {
        format!("{} {}", self.given_name, self.family_name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelKind {
    System,
    User,
}

#[derive(Debug, Clone)]
pub struct Label {
    pub id: String,
    pub name: String,
    pub kind: LabelKind,
}

/// A message as Gmail stores it for one mailbox. The same RFC message delivered to
/// several mailboxes is one `StoredMessage` per mailbox, each with its own ids.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    /// 16 lowercase hex digits, as Gmail's ids look.
    pub id: String,
    pub thread_id: String,
    pub label_ids: BTreeSet<String>,
    pub internal_date_ms: i64,
    /// The id of the last history record that touched this message.
    pub history_id: u64,
    /// The full RFC 5322 message (headers and a short body), CRLF line endings.
    pub raw: Arc<[u8]>,
    /// Header fields in order, unfolded but not decoded (RFC 2047 words stay encoded),
    /// parsed once so that `format=metadata` is cheap.
    pub headers: Arc<Vec<(String, String)>>,
    pub snippet: String,
}

/// What one history record says happened.
#[derive(Debug, Clone)]
pub enum HistoryChange {
    MessageAdded {
        message_id: String,
    },
    MessageDeleted {
        message_id: String,
    },
    LabelsAdded {
        message_id: String,
        label_ids: Vec<String>,
    },
    LabelsRemoved {
        message_id: String,
        label_ids: Vec<String>,
    },
}

#[derive(Debug, Clone)]
pub struct HistoryRecord {
    pub id: u64,
    pub change: HistoryChange,
    /// The message's thread and full label set right after the change, as Gmail
    /// reports them inside history records (deleted messages keep their last state).
    pub thread_id: String,
    pub message_labels: Vec<String>,
}

/// One user's Gmail mailbox.
#[derive(Debug, Clone)]
pub struct Mailbox {
    pub email: String,
    /// Keyed by label id.
    pub labels: BTreeMap<String, Label>,
    /// Keyed by message id.
    pub messages: BTreeMap<String, StoredMessage>,
    /// Ascending by id.
    pub history: Vec<HistoryRecord>,
    /// The mailbox's current history id (what `getProfile` reports).
    pub history_id: u64,
    /// History records with an id below this have been expired: a `startHistoryId`
    /// below it gets 404 `notFound`.
    pub oldest_history_id: u64,
    /// `false` answers every Gmail call with 400 `failedPrecondition` "Mail service not enabled".
    pub mail_enabled: bool,
    /// The user's mailbox and calendar live at another provider (a mixed organization's
    /// part, `org::hosting`): this copy stays empty, but the user keeps the calendar the
    /// whole organization generates, served by the provider hosting it.
    pub hosted_elsewhere: bool,
    /// Seeds the random gaps between history ids, so ids stay deterministic.
    pub history_gap_state: u64,
}

impl Mailbox {
    pub fn new(email: &str, first_history_id: u64) -> Self {
        let labels = SYSTEM_LABELS
            .iter()
            .map(|id| {
                let label = Label {
                    id: (*id).to_string(),
                    name: (*id).to_string(),
                    kind: LabelKind::System,
                };
                ((*id).to_string(), label)
            })
            .collect();
        Mailbox {
            email: email.to_ascii_lowercase(),
            labels,
            messages: BTreeMap::new(),
            history: Vec::new(),
            history_id: first_history_id,
            oldest_history_id: first_history_id,
            mail_enabled: true,
            hosted_elsewhere: false,
            history_gap_state: first_history_id ^ 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// Adds (or renames) a user label.
    pub fn add_user_label(&mut self, id: &str, name: &str) {
        let label = Label {
            id: id.to_string(),
            name: name.to_string(),
            kind: LabelKind::User,
        };
        self.labels.insert(id.to_string(), label);
    }

    /// Advances the history id by a pseudo-random gap of 1 to 16, as Gmail's ids have gaps.
    fn next_history_id(&mut self) -> u64 {
        // xorshift64: cheap, deterministic, good enough for gaps.
        let mut x = self.history_gap_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.history_gap_state = x;
        self.history_id += 1 + (x % 16);
        self.history_id
    }

    fn record(&mut self, message_id: &str, change: HistoryChange) -> u64 {
        let id = self.next_history_id();
        let (thread_id, message_labels) = match self.messages.get_mut(message_id) {
            Some(m) => {
                m.history_id = id;
                (m.thread_id.clone(), m.label_ids.iter().cloned().collect())
            }
            None => (String::new(), Vec::new()),
        };
        self.history.push(HistoryRecord {
            id,
            change,
            thread_id,
            message_labels,
        });
        id
    }

    /// Adds a message and records `messageAdded`. Returns the history id.
    pub fn add_message(&mut self, mut message: StoredMessage) -> u64 {
        let id = message.id.clone();
        message.history_id = self.history_id;
        self.messages.insert(id.clone(), message);
        self.record(
            &id,
            HistoryChange::MessageAdded {
                message_id: id.clone(),
            },
        )
    }

    /// Adds a message without a history record: for the generated backlog, which
    /// predates the oldest history the mailbox keeps.
    pub fn add_message_silently(&mut self, mut message: StoredMessage) {
        message.history_id = self.next_history_id();
        self.oldest_history_id = self.history_id;
        self.messages.insert(message.id.clone(), message);
    }

    /// Permanently deletes a message and records `messageDeleted`.
    pub fn delete_message(&mut self, message_id: &str) -> Option<u64> {
        let message = self.messages.get(message_id)?.clone();
        let id = self.next_history_id();
        self.messages.remove(message_id);
        self.history.push(HistoryRecord {
            id,
            change: HistoryChange::MessageDeleted {
                message_id: message_id.to_string(),
            },
            thread_id: message.thread_id,
            message_labels: message.label_ids.into_iter().collect(),
        });
        Some(id)
    }

    /// Adds labels to a message, recording `labelsAdded` for those it did not carry yet.
    pub fn add_labels(&mut self, message_id: &str, label_ids: &[String]) -> Option<u64> {
        let message = self.messages.get_mut(message_id)?;
        let added: Vec<String> = label_ids
            .iter()
            .filter(|l| message.label_ids.insert((*l).clone()))
            .cloned()
            .collect();
        if added.is_empty() {
            return Some(message.history_id);
        }
        Some(self.record(
            message_id,
            HistoryChange::LabelsAdded {
                message_id: message_id.to_string(),
                label_ids: added,
            },
        ))
    }

    /// Removes labels from a message, recording `labelsRemoved` for those it carried.
    pub fn remove_labels(&mut self, message_id: &str, label_ids: &[String]) -> Option<u64> {
        let message = self.messages.get_mut(message_id)?;
        let removed: Vec<String> = label_ids
            .iter()
            .filter(|l| message.label_ids.remove(*l))
            .cloned()
            .collect();
        if removed.is_empty() {
            return Some(message.history_id);
        }
        Some(self.record(
            message_id,
            HistoryChange::LabelsRemoved {
                message_id: message_id.to_string(),
                label_ids: removed,
            },
        ))
    }

    /// Forgets history older than `keep_from`: later `startHistoryId`s below it get 404.
    pub fn expire_history(&mut self, keep_from: u64) {
        self.history.retain(|r| r.id >= keep_from);
        self.oldest_history_id = self.oldest_history_id.max(keep_from);
    }

    /// Forgets all history so far (the control API's "expire history").
    pub fn expire_all_history(&mut self) {
        let next = self.history_id + 1;
        self.expire_history(next);
    }
}

/// Splits the header block of an RFC 5322 message into (name, value) pairs, unfolding
/// continuation lines but leaving values undecoded, as Gmail's `format=metadata` does.
pub fn parse_header_fields(raw: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(raw);
    let header_block = match text.find("\r\n\r\n").or_else(|| text.find("\n\n")) {
        Some(end) => &text[..end],
        None => &text[..],
    };
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in header_block.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push(' ');
                value.push_str(line.trim_start());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str, labels: &[&str]) -> StoredMessage {
        let raw: Arc<[u8]> = Arc::from(&b"From: a@b.example\r\nSubject: hi\r\n\r\nbody"[..]);
        StoredMessage {
            id: id.to_string(),
            thread_id: id.to_string(),
            label_ids: labels.iter().map(|l| l.to_string()).collect(),
            internal_date_ms: 0,
            history_id: 0,
            headers: Arc::new(parse_header_fields(&raw)),
            raw,
            snippet: "body".into(),
        }
    }

    #[test]
    fn history_ids_increase_with_gaps_and_expire() {
        let mut mb = Mailbox::new("a@example.com", 1000);
        let h1 = mb.add_message(message("1", &["INBOX"]));
        let h2 = mb.add_labels("1", &["SENT".into()]).unwrap();
        let h3 = mb.delete_message("1").unwrap();
        assert!(1000 < h1 && h1 < h2 && h2 < h3);
        assert_eq!(mb.history.len(), 3);
        mb.expire_history(h2);
        assert_eq!(mb.history.len(), 2);
        assert_eq!(mb.oldest_history_id, h2);
    }

    #[test]
    fn adding_a_label_twice_records_once() {
        let mut mb = Mailbox::new("a@example.com", 1);
        mb.add_message(message("1", &["INBOX"]));
        mb.add_labels("1", &["INBOX".into()]);
        assert_eq!(mb.history.len(), 1);
    }

    #[test]
    fn header_fields_unfold_without_decoding() {
        let raw = b"Subject: =?UTF-8?B?w6k=?=\r\n and more\r\nTo: a@b.example\r\n\r\nSubject: body";
        let fields = parse_header_fields(raw);
        assert_eq!(
            fields,
            vec![
                ("Subject".into(), "=?UTF-8?B?w6k=?= and more".into()),
                ("To".into(), "a@b.example".into())
            ]
        );
    }
}
