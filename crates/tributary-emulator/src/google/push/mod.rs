//! Gmail push: `users.watch`/`users.stop` ([`watch`]), the Pub/Sub topics and push
//! subscriptions they publish through ([`pubsub`]), Calendar's web-hook channels
//! (`events.watch`, `channels.stop`: [`calendar`]), the OIDC tokens on each push
//! request and the certificates that verify them ([`oidc`]), and the control routes
//! (`/control/push`: state, faults, expiring a watch). Delivery, retries and faults are
//! the kit's [`Outbox`]. See `docs/emulator-push.md`.

pub mod calendar;
pub mod oidc;
pub mod pubsub;
pub mod watch;

use super::call::json_response;
use super::state::EmulatorState;
use crate::kit::control::{ControlError, ok, settings_routes};
use crate::kit::push::{Outbox, Outgoing, spawn_ticker};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post, put};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::SecondsFormat;
use oidc::{OidcSigner, TokenClaims};
use pubsub::{PubSub, PublishRefused};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use watch::Watch;

/// How often watched mailboxes are looked at for changes.
pub const SCAN_PERIOD: Duration = Duration::from_millis(20);

/// Everything push keeps: topics, subscriptions, watches, the signing key, the outbox.
#[derive(Debug, Default)]
pub struct PushState {
    pub outbox: Arc<Outbox>,
    pub signer: OidcSigner,
    pubsub: Mutex<PubSub>,
    /// By mailbox (primary email).
    watches: Mutex<BTreeMap<String, Watch>>,
    /// Calendar web-hook channels by channel id.
    channels: Mutex<BTreeMap<String, calendar::Channel>>,
    /// Notifications Gmail could not publish (topic gone, publisher grant revoked).
    refused: AtomicU64,
}

impl PushState {
    pub fn new(outbox: Outbox) -> Self {
        PushState {
            outbox: Arc::new(outbox),
            ..PushState::default()
        }
    }

    pub fn pubsub(&self) -> MutexGuard<'_, PubSub> {
        self.pubsub.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn watches(&self) -> MutexGuard<'_, BTreeMap<String, Watch>> {
        self.watches.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn channels(&self) -> MutexGuard<'_, BTreeMap<String, calendar::Channel>> {
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count_refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Publishes `data` to `topic` as `publisher`: one envelope per push subscription,
    /// with an OIDC token when the subscription asks for one. Answers how many.
    pub fn publish(
        &self,
        topic: &str,
        publisher: &str,
        data: &[u8],
    ) -> Result<usize, PublishRefused> {
        let (message_id, targets) = self.pubsub().publish(topic, publisher)?;
        let now = chrono::Utc::now();
        let publish_time = now.to_rfc3339_opts(SecondsFormat::Millis, true);
        let data = STANDARD.encode(data);
        for target in &targets {
            let body = json!({
                "message": {
                    "data": data,
                    "messageId": message_id,
                    "message_id": message_id,
                    "publishTime": publish_time,
                    "publish_time": publish_time,
                    "attributes": {},
                },
                "subscription": target.name,
            });
            let mut headers = Vec::new();
            if let Some(oidc) = &target.oidc {
                let claims = TokenClaims {
                    audience: &target.audience(),
                    email: &oidc.service_account_email,
                    subject: &target.oidc_subject,
                };
                let token = self.signer.token(&claims, now.timestamp());
                headers.push(("authorization".to_string(), format!("Bearer {token}")));
            }
            self.outbox.send(Outgoing {
                url: target.endpoint.clone(),
                headers,
                body: body.to_string().into_bytes(),
                ack_deadline: Duration::from_secs(target.ack_deadline_seconds.into()),
                label: target.name.clone(),
            });
        }
        Ok(targets.len())
    }
}

/// Starts looking for changes in watched mailboxes (for as long as `state` lives).
pub fn start(state: &Arc<EmulatorState>) {
    spawn_ticker(state, SCAN_PERIOD, watch::scan);
    spawn_ticker(state, SCAN_PERIOD, calendar::scan);
}

/// Gmail's watch methods, Pub/Sub's admin calls, the certificates, and the control routes.
pub fn routes() -> Router<Arc<EmulatorState>> {
    Router::new()
        .route("/gmail/v1/users/{user_id}/watch", post(watch::watch))
        .route("/gmail/v1/users/{user_id}/stop", post(watch::stop))
        .route(
            "/calendar/v3/calendars/{calendar_id}/events/watch",
            post(calendar::watch),
        )
        .route("/calendar/v3/channels/stop", post(calendar::stop))
        .route(
            "/v1/projects/{project}/topics/{topic}",
            put(pubsub::topic_put)
                .get(pubsub::topic_get)
                .post(pubsub::topic_post)
                .delete(pubsub::topic_delete),
        )
        .route(
            "/v1/projects/{project}/subscriptions/{subscription}",
            put(pubsub::subscription_put)
                .get(pubsub::subscription_get)
                .delete(pubsub::subscription_delete),
        )
        .route("/oauth2/v3/certs", get(certs))
        .route("/control/push", get(control_state))
        .route(
            "/control/push/faults",
            settings_routes(|s: &EmulatorState| &*s.push.outbox),
        )
        .route(
            "/control/push/watches/{email}/expire",
            post(control_expire_watch),
        )
}

/// Google's JWKS: the key push tokens are signed with.
async fn certs(State(state): State<Arc<EmulatorState>>) -> Response {
    json_response(StatusCode::OK, &state.push.signer.jwks())
}

/// `GET /control/push`: watches, topics, subscriptions, delivery totals and the latest
/// attempts.
async fn control_state(State(state): State<Arc<EmulatorState>>) -> Result<Response, ControlError> {
    let push = &state.push;
    let watches: Vec<Watch> = push.watches().values().cloned().collect();
    let channels: Vec<calendar::Channel> = push.channels().values().cloned().collect();
    let (topics, subscriptions) = {
        let pubsub = push.pubsub();
        let topics: Vec<_> = pubsub
            .topics
            .values()
            .map(|t| json!({"name": t.name, "bindings": t.bindings}))
            .collect();
        let subscriptions: Vec<_> = pubsub
            .subscriptions
            .values()
            .map(|s| {
                json!({
                    "name": s.name,
                    "topic": s.topic,
                    "push_endpoint": s.endpoint.as_str(),
                    "oidc_service_account": s.oidc.as_ref().map(|o| o.service_account_email.clone()),
                    "audience": s.audience(),
                })
            })
            .collect();
        (topics, subscriptions)
    };
    ok(json!({
        "watches": watches,
        "channels": channels,
        "topics": topics,
        "subscriptions": subscriptions,
        "refused_publishes": push.refused.load(Ordering::Relaxed),
        "totals": push.outbox.totals(),
        "recent": push.outbox.recent(),
    }))
}

/// `POST /control/push/watches/{email}/expire`: the watch lapses now, as if its 7 days
/// were over (so a client's renewal can be tested).
async fn control_expire_watch(
    State(state): State<Arc<EmulatorState>>,
    Path(email): Path<String>,
) -> Result<Response, ControlError> {
    let email = email.to_ascii_lowercase();
    let removed = state.push.watches().remove(&email);
    match removed {
        Some(watch) => ok(json!({"expired": watch.email})),
        None => Err(ControlError::not_found(format!("{email} has no watch"))),
    }
}
