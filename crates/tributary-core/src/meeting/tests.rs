use super::*;
use crate::company::FreeMailList;
use crate::policy::{CapturePolicy, PrivacyMode};
use crate::relationship::{RelationshipBook, Touch, meeting_weight};
use crate::tenant::TenantDirectory;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// A fixed "now": 2025-06-15T00:00Z.
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

fn address(raw: &str) -> EmailAddress {
    EmailAddress::parse(raw).unwrap()
}

fn person(raw: &str, response: Response) -> Attendee {
    Attendee {
        address: address(raw),
        name: None,
        response,
        resource: false,
    }
}

fn room(raw: &str) -> Attendee {
    Attendee {
        resource: true,
        ..person(raw, Response::Accepted)
    }
}

/// Ann (in her own calendar) meets Bob of Globex for an hour, `days` from now.
fn ann_meets_bob(days: i64) -> Occurrence {
    let start = NOW + days * DAY_MS;
    Occurrence {
        ical_uid: "kickoff-1@acme.com".into(),
        original_start_ms: None,
        start_ms: start,
        end_ms: start + HOUR_MS,
        all_day: false,
        cancelled: false,
        event_type: EventType::Default,
        shows_as_out_of_office: false,
        organizer: Some(person("ann@acme.com", Response::Accepted)),
        attendees: vec![
            person("ann@acme.com", Response::Accepted),
            person("bob@mail.globex.co.uk", Response::Accepted),
        ],
        private: false,
        title: Some("  Kickoff \n call ".into()),
        calendar_owner: address("ann@acme.com"),
    }
}

fn judge(occurrence: &Occurrence) -> Meeting {
    extractor().meeting(occurrence, NOW).unwrap()
}

fn exclusion(occurrence: &Occurrence) -> Option<MeetingExclusion> {
    match judge(occurrence).status {
        MeetingStatus::Excluded { reason } => Some(reason),
        _ => None,
    }
}

#[test]
fn an_ended_meeting_with_a_customer_is_a_contact_point() {
    let meeting = judge(&ann_meets_bob(-2));
    assert_eq!(meeting.status, MeetingStatus::Captured);
    assert_eq!(meeting.direction, Direction::Outbound);
    assert_eq!(meeting.title.as_deref(), Some("Kickoff call"));
    assert_eq!(meeting.companies, ["globex.co.uk"]);
    assert_eq!(meeting.took_part, [address("ann@acme.com")]);
    let who: Vec<_> = meeting
        .participants
        .iter()
        .map(|p| (p.address.as_str(), p.organizer))
        .collect();
    assert_eq!(
        who,
        [("ann@acme.com", true), ("bob@mail.globex.co.uk", false)]
    );
    assert!(!meeting.large && meeting.counts_for_relationships());
}

#[test]
fn an_external_organizer_makes_it_inbound() {
    let mut occurrence = ann_meets_bob(-2);
    occurrence.organizer = Some(person("bob@mail.globex.co.uk", Response::Accepted));
    assert_eq!(judge(&occurrence).direction, Direction::Inbound);
}

#[test]
fn a_meeting_moves_from_upcoming_to_captured_when_it_ends() {
    let occurrence = ann_meets_bob(3);
    let extractor = extractor();
    let at = |now| extractor.meeting(&occurrence, now).unwrap().status;
    assert_eq!(at(NOW), MeetingStatus::Upcoming);
    // Under way: still upcoming, it may yet change.
    assert_eq!(at(occurrence.start_ms + 1), MeetingStatus::Upcoming);
    assert_eq!(at(occurrence.end_ms - 1), MeetingStatus::Upcoming);
    assert_eq!(at(occurrence.end_ms), MeetingStatus::Captured);
}

#[test]
fn the_window_reaches_back_180_days_and_ahead_30() {
    let outside = Some(MeetingExclusion::OutsideWindow);
    assert_eq!(exclusion(&ann_meets_bob(-180)), None);
    assert_eq!(exclusion(&ann_meets_bob(-181)), outside);
    assert_eq!(exclusion(&ann_meets_bob(29)), None);
    let mut last_minute = ann_meets_bob(30);
    last_minute.start_ms -= 60_000;
    assert_eq!(exclusion(&last_minute), None);
    assert_eq!(exclusion(&ann_meets_bob(30)), outside);
}

