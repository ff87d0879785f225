//! Outlook calendars through Graph: `GET /users/{id}/calendarView/delta` over a window
//! (`startDateTime`/`endDateTime`): a first round of singles, occurrences and exceptions
//! in the window page by page (`@odata.nextLink`, `$skiptoken`) up to an
//! `@odata.deltaLink` (`$deltatoken`); later rounds report what changed, cancelled or
//! moved out of the window as `@removed`. An expired state answers 410
//! `SyncStateNotFound`. The meetings are the organization's neutral ones
//! (`org::meetings`), shared with the Google emulator. See `docs/emulator-calendar.md`.

pub(crate) mod render;
mod token;

use super::access::{self, PermitHolder};
use super::envelope::{self, GraphError, RequestIds, json_response};
use super::mail::finish;
use super::query::{Preferences, QueryOptions};
use super::state::MicrosoftState;
use crate::org::meetings::{EventType, Meeting, MeetingStore, Occurrence};
use crate::org::meetings_control;
use axum::Router;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::Arc;
use token::{CalendarToken, Round};

/// Page size when the client sets no `Prefer: odata.maxpagesize`.
pub const DEFAULT_PAGE: usize = 10;
/// Longest window accepted (Graph's own limit is undocumented; input is bounded).
const MAX_WINDOW_DAYS: i64 = 1830;

pub fn routes() -> Router<Arc<MicrosoftState>> {
    Router::new()
        .route("/v1.0/users/{user}/calendarView/delta", get(delta))
        // The OData function-call form the Graph SDKs send.
        .route("/v1.0/users/{user}/calendarView/delta()", get(delta))
        .route("/v1.0/users/{user}/calendar/calendarView/delta", get(delta))
}

/// The calendars' control routes (`org::meetings_control`) under `/control`.
pub fn control_routes() -> Router<Arc<MicrosoftState>> {
    Router::new().nest(
        "/control",
        meetings_control::routes(|s: &MicrosoftState| &s.calendars),
    )
}

fn window_required() -> GraphError {
    GraphError::bad_request(
        "ErrorInvalidParameter",
        "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
    )
}

/// A window bound; `name` as documented (Graph reads it case-insensitively, and
/// [`QueryOptions`] keeps keys lowercased).
fn instant(query: &QueryOptions, name: &str) -> Result<i64, GraphError> {
    let value = query
        .get(&name.to_ascii_lowercase())
        .ok_or_else(window_required)?;
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_millis())
        .or_else(|_| {
            // Graph also takes a local date-time without offset, read as UTC.
            chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f")
                .map(|t| t.and_utc().timestamp_millis())
        })
        .map_err(|_| {
            GraphError::bad_request(
                "ErrorInvalidParameter",
                format!("The value '{value}' of parameter '{name}' is invalid."),
            )
        })
}

/// The round a request continues, or a fresh first round over its window.
fn requested(
    store: &MeetingStore,
    user_id: &str,
    query: &QueryOptions,
) -> Result<CalendarToken, GraphError> {
    let invalid = || {
        GraphError::bad_request(
            "ErrorInvalidSyncStateData",
            "The SyncStateData is not valid.",
        )
    };
    let carried = query.get("$skiptoken").or_else(|| query.get("$deltatoken"));
    let Some(carried) = carried else {
        let (start, end) = (
            instant(query, "startDateTime")?,
            instant(query, "endDateTime")?,
        );
        if end <= start || end - start > MAX_WINDOW_DAYS * crate::org::meetings::DAY_MS {
            return Err(GraphError::bad_request(
                "ErrorInvalidParameter",
                "The time window given by StartDateTime and EndDateTime is not valid.",
            ));
        }
        return Ok(CalendarToken {
            user_id: user_id.to_string(),
            start_ms: start,
            end_ms: end,
            round: Round::Initial {
                snapshot: store.seq,
                offset: 0,
            },
        });
    };
    let token = CalendarToken::decode(carried).ok_or_else(invalid)?;
    if token.user_id != user_id {
        return Err(invalid());
    }
    Ok(token)
}

/// One instance a round reports: present, or removed from the client's view.
enum Entry<'m> {
    Present(&'m Meeting, Occurrence),
    Removed(String),
}

/// Every single event, occurrence and exception of the calendar (Graph never lists
/// working-location entries: they are not events in Outlook).
fn instances<'m>(store: &'m MeetingStore, calendar: &str) -> Vec<(&'m Meeting, Occurrence)> {
    let mut all: Vec<_> = store
        .in_calendar(calendar)
        .filter(|m| m.event_type != EventType::WorkingLocation)
        .flat_map(|m| m.occurrences().into_iter().map(move |o| (m, o)))
        .collect();
    all.sort_by_cached_key(|(m, o)| (o.start_ms, render::event_id(calendar, m, Some(o))));
    all
}

