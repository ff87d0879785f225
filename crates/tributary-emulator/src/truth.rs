//! The ground truth: what a correct capture of a generated organization must produce
//! under the default policy of `docs/capture-contract.md`.
//!
//! It is computed from the generator's structured plan (addresses, header values and
//! the labels of every copy as data), never from the rendered bytes and never with the
//! production extraction code, so that the two implementations check each other. The
//! JSON schema is documented in `docs/emulator-organization.md`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::org::mail::{MailPlan, PlannedMessage, Recipient};
use crate::org::names::FREE_MAIL_DOMAINS;
use crate::org::people::{PersonKind, Population};

/// The default policy's labels.
pub const SYNCED_LABELS: [&str; 2] = ["INBOX", "SENT"];
pub const BACKFILL_DAYS: i64 = 365;
const DAY_MS: i64 = 86_400_000;

/// From local parts that mark mail as automated (after lowercasing and removing `+tag`).
const NO_REPLY_LOCAL_PARTS: &[&str] = &[
    "noreply",
    "no-reply",
    "no_reply",
    "donotreply",
    "do-not-reply",
    "do_not_reply",
    "mailer-daemon",
    "postmaster",
    "bounce",
    "bounces",
];
const NO_REPLY_PREFIXES: &[&str] = &["noreply-", "no-reply-"];

/// The policy the truth assumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub labels: Vec<String>,
    pub backfill_days: i64,
    pub exclude_automated: bool,
    pub exclude_internal: bool,
    /// Whether a free-mail domain can be a company (never, by default).
    pub free_mail_companies: bool,
    /// The free-mail domains the generated mail uses (all on the default list).
    pub free_mail_domains: Vec<String>,
    pub blocklist: Vec<String>,
    pub privacy_mode: String,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            labels: SYNCED_LABELS.iter().map(|l| (*l).to_string()).collect(),
            backfill_days: BACKFILL_DAYS,
            exclude_automated: true,
            exclude_internal: true,
            free_mail_companies: false,
            free_mail_domains: FREE_MAIL_DOMAINS.iter().map(|d| (*d).to_string()).collect(),
            blocklist: Vec::new(),
            privacy_mode: "subject".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub primary: String,
    /// Sorted, lowercase.
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    From,
    To,
    Cc,
    Bcc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParticipantKind {
    Member,
    Internal,
    External,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Inbound,
    Outbound,
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// Lowercase.
    pub address: String,
    pub role: Role,
    pub kind: ParticipantKind,
    /// The member's primary address, for `member` participants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
}

/// One captured activity: a unique RFC message (by dedupe key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    pub dedupe_key: String,
    /// RFC 3339, UTC.
    pub time: String,
    pub direction: Direction,
    /// The decoded subject (privacy mode `subject` keeps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Sorted by role (from, to, cc, bcc), then address.
    pub participants: Vec<Participant>,
    /// Primary addresses of the synced mailboxes that see it, sorted.
    pub mailboxes: Vec<String>,
}