#[test]
fn capture_off_excludes_everything() {
    let mut extractor = extractor();
    extractor.policy.meetings.capture = false;
    let status = extractor.meeting(&ann_meets_bob(-1), NOW).unwrap().status;
    assert_eq!(
        status,
        MeetingStatus::Excluded {
            reason: MeetingExclusion::CaptureOff
        }
    );
}

#[test]
fn cancelled_occurrences_are_excluded() {
    let mut occurrence = ann_meets_bob(-1);
    occurrence.cancelled = true;
    assert_eq!(exclusion(&occurrence), Some(MeetingExclusion::Cancelled));
    // Upcoming ones too: a cancellation removes an upcoming meeting.
    let mut ahead = ann_meets_bob(5);
    ahead.cancelled = true;
    assert_eq!(exclusion(&ahead), Some(MeetingExclusion::Cancelled));
}

#[test]
fn focus_time_out_of_office_and_working_location_are_excluded() {
    for (event_type, reason) in [
        (EventType::FocusTime, MeetingExclusion::FocusTime),
        (EventType::OutOfOffice, MeetingExclusion::OutOfOffice),
        (
            EventType::WorkingLocation,
            MeetingExclusion::WorkingLocation,
        ),
    ] {
        let mut occurrence = ann_meets_bob(-1);
        occurrence.event_type = event_type;
        assert_eq!(exclusion(&occurrence), Some(reason));
    }
}

#[test]
fn graph_show_as_oof_counts_as_out_of_office_only_without_attendees() {
    let mut alone = ann_meets_bob(-1);
    alone.shows_as_out_of_office = true;
    alone.attendees.clear();
    assert_eq!(exclusion(&alone), Some(MeetingExclusion::OutOfOffice));
    let mut invited = ann_meets_bob(-1);
    invited.shows_as_out_of_office = true;
    assert_eq!(exclusion(&invited), None);
}

#[test]
fn events_without_another_attendee_are_excluded_rooms_and_aliases_included() {
    let mut occurrence = ann_meets_bob(-1);
    occurrence.attendees = vec![
        person("ann.lee@acme.com", Response::Accepted),
        room("room-4@resource.calendar.google.com"),
    ];
    assert_eq!(
        exclusion(&occurrence),
        Some(MeetingExclusion::NoOtherAttendees)
    );
    occurrence.organizer = None;
    occurrence.attendees.clear();
    assert_eq!(
        exclusion(&occurrence),
        Some(MeetingExclusion::NoOtherAttendees)
    );
}

#[test]
fn internal_only_meetings_are_excluded() {
    let mut occurrence = ann_meets_bob(-1);
    occurrence.attendees = vec![
        person("carl@acme.com", Response::Accepted),
        person("sales@eu.acme.com", Response::Accepted),
    ];
    assert_eq!(exclusion(&occurrence), Some(MeetingExclusion::Internal));
    assert_eq!(judge(&occurrence).direction, Direction::Internal);
}

#[test]
fn meetings_every_external_attendee_declined_are_excluded() {
    let mut occurrence = ann_meets_bob(-1);
    occurrence.attendees = vec![
        person("bob@mail.globex.co.uk", Response::Declined),
        person("dana@initech.com", Response::Declined),
        person("carl@acme.com", Response::Accepted),
    ];
    assert_eq!(
        exclusion(&occurrence),
        Some(MeetingExclusion::ExternalDeclined)
    );
    // One external still tentatively coming: a contact point.
    occurrence.attendees[1].response = Response::Tentative;
    assert_eq!(exclusion(&occurrence), None);
    // An external organizer is there whoever declined.
    occurrence.attendees[1].response = Response::Declined;
    occurrence.organizer = Some(person("erin@hooli.com", Response::Accepted));
    assert_eq!(exclusion(&occurrence), None);
}

