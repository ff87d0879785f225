//! Paged reads for the API: activities newest first, contacts, companies and
//! relationships, each filtered in SQL with keyset pagination, so a page costs the same
//! however deep it is and no read holds a whole tenant in memory.
//!
//! Contacts, companies and relationships sort in byte order (what Rust's `str` order is)
//! on both backends: SQLite's default `BINARY` collation is byte order, and PostgreSQL
//! is told `COLLATE "C"`, whatever the database's own collation, so a cursor means the
//! same on either.

use crate::error::StoreError;
use crate::read::{
    ActivityView, CompanyView, ContactView, PARTICIPANT_MEMBER, ParticipantView, ReadScope,
    RelationshipView, and, push_captured_by,
};
use crate::store::{Backend, MemberId, Store, TenantId};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe, Row};
use std::collections::HashMap;

/// Which activities to list; every set field must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityFilter {
    /// A participant, or the owner of a mailbox holding a copy.
    pub member: Option<MemberId>,
    /// A participant's address.
    pub contact: Option<String>,
    /// The domain of a participant's company.
    pub company: Option<String>,
    /// Activities at or after this time (Unix milliseconds).
    pub since_ms: Option<i64>,
    /// Activities before this time (Unix milliseconds).
    pub until_ms: Option<i64>,
}

/// Where a page ended: the next page starts after this activity. Activities without a
/// time sort as time 0 (last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityCursor {
    pub time_ms: i64,
    pub id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityPage {
    /// Newest first, then by id descending.
    pub activities: Vec<ActivityView>,
    /// Set when more activities may follow.
    pub next: Option<ActivityCursor>,
}

/// Which contacts to list; both compare with the lowercased value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactFilter {
    /// Part of the address or of its company's domain.
    pub q: Option<String>,
    /// The company's domain, exactly.
    pub company: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactPage {
    /// By address, in byte order.
    pub contacts: Vec<ContactView>,
    /// The last address of the page, when more contacts may follow.
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanyPage {
    /// By domain, in byte order.
    pub companies: Vec<CompanyView>,
    /// The last domain of the page, when more companies may follow.
    pub next: Option<String>,
}

/// Which relationships to list; both compare with the lowercased address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelationshipFilter {
    /// The member's primary address.
    pub member: Option<String>,
    /// The contact's address.
    pub contact: Option<String>,
}

/// Where a relationship page ended: (member, contact) in byte order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationshipCursor {
    pub member: String,
    pub contact: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RelationshipPage {
    /// By member, then contact address, in byte order.
    pub relationships: Vec<RelationshipView>,
    /// Set when more relationships may follow.
    pub next: Option<RelationshipCursor>,
}

/// A bound value of a dynamic query.
enum Param {
    Int(i64),
    Text(String),
}

/// A statement's values, numbered as they are added: `$1` is always the tenant. SQL is
/// built from fixed text and these placeholders only; every value is bound.
pub(crate) struct Bindings {
    params: Vec<Param>,
}

impl Bindings {
    pub(crate) fn new(tenant: &TenantId) -> Self {
        Self {
            params: vec![Param::Text(tenant.as_str().to_owned())],
        }
    }

    fn push(&mut self, param: Param) -> String {
        self.params.push(param);
        format!("${}", self.params.len())
    }

    /// The placeholder of a new integer value.
    pub(crate) fn int(&mut self, value: i64) -> String {
        self.push(Param::Int(value))
    }

    /// The placeholder of a new text value.
    pub(crate) fn text(&mut self, value: impl Into<String>) -> String {
        self.push(Param::Text(value.into()))
    }

    /// The placeholder of a row count.
    pub(crate) fn count(&mut self, value: usize) -> String {
        self.int(i64::try_from(value).unwrap_or(i64::MAX))
    }

