//! Calendars: the meeting generator, the meetings' ground truth under the default
//! policy, Google Calendar v3 `events.list` (pages, sync tokens, cancellations, errors)
//! and the calendar control API, over real loopback HTTP.

mod common;

use common::{TestEmulator, assert_api_error, emulator_with};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use tributary_emulator::org::meetings::{
    Answer, Attendee, DAY_MS, Directory, EventType, HOUR_MS, Meeting, MeetingStore, Person,
    ROOM_DOMAIN, Recurrence,
};
use tributary_emulator::org::meetings_truth::{MeetingPolicy, MeetingsTruth};
use tributary_emulator::org::{DEFAULT_NOW_MS, OrgConfig, generate};
use tributary_emulator::server::auth::scopes;
use tributary_emulator::server::quota::QuotaConfig;
use tributary_emulator::server::{EmulatorConfig, OrgSource};

fn org_config() -> OrgConfig {
    OrgConfig {
        seed: 11,
        users: 6,
        messages_per_user: 20,
        now_ms: DEFAULT_NOW_MS,
    }
}

fn generated_store() -> MeetingStore {
    MeetingStore::generate(&generate(&org_config()).org)
}

async fn calendar_emulator() -> TestEmulator {
    emulator_with(EmulatorConfig {
        organization: OrgSource::Generate(org_config()),
        quota: QuotaConfig::unlimited(),
        ..EmulatorConfig::default()
    })
    .await
}

// ---------------------------------------------------------------------------------------
// Generator

#[test]
fn the_generator_is_deterministic_and_covers_every_kind_of_meeting() {
    let store = generated_store();
    assert_eq!(store.meetings, generated_store().meetings);
    let meetings = &store.meetings;
    let any = |f: &dyn Fn(&Meeting) -> bool| meetings.iter().any(f);
    assert!(any(&|m| m.event_type == EventType::FocusTime));
    assert!(any(&|m| m.event_type == EventType::OutOfOffice && m.all_day));
    assert!(any(&|m| m.event_type == EventType::WorkingLocation));
    assert!(any(&|m| m.private));
    assert!(any(&|m| m.cancelled));
    assert!(any(&|m| m.all_day && m.event_type == EventType::Default));
    assert!(any(&|m| m.attendees.iter().any(|a| a.resource)));
    assert!(any(&|m| m
        .attendees
        .iter()
        .any(|a| a.answer == Answer::Declined)));
    assert!(any(&|m| m
        .attendees
        .iter()
        .any(|a| a.answer == Answer::Tentative)));
    assert!(any(&|m| m.attendees.len() > 25));
    assert!(any(&|m| !store.directory.is_internal(&m.organizer.email)));
    // A series with an occurrence moved and one cancelled.
    assert!(any(&|m| {
        m.recurrence.is_some()
            && m.exceptions.values().any(|e| e.cancelled)
            && m.exceptions.values().any(|e| !e.cancelled)
    }));
    // One invitation in several members' calendars.
    assert!(any(&|m| store.calendars_of(m).len() >= 2));
    // Bounded, and inside the window.
    let members = store.directory.members.len();
    assert!(meetings.len() <= members * 20 + 2, "{}", meetings.len());
    for meeting in meetings {
        let (start, end) = meeting.span();
        assert!(
            start >= DEFAULT_NOW_MS - 200 * DAY_MS,
            "{}",
            meeting.summary
        );
        assert!(end <= DEFAULT_NOW_MS + 32 * DAY_MS, "{}", meeting.summary);
    }
}

// ---------------------------------------------------------------------------------------
// Ground truth, rule by rule, on a hand-built calendar

const NOW: i64 = DEFAULT_NOW_MS;

fn directory() -> Directory {
    let mut directory = Directory {
        domains: vec!["acme.example".into()],
        ..Directory::default()
    };
    for (email, name) in [("ann@acme.example", "Ann"), ("bob@acme.example", "Bob")] {
        directory.members.insert(email.into(), name.into());
        directory.addresses.insert(email.into(), email.into());
    }
    directory
        .addresses
        .insert("robert@acme.example".into(), "bob@acme.example".into());
    directory
}

