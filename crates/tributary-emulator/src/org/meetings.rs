//! Meetings: the organization's calendars as a provider-neutral model, generated from the
//! same organization as the mail, and changed live by the control API. Google Calendar
//! and Graph render the same [`Meeting`]s their own way; the ground truth
//! ([`super::meetings_truth`]) is computed from them. See `docs/emulator-calendar.md`.
//!
//! Every change bumps a store-wide sequence number and stamps it on what changed (a
//! meeting, or one occurrence of a series), so each provider can answer "what changed
//! since token N" for one calendar without keeping a change log.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use super::names::{COMPANIES, FAMILY_NAMES, GIVEN_NAMES};
use crate::model::{DirectoryUser, Organization};

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// Meetings are generated over this window around the reference instant.
pub const PAST_DAYS: i64 = 180;
pub const FUTURE_DAYS: i64 = 30;
/// The resource domain Google gives rooms.
pub const ROOM_DOMAIN: &str = "resource.calendar.google.com";

/// Time zones without daylight saving time, so a weekly series is exactly 7 × 24 h
/// apart in UTC and every offset below is right all year. (IANA name, UTC offset.)
pub const ZONES: &[(&str, i32)] = &[
    ("UTC", 0),
    ("Atlantic/Reykjavik", 0),
    ("Africa/Lagos", 60),
    ("Asia/Kolkata", 330),
    ("Asia/Singapore", 480),
    ("Asia/Tokyo", 540),
    ("America/Phoenix", -420),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Answer {
    NeedsAction,
    Accepted,
    Tentative,
    Declined,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum EventType {
    Default,
    FocusTime,
    OutOfOffice,
    WorkingLocation,
}

/// An address with an optional display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub email: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attendee {
    pub person: Person,
    pub answer: Answer,
    /// A room or other resource: listed, never a participant.
    pub resource: bool,
    pub optional: bool,
}

/// How a series repeats: every `interval_days` days, `count` occurrences in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recurrence {
    pub interval_days: u32,
    pub count: u32,
}

impl Recurrence {
    /// The RRULE line Google lists in `recurrence`.
    pub fn rrule(&self) -> String {
        if self.interval_days.is_multiple_of(7) {
            let weeks = self.interval_days / 7;
            let interval = if weeks > 1 {
                format!(";INTERVAL={weeks}")
            } else {
                String::new()
            };
            format!("RRULE:FREQ=WEEKLY{interval};COUNT={}", self.count)
        } else {
            format!(
                "RRULE:FREQ=DAILY;INTERVAL={};COUNT={}",
                self.interval_days, self.count
            )
        }
    }
}

/// One occurrence of a series that differs from the rule: moved, or cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    pub start_ms: i64,
    pub end_ms: i64,
    pub cancelled: bool,
    pub updated_ms: i64,
    pub changed_seq: u64,
}

/// A single event or a recurring series, as its organizer's calendar holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meeting {
    /// The provider event id shared by every calendar holding it (base32hex).
    pub id: String,
    pub ical_uid: String,
    pub summary: String,
    pub description: String,
    pub location: Option<String>,
    pub organizer: Person,
    pub attendees: Vec<Attendee>,
    pub event_type: EventType,
    pub private: bool,
    /// For all-day events: midnight UTC of the first day and of the day after the last.
    pub start_ms: i64,
    pub end_ms: i64,
    pub all_day: bool,
    /// Index into [`ZONES`].
    pub zone: usize,
    pub recurrence: Option<Recurrence>,
    /// Keyed by the occurrence's original start (epoch ms).
    pub exceptions: BTreeMap<i64, Exception>,
    pub cancelled: bool,
    pub sequence: u32,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub changed_seq: u64,
}

/// One occurrence of a meeting, the overrides of its exception applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    pub original_start_ms: i64,
    pub start_ms: i64,
    pub end_ms: i64,
    pub cancelled: bool,
    /// Whether this is an exception of a series (moved or cancelled alone).
    pub exception: bool,
    pub updated_ms: i64,
    pub changed_seq: u64,
}

