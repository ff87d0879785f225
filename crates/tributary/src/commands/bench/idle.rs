//! Row 5, idle scale: many linked mailboxes with no new mail. The directory is matched
//! and every mailbox backfilled (empty mailboxes, so quickly) in this process; then one
//! `tributary worker` process polls them for one whole poll interval, so every mailbox
//! is polled once in the window whatever the order the backfill left them in. Its CPU
//! and memory are read from `/proc/<pid>`, apart from this process and the emulator.

use super::emulated::{ACTOR, Emulated, sqlite_store, temp_dir, wait_until_synced};
use super::process::{Process, files_bytes};
use super::report::Row;
use super::workers::{StoreLocation, WorkerProcess};
use anyhow::Context;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tributary_emulator::org::{DEFAULT_NOW_MS, OrgConfig};
use tributary_emulator::server::quota::{GmailMethod, QuotaConfig};
use tributary_store::{DATABASE_FILE, MasterKey, TenantId};
use tributary_sync::{EngineConfig, Runtime, WorkerConfig};

const MIB: f64 = 1024.0 * 1024.0;
/// Mailboxes the setup backfills at once (they are nearly empty, so quick to sync).
const SETUP_CONCURRENCY: usize = 8;
/// Let the worker process start (open the store, build its engine) before measuring.
const WORKER_START: Duration = Duration::from_secs(2);

pub struct Sizes {
    pub mailboxes: usize,
    pub poll_seconds: u64,
}

pub async fn run(emulator_threads: &Handle, sizes: &Sizes) -> Row {
    let row = Row::new(
        5,
        "Idle scale",
        format!(
            "~{} mailboxes, no new mail, one worker process, poll {} s, window {} s",
            sizes.mailboxes, sizes.poll_seconds, sizes.poll_seconds
        ),
    );
    match measure(emulator_threads, sizes).await {
        Ok(measured) => measured.into_row(row),
        Err(error) => row.failed(&error),
    }
}

struct Idle {
    mailboxes: usize,
    setup_seconds: f64,
    window_seconds: f64,
    polls: u64,
    cpu_seconds: f64,
    peak_rss: Option<u64>,
    rss: Option<u64>,
    database_bytes: u64,
}

async fn measure(emulator_threads: &Handle, sizes: &Sizes) -> anyhow::Result<Idle> {
    let setup_started = Instant::now();
    // Few messages per user: the coverage conversations still give some mailboxes mail.
    let org = OrgConfig {
        seed: 19,
        users: sizes.mailboxes + sizes.mailboxes / 10,
        messages_per_user: 1,
        now_ms: DEFAULT_NOW_MS,
    };
    let emulated = Emulated::start(emulator_threads, org, QuotaConfig::unlimited()).await?;
    let dir = temp_dir("tributary-bench-idle-")?;
    let store = sqlite_store(dir.path()).await?;
    let key = MasterKey::generate();
    let engine = EngineConfig {
        concurrency: SETUP_CONCURRENCY,
        ..EngineConfig::default()
    };
    let runtime = Runtime::new(
        store.clone(),
        key.clone(),
        emulated.runtime_config(engine, WorkerConfig::default()),
    );
    let tenant = TenantId::new("bench");
    emulated.connect(&runtime, &tenant).await?;
    let mailboxes = store.links(&tenant).await?.len();
    // Capture on queues a sync of every link, due now; the engine backfills them here
    // in one pass (workers would re-read every link per job), so the worker process
    // starts with every mailbox synced and one incremental poll of each due.
    runtime.set_capture_enabled(&tenant, true, ACTOR).await?;
    let engine = runtime
        .engine(&tenant)
        .await?
        .context("no engine for the bench tenant")?;
    engine.sync_all().await?;
    wait_until_synced(&store, &tenant, Duration::from_secs(10)).await?;
    store.close().await;
    drop(runtime);
    let setup_seconds = setup_started.elapsed().as_secs_f64();

    let mut process = WorkerProcess::spawn(
        &StoreLocation::DataDir(dir.path().to_owned()),
        &key,
        &emulated.running.base_url,
        emulated.now_ms,
        "bench-idle",
        sizes.poll_seconds,
    )?;
    let child = Process::Child(process.pid());
    tokio::time::sleep(WORKER_START).await;
    process.ensure_running()?;
    let state = &emulated.running.state;
    state.counters.reset();
    let cpu_before = child.cpu_seconds().unwrap_or(0.0);
    let window_started = Instant::now();
    tokio::time::sleep(Duration::from_secs(sizes.poll_seconds)).await;
    process.ensure_running()?;
    let cpu_seconds = child.cpu_seconds().unwrap_or(0.0) - cpu_before;
    let window_seconds = window_started.elapsed().as_secs_f64();
    let peak_rss = child.peak_rss_bytes();
    let rss = child.rss_bytes();
    let polls = state
        .counters
        .snapshot()
        .methods
        .get(GmailMethod::HistoryList.api_name())
        .map_or(0, |m| m.requests);
    drop(process);
    let database_bytes = files_bytes(dir.path(), DATABASE_FILE);
    emulated.shutdown().await?;
    Ok(Idle {
        mailboxes,
        setup_seconds,
        window_seconds,
        polls,
        cpu_seconds,
        peak_rss,
        rss,
        database_bytes,
    })
}

impl Idle {
    fn into_row(self, mut row: Row) -> Row {
        let per_minute = self.cpu_seconds / self.window_seconds * 60.0;
        row.number("mailboxes", "linked mailboxes", self.mailboxes as f64, 0);
        row.number(
            "polls",
            "polls in the window (history.list calls)",
            self.polls as f64,
            0,
        );
        row.number(
            "cpu_seconds_per_minute",
            "worker CPU seconds per minute",
            per_minute,
            2,
        );
        row.number(
            "cpu_milliseconds_per_poll",
            "worker CPU ms per poll",
            self.cpu_seconds * 1000.0 / self.polls.max(1) as f64,
            2,
        );
        let mib = |bytes: Option<u64>| bytes.map_or(f64::NAN, |b| b as f64 / MIB);
        row.number(
            "peak_rss_mib",
            "worker peak RSS, MiB (VmHWM)",
            mib(self.peak_rss),
            1,
        );
        row.number("rss_mib", "worker RSS at the end, MiB", mib(self.rss), 1);
        row.number(
            "database_mib",
            "SQLite database size, MiB",
            self.database_bytes as f64 / MIB,
            1,
        );
        row.number(
            "setup_seconds",
            "setup: generate, match directory, first sync of every mailbox, s",
            self.setup_seconds,
            1,
        );
        row.note(
            "CPU and RSS are the `tributary worker` process's alone (/proc/<pid>); the \
             emulator and the setup ran in the bench process. The window is one poll \
             interval, so each mailbox is polled about once in it.",
        );
        row
    }
}