/// A message some synced mailbox sees but the policy excludes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExcludedActivity {
    pub dedupe_key: String,
    /// The first matching automated-mail reason, if automated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automated: Option<String>,
    /// No external participant.
    pub internal: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub address: String,
    /// Registrable domain; none for free-mail addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Company {
    pub domain: String,
    /// Distinct contacts attributed to it.
    pub contacts: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelCounts {
    /// Messages carrying the label (what `labels.get` reports as `messagesTotal`).
    pub total: usize,
    /// Of those, with an internalDate inside the backfill window.
    pub in_window: usize,
    /// Of those in the window, whose activity is captured.
    pub captured: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relationship {
    pub member: String,
    pub contact: String,
    pub sent: usize,
    pub received: usize,
    pub total: usize,
    /// RFC 3339, UTC.
    pub first: String,
    pub last: String,
}

/// Counts for logs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub users: usize,
    pub members: usize,
    /// RFC messages generated (drafts included).
    pub rfc_messages: usize,
    /// Copies stored across all mailboxes.
    pub stored_messages: usize,
    /// Unique messages some synced mailbox sees.
    pub seen: usize,
    pub activities: usize,
    pub hash_keyed_activities: usize,
    pub excluded_automated: usize,
    pub excluded_internal: usize,
    pub contacts: usize,
    pub companies: usize,
    pub relationships: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroundTruth {
    pub policy: Policy,
    /// The organization's `now`, RFC 3339.
    pub reference_time: String,
    /// Every domain the organization owns, the primary first.
    pub domains: Vec<String>,
    /// Synced users, sorted by primary address.
    pub members: Vec<Member>,
    /// Sorted by dedupe key.
    pub activities: Vec<Activity>,
    /// Sorted by dedupe key.
    pub excluded: Vec<ExcludedActivity>,
    /// Sorted by address.
    pub contacts: Vec<Contact>,
    /// Sorted by domain.
    pub companies: Vec<Company>,
    /// Per synced mailbox (primary address), per synced label.
    pub mailbox_counts: BTreeMap<String, BTreeMap<String, LabelCounts>>,
    /// Sorted by member, then contact.
    pub relationships: Vec<Relationship>,
    pub stats: Stats,
}

impl GroundTruth {
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("the ground truth serializes")
    }

    pub fn activity(&self, dedupe_key: &str) -> Option<&Activity> {
        self.activities
            .binary_search_by(|a| a.dedupe_key.as_str().cmp(dedupe_key))
            .ok()
            .map(|index| &self.activities[index])
    }

    pub fn compute(population: &Population, plan: &MailPlan, now_ms: i64) -> GroundTruth {
        Computation::new(population, now_ms).run(plan)
    }
}

/// The contract's subject: decoded, every run of whitespace one space, trimmed. Both the
/// stored subject and the dedupe hash use this one form.
pub fn normalized_subject(subject: &str) -> String {
    subject.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The contract's dedupe key of a structured message.
pub fn dedupe_key(message: &PlannedMessage) -> String {
    if let Some(id) = message.message_id.as_deref().map(normalized_message_id)
        && !id.is_empty()
    {
        return format!("mid:{id}");
    }
    let from = normalized_address(&message.from.address);
    let date = message
        .date
        .map(|d| d.unix_seconds.to_string())
        .unwrap_or_default();
    let subject = message
        .subject
        .as_deref()
        .map(normalized_subject)
        .unwrap_or_default();
    let recipients: BTreeSet<String> = message
        .to_and_cc()
        .map(|a| normalized_address(&a.address))
        .collect();
    let recipients = recipients.into_iter().collect::<Vec<_>>().join(",");
    let digest = Sha256::digest(format!("{from}\n{date}\n{subject}\n{recipients}").as_bytes());
    format!("hash:{}", hex::encode(digest))
}

/// The contract's automated-mail reason of a structured message, if any.
pub fn automated_reason(message: &PlannedMessage) -> Option<&'static str> {
    let automation = &message.automation;
    if automation.list_unsubscribe.is_some() {
        return Some("list-unsubscribe");
    }
    if automation.list_id.is_some() {
        return Some("list-id");
    }
    if automation
        .precedence
        .is_some_and(|p| ["bulk", "list", "junk"].contains(&p.trim().to_ascii_lowercase().as_str()))
    {
        return Some("precedence");
    }
    if automation
        .auto_submitted
        .is_some_and(|a| !a.trim().eq_ignore_ascii_case("no"))
    {
        return Some("auto-submitted");
    }
    let address = normalized_address(&message.from.address);
    let local = address
        .rsplit_once('@')
        .map_or(address.as_str(), |(l, _)| l);
    let local = local.split('+').next().unwrap_or(local);
    if NO_REPLY_LOCAL_PARTS.contains(&local)
        || NO_REPLY_PREFIXES.iter().any(|p| local.starts_with(p))
    {
        return Some("no-reply-sender");
    }
    None
}

fn normalized_message_id(id: &str) -> String {
    let id = id.trim();
    let id = id.strip_prefix('<').unwrap_or(id);
    let id = id.strip_suffix('>').unwrap_or(id);
    id.to_lowercase()
}

