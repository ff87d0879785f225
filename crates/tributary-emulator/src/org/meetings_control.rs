//! The control API of the calendars, the same for every provider (each nests it under
//! its own `/control`): the meetings' ground truth at an instant, the meetings of a
//! calendar, and live changes (create, reschedule, cancel, answer, expire sync tokens).
//! Reference: `docs/emulator-calendar.md`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::meetings::{Answer, MeetingError, MeetingStore, NewMeeting, SharedMeetings, rfc3339};
use super::meetings_truth::{MeetingPolicy, MeetingsTruth};
use crate::kit::control::{Answer as Reply, Body, ControlError, created, ok};

/// The routes, relative to the provider's `/control`, over the meetings `pick` finds in
/// the state `S`.
pub fn routes<S: Send + Sync + 'static>(pick: fn(&S) -> &SharedMeetings) -> Router<Arc<S>> {
    Router::new()
        .route(
            "/calendar/truth",
            get(
                move |State(s): State<Arc<S>>, Query(q): Query<TruthQuery>| async move {
                    truth(pick(&s), q)
                },
            ),
        )
        .route(
            "/calendar/events",
            get(
                move |State(s): State<Arc<S>>, Query(q): Query<EventsQuery>| async move {
                    events(pick(&s), q)
                },
            )
            .post(
                move |State(s): State<Arc<S>>, Body(b): Body<CreateBody>| async move {
                    create(pick(&s), b)
                },
            ),
        )
        .route(
            "/calendar/events/{id}/reschedule",
            post(
                move |State(s): State<Arc<S>>,
                      Path(id): Path<String>,
                      Body(b): Body<RescheduleBody>| async move {
                    reschedule(pick(&s), &id, b)
                },
            ),
        )
        .route(
            "/calendar/events/{id}/cancel",
            post(
                move |State(s): State<Arc<S>>,
                      Path(id): Path<String>,
                      Body(b): Body<CancelBody>| async move { cancel(pick(&s), &id, b) },
            ),
        )
        .route(
            "/calendar/events/{id}/answer",
            post(
                move |State(s): State<Arc<S>>,
                      Path(id): Path<String>,
                      Body(b): Body<AnswerBody>| async move { answer(pick(&s), &id, b) },
            ),
        )
        .route(
            "/calendar/sync-tokens/expire",
            post(
                move |State(s): State<Arc<S>>, Body(b): Body<ExpireBody>| async move {
                    expire(pick(&s), b)
                },
            ),
        )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TruthQuery {
    /// RFC 3339; the organization's reference instant when absent.
    now: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// A member's address: only the meetings in that calendar.
    calendar: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttendeeBody {
    email: String,
    #[serde(default = "needs_action")]
    response: Answer,
}

fn needs_action() -> Answer {
    Answer::NeedsAction
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    organizer: String,
    #[serde(default)]
    attendees: Vec<AttendeeBody>,
    summary: String,
    start: String,
    end: String,
    #[serde(default)]
    private: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RescheduleBody {
    start: String,
    end: String,
    /// The original start of one occurrence of a series (RFC 3339); absent: the whole.
    occurrence: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    occurrence: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerBody {
    attendee: String,
    response: Answer,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpireBody {
    /// A member's address; absent: every calendar.
    calendar: Option<String>,
}

/// One meeting as the control API lists it.
#[derive(Debug, Serialize)]
pub struct MeetingSummary {
    id: String,
    ical_uid: String,
    summary: String,
    organizer: String,
    start: String,
    end: String,
    all_day: bool,
    event_type: super::meetings::EventType,
    private: bool,
    cancelled: bool,
    /// Original starts of every occurrence (a series has several).
    occurrences: Vec<String>,
    calendars: Vec<String>,
}

fn instant(field: &str, value: &str) -> Result<i64, ControlError> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_millis())
        .map_err(|e| ControlError::bad_request(format!("{field}: not an RFC 3339 instant ({e})")))
}

fn refused(error: MeetingError) -> ControlError {
    match error {
        MeetingError::UnknownMeeting(_) => ControlError::not_found(error.to_string()),
        _ => ControlError::bad_request(error.to_string()),
    }
}

fn optional_instant(field: &str, value: Option<&str>) -> Result<Option<i64>, ControlError> {
    value.map(|v| instant(field, v)).transpose()
}

/// When a live change happens: the emulator's clock.
fn now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn truth(meetings: &SharedMeetings, query: TruthQuery) -> Reply {
    let store = meetings.read();
    let now_ms = optional_instant("now", query.now.as_deref())?.unwrap_or(store.now_ms);
    ok(MeetingsTruth::compute(
        &store,
        MeetingPolicy::default_at(now_ms),
    ))
}

fn summary(store: &MeetingStore, meeting: &super::meetings::Meeting) -> MeetingSummary {
    MeetingSummary {
        id: meeting.id.clone(),
        ical_uid: meeting.ical_uid.clone(),
        summary: meeting.summary.clone(),
        organizer: meeting.organizer.email.clone(),
        start: rfc3339(meeting.start_ms),
        end: rfc3339(meeting.end_ms),
        all_day: meeting.all_day,
        event_type: meeting.event_type,
        private: meeting.private,
        cancelled: meeting.cancelled,
        occurrences: meeting
            .occurrences()
            .iter()
            .map(|o| rfc3339(o.original_start_ms))
            .collect(),
        calendars: store.calendars_of(meeting).into_iter().collect(),
    }
}

fn events(meetings: &SharedMeetings, query: EventsQuery) -> Reply {
    let store = meetings.read();
    let calendar = match &query.calendar {
        Some(address) => Some(
            store
                .directory
                .member(address)
                .ok_or_else(|| ControlError::not_found(format!("{address} has no calendar")))?
                .to_string(),
        ),
        None => None,
    };
    let list: Vec<MeetingSummary> = store
        .meetings
        .iter()
        .filter(|m| {
            calendar
                .as_ref()
                .is_none_or(|c| store.calendars_of(m).contains(c))
        })
        .map(|m| summary(&store, m))
        .collect();
    ok(list)
}

fn create(meetings: &SharedMeetings, body: CreateBody) -> Reply {
    let new = NewMeeting {
        organizer: body.organizer,
        attendees: body
            .attendees
            .into_iter()
            .map(|a| (a.email, a.response))
            .collect(),
        summary: body.summary,
        start_ms: instant("start", &body.start)?,
        end_ms: instant("end", &body.end)?,
        private: body.private,
    };
    let mut store = meetings.write();
    let meeting = store.create(new, now()).map_err(refused)?.clone();
    created(summary(&store, &meeting))
}

fn reschedule(meetings: &SharedMeetings, id: &str, body: RescheduleBody) -> Reply {
    let occurrence = optional_instant("occurrence", body.occurrence.as_deref())?;
    let (start, end) = (instant("start", &body.start)?, instant("end", &body.end)?);
    let mut store = meetings.write();
    store
        .reschedule(id, occurrence, start, end, now())
        .map_err(refused)?;
    changed(&store, id)
}

fn cancel(meetings: &SharedMeetings, id: &str, body: CancelBody) -> Reply {
    let occurrence = optional_instant("occurrence", body.occurrence.as_deref())?;
    let mut store = meetings.write();
    store.cancel(id, occurrence, now()).map_err(refused)?;
    changed(&store, id)
}

fn answer(meetings: &SharedMeetings, id: &str, body: AnswerBody) -> Reply {
    let mut store = meetings.write();
    store
        .answer(id, &body.attendee, body.response, now())
        .map_err(refused)?;
    changed(&store, id)
}

fn changed(store: &MeetingStore, id: &str) -> Reply {
    let meeting = store
        .find(id)
        .ok_or_else(|| ControlError::not_found(format!("no meeting with id {id}")))?;
    ok(summary(store, meeting))
}

fn expire(meetings: &SharedMeetings, body: ExpireBody) -> Reply {
    let mut store = meetings.write();
    let calendar = match &body.calendar {
        Some(address) => Some(
            store
                .directory
                .member(address)
                .ok_or_else(|| ControlError::not_found(format!("{address} has no calendar")))?
                .to_string(),
        ),
        None => None,
    };
    store.expire_tokens(calendar.as_deref());
    ok(serde_json::json!({"expired": calendar.unwrap_or_else(|| "*".to_string())}))
}
