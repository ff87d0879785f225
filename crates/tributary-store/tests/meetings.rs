//! Meetings in the store (migration 0020, `meetings.rs`), on both backends: captured
//! once across calendars, upcoming meetings replaced, removed and promoted when they end,
//! reads by contact, company and member, immutability, and the calendar's own cursor and
//! status.

mod common;

use common::Acme;
use common::calendar::{DAY_MS, NOW, ann_meets, person};
use sqlx::{AssertSqlSafe, Executor};
use tributary_core::{Meeting, MeetingStatus, Occurrence, Response};
use tributary_store::{
    Backend, CalendarSighting, CalendarSummary, LinkId, LinkStatus, MeetingsOf, Store, TenantId,
};

on_both_backends!(
    one_meeting_seen_in_two_calendars_is_captured_once,
    upcoming_meetings_are_replaced_removed_and_promoted_when_they_end,
    reads_by_contact_company_and_member,
    captured_meetings_are_immutable,
    the_calendar_has_its_own_cursor_and_status,
);

/// Ann invites Bob (Globex) and Carl to a one-hour meeting `days` from now, as the
/// calendar of `owner` lists it.
fn review(uid: &str, days: i64, owner: &str) -> Occurrence {
    let attendees = vec![
        person("bob@mail.globex.co.uk", Response::Accepted),
        person("carl@acme.com", Response::Tentative),
    ];
    Occurrence {
        title: Some("Quarterly review".into()),
        ..ann_meets(uid, days, attendees, owner)
    }
}

fn judged(acme: &Acme, occurrence: &Occurrence, now: i64) -> Meeting {
    acme.extractor.meeting(occurrence, now).unwrap()
}

fn sighting(acme: &Acme, occurrence: &Occurrence, event_id: &str) -> CalendarSighting {
    CalendarSighting {
        meeting: judged(acme, occurrence, NOW),
        provider_event_id: event_id.into(),
    }
}

async fn commit(
    store: &Store,
    acme: &Acme,
    link: LinkId,
    sightings: Vec<CalendarSighting>,
) -> CalendarSummary {
    store
        .commit_calendar_page(&acme.tenant, link, &sightings, None)
        .await
        .unwrap()
}

fn bob() -> MeetingsOf {
    MeetingsOf::Contact("bob@mail.globex.co.uk".into())
}

async fn one_meeting_seen_in_two_calendars_is_captured_once(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let in_ann = review("q2@acme.com", -3, "ann@acme.com");
    let mut in_carl = review("q2@acme.com", -3, "carl@acme.com");
    // Carl's copy lists Dana too (Ann's was read before she was added).
    in_carl
        .attendees
        .push(person("dana@initech.com", Response::Accepted));
    let first = commit(
        &store,
        &acme,
        acme.ann_link,
        vec![sighting(&acme, &in_ann, "e1")],
    )
    .await;
    assert_eq!((first.captured, first.already_known), (1, 0));
    let second = commit(
        &store,
        &acme,
        acme.carl_link,
        vec![sighting(&acme, &in_carl, "e9")],
    )
    .await;
    assert_eq!((second.captured, second.already_known), (0, 1));
    // The same page again changes nothing.
    commit(
        &store,
        &acme,
        acme.carl_link,
        vec![sighting(&acme, &in_carl, "e9")],
    )
    .await;
    assert_eq!(store.count_meetings(&acme.tenant).await.unwrap(), 1);

    let meetings = store.meetings_of(&acme.tenant, &bob(), 10).await.unwrap();
    assert_eq!(meetings.len(), 1);
    let meeting = &meetings[0];
    assert_eq!(meeting.calendars, ["ann@acme.com", "carl@acme.com"]);
    assert_eq!(meeting.title.as_deref(), Some("Quarterly review"));
    assert_eq!(meeting.direction, "outbound");
    let people: Vec<_> = meeting
        .participants
        .iter()
        .map(|p| (p.address.as_str(), p.organizer, p.response, p.took_part))
        .collect();
    assert_eq!(
        people,
        [
            ("ann@acme.com", true, Response::Accepted, true),
            ("bob@mail.globex.co.uk", false, Response::Accepted, false),
            ("carl@acme.com", false, Response::Tentative, true),
            ("dana@initech.com", false, Response::Accepted, false),
        ]
    );
    // Meeting participants are contacts with their companies, like mail's.
    let contacts = store.contacts(&acme.tenant).await.unwrap();
    assert_eq!(contacts.len(), 2, "{contacts:?}");
}