impl Meeting {
    pub fn zone_name(&self) -> &'static str {
        ZONES[self.zone].0
    }

    pub fn zone_offset_minutes(&self) -> i32 {
        ZONES[self.zone].1
    }

    pub fn duration_ms(&self) -> i64 {
        self.end_ms - self.start_ms
    }

    /// Every occurrence (one for a single event), cancelled ones included.
    pub fn occurrences(&self) -> Vec<Occurrence> {
        let Some(rule) = self.recurrence else {
            return vec![Occurrence {
                original_start_ms: self.start_ms,
                start_ms: self.start_ms,
                end_ms: self.end_ms,
                cancelled: self.cancelled,
                exception: false,
                updated_ms: self.updated_ms,
                changed_seq: self.changed_seq,
            }];
        };
        (0..i64::from(rule.count))
            .map(|n| {
                let original = self.start_ms + n * i64::from(rule.interval_days) * DAY_MS;
                match self.exceptions.get(&original) {
                    Some(e) => Occurrence {
                        original_start_ms: original,
                        start_ms: e.start_ms,
                        end_ms: e.end_ms,
                        cancelled: self.cancelled || e.cancelled,
                        exception: true,
                        updated_ms: e.updated_ms.max(self.updated_ms),
                        changed_seq: e.changed_seq.max(self.changed_seq),
                    },
                    None => Occurrence {
                        original_start_ms: original,
                        start_ms: original,
                        end_ms: original + self.duration_ms(),
                        cancelled: self.cancelled,
                        exception: false,
                        updated_ms: self.updated_ms,
                        changed_seq: self.changed_seq,
                    },
                }
            })
            .collect()
    }

    /// Whether `original_start_ms` is one of the series' occurrences.
    pub fn has_occurrence(&self, original_start_ms: i64) -> bool {
        match self.recurrence {
            None => original_start_ms == self.start_ms,
            Some(rule) => {
                let step = i64::from(rule.interval_days) * DAY_MS;
                let offset = original_start_ms - self.start_ms;
                offset >= 0 && offset % step == 0 && offset / step < i64::from(rule.count)
            }
        }
    }

    /// The first start and the last end over every occurrence.
    pub fn span(&self) -> (i64, i64) {
        self.occurrences()
            .iter()
            .fold((i64::MAX, i64::MIN), |(lo, hi), o| {
                (lo.min(o.start_ms), hi.max(o.end_ms))
            })
    }

    /// The highest change stamp on the meeting or any of its exceptions.
    pub fn last_change(&self) -> u64 {
        self.exceptions
            .values()
            .map(|e| e.changed_seq)
            .fold(self.changed_seq, u64::max)
    }

    pub fn attendee(&self, email: &str) -> Option<&Attendee> {
        self.attendees
            .iter()
            .find(|a| a.person.email.eq_ignore_ascii_case(email))
    }
}

/// Who belongs to the organization: the members whose calendars exist, and the domains
/// that make an address internal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    /// Primary email (lowercase) → display name, of users with a calendar.
    pub members: BTreeMap<String, String>,
    /// Alias (lowercase) → primary email, primary emails included.
    pub addresses: BTreeMap<String, String>,
    pub domains: Vec<String>,
    /// Members (primary email) whose calendar another provider serves, in one
    /// provider's part of a mixed organization. They stay members, so that both
    /// providers generate the same meetings and the same truth, but their calendars are
    /// not served here.
    pub elsewhere: BTreeSet<String>,
}

impl Directory {
    /// Users who have a calendar: set up (here or, in a mixed organization, at the
    /// other provider), not suspended, not deleted.
    pub fn of(org: &Organization) -> Self {
        let mut directory = Directory {
            domains: org.domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
            ..Directory::default()
        };
        for user in org.users.iter().filter(|u| is_active(u)) {
            let primary = user.primary_email.to_ascii_lowercase();
            let elsewhere = org
                .mailboxes
                .get(&primary)
                .is_some_and(|m| m.hosted_elsewhere);
            if !user.is_mailbox_setup && !elsewhere {
                continue;
            }
            if elsewhere {
                directory.elsewhere.insert(primary.clone());
            }
            directory.members.insert(primary.clone(), user.full_name());
            for address in user.aliases.iter().chain(&user.non_editable_aliases) {
                directory
                    .addresses
                    .insert(address.to_ascii_lowercase(), primary.clone());
            }
            directory.addresses.insert(primary.clone(), primary);
        }
        directory
    }