fn normalized_address(address: &str) -> String {
    address.trim().to_lowercase()
}

fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// What the synced mailboxes see of one unique message.
struct Sighting<'p> {
    message: &'p PlannedMessage,
    participants: BTreeSet<(Role, String)>,
    mailboxes: BTreeSet<String>,
    earliest_internal_ms: i64,
}

struct Computation<'p> {
    population: &'p Population,
    now_ms: i64,
    window_start_ms: i64,
    members: Vec<Member>,
    /// Every member address (primary and aliases) → primary.
    member_of: BTreeMap<String, String>,
    domains: Vec<String>,
}

impl<'p> Computation<'p> {
    fn new(population: &'p Population, now_ms: i64) -> Self {
        let mut members: Vec<Member> = population
            .synced_users()
            .map(|u| {
                let user = &population.users[u];
                let mut aliases: Vec<String> =
                    user.aliases.iter().map(|a| normalized_address(a)).collect();
                aliases.sort();
                Member {
                    primary: normalized_address(&user.primary_email),
                    aliases,
                }
            })
            .collect();
        members.sort_by(|a, b| a.primary.cmp(&b.primary));
        let mut member_of = BTreeMap::new();
        for member in &members {
            member_of.insert(member.primary.clone(), member.primary.clone());
            for alias in &member.aliases {
                member_of.insert(alias.clone(), member.primary.clone());
            }
        }
        Computation {
            population,
            now_ms,
            window_start_ms: now_ms - BACKFILL_DAYS * DAY_MS,
            members,
            member_of,
            domains: population
                .domains
                .iter()
                .map(|d| d.to_lowercase())
                .collect(),
        }
    }

    fn is_synced(&self, mailbox: &str) -> bool {
        self.member_of
            .get(mailbox)
            .is_some_and(|primary| primary == mailbox)
    }

    fn in_window(&self, internal_date_ms: i64) -> bool {
        internal_date_ms >= self.window_start_ms && internal_date_ms <= self.now_ms
    }

    fn classify(&self, address: &str) -> (ParticipantKind, Option<String>) {
        if let Some(primary) = self.member_of.get(address) {
            return (ParticipantKind::Member, Some(primary.clone()));
        }
        let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
        let internal = self
            .domains
            .iter()
            .any(|own| domain == own || domain.ends_with(&format!(".{own}")));
        if internal {
            (ParticipantKind::Internal, None)
        } else {
            (ParticipantKind::External, None)
        }
    }

    /// The company (registrable domain) of an external address, from the structured
    /// population: people at companies have one, free-mail correspondents none.
    fn company_of(&self, address: &str) -> Option<String> {
        let person = self
            .population
            .person_by_address(address)
            .unwrap_or_else(|| panic!("address {address} is not in the generated population"));
        match person.kind {
            PersonKind::Contact | PersonKind::Automated(_) => person
                .company
                .map(|index| self.population.companies[index].domain.clone()),
            _ => None,
        }
    }

