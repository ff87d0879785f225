//! Extraction: everything capture derives from one message (one or several sightings of
//! it), and the decision whether to capture it.

use crate::address::EmailAddress;
use crate::automated::{AutomatedReason, automated_reason};
use crate::classify::{Direction, Participant, direction, participants};
use crate::company::{FreeMailList, company_domain};
use crate::dedupe::{DedupeKey, ThreadKey};
use crate::display_name::NameCandidate;
use crate::message::MessageRecord;
use crate::parse::{ParseProblem, ParsedHeaders};
use crate::policy::CapturePolicy;
use crate::tenant::{AddressClass, TenantDirectory};
use serde::Serialize;
use std::collections::BTreeSet;

/// Why a message is not captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExclusionReason {
    /// A participant is on the blocklist.
    Blocklisted,
    /// The message is automated (see `automated`).
    Automated,
    /// No external participant.
    Internal,
}

/// Whether a message is captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Decision {
    Captured,
    Excluded { reason: ExclusionReason },
}

/// A distinct external address of a message, with its company if it has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contact {
    pub address: EmailAddress,
    pub company: Option<String>,
}

/// What capture derives from a message. Subject and snippet are present only when the
/// privacy mode keeps them; bodies are never part of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Extraction {
    pub dedupe_key: DedupeKey,
    pub thread_key: Option<ThreadKey>,
    pub direction: Direction,
    pub decision: Decision,
    /// The first matching automated-mail rule, whether or not policy excludes it.
    pub automated: Option<AutomatedReason>,
    pub participants: Vec<Participant>,
    pub contacts: Vec<Contact>,
    /// Distinct company domains of the contacts, sorted.
    pub companies: Vec<String>,
    /// The Date header, Unix seconds.
    pub date: Option<i64>,
    /// The activity time, Unix milliseconds: the Date header, else the earliest
    /// `internalDate` of the sightings.
    pub time_ms: Option<i64>,
    /// True when the message answers another (In-Reply-To or References present).
    pub is_reply: bool,
    /// The mailboxes the sightings came from, in order, each once.
    pub mailboxes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
    pub problems: Vec<ParseProblem>,
}

impl Extraction {
    /// True when the decision is to capture.
    pub fn is_captured(&self) -> bool {
        self.decision == Decision::Captured
    }

    /// True when the time is a receipt time: the message has no (parseable) Date header,
    /// so `time_ms` is the earliest `internalDate` of the sightings given, and a copy
    /// found later in another mailbox may have been received earlier.
    pub fn time_from_receipt(&self) -> bool {
        self.date.is_none() && self.time_ms.is_some()
    }

    /// The display names this message gives its participants, each dated by the
    /// activity time (a message without any time counts as the oldest): the candidates
    /// [`crate::display_name::choose_display_name`] picks from.
    pub fn name_candidates(&self) -> impl Iterator<Item = (&EmailAddress, NameCandidate<'_>)> {
        let seen_ms = self.time_ms.unwrap_or(0);
        self.participants.iter().filter_map(move |participant| {
            let name = participant.name.as_deref()?;
            Some((&participant.address, NameCandidate { name, seen_ms }))
        })
    }
}

/// Applies a tenant's directory, free-mail list and policy to messages.
#[derive(Debug, Clone, Default)]
pub struct Extractor {
    pub tenant: TenantDirectory,
    pub free_mail: FreeMailList,
    pub policy: CapturePolicy,
}

impl Extractor {
    /// An extractor for one tenant.
    pub fn new(tenant: TenantDirectory, free_mail: FreeMailList, policy: CapturePolicy) -> Self {
        Self {
            tenant,
            free_mail,
            policy,
        }
    }

    /// Extracts one sighting of a message.
    pub fn extract(&self, record: &MessageRecord) -> Extraction {
        self.extract_sightings(std::slice::from_ref(record))
    }

    /// Extracts a message from all its sightings (records sharing one dedupe key, in
    /// any mailboxes): participants are their union, so a Bcc that only the sender's
    /// copy carries is kept. Headers other than addresses come from the first sighting.
    pub fn extract_sightings(&self, sightings: &[MessageRecord]) -> Extraction {
        let mut headers = ParsedHeaders::default();
        for (index, sighting) in sightings.iter().enumerate() {
            let parsed = ParsedHeaders::parse(sighting);
            if index == 0 {
                headers = parsed;
            } else {
                merge_addresses(&mut headers, parsed);
            }
        }
        let first = sightings.first();
        let thread_key = ThreadKey::for_headers(
            &headers,
            first.and_then(|s| s.provider_thread_id.as_deref()),
        );
        let earliest_receipt = sightings.iter().filter_map(|s| s.internal_date_ms).min();
        let snippet = sightings.iter().find_map(|s| s.snippet.as_deref());
        self.extract_parsed(
            headers,
            thread_key,
            earliest_receipt,
            snippet,
            mailboxes(sightings),
        )
    }