    /// `sql` with every value bound, in order.
    pub(crate) fn query(self, sql: String) -> Query<'static, Any, AnyArguments> {
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for param in self.params {
            query = match param {
                Param::Int(value) => query.bind(value),
                Param::Text(value) => query.bind(value),
            };
        }
        query
    }
}

/// What makes a comparison or an ordering of text byte order on `backend`.
pub(crate) fn byte_order(backend: Backend) -> &'static str {
    match backend {
        // BINARY, SQLite's default, is memcmp.
        Backend::Sqlite => "",
        Backend::Postgres => " COLLATE \"C\"",
    }
}

/// SQL that is true when `haystack` holds `needle` (both SQL expressions), as Rust's
/// `str::contains` would say: no `LIKE`, whose wildcards and case folding differ.
pub(crate) fn contains(backend: Backend, haystack: &str, needle: &str) -> String {
    match backend {
        Backend::Sqlite => format!("instr({haystack}, {needle}) > 0"),
        Backend::Postgres => format!("strpos({haystack}, {needle}) > 0"),
    }
}

/// The first `limit` rows and whether more followed (the query fetched `limit + 1`).
pub(crate) fn split_page<T>(mut items: Vec<T>, limit: usize) -> (Vec<T>, bool) {
    let more = items.len() > limit;
    items.truncate(limit);
    (items, more)
}

impl Store {
    /// One page of the tenant's activities matching `filter`, after `after`.
    pub async fn activities_page(
        &self,
        tenant: &TenantId,
        filter: &ActivityFilter,
        after: Option<ActivityCursor>,
        limit: usize,
    ) -> Result<ActivityPage, StoreError> {
        self.activities_page_scoped(tenant, filter, after, limit, ReadScope::Tenant)
            .await
    }

