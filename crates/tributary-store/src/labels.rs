//! Labels beyond the tenant policy's, per member, and the per-(link, label)
//! reconciliation of what the provider listed against what the store accounts for.
//!
//! Label names are kept as given (Gmail ids such as `Label_12` or `IMPORTANT`) and
//! compared case-insensitively, through their lowercase `label_key`.

use crate::error::StoreError;
use crate::links::{AuditEvent, insert_audit};
use crate::store::{LinkId, MemberId, Store, TenantId, WriteTransaction, now_ms};
use sqlx::{AssertSqlSafe, Row};
use std::collections::HashSet;

/// Ids per `IN (…)` list: far below SQLite's and PostgreSQL's bind limits.
const IDS_PER_QUERY: usize = 500;

/// One label of one link: what the provider listed for it against what is accounted
/// for, since the label's last backfill. A backfill sets the row; incremental runs add
/// the messages history named. Every listed message falls in exactly one of
/// `captured`, `excluded`, `not_seen`, `gone`, or none of them: [`Self::unaccounted`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelReconciliation {
    pub label: String,
    /// The label's message count as the provider reports it (all time, not only the
    /// backfill window); `None` when it was not asked or the label does not exist.
    pub provider_total: Option<u64>,
    /// Messages the provider listed with the label in the backfill window, plus those
    /// history named with it since.
    pub listed: u64,
    /// Listed messages the extraction captured and the store holds as sightings of the
    /// link.
    pub captured: u64,
    /// Listed messages the capture policy excluded (automated, internal, blocklisted);
    /// an internal-looking copy attached to an activity another mailbox captured too.
    pub excluded: u64,
    /// Listed messages outside the window or no longer carrying a synced label.
    pub not_seen: u64,
    /// Listed messages deleted before their metadata could be read.
    pub gone: u64,
    /// When the counts were last written, Unix milliseconds.
    pub at_ms: i64,
}

impl LabelReconciliation {
    /// Listed messages none of the counts explains: a silent loss.
    pub fn unaccounted(&self) -> u64 {
        self.listed
            .saturating_sub(self.captured + self.excluded + self.not_seen + self.gone)
    }
}

/// The comparison key of a label name.
pub fn label_key(label: &str) -> String {
    label.to_lowercase()
}

impl Store {
    /// Replaces the labels `member` syncs on top of the tenant policy's (kept as given,
    /// trimmed, the first of case-insensitive duplicates winning), and audits the change
    /// in the same transaction.
    pub async fn set_member_labels(
        &self,
        tenant: &TenantId,
        member: MemberId,
        labels: &[String],
        actor: &str,
    ) -> Result<(), StoreError> {
        let wanted = distinct_labels(labels)?;
        let mut tx = self.begin_write().await?;
        let email = member_email(&mut tx, tenant, member).await?;
        let before = member_labels_in(&mut tx, tenant, member).await?;
        if before == wanted {
            return Ok(());
        }
        sqlx::query("DELETE FROM member_labels WHERE tenant_id = $1 AND member_id = $2")
            .bind(tenant.as_str())
            .bind(member.0)
            .execute(&mut **tx)
            .await?;
        let at_ms = now_ms();
        for label in &wanted {
            sqlx::query(
                "INSERT INTO member_labels (tenant_id, member_id, label_key, label, added_ms)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(tenant.as_str())
            .bind(member.0)
            .bind(label_key(label))
            .bind(label)
            .bind(at_ms)
            .execute(&mut **tx)
            .await?;
        }
        let event = AuditEvent {
            at_ms,
            actor: actor.to_owned(),
            action: "member.labels".to_owned(),
            subject: Some(email),
            detail: serde_json::json!({"member": member.0, "from": before, "to": wanted}),
        };
        insert_audit(&mut tx, tenant, &event).await?;
        tx.commit().await
    }

    /// The labels `member` syncs on top of the tenant policy's, by lowercase name.
    pub async fn member_labels(
        &self,
        tenant: &TenantId,
        member: MemberId,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT label FROM member_labels WHERE tenant_id = $1 AND member_id = $2
",
        )
        .bind(tenant.as_str())
        .bind(member.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| row.try_get::<String, _>(0))
            .collect::<Result<Vec<_>, _>>()
            .map(sorted_labels)
            .map_err(StoreError::from)
    }

