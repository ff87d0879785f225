//! Calendar v3 push: `events.watch` opens a web-hook channel on the caller's primary
//! calendar, `channels.stop` closes it. A channel is told `sync` at once, then `exists`
//! after each change to the calendar's events, in requests without a body whose
//! `X-Goog-*` headers say which channel and resource changed. Channels do not renew.

use super::super::app::now_ms;
use super::super::calendar::listing::resolve_calendar;
use super::super::calendar::{CALENDAR_READ_SCOPES, calendar_call};
use super::super::call::json_response;
use super::super::error::ApiError;
use super::super::quota::GmailMethod;
use super::super::state::EmulatorState;
use crate::kit::push::{Outgoing, loopback_endpoint};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// A channel's longest (and default) life: 7 days [U].
pub const MAX_LIFETIME_MS: i64 = 7 * 86_400_000;
/// Google answers a web hook's notification within its own deadline; 10 s as Pub/Sub.
const ACK_DEADLINE: Duration = Duration::from_secs(10);
const MAX_CHANNEL_ID: usize = 64;
const MAX_TOKEN: usize = 256;
const MAX_CHANNELS: usize = 10_000;

/// One open channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Channel {
    pub id: String,
    pub resource_id: String,
    pub resource_uri: String,
    #[serde(skip)]
    pub token: Option<String>,
    pub address: String,
    /// The member whose calendar is watched.
    pub calendar: String,
    pub expiration_ms: i64,
    /// The calendars' change stamp notifications have covered.
    pub seen_seq: u64,
    /// The last `X-Goog-Message-Number` sent.
    pub message_number: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WatchRequest {
    #[serde(default)]
    id: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    address: String,
    token: Option<String>,
    /// Epoch ms, as a string or a number.
    expiration: Option<serde_json::Value>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid_argument(message)
}

fn requested_expiration(value: Option<&serde_json::Value>, now: i64) -> Result<i64, ApiError> {
    let longest = now + MAX_LIFETIME_MS;
    let Some(value) = value else {
        return Ok(longest);
    };
    let ms = value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
        .ok_or_else(|| invalid("expiration must be epoch milliseconds"))?;
    if ms <= now {
        return Err(invalid("expiration must be in the future"));
    }
    Ok(ms.min(longest))
}

/// Checks the channel request; answers its address.
fn check(request: &WatchRequest) -> Result<Url, ApiError> {
    let id_ok = !request.id.is_empty()
        && request.id.len() <= MAX_CHANNEL_ID
        && request
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_+/=".contains(c));
    if !id_ok {
        return Err(invalid(format!(
            "channel id must be 1 to {MAX_CHANNEL_ID} characters of [A-Za-z0-9-_+/=]"
        )));
    }
    if !matches!(request.kind.as_str(), "web_hook" | "webhook") {
        return Err(invalid("Invalid channel type: use web_hook"));
    }
    if request.token.as_ref().is_some_and(|t| t.len() > MAX_TOKEN) {
        return Err(invalid(format!("token is at most {MAX_TOKEN} characters")));
    }
    loopback_endpoint(&request.address).map_err(|e| invalid(format!("address: {e}")))
}

/// `POST calendar/v3/calendars/{calendarId}/events/watch`.
pub async fn watch(
    State(state): State<Arc<EmulatorState>>,
    Path(calendar_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request: WatchRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return invalid(format!("Invalid JSON payload received. {e}")).into_response(),
    };
    let mut opened: Option<Channel> = None;
    let response = calendar_call(
        &state,
        &headers,
        GmailMethod::CalendarEventsWatch,
        CALENDAR_READ_SCOPES,
        |state, subject| {
            let address = check(&request)?;
            let now = now_ms();
            let expiration_ms = requested_expiration(request.expiration.as_ref(), now)?;
            let (calendar, seq) = {
                let store = state.calendars.read();
                (resolve_calendar(&store, subject, &calendar_id)?, store.seq)
            };
            let mut channels = state.push.channels();
            if channels.contains_key(&request.id) {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "channelIdNotUnique",
                    format!("Channel id {} not unique", request.id),
                ));
            }
            if channels.len() >= MAX_CHANNELS {
                return Err(invalid(format!("at most {MAX_CHANNELS} channels")));
            }
            let digest = Sha256::digest(format!("{calendar}|events").as_bytes());
            let channel = Channel {
                id: request.id.clone(),
                resource_id: hex::encode(&digest[..14]),
                resource_uri: format!(
                    "{}/calendar/v3/calendars/{}/events?alt=json",
                    state.base_url,
                    form_urlencoded::byte_serialize(calendar.as_bytes()).collect::<String>()
                ),
                token: request.token.clone(),
                address: address.to_string(),
                calendar,
                expiration_ms,
                seen_seq: seq,
                message_number: 1,
            };
            let answer = json!({
                "kind": "api#channel",
                "id": channel.id,
                "resourceId": channel.resource_id,
                "resourceUri": channel.resource_uri,
                "token": channel.token,
                "expiration": expiration_ms.to_string(),
            });
            channels.insert(channel.id.clone(), channel.clone());
            opened = Some(channel);
            Ok(json_response(StatusCode::OK, &answer))
        },
    )
    .await;
    if let Some(channel) = opened {
        notify(&state, &channel, "sync");
    }
    response
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StopRequest {
    #[serde(default)]
    id: String,
    #[serde(default)]
    resource_id: String,
}

