//! Google Calendar push: `POST /push/google/{tenant}/calendar`, where the web-hook
//! channels Tributary opens with `events.watch` deliver.
//!
//! A notification has no body; its `X-Goog-*` headers name the channel and carry the
//! token Tributary gave it. It is trusted only when the channel (its id and Google's
//! resource id, as stored) is one of the tenant's calendar channels and the token's
//! hash equals the stored one; then the link's sync is brought forward and the answer is
//! `204` at once. The first message of a channel (`sync`) only says it works.

use super::google::{MAX_TENANT_LEN, refuse};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tributary_google::calendar::channel_key;
use tributary_store::TenantId;

/// The route, in axum's path syntax.
pub const ROUTE: &str = "/push/google/{tenant}/calendar";

/// Google's bounds: a channel id is at most 64 characters, a token 256.
const MAX_CHANNEL_ID_LEN: usize = 64;
const MAX_RESOURCE_ID_LEN: usize = 256;
const MAX_TOKEN_LEN: usize = 256;

/// The stream a calendar channel is stored under.
const CALENDAR_STREAM: &str = "calendar";

/// The value of header `name`, when present, readable and at most `max` bytes.
fn header<'a>(headers: &'a HeaderMap, name: &str, max: usize) -> Option<&'a str> {
    headers
        .get(name)?
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= max)
}

/// Receives one Calendar channel notification for `tenant`.
pub async fn receive(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    if state.config.push.is_none() {
        return refuse(StatusCode::NOT_FOUND, "push is not configured");
    }
    if tenant.is_empty() || tenant.len() > MAX_TENANT_LEN {
        return refuse(StatusCode::NOT_FOUND, "no such tenant");
    }
    let (Some(channel), Some(resource)) = (
        header(&headers, "x-goog-channel-id", MAX_CHANNEL_ID_LEN),
        header(&headers, "x-goog-resource-id", MAX_RESOURCE_ID_LEN),
    ) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "not a Google Calendar notification: X-Goog-Channel-ID and X-Goog-Resource-ID are required",
        );
    };
    // The channel was opened a moment ago (its record may not even be saved yet):
    // nothing changed, nothing to schedule.
    if header(&headers, "x-goog-resource-state", 64) == Some("sync") {
        return StatusCode::NO_CONTENT.into_response();
    }
    let tenant = TenantId::new(tenant);
    let Some(token) = header(&headers, "x-goog-channel-token", MAX_TOKEN_LEN) else {
        tracing::info!(tenant = %tenant.as_str(), channel = ?channel, "calendar push refused: no channel token");
        return refuse(
            StatusCode::UNAUTHORIZED,
            "the notification has no channel token",
        );
    };
    let store = state.runtime.store();
    let record = match store
        .push_channel_by_id(&tenant, &channel_key(channel, resource))
        .await
    {
        Ok(Some(record)) if record.stream == CALENDAR_STREAM => record,
        Ok(_) => {
            tracing::info!(tenant = %tenant.as_str(), channel = ?channel, "calendar push refused: unknown channel");
            return refuse(StatusCode::NOT_FOUND, "no such calendar channel");
        }
        Err(error) => {
            tracing::warn!(tenant = %tenant.as_str(), error = ?error.to_string(), "calendar push: cannot read the channel");
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "try again later");
        }
    };
    if !record.secret_matches(token) {
        tracing::info!(tenant = %tenant.as_str(), channel = ?channel, "calendar push refused: wrong channel token");
        return refuse(StatusCode::UNAUTHORIZED, "wrong channel token");
    }
    match state.runtime.sync_link_now(&tenant, record.link).await {
        Ok(scheduled) => {
            if !scheduled {
                tracing::debug!(tenant = %tenant.as_str(), link = record.link.0, "calendar push: the link may not run");
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(error) => {
            tracing::warn!(tenant = %tenant.as_str(), error = ?error.to_string(), "calendar push: cannot schedule the sync");
            refuse(StatusCode::SERVICE_UNAVAILABLE, "try again later")
        }
    }
}
