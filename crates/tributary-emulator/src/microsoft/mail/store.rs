//! An Exchange mailbox: folders (well-known and user folders, nested), items (one per
//! folder a message is in, with an immutable id and a REST id that changes on moves) and
//! the change log per folder that message delta reads.
//!
//! A Gmail copy becomes items by its labels: `TRASH` → Deleted Items, `SPAM` → Junk
//! Email, `DRAFT` → Drafts; otherwise one item in Sent Items for `SENT` and one in Inbox
//! for `INBOX` (a message to oneself is two items, as Exchange stores it); a copy with
//! neither goes to the folder of its first user label, or to Archive.

use super::super::ids::exchange_id;
use crate::model::Mailbox as GmailMailbox;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Well-known folders every mailbox has: (well-known name, display name). The first is
/// the hidden root the others hang from.
pub const WELL_KNOWN_FOLDERS: &[(&str, &str)] = &[
    ("msgfolderroot", "Top of Information Store"),
    ("inbox", "Inbox"),
    ("sentitems", "Sent Items"),
    ("drafts", "Drafts"),
    ("deleteditems", "Deleted Items"),
    ("junkemail", "Junk Email"),
    ("archive", "Archive"),
    ("outbox", "Outbox"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    pub id: String,
    pub well_known: Option<&'static str>,
    pub display_name: String,
    /// Empty for the root.
    pub parent_id: String,
}

/// One message in one folder.
#[derive(Debug, Clone)]
pub struct Item {
    pub immutable_id: String,
    /// Changes when the item moves to another folder.
    pub rest_id: String,
    pub folder_id: String,
    pub raw: Arc<[u8]>,
    pub received_ms: i64,
    pub conversation_id: String,
    pub is_draft: bool,
    pub is_read: bool,
    pub preview: String,
    /// The change-log position that created it (initial delta pages go in this order).
    pub created_seq: u64,
    /// The last change-log position that touched it.
    pub change_seq: u64,
}

/// One change-log record: `immutable_id` was created in, changed in, or left `folder_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub seq: u64,
    pub folder_id: String,
    pub immutable_id: String,
    /// The REST id the item had in that folder (what a client that saw it there knows).
    pub rest_id: String,
}

/// What a folder's delta reports for one item touched since a state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touched {
    /// The item is in the folder now.
    Present(String),
    /// The item left the folder (moved or deleted): its ids as the folder knew them.
    Removed {
        immutable_id: String,
        rest_id: String,
    },
}

#[derive(Debug, Clone)]
pub struct ExoMailbox {
    pub user_id: String,
    /// `false`: no Exchange Online mailbox (Graph answers `MailboxNotEnabledForRESTAPI`).
    pub enabled: bool,
    /// The root first, then in creation order.
    pub folders: Vec<Folder>,
    /// Keyed by immutable id.
    pub items: BTreeMap<String, Item>,
    rest_index: HashMap<String, String>,
    pub changes: Vec<Change>,
    pub seq: u64,
    /// Delta states carry the generation they were issued in; expiring the sync state
    /// bumps it, so every older state answers 410.
    pub sync_generation: u64,
    /// Distinguishes ids of items created later (live mail, moves).
    serial: u64,
}

impl ExoMailbox {
    /// An empty mailbox with the well-known folders.
    pub fn new(user_id: &str) -> Self {
        let mut mailbox = ExoMailbox {
            user_id: user_id.to_string(),
            enabled: true,
            folders: Vec::new(),
            items: BTreeMap::new(),
            rest_index: HashMap::new(),
            changes: Vec::new(),
            seq: 0,
            sync_generation: 1,
            serial: 0,
        };
        let root_id = exchange_id("folder", &[user_id, "msgfolderroot"]);
        for (name, display) in WELL_KNOWN_FOLDERS {
            let parent_id = if *name == "msgfolderroot" {
                String::new()
            } else {
                root_id.clone()
            };
            mailbox.folders.push(Folder {
                id: exchange_id("folder", &[user_id, name]),
                well_known: Some(name),
                display_name: (*display).to_string(),
                parent_id,
            });
        }
        mailbox
    }