async fn upcoming_meetings_are_replaced_removed_and_promoted_when_they_end(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let tenant = &acme.tenant;
    let ahead = review("next@acme.com", 2, "ann@acme.com");
    let summary = commit(
        &store,
        &acme,
        acme.ann_link,
        vec![sighting(&acme, &ahead, "e1")],
    )
    .await;
    assert_eq!(summary.upcoming, 1);
    commit(
        &store,
        &acme,
        acme.carl_link,
        vec![sighting(&acme, &ahead, "e2")],
    )
    .await;
    let next = store
        .next_meeting(tenant, &bob(), NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.start_ms, ahead.start_ms);
    assert_eq!(next.calendars, ["ann@acme.com", "carl@acme.com"]);
    assert_eq!(
        store.count_meetings(tenant).await.unwrap(),
        0,
        "not a contact point yet"
    );

    // Rescheduled by a day in both calendars: replaced, still one meeting.
    let mut moved = ahead.clone();
    moved.start_ms += DAY_MS;
    moved.end_ms += DAY_MS;
    for (link, id) in [(acme.ann_link, "e1"), (acme.carl_link, "e2")] {
        commit(&store, &acme, link, vec![sighting(&acme, &moved, id)]).await;
    }
    let upcoming = store
        .upcoming_meetings_of(tenant, &bob(), NOW, 10)
        .await
        .unwrap();
    assert_eq!(upcoming.len(), 1);
    assert_eq!(upcoming[0].start_ms, moved.start_ms);

    // Cancelled in Carl's calendar: gone from it, still in Ann's.
    let mut cancelled = moved.clone();
    cancelled.cancelled = true;
    let summary = commit(
        &store,
        &acme,
        acme.carl_link,
        vec![sighting(&acme, &cancelled, "e2")],
    )
    .await;
    assert_eq!(summary.excluded, 1);
    let next = store
        .next_meeting(tenant, &bob(), NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.calendars, ["ann@acme.com"]);

    // Nothing ended yet: nothing promoted.
    assert_eq!(store.promote_ended_meetings(tenant, NOW).await.unwrap(), 0);
    // Once it has ended, what Ann's calendar listed is captured, and it is no longer
    // upcoming.
    let after = moved.end_ms;
    assert_eq!(
        store.promote_ended_meetings(tenant, after).await.unwrap(),
        1
    );
    assert_eq!(
        store.next_meeting(tenant, &bob(), after).await.unwrap(),
        None
    );
    let last = store.last_meeting(tenant, &bob()).await.unwrap().unwrap();
    assert_eq!((last.start_ms, last.end_ms), (moved.start_ms, moved.end_ms));
    assert_eq!(last.calendars, ["ann@acme.com"]);
    assert_eq!(last.participants.len(), 3);
    // A later sync judging it ended joins the same captured meeting.
    let ended = CalendarSighting {
        meeting: judged(&acme, &moved, after),
        provider_event_id: "e1".into(),
    };
    assert_eq!(ended.meeting.status, MeetingStatus::Captured);
    let summary = store
        .commit_calendar_page(tenant, acme.ann_link, &[ended], None)
        .await
        .unwrap();
    assert_eq!((summary.captured, summary.already_known), (0, 1));
    assert_eq!(store.count_meetings(tenant).await.unwrap(), 1);
    assert_eq!(
        store.promote_ended_meetings(tenant, after).await.unwrap(),
        0
    );

    // An event the provider reports deleted (Graph `@removed`) leaves by its event id.
    let later = review("later@acme.com", 6, "ann@acme.com");
    commit(
        &store,
        &acme,
        acme.ann_link,
        vec![sighting(&acme, &later, "e7")],
    )
    .await;
    assert!(
        store
            .next_meeting(tenant, &bob(), after)
            .await
            .unwrap()
            .is_some()
    );
    let removed = store.remove_upcoming_meeting(tenant, acme.ann_link, "e7");
    assert!(removed.await.unwrap());
    assert_eq!(
        store.next_meeting(tenant, &bob(), after).await.unwrap(),
        None
    );
    let again = store.remove_upcoming_meeting(tenant, acme.ann_link, "e7");
    assert!(!again.await.unwrap());
}

