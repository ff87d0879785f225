//! Microsoft Graph push: `POST /push/microsoft/{tenant}` (change notifications) and
//! `POST /push/microsoft/{tenant}/lifecycle` (lifecycle notifications).
//!
//! - Validation handshake: Graph checks each URL before it makes a subscription, with a
//!   POST carrying `?validationToken=…`; the answer is `200 text/plain` with the decoded
//!   token as the whole body, at once, and nothing else is done.
//! - Notifications `{"value":[…]}`: an entry counts only when its subscription is one of
//!   the tenant's stored channels and its `clientState` hashes to the channel's stored
//!   hash (compared in constant time). A change brings the link's sync forward (once per
//!   link per POST); a lifecycle event does what it asks first: `reauthorizationRequired`
//!   marks the channel due (the sync's lifecycle step renews it with a PATCH, which
//!   reauthorizes it), `subscriptionRemoved` forgets it (the sync makes a new one and
//!   delta catches up), `missed` only brings the sync forward.
//!
//! The answer is `202` whether or not an entry counted: Graph retries a non-2xx answer
//! for hours and, when an endpoint keeps failing, delays or drops its notifications,
//! every subscription's alike. So a forged, stale (a replaced subscription still
//! delivering until it lapses) or unknown entry changes nothing, is logged, and is
//! acknowledged. Only a body that is not a notification at all is refused (`400`, `413`),
//! and a store that cannot answer is `503`, which Graph retries (nothing is lost).

use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use std::collections::{BTreeSet, HashMap};
use tributary_store::{LinkId, PushChannelRecord, TenantId};

/// The change notifications route, in axum's path syntax.
pub const ROUTE: &str = "/push/microsoft/{tenant}";
/// The lifecycle notifications route.
pub const LIFECYCLE_ROUTE: &str = "/push/microsoft/{tenant}/lifecycle";

/// Longest tenant id accepted in the path.
const MAX_TENANT_LEN: usize = 128;
/// Longest validation token echoed (Graph's are about a hundred characters).
const MAX_VALIDATION_TOKEN: usize = 1024;
/// Largest notification body read. Graph batches notifications without resource data
/// (about 600 bytes each); this holds a thousand of them.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Most entries handled in one POST.
const MAX_ENTRIES: usize = 1000;
/// Longest subscription id looked up (Graph's are GUIDs).
const MAX_SUBSCRIPTION_ID: usize = 128;

/// One entry of `value`, change or lifecycle: only what routing needs is read (the
/// resource and its data are not used; the sync reads changes through delta).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    #[serde(default)]
    subscription_id: String,
    #[serde(default)]
    client_state: Option<String>,
    #[serde(default)]
    lifecycle_event: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Envelope {
    value: Vec<Entry>,
}

/// What a lifecycle event asks for, besides bringing the sync forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    ReauthorizationRequired,
    SubscriptionRemoved,
    Missed,
}

impl Lifecycle {
    fn parse(event: &str) -> Option<Self> {
        match event {
            "reauthorizationRequired" => Some(Lifecycle::ReauthorizationRequired),
            "subscriptionRemoved" => Some(Lifecycle::SubscriptionRemoved),
            "missed" => Some(Lifecycle::Missed),
            _ => None,
        }
    }
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn unavailable(tenant: &TenantId, error: &dyn std::fmt::Display) -> Response {
    tracing::warn!(tenant = ?tenant.as_str(), error = ?error.to_string(), "Graph push: store unavailable");
    refuse(StatusCode::SERVICE_UNAVAILABLE, "try again later")
}

/// Change notifications for `tenant` (and lifecycle events, should Graph send one here).
pub async fn receive(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    handle(&state, &tenant, query.as_deref(), body).await
}

/// Lifecycle notifications for `tenant`.
pub async fn receive_lifecycle(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    handle(&state, &tenant, query.as_deref(), body).await
}

async fn handle(state: &AppState, tenant: &str, query: Option<&str>, body: Body) -> Response {
    if let Some(token) = query.and_then(validation_token) {
        return echo(&token);
    }
    if tenant.is_empty() || tenant.len() > MAX_TENANT_LEN {
        return refuse(StatusCode::NOT_FOUND, "no such tenant");
    }
    let tenant = TenantId::new(tenant);
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("a notification body is at most {MAX_BODY_BYTES} bytes"),
        );
    };
    let envelope: Envelope = match serde_json::from_slice(&body) {
        Ok(envelope) => envelope,
        Err(error) => {
            let message = format!("not a Graph notification ({{\"value\":[…]}}): {error}");
            return refuse(StatusCode::BAD_REQUEST, &message);
        }
    };
    if envelope.value.len() > MAX_ENTRIES {
        let message = format!("a notification has at most {MAX_ENTRIES} entries");
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, &message);
    }
    match accept(state, &tenant, &envelope.value).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(response) => response,
    }
}

/// The decoded `validationToken`, if the query has one.
fn validation_token(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "validationToken")
        .map(|(_, token)| token.into_owned())
}

/// The handshake's answer: the token, as plain text that no browser sniffs into a page
/// (whoever calls may choose it).
fn echo(token: &str) -> Response {
    if token.len() > MAX_VALIDATION_TOKEN {
        let message = format!("a validation token is at most {MAX_VALIDATION_TOKEN} bytes");
        return refuse(StatusCode::BAD_REQUEST, &message);
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        token.to_owned(),
    )
        .into_response()
}

