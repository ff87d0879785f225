//! Captured meetings in relationships (`Store::meeting_ties`), on both backends: the
//! store's replay from its immutable meeting tables equals core's
//! `RelationshipBook::record_meeting` over the same judged meetings, and declined
//! attendance, large and upcoming meetings add nothing.

mod common;

use common::Acme;
use common::calendar::{DAY_MS, NOW, address, ann_meets, person};
use tributary_core::{Attendee, Meeting, Occurrence, RelationshipBook, Response};
use tributary_store::{CalendarSighting, MeetingTie, Store};

on_both_backends!(
    meeting_ties_equal_cores_book,
    declined_large_and_upcoming_meetings_add_nothing,
);

/// A one-hour meeting Ann organizes `days` from now with `attendees`.
fn meeting(uid: &str, days: i64, attendees: Vec<Attendee>) -> Occurrence {
    ann_meets(uid, days, attendees, "ann@acme.com")
}

async fn commit(store: &Store, acme: &Acme, meetings: &[Meeting]) {
    let sightings: Vec<CalendarSighting> = meetings
        .iter()
        .enumerate()
        .map(|(i, meeting)| CalendarSighting {
            meeting: meeting.clone(),
            provider_event_id: format!("e{i}"),
        })
        .collect();
    store
        .commit_calendar_page(&acme.tenant, acme.ann_link, &sightings, None)
        .await
        .unwrap();
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(m, c)| (m.to_string(), c.to_string()))
        .collect()
}

async fn meeting_ties_equal_cores_book(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let occurrences = [
        // Ann, Bob and Carl: three attend.
        meeting(
            "a",
            -40,
            vec![
                person("bob@globex.com", Response::Accepted),
                person("carl@acme.com", Response::Tentative),
            ],
        ),
        // Ann and Bob alone, later: the heavier one-to-one weight.
        meeting("b", -2, vec![person("bob@globex.com", Response::Accepted)]),
        // Ann and Dora (Bob not there): touches another pair only.
        meeting(
            "c",
            -10,
            vec![person("dora@initech.com", Response::NeedsAction)],
        ),
    ];
    let judged: Vec<Meeting> = occurrences
        .iter()
        .map(|o| acme.extractor.meeting(o, NOW).unwrap())
        .collect();
    assert!(judged.iter().all(Meeting::is_captured));
    commit(&store, &acme, &judged).await;

    let mut book = RelationshipBook::new();
    for meeting in &judged {
        book.record_meeting(meeting);
    }
    let asked = pairs(&[
        ("ann@acme.com", "bob@globex.com"),
        ("carl@acme.com", "bob@globex.com"),
        ("ann@acme.com", "dora@initech.com"),
        ("carl@acme.com", "dora@initech.com"),
    ]);
    let ties = store.meeting_ties(&acme.tenant, &asked).await.unwrap();
    for (member, contact) in &asked {
        let expected = book.get(&address(member), &address(contact));
        let tie = ties.get(&(member.clone(), contact.clone()));
        match (expected, tie) {
            (None, None) => {}
            (Some(stats), Some(tie)) => {
                assert_eq!(tie.meetings, stats.meetings as i64, "{member} {contact}");
                assert_eq!((tie.first_ms, tie.last_ms), (stats.first_ms, stats.last_ms));
                assert!(
                    (tie.score_at_last - stats.score_at_last).abs() < 1e-9,
                    "{member} {contact}: {} vs {}",
                    tie.score_at_last,
                    stats.score_at_last
                );
            }
            other => panic!("{member} {contact}: {other:?}"),
        }
    }
    let ann_bob = ties[&(asked[0].0.clone(), asked[0].1.clone())];
    assert_eq!(ann_bob.meetings, 2);
    assert!(!ties.contains_key(&(asked[3].0.clone(), asked[3].1.clone())));

    // Combined with a mail row, the later last wins and both scores decay to it.
    let mail = tributary_store::RelationshipView {
        member: "ann@acme.com".into(),
        contact: "bob@globex.com".into(),
        first_ms: NOW - 100 * DAY_MS,
        last_ms: NOW - 20 * DAY_MS,
        sent: 1,
        received: 0,
        total: 1,
        score_at_last: 1.0,
    };
    let (first, last, score) = ann_bob.combined_with(&mail);
    assert_eq!((first, last), (NOW - 100 * DAY_MS, ann_bob.last_ms));
    assert!(score > ann_bob.score_at_last && score < ann_bob.score_at_last + 1.0);
}

async fn declined_large_and_upcoming_meetings_add_nothing(store: Store) {
    let mut acme = Acme::create(&store, "acme").await;
    let declined = meeting(
        "declined",
        -5,
        vec![
            person("bob@globex.com", Response::Declined),
            person("eve@globex.com", Response::Accepted),
        ],
    );
    let upcoming = meeting(
        "ahead",
        3,
        vec![person("bob@globex.com", Response::Accepted)],
    );
    let mut judged = vec![
        acme.extractor.meeting(&declined, NOW).unwrap(),
        acme.extractor.meeting(&upcoming, NOW).unwrap(),
    ];
    acme.extractor.policy.meetings.large_meeting_attendees = 1;
    let large = meeting(
        "large",
        -4,
        vec![person("bob@globex.com", Response::Accepted)],
    );
    let large = acme.extractor.meeting(&large, NOW).unwrap();
    assert!(large.large && large.is_captured());
    judged.push(large);
    commit(&store, &acme, &judged).await;

    let asked = pairs(&[
        ("ann@acme.com", "bob@globex.com"),
        ("ann@acme.com", "eve@globex.com"),
    ]);
    let ties = store.meeting_ties(&acme.tenant, &asked).await.unwrap();
    let bob: Option<&MeetingTie> = ties.get(&(asked[0].0.clone(), asked[0].1.clone()));
    assert_eq!(bob, None, "declined, upcoming and large add nothing");
    let eve = ties[&(asked[1].0.clone(), asked[1].1.clone())];
    assert_eq!(eve.meetings, 1);
    // Bob declined: two attended, the one-to-one weight.
    assert!(
        (eve.score_at_last - 2.0).abs() < 1e-12,
        "{}",
        eve.score_at_last
    );
}
