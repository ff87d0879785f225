//! Relationship rows of (member, contact) pairs.
//!
//! A newly captured activity adds its contribution to the pairs it touches: core's
//! `RelationshipBook` weighs it (the same formula core uses) and the stored row absorbs
//! it the way core's stats absorb a touch, in any order of activity times. An activity
//! that gains participants later (a Bcc only the sender's copy carries) has a wider
//! audience: it replaces its old contribution with the new one on the pairs it was on
//! and adds one to the pairs it is new on. Counts are exact; the score equals a replay
//! of all the pair's activities up to floating-point rounding (order of summation).
//!
//! A recompute from every activity the pair shares stays for what the incremental
//! update cannot rebuild (a stored member address that does not parse, a row missing)
//! and for [`Store::rebuild_relationships`]: counts and first/last from SQL aggregates
//! (the capture contract's definitions), the score by replaying those activities
//! through the book.

use crate::api_reads::Bindings;
use crate::capture::{Params, batches, built_query, lookups};
use crate::error::StoreError;
use crate::store::{Backend, Store, TenantId};
use sqlx::{Any, AssertSqlSafe, Row, Transaction};
use std::collections::{BTreeMap, HashMap};
use tributary_core::relationship::{HALF_LIFE_MS, meeting_weight_of};
use tributary_core::{
    AddressClass, Contact, EmailAddress, Participant, RelationshipBook, Role, Touch,
};

/// A participant row of a newly captured activity, as stored.
pub(crate) struct StoredParticipant<'a> {
    pub address: &'a EmailAddress,
    pub role: Role,
    /// The member's id and stored primary address, when the store knows the member.
    pub member: Option<(i64, &'a EmailAddress)>,
    /// The contact's id, for an external participant.
    pub contact: Option<i64>,
}

/// What one activity adds to one pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Contribution {
    pub time_ms: i64,
    /// The activity's score at its own time (core's `touch_weight`).
    pub weight: f64,
    pub sent: bool,
    pub received: bool,
}

/// The contribution of one activity (at `time_ms`) to each (member id, contact id)
/// pair it touches, weighed by core's book exactly as a recompute would: members are
/// known by their stored primary address, everyone else only by address.
pub(crate) fn contributions(
    time_ms: i64,
    is_reply: bool,
    stored: &[StoredParticipant<'_>],
) -> Vec<((i64, i64), Contribution)> {
    let participants: Vec<Participant> = stored
        .iter()
        .map(|p| Participant {
            address: p.address.clone(),
            name: None,
            role: p.role,
            class: match (p.member, p.contact) {
                (Some((_, email)), _) => AddressClass::Member {
                    member: email.clone(),
                },
                (None, Some(_)) => AddressClass::External,
                (None, None) => AddressClass::Internal,
            },
        })
        .collect();
    let mut contacts: Vec<Contact> = Vec::new();
    let mut contact_ids: HashMap<&EmailAddress, i64> = HashMap::new();
    for participant in stored {
        let Some(id) = participant.contact else {
            continue;
        };
        if contact_ids.insert(participant.address, id).is_none() {
            contacts.push(Contact {
                address: participant.address.clone(),
                company: None,
            });
        }
    }
    let member_ids: HashMap<&EmailAddress, i64> = stored
        .iter()
        .filter_map(|p| p.member.map(|(id, email)| (email, id)))
        .collect();
    let mut book = RelationshipBook::new();
    book.record(&Touch {
        time_ms,
        is_reply,
        participants: &participants,
        contacts: &contacts,
    });
    book.iter()
        .filter_map(|(member, contact, stats)| {
            let pair = (*member_ids.get(member)?, *contact_ids.get(contact)?);
            Some((
                pair,
                Contribution {
                    time_ms,
                    weight: stats.score_at_last,
                    sent: stats.sent > 0,
                    received: stats.received > 0,
                },
            ))
        })
        .collect()
}

/// How one activity changes one pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Change {
    /// A newly captured activity, or one the pair is new on.
    Add(Contribution),
    /// An activity the pair was already on gained participants: it contributed `old`
    /// and now contributes `new` (at the same time).
    Revise {
        old: Contribution,
        new: Contribution,
    },
}

/// A relationship row's values.
#[derive(Debug, Clone, Copy, PartialEq)]
struct PairRow {
    first_ms: i64,
    last_ms: i64,
    sent: i64,
    received: i64,
    total: i64,
    score_at_last: f64,
}

impl PairRow {
    fn empty(time_ms: i64) -> Self {
        Self {
            first_ms: time_ms,
            last_ms: time_ms,
            sent: 0,
            received: 0,
            total: 0,
            score_at_last: 0.0,
        }
    }

