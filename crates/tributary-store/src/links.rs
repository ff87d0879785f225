//! Mailbox link status and the audit trail. Every status change is audited in the same
//! transaction as the change.

use crate::error::StoreError;
use crate::store::{ConnectionKind, LinkId, MemberId, Store, TenantId, now_ms};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use tributary_core::LinkErrorStatus;

/// A mailbox link's status: `unlinked → pending → syncing ⇄ idle`, or an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkStatus {
    Pending,
    Syncing,
    Idle,
    AuthenticationError,
    Unauthorized,
    LinkageError,
    Unlinked,
}

impl LinkStatus {
    pub const ALL: [LinkStatus; 7] = [
        LinkStatus::Pending,
        LinkStatus::Syncing,
        LinkStatus::Idle,
        LinkStatus::AuthenticationError,
        LinkStatus::Unauthorized,
        LinkStatus::LinkageError,
        LinkStatus::Unlinked,
    ];

    /// The stored name, as the schema's CHECK constraint lists it.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkStatus::Pending => "pending",
            LinkStatus::Syncing => "syncing",
            LinkStatus::Idle => "idle",
            LinkStatus::AuthenticationError => "authentication_error",
            LinkStatus::Unauthorized => "unauthorized",
            LinkStatus::LinkageError => "linkage_error",
            LinkStatus::Unlinked => "unlinked",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == name)
    }
}

impl From<LinkErrorStatus> for LinkStatus {
    fn from(error: LinkErrorStatus) -> Self {
        match error {
            LinkErrorStatus::AuthenticationError => LinkStatus::AuthenticationError,
            LinkErrorStatus::Unauthorized => LinkStatus::Unauthorized,
            LinkErrorStatus::LinkageError => LinkStatus::LinkageError,
        }
    }
}

/// A mailbox link as the console shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkView {
    pub id: LinkId,
    pub member: String,
    pub mailbox: String,
    pub status: LinkStatus,
    /// The provider's own words about the last failure.
    pub provider_message: Option<String>,
    /// The provider's cause code for that failure (`invalid_grant`, `AADSTS7000215` …),
    /// from which the console picks the hint for the cause.
    pub status_reason: Option<String>,
    pub last_success_ms: Option<i64>,
    /// What the last successful run did (added, removed, when …), as the engine wrote it.
    pub last_summary: Option<serde_json::Value>,
    pub next_attempt_ms: Option<i64>,
    /// Failures since the last success.
    pub attempts: i64,
    /// The connection (provider) the link belongs to.
    pub provider: ConnectionKind,
    /// Why the link is at `provider` when another connected provider also has a mailbox
    /// for the member (a migration under way); `None` otherwise.
    pub provider_reason: Option<String>,
}

impl LinkView {
    /// When the run that `last_summary` describes ended (the last run that changed
    /// something; `last_success_ms` is the latest run, which may have found nothing).
    pub fn last_change_ms(&self) -> Option<i64> {
        let summary = self.last_summary.as_ref()?;
        summary
            .get("at_ms")
            .and_then(serde_json::Value::as_i64)
            .or(self.last_success_ms)
    }
}

/// A failed run as [`Store::record_link_failure_with_reason`] records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkFailure<'a> {
    pub status: LinkErrorStatus,
    /// The provider's own words.
    pub message: &'a str,
    /// The provider's cause code, when it gave one.
    pub reason: Option<&'a str>,
}

/// Who did what, when.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub subject: Option<String>,
    pub detail: serde_json::Value,
}

/// The actor of changes the engine makes on its own.
pub const SYSTEM_ACTOR: &str = "system";

impl ConnectionKind {
    pub const ALL: [ConnectionKind; 3] = [
        ConnectionKind::Google,
        ConnectionKind::Microsoft,
        ConnectionKind::Imap,
    ];

