//! Properties of meeting capture that must hold for any occurrence: identity and
//! judgement do not depend on which calendar or in which order attendees are listed, and
//! a meeting never leaves "captured" as time goes on within the window.

use proptest::prelude::*;
use tributary_core::relationship::RelationshipBook;
use tributary_core::{
    Attendee, CapturePolicy, EmailAddress, EventType, Extractor, FreeMailList, MeetingStatus,
    Occurrence, Response, TenantDirectory,
};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
const NOW: i64 = 1_749_945_600_000;

fn extractor() -> Extractor {
    let mut tenant = TenantDirectory::new();
    tenant.add_domain("acme.com").unwrap();
    tenant
        .add_member("ann@acme.com", ["ann.lee@acme.com"])
        .unwrap();
    tenant.add_member("carl@acme.com", []).unwrap();
    Extractor::new(tenant, FreeMailList::default(), CapturePolicy::default())
}

const PEOPLE: [&str; 7] = [
    "ann@acme.com",
    "ann.lee@acme.com",
    "carl@acme.com",
    "sales@acme.com",
    "bob@globex.com",
    "dana@gmail.com",
    "erin@initech.co.uk",
];

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        Just(Response::Accepted),
        Just(Response::Tentative),
        Just(Response::Declined),
        Just(Response::NeedsAction),
    ]
}

fn attendee() -> impl Strategy<Value = Attendee> {
    (0..PEOPLE.len(), response(), prop::bool::weighted(0.1)).prop_map(|(i, response, resource)| {
        Attendee {
            address: EmailAddress::parse(PEOPLE[i]).unwrap(),
            name: None,
            response,
            resource,
        }
    })
}

fn occurrence() -> impl Strategy<Value = Occurrence> {
    (
        -200i64..40,
        1i64..8,
        prop::option::of(attendee()),
        prop::collection::vec(attendee(), 0..8),
        any::<bool>(),
        any::<bool>(),
        0..3usize,
    )
        .prop_map(
            |(day, hours, organizer, attendees, cancelled, private, owner)| {
                let start = NOW + day * DAY_MS;
                Occurrence {
                    ical_uid: "prop@acme.com".into(),
                    original_start_ms: None,
                    start_ms: start,
                    end_ms: start + hours * HOUR_MS,
                    all_day: false,
                    cancelled,
                    event_type: EventType::Default,
                    shows_as_out_of_office: false,
                    organizer,
                    attendees,
                    private,
                    title: Some("Title".into()),
                    calendar_owner: EmailAddress::parse(PEOPLE[owner]).unwrap(),
                }
            },
        )
}

/// The same attendees with each person once, as a provider lists them (Ann's two
/// addresses are one person: which of two entries counts depends on the order).
fn distinct(attendees: &mut Vec<Attendee>) {
    let person = |a: &Attendee| a.address.as_str().replace("ann.lee@", "ann@");
    let mut seen = Vec::new();
    attendees.retain(|a| {
        let fresh = !seen.contains(&person(a));
        seen.push(person(a));
        fresh
    });
}

proptest! {
    #[test]
    fn attendee_order_changes_nothing_but_the_listing(mut occ in occurrence(), seed in any::<u64>()) {
        distinct(&mut occ.attendees);
        let extractor = extractor();
        let a = extractor.meeting(&occ, NOW).unwrap();
        let mut shuffled = occ.clone();
        let len = shuffled.attendees.len();
        if len > 1 {
            shuffled.attendees.rotate_left((seed as usize) % len);
        }
        let b = extractor.meeting(&shuffled, NOW).unwrap();
        prop_assert_eq!(a.status, b.status);
        prop_assert_eq!(a.direction, b.direction);
        prop_assert_eq!(&a.took_part, &b.took_part);
        prop_assert_eq!(a.large, b.large);
        prop_assert_eq!(a.key, b.key);
    }

    #[test]
    fn once_captured_a_meeting_stays_captured_within_the_window(occ in occurrence(), later_days in 0i64..150) {
        let extractor = extractor();
        let now = NOW;
        let first = extractor.meeting(&occ, now).unwrap();
        let later = now + later_days * DAY_MS;
        let within = occ.start_ms >= later - 180 * DAY_MS;
        if first.is_captured() && within {
            prop_assert_eq!(extractor.meeting(&occ, later).unwrap().status, MeetingStatus::Captured);
        }
    }

    #[test]
    fn only_captured_small_meetings_build_relationships(occ in occurrence()) {
        let meeting = extractor().meeting(&occ, NOW).unwrap();
        let mut book = RelationshipBook::new();
        book.record_meeting(&meeting);
        if !meeting.counts_for_relationships() {
            prop_assert!(book.is_empty());
        }
        for (member, _, stats) in book.iter() {
            prop_assert!(meeting.took_part.contains(member));
            prop_assert!(stats.score_at(NOW) > 0.0);
            prop_assert_eq!(stats.meetings, 1);
        }
        if meeting.private {
            prop_assert_eq!(meeting.title, None);
        }
    }
}
