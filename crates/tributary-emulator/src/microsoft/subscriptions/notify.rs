//! Change notifications: each scan compares every live subscription's covered sequence
//! with its mailbox's change log (messages) or the calendars' change stamp (events),
//! and POSTs what changed since as one `{"value":[…]}` per subscription, each entry
//! carrying the subscription's `clientState`. Expired subscriptions are dropped.

use super::{ChangeType, Subscription, Target, graph_instant};
use crate::kit::push::Outgoing;
use crate::microsoft::state::MicrosoftState;
use chrono::Utc;
use reqwest::Url;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// How often subscriptions are looked at for changes.
pub const SCAN_PERIOD: Duration = Duration::from_millis(20);
/// Graph wants an answer within 3 s, else it retries.
pub const ACK_DEADLINE: Duration = Duration::from_secs(3);
/// Entries per notification POST at most.
const MAX_PER_POST: usize = 100;

/// One changed resource.
struct Changed {
    change: ChangeType,
    user_id: String,
    id: String,
    seq: u64,
}

/// What a kind of resource is called in notifications.
struct Kind {
    collection: &'static str,
    odata_type: &'static str,
}

const MESSAGE: Kind = Kind {
    collection: "Messages",
    odata_type: "#Microsoft.Graph.Message",
};
const EVENT: Kind = Kind {
    collection: "Events",
    odata_type: "#Microsoft.Graph.Event",
};

/// Delivers the changes every subscription has not covered yet (run by the ticker).
pub fn scan(state: &Arc<MicrosoftState>) {
    let now_ms = Utc::now().timestamp_millis();
    let subscriptions: Vec<Subscription> = {
        let mut all = state.subscriptions.lock();
        all.retain(|_, s| s.expiration_ms > now_ms);
        all.values().cloned().collect()
    };
    if subscriptions.is_empty() {
        return;
    }
    let tenant_id = state.tenant().tenant_id.clone();
    for subscription in subscriptions {
        let (changes, seq, kind) = match &subscription.target {
            Target::Messages { user_id, folder_id } => {
                let (changes, seq) =
                    message_changes(state, &subscription, user_id, folder_id.as_deref());
                (changes, seq, MESSAGE)
            }
            Target::Events { user_id, calendar } => {
                let (changes, seq) = event_changes(state, &subscription, user_id, calendar);
                (changes, seq, EVENT)
            }
        };
        if !advance(state, &subscription.id, seq) {
            continue;
        }
        let entries: Vec<Value> = changes
            .iter()
            .filter(|c| subscription.change_types.contains(&c.change))
            .map(|c| entry(&subscription, &tenant_id, &kind, c))
            .collect();
        for chunk in entries.chunks(MAX_PER_POST) {
            send(
                state,
                &subscription.notification_url,
                json!({"value": chunk}),
                &subscription.id,
            );
        }
    }
}

/// Records that `id` has covered changes up to `seq`; `false` when there was nothing
/// new (or the subscription is gone).
fn advance(state: &MicrosoftState, id: &str, seq: u64) -> bool {
    let mut all = state.subscriptions.lock();
    match all.get_mut(id) {
        Some(current) if current.seen_seq < seq => {
            current.seen_seq = seq;
            true
        }
        _ => false,
    }
}

/// Posts a notification body to `url`.
pub fn send(state: &MicrosoftState, url: &Url, body: Value, label: &str) {
    state.subscriptions.outbox.send(Outgoing {
        url: url.clone(),
        headers: Vec::new(),
        body: body.to_string().into_bytes(),
        ack_deadline: ACK_DEADLINE,
        label: label.to_string(),
    });
}

fn entry(subscription: &Subscription, tenant_id: &str, kind: &Kind, changed: &Changed) -> Value {
    let resource = format!(
        "Users/{}/{}/{}",
        changed.user_id, kind.collection, changed.id
    );
    json!({
        "subscriptionId": subscription.id,
        "subscriptionExpirationDateTime": graph_instant(subscription.expiration_ms),
        "changeType": changed.change.as_str(),
        "resource": resource,
        "resourceData": {
            "@odata.type": kind.odata_type,
            "@odata.id": resource,
            "@odata.etag": format!("W/\"CQAAAB{}\"", changed.seq),
            "id": changed.id,
        },
        "clientState": subscription.client_state,
        "tenantId": tenant_id,
    })
}

/// The messages changed in the subscribed folder (or anywhere) since the covered
/// sequence, and the mailbox's sequence now.
fn message_changes(
    state: &MicrosoftState,
    subscription: &Subscription,
    user_id: &str,
    folder_id: Option<&str>,
) -> (Vec<Changed>, u64) {
    let tenant = state.tenant();
    let Some(mailbox) = tenant.mailboxes.get(user_id) else {
        return (Vec::new(), subscription.seen_seq);
    };
    if mailbox.seq <= subscription.seen_seq {
        return (Vec::new(), mailbox.seq);
    }
    let mut recent: Vec<_> = mailbox
        .changes
        .iter()
        .rev()
        .take_while(|c| c.seq > subscription.seen_seq)
        .filter(|c| folder_id.is_none_or(|f| f == c.folder_id))
        .collect();
    recent.reverse();
    let mut reported = BTreeSet::new();
    let mut changes = Vec::new();
    for change in recent {
        let here = mailbox
            .items
            .get(&change.immutable_id)
            .filter(|i| i.folder_id == change.folder_id);
        let (kind, rest_id) = match here {
            Some(item) if item.created_seq == change.seq => {
                (ChangeType::Created, item.rest_id.clone())
            }
            Some(item) => (ChangeType::Updated, item.rest_id.clone()),
            // Leaving one folder for another is an update of the mailbox's message.
            None if folder_id.is_none() && mailbox.items.contains_key(&change.immutable_id) => {
                continue;
            }
            None => (ChangeType::Deleted, change.rest_id.clone()),
        };
        let id = if subscription.immutable_ids {
            change.immutable_id.clone()
        } else {
            rest_id
        };
        if reported.insert((kind, id.clone())) {
            changes.push(Changed {
                change: kind,
                user_id: user_id.to_string(),
                id,
                seq: change.seq,
            });
        }
    }
    (changes, mailbox.seq)
}

/// The calendar's events changed since the covered sequence, and the calendars'
/// sequence now. A cancelled meeting is a deletion; one never changed since it was
/// made is a creation.
fn event_changes(
    state: &MicrosoftState,
    subscription: &Subscription,
    user_id: &str,
    calendar: &str,
) -> (Vec<Changed>, u64) {
    let store = state.calendars.read();
    if store.seq <= subscription.seen_seq {
        return (Vec::new(), store.seq);
    }
    let changes = store
        .in_calendar(calendar)
        .filter(|m| m.last_change() > subscription.seen_seq)
        .map(|meeting| {
            let change = if meeting.cancelled {
                ChangeType::Deleted
            } else if meeting.created_ms == meeting.updated_ms && meeting.exceptions.is_empty() {
                ChangeType::Created
            } else {
                ChangeType::Updated
            };
            Changed {
                change,
                user_id: user_id.to_string(),
                id: crate::microsoft::calendar::render::event_id(calendar, meeting, None),
                seq: meeting.last_change(),
            }
        })
        .collect();
    (changes, store.seq)
}
