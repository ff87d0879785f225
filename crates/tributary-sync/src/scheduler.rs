//! The worker loop: leases `sync_link` jobs from the store's queue, runs them with the
//! tenant's engine, and schedules what comes next: the next incremental sync after a
//! success, a retry with exponential backoff after a `linkage_error`, nothing after an
//! error an administrator must fix (restarting the link enqueues a job again).

use crate::engine::{LinkOutcome, SyncEngine, clock_ms, may_run};
use crate::pacing::{Pacer, PacingConfig};
use crate::push::PushRun;
use crate::runtime::{DELEGATION_SYNC_JOB, Runtime, RuntimeError};
use rand::Rng;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tributary_store::{
    ConnectionKind, HeldLeases, JobId, LeaseScope, LeasedJob, LinkId, PushMode, SYSTEM_ACTOR,
    Store, StoreError, TenantId,
};

/// Jobs one process runs at once by default. Gmail's project budget (1,200,000 units a
/// minute) is 80 times the per-user one (15,000): a backfill runs at its mailbox's
/// budget, so 80 backfills at once are what one process needs to spend the project's.
/// Twice that, so that the backfill slots (three quarters) exceed 80: more mailboxes
/// share the project budget at once, each a little below its own, instead of running
/// in waves whose last one (a whole mailbox's backfill at its per-user budget) would
/// stretch the organization's backfill past the project's bound (`bench` row 7).
pub const DEFAULT_CONCURRENCY: usize = 160;

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
    /// When a link on push (docs/push.md) is synced again: a slow safety poll for
    /// notifications the provider dropped. A link whose channel falls due for renewal
    /// sooner is synced by then (but not sooner than `poll_interval`).
    pub push_poll_interval: Duration,
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
            push_poll_interval: Duration::from_secs(3600),
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

    /// How long a worker waits before it spends more of a budget: by then every other
    /// live worker has renewed its heartbeat and made room.
    fn settle(&self) -> Duration {
        self.renew_every().mul_f64(1.25)
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
    /// Registered engines, by tenant and the provider each syncs.
    engines: HashMap<(TenantId, &'static str), SyncEngine>,
    runtime: Option<Runtime>,
    pacing: Arc<Pacing>,
}

/// This worker's pacers, one per tenant, each spending this worker's share of the
/// tenant's project budget: its part of the jobs of that tenant the live workers hold
/// (the budget goes where the jobs that spend it run, so a worker that leased every
/// job while another joined gets the whole budget, and an idle worker none), or
/// 1 / live workers for a tenant whose jobs nobody holds. Alone, a worker has every
/// budget whole.
#[derive(Debug)]
struct Pacing {
    pacers: Mutex<HashMap<TenantId, Arc<Pacer>>>,
    shares: Mutex<Shares>,
}

#[derive(Debug)]
struct Shares {
    /// Live workers at the last heartbeat, this one included.
    live_workers: u32,
    by_tenant: HashMap<TenantId, TenantShare>,
}

impl Shares {
    /// The share of a tenant whose jobs nobody holds.
    fn unheld(&self) -> f64 {
        1.0 / f64::from(self.live_workers.max(1))
    }
}

/// One tenant's share, steered so that the workers together never spend more than
/// the budget: a share comes down at once, but goes up only to what it was due a
/// settling time ago, once every other worker has renewed its heartbeat and come
/// down by what this one gained (jobs leased here, or finished elsewhere).
#[derive(Debug)]
struct TenantShare {
    current: f64,
    /// Higher shares due, and since when.
    raises: Vec<(f64, Instant)>,
}

impl TenantShare {
    fn steer(&mut self, target: f64, now: Instant, settle: Duration) -> f64 {
        if target <= self.current {
            self.current = target;
            self.raises.clear();
            return target;
        }
        self.raises.push((target, now));
        let settled = self
            .raises
            .iter()
            .filter(|(_, since)| now.duration_since(*since) >= settle)
            .map(|(share, _)| *share)
            .fold(self.current, f64::max);
        self.current = settled.min(target);
        let current = self.current;
        self.raises
            .retain(|(share, since)| now.duration_since(*since) < settle && *share > current);
        current
    }
}

impl Pacing {
    fn new() -> Arc<Self> {
        Arc::new(Pacing {
            pacers: Mutex::new(HashMap::new()),
            shares: Mutex::new(Shares {
                live_workers: 1,
                by_tenant: HashMap::new(),
            }),
        })
    }

    fn pacer(&self, tenant: &TenantId, config: &PacingConfig) -> Arc<Pacer> {
        let share = {
            let shares = lock(&self.shares);
            shares
                .by_tenant
                .get(tenant)
                .map_or_else(|| shares.unheld(), |share| share.current)
        };
        let mut pacers = lock(&self.pacers);
        Arc::clone(
            pacers
                .entry(tenant.clone())
                .or_insert_with(|| Arc::new(Pacer::with_project_share(config.clone(), share))),
        )
    }

    /// Steers every tenant's share to this worker's part of its live leases (`held`),
    /// `live_workers` being alive (`None`: as many as at the last heartbeat).
    fn set_shares(
        &self,
        live_workers: Option<u32>,
        held: &[HeldLeases],
        now: Instant,
        settle: Duration,
    ) {
        let mut shares = lock(&self.shares);
        if let Some(live) = live_workers {
            shares.live_workers = live.max(1);
        }
        let alone = shares.live_workers <= 1;
        let unheld = shares.unheld();
        let pacers = lock(&self.pacers);
        let tenants: HashSet<TenantId> = held
            .iter()
            .map(|h| h.tenant.clone())
            .chain(pacers.keys().cloned())
            .chain(shares.by_tenant.keys().cloned())
            .collect();
        for tenant in tenants {
            let target = match held.iter().find(|h| h.tenant == tenant) {
                _ if alone => 1.0,
                Some(h) if h.live > 0 => f64::from(h.mine) / f64::from(h.live),
                _ => unheld,
            };
            let entry = shares
                .by_tenant
                .entry(tenant.clone())
                .or_insert_with(|| TenantShare {
                    current: unheld,
                    raises: Vec::new(),
                });
            let share = if alone {
                entry.raises.clear();
                entry.current = target;
                target
            } else {
                entry.steer(target, now, settle)
            };
            if let Some(pacer) = pacers.get(&tenant) {
                pacer.set_project_share(share);
            }
        }
    }

    /// This worker's share of `tenant`'s project budget now.
    #[cfg(test)]
    fn share(&self, tenant: &TenantId) -> f64 {
        let shares = lock(&self.shares);
        shares
            .by_tenant
            .get(tenant)
            .map_or_else(|| shares.unheld(), |share| share.current)
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

    /// Runs `engine`'s tenant's links of `engine`'s provider here (a tenant
    /// mid-migration registers one engine per provider).
    pub fn register(&mut self, engine: SyncEngine) {
        let key = (engine.tenant().clone(), engine.connector().kind().as_str());
        self.engines.insert(key, engine);
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
            let wait = self.config.settle();
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
        let mut leased = false;
        while running.tasks.len() < self.config.concurrency.max(1) {
            let backfills = running.jobs.values().filter(|job| job.backfill).count();
            let scope = if backfills < self.config.backfill_slots() {
                LeaseScope::Any
            } else {
                LeaseScope::FreshMailOnly
            };
            let Some(job) = self.lease(scope).await? else {
                break;
            };
            leased = true;
            let worker = Arc::clone(self);
            let leased = job.clone();
            let task = running
                .tasks
                .spawn(async move { worker.run_leased(&leased).await.map(|_| ()) });
            running.jobs.insert(task.id(), job);
        }
        if leased {
            // The jobs just leased bring their budget along (once the others made room).
            self.steer_shares(None).await?;
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
        self.steer_shares(Some(live.count)).await?;
        Ok(live.count)
    }

    /// Steers every tenant's project share to this worker's part of the tenant's live
    /// jobs (see [`Pacing`]).
    async fn steer_shares(&self, live_workers: Option<u32>) -> Result<(), WorkerError> {
        let held = self
            .store
            .held_leases(&self.config.worker_id, clock_ms())
            .await?;
        self.pacing
            .set_shares(live_workers, &held, Instant::now(), self.config.settle());
        Ok(())
    }

    async fn leave(&self) -> Result<(), WorkerError> {
        Ok(self.store.worker_stopped(&self.config.worker_id).await?)
    }

    async fn run_job(&self, job: &LeasedJob) -> Result<JobOutcome, WorkerError> {
        if job.kind == DELEGATION_SYNC_JOB {
            return self.run_delegation_job(job).await;
        }
        let (Some(link), true) = (job.link, job.kind == SYNC_LINK_JOB) else {
            return self.drop_job(job, "no engine for this tenant or job").await;
        };
        let view = self.store.link(&job.tenant, link).await?;
        let Some(view) = view.filter(|l| may_run(l.status)) else {
            return self.drop_job(job, "link gone or not runnable").await;
        };
        // Each link runs with its own provider's engine.
        let Some(engine) = self.engine(&job.tenant, view.provider).await? else {
            return self.drop_job(job, "no engine for this tenant or job").await;
        };
        let backoff = linkage_backoff(&self.config, job.attempts);
        let (outcome, push) = engine.run_link(link, &view.mailbox, backoff).await?;
        let worker = &self.config.worker_id;
        match outcome {
            LinkOutcome::Synced { .. } => {
                self.store.complete_job(job.id, worker).await?;
                let next_run_ms = next_sync_ms(&self.config, push.as_ref(), clock_ms());
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

    /// The tenant's engine for `provider`: registered, or built by the runtime (`None`
    /// while capture is off or the tenant is not connected to `provider`).
    async fn engine(
        &self,
        tenant: &TenantId,
        provider: ConnectionKind,
    ) -> Result<Option<SyncEngine>, WorkerError> {
        let registered = self.engines.get(&(tenant.clone(), provider.as_str()));
        let engine = match (registered, &self.runtime) {
            (Some(engine), _) => Some(engine.clone()),
            (None, Some(runtime)) => runtime.engine_for(tenant, provider).await?,
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

/// When a link that just synced is synced again: after the poll interval, or the
/// slower safety poll while it is on push, yet by the time its first channel falls due
/// for renewal (never sooner than the poll interval).
fn next_sync_ms(config: &WorkerConfig, push: Option<&PushRun>, now_ms: i64) -> i64 {
    let polled = now_ms.saturating_add(millis(config.poll_interval));
    let Some(push) = push.filter(|push| push.mode == PushMode::Push) else {
        return polled;
    };
    let safety = now_ms.saturating_add(millis(config.push_poll_interval.max(config.poll_interval)));
    push.renew_due_ms
        .map_or(safety, |due| safety.min(due.max(polled)))
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(tenant: &TenantId, mine: u32, live: u32) -> HeldLeases {
        HeldLeases {
            tenant: tenant.clone(),
            mine,
            live,
        }
    }

    const SETTLE: Duration = Duration::from_secs(25);

    #[test]
    fn a_worker_holding_every_job_gets_the_whole_budget_once_the_others_settled() {
        let pacing = Pacing::new();
        let acme = TenantId::new("acme");
        let start = Instant::now();
        // A second worker is alive and nobody holds Acme's jobs: half each.
        pacing.set_shares(Some(2), &[], start, SETTLE);
        let pacer = pacing.pacer(&acme, &PacingConfig::default());
        assert!((pacer.project_share() - 0.5).abs() < 1e-9);
        // This worker leased all 107 of them (the other joined too late): the whole
        // budget is due, but only once the other has seen it and come down.
        pacing.set_shares(None, &[held(&acme, 107, 107)], start, SETTLE);
        assert!((pacing.share(&acme) - 0.5).abs() < 1e-9);
        let settled = start + SETTLE;
        pacing.set_shares(None, &[held(&acme, 107, 107)], settled, SETTLE);
        assert!((pacing.share(&acme) - 1.0).abs() < 1e-9);
        assert!((pacer.project_share() - 1.0).abs() < 1e-9);
        // The other took over a quarter of the jobs: down at once.
        let later = settled + Duration::from_secs(1);
        pacing.set_shares(None, &[held(&acme, 75, 100)], later, SETTLE);
        assert!((pacer.project_share() - 0.75).abs() < 1e-9);
    }

    #[test]
    fn a_share_rises_only_to_what_was_due_a_settling_time_ago() {
        let pacing = Pacing::new();
        let acme = TenantId::new("acme");
        let start = Instant::now();
        pacing.set_shares(Some(2), &[held(&acme, 0, 4)], start, SETTLE);
        assert!(
            pacing.share(&acme).abs() < 1e-9,
            "an idle worker spends nothing"
        );
        pacing.set_shares(None, &[held(&acme, 1, 4)], start, SETTLE);
        let half_way = start + SETTLE / 2;
        pacing.set_shares(None, &[held(&acme, 3, 4)], half_way, SETTLE);
        assert!(pacing.share(&acme).abs() < 1e-9);
        // The first raise settled, the second not yet.
        pacing.set_shares(None, &[held(&acme, 3, 4)], start + SETTLE, SETTLE);
        assert!((pacing.share(&acme) - 0.25).abs() < 1e-9);
        pacing.set_shares(None, &[held(&acme, 3, 4)], half_way + SETTLE, SETTLE);
        assert!((pacing.share(&acme) - 0.75).abs() < 1e-9);
    }

    #[test]
    fn alone_a_worker_has_every_budget_whole_at_once() {
        let pacing = Pacing::new();
        let acme = TenantId::new("acme");
        let globex = TenantId::new("globex");
        let start = Instant::now();
        pacing.set_shares(
            Some(2),
            &[held(&acme, 1, 2), held(&globex, 0, 3)],
            start,
            SETTLE,
        );
        assert!((pacing.share(&acme) - 0.5).abs() < 1e-9);
        // The other worker's heartbeat expired: nobody else spends.
        pacing.set_shares(Some(1), &[held(&acme, 1, 1)], start, SETTLE);
        assert!((pacing.share(&acme) - 1.0).abs() < 1e-9);
        assert!((pacing.share(&globex) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_link_on_push_is_polled_slowly_but_by_its_renewal() {
        let config = WorkerConfig {
            poll_interval: Duration::from_secs(300),
            push_poll_interval: Duration::from_secs(3600),
            ..WorkerConfig::default()
        };
        let now = 1_000_000;
        let on = |renew_due_ms| PushRun {
            mode: PushMode::Push,
            renew_due_ms,
        };
        assert_eq!(next_sync_ms(&config, None, now), now + 300_000);
        let polling = PushRun {
            mode: PushMode::Polling,
            renew_due_ms: Some(now + 10_000_000),
        };
        assert_eq!(next_sync_ms(&config, Some(&polling), now), now + 300_000);
        assert_eq!(next_sync_ms(&config, Some(&on(None)), now), now + 3_600_000);
        let far = on(Some(now + 7 * 86_400_000));
        assert_eq!(next_sync_ms(&config, Some(&far), now), now + 3_600_000);
        // A renewal due in 20 minutes brings the safety poll forward to it…
        let soon = on(Some(now + 1_200_000));
        assert_eq!(next_sync_ms(&config, Some(&soon), now), now + 1_200_000);
        // …but never sooner than the ordinary poll.
        let overdue = on(Some(0));
        assert_eq!(next_sync_ms(&config, Some(&overdue), now), now + 300_000);
    }

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
