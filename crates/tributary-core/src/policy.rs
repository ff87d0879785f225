//! The tenant's capture policy: what is excluded and how much of a message is kept.

use crate::address::{AddressError, EmailAddress, domain_and_parents, normalize_domain};
use foldhash::HashSet;
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use thiserror::Error;

/// How much of a captured message is kept. Bodies are never kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrivacyMode {
    /// Participants, time and keys only: no subject.
    Metadata,
    /// Metadata plus the subject.
    #[default]
    Subject,
    /// Subject plus the provider's short snippet.
    Snippet,
}

impl PrivacyMode {
    /// True when the subject is kept.
    pub fn keeps_subject(self) -> bool {
        matches!(self, PrivacyMode::Subject | PrivacyMode::Snippet)
    }

    /// True when the snippet is kept.
    pub fn keeps_snippet(self) -> bool {
        self == PrivacyMode::Snippet
    }
}

/// A privacy mode name that is not `metadata`, `subject` or `snippet`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown privacy mode `{0}` (expected metadata, subject or snippet)")]
pub struct UnknownPrivacyMode(pub String);

impl FromStr for PrivacyMode {
    type Err = UnknownPrivacyMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "metadata" => Ok(PrivacyMode::Metadata),
            "subject" => Ok(PrivacyMode::Subject),
            "snippet" => Ok(PrivacyMode::Snippet),
            _ => Err(UnknownPrivacyMode(s.to_owned())),
        }
    }
}

/// A blocklist entry that is neither an address nor a domain.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid blocklist entry `{entry}`: {source}")]
pub struct BlocklistError {
    pub entry: String,
    pub source: AddressError,
}

/// Addresses and domains whose mail is never captured. A blocked domain blocks its
/// subdomains too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blocklist {
    addresses: HashSet<String>,
    domains: HashSet<String>,
}

impl Blocklist {
    /// An empty blocklist.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry: an address when it contains `@` (`ceo@acme.com`), else a domain
    /// (`lawfirm.example`, also `@lawfirm.example`).
    pub fn add(&mut self, entry: &str) -> Result<(), BlocklistError> {
        let trimmed = entry.trim();
        let invalid = |source| BlocklistError {
            entry: entry.to_owned(),
            source,
        };
        match trimmed.rfind('@') {
            Some(at) if at > 0 => {
                let address = EmailAddress::parse(trimmed).map_err(invalid)?;
                self.addresses.insert(address.as_str().to_owned());
            }
            _ => {
                let domain = normalize_domain(trimmed).map_err(invalid)?;
                self.domains.insert(domain);
            }
        }
        Ok(())
    }

    /// True when the address, its domain or a parent domain is blocked.
    pub fn blocks(&self, address: &EmailAddress) -> bool {
        self.addresses.contains(address.as_str())
            || (!self.domains.is_empty()
                && domain_and_parents(address.domain()).any(|d| self.domains.contains(d)))
    }

    /// True when nothing is blocked.
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty() && self.domains.is_empty()
    }
}

/// What capture excludes and keeps. The default is the contract's default policy:
/// automated and internal mail excluded, empty blocklist, privacy mode `subject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturePolicy {
    /// Exclude mail without any external participant.
    pub exclude_internal: bool,
    /// Exclude automated mail (see [`crate::automated`]).
    pub exclude_automated: bool,
    /// Exclude any message with a blocked participant, in any role.
    pub blocklist: Blocklist,
    pub privacy: PrivacyMode,
    /// Labels or folders synced; a sighting counts when it carries one (case-insensitive).
    pub synced_labels: Vec<String>,
    /// How far back from `now` a sighting's `internalDate` may lie, in days.
    pub backfill_days: u32,
    /// Which calendar occurrences become meetings (see [`crate::meeting`]).
    pub meetings: MeetingPolicy,
}

