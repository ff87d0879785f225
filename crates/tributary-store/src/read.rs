//! The read side: what the console, the API and the tests look at. Every query is
//! scoped to one tenant.
//!
//! The whole-tenant reads (`activities`, `contacts`, …) are for tests and maintenance;
//! the console's activity views read only what a page shows: companies ranked by
//! activity a page at a time, one company's, contact's or member's timeline newest
//! first with keyset paging, and searches with a limit and a count.

use crate::api_reads::{Bindings, activity_row, contains, split_page};
use crate::error::StoreError;
use crate::store::{Backend, MemberId, Store, TenantId};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::{BTreeMap, BTreeSet};

/// One participant of an activity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ParticipantView {
    pub address: String,
    /// `from`, `to`, `cc` or `bcc`.
    pub role: String,
    /// `member`, `internal` or `external`.
    pub kind: String,
}

/// An activity with its participants and the mailboxes that hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityView {
    pub id: i64,
    pub dedupe_key: String,
    pub thread_key: Option<String>,
    pub time_ms: Option<i64>,
    pub direction: String,
    pub subject: Option<String>,
    /// Sorted by address, then role.
    pub participants: Vec<ParticipantView>,
    /// (mailbox, provider message id, labels), sorted.
    pub sightings: Vec<(String, String, Vec<String>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactView {
    pub address: String,
    pub company: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanyView {
    pub domain: String,
    pub contacts: i64,
}

impl ContactView {
    /// A row of (address, company domain).
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(ContactView {
            address: row.try_get(0)?,
            company: row.try_get(1)?,
        })
    }
}

impl CompanyView {
    /// A row of (domain, number of contacts).
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(CompanyView {
            domain: row.try_get(0)?,
            contacts: row.try_get(1)?,
        })
    }
}

/// A member–contact relationship.
#[derive(Debug, Clone, PartialEq)]
pub struct RelationshipView {
    pub member: String,
    pub contact: String,
    pub first_ms: i64,
    pub last_ms: i64,
    pub sent: i64,
    pub received: i64,
    pub total: i64,
    /// The decayed score as of `last_ms` (core's `RelationshipStats::score_at_last`).
    pub score_at_last: f64,
}

impl Store {
    pub async fn count_activities(&self, tenant: &TenantId) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM activities WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Every activity of the tenant, by dedupe key.
    pub async fn activities(&self, tenant: &TenantId) -> Result<Vec<ActivityView>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, dedupe_key, thread_key, time_ms, direction, subject
             FROM activities WHERE tenant_id = $1 ORDER BY dedupe_key",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await?;
        let mut activities = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get("id")?;
            activities.push(ActivityView {
                id,
                dedupe_key: row.try_get("dedupe_key")?,
                thread_key: row.try_get("thread_key")?,
                time_ms: row.try_get("time_ms")?,
                direction: row.try_get("direction")?,
                subject: row.try_get("subject")?,
                participants: self.participants_of(tenant, id).await?,
                sightings: self.sightings_of(tenant, id).await?,
            });
        }
        Ok(activities)
    }

    async fn participants_of(
        &self,
        tenant: &TenantId,
        activity: i64,
    ) -> Result<Vec<ParticipantView>, StoreError> {
        let rows = sqlx::query(
            "SELECT address, role, kind FROM activity_participants
             WHERE tenant_id = $1 AND activity_id = $2 ORDER BY address, role",
        )
        .bind(tenant.as_str())
        .bind(activity)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ParticipantView {
                    address: row.try_get(0)?,
                    role: row.try_get(1)?,
                    kind: row.try_get(2)?,
                })
            })
            .collect()
    }

    async fn sightings_of(
        &self,
        tenant: &TenantId,
        activity: i64,
    ) -> Result<Vec<(String, String, Vec<String>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT l.mailbox, s.provider_message_id, s.labels
             FROM activity_sightings s
             JOIN mailbox_links l ON l.tenant_id = s.tenant_id AND l.id = s.link_id
             WHERE s.tenant_id = $1 AND s.activity_id = $2
             ORDER BY l.mailbox, s.provider_message_id",
        )
        .bind(tenant.as_str())
        .bind(activity)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(sighting_view).collect()
    }

    /// Every contact of the tenant, by address.
    pub async fn contacts(&self, tenant: &TenantId) -> Result<Vec<ContactView>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.address, co.domain FROM contacts c
             LEFT JOIN companies co ON co.tenant_id = c.tenant_id AND co.id = c.company_id
             WHERE c.tenant_id = $1 ORDER BY c.address",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ContactView::from_row).collect()
    }

    /// Every company of the tenant with its number of contacts, by domain.
    pub async fn companies(&self, tenant: &TenantId) -> Result<Vec<CompanyView>, StoreError> {
        let rows = sqlx::query(
            "SELECT co.domain, COUNT(c.id) AS contacts FROM companies co
             LEFT JOIN contacts c ON c.tenant_id = co.tenant_id AND c.company_id = co.id
             WHERE co.tenant_id = $1 GROUP BY co.domain ORDER BY co.domain",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(CompanyView::from_row).collect()
    }

    /// Every relationship of the tenant, by member then contact address.
    pub async fn relationships(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<RelationshipView>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.email, c.address, r.first_ms, r.last_ms, r.sent, r.received, r.total,
                    r.score_at_last
             FROM relationships r
             JOIN members m ON m.tenant_id = r.tenant_id AND m.id = r.member_id
             JOIN contacts c ON c.tenant_id = r.tenant_id AND c.id = r.contact_id
             WHERE r.tenant_id = $1 ORDER BY m.email, c.address",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(relationship_view).collect()
    }
}