    /// The member whose mailbox `link` is.
    pub async fn link_member(
        &self,
        tenant: &TenantId,
        link: LinkId,
    ) -> Result<MemberId, StoreError> {
        sqlx::query("SELECT member_id FROM mailbox_links WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(link.0)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| row.try_get(0).map(MemberId))
            .transpose()?
            .ok_or_else(|| StoreError::UnknownLink {
                tenant: tenant.0.clone(),
                link: link.0,
            })
    }

    /// The extra labels of the member owning `link` (see [`Self::member_labels`]).
    pub async fn link_labels(
        &self,
        tenant: &TenantId,
        link: LinkId,
    ) -> Result<Vec<String>, StoreError> {
        let member = self.link_member(tenant, link).await?;
        self.member_labels(tenant, member).await
    }

    /// Which of the provider message `ids` the store holds for `link`: as a sighting of
    /// an activity, or held until another mailbox captures its activity.
    pub async fn sighted_message_ids(
        &self,
        tenant: &TenantId,
        link: LinkId,
        ids: &[String],
    ) -> Result<HashSet<String>, StoreError> {
        let mut sighted = HashSet::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_QUERY) {
            // Only numbered placeholders are formatted into the text; ids are bound.
            let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
            let list = list.join(", ");
            let sql = format!(
                "SELECT provider_message_id FROM activity_sightings
                 WHERE tenant_id = $1 AND link_id = $2 AND provider_message_id IN ({list})
                 UNION
                 SELECT provider_message_id FROM held_sightings
                 WHERE tenant_id = $1 AND link_id = $2 AND provider_message_id IN ({list})"
            );
            let mut query = sqlx::query(AssertSqlSafe(sql))
                .bind(tenant.as_str())
                .bind(link.0);
            for id in chunk {
                query = query.bind(id.as_str());
            }
            for row in query.fetch_all(&self.pool).await? {
                sighted.insert(row.try_get(0)?);
            }
        }
        Ok(sighted)
    }

    /// Writes the reconciliation of each label in `rows` for `link`, replacing what was
    /// there (a backfill's counts).
    pub async fn set_label_reconciliation(
        &self,
        tenant: &TenantId,
        link: LinkId,
        rows: &[LabelReconciliation],
    ) -> Result<(), StoreError> {
        self.write_reconciliation(
            tenant,
            link,
            rows,
            "
            provider_total = excluded.provider_total, listed = excluded.listed,
            captured = excluded.captured, policy_excluded = excluded.policy_excluded,
            not_seen = excluded.not_seen, gone = excluded.gone, at_ms = excluded.at_ms",
        )
        .await
    }

    /// Adds the counts of `rows` to the reconciliation of their labels for `link` (an
    /// incremental run's), creating rows that do not exist.
    pub async fn add_label_reconciliation(
        &self,
        tenant: &TenantId,
        link: LinkId,
        rows: &[LabelReconciliation],
    ) -> Result<(), StoreError> {
        self.write_reconciliation(tenant, link, rows, "
            provider_total = COALESCE(excluded.provider_total, label_reconciliations.provider_total),
            listed = label_reconciliations.listed + excluded.listed,
            captured = label_reconciliations.captured + excluded.captured,
            policy_excluded = label_reconciliations.policy_excluded + excluded.policy_excluded,
            not_seen = label_reconciliations.not_seen + excluded.not_seen,
            gone = label_reconciliations.gone + excluded.gone,
            at_ms = excluded.at_ms")
            .await
    }

    async fn write_reconciliation(
        &self,
        tenant: &TenantId,
        link: LinkId,
        rows: &[LabelReconciliation],
        on_conflict: &'static str,
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "INSERT INTO label_reconciliations (tenant_id, link_id, label_key, label,
                 provider_total, listed, captured, policy_excluded, not_seen, gone, at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (tenant_id, link_id, label_key) DO UPDATE SET label = excluded.label, {on_conflict}"
        );
        let mut tx = self.begin_write().await?;
        crate::tx::ensure_link(&mut tx, tenant, link).await?;
        for row in rows {
            // The statement is built from constants only.
            sqlx::query(AssertSqlSafe(sql.clone()))
                .bind(tenant.as_str())
                .bind(link.0)
                .bind(label_key(&row.label))
                .bind(row.label.as_str())
                .bind(row.provider_total.map(to_i64))
                .bind(to_i64(row.listed))
                .bind(to_i64(row.captured))
                .bind(to_i64(row.excluded))
                .bind(to_i64(row.not_seen))
                .bind(to_i64(row.gone))
                .bind(row.at_ms)
                .execute(&mut **tx)
                .await?;
        }
        tx.commit().await
    }

