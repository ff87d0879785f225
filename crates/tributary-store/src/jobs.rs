//! The job queue: workers lease due jobs for a while; a dead worker's lease expires and
//! another worker takes the job. PostgreSQL leases with `FOR UPDATE SKIP LOCKED`, so
//! concurrent workers never wait on or take the same job; SQLite serializes writers, so
//! one `UPDATE … RETURNING` is enough there.
//!
//! A mailbox is synced by one worker at a time: a job is not leased while another job
//! of the same link holds a live lease. (Two PostgreSQL workers leasing two jobs of one
//! link in the very same instant can still both succeed; jobs are one per link and kind,
//! so that needs two kinds of job for one link at once.)
//!
//! Every write here takes the store's write turn (`begin_write`): on SQLite a lease
//! renewal queued behind page commits must not starve against the busy timeout while
//! dozens of jobs commit.
//!
//! The lease picks fresh mail first (incremental syncs of links that completed a sync,
//! and tenant jobs, before backfills), then round robin between tenants (the tenant
//! holding the fewest live leases), then the most overdue job. A worker keeps some of its
//! slots for fresh mail by asking for [`LeaseScope::FreshMailOnly`] when its backfill
//! slots are full.

use crate::error::StoreError;
use crate::store::{Backend, LinkId, Store, TenantId};
use sqlx::Row;

/// A job's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub i64);

/// A job a worker holds until `lease_expires_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeasedJob {
    pub id: JobId,
    pub tenant: TenantId,
    pub kind: String,
    pub link: Option<LinkId>,
    /// Earlier failed attempts.
    pub attempts: i64,
    pub lease_expires_ms: i64,
    /// The link never completed a sync: this job backfills it.
    pub backfill: bool,
}

/// A job is a backfill when its link never completed a sync (`last_success_ms` is set by
/// every successful run): its first full sync, or one after an administrator's restart
/// of a link that never finished. Tenant-wide jobs (no link) are never backfills.
macro_rules! is_backfill {
    () => {
        "(jobs.link_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM mailbox_links backfilled
            WHERE backfilled.tenant_id = jobs.tenant_id AND backfilled.id = jobs.link_id
              AND backfilled.last_success_ms IS NOT NULL))"
    };
}

/// The lease query, with the backend's row lock (`$4` is 1 when backfills may be
/// leased). Among due jobs: fresh mail first (incremental syncs and tenant jobs before
/// backfills), then the tenant holding the fewest live leases (round robin between
/// tenants, so one tenant's huge backfill delays another's jobs by at most the jobs
/// already running), then the most overdue.
macro_rules! lease_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE jobs SET leased_by = $1, lease_expires_ms = $2
            WHERE id = (
                SELECT id FROM jobs
                WHERE run_at_ms <= $3 AND (leased_by IS NULL OR lease_expires_ms <= $3)
                  AND NOT EXISTS (
                      SELECT 1 FROM jobs running
                      WHERE running.tenant_id = jobs.tenant_id
                        AND running.link_id = jobs.link_id
                        AND running.id <> jobs.id AND running.lease_expires_ms > $3)
                  AND ($4 = 1 OR NOT ",
            is_backfill!(),
            ")
                ORDER BY CASE WHEN ",
            is_backfill!(),
            " THEN 1 ELSE 0 END,
                    (SELECT COUNT(*) FROM jobs held
                     WHERE held.tenant_id = jobs.tenant_id AND held.lease_expires_ms > $3),
                    run_at_ms, id
                LIMIT 1 ",
            $lock,
            ")
            RETURNING id, tenant_id, kind, link_id, attempts, lease_expires_ms,
                CAST(CASE WHEN ",
            is_backfill!(),
            " THEN 1 ELSE 0 END AS BIGINT)"
        )
    };
}

const LEASE_POSTGRES: &str = lease_sql!("FOR UPDATE SKIP LOCKED");
const LEASE_SQLITE: &str = lease_sql!("");

/// Whether a lease may take a backfill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseScope {
    /// Any due job (backfills after fresh mail).
    Any,
    /// Only incremental syncs and tenant jobs: the slots kept for fresh mail.
    FreshMailOnly,
}