fn person(email: &str) -> Person {
    Person {
        email: email.into(),
        name: None,
    }
}

fn guest(email: &str, answer: Answer) -> Attendee {
    Attendee {
        person: person(email),
        answer,
        resource: email.ends_with(ROOM_DOMAIN),
        optional: false,
    }
}

fn meeting(uid: &str, organizer: &str, attendees: Vec<Attendee>, start_ms: i64) -> Meeting {
    Meeting {
        id: uid.into(),
        ical_uid: format!("{uid}@test"),
        summary: format!("{uid} title"),
        description: String::new(),
        location: None,
        organizer: person(organizer),
        attendees,
        event_type: EventType::Default,
        private: false,
        start_ms,
        end_ms: start_ms + HOUR_MS,
        all_day: false,
        zone: 0,
        recurrence: None,
        exceptions: BTreeMap::new(),
        cancelled: false,
        sequence: 0,
        created_ms: start_ms - DAY_MS,
        updated_ms: start_ms - DAY_MS,
        changed_seq: 0,
    }
}

fn truth_of(meetings: Vec<Meeting>, now_ms: i64) -> MeetingsTruth {
    let store = MeetingStore::new(directory(), meetings, NOW);
    MeetingsTruth::compute(&store, MeetingPolicy::default_at(now_ms))
}

fn uids(list: &[tributary_emulator::org::meetings_truth::TruthMeeting]) -> BTreeSet<String> {
    list.iter().map(|m| m.ical_uid.clone()).collect()
}

#[test]
fn the_truth_applies_each_exclusion_rule() {
    use Answer::*;
    let past = NOW - 10 * DAY_MS;
    let ann = "ann@acme.example";
    let mut focus = meeting("focus", ann, vec![guest("x@cust.example", Accepted)], past);
    focus.event_type = EventType::FocusTime;
    let mut ooo = meeting("ooo", ann, vec![guest("x@cust.example", Accepted)], past);
    ooo.event_type = EventType::OutOfOffice;
    let mut cancelled = meeting(
        "cancelled",
        ann,
        vec![guest("x@cust.example", Accepted)],
        past,
    );
    cancelled.cancelled = true;
    let meetings = vec![
        meeting(
            "kept",
            ann,
            vec![guest(ann, Accepted), guest("x@cust.example", Tentative)],
            past,
        ),
        meeting("alone", ann, vec![guest(ann, Accepted)], past),
        meeting("no-guests", ann, Vec::new(), past),
        meeting(
            "internal",
            ann,
            vec![guest("robert@acme.example", Accepted)],
            past,
        ),
        meeting(
            "all-declined",
            ann,
            vec![
                guest("x@cust.example", Declined),
                guest("y@cust.example", Declined),
            ],
            past,
        ),
        meeting(
            "room-only",
            ann,
            vec![guest(&format!("room@{ROOM_DOMAIN}"), Accepted)],
            past,
        ),
        meeting(
            "inbound",
            "x@cust.example",
            vec![guest("bob@acme.example", Declined)],
            past,
        ),
        focus,
        ooo,
        cancelled,
        meeting(
            "too-old",
            ann,
            vec![guest("x@cust.example", Accepted)],
            NOW - 200 * DAY_MS,
        ),
    ];
    let truth = truth_of(meetings, NOW);
    assert_eq!(
        uids(&truth.meetings),
        ["kept@test", "inbound@test"].map(String::from).into()
    );
    let inbound = truth
        .meetings
        .iter()
        .find(|m| m.ical_uid == "inbound@test")
        .unwrap();
    assert_eq!(inbound.direction, "inbound");
    // Bob declined: he did not take part, though it is in his calendar.
    assert!(inbound.members.is_empty(), "{inbound:?}");
    assert_eq!(inbound.calendars, vec!["bob@acme.example".to_string()]);
    let kept = truth
        .meetings
        .iter()
        .find(|m| m.ical_uid == "kept@test")
        .unwrap();
    assert_eq!(kept.direction, "outbound");
    assert_eq!(kept.members, vec![ann.to_string()]);
    assert_eq!(kept.participants.len(), 2, "the organizer is listed once");
    assert_eq!(kept.participants[1].response, Tentative);
    assert_eq!(kept.title.as_deref(), Some("kept title"));
}

