//! Meetings: one occurrence of a calendar event as any provider gives it
//! ([`Occurrence`]), and what capture makes of it ([`Meeting`]): a contact point once it
//! has ended, an upcoming meeting before that, or excluded with a reason. The rules are
//! the default meeting policy (docs/capture-model.md, "Meetings").

use crate::address::EmailAddress;
use crate::classify::Direction;
use crate::company::company_domain;
use crate::extract::{Contact, Extractor};
use crate::tenant::AddressClass;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use thiserror::Error;

/// Longest iCalendar UID accepted (RFC 5545 sets none; providers' are far shorter).
pub const MAX_ICAL_UID_LEN: usize = 1_024;
/// Most attendees one occurrence may list (providers cap invitations well below).
pub const MAX_MEETING_ATTENDEES: usize = 5_000;
/// Longest title kept, in characters; a longer one is cut there.
pub const MAX_TITLE_CHARS: usize = 500;
/// Longest display name kept, in characters; a longer one is cut there.
pub const MAX_NAME_CHARS: usize = 200;

/// An attendee's answer to the invitation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    Accepted,
    Tentative,
    Declined,
    /// Not answered (Google `needsAction`, Graph `none` / `notResponded`).
    #[default]
    NeedsAction,
}

impl Response {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Response::Accepted => "accepted",
            Response::Tentative => "tentative",
            Response::Declined => "declined",
            Response::NeedsAction => "needs_action",
        }
    }

    /// The value of [`Self::as_str`], if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Response::Accepted,
            Response::Tentative,
            Response::Declined,
            Response::NeedsAction,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }
}

/// What kind of calendar entry an occurrence is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// An ordinary event (Google `default`; every Graph event).
    #[default]
    Default,
    FocusTime,
    OutOfOffice,
    WorkingLocation,
}

/// The organizer or an attendee, as the provider names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attendee {
    pub address: EmailAddress,
    pub name: Option<String>,
    pub response: Response,
    /// A room or other resource: never a participant.
    pub resource: bool,
}

/// One occurrence of a calendar event in one calendar, provider-neutral. A single event
/// is one occurrence; a recurring series gives one per instance (Google
/// `singleEvents=true`, Graph `calendarView`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// Google `iCalUID`, Graph `iCalUId`: shared by every copy of an invitation.
    pub ical_uid: String,
    /// For an instance or exception of a series, the start the series gave it (Google
    /// `originalStartTime`, Graph `originalStart`), Unix ms UTC; `None` for a single
    /// event, whose identity is its start. An all-day date is midnight UTC of that date.
    pub original_start_ms: Option<i64>,
    /// Unix ms UTC; an all-day event starts at midnight UTC of its first date.
    pub start_ms: i64,
    /// Unix ms UTC, exclusive.
    pub end_ms: i64,
    pub all_day: bool,
    /// The occurrence or its whole series is cancelled (Google `status: cancelled`,
    /// Graph `isCancelled`).
    pub cancelled: bool,
    pub event_type: EventType,
    /// Graph `showAs: oof`: out of office when nobody else is invited.
    pub shows_as_out_of_office: bool,
    pub organizer: Option<Attendee>,
    /// Attendees as listed, possibly including the organizer and the calendar owner.
    pub attendees: Vec<Attendee>,
    /// Google `visibility: private`, Graph `sensitivity: private | confidential`.
    pub private: bool,
    pub title: Option<String>,
    /// The address of the calendar this copy was read from.
    pub calendar_owner: EmailAddress,
}

/// Why an occurrence cannot be judged; it is never stored.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OccurrenceError {
    #[error("the event has no iCalUID: the provider must give one to deduplicate it")]
    MissingUid,
    #[error("the event's iCalUID is longer than {MAX_ICAL_UID_LEN} bytes")]
    UidTooLong,
    #[error("the event ends ({end_ms}) before it starts ({start_ms})")]
    EndsBeforeStart { start_ms: i64, end_ms: i64 },
    #[error("the event lists {0} attendees, more than the {MAX_MEETING_ATTENDEES} accepted")]
    TooManyAttendees(usize),
}

/// One meeting across every calendar and provider: `ical:` + the original start (Unix
/// ms UTC) + `:` + the iCalUID (kept as given: RFC 5545 UIDs are case-sensitive).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct MeetingKey(String);

