//! The tenant's policy as an administrator edits it and the store keeps it (JSON), and
//! its translation into the [`CapturePolicy`] and [`FreeMailList`] extraction runs on.

use crate::company::FreeMailList;
use crate::policy::{
    Blocklist, BlocklistError, CalendarSync, CapturePolicy, MeetingPolicy, PrivacyMode,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Longest backfill window an administrator may choose (ten years).
pub const MAX_BACKFILL_DAYS: u32 = 3_650;

/// Longest horizon for upcoming meetings an administrator may choose (one year).
pub const MAX_MEETING_HORIZON_DAYS: u32 = 366;

/// Largest "large meeting" threshold: the bound on a meeting's attendees
/// ([`crate::meeting::MAX_MEETING_ATTENDEES`]).
pub const MAX_LARGE_MEETING_ATTENDEES: u32 = crate::meeting::MAX_MEETING_ATTENDEES as u32;

/// Most entries in each list of the form (blocklist, free-mail additions and removals):
/// every entry is checked against every captured participant.
pub const MAX_POLICY_LIST_ENTRIES: usize = 1_000;

/// Longest entry of a list: an address ([`crate::address::MAX_ADDRESS_LEN`]) or a domain.
pub const MAX_POLICY_ENTRY_LEN: usize = crate::address::MAX_ADDRESS_LEN;

/// The policy form: every field has the contract's default, so `{}` is the default
/// policy and a stored policy missing a newer field keeps working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicySettings {
    /// Sync everyone's Inbox.
    pub sync_inbox: bool,
    /// Sync everyone's Sent mail.
    pub sync_sent: bool,
    /// How many days back the first sync of a mailbox reaches.
    pub backfill_days: u32,
    /// Skip mail without any external participant.
    pub exclude_internal: bool,
    /// Skip newsletters, notifications and auto-replies.
    pub exclude_automated: bool,
    pub privacy: PrivacyMode,
    /// Addresses (`ceo@acme.com`) and domains (`lawfirm.example`) never captured.
    pub blocklist: Vec<String>,
    /// Domains treated as free mail on top of the shipped list (never companies).
    pub extra_free_mail_domains: Vec<String>,
    /// Shipped free-mail domains this tenant treats as companies after all.
    pub removed_free_mail_domains: Vec<String>,
    /// What members (role member) see of the captured activity besides their own.
    pub member_visibility: MemberVisibility,
    /// Meeting capture from calendars.
    pub meetings: MeetingSettings,
}

/// The meeting part of the policy form; `{}` is the default meeting policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeetingSettings {
    /// Capture meetings from everyone's calendar.
    pub capture: bool,
    /// How many days back the first calendar sync reaches.
    pub backfill_days: u32,
    /// How many days ahead upcoming meetings are shown.
    pub horizon_days: u32,
    /// Meetings with more participants count for the company, not for relationships.
    pub large_meeting_attendees: u32,
    /// Whose calendars are captured ("Calendar sync"): `everyone`, `admins`, `nobody`.
    pub calendar_sync: CalendarSync,
}

impl Default for MeetingSettings {
    fn default() -> Self {
        let policy = MeetingPolicy::default();
        Self {
            capture: policy.capture,
            backfill_days: policy.backfill_days,
            horizon_days: policy.horizon_days,
            large_meeting_attendees: policy.large_meeting_attendees,
            calendar_sync: policy.calendar_sync,
        }
    }
}

impl MeetingSettings {
    /// The meeting policy these settings describe; the first problem names the field.
    pub fn meeting_policy(&self) -> Result<MeetingPolicy, PolicyError> {
        if !(1..=MAX_BACKFILL_DAYS).contains(&self.backfill_days) {
            return Err(PolicyError::MeetingBackfillDays(self.backfill_days));
        }
        if self.horizon_days > MAX_MEETING_HORIZON_DAYS {
            return Err(PolicyError::MeetingHorizonDays(self.horizon_days));
        }
        if !(1..=MAX_LARGE_MEETING_ATTENDEES).contains(&self.large_meeting_attendees) {
            return Err(PolicyError::LargeMeetingAttendees(
                self.large_meeting_attendees,
            ));
        }
        Ok(MeetingPolicy {
            capture: self.capture,
            backfill_days: self.backfill_days,
            horizon_days: self.horizon_days,
            large_meeting_attendees: self.large_meeting_attendees,
            calendar_sync: self.calendar_sync,
        })
    }
}

