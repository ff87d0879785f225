//! `calendarList.list` and `events.list`: which items a request selects (time window,
//! deleted items, event types, `iCalUID`), full or incremental (`syncToken`), in pages,
//! with Google's parameter rules.

use super::events::{Item, millis};
use super::tokens::{PageToken, SyncToken, full_sync_required};
use crate::google::call::QueryParams;
use crate::google::error::ApiError;
use crate::org::meetings::{EventType, MeetingStore};
use axum::http::StatusCode;
use serde_json::{Value, json};

const DEFAULT_PAGE: usize = 250;
const MAX_PAGE: usize = 2500;
/// Parameters Google refuses together with `syncToken`.
const FORBIDDEN_WITH_SYNC_TOKEN: &[&str] = &[
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
];

/// The member whose calendar `calendar_id` names: `primary` or the caller's own
/// address (or alias). Other calendars are not shared with the caller, and a calendar
/// another provider hosts (a mixed organization) is not here: 404.
pub fn resolve_calendar(
    store: &MeetingStore,
    subject: &str,
    calendar_id: &str,
) -> Result<String, ApiError> {
    let own = store
        .directory
        .served(subject)
        .ok_or_else(ApiError::not_found)?;
    let named = if calendar_id == "primary" {
        Some(own)
    } else {
        store.directory.served(calendar_id)
    };
    match named {
        Some(member) if member == own => Ok(own.to_string()),
        _ => Err(ApiError::not_found()),
    }
}

pub fn calendar_list(
    store: &MeetingStore,
    subject: &str,
    params: &QueryParams<'_>,
) -> Result<Value, ApiError> {
    let calendar = resolve_calendar(store, subject, "primary")?;
    let list_key = format!("calendarList:{calendar}");
    let mut items = Vec::new();
    if let Some(token) = params.get("syncToken") {
        for name in ["minAccessRole", "showOwnOrganizationOnly"] {
            forbid_with_sync_token(params, name)?;
        }
        let token = SyncToken::decode(token)?;
        if token.calendar != list_key || !store.token_valid(&calendar, token.seq) {
            return Err(full_sync_required());
        }
    } else {
        let zone = store
            .in_calendar(&calendar)
            .find(|m| m.organizer.email == calendar)
            .map_or("UTC", |m| m.zone_name());
        items.push(json!({
            "kind": "calendar#calendarListEntry",
            "etag": "\"1\"",
            "id": calendar,
            "summary": calendar,
            "timeZone": zone,
            "colorId": "14",
            "backgroundColor": "#9fe1e7",
            "foregroundColor": "#000000",
            "selected": true,
            "accessRole": "owner",
            "defaultReminders": [{"method": "popup", "minutes": 10}],
            "primary": true,
            "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
        }));
    }
    Ok(json!({
        "kind": "calendar#calendarList",
        "etag": format!("\"{}\"", store.seq),
        "nextSyncToken": SyncToken { calendar: list_key, seq: store.seq }.encode(),
        "items": items,
    }))
}

/// What one `events.list` call asked for.
struct EventsQuery {
    since: Option<u64>,
    page: Option<PageToken>,
    single_events: bool,
    show_deleted: bool,
    max_results: usize,
    max_attendees: Option<usize>,
    time_min: Option<i64>,
    time_max: Option<i64>,
    updated_min: Option<i64>,
    order_by_updated: bool,
    event_types: Vec<EventType>,
    ical_uid: Option<String>,
}

fn forbid_with_sync_token(params: &QueryParams<'_>, name: &str) -> Result<(), ApiError> {
    if params.get(name).is_some() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            format!("The parameter {name} cannot be used together with syncToken."),
        ));
    }
    Ok(())
}

fn instant(params: &QueryParams<'_>, name: &str) -> Result<Option<i64>, ApiError> {
    params
        .get(name)
        .map(|value| {
            chrono::DateTime::parse_from_rfc3339(value)
                .map(|t| t.timestamp_millis())
                .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "badRequest", "Bad Request"))
        })
        .transpose()
}

fn event_type(name: &str) -> Result<Option<EventType>, ApiError> {
    match name {
        "default" => Ok(Some(EventType::Default)),
        "focusTime" => Ok(Some(EventType::FocusTime)),
        "outOfOffice" => Ok(Some(EventType::OutOfOffice)),
        "workingLocation" => Ok(Some(EventType::WorkingLocation)),
        // Known types the emulator never generates.
        "birthday" | "fromGmail" => Ok(None),
        other => Err(ApiError::invalid_argument(format!(
            "Invalid value for eventTypes: {other}"
        ))),
    }
}