#[test]
fn who_took_part_is_the_organizer_and_members_who_did_not_decline() {
    let mut occurrence = ann_meets_bob(-1);
    occurrence.organizer = Some(person("bob@mail.globex.co.uk", Response::Accepted));
    occurrence.attendees = vec![
        person("ann.lee@acme.com", Response::Tentative),
        person("carl@acme.com", Response::Declined),
        person("sales@acme.com", Response::Accepted),
        room("board-room@acme.com"),
    ];
    let meeting = judge(&occurrence);
    assert_eq!(meeting.took_part, [address("ann@acme.com")]);
    assert!(
        meeting
            .participants
            .iter()
            .all(|p| !p.address.as_str().starts_with("board"))
    );
    // The member organizer took part even if listed as declining.
    occurrence.organizer = Some(person("carl@acme.com", Response::Accepted));
    occurrence
        .attendees
        .push(person("bob@mail.globex.co.uk", Response::Accepted));
    let meeting = judge(&occurrence);
    assert_eq!(
        meeting.took_part,
        [address("ann@acme.com"), address("carl@acme.com")]
    );
    assert_eq!(meeting.participants[0].response, Response::Declined);
}

#[test]
fn private_events_keep_time_and_participants_but_no_title() {
    let mut occurrence = ann_meets_bob(-1);
    occurrence.private = true;
    let meeting = judge(&occurrence);
    assert_eq!(meeting.title, None);
    assert!(meeting.is_captured() && meeting.private);
    assert_eq!(meeting.participants.len(), 2);
    assert_eq!(meeting.start_ms, occurrence.start_ms);
    // A stricter policy (no subjects) drops every title.
    let mut strict = extractor();
    strict.policy.privacy = PrivacyMode::Metadata;
    let public = strict.meeting(&ann_meets_bob(-1), NOW).unwrap();
    assert_eq!(public.title, None);
}

#[test]
fn the_large_meeting_rule_is_configurable() {
    let mut occurrence = ann_meets_bob(-1);
    occurrence.attendees = (0..25)
        .map(|i| person(&format!("guest{i}@globex.com"), Response::Accepted))
        .collect();
    // Ann plus 25 guests: 26 participants, above the default 25.
    let meeting = judge(&occurrence);
    assert!(meeting.large && meeting.is_captured());
    assert!(!meeting.counts_for_relationships());
    let mut roomy = extractor();
    roomy.policy.meetings.large_meeting_attendees = 26;
    assert!(!roomy.meeting(&occurrence, NOW).unwrap().large);
}

#[test]
fn one_occurrence_is_one_meeting_across_calendars() {
    let ann_copy = ann_meets_bob(-1);
    let mut carl_copy = ann_copy.clone();
    carl_copy.calendar_owner = address("carl@acme.com");
    carl_copy
        .attendees
        .push(person("carl@acme.com", Response::Accepted));
    let (a, b) = (judge(&ann_copy), judge(&carl_copy));
    assert_eq!(a.key, b.key);
    assert_eq!(
        a.key.as_str(),
        format!("ical:{}:kickoff-1@acme.com", ann_copy.start_ms)
    );
}

#[test]
fn recurring_exceptions_keep_their_identity_and_cancellations_exclude() {
    let series_uid = "weekly-7@acme.com";
    let instance = |week: i64| {
        let mut occurrence = ann_meets_bob(-30 + 7 * week);
        occurrence.ical_uid = series_uid.into();
        occurrence.original_start_ms = Some(occurrence.start_ms);
        occurrence
    };
    let keys: BTreeSet<MeetingKey> = (0..4).map(|w| judge(&instance(w)).key).collect();
    assert_eq!(keys.len(), 4, "each occurrence is its own contact point");
    // An exception moved by two hours keeps the key of the slot it replaces.
    let mut moved = instance(1);
    moved.start_ms += 2 * HOUR_MS;
    moved.end_ms += 2 * HOUR_MS;
    assert_eq!(judge(&moved).key, judge(&instance(1)).key);
    assert_eq!(judge(&moved).start_ms, instance(1).start_ms + 2 * HOUR_MS);
    // A cancelled instance is excluded; its neighbours are not.
    let mut cancelled = instance(2);
    cancelled.cancelled = true;
    assert_eq!(exclusion(&cancelled), Some(MeetingExclusion::Cancelled));
    assert_eq!(exclusion(&instance(3)), None);
}

