//! A user's calendar through Graph `calendarView/delta` against the Microsoft 365
//! emulator: a full round over a window equals the emulator's own meetings, a delta link
//! sees live changes, an expired one is a gone cursor, a removed permission is
//! `unauthorized` with the calendar permission as the fix, and the window's bounds are
//! exclusive as Graph's.

mod common;

use chrono::{DateTime, Utc};
use common::Emulator;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tributary_core::meeting::Response;
use tributary_core::{EmailAddress, LinkErrorStatus, ProviderErrorKind};
use tributary_emulator::kit::WindowConfig;
use tributary_emulator::org::meetings::{Answer, EventType, Meeting, Occurrence, rfc3339};
use tributary_microsoft::{CalendarClient, CalendarEvent, CalendarWindow, DeltaLink, DeltaOptions};

const DAY_MS: i64 = 86_400_000;

/// What a listing and the emulator's model must agree on for one occurrence.
type Row = (
    String,      // iCalUID
    i64,         // identity: original start, or a single event's start
    i64,         // start
    i64,         // end
    bool,        // all day
    bool,        // private
    String,      // organizer
    Vec<String>, // attendees: "address response [resource]"
);

fn instant(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

fn window(start_ms: i64, end_ms: i64) -> CalendarWindow {
    CalendarWindow::new(instant(start_ms), instant(end_ms)).unwrap()
}

/// A member with a calendar and a mailbox: (Graph user id, primary address).
fn calendar_user(emulator: &Emulator) -> (String, String) {
    let store = emulator.running.state.calendars.read();
    emulator
        .mailbox_users()
        .into_iter()
        .map(|(id, address, _)| (id, address.to_ascii_lowercase()))
        .max_by_key(|(_, address)| store.in_calendar(address).count())
        .expect("a member with a calendar")
}

fn client(emulator: &Emulator, user: &(String, String)) -> CalendarClient {
    emulator
        .connector()
        .calendar(&user.0, EmailAddress::parse(&user.1).unwrap())
}

/// The reference instant the meetings were generated around.
fn reference_ms(emulator: &Emulator) -> i64 {
    emulator.running.state.calendars.read().now_ms
}

/// Every page of a round from its first page: the events, removed ids, pages, and the
/// delta link that ends it.
async fn finish(
    calendar: &CalendarClient,
    first: tributary_microsoft::CalendarPage,
    page_size: u32,
) -> (Vec<CalendarEvent>, Vec<String>, usize, String) {
    let (mut events, mut removed, mut pages) = (Vec::new(), Vec::new(), 0);
    let mut page = first;
    loop {
        pages += 1;
        assert!(page.skipped.is_empty(), "{:?}", page.skipped);
        assert!(
            page.events.len() <= page_size as usize,
            "page size honoured"
        );
        events.extend(page.events);
        removed.extend(page.removed);
        match page.link {
            DeltaLink::Next(next) => {
                page = calendar.delta_follow(&next, Some(page_size)).await.unwrap();
            }
            DeltaLink::Delta(delta) => return (events, removed, pages, delta),
        }
    }
}

/// A first round over `range`, `page_size` events a page: see [`finish`].
async fn full_round(
    calendar: &CalendarClient,
    range: &CalendarWindow,
    page_size: u32,
) -> (Vec<CalendarEvent>, Vec<String>, usize, String) {
    let first = calendar.delta_start(range, Some(page_size)).await.unwrap();
    finish(calendar, first, page_size).await
}

/// The busiest calendar's user, a client of that calendar, and the reference instant.
fn busiest(emulator: &Emulator) -> ((String, String), CalendarClient, i64) {
    let user = calendar_user(emulator);
    let calendar = client(emulator, &user);
    (user, calendar, reference_ms(emulator))
}

fn response_name(response: Response) -> &'static str {
    response.as_str()
}

fn answer_name(answer: Answer) -> &'static str {
    match answer {
        Answer::NeedsAction => Response::NeedsAction.as_str(),
        Answer::Accepted => Response::Accepted.as_str(),
        Answer::Tentative => Response::Tentative.as_str(),
        Answer::Declined => Response::Declined.as_str(),
    }
}

fn listed_row(event: &CalendarEvent) -> Row {
    let o = &event.occurrence;
    let mut attendees: Vec<String> = o
        .attendees
        .iter()
        .map(|a| {
            let room = if a.resource { " resource" } else { "" };
            format!("{} {}{room}", a.address, response_name(a.response))
        })
        .collect();
    attendees.sort();
    (
        o.ical_uid.clone(),
        o.original_start_ms.unwrap_or(o.start_ms),
        o.start_ms,
        o.end_ms,
        o.all_day,
        o.private,
        o.organizer
            .as_ref()
            .map(|a| a.address.to_string())
            .unwrap_or_default(),
        attendees,
    )
}