fn parse_query(
    store: &MeetingStore,
    calendar: &str,
    params: &QueryParams<'_>,
) -> Result<EventsQuery, ApiError> {
    let since = match params.get("syncToken") {
        None => None,
        Some(token) => {
            for name in FORBIDDEN_WITH_SYNC_TOKEN {
                forbid_with_sync_token(params, name)?;
            }
            if params
                .get("showDeleted")
                .is_some_and(|v| v.eq_ignore_ascii_case("false"))
            {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    "showDeleted=false cannot be used together with syncToken: deleted events are always included.",
                ));
            }
            let token = SyncToken::decode(token)?;
            if token.calendar != calendar || !store.token_valid(calendar, token.seq) {
                return Err(full_sync_required());
            }
            Some(token.seq)
        }
    };
    let single_events = params.flag("singleEvents")?;
    let order_by_updated = match params.get("orderBy") {
        None => false,
        Some("updated") => true,
        Some("startTime") if single_events => false,
        Some("startTime") => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "badRequest",
                "The requested ordering is not available for the particular query.",
            ));
        }
        Some(other) => {
            return Err(ApiError::invalid_argument(format!(
                "Invalid value for orderBy: {other}"
            )));
        }
    };
    let (time_min, time_max) = (instant(params, "timeMin")?, instant(params, "timeMax")?);
    if let (Some(min), Some(max)) = (time_min, time_max)
        && max <= min
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "timeRangeEmpty",
            "The specified time range is empty.",
        ));
    }
    let updated_min = instant(params, "updatedMin")?;
    let max_attendees = match params.get("maxAttendees") {
        None => None,
        Some(v) => Some(v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::invalid_argument(format!("Invalid value for maxAttendees: {v}"))
        })?),
    };
    let mut event_types = Vec::new();
    for name in params.all("eventTypes") {
        event_types.extend(event_type(name)?);
    }
    Ok(EventsQuery {
        since,
        page: params.get("pageToken").map(PageToken::decode).transpose()?,
        single_events,
        show_deleted: params.flag("showDeleted")? || since.is_some() || updated_min.is_some(),
        max_results: params.max_results(DEFAULT_PAGE, MAX_PAGE)?,
        max_attendees,
        time_min,
        time_max,
        updated_min,
        order_by_updated,
        event_types,
        ical_uid: params.get("iCalUID").map(str::to_string),
    })
}

/// Every item of the calendar the query selects, in listing order.
fn select<'s>(
    store: &'s MeetingStore,
    calendar: &'s str,
    query: &EventsQuery,
    snapshot: u64,
) -> Vec<Item<'s>> {
    let mut items = Vec::new();
    for meeting in store.in_calendar(calendar) {
        if meeting.recurrence.is_none() {
            items.push(Item::Whole(meeting));
            continue;
        }
        if !query.single_events {
            items.push(Item::Whole(meeting));
        }
        for occurrence in meeting.occurrences() {
            if query.single_events || occurrence.exception {
                items.push(Item::Instance(meeting, occurrence));
            }
        }
    }
    items.retain(|item| {
        let (start, end) = item.span();
        item.changed_seq() <= snapshot
            && query.since.is_none_or(|since| item.changed_seq() > since)
            && (query.show_deleted || !item.cancelled())
            && query.time_min.is_none_or(|min| end > min)
            && query.time_max.is_none_or(|max| start < max)
            && query.updated_min.is_none_or(|min| item.updated_ms() >= min)
            && (query.event_types.is_empty() || query.event_types.contains(&item.event_type()))
            && query
                .ical_uid
                .as_ref()
                .is_none_or(|uid| *uid == item.meeting().ical_uid)
    });
    if query.order_by_updated {
        items.sort_by_cached_key(|item| (item.updated_ms(), item.id()));
    } else {
        items.sort_by_cached_key(|item| (item.span().0, item.id()));
    }
    items
}

pub fn events_list(
    store: &MeetingStore,
    calendar: &str,
    params: &QueryParams<'_>,
) -> Result<Value, ApiError> {
    let query = parse_query(store, calendar, params)?;
    let (offset, snapshot) = query
        .page
        .map_or((0, store.seq), |p| (p.offset, p.snapshot));
    let selected = select(store, calendar, &query, snapshot);
    let end = offset.saturating_add(query.max_results).min(selected.len());
    let items: Vec<Value> = selected
        .get(offset..end)
        .unwrap_or_default()
        .iter()
        .map(|item| item.render(calendar, query.max_attendees))
        .collect();
    let updated = selected
        .iter()
        .map(Item::updated_ms)
        .max()
        .unwrap_or(store.now_ms);
    let mut page = json!({
        "kind": "calendar#events",
        "etag": format!("\"{snapshot}\""),
        "summary": calendar,
        "description": "",
        "updated": millis(updated),
        "timeZone": store
            .in_calendar(calendar)
            .find(|m| m.organizer.email == calendar)
            .map_or("UTC", |m| m.zone_name()),
        "accessRole": "owner",
        "defaultReminders": [{"method": "popup", "minutes": 10}],
        "items": items,
    });
    if end < selected.len() {
        page["nextPageToken"] = json!(
            PageToken {
                offset: end,
                snapshot
            }
            .encode()
        );
    } else {
        page["nextSyncToken"] = json!(
            SyncToken {
                calendar: calendar.to_string(),
                seq: snapshot
            }
            .encode()
        );
    }
    Ok(page)
}