    /// The member an address belongs to (primary email), if any.
    pub fn member(&self, email: &str) -> Option<&str> {
        self.addresses
            .get(&email.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The member an address belongs to if this provider serves its calendar.
    pub fn served(&self, email: &str) -> Option<&str> {
        self.member(email).filter(|m| !self.elsewhere.contains(*m))
    }

    /// Internal: a member's address, or any address on one of the organization's
    /// domains or their subdomains.
    pub fn is_internal(&self, email: &str) -> bool {
        if self.member(email).is_some() {
            return true;
        }
        let domain = email
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default();
        self.domains
            .iter()
            .any(|d| domain == *d || domain.ends_with(&format!(".{d}")))
    }
}

fn is_active(user: &DirectoryUser) -> bool {
    !user.suspended && !user.deleted && !user.archived
}

/// The calendars of the organization: every meeting, the change sequence, and the
/// oldest sequence each calendar still accepts a sync token from.
#[derive(Debug, Clone, Default)]
pub struct MeetingStore {
    pub directory: Directory,
    pub meetings: Vec<Meeting>,
    /// The last change stamp handed out.
    pub seq: u64,
    /// Calendar (primary email) → tokens below this sequence are expired.
    pub token_floors: BTreeMap<String, u64>,
    /// Every calendar's tokens below this sequence are expired.
    pub global_floor: u64,
    pub now_ms: i64,
}

/// Why a live change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeetingError {
    #[error("no meeting with id {0}")]
    UnknownMeeting(String),
    #[error("{0} is not an occurrence of the series (give its original start)")]
    UnknownOccurrence(String),
    #[error("{0} is not an attendee of the meeting")]
    NotAnAttendee(String),
    #[error("the organizer {0} is not a member with a calendar")]
    OrganizerNotMember(String),
    #[error("the end must be after the start")]
    EmptyRange,
    #[error("a meeting lasts at most 14 days")]
    TooLong,
    #[error("at most {0} attendees")]
    TooManyAttendees(usize),
    #[error("{0:?} is not an email address")]
    BadAddress(String),
}

/// Bounds of live input.
pub const MAX_ATTENDEES: usize = 500;
pub const MAX_TEXT: usize = 1024;

/// A new meeting from the control API.
#[derive(Debug, Clone)]
pub struct NewMeeting {
    pub organizer: String,
    pub attendees: Vec<(String, Answer)>,
    pub summary: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub private: bool,
}

impl MeetingStore {
    pub fn new(directory: Directory, meetings: Vec<Meeting>, now_ms: i64) -> Self {
        let seq = meetings.iter().map(Meeting::last_change).max().unwrap_or(0);
        MeetingStore {
            directory,
            meetings,
            seq,
            token_floors: BTreeMap::new(),
            global_floor: 0,
            now_ms,
        }
    }

    /// Generates the organization's meetings (see [`generate`]).
    pub fn generate(org: &Organization) -> Self {
        let directory = Directory::of(org);
        let meetings = generate(org, &directory);
        MeetingStore::new(directory, meetings, org.now_ms)
    }

    /// The member calendars holding `meeting`: its organizer's and its attendees'.
    pub fn calendars_of(&self, meeting: &Meeting) -> BTreeSet<String> {
        std::iter::once(&meeting.organizer.email)
            .chain(
                meeting
                    .attendees
                    .iter()
                    .filter(|a| !a.resource)
                    .map(|a| &a.person.email),
            )
            .filter_map(|e| self.directory.member(e).map(str::to_string))
            .collect()
    }

    /// Meetings in `calendar` (a member's primary email) as this provider serves it:
    /// none when another provider hosts the calendar.
    pub fn in_calendar(&self, calendar: &str) -> impl Iterator<Item = &Meeting> + '_ {
        let calendar = calendar.to_string();
        let served = !self.directory.elsewhere.contains(&calendar);
        self.meetings
            .iter()
            .filter(move |m| served && self.calendars_of(m).contains(&calendar))
    }

    pub fn find(&self, id: &str) -> Option<&Meeting> {
        self.meetings.iter().find(|m| m.id == id)
    }

    /// Whether a sync token stamped `seq` for `calendar` is still accepted.
    pub fn token_valid(&self, calendar: &str, seq: u64) -> bool {
        let floor = self
            .token_floors
            .get(calendar)
            .copied()
            .unwrap_or(0)
            .max(self.global_floor);
        seq >= floor && seq <= self.seq
    }

    /// Expires every sync token of `calendar`, or of every calendar.
    pub fn expire_tokens(&mut self, calendar: Option<&str>) {
        let next = self.seq + 1;
        self.seq = next;
        match calendar {
            Some(c) => {
                self.token_floors.insert(c.to_ascii_lowercase(), next);
            }
            None => self.global_floor = next,
        }
    }

