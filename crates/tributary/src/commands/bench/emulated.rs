//! What the emulator-driven rows share: the emulator on its own threads (so its CPU can
//! be told apart from the engine's), a tenant connected through the runtime as an admin
//! would, in-process workers, and waiting until every link has synced.

use anyhow::Context;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tributary_emulator::org::OrgConfig;
use tributary_emulator::server::quota::QuotaConfig;
use tributary_emulator::server::{EmulatorConfig, OrgSource, RunningEmulator, start};
use tributary_emulator::truth::GroundTruth;
use tributary_google::GoogleEndpoints;
use tributary_store::{LinkStatus, LinkView, Store, TenantId};
use tributary_sync::{EngineConfig, Runtime, RuntimeConfig, Worker, WorkerConfig};

/// The emulator's runtime threads are named so; `process::threads_cpu_seconds` sums them.
pub const EMULATOR_THREAD: &str = "bench-emulator";
pub const ACTOR: &str = "tributary bench";

/// The emulator's own multi-threaded runtime. Dropped outside any async context.
pub fn emulator_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(EMULATOR_THREAD)
        .enable_all()
        .build()
        .context("cannot start the emulator's runtime")
}

pub struct Emulated {
    pub running: RunningEmulator,
    pub truth: GroundTruth,
    pub now_ms: i64,
}

impl Emulated {
    /// Generates `org` and serves it on `handle`'s threads.
    pub async fn start(
        handle: &Handle,
        org: OrgConfig,
        quota: QuotaConfig,
    ) -> anyhow::Result<Self> {
        let now_ms = org.now_ms;
        let config = EmulatorConfig {
            organization: OrgSource::Generate(org),
            quota,
            ..EmulatorConfig::default()
        };
        let running = handle
            .spawn(start(config))
            .await
            .context("the emulator's start-up panicked")?
            .context("cannot start the emulator")?;
        let truth = running
            .truth
            .clone()
            .context("the generated organization has no ground truth")?;
        Ok(Emulated {
            running,
            truth,
            now_ms,
        })
    }

    pub fn endpoints(&self) -> GoogleEndpoints {
        GoogleEndpoints::from_base_url(&self.running.base_url)
    }

    /// The runtime settings every row starts from: the emulator's endpoints and its
    /// organization's "now" for the backfill window.
    pub fn runtime_config(&self, engine: EngineConfig, worker: WorkerConfig) -> RuntimeConfig {
        RuntimeConfig {
            endpoints: self.endpoints(),
            engine: EngineConfig {
                reference_now_ms: Some(self.now_ms),
                ..engine
            },
            worker,
            ..RuntimeConfig::default()
        }
    }

    /// Creates `tenant`, uploads the key and matches the directory (capture still off).
    pub async fn connect(&self, runtime: &Runtime, tenant: &TenantId) -> anyhow::Result<()> {
        runtime.store().create_tenant(tenant, "Bench").await?;
        let key_json = serde_json::to_vec(&self.running.key_file)?;
        runtime
            .connect_google(tenant, &key_json, &self.running.info.admin_email, ACTOR)
            .await?;
        runtime.rebuild(tenant, ACTOR).await?;
        Ok(())
    }

    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.running
            .shutdown()
            .await
            .context("the emulator did not stop cleanly")
    }
}

/// `count` workers in this process, stopped when `stop` turns true.
pub struct Workers {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<Result<(), tributary_sync::WorkerError>>>,
}

impl Workers {
    pub fn spawn(runtime: &Runtime, count: usize) -> Self {
        let (stop, stopped) = watch::channel(false);
        let tasks = (0..count.max(1))
            .map(|index| {
                let worker = Worker::for_runtime(runtime.clone()).named(format!("bench-{index}"));
                let mut stopped = stopped.clone();
                tokio::spawn(async move {
                    worker
                        .run(async move {
                            let _ = stopped.wait_for(|s| *s).await;
                        })
                        .await
                })
            })
            .collect();
        Workers { stop, tasks }
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        for task in self.tasks {
            task.await.context("a worker panicked")??;
        }
        Ok(())
    }
}

/// Waits until every link has synced once and is idle; answers how long that took. A
/// link stopped on an error fails the wait with the provider's message.
/// The organization's external contacts' addresses (those at a company): the senders
/// of the mail the latency rows deliver.
pub fn external_senders(truth: &GroundTruth) -> Vec<String> {
    truth
        .contacts
        .iter()
        .filter(|c| c.company.is_some())
        .map(|c| c.address.clone())
        .collect()
}

/// Fails when a link stopped for an admin (its credentials or rights refused): waiting
/// longer would not sync it.
pub fn fail_if_stopped(links: &[LinkView]) -> anyhow::Result<()> {
    let Some(stuck) = links.iter().find(|l| {
        matches!(
            l.status,
            LinkStatus::AuthenticationError | LinkStatus::Unauthorized
        )
    }) else {
        return Ok(());
    };
    anyhow::bail!(
        "link {} stopped: {:?} {}",
        stuck.mailbox,
        stuck.status,
        stuck.provider_message.clone().unwrap_or_default()
    )
}

pub async fn wait_until_synced(
    store: &Store,
    tenant: &TenantId,
    limit: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let links = store.links(tenant).await?;
        fail_if_stopped(&links)?;
        let synced = links
            .iter()
            .filter(|l| l.status == LinkStatus::Idle && l.last_summary.is_some())
            .count();
        if !links.is_empty() && synced == links.len() {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            let waiting: Vec<String> = links
                .iter()
                .filter(|l| l.status != LinkStatus::Idle || l.last_summary.is_none())
                .take(5)
                .map(|l| {
                    format!(
                        "{} {:?} {}",
                        l.mailbox,
                        l.status,
                        l.provider_message.clone().unwrap_or_default()
                    )
                })
                .collect();
            anyhow::bail!(
                "{synced} of {} links synced after {limit:?}; waiting: {}",
                links.len(),
                waiting.join("; ")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A temporary data directory for one row's SQLite store.
pub fn temp_dir(prefix: &str) -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .context("cannot create a temporary directory")
}

pub async fn sqlite_store(dir: &Path) -> anyhow::Result<Store> {
    Store::open_in_data_dir(dir)
        .await
        .with_context(|| format!("cannot open a SQLite store in {}", dir.display()))
}
