//! Relationships between members and contacts, accumulated over captured activities:
//! first and last touch, counts each way, a time-decayed strength score, and company
//! roll-ups. See `docs/capture-model.md` for the score formula and its reasoning.

use crate::address::EmailAddress;
use crate::classify::{Participant, Role};
use crate::extract::{Contact, Extraction};
use crate::meeting::Meeting;
use crate::tenant::AddressClass;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// A score halves every 90 days without contact.
pub const HALF_LIFE_MS: f64 = 90.0 * 86_400_000.0;
/// The member wrote to the contact.
pub const SENT_WEIGHT: f64 = 1.0;
/// The contact wrote to the member.
pub const RECEIVED_WEIGHT: f64 = 0.5;
/// Both were on a message neither sent to the other (e.g. both copied).
pub const COPRESENT_WEIGHT: f64 = 0.1;
/// A reply is a conversation continuing, not a first contact.
pub const REPLY_FACTOR: f64 = 1.5;
/// The addressed party was only on Cc or Bcc.
pub const COPY_FACTOR: f64 = 0.5;
/// A meeting attended together: twice a mail written to the other, audience for
/// audience, since sitting down together says more than writing.
pub const MEETING_WEIGHT: f64 = 2.0;

/// One captured activity as relationships see it.
#[derive(Debug, Clone, Copy)]
pub struct Touch<'a> {
    /// The activity time, Unix milliseconds.
    pub time_ms: i64,
    pub is_reply: bool,
    pub participants: &'a [Participant],
    pub contacts: &'a [Contact],
}

impl<'a> Touch<'a> {
    /// The touch of a captured extraction; `None` when it is excluded or has no time.
    pub fn from_extraction(extraction: &'a Extraction) -> Option<Self> {
        if !extraction.is_captured() {
            return None;
        }
        Some(Self {
            time_ms: extraction.time_ms?,
            is_reply: extraction.is_reply,
            participants: &extraction.participants,
            contacts: &extraction.contacts,
        })
    }
}

/// What one member and one contact have exchanged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelationshipStats {
    /// Earliest activity time (Unix ms) among the `total` activities.
    pub first_ms: i64,
    /// Latest activity time (Unix ms) among the `total` activities.
    pub last_ms: i64,
    /// Activities the member sent with the contact as a recipient.
    pub sent: u64,
    /// Activities the contact sent with the member as a recipient.
    pub received: u64,
    /// Activities where both are participants in any role.
    pub total: u64,
    /// Captured meetings (not large) both attended; not part of `total`, which counts
    /// mail as the capture contract does.
    pub meetings: u64,
    /// The decayed score as of `last_ms` (what a store persists); read it at another
    /// time with [`RelationshipStats::score_at`].
    pub score_at_last: f64,
}

impl RelationshipStats {
    fn new(time_ms: i64) -> Self {
        Self {
            first_ms: time_ms,
            last_ms: time_ms,
            sent: 0,
            received: 0,
            total: 0,
            meetings: 0,
            score_at_last: 0.0,
        }
    }

    /// Adds one mail activity's contribution, in any order of activity times.
    fn record(&mut self, time_ms: i64, weight: f64) {
        self.add_contribution(time_ms, weight);
        self.total += 1;
    }

    /// Adds one meeting's contribution, in any order of meeting times.
    fn record_meeting(&mut self, time_ms: i64, weight: f64) {
        self.add_contribution(time_ms, weight);
        self.meetings += 1;
    }

    fn add_contribution(&mut self, time_ms: i64, weight: f64) {
        if time_ms > self.last_ms {
            self.score_at_last *= decay(time_ms - self.last_ms);
            self.last_ms = time_ms;
        }
        self.first_ms = self.first_ms.min(time_ms);
        self.score_at_last += weight * decay(self.last_ms - time_ms);
    }

    /// The strength score at `now_ms`: the sum over activities of weight × 2^(−age /
    /// 90 days). A `now_ms` before the last touch is read as the last touch.
    pub fn score_at(&self, now_ms: i64) -> f64 {
        self.score_at_last * decay(now_ms.saturating_sub(self.last_ms).max(0))
    }
}

fn decay(age_ms: i64) -> f64 {
    (-(age_ms as f64) / HALF_LIFE_MS).exp2()
}