    fn extract_parsed(
        &self,
        mut headers: ParsedHeaders,
        thread_key: Option<ThreadKey>,
        earliest_receipt_ms: Option<i64>,
        snippet: Option<&str>,
        mailboxes: Vec<String>,
    ) -> Extraction {
        let automated = automated_reason(&headers);
        let dedupe_key = DedupeKey::for_headers(&headers);
        let participants = participants(headers.take_address_lists(), &self.tenant);
        let direction = direction(&participants);
        let contacts = self.contacts(&participants);
        let companies: BTreeSet<&str> = contacts
            .iter()
            .filter_map(|c| c.company.as_deref())
            .collect();
        let decision = self.decide(&participants, direction, automated);
        let privacy = self.policy.privacy;
        Extraction {
            dedupe_key,
            thread_key,
            direction,
            decision,
            automated,
            companies: companies.into_iter().map(str::to_owned).collect(),
            contacts,
            participants,
            date: headers.date,
            time_ms: headers
                .date
                .map(|seconds| seconds.saturating_mul(1000))
                .or(earliest_receipt_ms),
            is_reply: headers.in_reply_to.is_some() || headers.first_reference.is_some(),
            mailboxes,
            subject: headers.subject.filter(|_| privacy.keeps_subject()),
            snippet: snippet
                .filter(|_| privacy.keeps_snippet())
                .map(str::to_owned),
            problems: headers.problems,
        }
    }

    fn contacts(&self, participants: &[Participant]) -> Vec<Contact> {
        let mut contacts: Vec<Contact> = Vec::new();
        for participant in participants {
            if participant.class != AddressClass::External
                || contacts.iter().any(|c| c.address == participant.address)
            {
                continue;
            }
            let company =
                company_domain(participant.address.domain(), &self.free_mail, &self.tenant);
            contacts.push(Contact {
                address: participant.address.clone(),
                company: company.map(str::to_owned),
            });
        }
        contacts
    }

    fn decide(
        &self,
        participants: &[Participant],
        direction: Direction,
        automated: Option<AutomatedReason>,
    ) -> Decision {
        let reason = if participants
            .iter()
            .any(|p| self.policy.blocklist.blocks(&p.address))
        {
            Some(ExclusionReason::Blocklisted)
        } else if self.policy.exclude_automated && automated.is_some() {
            Some(ExclusionReason::Automated)
        } else if self.policy.exclude_internal && direction == Direction::Internal {
            Some(ExclusionReason::Internal)
        } else {
            None
        };
        match reason {
            Some(reason) => Decision::Excluded { reason },
            None => Decision::Captured,
        }
    }
}

/// Adds another sighting's addresses; duplicates are removed when participants are built.
fn merge_addresses(into: &mut ParsedHeaders, other: ParsedHeaders) {
    into.from.extend(other.from);
    into.to.extend(other.to);
    into.cc.extend(other.cc);
    into.bcc.extend(other.bcc);
    for problem in other.problems {
        if !into.problems.contains(&problem) {
            into.problems.push(problem);
        }
    }
}

