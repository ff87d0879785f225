//! The worker loop: leases `sync_link` jobs from the store's queue, runs them with the
//! tenant's engine, and schedules what comes next: the next incremental sync after a
//! success, a retry with exponential backoff after a `linkage_error`, nothing after an
//! error an administrator must fix (restarting the link enqueues a job again).

use crate::engine::{LinkOutcome, SyncEngine, clock_ms, may_run};
use crate::pacing::{Pacer, PacingConfig};
use crate::runtime::{DELEGATION_SYNC_JOB, Runtime, RuntimeError};
use rand::Rng;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tributary_store::{
    JobId, LeaseScope, LeasedJob, LinkId, SYSTEM_ACTOR, Store, StoreError, TenantId,
};

/// Jobs one process runs at once by default. Gmail's project budget (1,200,000 units a
/// minute) is 80 times the per-user one (15,000): a backfill runs at its mailbox's
/// budget, so 80 backfills at once are what one process needs to spend the project's.
pub const DEFAULT_CONCURRENCY: usize = 80;

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
    /// Jobs [`Worker::run`] runs at once. A quarter of them (rounded down) are kept for
    /// fresh mail: backfills get the rest.
    pub concurrency: usize,
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
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

impl WorkerConfig {
    /// Slots backfills may hold: the others wait for fresh mail (incremental syncs,
    /// directory reads), so new mail is captured on time while backfills run.
    pub fn backfill_slots(&self) -> usize {
        let slots = self.concurrency.max(1);
        slots - slots / 4
    }