    fn stamp(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn meeting_mut(&mut self, id: &str) -> Result<&mut Meeting, MeetingError> {
        self.meetings
            .iter_mut()
            .find(|m| m.id == id)
            .ok_or_else(|| MeetingError::UnknownMeeting(id.to_string()))
    }

    /// Creates a meeting organized by a member; the organizer's answer is accepted.
    pub fn create(&mut self, new: NewMeeting, at_ms: i64) -> Result<&Meeting, MeetingError> {
        check_range(new.start_ms, new.end_ms)?;
        if new.attendees.len() > MAX_ATTENDEES {
            return Err(MeetingError::TooManyAttendees(MAX_ATTENDEES));
        }
        for (email, _) in &new.attendees {
            check_address(email)?;
        }
        let organizer = self
            .directory
            .member(&new.organizer)
            .ok_or_else(|| MeetingError::OrganizerNotMember(new.organizer.clone()))?
            .to_string();
        let seq = self.stamp();
        let id = event_id(&format!("live:{seq}:{}", new.summary));
        let domain = organizer
            .rsplit_once('@')
            .map_or("", |(_, d)| d)
            .to_string();
        let mut attendees = vec![Attendee {
            person: self.person(&organizer),
            answer: Answer::Accepted,
            resource: false,
            optional: false,
        }];
        for (email, answer) in &new.attendees {
            let email = email.to_ascii_lowercase();
            if attendees.iter().any(|a| a.person.email == email) {
                continue;
            }
            attendees.push(Attendee {
                person: self.person(&email),
                answer: *answer,
                resource: email.ends_with(ROOM_DOMAIN),
                optional: false,
            });
        }
        self.meetings.push(Meeting {
            ical_uid: format!("{id}@{domain}"),
            id,
            summary: truncate(&new.summary),
            description: String::new(),
            location: None,
            organizer: self.person(&organizer),
            attendees,
            event_type: EventType::Default,
            private: new.private,
            start_ms: new.start_ms,
            end_ms: new.end_ms,
            all_day: false,
            zone: 0,
            recurrence: None,
            exceptions: BTreeMap::new(),
            cancelled: false,
            sequence: 0,
            created_ms: at_ms,
            updated_ms: at_ms,
            changed_seq: seq,
        });
        Ok(self.meetings.last().expect("just pushed"))
    }

    fn person(&self, email: &str) -> Person {
        let primary = self.directory.member(email).unwrap_or(email).to_string();
        Person {
            name: self.directory.members.get(&primary).cloned(),
            email: primary,
        }
    }

    /// Moves a meeting, or one occurrence of a series (by its original start).
    pub fn reschedule(
        &mut self,
        id: &str,
        occurrence: Option<i64>,
        start_ms: i64,
        end_ms: i64,
        at_ms: i64,
    ) -> Result<(), MeetingError> {
        check_range(start_ms, end_ms)?;
        let seq = self.stamp();
        let meeting = self.meeting_mut(id)?;
        meeting.sequence += 1;
        match occurrence.filter(|_| meeting.recurrence.is_some()) {
            None => {
                meeting.start_ms = start_ms;
                meeting.end_ms = end_ms;
                // Moving a whole series drops its per-occurrence moves, as calendars do.
                meeting.exceptions.retain(|_, e| e.cancelled);
                meeting.updated_ms = at_ms;
                meeting.changed_seq = seq;
            }
            Some(original) => {
                if !meeting.has_occurrence(original) {
                    return Err(MeetingError::UnknownOccurrence(rfc3339(original)));
                }
                let cancelled = meeting
                    .exceptions
                    .get(&original)
                    .is_some_and(|e| e.cancelled);
                meeting.exceptions.insert(
                    original,
                    Exception {
                        start_ms,
                        end_ms,
                        cancelled,
                        updated_ms: at_ms,
                        changed_seq: seq,
                    },
                );
            }
        }
        Ok(())
    }

    /// Cancels a meeting (every occurrence), or one occurrence of a series.
    pub fn cancel(
        &mut self,
        id: &str,
        occurrence: Option<i64>,
        at_ms: i64,
    ) -> Result<(), MeetingError> {
        let seq = self.stamp();
        let meeting = self.meeting_mut(id)?;
        meeting.sequence += 1;
        match occurrence.filter(|_| meeting.recurrence.is_some()) {
            None => {
                meeting.cancelled = true;
                meeting.updated_ms = at_ms;
                meeting.changed_seq = seq;
            }
            Some(original) => {
                if !meeting.has_occurrence(original) {
                    return Err(MeetingError::UnknownOccurrence(rfc3339(original)));
                }
                let duration = meeting.duration_ms();
                let exception = meeting.exceptions.entry(original).or_insert(Exception {
                    start_ms: original,
                    end_ms: original + duration,
                    cancelled: true,
                    updated_ms: at_ms,
                    changed_seq: seq,
                });
                exception.cancelled = true;
                exception.updated_ms = at_ms;
                exception.changed_seq = seq;
            }
        }
        Ok(())
    }

    /// An attendee answers the invitation (for the whole meeting).
    pub fn answer(
        &mut self,
        id: &str,
        attendee: &str,
        answer: Answer,
        at_ms: i64,
    ) -> Result<(), MeetingError> {
        let seq = self.stamp();
        let primary = self
            .directory
            .member(attendee)
            .unwrap_or(attendee)
            .to_ascii_lowercase();
        let meeting = self.meeting_mut(id)?;
        let found = meeting
            .attendees
            .iter_mut()
            .find(|a| a.person.email.eq_ignore_ascii_case(&primary))
            .ok_or_else(|| MeetingError::NotAnAttendee(attendee.to_string()))?;
        found.answer = answer;
        meeting.updated_ms = at_ms;
        meeting.changed_seq = seq;
        Ok(())
    }
}

fn check_range(start_ms: i64, end_ms: i64) -> Result<(), MeetingError> {
    if end_ms <= start_ms {
        return Err(MeetingError::EmptyRange);
    }
    if end_ms - start_ms > 14 * DAY_MS {
        return Err(MeetingError::TooLong);
    }
    Ok(())
}

fn check_address(email: &str) -> Result<(), MeetingError> {
    let ok = email.len() <= 254
        && email.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && d.contains('.') && !email.contains(char::is_whitespace)
        });
    if ok {
        Ok(())
    } else {
        Err(MeetingError::BadAddress(email.chars().take(80).collect()))
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(MAX_TEXT).collect()
}

