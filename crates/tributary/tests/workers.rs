//! `tributary worker` as a real process: killed with SIGKILL at several points of a full
//! sync and restarted, the store ends exactly equal to the ground truth; two workers on
//! one PostgreSQL database share the links, each running several jobs at once, and never
//! sync the same link at once.

#[path = "../../tributary-sync/tests/common/mod.rs"]
mod common;

use common::{Emulated, TestStore, assert_store_matches_truth, emulator};
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tributary_emulator::server::EmulatorConfig;
use tributary_emulator::server::faults::FaultConfig;
use tributary_google::GoogleEndpoints;
use tributary_store::{LinkStatus, MasterKey, Store, TenantId};
use tributary_sync::{EngineConfig, Runtime, RuntimeConfig};

/// Where the worker process finds the store.
enum Location {
    DataDir(std::path::PathBuf),
    Url(String),
}

struct Setup {
    emulated: Emulated,
    store: Store,
    tenant: TenantId,
    key: MasterKey,
    location: Location,
}

/// Connects a tenant through the runtime (key uploaded, directory matched, capture on),
/// as an admin would before any worker runs.
async fn setup(emulated: Emulated, store: Store, location: Location) -> Setup {
    let key = MasterKey::generate();
    let runtime = Runtime::new(
        store.clone(),
        key.clone(),
        RuntimeConfig {
            endpoints: GoogleEndpoints::from_base_url(&emulated.running.base_url),
            engine: EngineConfig {
                reference_now_ms: Some(emulated.now_ms()),
                ..EngineConfig::default()
            },
            ..RuntimeConfig::default()
        },
    );
    let tenant = TenantId::new("acme");
    store.create_tenant(&tenant, "Acme").await.unwrap();
    runtime
        .connect_google(
            &tenant,
            &emulated.key_file_json(),
            &emulated.admin(),
            "admin",
        )
        .await
        .unwrap();
    runtime.rebuild(&tenant, "admin").await.unwrap();
    runtime
        .set_capture_enabled(&tenant, true, "admin")
        .await
        .unwrap();
    Setup {
        emulated,
        store,
        tenant,
        key,
        location,
    }
}

fn spawn_worker(setup: &Setup, id: &str) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tributary"));
    command.arg("worker");
    match &setup.location {
        Location::DataDir(dir) => command.arg("--data-dir").arg(dir),
        Location::Url(url) => command.arg("--database-url").arg(url),
    };
    command
        .args(["--google-api-url", &setup.emulated.running.base_url])
        .args(["--reference-now-ms", &setup.emulated.now_ms().to_string()])
        .args([
            "--worker-id",
            id,
            "--lease-seconds",
            "2",
            "--sync-concurrency",
            "4",
        ])
        .env("TRIBUTARY_MASTER_KEY", setup.key.to_base64())
        .env("TRIBUTARY_LOG", "tributary_sync::scheduler=debug,warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the worker starts")
}