/// A relationship row of `SELECT m.email, c.address, r.first_ms, r.last_ms, r.sent,
/// r.received, r.total, r.score_at_last`.
pub(crate) fn relationship_view(row: &AnyRow) -> Result<RelationshipView, StoreError> {
    Ok(RelationshipView {
        member: row.try_get(0)?,
        contact: row.try_get(1)?,
        first_ms: row.try_get(2)?,
        last_ms: row.try_get(3)?,
        sent: row.try_get(4)?,
        received: row.try_get(5)?,
        total: row.try_get(6)?,
        score_at_last: row.try_get(7)?,
    })
}

fn sighting_view(row: &AnyRow) -> Result<(String, String, Vec<String>), StoreError> {
    let labels: String = row.try_get(2)?;
    Ok((
        row.try_get(0)?,
        row.try_get(1)?,
        serde_json::from_str(&labels)?,
    ))
}

/// How well one member knows a contact, or the contacts of a company: their
/// relationships summed.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberStrength {
    pub member: String,
    /// The sum of the relationships' `score_at_last`.
    pub score: f64,
    /// Messages in all.
    pub total: i64,
    /// The latest contact point.
    pub last_ms: i64,
}

/// A company's line in the ranking by activity.
#[derive(Debug, Clone, PartialEq)]
pub struct CompanyRank {
    pub domain: String,
    /// Activities any contact of the company takes part in.
    pub activities: i64,
    pub contacts: i64,
    /// The latest of those activities' times.
    pub last_ms: Option<i64>,
    /// Who knows the company's contacts best.
    pub best: Option<MemberStrength>,
}

/// One page of the company ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct CompanyRanking {
    /// Most activities first, then by domain in byte order.
    pub companies: Vec<CompanyRank>,
    /// Whether more companies follow.
    pub more: bool,
}

/// Whose contact points a timeline lists: the activities any of whose participants is
/// one of these addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimelineOf {
    /// The contacts of the company with this domain.
    Company(String),
    /// One contact address.
    Contact(String),
    /// The member's primary address and aliases.
    Member(MemberId),
}

/// Where a timeline page ended; the next page starts after this activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineCursor {
    pub time_ms: Option<i64>,
    pub dedupe_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelinePage {
    /// Newest first, activities without a time last; equal times by dedupe key (in the
    /// database's collation, as [`Store::activities`] orders them).
    pub activities: Vec<ActivityView>,
    /// The participants of these activities that are contacts.
    pub contacts: BTreeSet<String>,
    /// Set when more activities follow.
    pub next: Option<TimelineCursor>,
}

/// The first items of a search and how many matched in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<T> {
    pub items: Vec<T>,
    pub total: i64,
}

/// Relationships reached from their contacts: `CROSS JOIN` keeps SQLite to this order
/// (contacts, then each one's relationships by `relationships_by_contact`), where
/// without statistics it would scan every relationship of the tenant per contact;
/// PostgreSQL plans it as the inner join it is.
const CONTACT_FIRST: &str = "FROM contacts c
     CROSS JOIN relationships r
     CROSS JOIN members m
     WHERE r.tenant_id = c.tenant_id AND r.contact_id = c.id
       AND m.tenant_id = r.tenant_id AND m.id = r.member_id AND";