/// The emulator's model of `calendar` in the window, as Graph documents calendarView:
/// occurrences overlapping the window, cancelled ones left out, Outlook having no
/// working-location events.
fn model_rows(emulator: &Emulator, calendar: &str, start_ms: i64, end_ms: i64) -> BTreeSet<Row> {
    let store = emulator.running.state.calendars.read();
    let mut rows = BTreeSet::new();
    for meeting in store
        .in_calendar(calendar)
        .filter(|m| m.event_type != EventType::WorkingLocation)
    {
        for o in meeting.occurrences() {
            if o.cancelled || o.end_ms <= start_ms || o.start_ms >= end_ms {
                continue;
            }
            let identity = if meeting.recurrence.is_some() {
                o.original_start_ms
            } else {
                o.start_ms
            };
            rows.insert((
                meeting.ical_uid.clone(),
                identity,
                o.start_ms,
                o.end_ms,
                meeting.all_day,
                meeting.private,
                meeting.organizer.email.to_ascii_lowercase(),
                model_attendees(meeting),
            ));
        }
    }
    rows
}

fn model_attendees(meeting: &Meeting) -> Vec<String> {
    let mut attendees: Vec<String> = meeting
        .attendees
        .iter()
        .filter(|a| {
            !a.person
                .email
                .eq_ignore_ascii_case(&meeting.organizer.email)
        })
        .map(|a| {
            let room = if a.resource { " resource" } else { "" };
            format!(
                "{} {}{room}",
                a.person.email.to_ascii_lowercase(),
                answer_name(a.answer)
            )
        })
        .collect();
    attendees.sort();
    attendees
}

#[tokio::test]
async fn a_full_window_across_pages_equals_the_emulator_s_calendar() {
    let emulator = Emulator::start().await;
    let (user, calendar, now) = busiest(&emulator);
    let (start, end) = (now - 180 * DAY_MS, now + 30 * DAY_MS);
    let (events, removed, pages, _) = full_round(&calendar, &window(start, end), 7).await;
    assert!(pages > 2, "several pages: {pages}");
    assert!(removed.is_empty(), "a first round removes nothing");
    let ids: BTreeSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), events.len(), "each event once");
    assert!(
        events
            .iter()
            .all(|e| e.occurrence.calendar_owner.as_str() == user.1)
    );
    let listed: BTreeSet<Row> = events.iter().map(listed_row).collect();
    assert_eq!(listed.len(), events.len(), "each occurrence once");
    let expected = model_rows(&emulator, &user.1, start, end);
    assert!(expected.len() > 10, "a busy calendar: {}", expected.len());
    assert_eq!(listed, expected);
    // The kinds the generator makes all come through: series, all-day, private, oof.
    let occurrences = events.iter().map(|e| &e.occurrence);
    assert!(
        occurrences.clone().any(|o| o.original_start_ms.is_some()),
        "series occurrences carry their original start"
    );
    assert!(occurrences.clone().any(|o| o.all_day));
    assert!(occurrences.clone().any(|o| o.shows_as_out_of_office));
    assert!(occurrences.clone().any(|o| o.private && o.title.is_some()));
    assert!(occurrences.clone().all(|o| o.validate().is_ok()));
}

/// A meeting (or one occurrence of a series) in the emulator's model.
struct Target {
    /// The meeting's id in the control API.
    id: String,
    ical_uid: String,
    /// The occurrence's original start.
    original_ms: i64,
    start_ms: i64,
    end_ms: i64,
}

impl Target {
    fn new(meeting: &Meeting, occurrence: &Occurrence) -> Self {
        Target {
            id: meeting.id.clone(),
            ical_uid: meeting.ical_uid.clone(),
            original_ms: occurrence.original_start_ms,
            start_ms: occurrence.start_ms,
            end_ms: occurrence.end_ms,
        }
    }
}