fn mailboxes(sightings: &[MessageRecord]) -> Vec<String> {
    let mut mailboxes: Vec<String> = Vec::new();
    for mailbox in sightings.iter().filter_map(|s| s.mailbox.as_deref()) {
        let mailbox = mailbox.trim().to_lowercase();
        if !mailboxes.contains(&mailbox) {
            mailboxes.push(mailbox);
        }
    }
    mailboxes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Role;
    use crate::policy::PrivacyMode;

    fn extractor() -> Extractor {
        let mut tenant = TenantDirectory::new();
        tenant.add_domain("acme.com").unwrap();
        tenant
            .add_member("ann@acme.com", ["ann.lee@acme.com"])
            .unwrap();
        tenant.add_member("carl@acme.com", []).unwrap();
        Extractor::new(tenant, FreeMailList::default(), CapturePolicy::default())
    }

    fn record(raw: &str) -> MessageRecord {
        MessageRecord::from_rfc5322(raw.as_bytes())
    }

    const OUTBOUND: &str = "From: Ann Lee <ann.lee@acme.com>\n\
        To: bob@mail.globex.co.uk, dana@gmail.com\nCc: carl@acme.com\n\
        Subject: Renewal\nMessage-ID: <1@acme.com>\nDate: Tue, 01 Jul 2025 10:00:00 +0000\n";

    #[test]
    fn name_candidates_are_the_named_participants_dated_by_the_activity() {
        let extraction = extractor().extract(&record(OUTBOUND));
        let candidates: Vec<(&str, &str, i64)> = extraction
            .name_candidates()
            .map(|(address, c)| (address.as_str(), c.name, c.seen_ms))
            .collect();
        // 2025-07-01T10:00:00Z; bob, dana and carl come without a name.
        assert_eq!(
            candidates,
            [("ann.lee@acme.com", "Ann Lee", 1_751_364_000_000)]
        );
        let undated =
            extractor().extract(&record("From: Bob <bob@globex.com>\nTo: ann@acme.com\n"));
        let seen: Vec<i64> = undated.name_candidates().map(|(_, c)| c.seen_ms).collect();
        assert_eq!(seen, [0]);
    }

    #[test]
    fn outbound_message_is_captured_with_contacts_and_companies() {
        let extraction = extractor().extract(&record(OUTBOUND));
        assert_eq!(extraction.decision, Decision::Captured);
        assert_eq!(extraction.direction, Direction::Outbound);
        assert_eq!(extraction.dedupe_key.as_str(), "mid:1@acme.com");
        assert_eq!(extraction.companies, ["globex.co.uk"]);
        let contacts: Vec<_> = extraction
            .contacts
            .iter()
            .map(|c| (c.address.as_str(), c.company.as_deref()))
            .collect();
        assert_eq!(
            contacts,
            [
                ("bob@mail.globex.co.uk", Some("globex.co.uk")),
                ("dana@gmail.com", None)
            ]
        );
        assert_eq!(extraction.subject.as_deref(), Some("Renewal"));
        assert_eq!(extraction.time_ms, Some(1_751_364_000_000));
        assert!(!extraction.time_from_receipt());
    }

    #[test]
    fn exclusions_in_contract_order() {
        let extractor = extractor();
        let internal = extractor.extract(&record("From: ann@acme.com\nTo: carl@acme.com\n"));
        assert_eq!(
            internal.decision,
            Decision::Excluded {
                reason: ExclusionReason::Internal
            }
        );
        let automated = extractor.extract(&record("From: noreply@acme.com\nTo: carl@acme.com\n"));
        assert_eq!(
            automated.decision,
            Decision::Excluded {
                reason: ExclusionReason::Automated
            }
        );
        let mut blocking = extractor.clone();
        blocking.policy.blocklist.add("globex.co.uk").unwrap();
        assert_eq!(
            blocking.extract(&record(OUTBOUND)).decision,
            Decision::Excluded {
                reason: ExclusionReason::Blocklisted
            }
        );
    }

    #[test]
    fn policy_can_include_internal_and_automated_mail() {
        let mut extractor = extractor();
        extractor.policy.exclude_internal = false;
        extractor.policy.exclude_automated = false;
        let extraction = extractor.extract(&record("From: noreply@acme.com\nTo: carl@acme.com\n"));
        assert_eq!(extraction.decision, Decision::Captured);
        assert_eq!(extraction.automated, Some(AutomatedReason::NoReplySender));
    }

    #[test]
    fn privacy_mode_gates_subject_and_snippet() {
        let mut sighting = record(OUTBOUND);
        sighting.snippet = Some("Hi Bob, attached".into());
        let mut extractor = extractor();
        let subject_mode = extractor.extract(&sighting);
        assert!(subject_mode.subject.is_some() && subject_mode.snippet.is_none());
        extractor.policy.privacy = PrivacyMode::Metadata;
        let metadata = extractor.extract(&sighting);
        assert!(metadata.subject.is_none() && metadata.snippet.is_none());
        extractor.policy.privacy = PrivacyMode::Snippet;
        let snippet = extractor.extract(&sighting);
        assert_eq!(snippet.snippet.as_deref(), Some("Hi Bob, attached"));
    }

    #[test]
    fn sightings_union_participants_and_use_earliest_receipt_without_date() {
        let raw = "From: bob@globex.com\nTo: ann@acme.com\nMessage-ID: <x@globex.com>\n";
        let mut recipient_copy = record(raw);
        recipient_copy.mailbox = Some("ann@acme.com".into());
        recipient_copy.internal_date_ms = Some(2_000);
        let mut sender_view = record(&format!("{raw}Bcc: carl@acme.com\n"));
        sender_view.mailbox = Some("carl@acme.com".into());
        sender_view.internal_date_ms = Some(1_000);
        let extraction = extractor().extract_sightings(&[recipient_copy, sender_view]);
        let bcc: Vec<_> = extraction
            .participants
            .iter()
            .filter(|p| p.role == Role::Bcc)
            .map(|p| p.address.as_str())
            .collect();
        assert_eq!(bcc, ["carl@acme.com"]);
        assert_eq!(extraction.time_ms, Some(1_000));
        assert!(extraction.time_from_receipt());
        assert_eq!(extraction.mailboxes, ["ann@acme.com", "carl@acme.com"]);
        assert_eq!(extraction.direction, Direction::Inbound);
    }

    #[test]
    fn record_from_header_pairs_extracts_like_raw_headers() {
        let pairs = [
            ("From", "=?UTF-8?Q?Ann_L=C3=A9e?= <ann.lee@acme.com>"),
            ("To", "\"Lee, Bob\" <bob@globex.com>"),
            ("Subject", "Renewal"),
            ("Message-ID", "<1@acme.com>"),
        ];
        let raw: String = pairs.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
        let extractor = extractor();
        let from_pairs = extractor.extract(&MessageRecord::from_header_pairs(pairs));
        assert_eq!(from_pairs, extractor.extract(&record(&raw)));
        assert_eq!(from_pairs.participants[0].name.as_deref(), Some("Ann Lée"));
    }
}