impl MeetingKey {
    /// The key of an occurrence of `ical_uid` originally starting at `original_start_ms`.
    pub fn new(ical_uid: &str, original_start_ms: i64) -> Self {
        Self(format!("ical:{original_start_ms}:{}", ical_uid.trim()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why an occurrence is neither a contact point nor an upcoming meeting, in the order
/// the rules are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MeetingExclusion {
    /// The policy's "capture meetings" is off.
    CaptureOff,
    /// The occurrence or its series is cancelled.
    Cancelled,
    FocusTime,
    /// Event type out of office, or Graph `showAs: oof` without anyone else invited.
    OutOfOffice,
    WorkingLocation,
    /// Nobody but the calendar owner (rooms do not count).
    NoOtherAttendees,
    /// No external participant.
    Internal,
    /// Every external attendee declined (an external organizer never did).
    ExternalDeclined,
    /// Starts before the backfill window, or (not yet ended) at or after the horizon.
    OutsideWindow,
}

impl MeetingExclusion {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            MeetingExclusion::CaptureOff => "capture_off",
            MeetingExclusion::Cancelled => "cancelled",
            MeetingExclusion::FocusTime => "focus_time",
            MeetingExclusion::OutOfOffice => "out_of_office",
            MeetingExclusion::WorkingLocation => "working_location",
            MeetingExclusion::NoOtherAttendees => "no_other_attendees",
            MeetingExclusion::Internal => "internal",
            MeetingExclusion::ExternalDeclined => "external_declined",
            MeetingExclusion::OutsideWindow => "outside_window",
        }
    }
}

/// What capture makes of an occurrence at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum MeetingStatus {
    /// It has ended: a contact point, immutable once stored.
    Captured,
    /// It has not ended and starts within the horizon: shown, may still change.
    Upcoming,
    Excluded {
        reason: MeetingExclusion,
    },
}

/// One person at a meeting (rooms are left out), classified like a mail participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeetingParticipant {
    pub address: EmailAddress,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub organizer: bool,
    pub response: Response,
    #[serde(flatten)]
    pub class: AddressClass,
}

impl MeetingParticipant {
    /// True unless they declined: the organizer and every other answer count as there.
    pub fn attends(&self) -> bool {
        self.response != Response::Declined
    }
}

/// An occurrence judged: identity, status, participants, and what the tenant may keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Meeting {
    pub key: MeetingKey,
    pub ical_uid: String,
    pub original_start_ms: i64,
    pub start_ms: i64,
    pub end_ms: i64,
    pub all_day: bool,
    pub status: MeetingStatus,
    /// Outbound when the organizer is a member or internal, inbound otherwise; internal
    /// without any external participant.
    pub direction: Direction,
    /// The organizer first, then attendees in the provider's order, each address once.
    pub participants: Vec<MeetingParticipant>,
    /// Distinct external participants, with their companies.
    pub contacts: Vec<Contact>,
    /// Distinct company domains of the contacts, sorted.
    pub companies: Vec<String>,
    /// Members (primary addresses) who took part: the organizer if a member, and member
    /// attendees who did not decline. Sorted, each once.
    pub took_part: Vec<EmailAddress>,
    /// More participants than the policy's `large_meeting_attendees`: counts for the
    /// company timeline, not for personal relationship scores.
    pub large: bool,
    pub private: bool,
    /// Absent for a private event and under privacy mode `metadata`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub calendar_owner: EmailAddress,
}

impl Meeting {
    pub fn is_captured(&self) -> bool {
        self.status == MeetingStatus::Captured
    }

    pub fn is_upcoming(&self) -> bool {
        self.status == MeetingStatus::Upcoming
    }

    /// True when it feeds personal relationship scores: captured and not large.
    pub fn counts_for_relationships(&self) -> bool {
        self.is_captured() && !self.large
    }
}