#[test]
fn the_truth_counts_occurrences_of_a_series_and_honours_its_exceptions() {
    let ann = "ann@acme.example";
    let start = NOW - 4 * 7 * DAY_MS;
    let mut series = meeting(
        "series",
        ann,
        vec![guest("x@cust.example", Answer::Accepted)],
        start,
    );
    series.recurrence = Some(Recurrence {
        interval_days: 7,
        count: 6,
    });
    series.private = true;
    let mut store = MeetingStore::new(directory(), vec![series], NOW);
    let week = 7 * DAY_MS;
    store.cancel("series", Some(start + week), NOW).unwrap();
    store
        .reschedule(
            "series",
            Some(start + 2 * week),
            start + 2 * week + HOUR_MS,
            start + 2 * week + 2 * HOUR_MS,
            NOW,
        )
        .unwrap();
    assert!(
        store.cancel("series", Some(start + 1), NOW).is_err(),
        "not an occurrence"
    );
    let truth = MeetingsTruth::compute(&store, MeetingPolicy::default_at(NOW));
    // Six weekly occurrences from four weeks ago: 0, 2, 3 ended (1 cancelled); 4, 5 ahead.
    let originals: Vec<&str> = truth
        .meetings
        .iter()
        .map(|m| m.original_start.as_str())
        .collect();
    assert_eq!(originals.len(), 3, "{originals:?}");
    assert_eq!(truth.upcoming.len(), 2);
    let moved = &truth.meetings[1];
    assert_eq!(
        moved.original_start,
        tributary_emulator::org::meetings::rfc3339(start + 2 * week)
    );
    assert_eq!(
        moved.start,
        tributary_emulator::org::meetings::rfc3339(start + 2 * week + HOUR_MS)
    );
    assert!(
        truth
            .meetings
            .iter()
            .all(|m| m.title.is_none() && m.private)
    );
}

#[test]
fn a_meeting_moves_from_upcoming_to_captured_when_it_ends_and_large_ones_are_marked() {
    let ann = "ann@acme.example";
    let mut guests: Vec<Attendee> = (0..30)
        .map(|n| guest(&format!("p{n}@cust.example"), Answer::Accepted))
        .collect();
    guests.push(guest(ann, Answer::Accepted));
    let soon = meeting("soon", ann, guests, NOW + HOUR_MS);
    let before = truth_of(vec![soon.clone()], NOW);
    assert!(before.meetings.is_empty());
    assert_eq!(uids(&before.upcoming), ["soon@test".to_string()].into());
    assert!(before.upcoming[0].large);
    let after = truth_of(vec![soon.clone()], NOW + 2 * HOUR_MS);
    assert_eq!(uids(&after.meetings), ["soon@test".to_string()].into());
    assert!(after.upcoming.is_empty());
    let far = truth_of(vec![soon], NOW - 31 * DAY_MS);
    assert!(far.upcoming.is_empty(), "beyond the horizon");
}

#[test]
fn the_generated_truth_holds_no_excluded_meeting() {
    let store = generated_store();
    let truth = MeetingsTruth::compute(&store, MeetingPolicy::default_at(NOW));
    assert!(truth.meetings.len() > 20, "{}", truth.meetings.len());
    assert!(!truth.upcoming.is_empty());
    assert!(truth.meetings.iter().any(|m| m.large));
    assert!(truth.meetings.iter().any(|m| m.direction == "inbound"));
    let by_uid: BTreeMap<&str, &Meeting> = store
        .meetings
        .iter()
        .map(|m| (m.ical_uid.as_str(), m))
        .collect();
    let mut identities = BTreeSet::new();
    for record in truth.meetings.iter().chain(&truth.upcoming) {
        assert!(
            identities.insert((&record.ical_uid, &record.original_start)),
            "one record per occurrence"
        );
        let meeting = by_uid[record.ical_uid.as_str()];
        assert_eq!(meeting.event_type, EventType::Default);
        assert!(!meeting.cancelled);
        assert!(record.participants.iter().any(|p| !p.internal));
        assert_eq!(record.title.is_none(), meeting.private);
    }
}

