//! What one mailbox link is doing, for an admin watching a long backfill: the messages
//! captured for it so far, the job running it (and whether that job's worker still
//! lives), its stored cursors (a backfill's progress is in its provider's cursor, which
//! the store does not read), and its recent runs, rebuilt from the audit trail's status
//! changes (every run turns the link `syncing`, then `idle` or an error status).

use crate::budget::RunningLink;
use crate::error::StoreError;
use crate::store::{LinkId, Store, TenantId};
use sqlx::Row;

/// Runs [`Store::link_progress`] answers at most.
pub const MAX_RECENT_RUNS: usize = 20;
/// Status changes read to rebuild them: two per run, and some to spare for admin
/// actions in between.
const STATUS_CHANGES_READ: i64 = 4 * MAX_RECENT_RUNS as i64;
/// The audit trail is read this far back: older runs are not "recent".
const RUNS_WINDOW_MS: i64 = 7 * 86_400_000;

/// The status a running link has.
const SYNCING: &str = "syncing";

/// One link's progress, as [`Store::link_progress`] reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkProgress {
    /// The link's copies of messages the store holds (its sightings, and copies held
    /// until another mailbox's copy captures them).
    pub captured: u64,
    /// The job running the link now, if one holds a live lease.
    pub running: Option<RunningLink>,
    /// When the run in progress began (the link turned `syncing`).
    pub started_ms: Option<i64>,
    /// The link's cursors: a provider's progress cursor tells how far its backfill is.
    pub cursors: Vec<StoredCursor>,
    /// The latest runs, newest first; the run in progress first, if any.
    pub runs: Vec<LinkRunRecord>,
}

/// A cursor as stored: the value is the provider's, opaque here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCursor {
    pub stream: String,
    pub value: String,
    pub updated_ms: i64,
}

/// One run of a link, from the status changes the engine recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRunRecord {
    pub started_ms: i64,
    /// `None` while it runs (or when its worker died and the lease has not expired).
    pub ended_ms: Option<i64>,
    /// The status it ended in (`idle`, `linkage_error`, …); `syncing` while it runs.
    pub status: String,
    /// The provider's words when it failed.
    pub message: Option<String>,
}

/// One `link.status` audit event.
struct StatusChange {
    at_ms: i64,
    from: String,
    to: String,
    message: Option<String>,
}

impl Store {
    /// What `link` of `tenant` is doing at `now_ms`; `None` when the tenant has no such
    /// link.
    pub async fn link_progress(
        &self,
        tenant: &TenantId,
        link: LinkId,
        now_ms: i64,
    ) -> Result<Option<LinkProgress>, StoreError> {
        let Some(view) = self.link(tenant, link).await? else {
            return Ok(None);
        };
        let running = self
            .running_links(tenant, now_ms)
            .await?
            .into_iter()
            .find(|run| run.link == link);
        let changes = self
            .status_changes(tenant, link, &view.mailbox, now_ms)
            .await?;
        let runs = runs_of(&changes);
        let started_ms = runs
            .first()
            .filter(|run| run.ended_ms.is_none())
            .map(|run| run.started_ms);
        Ok(Some(LinkProgress {
            captured: self.captured_for_link(tenant, link).await?,
            running,
            started_ms,
            cursors: self.link_cursors(tenant, link).await?,
            runs,
        }))
    }

