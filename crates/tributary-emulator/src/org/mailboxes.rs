//! Turning the plan into Gmail mailboxes: per-mailbox message and thread ids, rendered
//! copies, and the generated backlog added without history records.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::mail::MailPlan;
use super::people::Population;
use super::render::{DeliveryTrace, RenderedMessage, render_planned};
use crate::model::{Mailbox, StoredMessage, parse_header_fields};

/// A Gmail message id: 16 lowercase hex digits that, like Gmail's, grow with the
/// message's internalDate (milliseconds in the high bits, `low_bits` below).
pub fn gmail_message_id(internal_date_ms: i64, low_bits: u32) -> String {
    let ms = u64::try_from(internal_date_ms).unwrap_or(0);
    format!("{:016x}", (ms << 20) | u64::from(low_bits & 0xf_ffff))
}

/// Builds a stored message from raw bytes: parsed header fields and Gmail's snippet.
pub fn stored_message(
    raw: Vec<u8>,
    id: String,
    thread_id: String,
    label_ids: BTreeSet<String>,
    internal_date_ms: i64,
    snippet: String,
) -> StoredMessage {
    let headers = parse_header_fields(&raw);
    StoredMessage {
        id,
        thread_id,
        label_ids,
        internal_date_ms,
        history_id: 0,
        raw: Arc::from(raw),
        headers: Arc::new(headers),
        snippet,
    }
}

/// Every user's mailbox: users with a mailbox get their planned copies; the user without
/// one gets a mail-disabled, empty mailbox.
pub fn build_mailboxes(
    population: &Population,
    plan: &MailPlan,
    rng: &mut ChaCha8Rng,
) -> BTreeMap<String, Mailbox> {
    let rendered: Vec<RenderedMessage> = plan
        .messages
        .iter()
        .enumerate()
        .map(|(index, message)| render_planned(population, message, boundary_seed(index)))
        .collect();
    // (internalDate, message, copy) per mailbox, in delivery order.
    let mut placements: BTreeMap<&str, Vec<(i64, usize, usize)>> = BTreeMap::new();
    for (message_index, message) in plan.messages.iter().enumerate() {
        for (copy_index, copy) in message.copies.iter().enumerate() {
            placements.entry(copy.mailbox.as_str()).or_default().push((
                copy.internal_date_ms,
                message_index,
                copy_index,
            ));
        }
    }
    let mut mailboxes = BTreeMap::new();
    for (user, directory) in population.users.iter().enumerate() {
        let profile = &population.profiles[user];
        let email = directory.primary_email.to_ascii_lowercase();
        let mut mailbox = Mailbox::new(&email, rng.gen_range(100_000..4_000_000));
        mailbox.mail_enabled = profile.has_mailbox;
        for (id, name) in &profile.user_labels {
            mailbox.add_user_label(id, name);
        }
        let mut list = placements.remove(email.as_str()).unwrap_or_default();
        list.sort_unstable();
        let mut thread_ids: BTreeMap<usize, String> = BTreeMap::new();
        for (internal_date_ms, message_index, copy_index) in list {
            let message = &plan.messages[message_index];
            let copy = &message.copies[copy_index];
            let mut id = gmail_message_id(internal_date_ms, rng.r#gen());
            while mailbox.messages.contains_key(&id) {
                id = gmail_message_id(internal_date_ms, rng.r#gen());
            }
            let thread_id = thread_ids
                .entry(message.thread)
                .or_insert_with(|| id.clone())
                .clone();
            let trace = copy
                .delivered_to
                .as_deref()
                .map(|delivered_to| DeliveryTrace {
                    delivered_to,
                    received_ms: internal_date_ms,
                    smtp_id: rng.r#gen(),
                });
            let raw = rendered[message_index].copy_bytes(trace.as_ref(), copy.carries_bcc);
            let stored = stored_message(
                raw,
                id,
                thread_id,
                copy.labels.clone(),
                internal_date_ms,
                rendered[message_index].snippet.clone(),
            );
            mailbox.add_message_silently(stored);
        }
        mailboxes.insert(email, mailbox);
    }
    mailboxes
}

/// A per-message MIME boundary seed (splitmix64), independent of rendering order.
fn boundary_seed(index: usize) -> u64 {
    let mut z = (index as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