/// How much one activity says about a member's relationship with a contact.
pub fn touch_weight(touch: &Touch<'_>, member: &EmailAddress, contact: &EmailAddress) -> f64 {
    let mut recipients: Vec<&EmailAddress> = touch
        .participants
        .iter()
        .filter(|p| p.role.is_recipient())
        .map(|p| &p.address)
        .collect();
    recipients.sort_unstable();
    recipients.dedup();
    // One of many recipients is a weak signal: weight falls with the audience's size.
    let audience = 1.0 / (recipients.len().max(1) as f64).sqrt();
    let reply = if touch.is_reply { REPLY_FACTOR } else { 1.0 };
    let member_sent = sender_is(touch, |p| is_member(p, member));
    let contact_sent = sender_is(touch, |p| p.address == *contact);
    if member_sent && let Some(role) = best_recipient_role(touch, |p| p.address == *contact) {
        SENT_WEIGHT * reply * audience * role_factor(role)
    } else if contact_sent && let Some(role) = best_recipient_role(touch, |p| is_member(p, member))
    {
        RECEIVED_WEIGHT * reply * audience * role_factor(role)
    } else {
        COPRESENT_WEIGHT * audience
    }
}

/// How much one captured meeting says about each (member, contact) pair that attended
/// it: [`MEETING_WEIGHT`] × 1/√(attendees other than oneself), the same audience
/// factor as mail's, so a one-to-one meeting weighs 2 and one of five people 1.
pub fn meeting_weight(meeting: &Meeting) -> f64 {
    let attending = meeting
        .participants
        .iter()
        .filter(|p| p.organizer || p.attends())
        .count();
    meeting_weight_of(attending)
}

/// [`meeting_weight`] of a meeting `attending` people attended (the organizer and
/// everyone who did not decline): what a store replays from its stored participants.
pub fn meeting_weight_of(attending: usize) -> f64 {
    MEETING_WEIGHT / (attending.saturating_sub(1).max(1) as f64).sqrt()
}

fn role_factor(role: Role) -> f64 {
    if role == Role::To { 1.0 } else { COPY_FACTOR }
}

fn is_member(participant: &Participant, member: &EmailAddress) -> bool {
    matches!(&participant.class, AddressClass::Member { member: m } if m == member)
}

fn sender_is(touch: &Touch<'_>, matches: impl Fn(&Participant) -> bool) -> bool {
    touch
        .participants
        .iter()
        .any(|p| p.role == Role::From && matches(p))
}

/// The most direct recipient role (To before Cc before Bcc) of a matching participant.
fn best_recipient_role(touch: &Touch<'_>, matches: impl Fn(&Participant) -> bool) -> Option<Role> {
    touch
        .participants
        .iter()
        .filter(|p| p.role.is_recipient() && matches(p))
        .map(|p| p.role)
        .min()
}

/// Relationship stats for every (member, contact) pair, and each contact's company.
#[derive(Debug, Clone, Default)]
pub struct RelationshipBook {
    pairs: HashMap<(EmailAddress, EmailAddress), RelationshipStats>,
    companies: HashMap<EmailAddress, String>,
}