    /// How often a running job's lease and the worker's heartbeat are renewed.
    fn renew_every(&self) -> Duration {
        (self.lease / 3).max(Duration::from_millis(50))
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
    #[error("a job's task died: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Runs jobs for the tenants whose engines it holds, or, given a [`Runtime`], for every
/// tenant, building engines from the store. Clones share pacing.
#[derive(Debug, Clone)]
pub struct Worker {
    store: Store,
    config: WorkerConfig,
    engines: HashMap<TenantId, SyncEngine>,
    runtime: Option<Runtime>,
    pacing: Arc<Pacing>,
}

/// This worker's pacers, one per tenant, each spending this worker's share of the
/// tenant's project budget (1 / live workers, from the heartbeats).
#[derive(Debug)]
struct Pacing {
    pacers: Mutex<HashMap<TenantId, Arc<Pacer>>>,
    project_share: Mutex<f64>,
}

impl Pacing {
    fn new() -> Arc<Self> {
        Arc::new(Pacing {
            pacers: Mutex::new(HashMap::new()),
            project_share: Mutex::new(1.0),
        })
    }

    fn pacer(&self, tenant: &TenantId, config: &PacingConfig) -> Arc<Pacer> {
        let share = *lock(&self.project_share);
        let mut pacers = lock(&self.pacers);
        Arc::clone(
            pacers
                .entry(tenant.clone())
                .or_insert_with(|| Arc::new(Pacer::with_project_share(config.clone(), share))),
        )
    }

    fn set_project_share(&self, share: f64) {
        *lock(&self.project_share) = share;
        for pacer in lock(&self.pacers).values() {
            pacer.set_project_share(share);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Worker {
    pub fn new(store: Store, config: WorkerConfig) -> Self {
        Worker {
            store,
            config,
            engines: HashMap::new(),
            runtime: None,
            pacing: Pacing::new(),
        }
    }

    /// A worker for every tenant of the runtime's store, with the runtime's settings.
    pub fn for_runtime(runtime: Runtime) -> Self {
        Worker {
            store: runtime.store().clone(),
            config: runtime.config().worker.clone(),
            engines: HashMap::new(),
            runtime: Some(runtime),
            pacing: Pacing::new(),
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
        let Some(job) = self.lease(LeaseScope::Any).await? else {
            return Ok(None);
        };
        self.run_leased(&job).await.map(Some)
    }

    async fn lease(&self, scope: LeaseScope) -> Result<Option<LeasedJob>, WorkerError> {
        let lease_ms = millis(self.config.lease);
        let worker = &self.config.worker_id;
        Ok(self
            .store
            .lease_job_in(worker, clock_ms(), lease_ms, scope)
            .await?)
    }

    /// Runs a leased job, renewing its lease every third of it.
    async fn run_leased(&self, job: &LeasedJob) -> Result<JobOutcome, WorkerError> {
        let lease_ms = millis(self.config.lease);
        let worker = &self.config.worker_id;
        let link = job.link.map_or(-1, |l| l.0);
        tracing::debug!(job = job.id.0, link, worker = %worker, backfill = job.backfill, at_ms = clock_ms(), "job started");
        // The renewals run beside the job, both polled: awaiting a renewal in a
        // `select!` arm would stop polling the job, which may hold the store's write
        // turn the renewal waits for.
        let renewals = async {
            loop {
                tokio::time::sleep(self.config.renew_every()).await;
                // A failed renewal is tried again at the next one: the lease lasts three
                // renewals, and the job must not die of a busy database.
                let until = clock_ms().saturating_add(lease_ms);
                match self.store.extend_lease(job.id, worker, until).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(job = job.id.0, link, "lease lost while running"),
                    Err(error) => tracing::warn!(job = job.id.0, link, %error, "lease not renewed"),
                }
            }
        };
        let outcome = tokio::select! {
            outcome = self.run_job(job) => outcome?,
            never = renewals => never,
        };
        tracing::debug!(job = job.id.0, link, worker = %worker, at_ms = clock_ms(), "job finished");
        Ok(outcome)
    }

    /// Runs due jobs, up to [`WorkerConfig::concurrency`] at once, until `shutdown`
    /// completes. Each job leases and renews its own lease; backfills hold at most
    /// [`WorkerConfig::backfill_slots`]. The worker's heartbeat is renewed with the
    /// leases and sets its share of every tenant's project budget; a worker joining
    /// others waits one renewal before it spends, so that they have made room.
    ///
    /// On shutdown, running jobs are stopped where they are (every page they committed
    /// stays, with its cursor) and given back to the queue at once, so another worker
    /// (or the next start) takes them over without waiting for the lease to expire.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<(), WorkerError> {
        tokio::pin!(shutdown);
        let worker = Arc::new(self.clone());
        let joined = worker.heartbeat().await?;
        if joined > 1 {
            let wait = self.config.renew_every().mul_f64(1.25);
            tokio::select! {
                () = &mut shutdown => return worker.leave().await,
                () = tokio::time::sleep(wait) => {}
            }
            worker.heartbeat().await?;
        }
        let mut running = Running::default();
        let outcome = worker.serve(&mut running, &mut shutdown).await;
        running.tasks.abort_all();
        while running.tasks.join_next().await.is_some() {}
        for job in running.jobs.values() {
            let given_back = self
                .store
                .release_job(job.id, &self.config.worker_id, clock_ms())
                .await;
            if let Err(error) = given_back {
                tracing::warn!(job = job.id.0, %error, "could not give a job back; its lease will expire");
            }
        }
        let left = worker.leave().await;
        outcome.and(left)
    }

    /// The loop of [`Worker::run`]: fills free slots, then waits for a job to finish, the
    /// next heartbeat, a due job (polled every `idle_sleep`) or the shutdown.
    async fn serve(
        self: &Arc<Self>,
        running: &mut Running,
        shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Result<(), WorkerError> {
        let mut next_heartbeat = Instant::now() + self.config.renew_every();
        loop {
            if Instant::now() >= next_heartbeat {
                self.heartbeat().await?;
                next_heartbeat = Instant::now() + self.config.renew_every();
            }
            self.fill(running).await?;
            let full = running.tasks.len() >= self.config.concurrency.max(1);
            tokio::select! {
                () = shutdown.as_mut() => return Ok(()),
                Some(joined) = running.tasks.join_next_with_id() => {
                    let (id, outcome) = joined.inspect_err(|error| {
                        running.jobs.remove(&error.id());
                    })?;
                    let job = running.jobs.remove(&id);
                    if let (Err(error), Some(job)) = (outcome, job) {
                        self.give_back_failed(&job, &error).await;
                    }
                }
                () = tokio::time::sleep_until(next_heartbeat) => {}
                () = tokio::time::sleep(self.config.idle_sleep), if !full => {}
            }
        }
    }

    /// Leases due jobs into free slots: backfills while backfill slots are free, then
    /// fresh mail only.
    async fn fill(self: &Arc<Self>, running: &mut Running) -> Result<(), WorkerError> {
        while running.tasks.len() < self.config.concurrency.max(1) {
            let backfills = running.jobs.values().filter(|job| job.backfill).count();
            let scope = if backfills < self.config.backfill_slots() {
                LeaseScope::Any
            } else {
                LeaseScope::FreshMailOnly
            };
            let Some(job) = self.lease(scope).await? else {
                return Ok(());
            };
            let worker = Arc::clone(self);
            let leased = job.clone();
            let task = running
                .tasks
                .spawn(async move { worker.run_leased(&leased).await.map(|_| ()) });
            running.jobs.insert(task.id(), job);
        }
        Ok(())
    }

    /// A job that ended in an error of ours (the store, the runtime), not the
    /// provider's: logged and given back with backoff, while the other jobs go on. Its
    /// lease expires anyway if even that fails.
    async fn give_back_failed(&self, job: &LeasedJob, error: &WorkerError) {
        tracing::error!(job = job.id.0, tenant = %job.tenant.as_str(), %error, "job failed");
        let retry_at_ms = clock_ms() + millis(linkage_backoff(&self.config, job.attempts));
        if let Err(error) = self
            .store
            .retry_job(job.id, &self.config.worker_id, retry_at_ms)
            .await
        {
            tracing::warn!(job = job.id.0, %error, "could not give a failed job back");
        }
    }

    /// Renews this worker's heartbeat and paces at its share of every project budget;
    /// answers how many workers are alive.
    async fn heartbeat(&self) -> Result<u32, WorkerError> {
        let now = clock_ms();
        let until = now.saturating_add(millis(self.config.lease));
        let live = self
            .store
            .worker_heartbeat(&self.config.worker_id, now, until)
            .await?;
        self.pacing
            .set_project_share(1.0 / f64::from(live.count.max(1)));
        Ok(live.count)
    }

    async fn leave(&self) -> Result<(), WorkerError> {
        Ok(self.store.worker_stopped(&self.config.worker_id).await?)
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
        let engine = match (self.engines.get(tenant), &self.runtime) {
            (Some(engine), _) => Some(engine.clone()),
            (None, Some(runtime)) => runtime.engine(tenant).await?,
            (None, None) => None,
        };
        // This worker's pacer for the tenant: it keeps what the quota was charged
        // across rebuilt engines and spends this worker's share of the project budget.
        Ok(engine.map(|engine| {
            let pacer = self.pacing.pacer(tenant, &engine.config().pacing);
            engine.sharing_pacer(pacer)
        }))
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
                tracing::warn!(tenant = %tenant.as_str(), error = ?error.to_string(), "directory sync failed");
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

/// The jobs a running worker holds, by the task running each.
#[derive(Default)]
struct Running {
    tasks: JoinSet<Result<(), WorkerError>>,
    jobs: HashMap<tokio::task::Id, LeasedJob>,
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