    /// Absorbs one activity as core's `RelationshipStats` records one: the score is kept
    /// as of the latest touch, so an earlier activity adds its decayed weight and a
    /// later one decays what was there.
    fn absorb(&mut self, contribution: &Contribution) {
        let time_ms = contribution.time_ms;
        if time_ms > self.last_ms {
            self.score_at_last *= decay(time_ms - self.last_ms);
            self.last_ms = time_ms;
        }
        self.first_ms = self.first_ms.min(time_ms);
        self.score_at_last += contribution.weight * decay(self.last_ms - time_ms);
        self.total += 1;
        self.sent += i64::from(contribution.sent);
        self.received += i64::from(contribution.received);
    }

    /// Replaces one absorbed activity's contribution. Adding participants only widens
    /// the audience (or sharpens a role), so the new weight stays of the old one's
    /// magnitude and the difference loses no precision worth the name.
    fn revise(&mut self, old: &Contribution, new: &Contribution) {
        self.score_at_last += (new.weight - old.weight) * decay(self.last_ms - new.time_ms);
        self.sent += i64::from(new.sent) - i64::from(old.sent);
        self.received += i64::from(new.received) - i64::from(old.received);
    }
}

/// Core's decay: 2^(−age / half-life).
fn decay(age_ms: i64) -> f64 {
    (-(age_ms as f64) / HALF_LIFE_MS).exp2()
}