// ---------------------------------------------------------------------------------------
// Calendar v3 over HTTP

const EVENTS: &str = "/calendar/v3/calendars/primary/events";

async fn calendar_token(emu: &TestEmulator, subject: &str) -> String {
    emu.token(subject, scopes::CALENDAR_READONLY).await
}

/// A member whose calendar holds a series and a meeting with a customer.
fn busy_member(store: &MeetingStore) -> String {
    store
        .directory
        .members
        .keys()
        .find(|member| {
            store.in_calendar(member).any(|m| {
                m.recurrence.is_some() && m.organizer.email == **member && !m.attendees.is_empty()
            })
        })
        .expect("a member organizes a series")
        .clone()
}

/// The directory's first member.
fn first_member(emu: &TestEmulator) -> String {
    let store = emu.running.state.calendars.read();
    store.directory.members.keys().next().unwrap().clone()
}

/// Posts `body` to the emulator at `path` (a control call).
async fn post_control(emu: &TestEmulator, path: &str, body: &Value) -> reqwest::Response {
    emu.http
        .post(emu.url(path))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn list_all(emu: &TestEmulator, token: &str, query: &str) -> (Vec<Value>, Vec<Value>) {
    let mut items = Vec::new();
    let mut pages = Vec::new();
    let mut page_token: Option<String> = None;
    loop {
        let mut path = format!("{EVENTS}?{query}");
        if let Some(t) = &page_token {
            path.push_str(&format!("&pageToken={t}"));
        }
        let (status, page) = emu.get(&path, token).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        page_token = page["nextPageToken"].as_str().map(str::to_string);
        pages.push(page);
        if page_token.is_none() {
            return (items, pages);
        }
    }
}

#[tokio::test]
async fn events_list_pages_with_the_sync_token_on_the_last_page_only() {
    let emu = calendar_emulator().await;
    let member = busy_member(&emu.running.state.calendars.read());
    let token = calendar_token(&emu, &member).await;
    let (items, pages) = list_all(&emu, &token, "singleEvents=true&maxResults=5").await;
    assert!(pages.len() > 2, "{} pages", pages.len());
    for page in &pages[..pages.len() - 1] {
        assert!(page.get("nextSyncToken").is_none(), "{page}");
    }
    assert!(pages.last().unwrap()["nextSyncToken"].is_string());
    let (single_page, _) = list_all(&emu, &token, "singleEvents=true&maxResults=2500").await;
    assert_eq!(items, single_page);
    let ids: BTreeSet<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), items.len(), "no item twice");
    assert!(
        items.iter().all(|i| i["status"] == "confirmed"),
        "no cancelled item in a full listing"
    );
    let instance = items
        .iter()
        .find(|i| i.get("recurringEventId").is_some())
        .expect("an instance");
    assert!(
        instance["originalStartTime"]["dateTime"].is_string(),
        "{instance}"
    );
    assert!(items.iter().any(|i| i["eventType"] == "focusTime"));
    assert!(
        items.iter().any(|i| i["start"].get("date").is_some()),
        "an all-day event"
    );
    let attendees = items
        .iter()
        .flat_map(|i| i["attendees"].as_array().cloned().unwrap_or_default());
    assert!(
        attendees
            .clone()
            .any(|a| a["self"] == true && a["email"] == member.as_str())
    );
    // Without singleEvents, a series is one item with its rule.
    let (masters, _) = list_all(&emu, &token, "maxResults=2500").await;
    assert!(masters.iter().any(|i| {
        i["recurrence"][0]
            .as_str()
            .is_some_and(|r| r.starts_with("RRULE:"))
    }));
    assert!(masters.len() < items.len());
}