impl RelationshipBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one captured activity. Call once per activity (not per sighting).
    pub fn record(&mut self, touch: &Touch<'_>) {
        let mut members: Vec<&EmailAddress> = touch
            .participants
            .iter()
            .filter_map(|p| match &p.class {
                AddressClass::Member { member } => Some(member),
                _ => None,
            })
            .collect();
        members.sort_unstable();
        members.dedup();
        for contact in touch.contacts {
            if let Some(company) = &contact.company {
                self.companies
                    .insert(contact.address.clone(), company.clone());
            }
            for &member in &members {
                self.record_pair(touch, member, &contact.address);
            }
        }
    }

    /// Records one captured meeting for every member who took part and every external
    /// participant who did not decline. Call once per meeting (not per calendar); an
    /// upcoming, excluded or large meeting records nothing.
    pub fn record_meeting(&mut self, meeting: &Meeting) {
        if !meeting.counts_for_relationships() {
            return;
        }
        let weight = meeting_weight(meeting);
        let attending = meeting
            .participants
            .iter()
            .filter(|p| p.class == AddressClass::External && (p.organizer || p.attends()));
        for participant in attending {
            let contact = &participant.address;
            let company = meeting
                .contacts
                .iter()
                .find(|c| c.address == *contact)
                .and_then(|c| c.company.clone());
            if let Some(company) = company {
                self.companies.insert(contact.clone(), company);
            }
            for member in &meeting.took_part {
                self.pairs
                    .entry((member.clone(), contact.clone()))
                    .or_insert_with(|| RelationshipStats::new(meeting.start_ms))
                    .record_meeting(meeting.start_ms, weight);
            }
        }
    }

    fn record_pair(&mut self, touch: &Touch<'_>, member: &EmailAddress, contact: &EmailAddress) {
        let member_sent = sender_is(touch, |p| is_member(p, member));
        let contact_sent = sender_is(touch, |p| p.address == *contact);
        let sent = member_sent && best_recipient_role(touch, |p| p.address == *contact).is_some();
        let received =
            contact_sent && best_recipient_role(touch, |p| is_member(p, member)).is_some();
        let weight = touch_weight(touch, member, contact);
        let stats = self
            .pairs
            .entry((member.clone(), contact.clone()))
            .or_insert_with(|| RelationshipStats::new(touch.time_ms));
        stats.record(touch.time_ms, weight);
        stats.sent += u64::from(sent);
        stats.received += u64::from(received);
    }

    /// The stats of one member (primary address) with one contact.
    pub fn get(&self, member: &EmailAddress, contact: &EmailAddress) -> Option<&RelationshipStats> {
        self.pairs.get(&(member.clone(), contact.clone()))
    }

    /// Every (member, contact) pair with its stats.
    pub fn iter(&self) -> impl Iterator<Item = (&EmailAddress, &EmailAddress, &RelationshipStats)> {
        self.pairs
            .iter()
            .map(|((member, contact), stats)| (member, contact, stats))
    }

    /// Number of (member, contact) pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Per company, the members who know it, best first: each member's scores with the
    /// company's contacts summed at `now_ms`, with their activity totals and last touch.
    pub fn company_rollups(&self, now_ms: i64) -> Vec<CompanyRollup> {
        let mut by_company: BTreeMap<&str, HashMap<&EmailAddress, MemberStanding>> =
            BTreeMap::new();
        for ((member, contact), stats) in &self.pairs {
            let Some(company) = self.companies.get(contact) else {
                continue;
            };
            let standing = by_company
                .entry(company)
                .or_default()
                .entry(member)
                .or_insert_with(|| MemberStanding {
                    member: member.clone(),
                    score: 0.0,
                    contacts: 0,
                    total: 0,
                    last_ms: stats.last_ms,
                });
            standing.score += stats.score_at(now_ms);
            standing.contacts += 1;
            standing.total += stats.total;
            standing.last_ms = standing.last_ms.max(stats.last_ms);
        }
        by_company
            .into_iter()
            .map(|(company, standings)| {
                let mut members: Vec<MemberStanding> = standings.into_values().collect();
                members.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.member.cmp(&b.member)));
                CompanyRollup {
                    company: company.to_owned(),
                    members,
                }
            })
            .collect()
    }
}

/// How well one member knows one company.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberStanding {
    pub member: EmailAddress,
    /// Sum of the member's relationship scores with the company's contacts.
    pub score: f64,
    /// Contacts at the company the member has a relationship with.
    pub contacts: u64,
    /// Sum of the `total` activity counts with those contacts.
    pub total: u64,
    pub last_ms: i64,
}

