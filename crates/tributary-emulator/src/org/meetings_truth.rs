//! The meetings a correct capture produces from the calendars, under the default meeting
//! policy (`docs/emulator-calendar.md`): written here independently of `tributary-core`,
//! from the generator's structured model, never from what a provider renders.
//!
//! An occurrence is identified by (iCalUID, original start in UTC). It is a captured
//! meeting once it has ended and started within the backfill window, an upcoming meeting
//! while it has not ended and starts within the horizon. Excluded: cancelled occurrences,
//! focus time, out of office, working location, events with no participant besides the
//! calendar owner, internal-only meetings, meetings every external guest declined.

use std::collections::BTreeSet;

use serde::Serialize;

use super::meetings::{Answer, DAY_MS, EventType, Meeting, MeetingStore, Occurrence, rfc3339};

/// The default meeting policy's knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MeetingPolicy {
    /// The instant the truth is computed at (epoch ms).
    pub now_ms: i64,
    pub backfill_days: i64,
    pub horizon_days: i64,
    /// Above this many participants a meeting counts for the organization only.
    pub large_meeting_attendees: usize,
}

impl MeetingPolicy {
    pub fn default_at(now_ms: i64) -> Self {
        MeetingPolicy {
            now_ms,
            backfill_days: 180,
            horizon_days: 30,
            large_meeting_attendees: 25,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TruthParticipant {
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub response: Answer,
    pub organizer: bool,
    pub internal: bool,
}

/// One occurrence as a contact point (or an upcoming meeting).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TruthMeeting {
    pub ical_uid: String,
    /// RFC 3339, UTC: with `ical_uid`, the occurrence's identity.
    pub original_start: String,
    pub start: String,
    pub end: String,
    pub all_day: bool,
    /// `None` for private meetings: only time and participants are kept.
    pub title: Option<String>,
    pub private: bool,
    pub organizer: String,
    /// `outbound` when a member organized it, `inbound` otherwise.
    pub direction: &'static str,
    /// Organizer first, then attendees; rooms left out.
    pub participants: Vec<TruthParticipant>,
    /// Members who took part: the organizer if internal, and internal attendees who did
    /// not decline.
    pub members: Vec<String>,
    /// Member calendars holding the meeting.
    pub calendars: Vec<String>,
    /// More participants than `large_meeting_attendees`: counts for the organization,
    /// not for personal relationships.
    pub large: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeetingsTruth {
    pub policy: MeetingPolicy,
    /// Ended occurrences, by (start, iCalUID).
    pub meetings: Vec<TruthMeeting>,
    /// Occurrences not ended yet that start within the horizon.
    pub upcoming: Vec<TruthMeeting>,
}

impl MeetingsTruth {
    pub fn compute(store: &MeetingStore, policy: MeetingPolicy) -> Self {
        let mut truth = MeetingsTruth {
            policy,
            meetings: Vec::new(),
            upcoming: Vec::new(),
        };
        let earliest = policy.now_ms - policy.backfill_days * DAY_MS;
        let horizon = policy.now_ms + policy.horizon_days * DAY_MS;
        for meeting in &store.meetings {
            let Some(participants) = contact_participants(store, meeting) else {
                continue;
            };
            for occurrence in meeting.occurrences() {
                if occurrence.cancelled || occurrence.start_ms < earliest {
                    continue;
                }
                let ended = occurrence.end_ms <= policy.now_ms;
                if !ended && occurrence.start_ms >= horizon {
                    continue;
                }
                let record = truth_meeting(store, meeting, &occurrence, &participants, policy);
                if ended {
                    truth.meetings.push(record);
                } else {
                    truth.upcoming.push(record);
                }
            }
        }
        for list in [&mut truth.meetings, &mut truth.upcoming] {
            list.sort_by(|a, b| {
                (&a.start, &a.ical_uid, &a.original_start).cmp(&(
                    &b.start,
                    &b.ical_uid,
                    &b.original_start,
                ))
            });
        }
        truth
    }
}

/// The meeting's participants if it can be a contact point at all, `None` when a rule
/// excludes it whatever the occurrence.
fn contact_participants(store: &MeetingStore, meeting: &Meeting) -> Option<Vec<TruthParticipant>> {
    if meeting.event_type != EventType::Default {
        return None;
    }
    let directory = &store.directory;
    let organizer_email = canonical(store, &meeting.organizer.email);
    let mut seen = BTreeSet::new();
    let mut participants = Vec::new();
    let organizer_answer = meeting
        .attendee(&meeting.organizer.email)
        .map_or(Answer::Accepted, |a| a.answer);
    seen.insert(organizer_email.clone());
    participants.push(TruthParticipant {
        internal: directory.is_internal(&organizer_email),
        email: organizer_email,
        name: meeting.organizer.name.clone(),
        response: organizer_answer,
        organizer: true,
    });
    for attendee in meeting.attendees.iter().filter(|a| !a.resource) {
        let email = canonical(store, &attendee.person.email);
        if !seen.insert(email.clone()) {
            continue;
        }
        participants.push(TruthParticipant {
            internal: directory.is_internal(&email),
            email,
            name: attendee.person.name.clone(),
            response: attendee.answer,
            organizer: false,
        });
    }
    if participants.len() < 2 {
        return None;
    }
    let externals: Vec<&TruthParticipant> = participants.iter().filter(|p| !p.internal).collect();
    if externals.is_empty() {
        return None;
    }
    let organizer_external = !participants[0].internal;
    if !organizer_external && externals.iter().all(|p| p.response == Answer::Declined) {
        return None;
    }
    Some(participants)
}

fn canonical(store: &MeetingStore, email: &str) -> String {
    store
        .directory
        .member(email)
        .map_or_else(|| email.to_ascii_lowercase(), str::to_string)
}

fn truth_meeting(
    store: &MeetingStore,
    meeting: &Meeting,
    occurrence: &Occurrence,
    participants: &[TruthParticipant],
    policy: MeetingPolicy,
) -> TruthMeeting {
    let members = participants
        .iter()
        .filter(|p| p.internal && store.directory.members.contains_key(&p.email))
        .filter(|p| p.organizer || p.response != Answer::Declined)
        .map(|p| p.email.clone())
        .collect();
    TruthMeeting {
        ical_uid: meeting.ical_uid.clone(),
        original_start: rfc3339(occurrence.original_start_ms),
        start: rfc3339(occurrence.start_ms),
        end: rfc3339(occurrence.end_ms),
        all_day: meeting.all_day,
        title: (!meeting.private).then(|| meeting.summary.clone()),
        private: meeting.private,
        organizer: participants[0].email.clone(),
        direction: if participants[0].internal {
            "outbound"
        } else {
            "inbound"
        },
        participants: participants.to_vec(),
        members,
        calendars: store.calendars_of(meeting).into_iter().collect(),
        large: participants.len() > policy.large_meeting_attendees,
    }
}