    /// [`Store::activities_page`] among the activities `scope` lists, withheld as it
    /// says.
    pub async fn activities_page_scoped(
        &self,
        tenant: &TenantId,
        filter: &ActivityFilter,
        after: Option<ActivityCursor>,
        limit: usize,
        scope: ReadScope,
    ) -> Result<ActivityPage, StoreError> {
        let limit = limit.max(1);
        let mut bindings = Bindings::new(tenant);
        let sql = page_query(&mut bindings, filter, after, limit + 1, scope);
        let rows = bindings.query(sql).fetch_all(&self.pool).await?;
        let (rows, more) = split_page(rows, limit);
        let mut activities = rows
            .iter()
            .map(activity_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next = more
            .then(|| activities.last())
            .flatten()
            .map(|last| ActivityCursor {
                time_ms: last.time_ms.unwrap_or(0),
                id: last.id,
            });
        self.fill_details(tenant, &mut activities).await?;
        self.withhold(tenant, &mut activities, scope).await?;
        Ok(ActivityPage { activities, next })
    }

    /// One page of the tenant's contacts matching `filter`, by address after `after`.
    pub async fn contacts_page(
        &self,
        tenant: &TenantId,
        filter: &ContactFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ContactPage, StoreError> {
        self.contacts_page_scoped(tenant, filter, after, limit, ReadScope::Tenant)
            .await
    }

    /// [`Store::contacts_page`] among the contacts `scope` lists.
    pub async fn contacts_page_scoped(
        &self,
        tenant: &TenantId,
        filter: &ContactFilter,
        after: Option<&str>,
        limit: usize,
        scope: ReadScope,
    ) -> Result<ContactPage, StoreError> {
        let limit = limit.max(1);
        let order = byte_order(self.backend());
        let mut b = Bindings::new(tenant);
        let mut conditions = vec!["c.tenant_id = $1".to_owned()];
        conditions.extend(scope.contacts(&mut b, "c.address"));
        if let Some(company) = &filter.company {
            conditions.push(format!("co.domain = {}", b.text(company.to_lowercase())));
        }
        if let Some(q) = &filter.q {
            let q = b.text(q.to_lowercase());
            conditions.push(format!(
                "({} OR {})",
                contains(self.backend(), "c.address", &q),
                contains(self.backend(), "co.domain", &q)
            ));
        }
        if let Some(after) = after {
            conditions.push(format!("c.address{order} > {}", b.text(after)));
        }
        let sql = format!(
            "SELECT {} FROM contacts c
             LEFT JOIN companies co ON co.tenant_id = c.tenant_id AND co.id = c.company_id
             WHERE {} ORDER BY c.address{order} LIMIT {}",
            crate::read::contact_columns(),
            conditions.join(" AND "),
            b.count(limit + 1)
        );
        let rows = b.query(sql).fetch_all(&self.pool).await?;
        let (rows, more) = split_page(rows, limit);
        let contacts = rows
            .iter()
            .map(ContactView::from_row)
            .collect::<Result<Vec<_>, StoreError>>()?;
        let next = more
            .then(|| contacts.last().map(|c| c.address.clone()))
            .flatten();
        Ok(ContactPage { contacts, next })
    }

    /// One page of the tenant's companies whose domain holds `q` (lowercased), by domain
    /// after `after`, each with its number of contacts.
    pub async fn companies_page(
        &self,
        tenant: &TenantId,
        q: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<CompanyPage, StoreError> {
        self.companies_page_scoped(tenant, q, after, limit, ReadScope::Tenant)
            .await
    }

    /// [`Store::companies_page`] among the companies `scope` lists (each still with its
    /// number of contacts in all).
    pub async fn companies_page_scoped(
        &self,
        tenant: &TenantId,
        q: Option<&str>,
        after: Option<&str>,
        limit: usize,
        scope: ReadScope,
    ) -> Result<CompanyPage, StoreError> {
        let limit = limit.max(1);
        let order = byte_order(self.backend());
        let mut b = Bindings::new(tenant);
        let mut conditions = vec!["co.tenant_id = $1".to_owned()];
        conditions.extend(scope.companies(&mut b, "co.id"));
        if let Some(q) = q {
            let q = b.text(q.to_lowercase());
            conditions.push(contains(self.backend(), "co.domain", &q));
        }
        if let Some(after) = after {
            conditions.push(format!("co.domain{order} > {}", b.text(after)));
        }
        let sql = format!(
            "SELECT co.domain,
                    (SELECT COUNT(*) FROM contacts c
                     WHERE c.tenant_id = co.tenant_id AND c.company_id = co.id)
             FROM companies co WHERE {} ORDER BY co.domain{order} LIMIT {}",
            conditions.join(" AND "),
            b.count(limit + 1)
        );
        let rows = b.query(sql).fetch_all(&self.pool).await?;
        let (rows, more) = split_page(rows, limit);
        let companies = rows
            .iter()
            .map(CompanyView::from_row)
            .collect::<Result<Vec<_>, StoreError>>()?;
        let next = more
            .then(|| companies.last().map(|c| c.domain.clone()))
            .flatten();
        Ok(CompanyPage { companies, next })
    }

    /// One page of the tenant's relationships matching `filter`, by member then contact
    /// after `after`.
    pub async fn relationships_page(
        &self,
        tenant: &TenantId,
        filter: &RelationshipFilter,
        after: Option<&RelationshipCursor>,
        limit: usize,
    ) -> Result<RelationshipPage, StoreError> {
        self.relationships_page_scoped(tenant, filter, after, limit, ReadScope::Tenant)
            .await
    }

    /// [`Store::relationships_page`] among the relationships `scope` lists.
    pub async fn relationships_page_scoped(
        &self,
        tenant: &TenantId,
        filter: &RelationshipFilter,
        after: Option<&RelationshipCursor>,
        limit: usize,
        scope: ReadScope,
    ) -> Result<RelationshipPage, StoreError> {
        let limit = limit.max(1);
        let order = byte_order(self.backend());
        let mut b = Bindings::new(tenant);
        let mut conditions = vec![format!(
            "r.tenant_id = $1 AND m.tenant_id = $1 AND c.tenant_id = $1{}",
            and(scope.relationships(&mut b, "r.member_id"))
        )];
        // `CROSS JOIN` fixes SQLite's join order (PostgreSQL plans it as an inner join):
        // from the one contact when there is one, else member by member in address
        // order, each member's relationships sorted on their own, so a page stops early.
        let from = if filter.contact.is_some() {
            "contacts c CROSS JOIN relationships r CROSS JOIN members m"
        } else {
            "members m CROSS JOIN relationships r CROSS JOIN contacts c"
        };
        if let Some(member) = &filter.member {
            conditions.push(format!("m.email = {}", b.text(member.to_lowercase())));
        }
        if let Some(contact) = &filter.contact {
            conditions.push(format!("c.address = {}", b.text(contact.to_lowercase())));
        }
        if let Some(after) = after {
            let member = b.text(after.member.as_str());
            let contact = b.text(after.contact.as_str());
            conditions.push(format!(
                "(m.email{order} > {member}
                  OR (m.email = {member} AND c.address{order} > {contact}))"
            ));
        }
        let sql = format!(
            "SELECT m.email, c.address, r.first_ms, r.last_ms, r.sent, r.received, r.total,
                    r.score_at_last
             FROM {from}
             WHERE r.tenant_id = m.tenant_id AND r.member_id = m.id
               AND c.tenant_id = r.tenant_id AND c.id = r.contact_id
               AND {} ORDER BY m.email{order}, c.address{order} LIMIT {}",
            conditions.join(" AND "),
            b.count(limit + 1)
        );
        let rows = b.query(sql).fetch_all(&self.pool).await?;
        let (rows, more) = split_page(rows, limit);
        let relationships = rows
            .iter()
            .map(crate::read::relationship_view)
            .collect::<Result<Vec<_>, _>>()?;
        let next = more
            .then(|| relationships.last())
            .flatten()
            .map(|last| RelationshipCursor {
                member: last.member.clone(),
                contact: last.contact.clone(),
            });
        Ok(RelationshipPage {
            relationships,
            next,
        })
    }

    /// Participants and sightings of a page's activities, two queries per page.
    pub(crate) async fn fill_details(
        &self,
        tenant: &TenantId,
        activities: &mut [ActivityView],
    ) -> Result<(), StoreError> {
        if activities.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = (0..activities.len())
            .map(|i| format!("${}", i + 2))
            .collect();
        let list = list.join(", ");
        let index: HashMap<i64, usize> = activities
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id, i))
            .collect();
        let participants_sql = format!(
            "SELECT p.activity_id, p.address, p.role, p.kind, {PARTICIPANT_MEMBER}, {}
             FROM activity_participants p
             WHERE p.tenant_id = $1 AND p.activity_id IN ({list}) ORDER BY p.address, p.role",
            crate::read::name_of("p.tenant_id", "p.address")
        );
        let mut query = sqlx::query(AssertSqlSafe(participants_sql)).bind(tenant.as_str());
        for activity in activities.iter() {
            query = query.bind(activity.id);
        }
        for row in query.fetch_all(&self.pool).await? {
            let id: i64 = row.try_get(0)?;
            if let Some(&i) = index.get(&id) {
                activities[i].participants.push(ParticipantView {
                    address: row.try_get(1)?,
                    role: row.try_get(2)?,
                    kind: row.try_get(3)?,
                    member: row.try_get(4)?,
                    display_name: row.try_get(5)?,
                });
            }
        }
        let sightings_sql = format!(
            "SELECT s.activity_id, l.mailbox, s.provider_message_id, s.labels, l.provider
             FROM activity_sightings s
             JOIN mailbox_links l ON l.tenant_id = s.tenant_id AND l.id = s.link_id
             WHERE s.tenant_id = $1 AND s.activity_id IN ({list})
             ORDER BY l.mailbox, s.provider_message_id"
        );
        let mut query = sqlx::query(AssertSqlSafe(sightings_sql)).bind(tenant.as_str());
        for activity in activities.iter() {
            query = query.bind(activity.id);
        }
        for row in query.fetch_all(&self.pool).await? {
            let id: i64 = row.try_get(0)?;
            let labels: String = row.try_get(3)?;
            if let Some(&i) = index.get(&id) {
                let activity = &mut activities[i];
                activity.sightings.push((
                    row.try_get(1)?,
                    row.try_get(2)?,
                    serde_json::from_str(&labels)?,
                ));
                push_captured_by(&mut activity.captured_by, row.try_get(1)?, row.try_get(4)?);
            }
        }
        Ok(())
    }
}

