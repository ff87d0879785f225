//! The Calendar client against the emulated Calendar v3: a full listing of a window
//! across pages equals the user's calendar (series expanded, cancelled occurrences left
//! out), the sync token comes on the last page only, the changes since it show a live
//! reschedule and a cancellation, an expired token is a gone cursor, and a calendar
//! scope left out of the delegation fails the calendar alone, with the fix.

mod common;

use common::start_fixture;
use serde_json::json;
use std::collections::BTreeSet;
use tributary_core::{ProviderErrorKind, Response};
use tributary_emulator::org::meetings::Answer;
use tributary_google::{EventsPage, EventsQuery, GoogleConnector, scopes};

const DAY: i64 = 86_400_000;

/// The window the engine lists by default around `now_ms`.
fn window(now_ms: i64) -> EventsQuery {
    EventsQuery::Window {
        time_min_ms: now_ms - 180 * DAY,
        time_max_ms: now_ms + 30 * DAY,
    }
}

/// Every page of `query` at `page_size`, checking where Google puts its tokens.
async fn list_all(
    connector: &GoogleConnector,
    user: &str,
    query: &EventsQuery,
    page_size: u32,
) -> (Vec<EventsPage>, String) {
    let calendar = connector.calendar(user);
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = calendar
            .events_page(query, token.as_deref(), page_size)
            .await
            .unwrap();
        token = page.next_page_token.clone();
        let sync_token = page.next_sync_token.clone();
        pages.push(page);
        match (token.is_some(), sync_token) {
            (true, None) => {}
            (false, Some(sync_token)) => return (pages, sync_token),
            (more, sync) => panic!("page token {more}, sync token {sync:?}"),
        }
        assert!(pages.len() < 1_000, "the listing ends");
    }
}

/// (iCalUID, original start for an occurrence of a series, start, end) of every listed
/// occurrence.
type Listed = BTreeSet<(String, Option<i64>, i64, i64)>;

fn listed(pages: &[EventsPage]) -> Listed {
    pages
        .iter()
        .flat_map(|p| &p.occurrences)
        .map(|o| {
            let o = &o.occurrence;
            (
                o.ical_uid.clone(),
                o.original_start_ms,
                o.start_ms,
                o.end_ms,
            )
        })
        .collect()
}

#[tokio::test]
async fn a_full_listing_across_pages_equals_the_users_calendar() {
    let fixture = start_fixture().await;
    let user = fixture.member();
    let calendars = &fixture.emulator.state.calendars;
    let now = calendars.read().now_ms;
    let EventsQuery::Window {
        time_min_ms,
        time_max_ms,
    } = window(now)
    else {
        unreachable!()
    };

    let (pages, _) = list_all(&fixture.connector, &user, &window(now), 5).await;
    assert!(pages.len() > 2, "several pages: {}", pages.len());

    let store = calendars.read();
    let mut expected = Listed::new();
    for meeting in store.in_calendar(&user.to_lowercase()) {
        for occurrence in meeting.occurrences() {
            if occurrence.cancelled
                || occurrence.end_ms <= time_min_ms
                || occurrence.start_ms >= time_max_ms
            {
                continue;
            }
            let original = meeting
                .recurrence
                .is_some()
                .then_some(occurrence.original_start_ms);
            expected.insert((
                meeting.ical_uid.clone(),
                original,
                occurrence.start_ms,
                occurrence.end_ms,
            ));
        }
    }
    assert!(
        expected.len() > 10,
        "a realistic calendar: {}",
        expected.len()
    );
    assert_eq!(listed(&pages), expected);

    // People, answers, rooms, types and privacy are the calendar's.
    for occurrence in pages.iter().flat_map(|p| &p.occurrences) {
        let o = &occurrence.occurrence;
        let meeting = store
            .meetings
            .iter()
            .find(|m| m.ical_uid == o.ical_uid)
            .unwrap();
        assert_eq!(o.calendar_owner.as_str(), user.to_lowercase());
        assert_eq!(
            o.organizer.as_ref().map(|a| a.address.as_str().to_owned()),
            Some(meeting.organizer.email.to_lowercase())
        );
        assert_eq!(o.private, meeting.private, "{}", o.ical_uid);
        assert_eq!(o.attendees.len(), meeting.attendees.len(), "{}", o.ical_uid);
        for (got, want) in o.attendees.iter().zip(&meeting.attendees) {
            assert_eq!(got.address.as_str(), want.person.email.to_lowercase());
            assert_eq!(got.resource, want.resource);
            let answer = match want.answer {
                Answer::Accepted => Response::Accepted,
                Answer::Tentative => Response::Tentative,
                Answer::Declined => Response::Declined,
                Answer::NeedsAction => Response::NeedsAction,
            };
            assert_eq!(got.response, answer, "{}", o.ical_uid);
        }
    }
    let private = pages
        .iter()
        .flat_map(|p| &p.occurrences)
        .filter(|o| o.occurrence.private)
        .count();
    let rooms = pages
        .iter()
        .flat_map(|p| &p.occurrences)
        .filter(|o| o.occurrence.attendees.iter().any(|a| a.resource))
        .count();
    assert!(private > 0 && rooms > 0, "private {private}, rooms {rooms}");
    assert!(pages.iter().all(|p| p.unreadable.is_empty()));
}

