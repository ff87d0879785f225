//! What the binary's process tests share: the sync crate's test support (emulators,
//! stores, the comparison with the ground truth) and real `tributary worker` processes,
//! started on a store, killed with SIGKILL once the capture reaches a point, and waited
//! for until every link is idle.

#![allow(dead_code)] // each test binary uses a different part of this module

#[path = "../../../tributary-sync/tests/common/mod.rs"]
mod sync;

pub use sync::*;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tributary_store::{LinkStatus, MasterKey, Store, TenantId};

/// How long a kill point or an idle store is waited for before the test fails.
const PATIENCE: Duration = Duration::from_secs(180);

/// Where a worker process finds the store.
#[derive(Debug, Clone)]
pub enum Location {
    DataDir(PathBuf),
    Url(String),
}

impl Location {
    /// Where another process opens `database`.
    pub fn of(database: &TestStore) -> Location {
        match (database.url(), database.data_dir()) {
            (Some(url), _) => Location::Url(url.to_owned()),
            (None, Some(dir)) => Location::DataDir(dir.to_owned()),
            (None, None) => panic!("a store another process can open"),
        }
    }
}

/// `tributary worker` on the store at `location`, with the master key in the
/// environment, named `id`, its leases short so that a killed worker's links are taken
/// over quickly, and its warnings on stderr (piped). The caller adds the provider's
/// flags and spawns it.
pub fn worker_command(location: &Location, key: &MasterKey, id: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tributary"));
    command.arg("worker");
    match location {
        Location::DataDir(dir) => command.arg("--data-dir").arg(dir),
        Location::Url(url) => command.arg("--database-url").arg(url),
    };
    command
        .args(["--worker-id", id, "--lease-seconds", "2"])
        .env("TRIBUTARY_MASTER_KEY", key.to_base64())
        .env("TRIBUTARY_LOG", "warn")
        .env_remove("TRIBUTARY_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Starts `command`.
pub fn spawn(mut command: Command) -> Child {
    command.spawn().expect("the worker starts")
}

/// A worker whose stderr is read as it comes (a full pipe would stall it mid-job).
pub struct LoggedWorker {
    pub child: Child,
    said: std::sync::Arc<std::sync::Mutex<String>>,
}

impl LoggedWorker {
    pub fn spawn(command: Command) -> LoggedWorker {
        let mut child = spawn(command);
        let stderr = child.stderr.take().expect("stderr is piped");
        let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = std::sync::Arc::clone(&said);
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
                let Ok(line) = line else { return };
                let mut said = sink.lock().unwrap();
                said.push_str(&line);
                said.push('\n');
            }
        });
        LoggedWorker { child, said }
    }

    /// What the worker said so far.
    pub fn said(&self) -> String {
        self.said.lock().unwrap().clone()
    }
}

/// What a kill point counts in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Captured activities (mail).
    Activities,
    /// Captured meetings (calendars).
    Meetings,
}

impl Counted {
    async fn count(self, store: &Store, tenant: &TenantId) -> i64 {
        match self {
            Counted::Activities => store.count_activities(tenant).await.unwrap(),
            Counted::Meetings => store.count_meetings(tenant).await.unwrap(),
        }
    }
}

/// Kills `worker` with SIGKILL once the store holds at least `activities`, and answers
/// how many it held then. A worker that exits by itself first fails the test, with
/// what it said.
pub async fn kill_at(store: &Store, tenant: &TenantId, worker: &mut Child, activities: i64) -> i64 {
    kill_when(store, tenant, worker, Counted::Activities, activities).await
}

/// Kills `worker` with SIGKILL once the store holds at least `at` of `counted`, and
/// answers how many it held then.
pub async fn kill_when(
    store: &Store,
    tenant: &TenantId,
    worker: &mut Child,
    counted: Counted,
    at: i64,
) -> i64 {
    let start = Instant::now();
    loop {
        let count = counted.count(store, tenant).await;
        if count >= at {
            worker.kill().expect("SIGKILL");
            worker.wait().unwrap();
            return count;
        }
        assert!(start.elapsed() < PATIENCE, "stuck at {count} {counted:?}");
        if let Some(status) = worker.try_wait().unwrap() {
            let mut said = String::new();
            if let Some(mut stderr) = worker.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut stderr, &mut said);
            }
            panic!("the worker exited by itself ({status}): {said}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until every link is idle (each full sync done), or panics after `limit`.
pub async fn wait_until_idle(store: &Store, tenant: &TenantId, limit: Duration) {
    let start = Instant::now();
    loop {
        let links = store.links(tenant).await.unwrap();
        if links.iter().all(|l| l.status == LinkStatus::Idle) {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "links not idle after {limit:?}: {:?}",
            links
                .iter()
                .map(|l| (&l.mailbox, l.status, &l.provider_message))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts a worker four times, killing each with SIGKILL at 10, 35, 60 and 85 % of
/// `total` activities, and answers the counts the kills came at. `command` builds the
/// worker for a round's name.
pub async fn kill_four_times(
    store: &Store,
    tenant: &TenantId,
    total: i64,
    command: impl Fn(&str) -> Command,
) -> Vec<i64> {
    let mut seen = Vec::new();
    for (round, share) in [10, 35, 60, 85].into_iter().enumerate() {
        let mut worker = spawn(command(&format!("crash-{round}")));
        seen.push(kill_at(store, tenant, &mut worker, total * share / 100).await);
    }
    eprintln!("killed at {seen:?} of {total} activities");
    assert!(
        seen.last().copied().unwrap_or(total) < total,
        "the last kill came before the end"
    );
    seen
}

/// Waits until every link and every link's calendar is idle, each calendar holding its
/// incremental cursor (its backfill done), or panics after `limit`.
pub async fn wait_until_calendars_idle(store: &Store, tenant: &TenantId, limit: Duration) {
    let start = Instant::now();
    loop {
        let mut pending = Vec::new();
        for link in store.links(tenant).await.unwrap() {
            let calendar = store.calendar_state(tenant, link.id).await.unwrap();
            let done = link.status == LinkStatus::Idle
                && calendar.status == LinkStatus::Idle
                && calendar.cursor.is_some();
            if !done {
                pending.push((
                    link.mailbox,
                    link.status,
                    calendar.status,
                    calendar.provider_message,
                ));
            }
        }
        if pending.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "not synced after {limit:?}: {pending:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `worker` until every link's mail and calendar are synced, then kills it.
pub async fn run_until_calendars_idle(store: &Store, tenant: &TenantId, worker: Command) {
    let mut worker = spawn(worker);
    wait_until_calendars_idle(store, tenant, PATIENCE).await;
    worker.kill().unwrap();
    worker.wait().unwrap();
}

/// Runs `worker` until every link is idle, then kills it.
pub async fn run_until_idle(store: &Store, tenant: &TenantId, worker: Command) {
    let mut worker = spawn(worker);
    wait_until_idle(store, tenant, PATIENCE).await;
    worker.kill().unwrap();
    worker.wait().unwrap();
}