#[tokio::test]
async fn incremental_sync_sees_live_changes_and_cancellations() {
    let emu = calendar_emulator().await;
    let (member, series_id, original, single_id) = {
        let store = emu.running.state.calendars.read();
        let member = busy_member(&store);
        let series = store
            .in_calendar(&member)
            .find(|m| m.recurrence.is_some() && m.organizer.email == member && !m.cancelled)
            .unwrap();
        let original = series.occurrences()[0].original_start_ms;
        let single = store
            .in_calendar(&member)
            .find(|m| m.recurrence.is_none() && !m.cancelled && m.organizer.email == member)
            .unwrap();
        (member, series.id.clone(), original, single.id.clone())
    };
    let token = calendar_token(&emu, &member).await;
    let (_, pages) = list_all(&emu, &token, "singleEvents=true").await;
    let sync = pages.last().unwrap()["nextSyncToken"]
        .as_str()
        .unwrap()
        .to_string();

    let (status, empty) = emu
        .get(
            &format!("{EVENTS}?singleEvents=true&syncToken={sync}"),
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{empty}");
    assert_eq!(empty["items"], json!([]));

    let at = |ms: i64| tributary_emulator::org::meetings::rfc3339(ms);
    let moved = post_control(
        &emu,
        &format!("/control/calendar/events/{single_id}/reschedule"),
        &json!({"start": at(NOW + 3 * DAY_MS), "end": at(NOW + 3 * DAY_MS + HOUR_MS)}),
    )
    .await;
    assert_eq!(moved.status(), StatusCode::OK);
    let cancelled = post_control(
        &emu,
        &format!("/control/calendar/events/{series_id}/cancel"),
        &json!({"occurrence": at(original)}),
    )
    .await;
    assert_eq!(cancelled.status(), StatusCode::OK);

    let (status, changes) = emu
        .get(
            &format!("{EVENTS}?singleEvents=true&syncToken={sync}"),
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changes}");
    let items = changes["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{changes}");
    let moved = items
        .iter()
        .find(|i| i["id"] == single_id.as_str())
        .expect("the moved meeting");
    assert_eq!(moved["status"], "confirmed");
    assert_eq!(moved["sequence"], 1);
    let stub = items
        .iter()
        .find(|i| i["status"] == "cancelled")
        .expect("the cancelled occurrence");
    assert_eq!(stub["recurringEventId"], series_id.as_str());
    assert!(stub["originalStartTime"].is_object());
    assert!(changes["nextSyncToken"].is_string());

    // A full listing no longer shows the cancelled occurrence; showDeleted does.
    let (full, _) = list_all(&emu, &token, "singleEvents=true").await;
    assert!(!full.iter().any(|i| i["id"] == stub["id"]));
    let (with_deleted, _) = list_all(&emu, &token, "singleEvents=true&showDeleted=true").await;
    assert!(with_deleted.iter().any(|i| i["id"] == stub["id"]));
}

#[tokio::test]
async fn sync_tokens_refuse_forbidden_parameters_and_expire_with_410() {
    let emu = calendar_emulator().await;
    let member = busy_member(&emu.running.state.calendars.read());
    let token = calendar_token(&emu, &member).await;
    let (_, pages) = list_all(&emu, &token, "").await;
    let sync = pages.last().unwrap()["nextSyncToken"]
        .as_str()
        .unwrap()
        .to_string();
    for extra in [
        "timeMin=2025-01-01T00:00:00Z",
        "orderBy=updated",
        "q=x",
        "iCalUID=a",
        "showDeleted=false",
    ] {
        let (status, body) = emu
            .get(&format!("{EVENTS}?syncToken={sync}&{extra}"), &token)
            .await;
        assert_api_error(status, &body, 400, "invalid", None);
    }
    let expired = post_control(
        &emu,
        "/control/calendar/sync-tokens/expire",
        &json!({"calendar": member}),
    )
    .await;
    assert_eq!(expired.status(), StatusCode::OK);
    let (status, body) = emu.get(&format!("{EVENTS}?syncToken={sync}"), &token).await;
    assert_api_error(
        status,
        &body,
        410,
        "fullSyncRequired",
        Some("Sync token is no longer valid, a full sync is required."),
    );
    // A full sync gets a token that works again.
    let (_, pages) = list_all(&emu, &token, "").await;
    let fresh = pages.last().unwrap()["nextSyncToken"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = emu
        .get(&format!("{EVENTS}?syncToken={fresh}"), &token)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn calendar_requests_check_scope_calendar_and_parameters() {
    let emu = calendar_emulator().await;
    let (member, other) = {
        let store = emu.running.state.calendars.read();
        let mut members = store.directory.members.keys();
        (
            members.next().unwrap().clone(),
            members.next().unwrap().clone(),
        )
    };
    // A Gmail-only token: the calendar scope is not in it.
    let gmail = emu.gmail_token(&member).await;
    let (status, body) = emu.get(EVENTS, &gmail).await;
    assert_api_error(status, &body, 403, "insufficientPermissions", None);

    let token = calendar_token(&emu, &member).await;
    let (status, body) = emu
        .get(&format!("/calendar/v3/calendars/{other}/events"), &token)
        .await;
    assert_api_error(status, &body, 404, "notFound", None);
    let (status, body) = emu
        .get(&format!("/calendar/v3/calendars/{member}/events"), &token)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = emu
        .get(
            &format!("{EVENTS}?timeMin=2026-01-02T00:00:00Z&timeMax=2026-01-01T00:00:00Z"),
            &token,
        )
        .await;
    assert_api_error(status, &body, 400, "timeRangeEmpty", None);
    let (status, body) = emu
        .get(&format!("{EVENTS}?orderBy=startTime"), &token)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = emu.get("/calendar/v3/users/me/calendarList", &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"][0]["id"], member.as_str());
    assert_eq!(body["items"][0]["primary"], true);
}

#[tokio::test]
async fn time_window_event_types_and_max_attendees_narrow_the_listing() {
    let emu = calendar_emulator().await;
    let member = first_member(&emu);
    let token = calendar_token(&emu, &member).await;
    let at = tributary_emulator::org::meetings::rfc3339;
    let window = format!(
        "singleEvents=true&timeMin={}&timeMax={}",
        at(NOW - 30 * DAY_MS),
        at(NOW)
    );
    let (items, _) = list_all(&emu, &token, &window.replace('+', "%2B")).await;
    assert!(!items.is_empty());
    let (all, _) = list_all(&emu, &token, "singleEvents=true").await;
    assert!(items.len() < all.len());
    let (focus, _) = list_all(&emu, &token, "singleEvents=true&eventTypes=focusTime").await;
    assert!(!focus.is_empty() && focus.iter().all(|i| i["eventType"] == "focusTime"));
    let (trimmed, _) = list_all(&emu, &token, "singleEvents=true&maxAttendees=1").await;
    let omitted = trimmed
        .iter()
        .find(|i| i["attendeesOmitted"] == true)
        .expect("a trimmed list");
    assert_eq!(omitted["attendees"].as_array().unwrap().len(), 1);
    assert_eq!(omitted["attendees"][0]["self"], true);
}

#[tokio::test]
async fn the_control_api_creates_answers_and_serves_the_truth() {
    let emu = calendar_emulator().await;
    let member = first_member(&emu);
    let at = tributary_emulator::org::meetings::rfc3339;
    let created = post_control(
        &emu,
        "/control/calendar/events",
        &json!({
            "organizer": member,
            "attendees": [{"email": "buyer@customer.example"}],
            "summary": "Contract review",
            "start": at(NOW + 2 * HOUR_MS),
            "end": at(NOW + 3 * HOUR_MS),
        }),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    let uid = created["ical_uid"].as_str().unwrap();
    let truth = |now: String| {
        let url = emu.url(&format!(
            "/control/calendar/truth?now={}",
            now.replace('+', "%2B")
        ));
        let http = emu.http.clone();
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let before = truth(at(NOW)).await;
    assert!(
        before["upcoming"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["ical_uid"] == uid)
    );
    let declined = post_control(
        &emu,
        &format!("/control/calendar/events/{id}/answer"),
        &json!({"attendee": "buyer@customer.example", "response": "declined"}),
    )
    .await;
    assert_eq!(declined.status(), StatusCode::OK);
    let later = truth(at(NOW + 4 * HOUR_MS)).await;
    assert!(
        !later["meetings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["ical_uid"] == uid),
        "every external guest declined"
    );
    let stranger = json!({
        "organizer": "nobody@elsewhere.example",
        "summary": "x",
        "start": at(NOW),
        "end": at(NOW + HOUR_MS),
    });
    let bad = post_control(&emu, "/control/calendar/events", &stranger).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let missing = post_control(&emu, "/control/calendar/events/nope/cancel", &json!({})).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

// ---------------------------------------------------------------------------------------
// Graph calendarView/delta, straight to the Microsoft emulator's router

mod graph {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use serde_json::Value;
    use std::sync::Arc;
    use tower::ServiceExt;
    use tributary_emulator::microsoft::app::router;
    use tributary_emulator::microsoft::{MicrosoftConfig, RunningMicrosoft, TenantSource, start};

    pub struct Graph {
        pub running: RunningMicrosoft,
        app: Router,
        token: String,
    }

    impl Graph {
        pub async fn start() -> Graph {
            let running = start(MicrosoftConfig {
                organization: TenantSource::Generate(super::org_config()),
                ..MicrosoftConfig::default()
            })
            .await
            .expect("the emulator starts");
            let app = router(Arc::clone(&running.state));
            let mut graph = Graph {
                running,
                app,
                token: String::new(),
            };
            graph.new_token().await;
            graph
        }

        /// A fresh app token: it carries the roles granted now.
        pub async fn new_token(&mut self) {
            let form = form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("client_id", self.running.app.client_id.as_str()),
                    ("client_secret", self.running.app.client_secret.as_str()),
                    ("grant_type", "client_credentials"),
                    ("scope", "https://graph.microsoft.com/.default"),
                ])
                .finish();
            let path = format!("/{}/oauth2/v2.0/token", self.running.app.tenant_id);
            let request = Request::post(path)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(form))
                .unwrap();
            let (status, body) = self.send(request).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            self.token = body["access_token"].as_str().unwrap().to_string();
        }

        async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
            let response = self.app.clone().oneshot(request).await.expect("infallible");
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            (
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            )
        }

        pub async fn get(&self, url: &str, page_size: usize) -> (StatusCode, Value) {
            let path = url.strip_prefix(&self.running.base_url).unwrap_or(url);
            let request = Request::get(path)
                .header("authorization", format!("Bearer {}", self.token))
                .header("prefer", format!("odata.maxpagesize={page_size}"))
                .body(Body::empty())
                .unwrap();
            self.send(request).await
        }

        pub async fn control(&self, path: &str, body: Value) -> StatusCode {
            let request = Request::post(format!("/control{path}"))
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap();
            self.send(request).await.0
        }

        /// Follows next links to the delta link: (every entry, pages, the delta link).
        pub async fn round(&self, first: &str) -> (Vec<Value>, usize, String) {
            let (mut entries, mut pages, mut url) = (Vec::new(), 0, first.to_string());
            loop {
                let (status, page) = self.get(&url, 5).await;
                assert_eq!(status, StatusCode::OK, "{page}");
                pages += 1;
                entries.extend(page["value"].as_array().unwrap().iter().cloned());
                if let Some(next) = page["@odata.nextLink"].as_str() {
                    assert!(page.get("@odata.deltaLink").is_none());
                    url = next.to_string();
                    continue;
                }
                let delta = page["@odata.deltaLink"].as_str().expect("a delta link");
                return (entries, pages, delta.to_string());
            }
        }
    }
}

#[tokio::test]
async fn graph_calendar_view_delta_lists_the_window_then_changes_then_expires() {
    let graph = graph::Graph::start().await;
    let (member, series_id, original, single_id) = {
        let store = graph.running.state.calendars.read();
        let member = busy_member(&store);
        let series = store
            .in_calendar(&member)
            .find(|m| m.recurrence.is_some() && m.organizer.email == member && !m.cancelled)
            .unwrap();
        let single = store
            .in_calendar(&member)
            .find(|m| m.recurrence.is_none() && !m.cancelled && m.event_type == EventType::Default)
            .unwrap();
        let original = series.occurrences()[0].original_start_ms;
        (member, series.id.clone(), original, single.id.clone())
    };
    let at = tributary_emulator::org::meetings::rfc3339;
    let (status, body) = graph
        .get(&format!("/v1.0/users/{member}/calendarView/delta"), 5)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "ErrorInvalidParameter");

    let first = format!(
        "/v1.0/users/{member}/calendarView/delta?startDateTime={}&endDateTime={}",
        at(NOW - 180 * DAY_MS),
        at(NOW + 30 * DAY_MS)
    );
    let (events, pages, delta) = graph.round(&first).await;
    assert!(pages > 2, "{pages} pages");
    assert!(events.iter().all(|e| e.get("@removed").is_none()));
    let occurrence = events
        .iter()
        .find(|e| e["type"] == "occurrence")
        .expect("an occurrence");
    assert!(occurrence["seriesMasterId"].is_string() && occurrence["originalStart"].is_string());
    assert!(events.iter().any(|e| e["type"] == "exception"));
    assert!(events.iter().any(|e| e["type"] == "singleInstance"));
    assert!(
        events
            .iter()
            .all(|e| e["iCalUId"].is_string() && e["start"]["timeZone"] == "UTC")
    );
    let attendee = events
        .iter()
        .flat_map(|e| e["attendees"].as_array().cloned().unwrap_or_default())
        .next()
        .expect("an attendee");
    assert!(attendee["type"].is_string() && attendee["status"]["response"].is_string());
    let ids: BTreeSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len(), "no event twice");

    let (unchanged, _, delta) = graph.round(&delta).await;
    assert!(unchanged.is_empty(), "{unchanged:?}");
    let cancel = json!({"occurrence": at(original)});
    assert_eq!(
        graph
            .control(&format!("/calendar/events/{series_id}/cancel"), cancel)
            .await,
        StatusCode::OK
    );
    let away = json!({"start": at(NOW + 90 * DAY_MS), "end": at(NOW + 90 * DAY_MS + HOUR_MS)});
    assert_eq!(
        graph
            .control(&format!("/calendar/events/{single_id}/reschedule"), away)
            .await,
        StatusCode::OK
    );
    let (changes, _, delta) = graph.round(&delta).await;
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(
        changes.iter().all(|e| e["@removed"]["reason"] == "deleted"),
        "{changes:?}"
    );

    assert_eq!(
        graph
            .control("/calendar/sync-tokens/expire", json!({}))
            .await,
        StatusCode::OK
    );
    let (status, body) = graph.get(&delta, 5).await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(body["error"]["code"], "SyncStateNotFound");
}

#[tokio::test]
async fn calendar_calls_spend_the_users_quota_like_gmail_calls() {
    let emu = emulator_with(EmulatorConfig {
        organization: OrgSource::Generate(org_config()),
        quota: QuotaConfig {
            per_user_units_per_minute: 5,
            ..QuotaConfig::default()
        },
        ..EmulatorConfig::default()
    })
    .await;
    let member = busy_member(&emu.running.state.calendars.read());
    let token = calendar_token(&emu, &member).await;
    for _ in 0..5 {
        let (status, body) = emu.get(EVENTS, &token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = emu.get(EVENTS, &token).await;
    assert_api_error(status, &body, 403, "userRateLimitExceeded", None);
    let counters = emu.running.state.counters.snapshot();
    assert_eq!(
        counters.methods["calendar.events.list"].requests, 6,
        "{counters:?}"
    );
}

#[tokio::test]
async fn graph_calendar_fails_alone_without_the_calendar_role() {
    let mut graph = graph::Graph::start().await;
    let member = busy_member(&graph.running.state.calendars.read());
    let removed = json!({"permission": "Calendars.Read"});
    assert_eq!(
        graph.control("/permissions/remove", removed).await,
        StatusCode::OK
    );
    graph.new_token().await;
    let at = tributary_emulator::org::meetings::rfc3339;
    let (status, body) = graph
        .get(
            &format!(
                "/v1.0/users/{member}/calendarView/delta?startDateTime={}&endDateTime={}",
                at(NOW - DAY_MS),
                at(NOW)
            ),
            5,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "ErrorAccessDenied");
    let (status, body) = graph
        .get(
            &format!("/v1.0/users/{member}/mailFolders/inbox/messages/delta"),
            5,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "mail keeps working: {body}");
}