#[tokio::test]
async fn changes_since_the_sync_token_show_a_reschedule_and_a_cancellation() {
    let fixture = start_fixture().await;
    let user = fixture.member().to_lowercase();
    let calendars = &fixture.emulator.state.calendars;
    let now = calendars.read().now_ms;
    let (_, sync_token) = list_all(&fixture.connector, &user, &window(now), 50).await;

    let (moved, series, original) = {
        let store = calendars.read();
        let mine: Vec<_> = store.in_calendar(&user).cloned().collect();
        let moved = mine
            .iter()
            .find(|m| m.recurrence.is_none() && !m.cancelled && m.start_ms > now)
            .expect("an upcoming single event")
            .clone();
        let series = mine
            .iter()
            .find(|m| m.recurrence.is_some() && !m.cancelled)
            .expect("a series")
            .clone();
        let original = series
            .occurrences()
            .iter()
            .find(|o| !o.cancelled)
            .unwrap()
            .original_start_ms;
        (moved, series, original)
    };
    {
        let mut store = calendars.write();
        store
            .reschedule(
                &moved.id,
                None,
                moved.start_ms + DAY,
                moved.end_ms + DAY,
                now,
            )
            .unwrap();
        store.cancel(&series.id, Some(original), now).unwrap();
    }

    let changes = EventsQuery::Changes { sync_token };
    let (pages, next) = list_all(&fixture.connector, &user, &changes, 50).await;
    let occurrences: Vec<_> = pages.iter().flat_map(|p| &p.occurrences).collect();
    let rescheduled = occurrences
        .iter()
        .find(|o| o.event_id == moved.id)
        .expect("the rescheduled event is among the changes");
    assert_eq!(rescheduled.occurrence.start_ms, moved.start_ms + DAY);
    let cancelled: Vec<&String> = pages.iter().flat_map(|p| &p.cancelled).collect();
    assert_eq!(cancelled.len(), 1, "{cancelled:?}");
    assert!(
        cancelled[0].starts_with(&format!("{}_", series.id)),
        "{cancelled:?}"
    );
    assert_eq!(occurrences.len(), 1, "nothing else changed");

    // Nothing since: an empty page with a new token.
    let (pages, _) = list_all(
        &fixture.connector,
        &user,
        &EventsQuery::Changes { sync_token: next },
        50,
    )
    .await;
    assert!(
        pages
            .iter()
            .all(|p| p.occurrences.is_empty() && p.cancelled.is_empty())
    );
}

#[tokio::test]
async fn an_expired_sync_token_is_a_gone_cursor() {
    let fixture = start_fixture().await;
    let user = fixture.member();
    let now = fixture.emulator.state.calendars.read().now_ms;
    let (_, sync_token) = list_all(&fixture.connector, &user, &window(now), 250).await;
    fixture
        .control
        .post("/calendar/sync-tokens/expire", json!({}))
        .await;
    let error = fixture
        .connector
        .calendar(&user)
        .events_page(&EventsQuery::Changes { sync_token }, None, 250)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ProviderErrorKind::CursorGone, "{error}");
    assert_eq!(error.status(), Some(410));
    assert!(error.message().contains("full sync"), "{error}");
}

#[tokio::test]
async fn a_calendar_scope_not_delegated_fails_the_calendar_alone() {
    let fixture = start_fixture().await;
    let user = fixture.member();
    fixture
        .control
        .put(
            "/delegation",
            json!({"scopes": [scopes::GMAIL_READONLY, scopes::DIRECTORY_USER_READONLY]}),
        )
        .await;
    let now = fixture.emulator.state.calendars.read().now_ms;
    let error = fixture
        .connector
        .calendar(&user)
        .events_page(&window(now), None, 250)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ProviderErrorKind::Unauthorized, "{error}");
    assert_eq!(error.reason(), Some("unauthorized_client"));
    let message = error.message();
    assert!(
        message.starts_with("Client is unauthorized to retrieve access tokens"),
        "Google's words first: {message}"
    );
    assert!(message.contains("Domain-Wide Delegation"), "{message}");
    assert!(message.contains(scopes::CALENDAR_READONLY), "{message}");
    // Mail is delegated still.
    fixture
        .connector
        .gmail(&user)
        .get_profile()
        .await
        .expect("Gmail still answers");
}