/// Applies each pair's changes to its stored row (creating it when missing): one read
/// and one upsert per batch of pairs. Returns the pairs it could not revise because
/// their row is missing; only a recompute can tell what they should hold.
pub(crate) async fn apply_changes(
    tx: &mut Transaction<'static, Any>,
    tenant: &str,
    backend: Backend,
    changes: BTreeMap<(i64, i64), Vec<Change>>,
) -> Result<Vec<(i64, i64)>, StoreError> {
    let pairs: Vec<(i64, i64)> = changes.keys().copied().collect();
    let mut rows: HashMap<(i64, i64), PairRow> = HashMap::with_capacity(pairs.len());
    let mut contacts: Vec<i64> = pairs.iter().map(|(_, contact)| *contact).collect();
    contacts.sort_unstable();
    contacts.dedup();
    let queries = lookups(backend, tenant, &contacts, |tenant, key| {
        format!(
            "SELECT member_id, contact_id, first_ms, last_ms, sent, received, total,
                    score_at_last
             FROM relationships WHERE tenant_id = {tenant} AND contact_id {key}"
        )
    })?;
    for query in queries {
        for row in query.fetch_all(&mut **tx).await? {
            let pair = (row.try_get(0)?, row.try_get(1)?);
            if !changes.contains_key(&pair) {
                continue;
            }
            rows.insert(
                pair,
                PairRow {
                    first_ms: row.try_get(2)?,
                    last_ms: row.try_get(3)?,
                    sent: row.try_get(4)?,
                    received: row.try_get(5)?,
                    total: row.try_get(6)?,
                    score_at_last: row.try_get(7)?,
                },
            );
        }
    }
    let mut unrevisable = Vec::new();
    let mut updated: Vec<((i64, i64), PairRow)> = Vec::with_capacity(changes.len());
    for (pair, pair_changes) in changes {
        let revisions = pair_changes.iter().filter_map(|change| match change {
            Change::Revise { old, new } => Some((old, new)),
            Change::Add(_) => None,
        });
        let additions = pair_changes.iter().filter_map(|change| match change {
            Change::Add(contribution) => Some(contribution),
            Change::Revise { .. } => None,
        });
        let mut row = match rows.remove(&pair) {
            Some(row) => row,
            None if revisions.clone().next().is_some() => {
                unrevisable.push(pair);
                continue;
            }
            None => match additions.clone().next() {
                Some(first) => PairRow::empty(first.time_ms),
                None => continue,
            },
        };
        for (old, new) in revisions {
            row.revise(old, new);
        }
        for contribution in additions {
            row.absorb(contribution);
        }
        updated.push((pair, row));
    }
    for batch in batches(&updated) {
        let mut query = built_query(format!(
            "INSERT INTO relationships
                 (tenant_id, member_id, contact_id, first_ms, last_ms, sent, received, total,
                  score_at_last)
             VALUES {}
             ON CONFLICT (tenant_id, member_id, contact_id) DO UPDATE SET
                 first_ms = excluded.first_ms, last_ms = excluded.last_ms,
                 sent = excluded.sent, received = excluded.received, total = excluded.total,
                 score_at_last = excluded.score_at_last",
            Params::new(backend).rows(batch.len(), 9)
        ));
        for ((member, contact), row) in batch {
            query = query
                .bind(tenant)
                .bind(*member)
                .bind(*contact)
                .bind(row.first_ms)
                .bind(row.last_ms)
                .bind(row.sent)
                .bind(row.received)
                .bind(row.total)
                .bind(row.score_at_last);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(unrevisable)
}

/// The activities ($2 member, $3 contact) share in tenant $1, one row each, with who
/// sent and who received. Driven from the contact's participant rows: the unary `+`
/// keeps SQLite from scanning every activity of the member instead (a member is on far
/// more activities than any one contact).
const SHARED: &str = "
    SELECT c.activity_id,
        MAX(CASE WHEN m.role = 'from' THEN 1 ELSE 0 END) AS member_from,
        MAX(CASE WHEN m.role <> 'from' THEN 1 ELSE 0 END) AS member_recipient,
        MAX(CASE WHEN c.role = 'from' THEN 1 ELSE 0 END) AS contact_from,
        MAX(CASE WHEN c.role <> 'from' THEN 1 ELSE 0 END) AS contact_recipient
    FROM activity_participants c
    JOIN activity_participants m ON m.tenant_id = c.tenant_id AND m.activity_id = c.activity_id
    WHERE c.tenant_id = $1 AND c.contact_id = $3 AND +m.member_id = $2
    GROUP BY c.activity_id";

/// The capture contract's relationship counts over the shared activities that have a
/// time (as core's `Touch` requires).
fn aggregate_sql() -> String {
    format!(
        "SELECT
            COUNT(*) AS total,
            MIN(a.time_ms) AS first_ms,
            MAX(a.time_ms) AS last_ms,
            CAST(COALESCE(SUM(CASE WHEN s.member_from = 1 AND s.contact_recipient = 1
                THEN 1 ELSE 0 END), 0) AS BIGINT) AS sent,
            CAST(COALESCE(SUM(CASE WHEN s.contact_from = 1 AND s.member_recipient = 1
                THEN 1 ELSE 0 END), 0) AS BIGINT) AS received
         FROM ({SHARED}) s
         JOIN activities a ON a.tenant_id = $1 AND a.id = s.activity_id
         WHERE a.time_ms IS NOT NULL"
    )
}

/// Every participant of the shared activities, replayed in (time, dedupe key) order so
/// the float sum is the same whatever order rows were inserted in.
fn shared_participants_sql() -> String {
    format!(
        "SELECT a.id, a.time_ms, a.is_reply, p.address, p.role, mm.email
         FROM ({SHARED}) s
         JOIN activities a ON a.tenant_id = $1 AND a.id = s.activity_id
         JOIN activity_participants p ON p.tenant_id = a.tenant_id AND p.activity_id = a.id
         LEFT JOIN members mm ON mm.tenant_id = p.tenant_id AND mm.id = p.member_id
         WHERE a.time_ms IS NOT NULL
         ORDER BY a.time_ms, a.dedupe_key"
    )
}

impl Store {
    /// Recomputes every relationship of `tenant` from all the activities each pair
    /// shares, in one transaction, and returns how many pairs it wrote. `commit_page`
    /// keeps the same rows up to date incrementally; this is for maintenance (after a
    /// change of the score's formula) and for checking those rows.
    pub async fn rebuild_relationships(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(
            "SELECT DISTINCT m.member_id, c.contact_id
             FROM activity_participants m
             JOIN activity_participants c
               ON c.tenant_id = m.tenant_id AND c.activity_id = m.activity_id
             WHERE m.tenant_id = $1 AND m.member_id IS NOT NULL AND c.contact_id IS NOT NULL",
        )
        .bind(tenant.as_str())
        .fetch_all(&mut **tx)
        .await?;
        let mut pairs: Vec<(i64, i64)> = Vec::with_capacity(rows.len());
        for row in rows {
            pairs.push((row.try_get(0)?, row.try_get(1)?));
        }
        if self.backend() == Backend::Postgres {
            // The same locks, in the same order, as a commit updating these pairs takes.
            let keys = pairs.iter().map(|(member, contact)| {
                crate::capture::relationship_lock_key(tenant.as_str(), *member, *contact)
            });
            crate::capture::advisory_locks(&mut tx, keys.collect()).await?;
        }
        for (member, contact) in &pairs {
            recompute_relationship(&mut tx, tenant.as_str(), *member, *contact).await?;
        }
        tx.commit().await?;
        Ok(pairs.len() as u64)
    }
}

/// What the captured meetings a member and a contact both attended add to their
/// relationship (core's `RelationshipBook::record_meeting`, replayed from the immutable
/// meeting tables, which are only read): large meetings and declined attendance add
/// nothing. Kept apart from the mail row, whose `sent`/`received`/`total` count mail as
/// the capture contract defines them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeetingTie {
    pub meetings: i64,
    pub first_ms: i64,
    pub last_ms: i64,
    /// The meetings' decayed score as of `last_ms`.
    pub score_at_last: f64,
}

impl MeetingTie {
    /// The pair's first and last contact points and score as of the later of the two
    /// lasts, mail (`relationship`) and meetings together, as core's stats would hold
    /// them had both been recorded in one book.
    pub fn combined_with(&self, relationship: &crate::RelationshipView) -> (i64, i64, f64) {
        let last_ms = self.last_ms.max(relationship.last_ms);
        let score = self.score_at_last * decay(last_ms - self.last_ms)
            + relationship.score_at_last * decay(last_ms - relationship.last_ms);
        (self.first_ms.min(relationship.first_ms), last_ms, score)
    }
}

/// The captured, not-large meetings the member of primary address `member` took part in
/// that one of `contacts` attended (both placeholders), by contact then oldest first, each
/// meeting once per contact, with how many attended it (the weight's audience).
fn shared_meetings_sql(member: &str, contacts: &str) -> String {
    format!(
        "SELECT c.address, m.start_ms,
            (SELECT COUNT(*) FROM meeting_participants a
             WHERE a.tenant_id = m.tenant_id AND a.meeting_id = m.id
               AND (a.organizer = 1 OR a.response <> 'declined')) AS attending
         FROM contacts c
         JOIN meeting_participants pc ON pc.tenant_id = c.tenant_id AND pc.contact_id = c.id
         JOIN meetings m ON m.tenant_id = pc.tenant_id AND m.id = pc.meeting_id
         WHERE c.tenant_id = $1 AND c.address IN ({contacts}) AND m.large = 0
           AND (pc.organizer = 1 OR pc.response <> 'declined')
           AND EXISTS (SELECT 1 FROM meeting_participants pm
                       JOIN members mm ON mm.tenant_id = pm.tenant_id AND mm.id = pm.member_id
                       WHERE pm.tenant_id = m.tenant_id AND pm.meeting_id = m.id
                         AND pm.took_part = 1 AND mm.email = {member})
         ORDER BY c.address, m.start_ms, m.meeting_key"
    )
}

impl Store {
    /// What captured meetings add to each (member primary address, contact address)
    /// pair of `pairs`; pairs without a shared meeting are absent. One query per member.
    pub async fn meeting_ties(
        &self,
        tenant: &TenantId,
        pairs: &[(String, String)],
    ) -> Result<BTreeMap<(String, String), MeetingTie>, StoreError> {
        let mut by_member: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (member, contact) in pairs {
            by_member.entry(member).or_default().push(contact);
        }
        let mut ties = BTreeMap::new();
        for (member, contacts) in by_member {
            let mut b = Bindings::new(tenant);
            let member_param = b.text(member);
            let list: Vec<String> = contacts.iter().map(|c| b.text(*c)).collect();
            let rows = b
                .query(shared_meetings_sql(&member_param, &list.join(", ")))
                .fetch_all(&self.pool)
                .await?;
            for row in rows {
                let contact: String = row.try_get(0)?;
                let start_ms: i64 = row.try_get(1)?;
                let attending: i64 = row.try_get(2)?;
                let weight = meeting_weight_of(usize::try_from(attending).unwrap_or(0));
                let tie = ties
                    .entry((member.to_owned(), contact))
                    .or_insert(MeetingTie {
                        meetings: 0,
                        first_ms: start_ms,
                        last_ms: start_ms,
                        score_at_last: 0.0,
                    });
                // A contact's rows come oldest first: each one is the latest so far.
                tie.score_at_last = tie.score_at_last * decay(start_ms - tie.last_ms) + weight;
                tie.last_ms = start_ms;
                tie.meetings += 1;
            }
        }
        Ok(ties)
    }
}

pub(crate) async fn recompute_relationship(
    tx: &mut Transaction<'static, Any>,
    tenant: &str,
    member: i64,
    contact: i64,
) -> Result<(), StoreError> {
    let row = sqlx::query(AssertSqlSafe(aggregate_sql()))
        .bind(tenant)
        .bind(member)
        .bind(contact)
        .fetch_one(&mut **tx)
        .await?;
    let total: i64 = row.try_get("total")?;
    if total == 0 {
        return Ok(());
    }
    let score = score_at_last(tx, tenant, member, contact).await?;
    sqlx::query(
        "INSERT INTO relationships
             (tenant_id, member_id, contact_id, first_ms, last_ms, sent, received, total, score_at_last)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (tenant_id, member_id, contact_id) DO UPDATE SET
             first_ms = excluded.first_ms, last_ms = excluded.last_ms,
             sent = excluded.sent, received = excluded.received, total = excluded.total,
             score_at_last = excluded.score_at_last",
    )
    .bind(tenant)
    .bind(member)
    .bind(contact)
    .bind(row.try_get::<i64, _>("first_ms")?)
    .bind(row.try_get::<i64, _>("last_ms")?)
    .bind(row.try_get::<i64, _>("sent")?)
    .bind(row.try_get::<i64, _>("received")?)
    .bind(total)
    .bind(score)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One shared activity, rebuilt as core sees it.
struct SharedActivity {
    time_ms: i64,
    is_reply: bool,
    participants: Vec<Participant>,
}

/// The pair's decayed score as of its last touch, by core's formula.
async fn score_at_last(
    tx: &mut Transaction<'static, Any>,
    tenant: &str,
    member: i64,
    contact: i64,
) -> Result<f64, StoreError> {
    let member_email: String =
        sqlx::query("SELECT email FROM members WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(member)
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?;
    let contact_address: String =
        sqlx::query("SELECT address FROM contacts WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(contact)
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?;
    let (Ok(member_email), Ok(contact_address)) = (
        EmailAddress::parse(&member_email),
        EmailAddress::parse(&contact_address),
    ) else {
        return Ok(0.0);
    };
    let rows = sqlx::query(AssertSqlSafe(shared_participants_sql()))
        .bind(tenant)
        .bind(member)
        .bind(contact)
        .fetch_all(&mut **tx)
        .await?;
    let mut activities: Vec<(i64, SharedActivity)> = Vec::new();
    for row in rows {
        let id: i64 = row.try_get(0)?;
        if activities.last().is_none_or(|(last, _)| *last != id) {
            let activity = SharedActivity {
                time_ms: row.try_get(1)?,
                is_reply: row.try_get::<i64, _>(2)? != 0,
                participants: Vec::new(),
            };
            activities.push((id, activity));
        }
        let Some((_, activity)) = activities.last_mut() else {
            continue;
        };
        if let Some(participant) = participant(
            row.try_get(3)?,
            row.try_get(4)?,
            row.try_get(5)?,
            &contact_address,
        ) {
            activity.participants.push(participant);
        }
    }
    let contacts = [Contact {
        address: contact_address.clone(),
        company: None,
    }];
    let mut book = RelationshipBook::new();
    for (_, activity) in &activities {
        book.record(&Touch {
            time_ms: activity.time_ms,
            is_reply: activity.is_reply,
            participants: &activity.participants,
            contacts: &contacts,
        });
    }
    Ok(book
        .get(&member_email, &contact_address)
        .map_or(0.0, |stats| stats.score_at_last))
}

/// A stored participant as core's `Participant`. Only the member's identity and the
/// contact's address matter to the score; other addresses count as internal or external
/// only for the audience size, which does not depend on their class.
fn participant(
    address: String,
    role: String,
    member_email: Option<String>,
    contact: &EmailAddress,
) -> Option<Participant> {
    let address = EmailAddress::parse(&address).ok()?;
    let role = match role.as_str() {
        "from" => Role::From,
        "to" => Role::To,
        "cc" => Role::Cc,
        "bcc" => Role::Bcc,
        _ => return None,
    };
    let class = match member_email.map(|email| EmailAddress::parse(&email)) {
        Some(Ok(member)) => AddressClass::Member { member },
        _ if address == *contact => AddressClass::External,
        _ => AddressClass::Internal,
    };
    Some(Participant {
        address,
        name: None,
        role,
        class,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_core::{Extraction, Extractor, MessageRecord, TenantDirectory};

    const DAY_MS: i64 = 86_400_000;

    fn address(text: &str) -> EmailAddress {
        EmailAddress::parse(text).unwrap()
    }

    /// (time, is_reply, [(address, role, member id, contact id)])
    type Spec = (
        i64,
        bool,
        Vec<(&'static str, Role, Option<i64>, Option<i64>)>,
    );

    fn specs() -> Vec<Spec> {
        let ann = Some(1);
        let erin = Some(10);
        vec![
            (
                40 * DAY_MS,
                false,
                vec![
                    ("ann@acme.com", Role::From, ann, None),
                    ("erin@ext.com", Role::To, None, erin),
                ],
            ),
            (
                400 * DAY_MS,
                true,
                vec![
                    ("erin@ext.com", Role::From, None, erin),
                    ("ann@acme.com", Role::Cc, ann, None),
                    ("bob@acme.com", Role::To, None, None),
                ],
            ),
            (
                3 * DAY_MS,
                false,
                vec![
                    ("carl@acme.com", Role::From, None, None),
                    ("ann@acme.com", Role::To, ann, None),
                    ("erin@ext.com", Role::Bcc, None, erin),
                ],
            ),
            (
                90 * DAY_MS,
                false,
                vec![
                    ("ann@acme.com", Role::From, ann, None),
                    ("erin@ext.com", Role::Cc, None, erin),
                    ("dan@ext.com", Role::To, None, Some(11)),
                ],
            ),
        ]
    }

    #[test]
    fn absorbing_touches_in_any_order_matches_cores_book() {
        let ann = address("ann@acme.com");
        let addresses: Vec<Vec<EmailAddress>> = specs()
            .iter()
            .map(|(_, _, people)| people.iter().map(|p| address(p.0)).collect())
            .collect();
        let touches: Vec<Vec<StoredParticipant<'_>>> = specs()
            .iter()
            .zip(&addresses)
            .map(|((_, _, people), parsed)| {
                people
                    .iter()
                    .zip(parsed)
                    .map(|(&(_, role, member, contact), address)| StoredParticipant {
                        address,
                        role,
                        member: member.map(|id| (id, &ann)),
                        contact,
                    })
                    .collect()
            })
            .collect();
        let contributed: Vec<Vec<((i64, i64), Contribution)>> = specs()
            .iter()
            .zip(&touches)
            .map(|((time, reply, _), stored)| contributions(*time, *reply, stored))
            .collect();
        let absorbed = |order: &[usize]| {
            let mut row: Option<PairRow> = None;
            for &index in order {
                for (pair, contribution) in &contributed[index] {
                    if *pair != (1, 10) {
                        continue;
                    }
                    row.get_or_insert_with(|| PairRow::empty(contribution.time_ms))
                        .absorb(contribution);
                }
            }
            row.unwrap()
        };
        let forward = absorbed(&[0, 1, 2, 3]);
        let shuffled = absorbed(&[3, 1, 0, 2]);

        let mut book = RelationshipBook::new();
        for ((time, reply, _), stored) in specs().iter().zip(&touches) {
            let participants: Vec<Participant> = stored
                .iter()
                .map(|p| Participant {
                    address: p.address.clone(),
                    name: None,
                    role: p.role,
                    class: match (p.member, p.contact) {
                        (Some(_), _) => AddressClass::Member {
                            member: ann.clone(),
                        },
                        (None, Some(_)) => AddressClass::External,
                        (None, None) => AddressClass::Internal,
                    },
                })
                .collect();
            let contacts: Vec<Contact> = stored
                .iter()
                .filter(|p| p.contact.is_some())
                .map(|p| Contact {
                    address: p.address.clone(),
                    company: None,
                })
                .collect();
            book.record(&Touch {
                time_ms: *time,
                is_reply: *reply,
                participants: &participants,
                contacts: &contacts,
            });
        }
        let expected = book.get(&ann, &address("erin@ext.com")).unwrap();
        for row in [forward, shuffled] {
            assert_eq!(
                (row.first_ms, row.last_ms, row.sent, row.received, row.total),
                (
                    expected.first_ms,
                    expected.last_ms,
                    i64::try_from(expected.sent).unwrap(),
                    i64::try_from(expected.received).unwrap(),
                    i64::try_from(expected.total).unwrap()
                )
            );
            assert!(
                (row.score_at_last - expected.score_at_last).abs()
                    <= 1e-12 * expected.score_at_last,
                "{row:?} vs {expected:?}"
            );
        }
        assert_eq!(
            (expected.sent, expected.received, expected.total),
            (2, 1, 4)
        );
        // Dan is a contact only of the last touch, which Ann sent him directly.
        assert!(
            contributed[3]
                .iter()
                .any(|(pair, c)| *pair == (1, 11) && c.sent && c.weight > 0.0)
        );
    }

    mod against_a_rebuild {
        use super::*;
        use crate::{CapturePage, CapturedSighting, LinkId, MemberRole, RelationshipView};
        use sqlx::Connection;
        use std::collections::BTreeSet;
        use tributary_core::{CapturePolicy, FreeMailList};
        use tributary_emulator::model::{DirectoryUser, Organization};
        use tributary_emulator::org::{self, OrgConfig};

        fn is_synced(user: &DirectoryUser) -> bool {
            !user.suspended && !user.archived && user.is_mailbox_setup && !user.deleted
        }

        fn extractor_for(org: &Organization) -> Extractor {
            let mut tenant = TenantDirectory::new();
            for domain in &org.domains {
                tenant.add_domain(domain).unwrap();
            }
            for user in org.users.iter().filter(|u| is_synced(u)) {
                let aliases = user
                    .aliases
                    .iter()
                    .chain(&user.non_editable_aliases)
                    .map(String::as_str);
                tenant.add_member(&user.primary_email, aliases).unwrap();
            }
            Extractor::new(tenant, FreeMailList::default(), CapturePolicy::default())
        }

        /// One mailbox's sighting: (mailbox, extraction, id, labels).
        type Sighting = (String, Extraction, String, Vec<String>);

        /// Every synced mailbox's sightings, with the record each was extracted from.
        fn sightings(org: &Organization) -> Vec<(Sighting, MessageRecord)> {
            let extractor = extractor_for(org);
            let mut all = Vec::new();
            for user in org.users.iter().filter(|u| is_synced(u)) {
                let mailbox = user.primary_email.to_ascii_lowercase();
                for message in org.mailboxes[&mailbox].messages.values() {
                    let mut record = MessageRecord::from_header_pairs(
                        message
                            .headers
                            .iter()
                            .map(|(n, v)| (n.as_str(), v.as_str())),
                    );
                    record.mailbox = Some(mailbox.clone());
                    record.provider_message_id = Some(message.id.clone());
                    record.labels = message.label_ids.iter().cloned().collect();
                    record.internal_date_ms = Some(message.internal_date_ms);
                    if !extractor.policy.sees(&record, org.now_ms) {
                        continue;
                    }
                    all.push((
                        (
                            mailbox.clone(),
                            extractor.extract(&record),
                            message.id.clone(),
                            record.labels.clone(),
                        ),
                        record,
                    ));
                }
            }
            all
        }

        /// Commits a generated organization in small pages that interleave its
        /// mailboxes (so later copies add participants to known activities), then
        /// checks the incrementally kept relationships against a rebuild from scratch.
        async fn incremental_rows_equal_a_rebuild(store: Store) {
            let generated = org::generate(&OrgConfig {
                users: 6,
                messages_per_user: 120,
                ..OrgConfig::default()
            });
            let tenant = TenantId::new("acme");
            store.create_tenant(&tenant, "Acme").await.unwrap();
            let mut links: HashMap<String, LinkId> = HashMap::new();
            for user in generated.org.users.iter().filter(|u| is_synced(u)) {
                let aliases: Vec<&str> = user
                    .aliases
                    .iter()
                    .chain(&user.non_editable_aliases)
                    .map(String::as_str)
                    .collect();
                let mailbox = user.primary_email.to_ascii_lowercase();
                let member = store
                    .add_member(&tenant, &mailbox, &aliases, MemberRole::Member)
                    .await
                    .unwrap();
                let link = store
                    .link_mailbox(
                        &tenant,
                        member,
                        &mailbox,
                        crate::store::ConnectionKind::Google,
                    )
                    .await
                    .unwrap();
                links.insert(mailbox, link);
            }
            let mut by_mailbox: BTreeMap<String, Vec<CapturedSighting>> = BTreeMap::new();
            let mut records: BTreeMap<String, Vec<MessageRecord>> = BTreeMap::new();
            // Copies of messages without a Date header, timed by their receipt.
            let mut undated: Vec<(i64, String, CapturedSighting)> = Vec::new();
            for ((mailbox, extraction, id, labels), record) in sightings(&generated.org) {
                records
                    .entry(extraction.dedupe_key.as_str().to_owned())
                    .or_default()
                    .push(record);
                let sighting = CapturedSighting {
                    extraction,
                    provider_message_id: id,
                    labels,
                };
                match sighting.extraction.time_ms {
                    Some(ms) if sighting.extraction.time_from_receipt() => {
                        undated.push((ms, mailbox, sighting));
                    }
                    _ => by_mailbox.entry(mailbox).or_default().push(sighting),
                }
            }
            // Round-robin pages of 23 copies, newest mailbox order reversed every round.
            let mut queues: Vec<(LinkId, std::vec::IntoIter<CapturedSighting>)> = by_mailbox
                .into_iter()
                .map(|(mailbox, sightings)| (links[&mailbox], sightings.into_iter()))
                .collect();
            let mut pages: Vec<(LinkId, CapturePage)> = Vec::new();
            let mut round = 0;
            while queues.iter().any(|(_, q)| q.len() > 0) {
                round += 1;
                if round % 2 == 0 {
                    queues.reverse();
                }
                for (link, queue) in &mut queues {
                    let page = CapturePage {
                        sightings: queue.by_ref().take(23).collect(),
                    };
                    if !page.sightings.is_empty() {
                        pages.push((*link, page));
                    }
                }
            }
            // Halfway, the Date-less copies, latest received first, a page each: every
            // earlier copy lowers its activity's time, and the pages after it add to the
            // recomputed pairs incrementally.
            undated.sort_by(|a, b| (b.0, &b.1).cmp(&(a.0, &a.1)));
            let middle = pages.len() / 2;
            pages.splice(
                middle..middle,
                undated.into_iter().map(|(_, mailbox, sighting)| {
                    let page = CapturePage {
                        sightings: vec![sighting],
                    };
                    (links[&mailbox], page)
                }),
            );
            // Date-less messages whose first committed copy was not their earliest.
            let mut first_receipt: HashMap<String, i64> = HashMap::new();
            let mut arrived_late: BTreeSet<String> = BTreeSet::new();
            for (link, page) in &pages {
                for extraction in page.sightings.iter().map(|s| &s.extraction) {
                    let Some(ms) = extraction
                        .time_ms
                        .filter(|_| extraction.time_from_receipt())
                    else {
                        continue;
                    };
                    let key = extraction.dedupe_key.as_str();
                    if ms < *first_receipt.entry(key.to_owned()).or_insert(ms) {
                        arrived_late.insert(key.to_owned());
                    }
                }
                store.commit_page(&tenant, *link, page, None).await.unwrap();
            }
            // Every activity's time is the contract's (core's, from all its copies).
            let extractor = extractor_for(&generated.org);
            let stored: BTreeMap<String, Option<i64>> = store
                .activities(&tenant)
                .await
                .unwrap()
                .into_iter()
                .map(|a| (a.dedupe_key, a.time_ms))
                .collect();
            let lowered = stored
                .keys()
                .filter(|key| arrived_late.contains(*key))
                .count();
            assert!(
                lowered > 0,
                "no Date-less message arrived latest copy first"
            );
            for (key, time_ms) in &stored {
                let expected = extractor.extract_sightings(&records[key]);
                assert_eq!(*time_ms, expected.time_ms, "{key}");
            }
            let incremental = store.relationships(&tenant).await.unwrap();
            let rebuilt_pairs = store.rebuild_relationships(&tenant).await.unwrap();
            let rebuilt = store.relationships(&tenant).await.unwrap();
            assert!(
                incremental.len() > 20,
                "{} relationships",
                incremental.len()
            );
            assert_eq!(rebuilt_pairs, rebuilt.len() as u64);
            assert_eq!(incremental.len(), rebuilt.len());
            assert_eq!(incremental.len(), generated.truth.relationships.len());
            let counts = |r: &RelationshipView| {
                (
                    r.member.clone(),
                    r.contact.clone(),
                    r.first_ms,
                    r.last_ms,
                    r.sent,
                    r.received,
                    r.total,
                )
            };
            for (kept, expected) in incremental.iter().zip(&rebuilt) {
                assert_eq!(counts(kept), counts(expected));
                assert!(
                    (kept.score_at_last - expected.score_at_last).abs()
                        <= 1e-12 * expected.score_at_last,
                    "{kept:?} vs {expected:?}"
                );
            }
        }

        #[tokio::test]
        async fn sqlite() {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open_in_data_dir(dir.path()).await.unwrap();
            incremental_rows_equal_a_rebuild(store.clone()).await;
            store.close().await;
        }

        #[tokio::test]
        async fn postgres() {
            let admin_url = std::env::var("TRIBUTARY_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
            let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await else {
                eprintln!("skipped: PostgreSQL not reachable at {admin_url}");
                return;
            };
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos();
            let name = format!("tributary_rebuild_{}_{nanos}", std::process::id());
            // The name is built here from digits and underscores.
            sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut admin)
                .await
                .unwrap();
            let base = &admin_url[..admin_url.rfind('/').unwrap()];
            let store = Store::open(&format!("{base}/{name}")).await.unwrap();
            let outcome = tokio::spawn(incremental_rows_equal_a_rebuild(store.clone())).await;
            store.close().await;
            sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
                .execute(&mut admin)
                .await
                .unwrap();
            if let Err(error) = outcome {
                std::panic::resume_unwind(error.into_panic());
            }
        }
    }
}