    fn sightings(&self, plan: &'p MailPlan) -> BTreeMap<String, Sighting<'p>> {
        let mut sightings: BTreeMap<String, Sighting<'p>> = BTreeMap::new();
        for message in &plan.messages {
            let seen: Vec<_> = message
                .copies
                .iter()
                .filter(|copy| {
                    self.is_synced(&copy.mailbox)
                        && SYNCED_LABELS.iter().any(|l| copy.labels.contains(*l))
                        && self.in_window(copy.internal_date_ms)
                })
                .collect();
            if seen.is_empty() {
                continue;
            }
            let sighting = sightings
                .entry(dedupe_key(message))
                .or_insert_with(|| Sighting {
                    message,
                    participants: BTreeSet::new(),
                    mailboxes: BTreeSet::new(),
                    earliest_internal_ms: i64::MAX,
                });
            for copy in seen {
                sighting.mailboxes.insert(copy.mailbox.clone());
                sighting.earliest_internal_ms =
                    sighting.earliest_internal_ms.min(copy.internal_date_ms);
                sighting
                    .participants
                    .insert((Role::From, normalized_address(&message.from.address)));
                let headers = [(Role::To, &message.to), (Role::Cc, &message.cc)];
                for (role, recipients) in headers {
                    for addressee in recipients.iter().flat_map(Recipient::addressees) {
                        sighting
                            .participants
                            .insert((role, normalized_address(&addressee.address)));
                    }
                }
                if copy.carries_bcc {
                    for addressee in &message.bcc {
                        sighting
                            .participants
                            .insert((Role::Bcc, normalized_address(&addressee.address)));
                    }
                }
            }
        }
        sightings
    }

    fn run(self, plan: &'p MailPlan) -> GroundTruth {
        let sightings = self.sightings(plan);
        let mut activities = Vec::new();
        let mut excluded = Vec::new();
        for (key, sighting) in &sightings {
            let participants: Vec<Participant> = sighting
                .participants
                .iter()
                .map(|(role, address)| {
                    let (kind, member) = self.classify(address);
                    Participant {
                        address: address.clone(),
                        role: *role,
                        kind,
                        member,
                    }
                })
                .collect();
            let has_external = participants
                .iter()
                .any(|p| p.kind == ParticipantKind::External);
            let from_inside = participants
                .iter()
                .any(|p| p.role == Role::From && p.kind != ParticipantKind::External);
            let direction = match (has_external, from_inside) {
                (false, _) => Direction::Internal,
                (true, true) => Direction::Outbound,
                (true, false) => Direction::Inbound,
            };
            let automated = automated_reason(sighting.message);
            if automated.is_some() || direction == Direction::Internal {
                excluded.push(ExcludedActivity {
                    dedupe_key: key.clone(),
                    automated: automated.map(str::to_string),
                    internal: direction == Direction::Internal,
                });
                continue;
            }
            let time_ms = match sighting.message.date {
                Some(date) => date.unix_seconds * 1000,
                None => sighting.earliest_internal_ms,
            };
            activities.push((
                time_ms,
                Activity {
                    dedupe_key: key.clone(),
                    time: rfc3339(time_ms),
                    direction,
                    subject: sighting.message.subject.as_deref().map(normalized_subject),
                    participants,
                    mailboxes: sighting.mailboxes.iter().cloned().collect(),
                },
            ));
        }
        let contacts = self.contacts(&activities);
        let companies = companies(&contacts);
        let relationships = self.relationships(&activities);
        let captured: BTreeSet<&str> = activities
            .iter()
            .map(|(_, a)| a.dedupe_key.as_str())
            .collect();
        let mailbox_counts = self.mailbox_counts(plan, &captured);
        let stats = Stats {
            users: self.population.users.len(),
            members: self.members.len(),
            rfc_messages: plan.messages.len(),
            stored_messages: plan.messages.iter().map(|m| m.copies.len()).sum(),
            seen: sightings.len(),
            activities: activities.len(),
            hash_keyed_activities: activities
                .iter()
                .filter(|(_, a)| a.dedupe_key.starts_with("hash:"))
                .count(),
            excluded_automated: excluded.iter().filter(|e| e.automated.is_some()).count(),
            excluded_internal: excluded.iter().filter(|e| e.internal).count(),
            contacts: contacts.len(),
            companies: companies.len(),
            relationships: relationships.len(),
        };
        GroundTruth {
            policy: Policy::default(),
            reference_time: rfc3339(self.now_ms),
            domains: self.domains.clone(),
            members: self.members,
            activities: activities.into_iter().map(|(_, a)| a).collect(),
            excluded,
            contacts,
            companies,
            mailbox_counts,
            relationships,
            stats,
        }
    }

    fn contacts(&self, activities: &[(i64, Activity)]) -> Vec<Contact> {
        let addresses: BTreeSet<&str> = activities
            .iter()
            .flat_map(|(_, a)| &a.participants)
            .filter(|p| p.kind == ParticipantKind::External)
            .map(|p| p.address.as_str())
            .collect();
        addresses
            .into_iter()
            .map(|address| Contact {
                address: address.to_string(),
                company: self.company_of(address),
            })
            .collect()
    }

    fn relationships(&self, activities: &[(i64, Activity)]) -> Vec<Relationship> {
        struct Tally {
            sent: usize,
            received: usize,
            total: usize,
            first: i64,
            last: i64,
        }
        let mut tallies: BTreeMap<(String, String), Tally> = BTreeMap::new();
        for (time_ms, activity) in activities {
            let from = activity
                .participants
                .iter()
                .find(|p| p.role == Role::From)
                .expect("every activity has a From");
            // Per member / contact: whether they appear as a recipient (to, cc or bcc).
            let mut members: BTreeMap<&str, bool> = BTreeMap::new();
            let mut contacts: BTreeMap<&str, bool> = BTreeMap::new();
            for participant in &activity.participants {
                let recipient = participant.role != Role::From;
                let slot = match (participant.kind, participant.member.as_deref()) {
                    (ParticipantKind::Member, Some(member)) => members.entry(member).or_default(),
                    (ParticipantKind::External, _) => {
                        contacts.entry(participant.address.as_str()).or_default()
                    }
                    _ => continue,
                };
                *slot |= recipient;
            }
            for (member, member_is_recipient) in &members {
                for (contact, contact_is_recipient) in &contacts {
                    let tally = tallies
                        .entry(((*member).to_string(), (*contact).to_string()))
                        .or_insert(Tally {
                            sent: 0,
                            received: 0,
                            total: 0,
                            first: *time_ms,
                            last: *time_ms,
                        });
                    tally.total += 1;
                    tally.first = tally.first.min(*time_ms);
                    tally.last = tally.last.max(*time_ms);
                    if from.member.as_deref() == Some(*member) && *contact_is_recipient {
                        tally.sent += 1;
                    }
                    if from.kind == ParticipantKind::External
                        && from.address == *contact
                        && *member_is_recipient
                    {
                        tally.received += 1;
                    }
                }
            }
        }
        tallies
            .into_iter()
            .map(|((member, contact), tally)| Relationship {
                member,
                contact,
                sent: tally.sent,
                received: tally.received,
                total: tally.total,
                first: rfc3339(tally.first),
                last: rfc3339(tally.last),
            })
            .collect()
    }

    fn mailbox_counts(
        &self,
        plan: &MailPlan,
        captured: &BTreeSet<&str>,
    ) -> BTreeMap<String, BTreeMap<String, LabelCounts>> {
        let mut counts: BTreeMap<String, BTreeMap<String, LabelCounts>> = self
            .members
            .iter()
            .map(|member| {
                let labels = SYNCED_LABELS
                    .iter()
                    .map(|l| ((*l).to_string(), LabelCounts::default()))
                    .collect();
                (member.primary.clone(), labels)
            })
            .collect();
        for message in &plan.messages {
            let key = dedupe_key(message);
            let is_captured = captured.contains(key.as_str());
            for copy in &message.copies {
                let Some(labels) = counts.get_mut(&copy.mailbox) else {
                    continue;
                };
                let in_window = self.in_window(copy.internal_date_ms);
                for label in SYNCED_LABELS {
                    if !copy.labels.contains(label) {
                        continue;
                    }
                    let count = labels.get_mut(label).expect("synced label");
                    count.total += 1;
                    if in_window {
                        count.in_window += 1;
                        if is_captured {
                            count.captured += 1;
                        }
                    }
                }
            }
        }
        counts
    }
}

fn companies(contacts: &[Contact]) -> Vec<Company> {
    let mut per_domain: BTreeMap<&str, usize> = BTreeMap::new();
    for contact in contacts {
        if let Some(company) = &contact.company {
            *per_domain.entry(company).or_default() += 1;
        }
    }
    per_domain
        .into_iter()
        .map(|(domain, contacts)| Company {
            domain: domain.to_string(),
            contacts,
        })
        .collect()
}