    /// A user without an Exchange Online mailbox.
    pub fn disabled(user_id: &str) -> Self {
        ExoMailbox {
            enabled: false,
            ..ExoMailbox::new(user_id)
        }
    }

    /// The mailbox holding a Gmail mailbox's messages, labels turned into folders
    /// (every other user label nested under Inbox, as mail rules file them).
    pub fn from_gmail(user_id: &str, gmail: &GmailMailbox) -> Self {
        let mut mailbox = ExoMailbox::new(user_id);
        let inbox = mailbox.well_known_id("inbox");
        let root = mailbox.well_known_id("msgfolderroot");
        let mut label_folders: HashMap<&str, String> = HashMap::new();
        let user_labels = gmail
            .labels
            .values()
            .filter(|l| l.kind == crate::model::LabelKind::User);
        for (index, label) in user_labels.enumerate() {
            let parent = if index % 2 == 1 { &inbox } else { &root };
            let id = mailbox.add_folder(&label.name, parent);
            label_folders.insert(label.id.as_str(), id);
        }
        let mut messages: Vec<_> = gmail.messages.values().collect();
        messages.sort_by_key(|m| (m.internal_date_ms, m.id.clone()));
        for message in messages {
            let folders = mailbox.folders_for_labels(&message.label_ids, &label_folders);
            for folder in folders {
                let immutable_id = exchange_id("item", &[user_id, &message.id, &folder]);
                mailbox.insert_item(NewItem {
                    immutable_id,
                    folder_id: folder,
                    raw: Arc::clone(&message.raw),
                    received_ms: message.internal_date_ms,
                    conversation_id: exchange_id("conversation", &[user_id, &message.thread_id]),
                    is_draft: message.label_ids.contains("DRAFT"),
                    is_read: !message.label_ids.contains("UNREAD"),
                    preview: message.snippet.clone(),
                });
            }
        }
        mailbox
    }

    fn folders_for_labels(
        &self,
        labels: &std::collections::BTreeSet<String>,
        label_folders: &HashMap<&str, String>,
    ) -> Vec<String> {
        for (label, folder) in [
            ("TRASH", "deleteditems"),
            ("SPAM", "junkemail"),
            ("DRAFT", "drafts"),
        ] {
            if labels.contains(label) {
                return vec![self.well_known_id(folder)];
            }
        }
        let mut folders = Vec::new();
        if labels.contains("SENT") {
            folders.push(self.well_known_id("sentitems"));
        }
        if labels.contains("INBOX") {
            folders.push(self.well_known_id("inbox"));
        }
        if folders.is_empty() {
            let filed = labels.iter().find_map(|l| label_folders.get(l.as_str()));
            folders.push(match filed {
                Some(folder) => folder.clone(),
                None => self.well_known_id("archive"),
            });
        }
        folders
    }

    /// The id of a well-known folder (every mailbox has them all).
    pub fn well_known_id(&self, name: &str) -> String {
        self.folders
            .iter()
            .find(|f| f.well_known == Some(name))
            .map(|f| f.id.clone())
            .unwrap_or_default()
    }

    /// A folder by id or well-known name (case-insensitive for names).
    pub fn folder(&self, id_or_name: &str) -> Option<&Folder> {
        self.folders.iter().find(|f| {
            f.id == id_or_name
                || f.well_known
                    .is_some_and(|n| n.eq_ignore_ascii_case(id_or_name))
        })
    }

    /// The folders directly under `parent_id`.
    pub fn children(&self, parent_id: &str) -> Vec<&Folder> {
        self.folders
            .iter()
            .filter(|f| f.parent_id == parent_id)
            .collect()
    }

