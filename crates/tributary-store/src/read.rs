//! The read side: what the console, the API and the tests look at. Every query is
//! scoped to one tenant.

use crate::error::StoreError;
use crate::store::{Store, TenantId};
use sqlx::Row;
use sqlx::any::AnyRow;

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
        rows.iter()
            .map(|row| {
                Ok(ContactView {
                    address: row.try_get(0)?,
                    company: row.try_get(1)?,
                })
            })
            .collect()
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
        rows.iter()
            .map(|row| {
                Ok(CompanyView {
                    domain: row.try_get(0)?,
                    contacts: row.try_get(1)?,
                })
            })
            .collect()
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
        rows.iter()
            .map(|row| {
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
            })
            .collect()
    }
}

fn sighting_view(row: &AnyRow) -> Result<(String, String, Vec<String>), StoreError> {
    let labels: String = row.try_get(2)?;
    Ok((
        row.try_get(0)?,
        row.try_get(1)?,
        serde_json::from_str(&labels)?,
    ))
}