#[test]
fn bad_occurrences_get_a_specific_error() {
    let extractor = extractor();
    let mut no_uid = ann_meets_bob(-1);
    no_uid.ical_uid = "  ".into();
    assert_eq!(
        extractor.meeting(&no_uid, NOW).unwrap_err(),
        OccurrenceError::MissingUid
    );
    let mut long_uid = ann_meets_bob(-1);
    long_uid.ical_uid = "u".repeat(MAX_ICAL_UID_LEN + 1);
    assert_eq!(
        extractor.meeting(&long_uid, NOW).unwrap_err(),
        OccurrenceError::UidTooLong
    );
    let mut backwards = ann_meets_bob(-1);
    backwards.end_ms = backwards.start_ms - 1;
    assert!(matches!(
        extractor.meeting(&backwards, NOW),
        Err(OccurrenceError::EndsBeforeStart { .. })
    ));
    let mut crowd = ann_meets_bob(-1);
    crowd.attendees = vec![person("x@globex.com", Response::Accepted); MAX_MEETING_ATTENDEES + 1];
    assert_eq!(
        extractor.meeting(&crowd, NOW).unwrap_err(),
        OccurrenceError::TooManyAttendees(MAX_MEETING_ATTENDEES + 1)
    );
}

#[test]
fn long_titles_and_names_are_cut() {
    let mut occurrence = ann_meets_bob(-1);
    occurrence.title = Some("é".repeat(MAX_TITLE_CHARS + 10));
    occurrence.attendees[1].name = Some("B".repeat(MAX_NAME_CHARS * 2));
    occurrence.attendees[0].name = Some("  ".into());
    let meeting = judge(&occurrence);
    assert_eq!(meeting.title.unwrap().chars().count(), MAX_TITLE_CHARS);
    let bob = &meeting.participants[1];
    assert_eq!(bob.name.as_deref().map(str::len), Some(MAX_NAME_CHARS));
    assert_eq!(meeting.participants[0].name, None);
}

#[test]
fn a_meeting_weighs_more_than_a_mail_and_large_ones_do_not_count() {
    let meeting = judge(&ann_meets_bob(-1));
    assert!(meeting_weight(&meeting) > crate::relationship::SENT_WEIGHT);
    let (ann, bob) = (address("ann@acme.com"), address("bob@mail.globex.co.uk"));
    let mut book = RelationshipBook::new();
    book.record_meeting(&meeting);
    let stats = book.get(&ann, &bob).unwrap();
    assert_eq!((stats.meetings, stats.total), (1, 0));
    assert_eq!(stats.last_ms, meeting.start_ms);
    let met = stats.score_at(NOW);

    let mail = extractor().extract(&crate::message::MessageRecord::from_rfc5322(
        b"From: ann@acme.com\nTo: bob@mail.globex.co.uk\nDate: Sat, 14 Jun 2025 00:00:00 +0000\n",
    ));
    let mut mail_book = RelationshipBook::new();
    mail_book.record(&Touch::from_extraction(&mail).unwrap());
    assert!(met > mail_book.get(&ann, &bob).unwrap().score_at(NOW));

    let mut large = ann_meets_bob(-1);
    large.attendees = (0..30)
        .map(|i| person(&format!("g{i}@globex.com"), Response::Accepted))
        .collect();
    let mut upcoming_and_large = RelationshipBook::new();
    upcoming_and_large.record_meeting(&judge(&large));
    upcoming_and_large.record_meeting(&judge(&ann_meets_bob(2)));
    assert!(upcoming_and_large.is_empty());
}

#[test]
fn contacts_who_declined_gain_no_relationship() {
    let mut occurrence = ann_meets_bob(-1);
    occurrence
        .attendees
        .push(person("dana@initech.com", Response::Declined));
    let mut book = RelationshipBook::new();
    book.record_meeting(&judge(&occurrence));
    let ann = address("ann@acme.com");
    assert!(book.get(&ann, &address("bob@mail.globex.co.uk")).is_some());
    assert!(book.get(&ann, &address("dana@initech.com")).is_none());
}

#[test]
fn a_member_listed_under_two_addresses_is_one_participant() {
    let mut occurrence = ann_meets_bob(-1);
    occurrence
        .attendees
        .push(person("ann.lee@acme.com", Response::Declined));
    let meeting = judge(&occurrence);
    assert_eq!(meeting.participants.len(), 2);
    assert_eq!(meeting.participants[0].address, address("ann@acme.com"));
    assert_eq!(meeting.took_part, [address("ann@acme.com")]);
}