/// Why entries of one POST were ignored, logged once per POST (a caller repeating a
/// forgery a thousand times makes one line, not a thousand).
#[derive(Debug, Default)]
struct Ignored<'a> {
    malformed: usize,
    unknown: usize,
    wrong_client_state: usize,
    unknown_event: usize,
    /// The first subscription id ignored, for the log.
    first: Option<&'a str>,
}

impl<'a> Ignored<'a> {
    fn note(&mut self, count: fn(&mut Self) -> &mut usize, id: &'a str) {
        *count(self) += 1;
        self.first.get_or_insert(id);
    }

    fn log(&self, tenant: &TenantId, entries: usize) {
        let ignored = self.malformed + self.unknown + self.wrong_client_state + self.unknown_event;
        if ignored == 0 {
            return;
        }
        tracing::info!(
            tenant = ?tenant.as_str(), entries, ignored, unknown_subscription = self.unknown,
            wrong_client_state = self.wrong_client_state, unknown_lifecycle_event = self.unknown_event,
            no_subscription_id = self.malformed, first = ?self.first,
            "Graph push: notification entries ignored"
        );
    }
}

/// Handles the entries that verify; the links to sync are brought forward once each.
async fn accept(state: &AppState, tenant: &TenantId, entries: &[Entry]) -> Result<(), Response> {
    let store = state.store();
    // Graph batches many notifications of one subscription: each is looked up once.
    let mut channels: HashMap<&str, Option<PushChannelRecord>> = HashMap::new();
    let mut links: BTreeSet<LinkId> = BTreeSet::new();
    let mut ignored = Ignored::default();
    for entry in entries {
        let id = entry.subscription_id.trim();
        if id.is_empty() || id.len() > MAX_SUBSCRIPTION_ID {
            ignored.malformed += 1;
            continue;
        }
        if !channels.contains_key(id) {
            let found = store
                .push_channel_by_id(tenant, id)
                .await
                .map_err(|e| unavailable(tenant, &e))?;
            channels.insert(id, found);
        }
        let Some(channel) = channels.get(id).and_then(Option::as_ref) else {
            ignored.note(|i| &mut i.unknown, id);
            continue;
        };
        if !client_state_matches(entry.client_state.as_deref(), channel) {
            ignored.note(|i| &mut i.wrong_client_state, id);
            continue;
        }
        if let Some(event) = entry.lifecycle_event.as_deref() {
            let Some(lifecycle) = Lifecycle::parse(event) else {
                ignored.note(|i| &mut i.unknown_event, id);
                continue;
            };
            apply_lifecycle(state, tenant, channel, lifecycle).await?;
        }
        links.insert(channel.link);
    }
    ignored.log(tenant, entries.len());
    for link in links {
        let scheduled = state
            .runtime
            .sync_link_now(tenant, link)
            .await
            .map_err(|e| unavailable(tenant, &e))?;
        if !scheduled {
            tracing::debug!(tenant = ?tenant.as_str(), link = link.0, "Graph push: the link may not run");
        }
    }
    Ok(())
}

/// Whether `client_state` is the channel's secret (compared as hashes, without an
/// early exit).
fn client_state_matches(client_state: Option<&str>, channel: &PushChannelRecord) -> bool {
    client_state.is_some_and(|given| channel.secret_matches(given))
}

async fn apply_lifecycle(
    state: &AppState,
    tenant: &TenantId,
    channel: &PushChannelRecord,
    lifecycle: Lifecycle,
) -> Result<(), Response> {
    let store = state.store();
    tracing::info!(tenant = ?tenant.as_str(), subscription = ?channel.channel_id, event = ?lifecycle, "Graph push: lifecycle event");
    let done = match lifecycle {
        Lifecycle::ReauthorizationRequired => store
            .mark_push_channel_due(tenant, &channel.channel_id)
            .await
            .map(drop),
        Lifecycle::SubscriptionRemoved => {
            store
                .delete_push_channel(tenant, channel.link, &channel.stream)
                .await
        }
        Lifecycle::Missed => Ok(()),
    };
    done.map_err(|e| unavailable(tenant, &e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_store::secret_hash;

    fn channel(secret: Option<&str>) -> PushChannelRecord {
        PushChannelRecord {
            link: LinkId(1),
            stream: "mail".into(),
            channel_id: "sub-1".into(),
            expires_ms: 1,
            secret_hash: secret.map(secret_hash),
            renewed_ms: 0,
        }
    }

    #[test]
    fn only_the_channel_s_own_client_state_matches() {
        let stored = channel(Some("the-state"));
        assert!(client_state_matches(Some("the-state"), &stored));
        assert!(!client_state_matches(Some("the-statf"), &stored));
        assert!(!client_state_matches(Some(""), &stored));
        assert!(!client_state_matches(None, &stored));
        assert!(!client_state_matches(Some("the-state"), &channel(None)));
    }

    #[test]
    fn validation_tokens_are_decoded_from_the_query() {
        assert_eq!(
            validation_token("validationToken=Validation%3A+Testing%20client").as_deref(),
            Some("Validation: Testing client")
        );
        assert_eq!(validation_token("other=1"), None);
    }

    #[test]
    fn lifecycle_events_are_graph_s_three() {
        assert_eq!(
            Lifecycle::parse("subscriptionRemoved"),
            Some(Lifecycle::SubscriptionRemoved)
        );
        assert_eq!(
            Lifecycle::parse("reauthorizationRequired"),
            Some(Lifecycle::ReauthorizationRequired)
        );
        assert_eq!(Lifecycle::parse("missed"), Some(Lifecycle::Missed));
        assert_eq!(Lifecycle::parse("SubscriptionRemoved"), None);
    }
}
