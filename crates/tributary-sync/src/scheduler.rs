//! The worker loop: leases `sync_link` jobs from the store's queue, runs them with the
//! tenant's engine, and schedules what comes next: the next incremental sync after a
//! success, a retry with exponential backoff after a `linkage_error`, nothing after an
//! error an administrator must fix (restarting the link enqueues a job again).

use crate::engine::{LinkOutcome, SyncEngine, clock_ms, may_run};
use crate::runtime::{DELEGATION_SYNC_JOB, Runtime, RuntimeError};
use rand::Rng;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;
use tributary_store::{JobId, LeasedJob, LinkId, SYSTEM_ACTOR, Store, StoreError, TenantId};

/// The job kind that syncs one mailbox link.
pub const SYNC_LINK_JOB: &str = "sync_link";

#[derive(Debug, Clone, PartialEq)]
pub struct WorkerConfig {
    /// Names this worker's leases.
    pub worker_id: String,
    /// How long a leased job is ours without renewal (renewed every third of it while
    /// the job runs); a worker dying mid-job frees it after this.
    pub lease: Duration,
    /// When a link that synced is synced again.
    pub poll_interval: Duration,
    /// The first retry after a `linkage_error`; doubled per failure since the last
    /// success, up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// How long [`Worker::run`] sleeps when no job is due.
    pub idle_sleep: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            worker_id: format!("worker-{}", std::process::id()),
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_secs(5 * 60),
            initial_backoff: Duration::from_secs(60),
            max_backoff: Duration::from_secs(6 * 3600),
            idle_sleep: Duration::from_secs(1),
        }
    }
}