impl Occurrence {
    /// Checks what judging relies on: a UID to deduplicate by, an order in time, a
    /// bounded attendee list.
    pub fn validate(&self) -> Result<(), OccurrenceError> {
        let uid = self.ical_uid.trim();
        if uid.is_empty() {
            return Err(OccurrenceError::MissingUid);
        }
        if uid.len() > MAX_ICAL_UID_LEN {
            return Err(OccurrenceError::UidTooLong);
        }
        if self.end_ms < self.start_ms {
            return Err(OccurrenceError::EndsBeforeStart {
                start_ms: self.start_ms,
                end_ms: self.end_ms,
            });
        }
        if self.attendees.len() > MAX_MEETING_ATTENDEES {
            return Err(OccurrenceError::TooManyAttendees(self.attendees.len()));
        }
        Ok(())
    }

    /// The occurrence's identity across calendars and providers.
    pub fn key(&self) -> MeetingKey {
        MeetingKey::new(&self.ical_uid, self.identity_start_ms())
    }

    fn identity_start_ms(&self) -> i64 {
        self.original_start_ms.unwrap_or(self.start_ms)
    }
}

impl Extractor {
    /// Judges one occurrence at `now_ms` with the tenant's directory, free-mail list and
    /// policy (`policy.meetings`, and `policy.privacy` for titles).
    pub fn meeting(
        &self,
        occurrence: &Occurrence,
        now_ms: i64,
    ) -> Result<Meeting, OccurrenceError> {
        occurrence.validate()?;
        let participants = self.meeting_participants(occurrence);
        let contacts = self.meeting_contacts(&participants);
        let companies: BTreeSet<&str> = contacts
            .iter()
            .filter_map(|c| c.company.as_deref())
            .collect();
        let status = self.meeting_status(occurrence, &participants, now_ms);
        let private = occurrence.private;
        let title = occurrence
            .title
            .as_deref()
            .filter(|_| !private && self.policy.privacy.keeps_subject())
            .map(clean_title)
            .filter(|t| !t.is_empty());
        Ok(Meeting {
            key: occurrence.key(),
            ical_uid: occurrence.ical_uid.trim().to_owned(),
            original_start_ms: occurrence.identity_start_ms(),
            start_ms: occurrence.start_ms,
            end_ms: occurrence.end_ms,
            all_day: occurrence.all_day,
            status,
            direction: meeting_direction(&participants),
            took_part: took_part(&participants),
            large: participants.len() > self.policy.meetings.large_meeting_attendees as usize,
            companies: companies.into_iter().map(str::to_owned).collect(),
            contacts,
            participants,
            private,
            title,
            calendar_owner: occurrence.calendar_owner.clone(),
        })
    }

    /// The organizer, then attendees, each person once (a member under any of its
    /// addresses, the first listed kept), rooms left out. An organizer
    /// listed among the attendees too takes that entry's answer (and name, if it had
    /// none); otherwise an organizer has accepted its own meeting.
    fn meeting_participants(&self, occurrence: &Occurrence) -> Vec<MeetingParticipant> {
        let mut participants: Vec<MeetingParticipant> = Vec::new();
        if let Some(organizer) = occurrence.organizer.as_ref().filter(|o| !o.resource) {
            participants.push(MeetingParticipant {
                address: organizer.address.clone(),
                name: bounded_name(organizer.name.as_deref()),
                organizer: true,
                response: Response::Accepted,
                class: self.tenant.classify(&organizer.address),
            });
        }
        for attendee in occurrence.attendees.iter().filter(|a| !a.resource) {
            let class = self.tenant.classify(&attendee.address);
            if let Some(known) = participants
                .iter_mut()
                .find(|p| same_person(p, &attendee.address, &class))
            {
                if known.organizer {
                    known.response = attendee.response;
                }
                if known.name.is_none() {
                    known.name = bounded_name(attendee.name.as_deref());
                }
                continue;
            }
            participants.push(MeetingParticipant {
                address: attendee.address.clone(),
                name: bounded_name(attendee.name.as_deref()),
                organizer: false,
                response: attendee.response,
                class,
            });
        }
        participants
    }

    fn meeting_contacts(&self, participants: &[MeetingParticipant]) -> Vec<Contact> {
        participants
            .iter()
            .filter(|p| p.class == AddressClass::External)
            .map(|p| Contact {
                address: p.address.clone(),
                company: company_domain(p.address.domain(), &self.free_mail, &self.tenant)
                    .map(str::to_owned),
            })
            .collect()
    }