    async fn captured_for_link(&self, tenant: &TenantId, link: LinkId) -> Result<u64, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM activity_sightings WHERE tenant_id = $1 AND link_id = $2)
                  + (SELECT COUNT(*) FROM held_sightings WHERE tenant_id = $1 AND link_id = $2)",
        )
        .bind(tenant.as_str())
        .bind(link.0)
        .fetch_one(&self.pool)
        .await?;
        let count: i64 = row.try_get(0)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn link_cursors(
        &self,
        tenant: &TenantId,
        link: LinkId,
    ) -> Result<Vec<StoredCursor>, StoreError> {
        let rows = sqlx::query(
            "SELECT stream, value, updated_ms FROM cursors
             WHERE tenant_id = $1 AND link_id = $2 ORDER BY stream",
        )
        .bind(tenant.as_str())
        .bind(link.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredCursor {
                    stream: row.try_get(0)?,
                    value: row.try_get(1)?,
                    updated_ms: row.try_get(2)?,
                })
            })
            .collect()
    }

    /// Every cursor of `tenant`'s links whose stream ends with `suffix`, by link: a whole
    /// tenant's backfill progress in one read (the values stay opaque here).
    pub async fn cursors_ending_with(
        &self,
        tenant: &TenantId,
        suffix: &str,
    ) -> Result<Vec<(LinkId, StoredCursor)>, StoreError> {
        // LIKE narrows the rows; `_` in a stream name is a LIKE wildcard, so the exact
        // suffix is checked again below.
        let rows = sqlx::query(
            "SELECT link_id, stream, value, updated_ms FROM cursors
             WHERE tenant_id = $1 AND stream LIKE $2 ORDER BY link_id, stream",
        )
        .bind(tenant.as_str())
        .bind(format!("%{suffix}"))
        .fetch_all(&self.pool)
        .await?;
        let mut cursors = Vec::with_capacity(rows.len());
        for row in &rows {
            let stream: String = row.try_get(1)?;
            if !stream.ends_with(suffix) {
                continue;
            }
            let cursor = StoredCursor {
                stream,
                value: row.try_get(2)?,
                updated_ms: row.try_get(3)?,
            };
            cursors.push((LinkId(row.try_get(0)?), cursor));
        }
        Ok(cursors)
    }

    /// The link's latest status changes within [`RUNS_WINDOW_MS`], oldest first.
    async fn status_changes(
        &self,
        tenant: &TenantId,
        link: LinkId,
        mailbox: &str,
        now_ms: i64,
    ) -> Result<Vec<StatusChange>, StoreError> {
        let rows = sqlx::query(
            "SELECT at_ms, detail FROM audit_events
             WHERE tenant_id = $1 AND action = 'link.status' AND subject = $2 AND at_ms >= $3
             ORDER BY at_ms DESC, id DESC LIMIT $4",
        )
        .bind(tenant.as_str())
        .bind(mailbox)
        .bind(now_ms.saturating_sub(RUNS_WINDOW_MS))
        .bind(STATUS_CHANGES_READ)
        .fetch_all(&self.pool)
        .await?;
        let mut changes = Vec::with_capacity(rows.len());
        for row in rows.iter().rev() {
            let detail: String = row.try_get(1)?;
            let detail: serde_json::Value = serde_json::from_str(&detail)?;
            // The mailbox may have had another link before (unlinked, linked again).
            if detail["link"].as_i64() != Some(link.0) {
                continue;
            }
            let text = |field: &str| detail[field].as_str().map(str::to_owned);
            changes.push(StatusChange {
                at_ms: row.try_get(0)?,
                from: text("from").unwrap_or_default(),
                to: text("to").unwrap_or_default(),
                message: text("message"),
            });
        }
        Ok(changes)
    }
}

/// Runs from status changes (oldest first): a run begins when the link turns
/// `syncing` and ends when it leaves it, for whatever status (an admin unlinking a
/// running link ends its run too). Newest first, at most [`MAX_RECENT_RUNS`].
fn runs_of(changes: &[StatusChange]) -> Vec<LinkRunRecord> {
    let mut runs: Vec<LinkRunRecord> = Vec::new();
    for change in changes {
        if change.to == SYNCING {
            runs.push(LinkRunRecord {
                started_ms: change.at_ms,
                ended_ms: None,
                status: SYNCING.to_owned(),
                message: None,
            });
            continue;
        }
        let open = runs.last_mut().filter(|run| run.ended_ms.is_none());
        if let (true, Some(run)) = (change.from == SYNCING, open) {
            run.ended_ms = Some(change.at_ms);
            run.status.clone_from(&change.to);
            run.message.clone_from(&change.message);
        }
    }
    runs.reverse();
    runs.truncate(MAX_RECENT_RUNS);
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(at_ms: i64, from: &str, to: &str) -> StatusChange {
        StatusChange {
            at_ms,
            from: from.to_owned(),
            to: to.to_owned(),
            message: (to == "linkage_error").then(|| "Backend Error".to_owned()),
        }
    }

    #[test]
    fn runs_are_the_spans_a_link_spent_syncing_newest_first() {
        let changes = [
            change(1, "pending", "syncing"),
            change(5, "syncing", "idle"),
            change(10, "idle", "syncing"),
            change(12, "syncing", "linkage_error"),
            change(20, "linkage_error", "syncing"),
        ];
        let runs = runs_of(&changes);
        assert_eq!(runs.len(), 3);
        assert_eq!((runs[0].started_ms, runs[0].ended_ms), (20, None));
        assert_eq!(runs[0].status, "syncing");
        assert_eq!((runs[1].started_ms, runs[1].ended_ms), (10, Some(12)));
        assert_eq!(runs[1].status, "linkage_error");
        assert_eq!(runs[1].message.as_deref(), Some("Backend Error"));
        assert_eq!((runs[2].started_ms, runs[2].ended_ms), (1, Some(5)));
        assert_eq!(runs[2].status, "idle");
    }

    #[test]
    fn a_run_cut_short_by_an_admin_action_is_over() {
        let changes = [
            change(1, "idle", "syncing"),
            change(3, "syncing", "unlinked"),
        ];
        let runs = runs_of(&changes);
        assert_eq!(runs[0].ended_ms, Some(3));
        assert_eq!(runs[0].status, "unlinked");
        // A change that ends no run (an admin starting an idle link) makes none.
        assert!(runs_of(&[change(1, "unlinked", "pending")]).is_empty());
    }
}