fn in_window(token: &CalendarToken, occurrence: &Occurrence) -> bool {
    occurrence.end_ms > token.start_ms && occurrence.start_ms < token.end_ms
}

fn entries<'m>(store: &'m MeetingStore, calendar: &str, token: &CalendarToken) -> Vec<Entry<'m>> {
    let all = instances(store, calendar);
    match token.round {
        Round::Initial { snapshot, .. } => all
            .into_iter()
            .filter(|(_, o)| !o.cancelled && o.changed_seq <= snapshot && in_window(token, o))
            .map(|(m, o)| Entry::Present(m, o))
            .collect(),
        Round::Changes { from, snapshot, .. } => all
            .into_iter()
            .filter(|(_, o)| o.changed_seq > from && snapshot.is_none_or(|s| o.changed_seq <= s))
            .map(|(m, o)| {
                if o.cancelled || !in_window(token, &o) {
                    Entry::Removed(render::event_id(calendar, m, Some(&o)))
                } else {
                    Entry::Present(m, o)
                }
            })
            .collect(),
    }
}

fn delta_page(
    state: &MicrosoftState,
    headers: &HeaderMap,
    holder: &PermitHolder,
    user: &str,
    query: &QueryOptions,
) -> Result<Response, GraphError> {
    let preferences = Preferences::from_headers(headers);
    let grant = access::authenticate(state, headers)?;
    let call = access::open_calendar(state, &grant, user)?;
    holder.keep(call.permit);
    let calendar = {
        let tenant = state.tenant();
        let entra = tenant
            .user(&call.user_id)
            .ok_or_else(envelope::mailbox_user_not_found)?;
        entra
            .mail
            .clone()
            .unwrap_or_else(|| entra.user_principal_name.clone())
    };
    let store = state.calendars.read();
    let calendar = store
        .directory
        .served(&calendar)
        .ok_or_else(envelope::mailbox_not_enabled)?
        .to_string();
    let token = requested(&store, &call.user_id, query)?;
    let (from, offset) = match token.round {
        Round::Initial { offset, .. } => (None, offset),
        Round::Changes { from, offset, .. } => (Some(from), offset),
    };
    if let Some(from) = from
        && !store.token_valid(&calendar, from)
    {
        let mut error = envelope::sync_state_not_found(from, store.seq);
        error.location = Some(format!(
            "{}/users/{}/calendarView/delta?startDateTime={}&endDateTime={}",
            state.graph_url(),
            call.user_id,
            crate::org::meetings::rfc3339(token.start_ms),
            crate::org::meetings::rfc3339(token.end_ms),
        ));
        return Err(error);
    }
    // A delta link starts a change round up to what the store holds now.
    let token = match token.round {
        Round::Changes {
            from,
            snapshot: None,
            ..
        } => CalendarToken {
            round: Round::Changes {
                from,
                snapshot: Some(store.seq),
                offset: 0,
            },
            ..token
        },
        _ => token,
    };
    let all = entries(&store, &calendar, &token);
    let size = preferences.max_page_size.unwrap_or(DEFAULT_PAGE).max(1);
    let end = offset.saturating_add(size).min(all.len());
    let value: Vec<Value> = all
        .get(offset..end)
        .unwrap_or_default()
        .iter()
        .map(|entry| match entry {
            Entry::Present(meeting, occurrence) => {
                render::event_json(&calendar, meeting, occurrence)
            }
            Entry::Removed(id) => json!({
                "@odata.type": "#microsoft.graph.event",
                "id": id,
                "@removed": {"reason": "deleted"},
            }),
        })
        .collect();
    let (link_name, link_token) = if end < all.len() {
        (
            "@odata.nextLink",
            format!("$skiptoken={}", token.advanced(end).encode()),
        )
    } else {
        (
            "@odata.deltaLink",
            format!("$deltatoken={}", token.delta().encode()),
        )
    };
    let mut body = json!({
        "@odata.context": format!("{}/$metadata#Collection(event)", state.graph_url()),
        "value": value,
    });
    body[link_name] = json!(format!(
        "{}/users/{}/calendarView/delta?{link_token}",
        state.graph_url(),
        call.user_id
    ));
    Ok(json_response(StatusCode::OK, &body))
}

pub async fn delta(
    State(state): State<Arc<MicrosoftState>>,
    Extension(ids): Extension<RequestIds>,
    Extension(holder): Extension<PermitHolder>,
    Path(user): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = QueryOptions::parse(query.as_deref());
    let result = delta_page(&state, &headers, &holder, &user, &query);
    finish(&state, &ids, &user, "calendarView.delta", result)
}