/// Which relationships a strength sums.
enum KnownBy<'a> {
    Company(&'a str),
    Contact(&'a str),
}

impl Store {
    /// One page of the tenant's companies that have contacts, most activities first
    /// (then by domain in byte order), each with who knows it best.
    pub async fn ranked_companies(
        &self,
        tenant: &TenantId,
        offset: usize,
        limit: usize,
    ) -> Result<CompanyRanking, StoreError> {
        let limit = limit.max(1);
        let order = crate::api_reads::byte_order(self.backend());
        let mut b = Bindings::new(tenant);
        let sql = format!(
            "SELECT co.id, co.domain, n.contacts, COALESCE(s.activities, 0), s.last_ms
             FROM companies co
             JOIN (SELECT company_id, COUNT(*) AS contacts FROM contacts
                   WHERE tenant_id = $1 AND company_id IS NOT NULL
                   GROUP BY company_id) n ON n.company_id = co.id
             LEFT JOIN (
                 SELECT t.company_id, COUNT(*) AS activities, MAX(a.time_ms) AS last_ms
                 FROM (SELECT DISTINCT c.company_id, p.activity_id
                       FROM activity_participants p
                       JOIN contacts c ON c.tenant_id = p.tenant_id AND c.address = p.address
                       WHERE p.tenant_id = $1 AND c.company_id IS NOT NULL) t
                 JOIN activities a ON a.tenant_id = $1 AND a.id = t.activity_id
                 GROUP BY t.company_id) s ON s.company_id = co.id
             WHERE co.tenant_id = $1
             ORDER BY COALESCE(s.activities, 0) DESC, co.domain{order}
             LIMIT {} OFFSET {}",
            b.count(limit + 1),
            b.count(offset)
        );
        let rows = b.query(sql).fetch_all(&self.pool).await?;
        let (rows, more) = split_page(rows, limit);
        let mut ids = Vec::with_capacity(rows.len());
        let mut companies = Vec::with_capacity(rows.len());
        for row in &rows {
            ids.push(row.try_get::<i64, _>(0)?);
            companies.push(CompanyRank {
                domain: row.try_get(1)?,
                contacts: row.try_get(2)?,
                activities: row.try_get(3)?,
                last_ms: row.try_get(4)?,
                best: None,
            });
        }
        let mut best = self.best_by_company(tenant, &ids).await?;
        for (company, id) in companies.iter_mut().zip(&ids) {
            company.best = best.remove(id);
        }
        Ok(CompanyRanking { companies, more })
    }

    /// Who knows each of `companies` (ids) best.
    async fn best_by_company(
        &self,
        tenant: &TenantId,
        companies: &[i64],
    ) -> Result<BTreeMap<i64, MemberStrength>, StoreError> {
        if companies.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut b = Bindings::new(tenant);
        let list: Vec<String> = companies.iter().map(|id| b.int(*id)).collect();
        // Ordered as `Store::relationships`, so the scores add up in the same order.
        let sql = format!(
            "SELECT c.company_id, m.email, r.score_at_last, r.total, r.last_ms
             {CONTACT_FIRST} c.tenant_id = $1 AND c.company_id IN ({})
             ORDER BY m.email, c.address",
            list.join(", ")
        );
        let rows = b.query(sql).fetch_all(&self.pool).await?;
        let mut by_company: BTreeMap<i64, Vec<(String, f64, i64, i64)>> = BTreeMap::new();
        for row in &rows {
            by_company.entry(row.try_get(0)?).or_default().push((
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
                row.try_get(4)?,
            ));
        }
        Ok(by_company
            .into_iter()
            .filter_map(|(id, rows)| Some((id, rank_strengths(rows).into_iter().next()?)))
            .collect())
    }

    /// Who knows the contacts of the company with `domain` best, strongest first, at
    /// most `limit`.
    pub async fn company_strengths(
        &self,
        tenant: &TenantId,
        domain: &str,
        limit: usize,
    ) -> Result<Vec<MemberStrength>, StoreError> {
        self.strengths(tenant, KnownBy::Company(domain), limit)
            .await
    }

    /// Who knows the contact best, strongest first, at most `limit`.
    pub async fn contact_strengths(
        &self,
        tenant: &TenantId,
        address: &str,
        limit: usize,
    ) -> Result<Vec<MemberStrength>, StoreError> {
        self.strengths(tenant, KnownBy::Contact(address), limit)
            .await
    }

    async fn strengths(
        &self,
        tenant: &TenantId,
        of: KnownBy<'_>,
        limit: usize,
    ) -> Result<Vec<MemberStrength>, StoreError> {
        let mut b = Bindings::new(tenant);
        let condition = match of {
            KnownBy::Company(domain) => format!(
                "c.company_id = (SELECT id FROM companies WHERE tenant_id = $1 AND domain = {})",
                b.text(domain.to_lowercase())
            ),
            KnownBy::Contact(address) => {
                format!("c.address = {}", b.text(address.to_lowercase()))
            }
        };
        let sql = format!(
            "SELECT m.email, r.score_at_last, r.total, r.last_ms
             {CONTACT_FIRST} c.tenant_id = $1 AND {condition}
             ORDER BY m.email, c.address"
        );
        let rows = b.query(sql).fetch_all(&self.pool).await?;
        let rows = rows
            .iter()
            .map(|row| {
                Ok((
                    row.try_get(0)?,
                    row.try_get(1)?,
                    row.try_get(2)?,
                    row.try_get(3)?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut ranked = rank_strengths(rows);
        ranked.truncate(limit);
        Ok(ranked)
    }

    /// The addresses of the contacts of the company with `domain`, the first `limit` by
    /// address, and how many it has.
    pub async fn company_contacts(
        &self,
        tenant: &TenantId,
        domain: &str,
        limit: usize,
    ) -> Result<Found<String>, StoreError> {
        let filter = |b: &mut Bindings| {
            format!(
                "FROM contacts c JOIN companies co ON co.tenant_id = c.tenant_id AND co.id = c.company_id
                 WHERE c.tenant_id = $1 AND co.domain = {}",
                b.text(domain.to_lowercase())
            )
        };
        self.found_addresses(tenant, filter, "c.address", limit)
            .await
    }

    /// A contact of the tenant, if there is one with this address.
    pub async fn contact(
        &self,
        tenant: &TenantId,
        address: &str,
    ) -> Result<Option<ContactView>, StoreError> {
        let row = sqlx::query(
            "SELECT c.address, co.domain FROM contacts c
             LEFT JOIN companies co ON co.tenant_id = c.tenant_id AND co.id = c.company_id
             WHERE c.tenant_id = $1 AND c.address = $2",
        )
        .bind(tenant.as_str())
        .bind(address.to_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(ContactView::from_row).transpose()
    }

    /// One page of a timeline: the activities any of whose participants is one of
    /// `of`'s addresses, newest first, after `after`.
    pub async fn timeline_page(
        &self,
        tenant: &TenantId,
        of: &TimelineOf,
        after: Option<&TimelineCursor>,
        limit: usize,
    ) -> Result<TimelinePage, StoreError> {
        let limit = limit.max(1);
        let mut b = Bindings::new(tenant);
        let addresses = match of {
            TimelineOf::Company(domain) => format!(
                "p.address IN (SELECT c.address FROM contacts c
                     JOIN companies co ON co.tenant_id = c.tenant_id AND co.id = c.company_id
                     WHERE c.tenant_id = $1 AND co.domain = {})",
                b.text(domain.to_lowercase())
            ),
            TimelineOf::Contact(address) => {
                format!("p.address = {}", b.text(address.to_lowercase()))
            }
            TimelineOf::Member(member) => {
                let m = b.int(member.0);
                format!(
                    "p.address IN (SELECT address FROM member_addresses
                                   WHERE tenant_id = $1 AND member_id = {m}
                                   UNION SELECT email FROM members WHERE tenant_id = $1 AND id = {m})"
                )
            }
        };
        let after = match after {
            None => String::new(),
            Some(TimelineCursor {
                time_ms: Some(time),
                dedupe_key,
            }) => {
                let t = b.int(*time);
                let k = b.text(dedupe_key.as_str());
                format!(
                    "AND (a.time_ms IS NULL OR a.time_ms < {t}
                          OR (a.time_ms = {t} AND a.dedupe_key > {k}))"
                )
            }
            Some(TimelineCursor {
                time_ms: None,
                dedupe_key,
            }) => format!(
                "AND a.time_ms IS NULL AND a.dedupe_key > {}",
                b.text(dedupe_key.as_str())
            ),
        };
        let sql = format!(
            "SELECT a.id, a.dedupe_key, a.thread_key, a.time_ms, a.direction, a.subject
             FROM activities a
             WHERE a.tenant_id = $1
               AND a.id IN (SELECT p.activity_id FROM activity_participants p
                            WHERE p.tenant_id = $1 AND {addresses})
               {after}
             ORDER BY CASE WHEN a.time_ms IS NULL THEN 1 ELSE 0 END, a.time_ms DESC, a.dedupe_key
             LIMIT {}",
            b.count(limit + 1)
        );
        let rows = b.query(sql).fetch_all(&self.pool).await?;
        let (rows, more) = split_page(rows, limit);
        let mut activities = rows
            .iter()
            .map(activity_row)
            .collect::<Result<Vec<_>, _>>()?;
        self.fill_details(tenant, &mut activities).await?;
        let contacts = self.contacts_among(tenant, &activities).await?;
        let next = more
            .then(|| activities.last())
            .flatten()
            .map(|last| TimelineCursor {
                time_ms: last.time_ms,
                dedupe_key: last.dedupe_key.clone(),
            });
        Ok(TimelinePage {
            activities,
            contacts,
            next,
        })
    }

    /// The participants of `activities` that are contacts.
    async fn contacts_among(
        &self,
        tenant: &TenantId,
        activities: &[ActivityView],
    ) -> Result<BTreeSet<String>, StoreError> {
        if activities.is_empty() {
            return Ok(BTreeSet::new());
        }
        let mut b = Bindings::new(tenant);
        let list: Vec<String> = activities.iter().map(|a| b.int(a.id)).collect();
        let sql = format!(
            "SELECT DISTINCT p.address FROM activity_participants p
             JOIN contacts c ON c.tenant_id = p.tenant_id AND c.address = p.address
             WHERE p.tenant_id = $1 AND p.activity_id IN ({})",
            list.join(", ")
        );
        let rows = b.query(sql).fetch_all(&self.pool).await?;
        rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
    }

    /// The member's strongest `limit` relationships: highest score first, equal scores
    /// by contact address (as [`Store::relationships`] orders them).
    pub async fn member_relationships(
        &self,
        tenant: &TenantId,
        member: MemberId,
        limit: usize,
    ) -> Result<Vec<RelationshipView>, StoreError> {
        let mut b = Bindings::new(tenant);
        let sql = format!(
            "SELECT m.email, c.address, r.first_ms, r.last_ms, r.sent, r.received, r.total,
                    r.score_at_last
             FROM relationships r
             JOIN members m ON m.tenant_id = r.tenant_id AND m.id = r.member_id
             JOIN contacts c ON c.tenant_id = r.tenant_id AND c.id = r.contact_id
             WHERE r.tenant_id = $1 AND r.member_id = {}
             ORDER BY r.score_at_last DESC, c.address LIMIT {}",
            b.int(member.0),
            b.count(limit)
        );
        let rows = b.query(sql).fetch_all(&self.pool).await?;
        rows.iter().map(relationship_view).collect()
    }

    /// Members whose primary address or an alias matches `needle` (see
    /// [`address_matches`]): the first `limit` primary addresses, and how many.
    pub async fn search_members(
        &self,
        tenant: &TenantId,
        needle: &str,
        limit: usize,
    ) -> Result<Found<String>, StoreError> {
        let backend = self.backend();
        let filter = |b: &mut Bindings| {
            format!(
                "FROM members m WHERE m.tenant_id = $1 AND ({} OR EXISTS (
                     SELECT 1 FROM member_addresses a
                     WHERE a.tenant_id = m.tenant_id AND a.member_id = m.id AND {}))",
                address_match(backend, b, "m.email", needle),
                address_match(backend, b, "a.address", needle)
            )
        };
        self.found_addresses(tenant, filter, "m.email", limit).await
    }

    /// Contacts whose address matches `needle` (see [`address_matches`]): the first
    /// `limit` addresses, and how many.
    pub async fn search_contacts(
        &self,
        tenant: &TenantId,
        needle: &str,
        limit: usize,
    ) -> Result<Found<String>, StoreError> {
        let backend = self.backend();
        let filter = |b: &mut Bindings| {
            format!(
                "FROM contacts c WHERE c.tenant_id = $1 AND {}",
                address_match(backend, b, "c.address", needle)
            )
        };
        self.found_addresses(tenant, filter, "c.address", limit)
            .await
    }

    /// Companies whose domain holds `needle`: the first `limit` by domain with their
    /// number of contacts, and how many.
    pub async fn search_companies(
        &self,
        tenant: &TenantId,
        needle: &str,
        limit: usize,
    ) -> Result<Found<CompanyView>, StoreError> {
        let backend = self.backend();
        let filter = |b: &mut Bindings| {
            let n = b.text(needle);
            format!(
                "FROM companies co WHERE co.tenant_id = $1 AND {}",
                contains(backend, "co.domain", &n)
            )
        };
        let total = self.count_of(tenant, &filter).await?;
        let mut b = Bindings::new(tenant);
        let from = filter(&mut b);
        let sql = format!(
            "SELECT co.domain, (SELECT COUNT(*) FROM contacts c
                                WHERE c.tenant_id = co.tenant_id AND c.company_id = co.id)
             {from} ORDER BY co.domain LIMIT {}",
            b.count(limit)
        );
        let rows = b.query(sql).fetch_all(&self.pool).await?;
        let items = rows
            .iter()
            .map(CompanyView::from_row)
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Found { items, total })
    }

    /// The first `limit` values of `column` over the rows `filter` selects (a `FROM …
    /// WHERE …` clause, its values bound to the given bindings), and how many rows.
    async fn found_addresses(
        &self,
        tenant: &TenantId,
        filter: impl Fn(&mut Bindings) -> String,
        column: &str,
        limit: usize,
    ) -> Result<Found<String>, StoreError> {
        let total = self.count_of(tenant, &filter).await?;
        let mut b = Bindings::new(tenant);
        let from = filter(&mut b);
        let sql = format!(
            "SELECT {column} {from} ORDER BY {column} LIMIT {}",
            b.count(limit)
        );
        let rows = b.query(sql).fetch_all(&self.pool).await?;
        let items = rows
            .iter()
            .map(|row| Ok(row.try_get(0)?))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Found { items, total })
    }

    async fn count_of(
        &self,
        tenant: &TenantId,
        filter: impl Fn(&mut Bindings) -> String,
    ) -> Result<i64, StoreError> {
        let mut b = Bindings::new(tenant);
        let sql = format!("SELECT COUNT(*) {}", filter(&mut b));
        Ok(b.query(sql).fetch_one(&self.pool).await?.try_get(0)?)
    }
}