/// What meeting capture considers (docs/capture-model.md, "Meetings"). The default is
/// the default meeting policy: on, 180 days back, 30 days ahead, large above 25.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeetingPolicy {
    /// Capture calendars at all.
    pub capture: bool,
    /// Occurrences starting at most this many days before `now` are considered.
    pub backfill_days: u32,
    /// Occurrences not yet ended and starting less than this many days after `now` are
    /// upcoming meetings.
    pub horizon_days: u32,
    /// A meeting with more participants than this counts for the organization (company
    /// timeline) but not for personal relationship scores.
    pub large_meeting_attendees: u32,
    /// Whose calendars are read: the "Calendar sync" permission.
    pub calendar_sync: CalendarSync,
}

/// The "Calendar sync" permission (Planhat's role permission beside "Email sync"):
/// whose calendars are captured. Tributary's members have a role from the directory
/// (administrator or not), so the choice is by that role, which an admin can check on
/// the Users page, rather than a list to keep up to date by hand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalendarSync {
    /// Every linked member's calendar.
    #[default]
    Everyone,
    /// Only members the directory marks as administrators.
    Admins,
    /// Nobody's: mail only.
    Nobody,
}

impl CalendarSync {
    /// The form and JSON value.
    pub fn as_str(self) -> &'static str {
        match self {
            CalendarSync::Everyone => "everyone",
            CalendarSync::Admins => "admins",
            CalendarSync::Nobody => "nobody",
        }
    }

    /// The value of [`Self::as_str`], if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        [
            CalendarSync::Everyone,
            CalendarSync::Admins,
            CalendarSync::Nobody,
        ]
        .into_iter()
        .find(|choice| choice.as_str() == text)
    }
}

impl MeetingPolicy {
    /// Whether the engine reads the calendar of a member whose directory role is
    /// administrator (`directory_admin`) or not: meeting capture must be on and the
    /// "Calendar sync" permission must include the member.
    pub fn captures_calendar_of(&self, directory_admin: bool) -> bool {
        self.capture
            && match self.calendar_sync {
                CalendarSync::Everyone => true,
                CalendarSync::Admins => directory_admin,
                CalendarSync::Nobody => false,
            }
    }

    /// The earliest start (Unix ms) an occurrence may have to be considered at `now_ms`.
    pub fn window_start_ms(&self, now_ms: i64) -> i64 {
        now_ms.saturating_sub(i64::from(self.backfill_days) * MILLIS_PER_DAY)
    }

    /// The horizon (Unix ms) at `now_ms`: an upcoming meeting starts before it.
    pub fn horizon_end_ms(&self, now_ms: i64) -> i64 {
        now_ms.saturating_add(i64::from(self.horizon_days) * MILLIS_PER_DAY)
    }
}

impl Default for MeetingPolicy {
    fn default() -> Self {
        Self {
            capture: true,
            backfill_days: 180,
            horizon_days: 30,
            large_meeting_attendees: 25,
            calendar_sync: CalendarSync::Everyone,
        }
    }
}

const MILLIS_PER_DAY: i64 = 86_400_000;

impl CapturePolicy {
    /// Whether a mailbox "sees" a sighting: it carries a synced label and its provider
    /// receipt time lies within the backfill window ending at `now_ms` (both ends
    /// included). A sighting without a receipt time is judged on its labels alone.
    pub fn sees(&self, record: &crate::message::MessageRecord, now_ms: i64) -> bool {
        let labelled = record.labels.iter().any(|label| {
            self.synced_labels
                .iter()
                .any(|synced| synced.eq_ignore_ascii_case(label))
        });
        let window_start = now_ms.saturating_sub(i64::from(self.backfill_days) * MILLIS_PER_DAY);
        labelled
            && record
                .internal_date_ms
                .is_none_or(|received| (window_start..=now_ms).contains(&received))
    }
}

