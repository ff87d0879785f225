//! Google Calendar API v3, read side, on each user's primary calendar: `calendarList.list`
//! and `events.list` under `/calendar/v3/` (what google-api-python-client's
//! `api_endpoint` needs for Calendar's `calendar/v3/` service path). The meetings are
//! the organization's neutral ones (`org::meetings`); this module renders them as
//! Google does. See `docs/emulator-calendar.md`.

pub mod control;
mod events;
pub(crate) mod listing;
mod tokens;

use super::auth::scopes;
use super::call::{QueryParams, authenticate, charged, json_response};
use super::error::ApiError;
use super::quota::GmailMethod;
use super::state::EmulatorState;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

/// Every scope that lets a token read events.
pub(crate) const CALENDAR_READ_SCOPES: &[&str] = &[
    scopes::CALENDAR_READONLY,
    "https://www.googleapis.com/auth/calendar",
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/calendar.events.readonly",
];
/// Scopes that let a token read the calendar list.
const CALENDAR_LIST_SCOPES: &[&str] = &[
    scopes::CALENDAR_READONLY,
    "https://www.googleapis.com/auth/calendar",
    "https://www.googleapis.com/auth/calendar.calendarlist.readonly",
];

pub(crate) fn routes() -> Router<Arc<EmulatorState>> {
    Router::new()
        .route("/calendar/v3/users/me/calendarList", get(calendar_list))
        .route(
            "/calendar/v3/calendars/{calendar_id}/events",
            get(events_list),
        )
}

/// The impersonated user, once the token and its calendar scope are checked.
fn calendar_subject(
    state: &EmulatorState,
    headers: &HeaderMap,
    accepted: &[&str],
) -> Result<Arc<str>, ApiError> {
    let grant = authenticate(state, headers)?;
    if !grant.scopes.iter().any(|s| accepted.contains(&s.as_str())) {
        return Err(ApiError::insufficient_permissions());
    }
    grant.subject.ok_or_else(|| {
        // A token without `sub` is the service account's own: it has no primary calendar.
        ApiError::not_found()
    })
}

/// Runs a Calendar method: caller checks, quota, faults, counters.
pub(crate) async fn calendar_call<F>(
    state: &Arc<EmulatorState>,
    headers: &HeaderMap,
    method: GmailMethod,
    accepted: &[&str],
    handler: F,
) -> Response
where
    F: FnOnce(&EmulatorState, &str) -> Result<Response, ApiError>,
{
    let subject = match calendar_subject(state, headers, accepted) {
        Ok(subject) => subject,
        Err(error) => return error.into_response(),
    };
    charged(state, &subject, method, |_| handler(state, &subject)).await
}

async fn calendar_list(
    State(state): State<Arc<EmulatorState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    calendar_call(
        &state,
        &headers,
        GmailMethod::CalendarListList,
        CALENDAR_LIST_SCOPES,
        |state, subject| {
            let params = QueryParams::parse(query.as_deref());
            let store = state.calendars.read();
            let list = listing::calendar_list(&store, subject, &params)?;
            Ok(json_response(StatusCode::OK, &list))
        },
    )
    .await
}

async fn events_list(
    State(state): State<Arc<EmulatorState>>,
    Path(calendar_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    calendar_call(
        &state,
        &headers,
        GmailMethod::CalendarEventsList,
        CALENDAR_READ_SCOPES,
        |state, subject| {
            let params = QueryParams::parse(query.as_deref());
            let store = state.calendars.read();
            let calendar = listing::resolve_calendar(&store, subject, &calendar_id)?;
            let page = listing::events_list(&store, &calendar, &params)?;
            Ok(json_response(StatusCode::OK, &page))
        },
    )
    .await
}
