//! A worker runs several jobs at once, and workers sharing one database share each
//! tenant's project budget: observed through the store and the emulator's counters.

mod common;

use common::{TestStore, assert_store_matches_truth, connect_tenant, emulator, test_pacing};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tributary_emulator::server::EmulatorConfig;
use tributary_emulator::server::quota::QuotaConfig;
use tributary_store::{LinkStatus, Store, TenantId};
use tributary_sync::{Pacer, PacingConfig, Worker, WorkerConfig};

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn worker_config(name: &str, concurrency: usize) -> WorkerConfig {
    WorkerConfig {
        worker_id: name.into(),
        poll_interval: Duration::from_secs(3600),
        initial_backoff: Duration::from_secs(600),
        idle_sleep: Duration::from_millis(20),
        lease: Duration::from_millis(1500),
        concurrency,
        ..WorkerConfig::default()
    }
}

/// What was seen while the workers ran: the most jobs held at once by one worker, and
/// every worker that held a job.
#[derive(Debug, Default)]
struct Seen {
    most_at_once: usize,
    workers: BTreeSet<String>,
}

/// Runs `workers` until every link of `tenant` has synced once, watching the job leases.
async fn run_until_synced(store: &Store, tenant: &TenantId, workers: &[Worker]) -> Seen {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let runs: Vec<_> = workers
        .iter()
        .map(|worker| {
            let worker = worker.clone();
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                worker
                    .run(async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    })
                    .await
            })
        })
        .collect();
    let mut seen = Seen::default();
    loop {
        let held = store.held_jobs(now_ms()).await.unwrap();
        for job in &held {
            let at_once = held
                .iter()
                .filter(|other| other.worker == job.worker)
                .count();
            seen.most_at_once = seen.most_at_once.max(at_once);
            seen.workers.insert(job.worker.clone());
        }
        let links = store.links(tenant).await.unwrap();
        if held.is_empty() && links.iter().all(|l| l.status == LinkStatus::Idle) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.send(true).unwrap();
    for run in runs {
        run.await.unwrap().unwrap();
    }
    seen
}

#[tokio::test]
async fn one_worker_runs_several_jobs_at_once() {
    let emulated = emulator(6, 40, EmulatorConfig::default()).await;
    // Every call takes a while, so that jobs overlap whatever the machine's speed.
    emulated
        .control
        .patch("/faults", json!({"latency_ms": 20}))
        .await;
    let store = TestStore::sqlite().await;
    let tenant = connect_tenant(&emulated, &store.store, test_pacing()).await;
    let mut worker = Worker::new(store.store.clone(), worker_config("solo", 4));
    worker.register(tenant.engine.clone());
    worker.schedule_links(&tenant.id).await.unwrap();
    let seen = run_until_synced(&store.store, &tenant.id, &[worker]).await;
    // One job at a time would never hold two leases.
    assert!(seen.most_at_once >= 2, "{seen:?}");
    assert!(seen.most_at_once <= 4, "{seen:?}");
    assert_store_matches_truth(&store.store, &tenant.id, &emulated).await;
    store.close().await;
}

/// 1,200 units per quota minute for the whole project (twice a batch of 100 gets), a
/// quota minute lasting 4 s: 300 units a second.
const PROJECT_UNITS_PER_MINUTE: u32 = 1_200;
const TIME_SCALE: f64 = 15.0;

#[tokio::test]
async fn two_workers_together_stay_within_one_project_budget() {
    let Some(store) = TestStore::postgres().await else {
        return;
    };
    let emulated = emulator(
        8,
        250,
        EmulatorConfig {
            quota: QuotaConfig {
                per_project_units_per_minute: PROJECT_UNITS_PER_MINUTE,
                time_scale: TIME_SCALE,
                ..QuotaConfig::default()
            },
            ..EmulatorConfig::default()
        },
    )
    .await;
    let pacing = PacingConfig {
        project_units_per_minute: PROJECT_UNITS_PER_MINUTE,
        minute: Duration::from_secs_f64(60.0 / TIME_SCALE),
        ..test_pacing()
    };
    let tenant = connect_tenant(&emulated, &store.store, pacing.clone()).await;
    // Two processes: each its own pacer, each believing in the whole project budget.
    let mut first = Worker::new(store.store.clone(), worker_config("w1", 4));
    first.register(tenant.engine.clone());
    let mut second = Worker::new(store.store.clone(), worker_config("w2", 4));
    second.register(
        tenant
            .engine
            .clone()
            .sharing_pacer(Arc::new(Pacer::new(pacing))),
    );
    first.schedule_links(&tenant.id).await.unwrap();
    // The directory read charged the project nothing, the budget is full.
    emulated.control.post("/counters/reset", json!({})).await;
    let started = std::time::Instant::now();
    let seen = run_until_synced(&store.store, &tenant.id, &[first, second]).await;
    eprintln!("synced in {:?}", started.elapsed());
    assert_store_matches_truth(&store.store, &tenant.id, &emulated).await;
    let counters = emulated.control.get("/counters").await;
    eprintln!(
        "{seen:?}: {} units, {}",
        counters["total"]["units"], counters["rate_limited_by_kind"]
    );
    assert_eq!(seen.workers.len(), 2, "{seen:?}");
    // Without the shared budget the two pacers together spend twice the project budget
    // and are refused ~150 times here. With it, none is the goal; one or two may still
    // come from a call whose transit was slow while the other worker's call was fast
    // (a loaded CI machine), which pacing cannot see.
    let refused = counters["rate_limited_by_kind"]["project_rate"]
        .as_u64()
        .unwrap_or(0);
    assert!(refused <= 2, "{refused} project-rate refusals: {counters}");
    store.close().await;
}