/// What became of a leased job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Synced; the next sync is due at `next_run_ms`.
    Synced { link: LinkId, next_run_ms: i64 },
    /// A `linkage_error`; retried at `retry_at_ms`.
    Retrying { link: LinkId, retry_at_ms: i64 },
    /// Stopped until an administrator acts.
    WaitingForAdmin { link: LinkId },
    /// Not runnable here (unknown tenant or kind, link gone or not runnable, capture
    /// off): removed.
    Dropped { job: JobId, reason: &'static str },
    /// The tenant's directory was read again; the next read is due at `next_run_ms`.
    DirectorySynced { tenant: TenantId, next_run_ms: i64 },
    /// Reading the directory failed; retried at `retry_at_ms`.
    DirectoryFailed { tenant: TenantId, retry_at_ms: i64 },
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// Runs jobs for the tenants whose engines it holds, or, given a [`Runtime`], for every
/// tenant, building engines from the store.
#[derive(Debug)]
pub struct Worker {
    store: Store,
    config: WorkerConfig,
    engines: HashMap<TenantId, SyncEngine>,
    runtime: Option<Runtime>,
}

impl Worker {
    pub fn new(store: Store, config: WorkerConfig) -> Self {
        Worker {
            store,
            config,
            engines: HashMap::new(),
            runtime: None,
        }
    }

    /// A worker for every tenant of the runtime's store, with the runtime's settings.
    pub fn for_runtime(runtime: Runtime) -> Self {
        Worker {
            store: runtime.store().clone(),
            config: runtime.config().worker.clone(),
            engines: HashMap::new(),
            runtime: Some(runtime),
        }
    }

    /// The same worker under another lease name (several workers in one process).
    pub fn named(mut self, worker_id: impl Into<String>) -> Self {
        self.config.worker_id = worker_id.into();
        self
    }

    /// Runs `engine`'s tenant here.
    pub fn register(&mut self, engine: SyncEngine) {
        self.engines.insert(engine.tenant().clone(), engine);
    }

    /// Enqueues a sync, due now, for every link of `tenant` that may run; answers how
    /// many.
    pub async fn schedule_links(&self, tenant: &TenantId) -> Result<usize, StoreError> {
        let links = self.store.links(tenant).await?;
        let mut scheduled = 0;
        for link in links.iter().filter(|l| may_run(l.status)) {
            self.store
                .enqueue_job(tenant, SYNC_LINK_JOB, Some(link.id), clock_ms())
                .await?;
            scheduled += 1;
        }
        Ok(scheduled)
    }

    /// Leases and runs one due job; `None` when none is due. The lease is renewed while
    /// the job runs, so only a dead worker loses it.
    pub async fn run_once(&self) -> Result<Option<JobOutcome>, WorkerError> {
        let lease_ms = millis(self.config.lease);
        let worker = &self.config.worker_id;
        let leased = self.store.lease_job(worker, clock_ms(), lease_ms).await?;
        let Some(job) = leased else {
            return Ok(None);
        };
        let link = job.link.map_or(-1, |l| l.0);
        tracing::debug!(job = job.id.0, link, worker = %worker, at_ms = clock_ms(), "job started");
        let outcome = {
            let run = self.run_job(&job);
            tokio::pin!(run);
            let renew_every = (self.config.lease / 3).max(std::time::Duration::from_millis(50));
            loop {
                tokio::select! {
                    outcome = &mut run => break outcome?,
                    () = tokio::time::sleep(renew_every) => {
                        let until = clock_ms().saturating_add(lease_ms);
                        if !self.store.extend_lease(job.id, worker, until).await? {
                            tracing::warn!(job = job.id.0, link, "lease lost while running");
                        }
                    }
                }
            }
        };
        tracing::debug!(job = job.id.0, link, worker = %worker, at_ms = clock_ms(), "job finished");
        Ok(Some(outcome))
    }

    /// Runs due jobs until `shutdown` completes, sleeping when none is due.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<(), WorkerError> {
        tokio::pin!(shutdown);
        loop {
            let ran = tokio::select! {
                () = &mut shutdown => return Ok(()),
                ran = self.run_once() => ran?,
            };
            if ran.is_none() {
                tokio::select! {
                    () = &mut shutdown => return Ok(()),
                    () = tokio::time::sleep(self.config.idle_sleep) => {}
                }
            }
        }
    }

    async fn run_job(&self, job: &LeasedJob) -> Result<JobOutcome, WorkerError> {
        if job.kind == DELEGATION_SYNC_JOB {
            return self.run_delegation_job(job).await;
        }
        let (Some(engine), Some(link), true) = (
            self.engine(&job.tenant).await?,
            job.link,
            job.kind == SYNC_LINK_JOB,
        ) else {
            return self.drop_job(job, "no engine for this tenant or job").await;
        };
        let view = self.store.link(&job.tenant, link).await?;
        let Some(view) = view.filter(|l| may_run(l.status)) else {
            return self.drop_job(job, "link gone or not runnable").await;
        };
        let backoff = linkage_backoff(&self.config, job.attempts);
        let outcome = engine
            .sync_link_retrying_in(link, &view.mailbox, backoff)
            .await?;
        let worker = &self.config.worker_id;
        match outcome {
            LinkOutcome::Synced { .. } => {
                self.store.complete_job(job.id, worker).await?;
                let next_run_ms = clock_ms() + millis(self.config.poll_interval);
                self.store
                    .enqueue_job(&job.tenant, SYNC_LINK_JOB, Some(link), next_run_ms)
                    .await?;
                Ok(JobOutcome::Synced { link, next_run_ms })
            }
            LinkOutcome::Failed { status, .. } if !status.needs_admin() => {
                let retry_at_ms = clock_ms() + millis(backoff);
                self.store.retry_job(job.id, worker, retry_at_ms).await?;
                Ok(JobOutcome::Retrying { link, retry_at_ms })
            }
            LinkOutcome::Failed { .. } => {
                self.store.complete_job(job.id, worker).await?;
                Ok(JobOutcome::WaitingForAdmin { link })
            }
        }
    }

    /// The tenant's engine: registered, or built by the runtime (`None` while capture is
    /// off or the tenant is not connected).
    async fn engine(&self, tenant: &TenantId) -> Result<Option<SyncEngine>, WorkerError> {
        if let Some(engine) = self.engines.get(tenant) {
            return Ok(Some(engine.clone()));
        }
        match &self.runtime {
            Some(runtime) => Ok(runtime.engine(tenant).await?),
            None => Ok(None),
        }
    }

    /// Re-reads the tenant's directory (new users get linked and started) and schedules
    /// the next read; a refusal is retried with backoff, other links keep syncing.
    async fn run_delegation_job(&self, job: &LeasedJob) -> Result<JobOutcome, WorkerError> {
        let Some(runtime) = &self.runtime else {
            return self.drop_job(job, "no runtime for directory jobs").await;
        };
        if !runtime.capture_enabled(&job.tenant).await? {
            return self.drop_job(job, "capture is off").await;
        }
        let worker = &self.config.worker_id;
        let tenant = job.tenant.clone();
        match runtime.rebuild(&tenant, SYSTEM_ACTOR).await {
            Ok(_) => {
                self.store.complete_job(job.id, worker).await?;
                let next_run_ms = clock_ms() + millis(runtime.config().delegation_interval);
                self.store
                    .enqueue_tenant_job(&tenant, DELEGATION_SYNC_JOB, next_run_ms)
                    .await?;
                Ok(JobOutcome::DirectorySynced {
                    tenant,
                    next_run_ms,
                })
            }
            Err(RuntimeError::Store(error)) => Err(error.into()),
            Err(error) => {
                tracing::warn!(tenant = %tenant.as_str(), %error, "directory sync failed");
                let retry_at_ms = clock_ms() + millis(linkage_backoff(&self.config, job.attempts));
                self.store.retry_job(job.id, worker, retry_at_ms).await?;
                Ok(JobOutcome::DirectoryFailed {
                    tenant,
                    retry_at_ms,
                })
            }
        }
    }

    async fn drop_job(
        &self,
        job: &LeasedJob,
        reason: &'static str,
    ) -> Result<JobOutcome, WorkerError> {
        tracing::warn!(job = job.id.0, tenant = %job.tenant.as_str(), reason, "dropping job");
        self.store
            .complete_job(job.id, &self.config.worker_id)
            .await?;
        Ok(JobOutcome::Dropped {
            job: job.id,
            reason,
        })
    }
}

/// `initial × 2^attempts`, capped, plus up to 10% jitter so that links failing together
/// do not retry together.
fn linkage_backoff(config: &WorkerConfig, attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    let base = config
        .initial_backoff
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(config.max_backoff);
    let jitter = rand::thread_rng().gen_range(0.0..=0.1);
    base + base.mul_f64(jitter)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linkage_backoff_doubles_per_failure_up_to_the_cap() {
        let config = WorkerConfig {
            initial_backoff: Duration::from_secs(60),
            max_backoff: Duration::from_secs(3600),
            ..WorkerConfig::default()
        };
        let within = |attempts: i64, base: u64| {
            let delay = linkage_backoff(&config, attempts);
            let base = Duration::from_secs(base);
            assert!(
                delay >= base && delay <= base.mul_f64(1.1),
                "{attempts}: {delay:?}"
            );
        };
        within(0, 60);
        within(1, 120);
        within(3, 480);
        within(6, 3600);
        within(1_000, 3600);
    }
}