/// An activity row of `SELECT a.id, a.dedupe_key, a.thread_key, a.time_ms,
/// a.direction, a.subject`, without participants and sightings yet.
pub(crate) fn activity_row(row: &AnyRow) -> Result<ActivityView, StoreError> {
    Ok(ActivityView {
        id: row.try_get(0)?,
        dedupe_key: row.try_get(1)?,
        thread_key: row.try_get(2)?,
        time_ms: row.try_get(3)?,
        direction: row.try_get(4)?,
        subject: row.try_get(5)?,
        participants: Vec::new(),
        sightings: Vec::new(),
        captured_by: Vec::new(),
        withheld: false,
    })
}

/// The page's statement; its values go to `b`.
fn page_query(
    b: &mut Bindings,
    filter: &ActivityFilter,
    after: Option<ActivityCursor>,
    fetch: usize,
    scope: ReadScope,
) -> String {
    let mut conditions = vec!["a.tenant_id = $1".to_owned()];
    conditions.extend(scope.activities(b, "a.id"));
    if let Some(member) = filter.member {
        let p = b.int(member.0);
        conditions.push(format!(
            "(EXISTS (SELECT 1 FROM activity_participants p
                      WHERE p.tenant_id = a.tenant_id AND p.activity_id = a.id AND p.member_id = {p})
              OR EXISTS (SELECT 1 FROM activity_sightings s
                      JOIN mailbox_links l ON l.tenant_id = s.tenant_id AND l.id = s.link_id
                      WHERE s.tenant_id = a.tenant_id AND s.activity_id = a.id AND l.member_id = {p}))"
        ));
    }
    if let Some(contact) = &filter.contact {
        let p = b.text(contact.trim().to_lowercase());
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM activity_participants p
                     WHERE p.tenant_id = a.tenant_id AND p.activity_id = a.id AND p.address = {p})"
        ));
    }
    if let Some(company) = &filter.company {
        let p = b.text(company.trim().to_lowercase());
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM activity_participants p
                     JOIN contacts c ON c.tenant_id = p.tenant_id AND c.address = p.address
                     JOIN companies co ON co.tenant_id = c.tenant_id AND co.id = c.company_id
                     WHERE p.tenant_id = a.tenant_id AND p.activity_id = a.id AND co.domain = {p})"
        ));
    }
    if let Some(since) = filter.since_ms {
        let p = b.int(since);
        conditions.push(format!("a.time_ms >= {p}"));
    }
    if let Some(until) = filter.until_ms {
        let p = b.int(until);
        conditions.push(format!("a.time_ms < {p}"));
    }
    if let Some(cursor) = after {
        let t = b.int(cursor.time_ms);
        let id = b.int(cursor.id);
        conditions.push(format!(
            "(COALESCE(a.time_ms, 0) < {t} OR (COALESCE(a.time_ms, 0) = {t} AND a.id < {id}))"
        ));
    }
    let limit = b.count(fetch);
    format!(
        "SELECT a.id, a.dedupe_key, a.thread_key, a.time_ms, a.direction, a.subject
         FROM activities a WHERE {}
         ORDER BY COALESCE(a.time_ms, 0) DESC, a.id DESC LIMIT {limit}",
        conditions.join(" AND ")
    )
}