/// What a member sees of the CRM. Administrators always see everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberVisibility {
    /// Only the activities they took part in (one of their addresses is a participant),
    /// the contacts and companies of those, and their own relationships.
    #[default]
    Own,
    /// Also the organization's contact points as metadata: every activity's time,
    /// direction and participants, every contact, company and relationship; the
    /// subject and the capturing mailboxes only of activities they took part in.
    Organization,
}

impl MemberVisibility {
    /// The form and JSON value.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberVisibility::Own => "own",
            MemberVisibility::Organization => "organization",
        }
    }

    /// The value of [`Self::as_str`], if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "own" => Some(MemberVisibility::Own),
            "organization" => Some(MemberVisibility::Organization),
            _ => None,
        }
    }
}

impl Default for PolicySettings {
    fn default() -> Self {
        let policy = CapturePolicy::default();
        PolicySettings {
            sync_inbox: true,
            sync_sent: true,
            backfill_days: policy.backfill_days,
            exclude_internal: policy.exclude_internal,
            exclude_automated: policy.exclude_automated,
            privacy: policy.privacy,
            blocklist: Vec::new(),
            extra_free_mail_domains: Vec::new(),
            removed_free_mail_domains: Vec::new(),
            member_visibility: MemberVisibility::default(),
            meetings: MeetingSettings::default(),
        }
    }
}