/// Waits until every link is idle (each full sync done), or panics after `limit`.
async fn wait_until_idle(store: &Store, tenant: &TenantId, limit: Duration) {
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
                .map(|l| (&l.mailbox, l.status))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Kills the worker with SIGKILL once the store holds at least `activities`.
async fn kill_at(setup: &Setup, worker: &mut Child, activities: i64) -> i64 {
    let start = Instant::now();
    loop {
        let count = setup.store.count_activities(&setup.tenant).await.unwrap();
        if count >= activities {
            worker.kill().expect("SIGKILL");
            worker.wait().unwrap();
            return count;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "stuck at {count}"
        );
        assert!(
            worker.try_wait().unwrap().is_none(),
            "the worker exited by itself"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn killed_workers_resume_to_exactly_the_truth(setup: Setup) {
    let total = i64::try_from(setup.emulated.truth().activities.len()).unwrap();
    let mut seen = Vec::new();
    for (round, share) in [10, 35, 60, 85].into_iter().enumerate() {
        let mut worker = spawn_worker(&setup, &format!("crash-{round}"));
        seen.push(kill_at(&setup, &mut worker, total * share / 100).await);
    }
    eprintln!("killed at {seen:?} of {total} activities");
    assert!(
        seen.last().copied().unwrap_or(total) < total,
        "the last kill came before the end"
    );
    let mut last = spawn_worker(&setup, "finisher");
    wait_until_idle(&setup.store, &setup.tenant, Duration::from_secs(180)).await;
    last.kill().unwrap();
    last.wait().unwrap();
    assert_store_matches_truth(&setup.store, &setup.tenant, &setup.emulated).await;
}

/// `[link] → [(start, end)]` from the workers' "job started/finished" lines.
fn job_intervals(logs: &str, worker: &str, into: &mut BTreeMap<i64, Vec<(i64, i64, String)>>) {
    let field = |line: &str, name: &str| -> Option<i64> {
        let rest = line.split(&format!(" {name}=")).nth(1)?;
        rest.split(|c: char| !(c.is_ascii_digit() || c == '-'))
            .next()?
            .parse()
            .ok()
    };
    let mut open: BTreeMap<i64, i64> = BTreeMap::new();
    for line in logs.lines() {
        let (Some(job), Some(link), Some(at)) = (
            field(line, "job"),
            field(line, "link"),
            field(line, "at_ms"),
        ) else {
            continue;
        };
        if link < 0 {
            continue; // a tenant-wide job (directory sync), not a link's
        }
        if line.contains("job started") {
            open.insert(job, at);
        } else if line.contains("job finished")
            && let Some(start) = open.remove(&job)
        {
            into.entry(link)
                .or_default()
                .push((start, at, worker.to_owned()));
        }
    }
}

#[tokio::test]
async fn sqlite_worker_killed_mid_sync_resumes_exactly() {
    let emulated = emulator(12, 200, EmulatorConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in_data_dir(dir.path()).await.unwrap();
    let setup = setup(emulated, store, Location::DataDir(dir.path().to_owned())).await;
    killed_workers_resume_to_exactly_the_truth(setup).await;
}

#[tokio::test]
async fn postgres_worker_killed_mid_sync_resumes_exactly() {
    let Some(test_store) = TestStore::postgres().await else {
        return;
    };
    let emulated = emulator(12, 200, EmulatorConfig::default()).await;
    let url = test_store.url().expect("a PostgreSQL store").to_owned();
    let setup = setup(emulated, test_store.store.clone(), Location::Url(url)).await;
    killed_workers_resume_to_exactly_the_truth(setup).await;
    test_store.close().await;
}

#[tokio::test]
async fn two_postgres_workers_share_links_one_at_a_time() {
    let Some(test_store) = TestStore::postgres().await else {
        return;
    };
    // Every call takes 100 ms, so the backfill lasts seconds, longer than a worker takes
    // to start and join (a heartbeat and a bit): otherwise the first worker up can sync
    // every link before the second leases one.
    let slow = EmulatorConfig {
        faults: FaultConfig {
            latency_ms: 100,
            ..FaultConfig::default()
        },
        ..EmulatorConfig::default()
    };
    let emulated = emulator(12, 120, slow).await;
    let url = test_store.url().expect("a PostgreSQL store").to_owned();
    let setup = setup(emulated, test_store.store.clone(), Location::Url(url)).await;
    let workers = [spawn_worker(&setup, "w1"), spawn_worker(&setup, "w2")];
    wait_until_idle(&setup.store, &setup.tenant, Duration::from_secs(180)).await;
    let mut intervals = BTreeMap::new();
    for (child, name) in workers.into_iter().zip(["w1", "w2"]) {
        let mut child = child;
        // SIGKILL: nothing a worker does on exit may be needed for correctness.
        child.kill().unwrap();
        let output = child.wait_with_output().unwrap();
        job_intervals(
            &String::from_utf8_lossy(&output.stderr),
            name,
            &mut intervals,
        );
    }
    let links = setup.store.links(&setup.tenant).await.unwrap();
    assert_eq!(
        intervals.len(),
        links.len(),
        "every link ran: {intervals:?}"
    );
    let workers_used: std::collections::BTreeSet<&str> = intervals
        .values()
        .flatten()
        .map(|(_, _, worker)| worker.as_str())
        .collect();
    assert_eq!(
        workers_used.len(),
        2,
        "both workers took links: {intervals:?}"
    );
    // Each process runs several jobs at once (`--sync-concurrency 4`): some two runs of
    // one worker overlap. One job at a time per process never would.
    let runs: Vec<&(i64, i64, String)> = intervals.values().flatten().collect();
    let overlapping = runs.iter().enumerate().any(|(i, a)| {
        runs[i + 1..]
            .iter()
            .any(|b| a.2 == b.2 && a.0 < b.1 && b.0 < a.1)
    });
    assert!(overlapping, "no worker ran two jobs at once: {intervals:?}");
    for (link, runs) in &mut intervals {
        runs.sort();
        for pair in runs.windows(2) {
            assert!(
                pair[0].1 <= pair[1].0,
                "link {link} ran on two workers at once: {pair:?}"
            );
        }
    }
    assert_store_matches_truth(&setup.store, &setup.tenant, &setup.emulated).await;
    test_store.close().await;
}
