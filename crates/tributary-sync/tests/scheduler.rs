//! Workers run link syncs from the store's job queue and schedule what comes next.

mod common;

use common::{TestStore, assert_store_matches_truth, connect_tenant, emulator, test_pacing};
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tributary_emulator::server::EmulatorConfig;
use tributary_store::LinkStatus;
use tributary_sync::{JobOutcome, PacingConfig, Worker, WorkerConfig};

fn worker_config() -> WorkerConfig {
    WorkerConfig {
        worker_id: "test-worker".into(),
        poll_interval: Duration::from_secs(3600),
        initial_backoff: Duration::from_secs(600),
        ..WorkerConfig::default()
    }
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Runs due jobs until none is.
async fn drain(worker: &Worker) -> Vec<JobOutcome> {
    let mut outcomes = Vec::new();
    while let Some(outcome) = worker.run_once().await.unwrap() {
        outcomes.push(outcome);
    }
    outcomes
}

#[tokio::test]
async fn a_worker_syncs_every_scheduled_link_and_schedules_the_next_sync() {
    let emulated = emulator(6, 40, EmulatorConfig::default()).await;
    let store = TestStore::sqlite().await;
    let tenant = connect_tenant(&emulated, &store.store, test_pacing()).await;
    let mut worker = Worker::new(store.store.clone(), worker_config());
    worker.register(tenant.engine.clone());
    let scheduled = worker.schedule_links(&tenant.id).await.unwrap();
    assert_eq!(scheduled, tenant.delegation.links.len());

    let started = now_ms();
    let outcomes = drain(&worker).await;
    assert_eq!(outcomes.len(), scheduled);
    for outcome in &outcomes {
        let JobOutcome::Synced { next_run_ms, .. } = outcome else {
            panic!("{outcome:?}");
        };
        assert!(*next_run_ms >= started + 3_600_000);
    }
    assert_store_matches_truth(&store.store, &tenant.id, &emulated).await;
    // Scheduling again brings the pending syncs forward: one job per link, not two.
    assert_eq!(worker.schedule_links(&tenant.id).await.unwrap(), scheduled);
    assert_eq!(drain(&worker).await.len(), scheduled);
    store.close().await;
}

#[tokio::test]
async fn linkage_errors_back_off_and_admin_errors_wait() {
    let emulated = emulator(6, 40, EmulatorConfig::default()).await;
    let store = TestStore::sqlite().await;
    let pacing = PacingConfig {
        max_attempts: 1,
        ..test_pacing()
    };
    let tenant = connect_tenant(&emulated, &store.store, pacing).await;
    let mut worker = Worker::new(store.store.clone(), worker_config());
    worker.register(tenant.engine.clone());
    let broken = tenant.delegation.links[0].mailbox.clone();
    emulated
        .control
        .post(
            &format!("/users/{broken}/mail-service"),
            json!({"enabled": false}),
        )
        .await;
    worker.schedule_links(&tenant.id).await.unwrap();
    let outcomes = drain(&worker).await;
    let waiting: Vec<&JobOutcome> = outcomes
        .iter()
        .filter(|o| matches!(o, JobOutcome::WaitingForAdmin { .. }))
        .collect();
    assert_eq!(waiting.len(), 1, "{outcomes:?}");

    // Every Gmail call now fails: the others back off.
    emulated
        .control
        .patch("/faults", json!({"backend_error_probability": 1.0}))
        .await;
    // The unauthorized link is not scheduled again.
    let rescheduled = worker.schedule_links(&tenant.id).await.unwrap();
    assert_eq!(rescheduled, tenant.delegation.links.len() - 1);
    let before = now_ms();
    let outcomes = drain(&worker).await;
    assert_eq!(outcomes.len(), rescheduled);
    for outcome in &outcomes {
        let JobOutcome::Retrying { retry_at_ms, .. } = outcome else {
            panic!("{outcome:?}");
        };
        // The first failure since the last success waits the initial backoff.
        assert!(*retry_at_ms >= before + 600_000, "{outcome:?}");
    }
    for link in store.store.links(&tenant.id).await.unwrap() {
        let expected = if link.mailbox == broken {
            LinkStatus::Unauthorized
        } else {
            LinkStatus::LinkageError
        };
        assert_eq!(link.status, expected, "{link:?}");
        assert_eq!(
            link.next_attempt_ms.is_some(),
            expected == LinkStatus::LinkageError
        );
    }
    store.close().await;
}
