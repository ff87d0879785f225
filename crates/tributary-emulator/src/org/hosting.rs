//! A company mid-migration: one generated organization whose mailboxes are split
//! between Google Workspace and Microsoft 365. Both emulators serve the same
//! organization (the same people, the same RFC messages with the same Message-IDs);
//! a [`MailboxSplit`] says which of them holds each member's mailbox, and
//! [`MailboxSplit::part`] cuts the organization one provider serves. The ground truth
//! stays the whole organization's: a tenant connected to both providers must capture
//! all of it, each message once. See `docs/emulator-organization.md`, "Mixed
//! organizations".

use super::Generated;
use crate::model::{Mailbox, Organization};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A provider that can host a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Host {
    Google,
    Microsoft,
}

/// Which provider hosts each member's mailbox. Members named in neither set stay at
/// Google (where a migration to Microsoft 365 starts).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxSplit {
    /// Primary addresses (any case) whose mailbox moved to Microsoft 365.
    #[serde(default)]
    pub microsoft: BTreeSet<String>,
    /// Primary addresses whose mailbox is at both: copied to Microsoft 365 and not yet
    /// removed from Google.
    #[serde(default)]
    pub both: BTreeSet<String>,
}

/// A split naming someone the organization does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("the split names {0}, who is not a user of the organization (give primary addresses)")]
    UnknownUser(String),
    #[error("the split lists {0} both as moved to Microsoft 365 and as at both providers")]
    Twice(String),
}

impl MailboxSplit {
    /// Every other user (by primary address, the second first) moves to Microsoft
    /// 365, so that both providers host members and most conversations cross between
    /// them.
    pub fn alternate(org: &Organization) -> Self {
        let mut primaries: Vec<String> = org
            .users
            .iter()
            .map(|u| u.primary_email.to_ascii_lowercase())
            .collect();
        primaries.sort();
        MailboxSplit {
            microsoft: primaries.into_iter().skip(1).step_by(2).collect(),
            both: BTreeSet::new(),
        }
    }

    /// Refuses a split naming an unknown user or a user twice.
    pub fn validate(&self, org: &Organization) -> Result<(), SplitError> {
        for address in self.microsoft.iter().chain(&self.both) {
            let known = org
                .users
                .iter()
                .any(|u| u.primary_email.eq_ignore_ascii_case(address));
            if !known {
                return Err(SplitError::UnknownUser(address.clone()));
            }
        }
        let lowered = |set: &BTreeSet<String>| -> BTreeSet<String> {
            set.iter().map(|a| a.to_ascii_lowercase()).collect()
        };
        match lowered(&self.microsoft)
            .intersection(&lowered(&self.both))
            .next()
        {
            Some(address) => Err(SplitError::Twice(address.clone())),
            None => Ok(()),
        }
    }

    /// Whether `host` holds the mailbox of the user whose primary address is `primary`.
    pub fn hosts(&self, host: Host, primary: &str) -> bool {
        let named = |set: &BTreeSet<String>| set.iter().any(|a| a.eq_ignore_ascii_case(primary));
        match host {
            Host::Google => !named(&self.microsoft),
            Host::Microsoft => named(&self.microsoft) || named(&self.both),
        }
    }

    /// The organization as `host` serves it. Every user stays in its directory, as
    /// in a real migration (identities are synced to both before any mailbox moves);
    /// a user whose mailbox is elsewhere is listed without one there (Google:
    /// `isMailboxSetup: false`, Gmail answering "Mail service not enabled"; Microsoft:
    /// an unlicensed user, `mail: null`, no proxy addresses), and that mailbox is empty.
    /// Calendars follow the mailbox: both providers generate the whole organization's
    /// meetings (same iCalUIDs), and each serves only the calendars it hosts
    /// (`Mailbox::hosted_elsewhere`, `meetings::Directory::served`).
    pub fn part(&self, org: &Organization, host: Host) -> Organization {
        let mut part = org.clone();
        for user in &mut part.users {
            if self.hosts(host, &user.primary_email) {
                continue;
            }
            // Only a user who has a mailbox somewhere has a calendar elsewhere.
            let elsewhere = user.is_mailbox_setup;
            user.is_mailbox_setup = false;
            let email = user.primary_email.to_ascii_lowercase();
            if let Some(mailbox) = part.mailboxes.get_mut(&email) {
                let mut empty = Mailbox::new(&email, mailbox.history_id);
                empty.mail_enabled = false;
                empty.hosted_elsewhere = elsewhere;
                *mailbox = empty;
            }
        }
        part
    }

