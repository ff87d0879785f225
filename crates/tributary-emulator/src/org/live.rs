//! Live delivery: a new message arriving while the emulator runs (the control API).
//! It goes through [`Mailbox::add_message`], so it creates history records. Live mail
//! does not change the ground truth, which describes the generated backlog only.

use std::collections::{BTreeMap, BTreeSet};

use super::mailboxes::{gmail_message_id, stored_message};
use super::render::{DeliveryTrace, LiveMessage};
use crate::model::{Mailbox, Organization};

/// One copy of a live message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveDelivery {
    /// The mailbox owner's primary address.
    pub mailbox: String,
    pub message_id: String,
    pub thread_id: String,
    /// The history record of the `messageAdded`.
    pub history_id: u64,
}

struct Target {
    labels: BTreeSet<String>,
    is_sender: bool,
    delivered_to: Option<String>,
}

/// Delivers `message` like Gmail would: a SENT copy (with Bcc) in the sender's mailbox
/// when the sender is a user, an INBOX copy in the mailbox of every user addressed in
/// To, Cc or Bcc (by primary address or alias). Users who are suspended, archived,
/// deleted or without a mail-enabled mailbox get nothing. A reply joins the thread of
/// the message it answers (by In-Reply-To or References) in each mailbox.
pub fn deliver_live(
    organization: &mut Organization,
    message: &LiveMessage,
    internal_date_ms: i64,
) -> Vec<LiveDelivery> {
    let mut targets: BTreeMap<String, Target> = BTreeMap::new();
    if let Some(email) = receiving_mailbox(organization, &message.from.address) {
        targets.insert(
            email,
            Target {
                labels: ["SENT".to_string()].into(),
                is_sender: true,
                delivered_to: None,
            },
        );
    }
    for recipient in message.to.iter().chain(&message.cc).chain(&message.bcc) {
        let Some(email) = receiving_mailbox(organization, &recipient.address) else {
            continue;
        };
        let target = targets.entry(email.clone()).or_insert_with(|| Target {
            labels: BTreeSet::new(),
            is_sender: false,
            delivered_to: Some(email),
        });
        target.labels.insert("INBOX".into());
        if !target.is_sender {
            target
                .labels
                .extend(["UNREAD".into(), "CATEGORY_PERSONAL".into()]);
        }
    }
    let rendered = message.rendered();
    let references: Vec<String> = message
        .in_reply_to
        .iter()
        .chain(&message.references)
        .map(|id| normalized_message_id(id))
        .collect();
    let mut deliveries = Vec::new();
    for (email, target) in targets {
        let Some(mailbox) = organization.mailboxes.get_mut(&email) else {
            continue;
        };
        let mut low_bits = fnv1a(email.as_bytes()) ^ fnv1a(&message.date_ms.to_le_bytes());
        let mut id = gmail_message_id(internal_date_ms, low_bits);
        while mailbox.messages.contains_key(&id) {
            low_bits = low_bits.wrapping_add(1);
            id = gmail_message_id(internal_date_ms, low_bits);
        }
        let thread_id = thread_of(mailbox, &references).unwrap_or_else(|| id.clone());
        let trace = target
            .delivered_to
            .as_deref()
            .map(|delivered_to| DeliveryTrace {
                delivered_to,
                received_ms: internal_date_ms,
                smtp_id: u64::from(low_bits) << 16,
            });
        let raw = rendered.copy_bytes(trace.as_ref(), target.is_sender);
        let stored = stored_message(
            raw,
            id.clone(),
            thread_id.clone(),
            target.labels,
            internal_date_ms,
            rendered.snippet.clone(),
        );
        let history_id = mailbox.add_message(stored);
        deliveries.push(LiveDelivery {
            mailbox: email,
            message_id: id,
            thread_id,
            history_id,
        });
    }
    deliveries
}

/// The primary address of the mailbox that receives mail for `address`, if any.
fn receiving_mailbox(organization: &Organization, address: &str) -> Option<String> {
    let user = organization.find_user(address.trim())?;
    if user.suspended || user.archived || user.deleted || !user.is_mailbox_setup {
        return None;
    }
    let email = user.primary_email.to_ascii_lowercase();
    let mailbox = organization.mailboxes.get(&email)?;
    mailbox.mail_enabled.then_some(email)
}

fn normalized_message_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_ascii_lowercase()
}

/// The thread of the first message in the mailbox whose Message-ID is referenced.
fn thread_of(mailbox: &Mailbox, references: &[String]) -> Option<String> {
    if references.is_empty() {
        return None;
    }
    mailbox.messages.values().find_map(|stored| {
        let own = stored
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("Message-ID"))
            .map(|(_, value)| normalized_message_id(value))?;
        references.contains(&own).then(|| stored.thread_id.clone())
    })
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    })
}