    /// The kind stored as `name` (the schema's CHECK constraints list the same names).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl Store {
    /// Links a member's mailbox at `provider` (status `pending`), or returns the existing
    /// link, moved to `provider` if it was another's (see [`Store::link_mailbox_with_reason`]).
    pub async fn link_mailbox(
        &self,
        tenant: &TenantId,
        member: MemberId,
        mailbox: &str,
        provider: ConnectionKind,
    ) -> Result<LinkId, StoreError> {
        self.link_mailbox_with_reason(tenant, member, mailbox, provider, None)
            .await
    }

    /// [`Store::link_mailbox`] recording why the link is at `provider` (`None` clears
    /// an earlier reason). An existing link of another provider moves to `provider`
    /// (audited as `link.provider`): its cursors are namespaced by the old provider and
    /// never read again, so the new provider starts with a full sync, and the store's
    /// dedupe keeps mail seen at both from being captured twice.
    pub async fn link_mailbox_with_reason(
        &self,
        tenant: &TenantId,
        member: MemberId,
        mailbox: &str,
        provider: ConnectionKind,
        reason: Option<&str>,
    ) -> Result<LinkId, StoreError> {
        let mailbox = mailbox.trim().to_lowercase();
        let mut tx = self.begin_write().await?;
        let existing = sqlx::query(
            "SELECT id, provider FROM mailbox_links WHERE tenant_id = $1 AND mailbox = $2",
        )
        .bind(tenant.as_str())
        .bind(&mailbox)
        .fetch_optional(&mut **tx)
        .await?;
        let id = match existing {
            Some(row) => {
                let id: i64 = row.try_get(0)?;
                let previous = self::provider(&row.try_get::<String, _>(1)?);
                sqlx::query(
                    "UPDATE mailbox_links SET provider = $3, provider_reason = $4
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.as_str())
                .bind(id)
                .bind(provider.as_str())
                .bind(reason)
                .execute(&mut **tx)
                .await?;
                if previous != provider {
                    let event = AuditEvent {
                        at_ms: now_ms(),
                        actor: SYSTEM_ACTOR.to_owned(),
                        action: "link.provider".to_owned(),
                        subject: Some(mailbox.clone()),
                        detail: serde_json::json!({
                            "link": id,
                            "from": previous.as_str(),
                            "to": provider.as_str(),
                            "reason": reason,
                        }),
                    };
                    insert_audit(&mut tx, tenant, &event).await?;
                }
                id
            }
            None => {
                sqlx::query(
                    "INSERT INTO mailbox_links (tenant_id, member_id, mailbox, status, provider, provider_reason)
                     VALUES ($1, $2, $3, 'pending', $4, $5)",
                )
                .bind(tenant.as_str())
                .bind(member.0)
                .bind(&mailbox)
                .bind(provider.as_str())
                .bind(reason)
                .execute(&mut **tx)
                .await?;
                sqlx::query("SELECT id FROM mailbox_links WHERE tenant_id = $1 AND mailbox = $2")
                    .bind(tenant.as_str())
                    .bind(&mailbox)
                    .fetch_one(&mut **tx)
                    .await?
                    .try_get(0)?
            }
        };
        tx.commit().await?;
        Ok(LinkId(id))
    }

