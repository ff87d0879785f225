//! Paged reads for the API: activities newest first, filtered in SQL, with keyset
//! pagination so a page costs the same however deep it is.

use crate::error::StoreError;
use crate::read::{ActivityView, ParticipantView};
use crate::store::{MemberId, Store, TenantId};
use sqlx::{AssertSqlSafe, Row};
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

/// A bound value of the dynamic query.
enum Param {
    Int(i64),
    Text(String),
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
        let limit = limit.max(1);
        let (sql, params) = page_query(filter, after, limit + 1);
        // The statement holds numbered placeholders only; every value is bound.
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(tenant.as_str());
        for param in params {
            query = match param {
                Param::Int(value) => query.bind(value),
                Param::Text(value) => query.bind(value),
            };
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut activities = Vec::with_capacity(rows.len().min(limit));
        for row in rows.iter().take(limit) {
            activities.push(ActivityView {
                id: row.try_get(0)?,
                dedupe_key: row.try_get(1)?,
                thread_key: row.try_get(2)?,
                time_ms: row.try_get(3)?,
                direction: row.try_get(4)?,
                subject: row.try_get(5)?,
                participants: Vec::new(),
                sightings: Vec::new(),
            });
        }
        let next = (rows.len() > limit)
            .then(|| activities.last())
            .flatten()
            .map(|last| ActivityCursor {
                time_ms: last.time_ms.unwrap_or(0),
                id: last.id,
            });
        self.fill_details(tenant, &mut activities).await?;
        Ok(ActivityPage { activities, next })
    }

    /// Participants and sightings of a page's activities, two queries per page.
    async fn fill_details(
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
            "SELECT activity_id, address, role, kind FROM activity_participants
             WHERE tenant_id = $1 AND activity_id IN ({list}) ORDER BY address, role"
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
                });
            }
        }
        let sightings_sql = format!(
            "SELECT s.activity_id, l.mailbox, s.provider_message_id, s.labels
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
                activities[i].sightings.push((
                    row.try_get(1)?,
                    row.try_get(2)?,
                    serde_json::from_str(&labels)?,
                ));
            }
        }
        Ok(())
    }
}

/// The page's statement and its parameters after `$1` (the tenant).
fn page_query(
    filter: &ActivityFilter,
    after: Option<ActivityCursor>,
    fetch: usize,
) -> (String, Vec<Param>) {
    let mut conditions = vec!["a.tenant_id = $1".to_owned()];
    let mut params = Vec::new();
    let next = |param: Param, params: &mut Vec<Param>| {
        params.push(param);
        format!("${}", params.len() + 1)
    };
    if let Some(member) = filter.member {
        let p = next(Param::Int(member.0), &mut params);
        conditions.push(format!(
            "(EXISTS (SELECT 1 FROM activity_participants p
                      WHERE p.tenant_id = a.tenant_id AND p.activity_id = a.id AND p.member_id = {p})
              OR EXISTS (SELECT 1 FROM activity_sightings s
                      JOIN mailbox_links l ON l.tenant_id = s.tenant_id AND l.id = s.link_id
                      WHERE s.tenant_id = a.tenant_id AND s.activity_id = a.id AND l.member_id = {p}))"
        ));
    }
    if let Some(contact) = &filter.contact {
        let p = next(Param::Text(contact.trim().to_lowercase()), &mut params);
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM activity_participants p
                     WHERE p.tenant_id = a.tenant_id AND p.activity_id = a.id AND p.address = {p})"
        ));
    }
    if let Some(company) = &filter.company {
        let p = next(Param::Text(company.trim().to_lowercase()), &mut params);
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM activity_participants p
                     JOIN contacts c ON c.tenant_id = p.tenant_id AND c.address = p.address
                     JOIN companies co ON co.tenant_id = c.tenant_id AND co.id = c.company_id
                     WHERE p.tenant_id = a.tenant_id AND p.activity_id = a.id AND co.domain = {p})"
        ));
    }
    if let Some(since) = filter.since_ms {
        let p = next(Param::Int(since), &mut params);
        conditions.push(format!("a.time_ms >= {p}"));
    }
    if let Some(until) = filter.until_ms {
        let p = next(Param::Int(until), &mut params);
        conditions.push(format!("a.time_ms < {p}"));
    }
    if let Some(cursor) = after {
        let t = next(Param::Int(cursor.time_ms), &mut params);
        let id = next(Param::Int(cursor.id), &mut params);
        conditions.push(format!(
            "(COALESCE(a.time_ms, 0) < {t} OR (COALESCE(a.time_ms, 0) = {t} AND a.id < {id}))"
        ));
    }
    let limit = next(
        Param::Int(i64::try_from(fetch).unwrap_or(i64::MAX)),
        &mut params,
    );
    let sql = format!(
        "SELECT a.id, a.dedupe_key, a.thread_key, a.time_ms, a.direction, a.subject
         FROM activities a WHERE {}
         ORDER BY COALESCE(a.time_ms, 0) DESC, a.id DESC LIMIT {limit}",
        conditions.join(" AND ")
    );
    (sql, params)
}