/// An instant as RFC 3339 in UTC (`2026-03-17T08:00:00Z`).
pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The UTC date of an instant (all-day events are stored at midnight UTC).
pub fn utc_date(ms: i64) -> NaiveDate {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .date_naive()
}

/// A Google-shaped event id: lowercase base32hex (`0-9a-v`), 26 characters.
pub fn event_id(seed: &str) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    Sha256::digest(seed.as_bytes())
        .iter()
        .take(26)
        .map(|b| ALPHABET[usize::from(b % 32)] as char)
        .collect()
}

// ---------------------------------------------------------------------------------------
// Generation

/// Per member, at most this many meetings of each kind, so tests stay fast.
const EXTERNAL_MEETINGS: usize = 8;
const INVITATIONS: usize = 3;
const FOCUS_BLOCKS: usize = 3;
const COMPANIES_MET: usize = 8;
const CONTACTS_PER_COMPANY: usize = 3;

struct Generator<'a> {
    rng: ChaCha8Rng,
    directory: &'a Directory,
    members: Vec<(String, String)>,
    externals: Vec<Vec<Person>>,
    rooms: Vec<Person>,
    now_ms: i64,
    serial: usize,
    meetings: Vec<Meeting>,
}

/// The organization's meetings over [`PAST_DAYS`] before and [`FUTURE_DAYS`] after its
/// reference instant, deterministic from the organization (its customer id seeds them):
/// meetings with customers organized by members (several members invited to some),
/// invitations from customers (some declined or tentative), a weekly customer series
/// with a moved and a cancelled occurrence, internal one-to-ones, a monthly all-hands, a
/// large customer briefing, focus time, out-of-office and working-location blocks,
/// private meetings, personal events without attendees, and a cancelled meeting.
pub fn generate(org: &Organization, directory: &Directory) -> Vec<Meeting> {
    let seed = Sha256::digest(format!("meetings:{}:{}", org.customer_id, org.now_ms).as_bytes());
    let mut seed_bytes = [0u8; 32];
    seed_bytes.copy_from_slice(&seed);
    let mut rng = ChaCha8Rng::from_seed(seed_bytes);
    let externals = external_people(&mut rng);
    let rooms = (1..=3)
        .map(|n| Person {
            email: format!(
                "c_room{n}{}@{ROOM_DOMAIN}",
                org.customer_id.to_ascii_lowercase()
            ),
            name: Some(format!("HQ-{n}-Meeting room ({})", 4 * n + 2)),
        })
        .collect();
    let mut generator = Generator {
        rng,
        directory,
        members: directory
            .members
            .iter()
            .map(|(e, n)| (e.clone(), n.clone()))
            .collect(),
        externals,
        rooms,
        now_ms: org.now_ms - org.now_ms.rem_euclid(HOUR_MS),
        serial: 0,
        meetings: Vec::new(),
    };
    generator.run();
    generator.meetings
}