/// `POST calendar/v3/channels/stop` `{id, resourceId}` → 204.
pub async fn stop(
    State(state): State<Arc<EmulatorState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request: StopRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return invalid(format!("Invalid JSON payload received. {e}")).into_response(),
    };
    calendar_call(
        &state,
        &headers,
        GmailMethod::CalendarChannelsStop,
        CALENDAR_READ_SCOPES,
        |state, _| {
            let mut channels = state.push.channels();
            match channels.get(&request.id) {
                Some(c) if c.resource_id == request.resource_id => {
                    channels.remove(&request.id);
                    Ok(StatusCode::NO_CONTENT.into_response())
                }
                _ => Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "notFound",
                    format!("Channel '{}' not found", request.id),
                )),
            }
        },
    )
    .await
}

/// `Tue, 19 Nov 2013 01:13:52 GMT`.
fn http_date(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// Sends `channel` a body-less notification in `resource_state` (`sync` or `exists`).
fn notify(state: &EmulatorState, channel: &Channel, resource_state: &str) {
    let Ok(url) = Url::parse(&channel.address) else {
        return;
    };
    let mut headers = vec![
        ("X-Goog-Channel-ID".to_string(), channel.id.clone()),
        (
            "X-Goog-Channel-Expiration".to_string(),
            http_date(channel.expiration_ms),
        ),
        (
            "X-Goog-Resource-ID".to_string(),
            channel.resource_id.clone(),
        ),
        (
            "X-Goog-Resource-URI".to_string(),
            channel.resource_uri.clone(),
        ),
        (
            "X-Goog-Resource-State".to_string(),
            resource_state.to_string(),
        ),
        (
            "X-Goog-Message-Number".to_string(),
            channel.message_number.to_string(),
        ),
    ];
    if let Some(token) = &channel.token {
        headers.push(("X-Goog-Channel-Token".to_string(), token.clone()));
    }
    state.push.outbox.send(Outgoing {
        url,
        headers,
        body: Vec::new(),
        ack_deadline: ACK_DEADLINE,
        label: channel.id.clone(),
    });
}

/// Tells every open channel whose calendar changed (run by the push ticker).
pub fn scan(state: &Arc<EmulatorState>) {
    let channels: Vec<Channel> = {
        let mut channels = state.push.channels();
        let now = now_ms();
        channels.retain(|_, c| c.expiration_ms > now);
        channels.values().cloned().collect()
    };
    if channels.is_empty() {
        return;
    }
    // (channel, the stamp now covered, whether its calendar changed up to it)
    let changed: Vec<(Channel, u64, bool)> = {
        let store = state.calendars.read();
        channels
            .into_iter()
            .filter(|c| store.seq > c.seen_seq)
            .map(|c| {
                let touched = store
                    .in_calendar(&c.calendar)
                    .any(|m| m.last_change() > c.seen_seq);
                (c, store.seq, touched)
            })
            .collect()
    };
    for (channel, covered, touched) in changed {
        let sent = {
            let mut channels = state.push.channels();
            let Some(current) = channels.get_mut(&channel.id) else {
                continue;
            };
            if current.seen_seq >= covered {
                continue;
            }
            current.seen_seq = covered;
            if !touched {
                continue;
            }
            current.message_number += 1;
            current.clone()
        };
        notify(state, &sent, "exists");
    }
}