/// The members who know a company, best first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompanyRollup {
    pub company: String,
    pub members: Vec<MemberStanding>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::company::FreeMailList;
    use crate::extract::Extractor;
    use crate::message::MessageRecord;
    use crate::policy::CapturePolicy;
    use crate::tenant::TenantDirectory;

    const DAY_MS: i64 = 86_400_000;

    fn extractor() -> Extractor {
        let mut tenant = TenantDirectory::new();
        tenant.add_domain("acme.com").unwrap();
        tenant
            .add_member("ann@acme.com", ["ann.lee@acme.com"])
            .unwrap();
        tenant.add_member("carl@acme.com", []).unwrap();
        Extractor::new(tenant, FreeMailList::default(), CapturePolicy::default())
    }

    fn extraction(headers: &str, day: i64) -> Extraction {
        let mut record = MessageRecord::from_rfc5322(headers.as_bytes());
        record.internal_date_ms = Some(day * DAY_MS);
        extractor().extract(&record)
    }

    fn address(raw: &str) -> EmailAddress {
        EmailAddress::parse(raw).unwrap()
    }

    fn book(extractions: &[Extraction]) -> RelationshipBook {
        let mut book = RelationshipBook::new();
        for extraction in extractions {
            book.record(&Touch::from_extraction(extraction).unwrap());
        }
        book
    }

    #[test]
    fn counts_follow_the_contract() {
        let book = book(&[
            extraction("From: ann.lee@acme.com\nTo: bob@globex.com\n", 10),
            extraction(
                "From: bob@globex.com\nTo: carl@acme.com\nCc: ann@acme.com\n",
                20,
            ),
            extraction(
                "From: dana@initech.com\nTo: bob@globex.com, ann@acme.com\n",
                5,
            ),
        ]);
        let ann_bob = book
            .get(&address("ann@acme.com"), &address("bob@globex.com"))
            .unwrap();
        assert_eq!((ann_bob.sent, ann_bob.received, ann_bob.total), (1, 1, 3));
        assert_eq!(
            (ann_bob.first_ms, ann_bob.last_ms),
            (5 * DAY_MS, 20 * DAY_MS)
        );
        let carl_bob = book
            .get(&address("carl@acme.com"), &address("bob@globex.com"))
            .unwrap();
        assert_eq!(
            (carl_bob.sent, carl_bob.received, carl_bob.total),
            (0, 1, 1)
        );
        let ann_dana = book
            .get(&address("ann@acme.com"), &address("dana@initech.com"))
            .unwrap();
        assert_eq!(
            (ann_dana.sent, ann_dana.received, ann_dana.total),
            (0, 1, 1)
        );
    }

    #[test]
    fn own_outbound_mail_and_replies_weigh_more_than_being_one_of_many() {
        let one_to_one = extraction("From: ann@acme.com\nTo: bob@globex.com\n", 0);
        let reply = extraction(
            "From: ann@acme.com\nTo: bob@globex.com\nIn-Reply-To: <p@x>\n",
            0,
        );
        let blast = extraction(
            "From: bob@globex.com\nTo: ann@acme.com, a@x.com, b@x.com, c@x.com, d@x.com\n",
            0,
        );
        let ann = address("ann@acme.com");
        let bob = address("bob@globex.com");
        let weight = |e: &Extraction| touch_weight(&Touch::from_extraction(e).unwrap(), &ann, &bob);
        assert!(weight(&reply) > weight(&one_to_one));
        assert!(weight(&one_to_one) > weight(&blast));
    }

    #[test]
    fn score_halves_every_half_life_and_is_order_independent() {
        let newer = extraction("From: ann@acme.com\nTo: bob@globex.com\n", 100);
        let older = extraction("From: bob@globex.com\nTo: ann@acme.com\n", 10);
        let forward = book(&[older.clone(), newer.clone()]);
        let backward = book(&[newer, older]);
        let (ann, bob) = (address("ann@acme.com"), address("bob@globex.com"));
        let now = 100 * DAY_MS;
        let a = forward.get(&ann, &bob).unwrap().score_at(now);
        let b = backward.get(&ann, &bob).unwrap().score_at(now);
        assert!((a - b).abs() < 1e-12);
        let later = forward.get(&ann, &bob).unwrap().score_at(now + 90 * DAY_MS);
        assert!((later - a / 2.0).abs() < 1e-12);
    }

    #[test]
    fn company_rollup_ranks_members_by_score() {
        let book = book(&[
            extraction("From: ann@acme.com\nTo: bob@globex.com\n", 10),
            extraction("From: ann@acme.com\nTo: eve@mail.globex.com\n", 11),
            extraction(
                "From: bob@globex.com\nTo: carl@acme.com, x@y.com, z@y.com\n",
                12,
            ),
            extraction("From: ann@acme.com\nTo: dana@gmail.com\n", 12),
        ]);
        let rollups = book.company_rollups(20 * DAY_MS);
        let companies: Vec<_> = rollups.iter().map(|r| r.company.as_str()).collect();
        assert_eq!(companies, ["globex.com", "y.com"]);
        let globex: Vec<_> = rollups[0]
            .members
            .iter()
            .map(|m| (m.member.as_str(), m.contacts, m.total))
            .collect();
        assert_eq!(globex, [("ann@acme.com", 2, 2), ("carl@acme.com", 1, 1)]);
    }
}
