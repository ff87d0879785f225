//! Control routes for change notifications: every subscription with the delivery totals
//! (`GET /control/subscriptions`), lifecycle notifications on demand
//! (`POST /control/subscriptions/{id}/lifecycle`), expiring a subscription now, and the
//! push faults (`/control/push/faults`, the kit's settings routes).

use super::notify::send;
use super::{Subscription, graph_instant};
use crate::kit::control::{Answer, Body, ControlError, ok, settings_routes};
use crate::microsoft::state::MicrosoftState;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

type Shared = State<Arc<MicrosoftState>>;

pub fn routes() -> Router<Arc<MicrosoftState>> {
    Router::new()
        .route("/control/subscriptions", get(list))
        .route("/control/subscriptions/{id}/lifecycle", post(lifecycle))
        .route("/control/subscriptions/{id}/expire", post(expire))
        .route(
            "/control/push/faults",
            settings_routes(|s: &MicrosoftState| &*s.subscriptions.outbox),
        )
}

async fn list(State(state): Shared) -> Answer {
    let subscriptions: Vec<_> = state
        .subscriptions
        .lock()
        .values()
        .map(|s| {
            json!({
                "id": s.id,
                "application_id": s.application_id,
                "resource": s.resource,
                "notification_url": s.notification_url.as_str(),
                "lifecycle_notification_url": s.lifecycle_url.as_ref().map(|u| u.as_str()),
                "expiration": graph_instant(s.expiration_ms),
                "reauthorization_required": s.reauthorization_required,
            })
        })
        .collect();
    let outbox = &state.subscriptions.outbox;
    ok(json!({
        "subscriptions": subscriptions,
        "totals": outbox.totals(),
        "recent": outbox.recent(),
    }))
}

/// The lifecycle events Graph sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
enum LifecycleEvent {
    ReauthorizationRequired,
    SubscriptionRemoved,
    Missed,
}

impl LifecycleEvent {
    fn as_str(self) -> &'static str {
        match self {
            LifecycleEvent::ReauthorizationRequired => "reauthorizationRequired",
            LifecycleEvent::SubscriptionRemoved => "subscriptionRemoved",
            LifecycleEvent::Missed => "missed",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LifecycleRequest {
    lifecycle_event: LifecycleEvent,
}

/// Sends a lifecycle notification to the subscription's `lifecycleNotificationUrl`:
/// `subscriptionRemoved` also removes it, `reauthorizationRequired` marks it until
/// renewed or reauthorized, `missed` changes nothing (the client resyncs through delta).
async fn lifecycle(
    State(state): Shared,
    Path(id): Path<String>,
    Body(request): Body<LifecycleRequest>,
) -> Answer {
    let event = request.lifecycle_event;
    let subscription: Subscription = {
        let mut all = state.subscriptions.lock();
        let current = all
            .get_mut(&id)
            .ok_or_else(|| ControlError::not_found(format!("no subscription {id}")))?;
        if current.lifecycle_url.is_none() {
            return Err(ControlError::conflict(format!(
                "subscription {id} has no lifecycleNotificationUrl, so Graph would not send lifecycle events"
            )));
        }
        if event == LifecycleEvent::ReauthorizationRequired {
            current.reauthorization_required = true;
        }
        let copy = current.clone();
        if event == LifecycleEvent::SubscriptionRemoved {
            all.remove(&id);
        }
        copy
    };
    let Some(url) = &subscription.lifecycle_url else {
        return Err(ControlError::conflict("no lifecycleNotificationUrl"));
    };
    let tenant_id = state.tenant().tenant_id.clone();
    let body = json!({"value": [{
        "subscriptionId": subscription.id,
        "subscriptionExpirationDateTime": graph_instant(subscription.expiration_ms),
        "tenantId": tenant_id,
        "clientState": subscription.client_state,
        "lifecycleEvent": event.as_str(),
    }]});
    send(&state, url, body, &subscription.id);
    ok(json!({"sent": event.as_str(), "subscription": subscription.id}))
}

/// The subscription lapses now, as if its expiration had come (no more notifications).
async fn expire(State(state): Shared, Path(id): Path<String>) -> Answer {
    state
        .subscriptions
        .lock()
        .remove(&id)
        .ok_or_else(|| ControlError::not_found(format!("no subscription {id}")))?;
    ok(json!({"expired": id}))
}