    /// Creates a user folder under `parent_id`, answering its id.
    pub fn add_folder(&mut self, display_name: &str, parent_id: &str) -> String {
        self.serial += 1;
        let id = exchange_id(
            "folder",
            &[&self.user_id, display_name, &self.serial.to_string()],
        );
        self.folders.push(Folder {
            id: id.clone(),
            well_known: None,
            display_name: display_name.to_string(),
            parent_id: parent_id.to_string(),
        });
        id
    }

    /// Items in a folder, in creation order.
    pub fn items_in(&self, folder_id: &str) -> Vec<&Item> {
        let mut items: Vec<&Item> = self
            .items
            .values()
            .filter(|i| i.folder_id == folder_id)
            .collect();
        items.sort_by_key(|i| i.created_seq);
        items
    }

    /// An item by immutable or REST id.
    pub fn item(&self, id: &str) -> Option<&Item> {
        self.items.get(id).or_else(|| {
            self.rest_index
                .get(id)
                .and_then(|immutable| self.items.get(immutable))
        })
    }

    fn record(&mut self, folder_id: &str, immutable_id: &str, rest_id: &str) -> u64 {
        self.seq += 1;
        self.changes.push(Change {
            seq: self.seq,
            folder_id: folder_id.to_string(),
            immutable_id: immutable_id.to_string(),
            rest_id: rest_id.to_string(),
        });
        self.seq
    }

    fn rest_id_for(&mut self, immutable_id: &str) -> String {
        self.serial += 1;
        exchange_id("rest", &[immutable_id, &self.serial.to_string()])
    }

    /// Adds an item and records its creation in its folder. Answers its immutable id.
    pub fn insert_item(&mut self, new: NewItem) -> String {
        let rest_id = self.rest_id_for(&new.immutable_id);
        let seq = self.record(&new.folder_id, &new.immutable_id, &rest_id);
        self.rest_index
            .insert(rest_id.clone(), new.immutable_id.clone());
        let id = new.immutable_id.clone();
        self.items.insert(
            id.clone(),
            Item {
                immutable_id: new.immutable_id,
                rest_id,
                folder_id: new.folder_id,
                raw: new.raw,
                received_ms: new.received_ms,
                conversation_id: new.conversation_id,
                is_draft: new.is_draft,
                is_read: new.is_read,
                preview: new.preview,
                created_seq: seq,
                change_seq: seq,
            },
        );
        id
    }

    /// A fresh immutable id for a live item.
    pub fn new_item_id(&mut self, salt: &str) -> String {
        self.serial += 1;
        exchange_id("item", &[&self.user_id, salt, &self.serial.to_string()])
    }

    /// Moves an item (by either id) to `folder_id`: it leaves its folder's delta
    /// (`@removed`) and appears in the target's with a new REST id. Answers the new REST id.
    pub fn move_item(&mut self, id: &str, folder_id: &str) -> Option<String> {
        let (immutable_id, old_folder, old_rest) = {
            let item = self.item(id)?;
            (
                item.immutable_id.clone(),
                item.folder_id.clone(),
                item.rest_id.clone(),
            )
        };
        if old_folder == folder_id {
            return Some(old_rest);
        }
        self.record(&old_folder, &immutable_id, &old_rest);
        let rest_id = self.rest_id_for(&immutable_id);
        let seq = self.record(folder_id, &immutable_id, &rest_id);
        self.rest_index.remove(&old_rest);
        self.rest_index
            .insert(rest_id.clone(), immutable_id.clone());
        let item = self.items.get_mut(&immutable_id)?;
        item.folder_id = folder_id.to_string();
        item.rest_id = rest_id.clone();
        item.change_seq = seq;
        Some(rest_id)
    }

    /// Permanently deletes an item (by either id): its folder's delta reports `@removed`.
    pub fn delete_item(&mut self, id: &str) -> Option<()> {
        let item = self.item(id)?.clone();
        self.record(&item.folder_id, &item.immutable_id, &item.rest_id);
        self.rest_index.remove(&item.rest_id);
        self.items.remove(&item.immutable_id);
        Some(())
    }