    fn meeting_status(
        &self,
        occurrence: &Occurrence,
        participants: &[MeetingParticipant],
        now_ms: i64,
    ) -> MeetingStatus {
        let excluded = |reason| MeetingStatus::Excluded { reason };
        if let Some(reason) = self.meeting_exclusion(occurrence, participants) {
            return excluded(reason);
        }
        let policy = &self.policy.meetings;
        // The window is half-open: [now − backfill, now + horizon).
        if occurrence.start_ms < policy.window_start_ms(now_ms) {
            return excluded(MeetingExclusion::OutsideWindow);
        }
        if occurrence.end_ms <= now_ms {
            return MeetingStatus::Captured;
        }
        if occurrence.start_ms >= policy.horizon_end_ms(now_ms) {
            return excluded(MeetingExclusion::OutsideWindow);
        }
        MeetingStatus::Upcoming
    }

    /// The first exclusion rule the occurrence meets, whatever the time.
    fn meeting_exclusion(
        &self,
        occurrence: &Occurrence,
        participants: &[MeetingParticipant],
    ) -> Option<MeetingExclusion> {
        if !self.policy.meetings.capture {
            return Some(MeetingExclusion::CaptureOff);
        }
        if occurrence.cancelled {
            return Some(MeetingExclusion::Cancelled);
        }
        let owner = self.tenant.classify(&occurrence.calendar_owner);
        let is_owner = |p: &MeetingParticipant| same_person(p, &occurrence.calendar_owner, &owner);
        let alone = participants.iter().all(is_owner);
        match occurrence.event_type {
            EventType::FocusTime => return Some(MeetingExclusion::FocusTime),
            EventType::OutOfOffice => return Some(MeetingExclusion::OutOfOffice),
            EventType::WorkingLocation => return Some(MeetingExclusion::WorkingLocation),
            EventType::Default if occurrence.shows_as_out_of_office && alone => {
                return Some(MeetingExclusion::OutOfOffice);
            }
            EventType::Default => {}
        }
        if alone {
            return Some(MeetingExclusion::NoOtherAttendees);
        }
        let mut external = participants
            .iter()
            .filter(|p| p.class == AddressClass::External)
            .peekable();
        if external.peek().is_none() {
            return Some(MeetingExclusion::Internal);
        }
        if !external.any(|p| p.organizer || p.attends()) {
            return Some(MeetingExclusion::ExternalDeclined);
        }
        None
    }
}

/// Outbound when the organizer is on the tenant's side, inbound when external or
/// unknown; internal without an external participant (mail's rule).
fn meeting_direction(participants: &[MeetingParticipant]) -> Direction {
    if !participants
        .iter()
        .any(|p| p.class == AddressClass::External)
    {
        return Direction::Internal;
    }
    let organizer = participants.iter().find(|p| p.organizer);
    if organizer.is_some_and(|o| o.class.is_tenant_side()) {
        Direction::Outbound
    } else {
        Direction::Inbound
    }
}

/// The same address, or two addresses of one member.
fn same_person(known: &MeetingParticipant, address: &EmailAddress, class: &AddressClass) -> bool {
    known.address == *address
        || matches!((&known.class, class), (AddressClass::Member { member: a }, AddressClass::Member { member: b }) if a == b)
}

fn took_part(participants: &[MeetingParticipant]) -> Vec<EmailAddress> {
    let members: BTreeSet<&EmailAddress> = participants
        .iter()
        .filter(|p| p.organizer || p.attends())
        .filter_map(|p| match &p.class {
            AddressClass::Member { member } => Some(member),
            _ => None,
        })
        .collect();
    members.into_iter().cloned().collect()
}

/// Whitespace runs become one space (as for mail subjects), cut at
/// [`MAX_TITLE_CHARS`].
fn clean_title(title: &str) -> String {
    collapsed(title, MAX_TITLE_CHARS)
}

/// A display name with whitespace collapsed, cut at [`MAX_NAME_CHARS`]; none if blank.
fn bounded_name(name: Option<&str>) -> Option<String> {
    name.map(|name| collapsed(name, MAX_NAME_CHARS))
        .filter(|name| !name.is_empty())
}

fn collapsed(text: &str, max_chars: usize) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match collapsed.char_indices().nth(max_chars) {
        Some((cut, _)) => collapsed[..cut].to_owned(),
        None => collapsed,
    }
}

#[cfg(test)]
mod tests;