/// Relationship rows (member, score, total, last) summed per member, strongest first:
/// by score, then total, then member address in byte order.
fn rank_strengths(rows: Vec<(String, f64, i64, i64)>) -> Vec<MemberStrength> {
    let mut by_member: BTreeMap<String, MemberStrength> = BTreeMap::new();
    for (member, score, total, last_ms) in rows {
        let entry = by_member
            .entry(member.clone())
            .or_insert_with(|| MemberStrength {
                member,
                score: 0.0,
                total: 0,
                last_ms,
            });
        entry.score += score;
        entry.total += total;
        entry.last_ms = entry.last_ms.max(last_ms);
    }
    let mut ranked: Vec<MemberStrength> = by_member.into_values().collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(b.total.cmp(&a.total)));
    ranked
}

/// True when `needle` is in the address, or when it is several words and each is in
/// the address's local part: the store keeps no display names, and local parts carry
/// them ("Jane Doe" finds `jane.doe@…`).
pub fn address_matches(address: &str, needle: &str) -> bool {
    if address.contains(needle) {
        return true;
    }
    let local = address.split('@').next().unwrap_or_default();
    let words: Vec<&str> = needle.split_whitespace().collect();
    words.len() > 1 && words.iter().all(|w| local.contains(w))
}

/// [`address_matches`] in SQL, for the address expression `column`.
fn address_match(backend: Backend, b: &mut Bindings, column: &str, needle: &str) -> String {
    let whole = contains(backend, column, &b.text(needle));
    let words: Vec<&str> = needle.split_whitespace().collect();
    if words.len() < 2 {
        return whole;
    }
    let local = match backend {
        Backend::Sqlite => format!(
            "(CASE WHEN instr({column}, '@') > 0
                   THEN substr({column}, 1, instr({column}, '@') - 1) ELSE {column} END)"
        ),
        Backend::Postgres => format!("split_part({column}, '@', 1)"),
    };
    let each: Vec<String> = words
        .iter()
        .map(|word| contains(backend, &local, &b.text(*word)))
        .collect();
    format!("({whole} OR ({}))", each.join(" AND "))
}