fn external_people(rng: &mut ChaCha8Rng) -> Vec<Vec<Person>> {
    let mut companies: Vec<_> = COMPANIES.iter().collect();
    companies.shuffle(rng);
    companies
        .into_iter()
        .take(COMPANIES_MET)
        .map(|company| {
            (0..CONTACTS_PER_COMPANY)
                .map(|_| {
                    let given = GIVEN_NAMES.choose(rng).expect("names");
                    let family = FAMILY_NAMES.choose(rng).expect("names");
                    Person {
                        email: format!("{}.{}@{}", given.ascii, family.ascii, company.domain),
                        name: Some(format!("{} {}", given.display, family.display)),
                    }
                })
                .collect()
        })
        .collect()
}

impl Generator<'_> {
    fn run(&mut self) {
        let members = self.members.clone();
        for (index, (email, _)) in members.iter().enumerate() {
            for _ in 0..EXTERNAL_MEETINGS {
                self.customer_meeting(email, index);
            }
            for _ in 0..INVITATIONS {
                self.invitation(email);
            }
            for _ in 0..FOCUS_BLOCKS {
                self.block(email, EventType::FocusTime);
            }
            self.block(email, EventType::OutOfOffice);
            self.block(email, EventType::WorkingLocation);
            self.personal_event(email);
            if index % 2 == 0 {
                self.customer_series(email);
            }
            if let Some((peer, _)) = members.get(index + 1) {
                self.one_to_ones(email, peer);
            }
        }
        if let Some((first, _)) = members.first() {
            self.all_hands(first);
            self.customer_briefing(first);
        }
    }

    fn next_id(&mut self, organizer: &str) -> (String, String) {
        self.serial += 1;
        let id = event_id(&format!("{organizer}:{}", self.serial));
        let domain = organizer.rsplit_once('@').map_or("", |(_, d)| d);
        let uid = if self.directory.is_internal(organizer) {
            format!("{id}@google.com")
        } else {
            // Invitations from outside carry the sender's own UID form.
            format!("{}@{domain}", id.to_ascii_uppercase())
        };
        (id, uid)
    }

    /// A working-hours slot on a random day in the window, in the zone's local time.
    fn slot(&mut self, zone: usize, minutes: i64) -> (i64, i64) {
        let day = self.rng.gen_range(-PAST_DAYS..FUTURE_DAYS);
        let local_hour = self.rng.gen_range(9..17);
        let half = self.rng.gen_range(0..2) * 30;
        let midnight = self.now_ms - self.now_ms.rem_euclid(DAY_MS) + day * DAY_MS;
        let offset = i64::from(ZONES[zone].1) * MINUTE_MS;
        let start = midnight + local_hour * HOUR_MS + half * MINUTE_MS - offset;
        (start, start + minutes * MINUTE_MS)
    }

    fn member_person(&self, email: &str) -> Person {
        Person {
            email: email.to_string(),
            name: self.directory.members.get(email).cloned(),
        }
    }

    fn attendee(person: Person, answer: Answer) -> Attendee {
        Attendee {
            person,
            answer,
            resource: false,
            optional: false,
        }
    }

    fn zone_of(&self, email: &str) -> usize {
        usize::from(Sha256::digest(email.as_bytes())[0]) % ZONES.len()
    }

    fn external_answer(&mut self) -> Answer {
        match self.rng.gen_range(0..10) {
            0 => Answer::Declined,
            1 => Answer::Tentative,
            2 => Answer::NeedsAction,
            _ => Answer::Accepted,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        organizer: Person,
        attendees: Vec<Attendee>,
        summary: String,
        (start_ms, end_ms): (i64, i64),
        zone: usize,
        event_type: EventType,
        recurrence: Option<Recurrence>,
    ) -> usize {
        let (id, ical_uid) = self.next_id(&organizer.email);
        let created_ms = start_ms.min(self.now_ms) - self.rng.gen_range(1..20) * DAY_MS;
        self.meetings.push(Meeting {
            id,
            ical_uid,
            description: format!("Agenda: {summary}"),
            summary,
            location: None,
            organizer,
            attendees,
            event_type,
            private: false,
            start_ms,
            end_ms,
            all_day: false,
            zone,
            recurrence,
            exceptions: BTreeMap::new(),
            cancelled: false,
            sequence: 0,
            created_ms,
            updated_ms: created_ms,
            changed_seq: 0,
        });
        self.meetings.len() - 1
    }

    fn company(&mut self) -> usize {
        self.rng.gen_range(0..self.externals.len())
    }

    /// A member meets one or two people of a customer, sometimes with a colleague and a
    /// room; a few are private, a few cancelled, a few declined by every guest.
    fn customer_meeting(&mut self, organizer: &str, index: usize) {
        let company = self.company();
        let guests = self.rng.gen_range(1..=2);
        let mut attendees = vec![Self::attendee(
            self.member_person(organizer),
            Answer::Accepted,
        )];
        let everyone_declines = self.rng.gen_ratio(1, 12);
        for person in self.externals[company].clone().into_iter().take(guests) {
            let answer = if everyone_declines {
                Answer::Declined
            } else {
                self.external_answer()
            };
            attendees.push(Self::attendee(person, answer));
        }
        if self.rng.gen_ratio(1, 3) && self.members.len() > 1 {
            let colleague = self.members[(index + 1) % self.members.len()].0.clone();
            let answer = if self.rng.gen_ratio(1, 5) {
                Answer::Declined
            } else {
                Answer::Accepted
            };
            attendees.push(Self::attendee(self.member_person(&colleague), answer));
        }
        if self.rng.gen_ratio(1, 3) {
            let room = self.rooms.choose(&mut self.rng).expect("rooms").clone();
            attendees.push(Attendee {
                person: room,
                answer: Answer::Accepted,
                resource: true,
                optional: false,
            });
        }
        let zone = self.zone_of(organizer);
        let minutes = *[30, 45, 60].choose(&mut self.rng).expect("durations");
        let slot = self.slot(zone, minutes);
        let summary = format!("Call with {}", company_name(&self.externals[company][0]));
        let at = self.push(
            self.member_person(organizer),
            attendees,
            summary,
            slot,
            zone,
            EventType::Default,
            None,
        );
        if self.rng.gen_ratio(1, 8) {
            self.meetings[at].private = true;
        } else if self.rng.gen_ratio(1, 10) {
            self.meetings[at].cancelled = true;
        }
    }

    /// A customer invites the member (the member answers).
    fn invitation(&mut self, member: &str) {
        let company = self.company();
        let organizer = self.externals[company][0].clone();
        let answer = match self.rng.gen_range(0..6) {
            0 => Answer::Declined,
            1 => Answer::Tentative,
            2 => Answer::NeedsAction,
            _ => Answer::Accepted,
        };
        let attendees = vec![
            Self::attendee(organizer.clone(), Answer::Accepted),
            Self::attendee(self.member_person(member), answer),
        ];
        let zone = self.rng.gen_range(0..ZONES.len());
        let slot = self.slot(zone, 60);
        let summary = format!("{} / {}: review", company_name(&organizer), "Larkspur");
        self.push(
            organizer,
            attendees,
            summary,
            slot,
            zone,
            EventType::Default,
            None,
        );
    }

    /// A weekly customer series with one occurrence moved and one cancelled.
    fn customer_series(&mut self, organizer: &str) {
        let company = self.company();
        let mut attendees = vec![Self::attendee(
            self.member_person(organizer),
            Answer::Accepted,
        )];
        for person in self.externals[company].clone().into_iter().take(2) {
            attendees.push(Self::attendee(person, Answer::Accepted));
        }
        let zone = self.zone_of(organizer);
        let (start, _) = self.slot(zone, 30);
        let start = start.min(self.now_ms - 10 * 7 * DAY_MS);
        let rule = Recurrence {
            interval_days: 7,
            count: 14,
        };
        let summary = format!("{} weekly sync", company_name(&self.externals[company][0]));
        let at = self.push(
            self.member_person(organizer),
            attendees,
            summary,
            (start, start + 30 * MINUTE_MS),
            zone,
            EventType::Default,
            Some(rule),
        );
        let meeting = &mut self.meetings[at];
        let moved = meeting.start_ms + 2 * 7 * DAY_MS;
        meeting.exceptions.insert(
            moved,
            Exception {
                start_ms: moved + DAY_MS + HOUR_MS,
                end_ms: moved + DAY_MS + HOUR_MS + 30 * MINUTE_MS,
                cancelled: false,
                updated_ms: meeting.created_ms,
                changed_seq: 0,
            },
        );
        let dropped = meeting.start_ms + 5 * 7 * DAY_MS;
        meeting.exceptions.insert(
            dropped,
            Exception {
                start_ms: dropped,
                end_ms: dropped + 30 * MINUTE_MS,
                cancelled: true,
                updated_ms: meeting.created_ms,
                changed_seq: 0,
            },
        );
    }

    /// Internal-only weekly one-to-ones (never a contact point).
    fn one_to_ones(&mut self, organizer: &str, peer: &str) {
        let attendees = vec![
            Self::attendee(self.member_person(organizer), Answer::Accepted),
            Self::attendee(self.member_person(peer), Answer::Accepted),
        ];
        let zone = self.zone_of(organizer);
        let (start, _) = self.slot(zone, 30);
        let start = start.min(self.now_ms - 8 * 7 * DAY_MS);
        let rule = Recurrence {
            interval_days: 14,
            count: 8,
        };
        self.push(
            self.member_person(organizer),
            attendees,
            "1:1".to_string(),
            (start, start + 30 * MINUTE_MS),
            zone,
            EventType::Default,
            Some(rule),
        );
    }

    /// A monthly all-hands with every member (internal only).
    fn all_hands(&mut self, organizer: &str) {
        let attendees = self
            .members
            .clone()
            .iter()
            .map(|(e, _)| {
                let answer = if e == organizer {
                    Answer::Accepted
                } else {
                    self.external_answer()
                };
                Self::attendee(self.member_person(e), answer)
            })
            .collect();
        let start = self.now_ms - self.now_ms.rem_euclid(DAY_MS) - 170 * DAY_MS + 16 * HOUR_MS;
        self.push(
            self.member_person(organizer),
            attendees,
            "All-hands".to_string(),
            (start, start + HOUR_MS),
            0,
            EventType::Default,
            Some(Recurrence {
                interval_days: 28,
                count: 7,
            }),
        );
    }

    /// A briefing with every member and more than 25 customer people: a large meeting.
    fn customer_briefing(&mut self, organizer: &str) {
        let mut attendees: Vec<Attendee> = self
            .members
            .clone()
            .iter()
            .map(|(e, _)| Self::attendee(self.member_person(e), Answer::Accepted))
            .collect();
        for person in self.externals.clone().into_iter().flatten() {
            let answer = self.external_answer();
            attendees.push(Self::attendee(person, answer));
        }
        let start = self.now_ms - self.now_ms.rem_euclid(DAY_MS) - 20 * DAY_MS + 15 * HOUR_MS;
        self.push(
            self.member_person(organizer),
            attendees,
            "Quarterly customer briefing".to_string(),
            (start, start + 90 * MINUTE_MS),
            0,
            EventType::Default,
            None,
        );
    }

    /// Focus time (a timed block), out of office (all-day, several days) or working
    /// location (all-day): only the owner's own calendar.
    fn block(&mut self, member: &str, kind: EventType) {
        let zone = self.zone_of(member);
        let owner = self.member_person(member);
        let (summary, span, all_day) = match kind {
            EventType::FocusTime => ("Focus time", self.slot(zone, 120), false),
            EventType::OutOfOffice => ("Out of office", self.all_day_span(3), true),
            _ => ("Home", self.all_day_span(1), true),
        };
        let at = self.push(
            owner,
            Vec::new(),
            summary.to_string(),
            span,
            zone,
            kind,
            None,
        );
        self.meetings[at].all_day = all_day;
    }

    fn all_day_span(&mut self, days: i64) -> (i64, i64) {
        let day = self.rng.gen_range(-PAST_DAYS..FUTURE_DAYS);
        let start = self.now_ms - self.now_ms.rem_euclid(DAY_MS) + day * DAY_MS;
        (start, start + days * DAY_MS)
    }

    /// A personal appointment with no guest (all-day on some members).
    fn personal_event(&mut self, member: &str) {
        let zone = self.zone_of(member);
        let all_day = self.rng.gen_bool(0.5);
        let span = if all_day {
            self.all_day_span(1)
        } else {
            self.slot(zone, 60)
        };
        let at = self.push(
            self.member_person(member),
            Vec::new(),
            "Dentist".to_string(),
            span,
            zone,
            EventType::Default,
            None,
        );
        self.meetings[at].all_day = all_day;
        self.meetings[at].private = true;
    }
}

/// A company's display name from one of its people's domain.
fn company_name(person: &Person) -> &'static str {
    let domain = person.email.rsplit_once('@').map_or("", |(_, d)| d);
    COMPANIES
        .iter()
        .find(|c| c.domain == domain)
        .map_or("Customer", |c| c.name)
}

/// `YYYY-MM-DD` of midnight-UTC epoch ms.
pub fn date_string(ms: i64) -> String {
    let date = utc_date(ms);
    format!("{:04}-{:02}-{:02}", date.year(), date.month(), date.day())
}

/// The meeting store as a provider's state holds it: read by listings, written by the
/// control API.
#[derive(Debug, Default)]
pub struct SharedMeetings {
    inner: std::sync::RwLock<MeetingStore>,
}

impl SharedMeetings {
    pub fn new(store: MeetingStore) -> Self {
        SharedMeetings {
            inner: std::sync::RwLock::new(store),
        }
    }

    /// A panicking writer leaves every meeting whole (changes are single assignments),
    /// so a poisoned lock is still used.
    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, MeetingStore> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn write(&self) -> std::sync::RwLockWriteGuard<'_, MeetingStore> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
