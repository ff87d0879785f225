//! `tributary worker` as a real process: killed with SIGKILL at several points of a full
//! sync and restarted, the store ends exactly equal to the ground truth; two workers on
//! one PostgreSQL database share the links, each running several jobs at once, and never
//! sync the same link at once.

mod common;

use common::{
    Emulated, Location, LoggedWorker, TestStore, assert_store_matches_truth, emulator,
    kill_four_times, run_until_idle, wait_until_idle, worker_command,
};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};
use tributary_emulator::server::EmulatorConfig;
use tributary_emulator::server::faults::FaultConfig;
use tributary_google::GoogleEndpoints;
use tributary_store::{MasterKey, Store, TenantId};
use tributary_sync::{EngineConfig, Runtime, RuntimeConfig};

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

/// `tributary worker` against the Google emulator, four jobs at once.
fn worker(setup: &Setup, id: &str) -> Command {
    let mut command = worker_command(&setup.location, &setup.key, id);
    command
        .args(["--google-api-url", &setup.emulated.running.base_url])
        .args(["--reference-now-ms", &setup.emulated.now_ms().to_string()])
        .args(["--sync-concurrency", "4"]);
    command
}

async fn killed_workers_resume_to_exactly_the_truth(setup: Setup) {
    let total = i64::try_from(setup.emulated.truth().activities.len()).unwrap();
    kill_four_times(&setup.store, &setup.tenant, total, |id| worker(&setup, id)).await;
    run_until_idle(&setup.store, &setup.tenant, worker(&setup, "finisher")).await;
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
    let mut workers = ["w1", "w2"].map(|id| {
        let mut command = worker(&setup, id);
        // The job lines the overlap check reads.
        command.env("TRIBUTARY_LOG", "tributary_sync::scheduler=debug,warn");
        LoggedWorker::spawn(command)
    });
    wait_until_idle(&setup.store, &setup.tenant, Duration::from_secs(180)).await;
    // A job logs its end after the link's status is stored: wait for every link's line.
    let links = setup.store.links(&setup.tenant).await.unwrap();
    let started = Instant::now();
    let intervals = loop {
        let mut intervals = BTreeMap::new();
        for (worker, name) in workers.iter().zip(["w1", "w2"]) {
            job_intervals(&worker.said(), name, &mut intervals);
        }
        if intervals.len() >= links.len() || started.elapsed() > Duration::from_secs(60) {
            break intervals;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for worker in &mut workers {
        // SIGKILL: nothing a worker does on exit may be needed for correctness.
        worker.child.kill().unwrap();
        worker.child.wait().unwrap();
    }
    let mut intervals = intervals;
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