impl Default for CapturePolicy {
    fn default() -> Self {
        Self {
            exclude_internal: true,
            exclude_automated: true,
            blocklist: Blocklist::new(),
            privacy: PrivacyMode::Subject,
            synced_labels: vec!["INBOX".to_owned(), "SENT".to_owned()],
            backfill_days: 365,
            meetings: MeetingPolicy::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(raw: &str) -> EmailAddress {
        EmailAddress::parse(raw).unwrap()
    }

    #[test]
    fn blocks_addresses_and_domains_with_subdomains() {
        let mut blocklist = Blocklist::new();
        blocklist.add("CEO@Globex.com").unwrap();
        blocklist.add("@lawfirm.example").unwrap();
        assert!(blocklist.blocks(&address("ceo@globex.com")));
        assert!(!blocklist.blocks(&address("cfo@globex.com")));
        assert!(blocklist.blocks(&address("x@lawfirm.example")));
        assert!(blocklist.blocks(&address("x@eu.lawfirm.example")));
        assert!(!blocklist.blocks(&address("x@notlawfirm.example")));
        assert!(blocklist.add("not a domain").is_err());
    }

    #[test]
    fn sees_synced_labels_within_the_backfill_window() {
        let policy = CapturePolicy::default();
        let now = 1_750_000_000_000;
        let record = |labels: &[&str], days_ago: i64| crate::message::MessageRecord {
            labels: labels.iter().map(|l| l.to_string()).collect(),
            internal_date_ms: Some(now - days_ago * MILLIS_PER_DAY),
            ..Default::default()
        };
        assert!(policy.sees(&record(&["INBOX", "UNREAD"], 10), now));
        assert!(policy.sees(&record(&["SENT"], 365), now));
        assert!(!policy.sees(&record(&["SENT"], 366), now));
        assert!(!policy.sees(&record(&["INBOX"], -1), now));
        assert!(!policy.sees(&record(&["SPAM"], 1), now));
        assert!(!policy.sees(&record(&["TRASH", "DRAFT"], 1), now));
    }

    #[test]
    fn meeting_window_reaches_back_and_ahead_from_now() {
        let policy = MeetingPolicy::default();
        let now = 1_750_000_000_000;
        assert_eq!(policy.window_start_ms(now), now - 180 * MILLIS_PER_DAY);
        assert_eq!(policy.horizon_end_ms(now), now + 30 * MILLIS_PER_DAY);
        assert!(policy.capture);
        assert_eq!(policy.large_meeting_attendees, 25);
    }

    #[test]
    fn calendar_sync_decides_whose_calendar_is_read() {
        let with = |capture, calendar_sync| MeetingPolicy {
            capture,
            calendar_sync,
            ..MeetingPolicy::default()
        };
        let cases = [
            (true, CalendarSync::Everyone, [true, true]),
            (true, CalendarSync::Admins, [false, true]),
            (true, CalendarSync::Nobody, [false, false]),
            (false, CalendarSync::Everyone, [false, false]),
        ];
        for (capture, sync, [member, admin]) in cases {
            let policy = with(capture, sync);
            assert_eq!(policy.captures_calendar_of(false), member, "{sync:?}");
            assert_eq!(policy.captures_calendar_of(true), admin, "{sync:?}");
        }
        for choice in [
            CalendarSync::Everyone,
            CalendarSync::Admins,
            CalendarSync::Nobody,
        ] {
            assert_eq!(CalendarSync::parse(choice.as_str()), Some(choice));
        }
        assert_eq!(CalendarSync::parse("all"), None);
    }

    #[test]
    fn privacy_modes_parse_and_gate_fields() {
        assert_eq!("Metadata".parse(), Ok(PrivacyMode::Metadata));
        assert!("body".parse::<PrivacyMode>().is_err());
        assert!(!PrivacyMode::Metadata.keeps_subject());
        assert!(PrivacyMode::Subject.keeps_subject() && !PrivacyMode::Subject.keeps_snippet());
        assert!(PrivacyMode::Snippet.keeps_snippet());
        assert_eq!(CapturePolicy::default().privacy, PrivacyMode::Subject);
    }
}