/// What is wrong with a policy form, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    #[error("backfill_days must be between 1 and {MAX_BACKFILL_DAYS}, not {0}")]
    BackfillDays(u32),
    #[error("meetings.backfill_days must be between 1 and {MAX_BACKFILL_DAYS}, not {0}")]
    MeetingBackfillDays(u32),
    #[error("meetings.horizon_days must be at most {MAX_MEETING_HORIZON_DAYS}, not {0}")]
    MeetingHorizonDays(u32),
    #[error(
        "meetings.large_meeting_attendees must be between 1 and {MAX_LARGE_MEETING_ATTENDEES}, not {0}"
    )]
    LargeMeetingAttendees(u32),
    #[error("blocklist: {0}")]
    Blocklist(#[from] BlocklistError),
    #[error("{field}: `{entry}` is not a domain")]
    FreeMailDomain { field: &'static str, entry: String },
    #[error("{field}: at most {MAX_POLICY_LIST_ENTRIES} entries, not {count}")]
    TooManyEntries { field: &'static str, count: usize },
    #[error("{field}: an entry is longer than {MAX_POLICY_ENTRY_LEN} characters")]
    EntryTooLong { field: &'static str },
}

impl PolicySettings {
    /// Checks every field; the first problem names the field to fix.
    pub fn validate(&self) -> Result<(), PolicyError> {
        self.check_list_bounds()?;
        self.capture_policy()?;
        self.free_mail_list()?;
        Ok(())
    }

    /// Refuses lists longer than [`MAX_POLICY_LIST_ENTRIES`] or entries longer than
    /// [`MAX_POLICY_ENTRY_LEN`], before any entry is parsed.
    fn check_list_bounds(&self) -> Result<(), PolicyError> {
        for (field, list) in [
            ("blocklist", &self.blocklist),
            ("extra_free_mail_domains", &self.extra_free_mail_domains),
            ("removed_free_mail_domains", &self.removed_free_mail_domains),
        ] {
            if list.len() > MAX_POLICY_LIST_ENTRIES {
                return Err(PolicyError::TooManyEntries {
                    field,
                    count: list.len(),
                });
            }
            if list
                .iter()
                .any(|entry| entry.chars().count() > MAX_POLICY_ENTRY_LEN)
            {
                return Err(PolicyError::EntryTooLong { field });
            }
        }
        Ok(())
    }

    /// The system labels synced for everyone.
    pub fn synced_labels(&self) -> Vec<String> {
        let mut labels = Vec::new();
        if self.sync_inbox {
            labels.push("INBOX".to_owned());
        }
        if self.sync_sent {
            labels.push("SENT".to_owned());
        }
        labels
    }

    /// The capture policy these settings describe.
    pub fn capture_policy(&self) -> Result<CapturePolicy, PolicyError> {
        if !(1..=MAX_BACKFILL_DAYS).contains(&self.backfill_days) {
            return Err(PolicyError::BackfillDays(self.backfill_days));
        }
        let mut blocklist = Blocklist::new();
        for entry in &self.blocklist {
            blocklist.add(entry)?;
        }
        Ok(CapturePolicy {
            exclude_internal: self.exclude_internal,
            exclude_automated: self.exclude_automated,
            blocklist,
            privacy: self.privacy,
            synced_labels: self.synced_labels(),
            backfill_days: self.backfill_days,
            meetings: self.meetings.meeting_policy()?,
        })
    }

    /// The shipped free-mail list with this tenant's additions and removals.
    pub fn free_mail_list(&self) -> Result<FreeMailList, PolicyError> {
        let mut list = FreeMailList::default();
        for domain in &self.extra_free_mail_domains {
            if !list.insert(domain) && !list.is_free_mail(domain) {
                return Err(PolicyError::FreeMailDomain {
                    field: "extra_free_mail_domains",
                    entry: domain.clone(),
                });
            }
        }
        for domain in &self.removed_free_mail_domains {
            list.remove(domain);
        }
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_form_is_the_contract_default() {
        let settings: PolicySettings = serde_json::from_str("{}").unwrap();
        assert_eq!(settings, PolicySettings::default());
        assert_eq!(settings.capture_policy().unwrap(), CapturePolicy::default());
        assert_eq!(settings.free_mail_list().unwrap(), FreeMailList::default());
    }

    #[test]
    fn members_see_only_their_own_unless_the_policy_says_organization() {
        assert_eq!(
            PolicySettings::default().member_visibility,
            MemberVisibility::Own
        );
        let open: PolicySettings =
            serde_json::from_str(r#"{"member_visibility":"organization"}"#).unwrap();
        assert_eq!(open.member_visibility, MemberVisibility::Organization);
        for visibility in [MemberVisibility::Own, MemberVisibility::Organization] {
            assert_eq!(
                MemberVisibility::parse(visibility.as_str()),
                Some(visibility)
            );
        }
        assert!(serde_json::from_str::<PolicySettings>(r#"{"member_visibility":"all"}"#).is_err());
    }

    #[test]
    fn labels_follow_the_inbox_and_sent_switches() {
        let settings = PolicySettings {
            sync_inbox: false,
            ..PolicySettings::default()
        };
        assert_eq!(settings.capture_policy().unwrap().synced_labels, ["SENT"]);
    }

    #[test]
    fn errors_name_the_field() {
        let zero_days = PolicySettings {
            backfill_days: 0,
            ..PolicySettings::default()
        };
        assert_eq!(zero_days.validate(), Err(PolicyError::BackfillDays(0)));
        let bad_block = PolicySettings {
            blocklist: vec!["not a domain".into()],
            ..PolicySettings::default()
        };
        assert!(
            bad_block
                .validate()
                .unwrap_err()
                .to_string()
                .starts_with("blocklist:")
        );
        let bad_free = PolicySettings {
            extra_free_mail_domains: vec!["not a domain".into()],
            ..PolicySettings::default()
        };
        assert!(matches!(
            bad_free.validate(),
            Err(PolicyError::FreeMailDomain {
                field: "extra_free_mail_domains",
                ..
            })
        ));
        let unknown: Result<PolicySettings, _> = serde_json::from_str(r#"{"sync_drafts":true}"#);
        assert!(unknown.unwrap_err().to_string().contains("sync_drafts"));
    }

    #[test]
    fn meeting_settings_default_on_and_name_the_bad_field() {
        let settings: PolicySettings = serde_json::from_str(r#"{"meetings":{}}"#).unwrap();
        let meetings = settings.capture_policy().unwrap().meetings;
        assert_eq!(meetings, MeetingPolicy::default());
        assert!(meetings.capture);
        assert_eq!(
            (
                meetings.backfill_days,
                meetings.horizon_days,
                meetings.large_meeting_attendees
            ),
            (180, 30, 25)
        );
        let off: PolicySettings =
            serde_json::from_str(r#"{"meetings":{"capture":false,"large_meeting_attendees":8}}"#)
                .unwrap();
        let off = off.capture_policy().unwrap().meetings;
        assert!(!off.capture);
        assert_eq!(off.large_meeting_attendees, 8);
        let with = |meetings: MeetingSettings| PolicySettings {
            meetings,
            ..PolicySettings::default()
        };
        let defaults = MeetingSettings::default();
        assert_eq!(
            with(MeetingSettings {
                backfill_days: 0,
                ..defaults
            })
            .validate(),
            Err(PolicyError::MeetingBackfillDays(0))
        );
        assert_eq!(
            with(MeetingSettings {
                horizon_days: 400,
                ..defaults
            })
            .validate(),
            Err(PolicyError::MeetingHorizonDays(400))
        );
        let zero = with(MeetingSettings {
            large_meeting_attendees: 0,
            ..defaults
        })
        .validate()
        .unwrap_err();
        assert!(
            zero.to_string()
                .starts_with("meetings.large_meeting_attendees")
        );
        let admins: PolicySettings =
            serde_json::from_str(r#"{"meetings":{"calendar_sync":"admins"}}"#).unwrap();
        let admins = admins.capture_policy().unwrap().meetings;
        assert!(admins.captures_calendar_of(true) && !admins.captures_calendar_of(false));
        let bad = serde_json::from_str::<PolicySettings>(r#"{"meetings":{"calendar_sync":"all"}}"#);
        assert!(bad.unwrap_err().to_string().contains("everyone"));
        let unknown = serde_json::from_str::<PolicySettings>(r#"{"meetings":{"rooms":true}}"#);
        assert!(unknown.unwrap_err().to_string().contains("rooms"));
    }

    #[test]
    fn lists_are_bounded() {
        let many = PolicySettings {
            blocklist: vec!["a.example".into(); MAX_POLICY_LIST_ENTRIES + 1],
            ..PolicySettings::default()
        };
        assert!(matches!(
            many.validate(),
            Err(PolicyError::TooManyEntries {
                field: "blocklist",
                ..
            })
        ));
        let long = PolicySettings {
            extra_free_mail_domains: vec![format!("{}.example", "a".repeat(100_000))],
            ..PolicySettings::default()
        };
        assert_eq!(
            long.validate(),
            Err(PolicyError::EntryTooLong {
                field: "extra_free_mail_domains"
            })
        );
        let most = PolicySettings {
            blocklist: vec!["a.example".into(); MAX_POLICY_LIST_ENTRIES],
            ..PolicySettings::default()
        };
        assert_eq!(most.validate(), Ok(()));
    }

    #[test]
    fn the_free_mail_list_is_editable() {
        let settings = PolicySettings {
            extra_free_mail_domains: vec!["mail.example".into()],
            removed_free_mail_domains: vec!["gmail.com".into()],
            ..PolicySettings::default()
        };
        let list = settings.free_mail_list().unwrap();
        assert!(list.is_free_mail("mail.example"));
        assert!(!list.is_free_mail("gmail.com"));
    }
}