/// A single meeting of the calendar in the window, and one occurrence of a series.
fn live_targets(
    emulator: &Emulator,
    calendar: &str,
    start_ms: i64,
    end_ms: i64,
) -> (Target, Target) {
    let store = emulator.running.state.calendars.read();
    let meetings: Vec<&Meeting> = store
        .in_calendar(calendar)
        .filter(|m| m.event_type == EventType::Default && !m.cancelled && !m.all_day)
        .collect();
    let single = meetings
        .iter()
        .find(|m| m.recurrence.is_none() && m.start_ms > start_ms && m.end_ms + DAY_MS < end_ms)
        .map(|m| Target::new(m, &m.occurrences()[0]))
        .expect("a single meeting in the window");
    let series = meetings
        .iter()
        .filter(|m| m.recurrence.is_some())
        .find_map(|m| {
            m.occurrences()
                .into_iter()
                .find(|o| !o.cancelled && o.start_ms > start_ms && o.end_ms < end_ms)
                .map(|o| Target::new(m, &o))
        })
        .expect("a series occurrence in the window");
    (single, series)
}

#[tokio::test]
async fn a_delta_link_sees_a_live_reschedule_and_a_cancellation() {
    let emulator = Emulator::start().await;
    let (user, calendar, now) = busiest(&emulator);
    let (start, end) = (now - 180 * DAY_MS, now + 30 * DAY_MS);
    let (events, _, _, delta) = full_round(&calendar, &window(start, end), 50).await;
    let id_of: BTreeMap<(String, i64), String> = events
        .iter()
        .map(|e| {
            let o = &e.occurrence;
            (
                (
                    o.ical_uid.clone(),
                    o.original_start_ms.unwrap_or(o.start_ms),
                ),
                e.id.clone(),
            )
        })
        .collect();

    // Nothing changed: an empty change round, and a new delta link.
    let quiet = calendar.delta_follow(&delta, Some(50)).await.unwrap();
    assert!(quiet.events.is_empty() && quiet.removed.is_empty());
    let DeltaLink::Delta(delta) = quiet.link else {
        panic!("a change round ends with a delta link")
    };

    let (moved, cancelled) = live_targets(&emulator, &user.1, start, end);
    emulator
        .control(
            "POST",
            &format!("/calendar/events/{}/reschedule", moved.id),
            json!({"start": rfc3339(moved.start_ms + DAY_MS), "end": rfc3339(moved.end_ms + DAY_MS)}),
        )
        .await;
    emulator
        .control(
            "POST",
            &format!("/calendar/events/{}/cancel", cancelled.id),
            json!({"occurrence": rfc3339(cancelled.original_ms)}),
        )
        .await;

    let changes = calendar.delta_follow(&delta, Some(50)).await.unwrap();
    let (changed, removed, _, _) = finish(&calendar, changes, 50).await;
    let rescheduled: Vec<&CalendarEvent> = changed
        .iter()
        .filter(|e| e.occurrence.ical_uid == moved.ical_uid)
        .collect();
    assert_eq!(rescheduled.len(), 1, "{changed:?}");
    let o = &rescheduled[0].occurrence;
    assert_eq!(
        (o.start_ms, o.end_ms),
        (moved.start_ms + DAY_MS, moved.end_ms + DAY_MS)
    );
    assert_eq!(
        Some(&rescheduled[0].id),
        id_of.get(&(moved.ical_uid.clone(), moved.original_ms)),
        "the same event id, moved"
    );
    let cancelled_id = &id_of[&(cancelled.ical_uid.clone(), cancelled.original_ms)];
    let reported_cancelled = removed.contains(cancelled_id)
        || changed
            .iter()
            .any(|e| &e.id == cancelled_id && e.occurrence.cancelled);
    assert!(
        reported_cancelled,
        "the cancelled occurrence is reported: {removed:?}"
    );
    assert!(
        changed.len() + removed.len() <= 2,
        "only what changed: {changed:?} {removed:?}"
    );
}

#[tokio::test]
async fn an_expired_delta_link_is_a_gone_cursor_and_a_new_round_works() {
    let emulator = Emulator::start().await;
    let (user, calendar, now) = busiest(&emulator);
    let range = window(now - 30 * DAY_MS, now + 30 * DAY_MS);
    let (events, _, _, delta) = full_round(&calendar, &range, 100).await;
    emulator
        .control(
            "POST",
            "/calendar/sync-tokens/expire",
            json!({"calendar": user.1}),
        )
        .await;
    let error = calendar.delta_follow(&delta, None).await.unwrap_err();
    assert_eq!(error.kind(), ProviderErrorKind::CursorGone, "{error}");
    assert_eq!(error.status(), Some(410));
    assert_eq!(error.reason(), Some("SyncStateNotFound"));
    let (relisted, _, _, _) = full_round(&calendar, &range, 100).await;
    assert_eq!(relisted, events, "a new round lists the same calendar");
}