    /// Disconnects the tenant's `provider`: its connection (sealed credentials, policy,
    /// domains) is deleted and every link of that provider is unlinked (audited), in one
    /// transaction. Links of the tenant's other providers are untouched; captured
    /// activity stays. Answers how many links were unlinked.
    pub async fn disconnect(
        &self,
        tenant: &TenantId,
        provider: ConnectionKind,
        actor: &str,
    ) -> Result<usize, StoreError> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM connections WHERE tenant_id = $1 AND kind = $2")
            .bind(tenant.as_str())
            .bind(provider.as_str())
            .execute(&mut **tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NoConnection {
                tenant: tenant.0.clone(),
                kind: provider.as_str(),
            });
        }
        let running: Vec<i64> = sqlx::query(
            "SELECT id FROM mailbox_links
             WHERE tenant_id = $1 AND provider = $2 AND status <> 'unlinked' ORDER BY id",
        )
        .bind(tenant.as_str())
        .bind(provider.as_str())
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
        for &id in &running {
            let link = LinkId(id);
            let previous = current_status(&mut tx, tenant, link).await?;
            sqlx::query(
                "UPDATE mailbox_links SET status = 'unlinked' WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.as_str())
            .bind(id)
            .execute(&mut **tx)
            .await?;
            audit_status_change(
                &mut tx,
                tenant,
                link,
                actor,
                previous,
                LinkStatus::Unlinked,
                None,
            )
            .await?;
        }
        let event = AuditEvent {
            at_ms: now_ms(),
            actor: actor.to_owned(),
            action: format!("connection.{}.disconnected", provider.as_str()),
            subject: None,
            detail: serde_json::json!({ "unlinked": running.len() }),
        };
        insert_audit(&mut tx, tenant, &event).await?;
        crate::settings::bump_config_version(&mut tx, tenant).await?;
        tx.commit().await?;
        Ok(running.len())
    }

    /// Every mailbox link of the tenant, by mailbox.
    pub async fn links(&self, tenant: &TenantId) -> Result<Vec<LinkView>, StoreError> {
        let rows = sqlx::query(LINK_SELECT)
            .bind(tenant.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(link_view).collect()
    }

    /// One mailbox link of the tenant, if it exists.
    pub async fn link(
        &self,
        tenant: &TenantId,
        link: LinkId,
    ) -> Result<Option<LinkView>, StoreError> {
        let row = sqlx::query(ONE_LINK_SELECT)
            .bind(tenant.as_str())
            .bind(link.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(link_view).transpose()
    }

    /// The connection (provider) a link of the tenant belongs to.
    pub async fn link_provider(
        &self,
        tenant: &TenantId,
        link: LinkId,
    ) -> Result<ConnectionKind, StoreError> {
        let row =
            sqlx::query("SELECT provider FROM mailbox_links WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_str())
                .bind(link.0)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| StoreError::UnknownLink {
                    tenant: tenant.0.clone(),
                    link: link.0,
                })?;
        Ok(provider(&row.try_get::<String, _>(0)?))
    }

    /// Moves a link to another connection (provider): a mailbox that migrated, say, from
    /// Google Workspace to Microsoft 365. Its cursors belong to the old provider and are
    /// namespaced by it, so they are simply never read again.
    pub async fn set_link_provider(
        &self,
        tenant: &TenantId,
        link: LinkId,
        provider: ConnectionKind,
    ) -> Result<(), StoreError> {
        let updated =
            sqlx::query("UPDATE mailbox_links SET provider = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_str())
                .bind(link.0)
                .bind(provider.as_str())
                .execute(&self.pool)
                .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::UnknownLink {
                tenant: tenant.0.clone(),
                link: link.0,
            });
        }
        Ok(())
    }

    /// Moves a link to `status` (e.g. `syncing` when a run starts, `unlinked` when an
    /// admin removes it), keeping its history fields.
    pub async fn set_link_status(
        &self,
        tenant: &TenantId,
        link: LinkId,
        status: LinkStatus,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let previous = current_status(&mut tx, tenant, link).await?;
        sqlx::query("UPDATE mailbox_links SET status = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(link.0)
            .bind(status.as_str())
            .execute(&mut **tx)
            .await?;
        audit_status_change(&mut tx, tenant, link, actor, previous, status, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a successful run: status `idle`, no pending failure, `last_success_ms`
    /// its time (when the mailbox was last checked). Its summary replaces the stored one
    /// only when it found something ([`summary_found_nothing`]): the summary stays that of
    /// the last run that changed something, not of the latest empty poll.
    pub async fn record_link_success(
        &self,
        tenant: &TenantId,
        link: LinkId,
        summary: &serde_json::Value,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let previous = current_status(&mut tx, tenant, link).await?;
        if unlinked_meanwhile(&previous) {
            return Ok(());
        }
        sqlx::query(
            "UPDATE mailbox_links SET status = 'idle', provider_message = NULL, status_reason = NULL,
                 last_success_ms = $3,
                 last_summary = CASE WHEN $5 = 1 AND last_summary IS NOT NULL
                                     THEN last_summary ELSE $4 END,
                 next_attempt_ms = NULL, attempts = 0
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.as_str())
        .bind(link.0)
        .bind(at_ms)
        .bind(summary.to_string())
        .bind(i64::from(summary_found_nothing(summary)))
        .execute(&mut **tx)
        .await?;
        audit_status_change(
            &mut tx,
            tenant,
            link,
            SYSTEM_ACTOR,
            previous,
            LinkStatus::Idle,
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a failed run: the error status, the provider's message, one more
    /// attempt, and when to try again (`None`: wait for an admin).
    pub async fn record_link_failure(
        &self,
        tenant: &TenantId,
        link: LinkId,
        error: LinkErrorStatus,
        provider_message: &str,
        next_attempt_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        let failure = LinkFailure {
            status: error,
            message: provider_message,
            reason: None,
        };
        self.record_link_failure_with_reason(tenant, link, failure, next_attempt_ms)
            .await
    }

    /// [`Store::record_link_failure`] keeping the provider's cause code too.
    pub async fn record_link_failure_with_reason(
        &self,
        tenant: &TenantId,
        link: LinkId,
        failure: LinkFailure<'_>,
        next_attempt_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        let LinkFailure {
            status: error,
            message: provider_message,
            reason,
        } = failure;
        let mut tx = self.begin_write().await?;
        let previous = current_status(&mut tx, tenant, link).await?;
        if unlinked_meanwhile(&previous) {
            return Ok(());
        }
        let status = LinkStatus::from(error);
        sqlx::query(
            "UPDATE mailbox_links SET status = $3, provider_message = $4,
                 next_attempt_ms = $5, attempts = attempts + 1, status_reason = $6
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.as_str())
        .bind(link.0)
        .bind(status.as_str())
        .bind(provider_message)
        .bind(next_attempt_ms)
        .bind(reason)
        .execute(&mut **tx)
        .await?;
        audit_status_change(
            &mut tx,
            tenant,
            link,
            SYSTEM_ACTOR,
            previous,
            status,
            Some(provider_message),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Appends an audit event.
    pub async fn record_audit(
        &self,
        tenant: &TenantId,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        insert_audit(&mut tx, tenant, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's latest `limit` audit events, newest first.
    pub async fn audit_events(
        &self,
        tenant: &TenantId,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT at_ms, actor, action, subject, detail FROM audit_events
             WHERE tenant_id = $1 ORDER BY at_ms DESC, id DESC LIMIT $2",
        )
        .bind(tenant.as_str())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let detail: String = row.try_get(4)?;
                Ok(AuditEvent {
                    at_ms: row.try_get(0)?,
                    actor: row.try_get(1)?,
                    action: row.try_get(2)?,
                    subject: row.try_get(3)?,
                    detail: serde_json::from_str(&detail)?,
                })
            })
            .collect()
    }
}

/// Whether a run's summary reports nothing new: nothing fetched, added or gone (the
/// sync engine's `SyncSummary` counts; a missing count is zero).
pub fn summary_found_nothing(summary: &serde_json::Value) -> bool {
    ["fetched", "added", "gone"].iter().all(|count| {
        summary
            .get(count)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
            == 0
    })
}

/// The columns [`link_view`] reads, from a link joined with its member; a `WHERE`
/// clause follows.
pub(crate) const LINK_COLUMNS: &str = "
    SELECT l.id, m.email, l.mailbox, l.status, l.provider_message, l.last_success_ms,
           l.last_summary, l.next_attempt_ms, l.attempts, l.provider, l.status_reason,
           l.provider_reason
    FROM mailbox_links l
    JOIN members m ON m.tenant_id = l.tenant_id AND m.id = l.member_id";

const LINK_SELECT: &str = "
    SELECT l.id, m.email, l.mailbox, l.status, l.provider_message, l.last_success_ms,
           l.last_summary, l.next_attempt_ms, l.attempts, l.provider, l.status_reason,
           l.provider_reason
    FROM mailbox_links l
    JOIN members m ON m.tenant_id = l.tenant_id AND m.id = l.member_id
    WHERE l.tenant_id = $1 ORDER BY l.mailbox";

/// [`LINK_SELECT`] for one link.
const ONE_LINK_SELECT: &str = "
    SELECT l.id, m.email, l.mailbox, l.status, l.provider_message, l.last_success_ms,
           l.last_summary, l.next_attempt_ms, l.attempts, l.provider, l.status_reason,
           l.provider_reason
    FROM mailbox_links l
    JOIN members m ON m.tenant_id = l.tenant_id AND m.id = l.member_id
    WHERE l.tenant_id = $1 AND l.id = $2";

pub(crate) fn link_view(row: &AnyRow) -> Result<LinkView, StoreError> {
    let status: String = row.try_get(3)?;
    let summary: Option<String> = row.try_get(6)?;
    Ok(LinkView {
        id: LinkId(row.try_get(0)?),
        member: row.try_get(1)?,
        mailbox: row.try_get(2)?,
        // The CHECK constraint admits only the seven names.
        status: LinkStatus::from_name(&status).unwrap_or(LinkStatus::Unlinked),
        provider_message: row.try_get(4)?,
        last_success_ms: row.try_get(5)?,
        last_summary: summary.as_deref().map(serde_json::from_str).transpose()?,
        next_attempt_ms: row.try_get(7)?,
        attempts: row.try_get(8)?,
        provider: provider(&row.try_get::<String, _>(9)?),
        status_reason: row.try_get(10)?,
        provider_reason: row.try_get(11)?,
    })
}

/// A stored provider name. The CHECK constraint admits only the known names, and
/// every link made before providers were recorded is a Google one.
fn provider(name: &str) -> ConnectionKind {
    ConnectionKind::from_name(name).unwrap_or(ConnectionKind::Google)
}

/// The link's mailbox and status, failing for a link of another tenant.
/// A run's end never turns a link an admin (or User Delegation Sync) unlinked while it
/// ran back into a synced or failing one: unlinked stays unlinked until linked again.
fn unlinked_meanwhile((_, status): &(String, String)) -> bool {
    status == LinkStatus::Unlinked.as_str()
}

async fn current_status(
    tx: &mut Transaction<'static, Any>,
    tenant: &TenantId,
    link: LinkId,
) -> Result<(String, String), StoreError> {
    let row =
        sqlx::query("SELECT mailbox, status FROM mailbox_links WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(link.0)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or_else(|| StoreError::UnknownLink {
                tenant: tenant.0.clone(),
                link: link.0,
            })?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

async fn audit_status_change(
    tx: &mut Transaction<'static, Any>,
    tenant: &TenantId,
    link: LinkId,
    actor: &str,
    (mailbox, previous): (String, String),
    status: LinkStatus,
    provider_message: Option<&str>,
) -> Result<(), StoreError> {
    if previous == status.as_str() {
        return Ok(());
    }
    let event = AuditEvent {
        at_ms: now_ms(),
        actor: actor.to_owned(),
        action: "link.status".to_owned(),
        subject: Some(mailbox),
        detail: serde_json::json!({
            "link": link.0,
            "from": previous,
            "to": status.as_str(),
            "message": provider_message,
        }),
    };
    insert_audit(tx, tenant, &event).await
}

pub(crate) async fn insert_audit(
    tx: &mut Transaction<'static, Any>,
    tenant: &TenantId,
    event: &AuditEvent,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_events (tenant_id, at_ms, actor, action, subject, detail)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant.as_str())
    .bind(event.at_ms)
    .bind(&event.actor)
    .bind(&event.action)
    .bind(event.subject.as_deref())
    .bind(event.detail.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
