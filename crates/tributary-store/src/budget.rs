//! Live workers, so that several processes share each tenant's per-project provider
//! budget: every worker renews a heartbeat row (like a job lease) and paces at
//! its part of the jobs the live workers hold ([`Store::held_leases`]; 1 / live workers
//! for a tenant whose jobs nobody holds). A killed worker's row expires and its share
//! returns to the others; a worker stopping cleanly removes its row.

use crate::error::StoreError;
use crate::store::{Backend, LinkId, Store, TenantId};
use sqlx::Row;

/// What a heartbeat saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveWorkers {
    /// Workers alive now, the caller included.
    pub count: u32,
    /// Whether the caller's row was new (it had none alive): the others do not pace by
    /// its share yet.
    pub joined: bool,
}

impl Store {
    /// Records `worker` alive until `until_ms` and counts the workers alive at `now_ms`.
    /// Expired rows are removed on the way.
    pub async fn worker_heartbeat(
        &self,
        worker: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<LiveWorkers, StoreError> {
        let mut tx = self.begin_write().await?;
        if self.backend() == Backend::Postgres {
            // Two workers starting together would each count itself alone (neither sees
            // the other's uncommitted row) and both spend the whole project budget until
            // their next heartbeat: heartbeats take turns, so the second counts the first.
            crate::capture::advisory_locks(
                &mut tx,
                std::iter::once(crate::tx::lock_key(&["worker_heartbeats"])).collect(),
            )
            .await?;
        }
        sqlx::query("DELETE FROM worker_heartbeats WHERE expires_ms <= $1")
            .bind(now_ms)
            .execute(&mut **tx)
            .await?;
        let renewed = sqlx::query(
            "UPDATE worker_heartbeats SET renewed_ms = $3, expires_ms = $2 WHERE worker_id = $1",
        )
        .bind(worker)
        .bind(until_ms)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        let joined = renewed == 0;
        if joined {
            sqlx::query(
                "INSERT INTO worker_heartbeats (worker_id, started_ms, renewed_ms, expires_ms)
                 VALUES ($1, $2, $2, $3)
                 ON CONFLICT (worker_id) DO UPDATE SET renewed_ms = excluded.renewed_ms,
                     expires_ms = excluded.expires_ms",
            )
            .bind(worker)
            .bind(now_ms)
            .bind(until_ms)
            .execute(&mut **tx)
            .await?;
        }
        let count: i64 =
            sqlx::query("SELECT COUNT(*) FROM worker_heartbeats WHERE expires_ms > $1")
                .bind(now_ms)
                .fetch_one(&mut **tx)
                .await?
                .try_get(0)?;
        tx.commit().await?;
        Ok(LiveWorkers {
            count: u32::try_from(count.max(1)).unwrap_or(u32::MAX),
            joined,
        })
    }

    /// Removes `worker`'s heartbeat: it stopped, its share goes back to the others.
    pub async fn worker_stopped(&self, worker: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM worker_heartbeats WHERE worker_id = $1")
            .bind(worker)
            .execute(&mut **tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The live leases of one tenant's jobs: this worker's, and those of every live worker
/// (this one included). A worker's share of the tenant's project budget is its part
/// of them: the budget goes where the jobs that spend it run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLeases {
    pub tenant: TenantId,
    pub mine: u32,
    pub live: u32,
}

impl Store {
    /// Per tenant with live leases at `now_ms`, how many `worker` holds and how many
    /// live workers hold (a dead worker's leases, until they expire, spend nothing).
    pub async fn held_leases(
        &self,
        worker: &str,
        now_ms: i64,
    ) -> Result<Vec<HeldLeases>, StoreError> {
        let rows = sqlx::query(
            "SELECT jobs.tenant_id,
                 CAST(SUM(CASE WHEN jobs.leased_by = $1 THEN 1 ELSE 0 END) AS BIGINT),
                 CAST(COUNT(*) AS BIGINT)
             FROM jobs LEFT JOIN worker_heartbeats beat ON beat.worker_id = jobs.leased_by
             WHERE jobs.leased_by IS NOT NULL AND jobs.lease_expires_ms > $2
               AND (jobs.leased_by = $1 OR beat.expires_ms > $2)
             GROUP BY jobs.tenant_id
             ORDER BY jobs.tenant_id",
        )
        .bind(worker)
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        let count = |value: i64| u32::try_from(value.max(0)).unwrap_or(u32::MAX);
        rows.iter()
            .map(|row| {
                Ok(HeldLeases {
                    tenant: TenantId(row.try_get(0)?),
                    mine: count(row.try_get(1)?),
                    live: count(row.try_get(2)?),
                })
            })
            .collect()
    }
}

/// A link's running job, as an admin should see it: which worker runs it, and whether
/// that worker has stopped (then the link shows `syncing` until another worker takes it
/// over, at `lease_expires_ms`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningLink {
    pub link: LinkId,
    pub worker: String,
    pub lease_expires_ms: i64,
    /// When the worker last renewed its heartbeat, if it is two renewals late (renewals
    /// come every third of the lease). `None`: alive, or a worker without heartbeats.
    pub worker_stopped_ms: Option<i64>,
}

impl Store {
    /// The live leases of `tenant`'s links at `now_ms`, with their workers' state.
    pub async fn running_links(
        &self,
        tenant: &TenantId,
        now_ms: i64,
    ) -> Result<Vec<RunningLink>, StoreError> {
        let rows = sqlx::query(
            "SELECT jobs.link_id, jobs.leased_by, jobs.lease_expires_ms,
                 beat.renewed_ms, beat.expires_ms
             FROM jobs LEFT JOIN worker_heartbeats beat ON beat.worker_id = jobs.leased_by
             WHERE jobs.tenant_id = $1 AND jobs.link_id IS NOT NULL
               AND jobs.leased_by IS NOT NULL AND jobs.lease_expires_ms > $2
             ORDER BY jobs.link_id",
        )
        .bind(tenant.as_str())
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let renewed: Option<i64> = row.try_get(3)?;
                let expires: Option<i64> = row.try_get(4)?;
                let worker_stopped_ms = match (renewed, expires) {
                    (Some(renewed), Some(expires))
                        if renewed + 2 * (expires - renewed) / 3 < now_ms =>
                    {
                        Some(renewed)
                    }
                    _ => None,
                };
                Ok(RunningLink {
                    link: LinkId(row.try_get(0)?),
                    worker: row.try_get(1)?,
                    lease_expires_ms: row.try_get(2)?,
                    worker_stopped_ms,
                })
            })
            .collect()
    }
}