#[tokio::test]
async fn links_elsewhere_or_of_another_kind_are_never_followed() {
    let emulator = Emulator::start().await;
    let user = calendar_user(&emulator);
    let calendar = client(&emulator, &user);
    let foreign = "https://graph.example.test/v1.0/users/x/calendarView/delta?$deltatoken=a";
    let error = calendar.delta_follow(foreign, None).await.unwrap_err();
    assert!(
        error.message().contains("not under the configured Graph"),
        "{error}"
    );
    let mail = emulator
        .connector()
        .mailbox(&user.0)
        .delta_start("inbox", &DeltaOptions::default())
        .await
        .unwrap();
    let error = calendar
        .delta_follow(mail.link.as_str(), None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ProviderErrorKind::CursorGone, "{error}");
    assert!(error.message().contains("calendarView"), "{error}");
}

#[tokio::test]
async fn without_a_calendar_permission_the_calendar_alone_is_unauthorized() {
    let emulator = Emulator::start().await;
    let user = calendar_user(&emulator);
    let state = emulator.control("GET", "/state", json!(null)).await;
    let roles: Vec<String> = serde_json::from_value(state["apps"][0]["roles"].clone())
        .unwrap_or_else(|_| panic!("roles in {state}"));
    let calendar_roles: Vec<&String> = roles
        .iter()
        .filter(|r| r.starts_with("Calendars."))
        .collect();
    assert!(!calendar_roles.is_empty(), "{roles:?}");
    for role in calendar_roles {
        emulator
            .control("POST", "/permissions/remove", json!({"permission": role}))
            .await;
    }
    // A new connector: a cached token would carry the old roles.
    let now = reference_ms(&emulator);
    let error = client(&emulator, &user)
        .delta_start(&window(now - DAY_MS, now + DAY_MS), None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ProviderErrorKind::Unauthorized, "{error}");
    assert_eq!(error.link_status(), LinkErrorStatus::Unauthorized);
    assert_eq!(error.status(), Some(403));
    assert_eq!(error.reason(), Some("ErrorAccessDenied"));
    let (microsoft, fix) = error
        .message()
        .split_once(" — to capture meetings, ")
        .unwrap_or_else(|| panic!("Microsoft's message, then the fix: {error}"));
    assert_eq!(
        microsoft, "Access is denied. Check credentials and try again.",
        "Microsoft's message, verbatim"
    );
    assert!(
        fix.starts_with("add the Calendars.Read application permission"),
        "{fix}"
    );
    // Mail goes on.
    emulator
        .connector()
        .mailbox(&user.0)
        .delta_start("inbox", &DeltaOptions::default())
        .await
        .expect("mail is still readable");
}

#[tokio::test]
async fn the_window_s_bounds_are_exclusive_and_overlap_counts() {
    let emulator = Emulator::start().await;
    let (user, calendar, now) = busiest(&emulator);
    let (single, _) = live_targets(&emulator, &user.1, now - 180 * DAY_MS, now + 30 * DAY_MS);
    let (uid, start, end) = (single.ical_uid, single.start_ms, single.end_ms);
    let listed = |range: CalendarWindow| {
        let calendar = calendar.clone();
        let uid = uid.clone();
        async move {
            let (events, _, _, _) = full_round(&calendar, &range, 100).await;
            events
                .iter()
                .any(|e| e.occurrence.ical_uid == uid && e.occurrence.start_ms == start)
        }
    };
    let hour = 3_600_000;
    assert!(
        !listed(window(start - hour, start)).await,
        "ending at its start"
    );
    assert!(
        !listed(window(end, end + hour)).await,
        "starting at its end"
    );
    let second = 1_000;
    assert!(
        listed(window(start - hour, start + second)).await,
        "its first second"
    );
    assert!(
        listed(window(end - second, end + hour)).await,
        "its last second"
    );
    assert!(
        listed(window(start - hour, start + 1)).await,
        "a bound inside a second widens to it"
    );
    assert!(
        listed(window(start + 1, end - 1)).await,
        "a window inside it"
    );
}

#[tokio::test]
async fn throttling_is_transient_with_graph_s_retry_after() {
    let emulator = Emulator::start_with(WindowConfig {
        requests_per_window: 1,
        window_seconds: 600.0,
        ..WindowConfig::default()
    })
    .await;
    let (_, calendar, now) = busiest(&emulator);
    let range = window(now - DAY_MS, now + DAY_MS);
    calendar.delta_start(&range, None).await.unwrap();
    let error = calendar.delta_start(&range, None).await.unwrap_err();
    assert_eq!(error.kind(), ProviderErrorKind::Transient, "{error}");
    assert_eq!(error.status(), Some(429));
    let wait = error.retry_after().expect("Graph's Retry-After is kept");
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(600),
        "{wait:?}"
    );
}
