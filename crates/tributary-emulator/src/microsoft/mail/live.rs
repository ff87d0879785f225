//! Live mail in the tenant: a message delivered while the emulator runs lands in the
//! Inbox of every recipient with a mailbox (To, Cc, Bcc, by any proxy address) and in the
//! Sent Items of a sender who is a member (that copy keeps Bcc). Each becomes a delta
//! change of its folder.

use super::super::ids::exchange_id;
use super::super::tenant::Tenant;
use super::store::NewItem;
use crate::org::{LiveMessage, render_message};
use serde::Serialize;
use std::sync::Arc;

/// One copy delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivered {
    pub user_id: String,
    pub user_principal_name: String,
    /// `inbox` or `sentitems`.
    pub folder: &'static str,
    pub immutable_id: String,
    pub rest_id: String,
}

/// The user id of the enabled mailbox receiving mail for `address`.
fn mailbox_of(tenant: &Tenant, address: &str) -> Option<(String, String)> {
    let user = tenant.user_by_address(address.trim())?;
    let mailbox = tenant.mailboxes.get(&user.id)?;
    mailbox
        .enabled
        .then(|| (user.id.clone(), user.user_principal_name.clone()))
}

/// Exchange groups by conversation topic: the subject without reply and forward prefixes.
fn conversation_topic(subject: Option<&str>) -> String {
    let mut topic = subject.unwrap_or("").trim();
    loop {
        let lower = topic.to_ascii_lowercase();
        let Some(prefix) = ["re:", "fw:", "fwd:", "aw:", "wg:"]
            .iter()
            .find(|p| lower.starts_with(**p))
        else {
            break;
        };
        topic = topic[prefix.len()..].trim_start();
    }
    topic.to_ascii_lowercase()
}

pub fn deliver(tenant: &mut Tenant, message: &LiveMessage, received_ms: i64) -> Vec<Delivered> {
    let mut targets: Vec<(String, String, &'static str)> = Vec::new();
    if let Some((id, upn)) = mailbox_of(tenant, &message.from.address) {
        targets.push((id, upn, "sentitems"));
    }
    for recipient in message.to.iter().chain(&message.cc).chain(&message.bcc) {
        if let Some((id, upn)) = mailbox_of(tenant, &recipient.address)
            && !targets.iter().any(|(t, _, f)| *t == id && *f == "inbox")
        {
            targets.push((id, upn, "inbox"));
        }
    }
    let topic = conversation_topic(message.subject.as_deref());
    let sender_raw: Arc<[u8]> = Arc::from(render_message(message, true));
    let recipient_raw: Arc<[u8]> = Arc::from(render_message(message, false));
    let preview: String = message.body.chars().take(255).collect();
    let mut delivered = Vec::new();
    for (user_id, upn, folder) in targets {
        let Some(mailbox) = tenant.mailboxes.get_mut(&user_id) else {
            continue;
        };
        let raw = if folder == "sentitems" {
            &sender_raw
        } else {
            &recipient_raw
        };
        let immutable_id = mailbox.new_item_id("live");
        let folder_id = mailbox.well_known_id(folder);
        mailbox.insert_item(NewItem {
            immutable_id: immutable_id.clone(),
            folder_id,
            raw: Arc::clone(raw),
            received_ms,
            conversation_id: exchange_id("conversation", &[&user_id, &topic]),
            is_draft: false,
            is_read: folder == "sentitems",
            preview: preview.clone(),
        });
        let rest_id = mailbox
            .item(&immutable_id)
            .map(|i| i.rest_id.clone())
            .unwrap_or_default();
        delivered.push(Delivered {
            user_id,
            user_principal_name: upn,
            folder,
            immutable_id,
            rest_id,
        });
    }
    delivered
}
