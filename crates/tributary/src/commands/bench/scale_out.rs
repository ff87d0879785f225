//! Row 6, scale-out: the same organization backfilled on PostgreSQL by one, then by two
//! `tributary worker` processes sharing the job queue (quotas off, so the workers are
//! the bottleneck). A worker process syncs one mailbox at a time.

use super::emulated::{ACTOR, Emulated};
use super::postgres::TempDatabase;
use super::process::Process;
use super::report::Row;
use super::verify;
use super::workers::{StoreLocation, WorkerProcess};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tributary_emulator::org::{DEFAULT_NOW_MS, OrgConfig};
use tributary_emulator::server::quota::{GmailMethod, QuotaConfig};
use tributary_store::{LinkStatus, MasterKey, Store, TenantId};
use tributary_sync::{EngineConfig, Runtime, WorkerConfig};

pub struct Sizes {
    pub users: usize,
    pub messages_per_user: usize,
}

pub async fn run(emulator_threads: &Handle, sizes: &Sizes, postgres_url: &str) -> Vec<Row> {
    let variant = |workers: usize| {
        format!(
            "PostgreSQL, {workers} worker process{}, {} users, ~{} messages each",
            if workers == 1 { "" } else { "es" },
            sizes.users,
            sizes.messages_per_user
        )
    };
    let rows = || [1, 2].map(|n| Row::new(6, "Scale-out", variant(n)));
    if let Err(reason) = TempDatabase::create(postgres_url) {
        return rows()
            .into_iter()
            .map(|row| row.skipped(reason.clone()))
            .collect();
    }
    let org = OrgConfig {
        seed: 23,
        users: sizes.users,
        messages_per_user: sizes.messages_per_user,
        now_ms: DEFAULT_NOW_MS,
    };
    let emulated = match Emulated::start(emulator_threads, org, QuotaConfig::unlimited()).await {
        Ok(emulated) => emulated,
        Err(error) => return rows().into_iter().map(|row| row.failed(&error)).collect(),
    };
    let mut out = Vec::new();
    let mut single_rate = None;
    for (workers, row) in [1, 2].into_iter().zip(rows()) {
        let row = match measure(&emulated, workers, postgres_url).await {
            Ok(run) => {
                let rate = run.fetched / run.seconds;
                let speedup = single_rate.map(|single| rate / single);
                single_rate.get_or_insert(rate);
                run.into_row(row, workers, speedup)
            }
            Err(error) => row.failed(&error),
        };
        out.push(row);
    }
    if let Err(error) = emulated.shutdown().await {
        eprintln!("warning: {error:#}");
    }
    out
}

struct ScaleRun {
    seconds: f64,
    fetched: f64,
    cpu_per_process: Vec<f64>,
    check: verify::CaptureCheck,
}

async fn measure(
    emulated: &Emulated,
    workers: usize,
    postgres_url: &str,
) -> anyhow::Result<ScaleRun> {
    let database = TempDatabase::create(postgres_url).map_err(anyhow::Error::msg)?;
    let store = Store::open(&database.url).await?;
    let key = MasterKey::generate();
    let runtime = Runtime::new(
        store.clone(),
        key.clone(),
        emulated.runtime_config(EngineConfig::default(), WorkerConfig::default()),
    );
    let tenant = TenantId::new("bench");
    emulated.connect(&runtime, &tenant).await?;
    emulated.running.state.counters.reset();
    runtime.set_capture_enabled(&tenant, true, ACTOR).await?;
    let started = Instant::now();
    let mut processes = (0..workers)
        .map(|index| {
            WorkerProcess::spawn(
                &StoreLocation::Url(database.url.clone()),
                &key,
                &emulated.running.base_url,
                emulated.now_ms,
                &format!("bench-scale-{index}"),
                WorkerConfig::default().poll_interval.as_secs(),
            )
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let waited = wait_for_workers(&store, &tenant, &mut processes).await;
    let seconds = started.elapsed().as_secs_f64();
    let cpu_per_process = processes
        .iter()
        .map(|p| Process::Child(p.pid()).cpu_seconds().unwrap_or(f64::NAN))
        .collect();
    drop(processes);
    waited?;
    let fetched = emulated
        .running
        .state
        .counters
        .snapshot()
        .methods
        .get(GmailMethod::MessagesGet.api_name())
        .map_or(0.0, |m| (m.requests - m.rate_limited) as f64);
    let check = verify::check(&store, &tenant, &emulated.truth).await?;
    store.close().await;
    drop(database);
    Ok(ScaleRun {
        seconds,
        fetched,
        cpu_per_process,
        check,
    })
}

/// Like `wait_until_synced`, but fails at once when a worker process dies.
async fn wait_for_workers(
    store: &Store,
    tenant: &TenantId,
    processes: &mut [WorkerProcess],
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        for process in processes.iter_mut() {
            process.ensure_running()?;
        }
        let links = store.links(tenant).await?;
        if links
            .iter()
            .all(|l| l.status == LinkStatus::Idle && l.last_summary.is_some())
        {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "the workers did not finish within 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl ScaleRun {
    fn into_row(self, mut row: Row, workers: usize, speedup: Option<f64>) -> Row {
        let rate = self.fetched / self.seconds;
        row.number("messages_per_second", "messages/s, all workers", rate, 0);
        row.number(
            "messages_per_second_per_worker",
            "messages/s per worker process",
            rate / workers as f64,
            0,
        );
        if let Some(speedup) = speedup {
            row.number("speedup", "speed-up over one worker", speedup, 2);
        }
        row.text(
            "cpu_seconds_per_worker",
            "CPU seconds per worker process",
            self.cpu_per_process
                .iter()
                .map(|s| format!("{s:.2}"))
                .collect::<Vec<_>>()
                .join(" / "),
        );
        row.number(
            "seconds",
            "seconds (workers start → every mailbox idle)",
            self.seconds,
            2,
        );
        row.number("messages_fetched", "messages fetched", self.fetched, 0);
        row.flag(
            "equals_ground_truth",
            "store equals the ground truth",
            self.check.equal,
        );
        if !self.check.equal {
            row.note(format!(
                "{} differences from the ground truth, e.g. {}",
                self.check.differences,
                self.check.examples.join("; ")
            ));
        }
        row
    }
}