async fn reads_by_contact_company_and_member(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let tenant = &acme.tenant;
    let older = review("a@acme.com", -20, "ann@acme.com");
    let newer = review("b@acme.com", -5, "ann@acme.com");
    // Carl declined this one: he did not take part.
    let mut declined = review("c@acme.com", -10, "ann@acme.com");
    declined.attendees[1].response = Response::Declined;
    // Bob's colleague Eve only, in a meeting large enough not to count personally.
    let mut all_hands = review("d@acme.com", -2, "ann@acme.com");
    all_hands.attendees = (0..30)
        .map(|i| person(&format!("guest{i}@globex.co.uk"), Response::Accepted))
        .collect();
    let ahead = review("e@acme.com", 4, "ann@acme.com");
    let page = [&older, &newer, &declined, &all_hands, &ahead]
        .iter()
        .enumerate()
        .map(|(i, o)| sighting(&acme, o, &format!("e{i}")))
        .collect();
    commit(&store, &acme, acme.ann_link, page).await;

    let starts = |meetings: Vec<tributary_store::MeetingView>| {
        meetings.iter().map(|m| m.start_ms).collect::<Vec<_>>()
    };
    let by_bob = store.meetings_of(tenant, &bob(), 10).await.unwrap();
    assert_eq!(
        starts(by_bob),
        [newer.start_ms, declined.start_ms, older.start_ms]
    );
    let globex = MeetingsOf::Company("globex.co.uk".into());
    let by_company = store.meetings_of(tenant, &globex, 10).await.unwrap();
    assert!(
        by_company[0].large,
        "the company's timeline has the large meeting"
    );
    assert_eq!(by_company.len(), 4);
    assert_eq!(
        store.meetings_of(tenant, &globex, 2).await.unwrap().len(),
        2
    );
    let carl = MeetingsOf::Member(acme.carl);
    assert_eq!(
        starts(store.meetings_of(tenant, &carl, 10).await.unwrap()),
        [newer.start_ms, older.start_ms]
    );
    assert_eq!(
        store
            .last_meeting(tenant, &globex)
            .await
            .unwrap()
            .unwrap()
            .start_ms,
        all_hands.start_ms
    );
    for of in [bob(), globex, carl, MeetingsOf::Member(acme.ann)] {
        let next = store.next_meeting(tenant, &of, NOW).await.unwrap();
        assert_eq!(next.map(|m| m.start_ms), Some(ahead.start_ms), "{of:?}");
    }
    let nobody = MeetingsOf::Contact("zed@nowhere.example".into());
    assert!(
        store
            .meetings_of(tenant, &nobody, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.next_meeting(tenant, &nobody, NOW).await.unwrap(),
        None
    );
    // Another tenant sees none of it.
    let other = Acme::create(&store, "other").await;
    assert!(
        store
            .meetings_of(&other.tenant, &bob(), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn captured_meetings_are_immutable(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let occurrence = review("q2@acme.com", -3, "ann@acme.com");
    commit(
        &store,
        &acme,
        acme.ann_link,
        vec![sighting(&acme, &occurrence, "e1")],
    )
    .await;
    let before = store.meetings_of(&acme.tenant, &bob(), 10).await.unwrap();
    let mut statements = vec![
        "UPDATE meetings SET title = 'changed'",
        "UPDATE meetings SET start_ms = 0",
        "DELETE FROM meetings",
        "UPDATE meeting_participants SET response = 'declined'",
        "DELETE FROM meeting_participants",
        "UPDATE meeting_sightings SET provider_event_id = 'x'",
        "DELETE FROM meeting_sightings",
        "REPLACE INTO meetings SELECT * FROM meetings",
    ];
    if store.backend() == Backend::Postgres {
        statements.pop();
        statements.extend([
            "TRUNCATE meetings CASCADE",
            "TRUNCATE meeting_participants",
            "TRUNCATE meeting_sightings",
        ]);
    }
    for statement in statements {
        match store.pool().execute(AssertSqlSafe(statement)).await {
            Ok(_) => panic!("the database accepted: {statement}"),
            Err(error) => assert!(
                error.to_string().contains("immutable"),
                "{statement} failed for another reason: {error}"
            ),
        }
    }
    assert_eq!(
        store.meetings_of(&acme.tenant, &bob(), 10).await.unwrap(),
        before
    );
}

async fn the_calendar_has_its_own_cursor_and_status(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let tenant = &acme.tenant;
    let fresh = store.calendar_state(tenant, acme.ann_link).await.unwrap();
    assert_eq!((fresh.status, fresh.cursor), (LinkStatus::Pending, None));

    let occurrence = review("q2@acme.com", -3, "ann@acme.com");
    store
        .commit_calendar_page(
            tenant,
            acme.ann_link,
            &[sighting(&acme, &occurrence, "e1")],
            Some("sync-token-1"),
        )
        .await
        .unwrap();
    let state = store.calendar_state(tenant, acme.ann_link).await.unwrap();
    assert_eq!(state.cursor.as_deref(), Some("sync-token-1"));

    // The calendar scope is not delegated: the calendar says so, mail does not change.
    let mail_before = store.link(tenant, acme.ann_link).await.unwrap().unwrap();
    store
        .set_calendar_status(
            tenant,
            acme.ann_link,
            LinkStatus::Unauthorized,
            Some("Request had insufficient authentication scopes."),
            Some("insufficientPermissions"),
        )
        .await
        .unwrap();
    let state = store.calendar_state(tenant, acme.ann_link).await.unwrap();
    assert_eq!(state.status, LinkStatus::Unauthorized);
    assert_eq!(
        state.status_reason.as_deref(),
        Some("insufficientPermissions")
    );
    assert_eq!(state.cursor.as_deref(), Some("sync-token-1"));
    let mail_after = store.link(tenant, acme.ann_link).await.unwrap().unwrap();
    assert_eq!(mail_after.status, mail_before.status);
    assert_eq!(mail_after.provider_message, mail_before.provider_message);
    // Carl's calendar is untouched.
    let carl = store.calendar_state(tenant, acme.carl_link).await.unwrap();
    assert_eq!(carl.status, LinkStatus::Pending);

    store
        .set_calendar_status(tenant, acme.ann_link, LinkStatus::Idle, None, None)
        .await
        .unwrap();
    let state = store.calendar_state(tenant, acme.ann_link).await.unwrap();
    assert_eq!(state.status, LinkStatus::Idle);
    assert!(state.last_success_ms.is_some() && state.provider_message.is_none());

    // The token is gone: forget it; a full listing again captures nothing twice.
    store
        .clear_calendar_cursor(tenant, acme.ann_link)
        .await
        .unwrap();
    assert_eq!(
        store
            .calendar_state(tenant, acme.ann_link)
            .await
            .unwrap()
            .cursor,
        None
    );
    let again = commit(
        &store,
        &acme,
        acme.ann_link,
        vec![sighting(&acme, &occurrence, "e1")],
    )
    .await;
    assert_eq!((again.captured, again.already_known), (0, 1));

    // Another tenant's link is refused, and nothing of the page is stored.
    let other = TenantId::new("other");
    store.create_tenant(&other, "Other").await.unwrap();
    let refused = store
        .commit_calendar_page(
            &other,
            acme.ann_link,
            &[sighting(
                &acme,
                &review("x@acme.com", -1, "ann@acme.com"),
                "e5",
            )],
            Some("stolen"),
        )
        .await;
    assert!(refused.is_err());
    assert_eq!(store.count_meetings(&other).await.unwrap(), 0);
    assert_eq!(store.count_meetings(tenant).await.unwrap(), 1);
}