    /// Deletes the reconciliation of every label of `link` not in `keep` (labels no
    /// longer synced).
    pub async fn retain_label_reconciliation(
        &self,
        tenant: &TenantId,
        link: LinkId,
        keep: &[String],
    ) -> Result<(), StoreError> {
        let keep: HashSet<String> = keep.iter().map(|l| label_key(l)).collect();
        let stale: Vec<String> = self
            .label_reconciliation(tenant, link)
            .await?
            .into_iter()
            .map(|row| label_key(&row.label))
            .filter(|key| !keep.contains(key))
            .collect();
        if stale.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for key in stale {
            sqlx::query(
                "DELETE FROM label_reconciliations
                 WHERE tenant_id = $1 AND link_id = $2 AND label_key = $3",
            )
            .bind(tenant.as_str())
            .bind(link.0)
            .bind(key)
            .execute(&mut **tx)
            .await?;
        }
        tx.commit().await
    }

    /// The reconciliation of every label of `link`, by lowercase label.
    pub async fn label_reconciliation(
        &self,
        tenant: &TenantId,
        link: LinkId,
    ) -> Result<Vec<LabelReconciliation>, StoreError> {
        let rows = sqlx::query(
            "SELECT label, provider_total, listed, captured, policy_excluded, not_seen, gone, at_ms
             FROM label_reconciliations WHERE tenant_id = $1 AND link_id = $2",
        )
        .bind(tenant.as_str())
        .bind(link.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(LabelReconciliation {
                    label: row.try_get(0)?,
                    provider_total: row.try_get::<Option<i64>, _>(1)?.map(to_u64),
                    listed: to_u64(row.try_get(2)?),
                    captured: to_u64(row.try_get(3)?),
                    excluded: to_u64(row.try_get(4)?),
                    not_seen: to_u64(row.try_get(5)?),
                    gone: to_u64(row.try_get(6)?),
                    at_ms: row.try_get(7)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()
            .map(|mut rows| {
                rows.sort_by_key(|row| label_key(&row.label));
                rows
            })
    }
}

/// `labels` trimmed, without case-insensitive repeats, in the order given; an empty
/// name is refused.
fn distinct_labels(labels: &[String]) -> Result<Vec<String>, StoreError> {
    let mut seen = HashSet::new();
    let mut distinct = Vec::new();
    for label in labels {
        let label = label.trim();
        if label.is_empty() {
            return Err(StoreError::InvalidLabel {
                label: label.to_owned(),
            });
        }
        if seen.insert(label_key(label)) {
            distinct.push(label.to_owned());
        }
    }
    Ok(sorted_labels(distinct))
}

/// Labels in one order on both backends (SQL collations differ): by lowercase name.
fn sorted_labels(mut labels: Vec<String>) -> Vec<String> {
    labels.sort_by_key(|l| label_key(l));
    labels
}

async fn member_email(
    tx: &mut WriteTransaction,
    tenant: &TenantId,
    member: MemberId,
) -> Result<String, StoreError> {
    sqlx::query("SELECT email FROM members WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_str())
        .bind(member.0)
        .fetch_optional(&mut ***tx)
        .await?
        .map(|row| row.try_get(0))
        .transpose()?
        .ok_or_else(|| StoreError::UnknownMember {
            tenant: tenant.0.clone(),
            member: member.0,
        })
}

async fn member_labels_in(
    tx: &mut WriteTransaction,
    tenant: &TenantId,
    member: MemberId,
) -> Result<Vec<String>, StoreError> {
    let rows =
        sqlx::query("SELECT label FROM member_labels WHERE tenant_id = $1 AND member_id = $2")
            .bind(tenant.as_str())
            .bind(member.0)
            .fetch_all(&mut ***tx)
            .await?;
    rows.iter()
        .map(|row| row.try_get::<String, _>(0))
        .collect::<Result<Vec<_>, _>>()
        .map(sorted_labels)
        .map_err(StoreError::from)
}

fn to_i64(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

fn to_u64(count: i64) -> u64 {
    u64::try_from(count).unwrap_or(0)
}
