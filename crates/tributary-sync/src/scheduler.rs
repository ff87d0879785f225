//! The worker loop: leases `sync_link` jobs from the store's queue, runs them with the
//! tenant's engine, and schedules what comes next: the next incremental sync after a
//! success, a retry with exponential backoff after a `linkage_error`, nothing after an
//! error an administrator must fix (restarting the link enqueues a job again).

use crate::engine::{LinkOutcome, SyncEngine, clock_ms, may_run};
use rand::Rng;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;
use tributary_store::{JobId, LeasedJob, LinkId, Store, StoreError, TenantId};

/// The job kind that syncs one mailbox link.
pub const SYNC_LINK_JOB: &str = "sync_link";

#[derive(Debug, Clone, PartialEq)]
pub struct WorkerConfig {
    /// Names this worker's leases.
    pub worker_id: String,
    /// How long a leased job is ours; a worker dying mid-job frees it after this.
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
            lease: Duration::from_secs(15 * 60),
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
    /// Not runnable here (unknown tenant or kind, link gone or not runnable): removed.
    Dropped { job: JobId, reason: &'static str },
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Runs jobs for the tenants whose engines it holds.
#[derive(Debug)]
pub struct Worker {
    store: Store,
    config: WorkerConfig,
    engines: HashMap<TenantId, SyncEngine>,
}

impl Worker {
    pub fn new(store: Store, config: WorkerConfig) -> Self {
        Worker {
            store,
            config,
            engines: HashMap::new(),
        }
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

    /// Leases and runs one due job; `None` when none is due.
    pub async fn run_once(&self) -> Result<Option<JobOutcome>, WorkerError> {
        let lease_ms = millis(self.config.lease);
        let leased = self
            .store
            .lease_job(&self.config.worker_id, clock_ms(), lease_ms)
            .await?;
        let Some(job) = leased else {
            return Ok(None);
        };
        Ok(Some(self.run_job(&job).await?))
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
        let (Some(engine), Some(link), true) = (
            self.engines.get(&job.tenant),
            job.link,
            job.kind == SYNC_LINK_JOB,
        ) else {
            return self.drop_job(job, "no engine for this tenant or job").await;
        };
        let links = self.store.links(&job.tenant).await?;
        let Some(view) = links.iter().find(|l| l.id == link && may_run(l.status)) else {
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