/// A job another worker (or this one) holds right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldJob {
    pub id: JobId,
    pub tenant: TenantId,
    pub kind: String,
    pub link: Option<LinkId>,
    pub worker: String,
    pub lease_expires_ms: i64,
}

impl Store {
    /// Schedules a `kind` job for `link` at `run_at_ms`. A pending job of the same kind
    /// for the same link is kept, and brought forward when this one is due earlier.
    pub async fn enqueue_job(
        &self,
        tenant: &TenantId,
        kind: &str,
        link: Option<LinkId>,
        run_at_ms: i64,
    ) -> Result<JobId, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO jobs (tenant_id, kind, link_id, run_at_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, kind, link_id) WHERE leased_by IS NULL DO UPDATE SET
                 run_at_ms = CASE WHEN excluded.run_at_ms < jobs.run_at_ms
                                  THEN excluded.run_at_ms ELSE jobs.run_at_ms END
             RETURNING id",
        )
        .bind(tenant.as_str())
        .bind(kind)
        .bind(link.map(|l| l.0))
        .bind(run_at_ms)
        .fetch_one(&mut **tx)
        .await?;
        tx.commit().await?;
        Ok(JobId(row.try_get(0)?))
    }

    /// Schedules a tenant-wide `kind` job (no link) at `run_at_ms`, unless one is already
    /// waiting. Two racing callers may both insert: tenant jobs are idempotent.
    pub async fn enqueue_tenant_job(
        &self,
        tenant: &TenantId,
        kind: &str,
        run_at_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO jobs (tenant_id, kind, link_id, run_at_ms)
             SELECT $1, $2, NULL, $3
             WHERE NOT EXISTS (
                 SELECT 1 FROM jobs WHERE tenant_id = $1 AND kind = $2
                     AND link_id IS NULL AND leased_by IS NULL)",
        )
        .bind(tenant.as_str())
        .bind(kind)
        .bind(run_at_ms)
        .execute(&mut **tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Leases a due job that nobody holds (or whose lease expired), for `lease_ms` from
    /// `now_ms`: fresh mail before backfills, round robin between tenants, then the most
    /// overdue (see [`Store::lease_job_in`]).
    pub async fn lease_job(
        &self,
        worker: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<LeasedJob>, StoreError> {
        self.lease_job_in(worker, now_ms, lease_ms, LeaseScope::Any)
            .await
    }

    /// [`Store::lease_job`] within `scope`: a worker whose backfill slots are full asks
    /// only for fresh mail.
    pub async fn lease_job_in(
        &self,
        worker: &str,
        now_ms: i64,
        lease_ms: i64,
        scope: LeaseScope,
    ) -> Result<Option<LeasedJob>, StoreError> {
        let backfills = i64::from(scope == LeaseScope::Any);
        let sql = match self.backend() {
            Backend::Postgres => LEASE_POSTGRES,
            Backend::Sqlite => LEASE_SQLITE,
        };
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(sql)
            .bind(worker)
            .bind(now_ms.saturating_add(lease_ms))
            .bind(now_ms)
            .bind(backfills)
            .fetch_optional(&mut **tx)
            .await?;
        tx.commit().await?;
        row.map(|row| {
            Ok(LeasedJob {
                id: JobId(row.try_get(0)?),
                tenant: TenantId(row.try_get(1)?),
                kind: row.try_get(2)?,
                link: row.try_get::<Option<i64>, _>(3)?.map(LinkId),
                attempts: row.try_get(4)?,
                lease_expires_ms: row.try_get(5)?,
                backfill: row.try_get::<i64, _>(6)? == 1,
            })
        })
        .transpose()
    }

    /// The jobs leased at `now_ms` (live leases only), by lease expiry: what workers are
    /// running, for tests and the console.
    pub async fn held_jobs(&self, now_ms: i64) -> Result<Vec<HeldJob>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, kind, link_id, leased_by, lease_expires_ms FROM jobs
             WHERE leased_by IS NOT NULL AND lease_expires_ms > $1
             ORDER BY lease_expires_ms, id",
        )
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(HeldJob {
                    id: JobId(row.try_get(0)?),
                    tenant: TenantId(row.try_get(1)?),
                    kind: row.try_get(2)?,
                    link: row.try_get::<Option<i64>, _>(3)?.map(LinkId),
                    worker: row.try_get(4)?,
                    lease_expires_ms: row.try_get(5)?,
                })
            })
            .collect()
    }

    /// Extends `worker`'s lease on a running job to `until_ms`, so a long sync keeps its
    /// link while the worker lives. `false` when the worker no longer holds the job.
    pub async fn extend_lease(
        &self,
        job: JobId,
        worker: &str,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let extended =
            sqlx::query("UPDATE jobs SET lease_expires_ms = $3 WHERE id = $1 AND leased_by = $2")
                .bind(job.0)
                .bind(worker)
                .bind(until_ms)
                .execute(&mut **tx)
                .await?;
        tx.commit().await?;
        Ok(extended.rows_affected() == 1)
    }

    /// Finishes a job. `false` when `worker` no longer holds it (its lease expired and
    /// another worker took it): that worker's result stands.
    pub async fn complete_job(&self, job: JobId, worker: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM jobs WHERE id = $1 AND leased_by = $2")
            .bind(job.0)
            .bind(worker)
            .execute(&mut **tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a job back after a failure, to run again at `retry_at_ms`; when a pending
    /// job of the same kind and link was enqueued meanwhile, the two merge. `false` when
    /// `worker` no longer holds the job.
    pub async fn retry_job(
        &self,
        job: JobId,
        worker: &str,
        retry_at_ms: i64,
    ) -> Result<bool, StoreError> {
        self.give_back(job, worker, retry_at_ms, 1).await
    }

    /// Gives a job back unfinished, due at `run_at_ms` and not counted as a failure: a
    /// worker stopping hands its running jobs to the others at once instead of leaving
    /// them leased until the lease expires. `false` when `worker` no longer holds it.
    pub async fn release_job(
        &self,
        job: JobId,
        worker: &str,
        run_at_ms: i64,
    ) -> Result<bool, StoreError> {
        self.give_back(job, worker, run_at_ms, 0).await
    }

    async fn give_back(
        &self,
        job: JobId,
        worker: &str,
        retry_at_ms: i64,
        failures: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let pending = sqlx::query(
            "SELECT pending.id FROM jobs held
             JOIN jobs pending ON pending.tenant_id = held.tenant_id
                 AND pending.kind = held.kind AND pending.link_id = held.link_id
                 AND pending.leased_by IS NULL
             WHERE held.id = $1 AND held.leased_by = $2",
        )
        .bind(job.0)
        .bind(worker)
        .fetch_optional(&mut **tx)
        .await?;
        let released = match pending {
            Some(row) => {
                let pending: i64 = row.try_get(0)?;
                let deleted = sqlx::query("DELETE FROM jobs WHERE id = $1 AND leased_by = $2")
                    .bind(job.0)
                    .bind(worker)
                    .execute(&mut **tx)
                    .await?;
                sqlx::query(
                    "UPDATE jobs SET attempts = attempts + $3,
                         run_at_ms = CASE WHEN $2 < run_at_ms THEN $2 ELSE run_at_ms END
                     WHERE id = $1",
                )
                .bind(pending)
                .bind(retry_at_ms)
                .bind(failures)
                .execute(&mut **tx)
                .await?;
                deleted.rows_affected() == 1
            }
            None => {
                sqlx::query(
                    "UPDATE jobs SET leased_by = NULL, lease_expires_ms = NULL,
                         run_at_ms = $3, attempts = attempts + $4
                     WHERE id = $1 AND leased_by = $2",
                )
                .bind(job.0)
                .bind(worker)
                .bind(retry_at_ms)
                .bind(failures)
                .execute(&mut **tx)
                .await?
                .rows_affected()
                    == 1
            }
        };
        tx.commit().await?;
        Ok(released)
    }
}