    /// Every delta state issued so far answers 410 from now on.
    pub fn expire_sync_state(&mut self) {
        self.sync_generation += 1;
    }

    /// Items touched in `folder_id` by changes after `from` up to `upto`, each once, in
    /// the order of its last change there.
    pub fn touched(&self, folder_id: &str, from: u64, upto: u64) -> Vec<(u64, Touched)> {
        let mut last: BTreeMap<&str, &Change> = BTreeMap::new();
        for change in &self.changes {
            if change.seq > from && change.seq <= upto && change.folder_id == folder_id {
                last.insert(change.immutable_id.as_str(), change);
            }
        }
        let mut touched: Vec<(u64, Touched)> = last
            .into_values()
            .map(|change| {
                let present = self
                    .items
                    .get(&change.immutable_id)
                    .is_some_and(|i| i.folder_id == folder_id);
                let what = if present {
                    Touched::Present(change.immutable_id.clone())
                } else {
                    Touched::Removed {
                        immutable_id: change.immutable_id.clone(),
                        rest_id: change.rest_id.clone(),
                    }
                };
                (change.seq, what)
            })
            .collect();
        touched.sort_by_key(|(seq, _)| *seq);
        touched
    }

    /// (total, unread) items in a folder.
    pub fn counts(&self, folder_id: &str) -> (usize, usize) {
        self.items
            .values()
            .filter(|i| i.folder_id == folder_id)
            .fold((0, 0), |(total, unread), i| {
                (total + 1, unread + usize::from(!i.is_read))
            })
    }
}

/// What [`ExoMailbox::insert_item`] needs.
#[derive(Debug, Clone)]
pub struct NewItem {
    pub immutable_id: String,
    pub folder_id: String,
    pub raw: Arc<[u8]>,
    pub received_ms: i64,
    pub conversation_id: String,
    pub is_draft: bool,
    pub is_read: bool,
    pub preview: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(mailbox: &mut ExoMailbox, folder: &str) -> String {
        let folder_id = mailbox.well_known_id(folder);
        let immutable_id = mailbox.new_item_id("t");
        mailbox.insert_item(NewItem {
            immutable_id,
            folder_id,
            raw: Arc::from(&b"Subject: x\r\n\r\n"[..]),
            received_ms: 0,
            conversation_id: "c".into(),
            is_draft: false,
            is_read: true,
            preview: String::new(),
        })
    }

    #[test]
    fn a_move_changes_the_rest_id_and_is_seen_by_both_folders() {
        let mut mailbox = ExoMailbox::new("u");
        let id = item(&mut mailbox, "inbox");
        let inbox = mailbox.well_known_id("inbox");
        let archive = mailbox.well_known_id("archive");
        let before = mailbox.seq;
        let old_rest = mailbox.item(&id).unwrap().rest_id.clone();
        let new_rest = mailbox.move_item(&old_rest, &archive).unwrap();
        assert_ne!(old_rest, new_rest);
        assert!(mailbox.item(&old_rest).is_none(), "old REST id is gone");
        assert_eq!(mailbox.item(&id).unwrap().folder_id, archive);
        let seen = mailbox.touched(&inbox, before, mailbox.seq);
        assert_eq!(
            seen,
            vec![(
                before + 1,
                Touched::Removed {
                    immutable_id: id.clone(),
                    rest_id: old_rest
                }
            )]
        );
        let seen = mailbox.touched(&archive, before, mailbox.seq);
        assert_eq!(seen, vec![(before + 2, Touched::Present(id))]);
    }

    #[test]
    fn a_deleted_item_is_removed_once_per_folder() {
        let mut mailbox = ExoMailbox::new("u");
        let id = item(&mut mailbox, "inbox");
        let inbox = mailbox.well_known_id("inbox");
        mailbox.delete_item(&id).unwrap();
        let seen = mailbox.touched(&inbox, 0, mailbox.seq);
        assert_eq!(seen.len(), 1);
        assert!(matches!(seen[0].1, Touched::Removed { .. }));
    }
}