    /// [`MailboxSplit::part`] of a generated organization, with the whole
    /// organization's ground truth: what a tenant connected to both providers must
    /// capture.
    pub fn generated_part(&self, generated: &Generated, host: Host) -> Generated {
        Generated {
            org: self.part(&generated.org, host),
            truth: generated.truth.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::{OrgConfig, generate};

    fn small() -> Generated {
        generate(&OrgConfig {
            users: 8,
            messages_per_user: 30,
            ..OrgConfig::default()
        })
    }

    fn enabled(org: &Organization) -> BTreeSet<String> {
        org.users
            .iter()
            .filter(|u| u.is_mailbox_setup)
            .filter(|u| {
                org.mailboxes
                    .get(&u.primary_email.to_ascii_lowercase())
                    .is_some_and(|m| m.mail_enabled)
            })
            .map(|u| u.primary_email.to_ascii_lowercase())
            .collect()
    }

    #[test]
    fn every_mailbox_is_served_by_exactly_one_provider_and_every_user_is_listed_by_both() {
        let generated = small();
        let split = MailboxSplit::alternate(&generated.org);
        split.validate(&generated.org).unwrap();
        let google = split.part(&generated.org, Host::Google);
        let microsoft = split.part(&generated.org, Host::Microsoft);
        assert_eq!(google.users.len(), generated.org.users.len());
        assert_eq!(microsoft.users.len(), generated.org.users.len());
        let (at_google, at_microsoft) = (enabled(&google), enabled(&microsoft));
        assert!(!at_google.is_empty() && !at_microsoft.is_empty());
        assert!(at_google.is_disjoint(&at_microsoft));
        let whole: BTreeSet<String> = at_google.union(&at_microsoft).cloned().collect();
        assert_eq!(whole, enabled(&generated.org));
        for (email, mailbox) in &microsoft.mailboxes {
            if !at_microsoft.contains(email) {
                assert!(mailbox.messages.is_empty(), "{email} kept its mail");
            }
        }
    }

    #[test]
    fn a_crossing_message_has_one_message_id_at_both_providers() {
        let generated = small();
        let split = MailboxSplit::alternate(&generated.org);
        let google = split.part(&generated.org, Host::Google);
        let microsoft = split.part(&generated.org, Host::Microsoft);
        let ids = |org: &Organization| -> BTreeSet<String> {
            org.mailboxes
                .values()
                .flat_map(|m| m.messages.values())
                .filter_map(|m| {
                    m.headers
                        .iter()
                        .find(|(name, _)| name.eq_ignore_ascii_case("message-id"))
                        .map(|(_, value)| value.clone())
                })
                .collect()
        };
        let crossing = ids(&google).intersection(&ids(&microsoft)).count();
        assert!(crossing > 0, "no message crosses between the providers");
    }

    #[test]
    fn a_mailbox_at_both_is_served_whole_by_both() {
        let generated = small();
        let member = enabled(&generated.org).into_iter().next().unwrap();
        let split = MailboxSplit {
            microsoft: BTreeSet::new(),
            both: [member.to_uppercase()].into(),
        };
        split.validate(&generated.org).unwrap();
        let count = |org: &Organization| org.mailboxes[&member].messages.len();
        assert!(count(&generated.org) > 0);
        assert_eq!(
            count(&split.part(&generated.org, Host::Google)),
            count(&generated.org)
        );
        assert_eq!(
            count(&split.part(&generated.org, Host::Microsoft)),
            count(&generated.org)
        );
    }

    #[test]
    fn both_parts_hold_the_same_meetings_and_serve_each_calendar_where_its_mailbox_is() {
        use crate::org::meetings::MeetingStore;
        let generated = small();
        let whole = MeetingStore::generate(&generated.org);
        let mut split = MailboxSplit::alternate(&generated.org);
        let at_both = whole
            .directory
            .members
            .keys()
            .find(|m| split.hosts(Host::Google, m))
            .unwrap()
            .clone();
        split.both.insert(at_both.clone());
        let google = MeetingStore::generate(&split.part(&generated.org, Host::Google));
        let microsoft = MeetingStore::generate(&split.part(&generated.org, Host::Microsoft));
        let uids = |store: &MeetingStore| -> Vec<String> {
            store.meetings.iter().map(|m| m.ical_uid.clone()).collect()
        };
        assert!(!whole.meetings.is_empty());
        assert_eq!(uids(&google), uids(&whole));
        assert_eq!(uids(&microsoft), uids(&whole));
        assert_eq!(google.directory.members, whole.directory.members);
        for member in whole.directory.members.keys() {
            let served = |store: &MeetingStore| store.directory.served(member).is_some();
            let listed = |store: &MeetingStore| store.in_calendar(member).count();
            assert_eq!(
                served(&google),
                split.hosts(Host::Google, member),
                "{member}"
            );
            assert_eq!(
                served(&microsoft),
                split.hosts(Host::Microsoft, member),
                "{member}"
            );
            assert!(
                served(&google) || served(&microsoft),
                "{member} served nowhere"
            );
            for store in [&google, &microsoft] {
                let expected = if served(store) { listed(&whole) } else { 0 };
                assert_eq!(listed(store), expected, "{member}");
            }
        }
        assert!(google.directory.served(&at_both).is_some());
        assert!(microsoft.directory.served(&at_both).is_some());
    }

    #[test]
    fn unknown_and_doubly_named_users_are_refused() {
        let generated = small();
        let member = generated.org.users[0].primary_email.clone();
        let unknown = MailboxSplit {
            microsoft: ["nobody@example.com".to_owned()].into(),
            both: BTreeSet::new(),
        };
        assert_eq!(
            unknown.validate(&generated.org),
            Err(SplitError::UnknownUser("nobody@example.com".into()))
        );
        let twice = MailboxSplit {
            microsoft: [member.clone()].into(),
            both: [member.to_uppercase()].into(),
        };
        assert!(matches!(
            twice.validate(&generated.org),
            Err(SplitError::Twice(_))
        ));
    }
}
