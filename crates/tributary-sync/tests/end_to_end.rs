//! A whole organization synced from the emulator into a store equals the ground truth.

mod common;

use common::{
    Emulated, TestStore, assert_store_matches_truth, connect_tenant, connect_tenant_with, emulator,
    test_pacing,
};
use std::time::Instant;
use tributary_emulator::server::EmulatorConfig;
use tributary_store::{LinkId, LinkStatus, Store};
use tributary_sync::{
    EngineConfig, FULL_SYNC_STREAM, LinkOutcome, PacingConfig, SkipReason, SyncMode,
};

/// Sets the tenant up from the directory, fully syncs every link, and checks the result.
async fn full_sync_equals_truth(emulated: &Emulated, store: &Store) {
    let tenant = connect_tenant(emulated, store, test_pacing()).await;
    let truth = emulated.truth();
    // Every synced member is linked; everyone else is skipped with a reason.
    let linked: Vec<String> = tenant
        .delegation
        .links
        .iter()
        .map(|l| l.mailbox.clone())
        .collect();
    let members: Vec<String> = truth
        .members
        .iter()
        .map(|m| m.primary.to_lowercase())
        .collect();
    let mut sorted = linked.clone();
    sorted.sort();
    let mut expected = members.clone();
    expected.sort();
    assert_eq!(sorted, expected);
    assert!(
        tenant
            .delegation
            .skipped
            .iter()
            .any(|s| s.reason == SkipReason::Suspended),
        "the generated organization has a suspended user: {:?}",
        tenant.delegation.skipped
    );

    let started = Instant::now();
    let outcomes = tenant.engine.sync_all().await.unwrap();
    eprintln!(
        "full sync of {} mailboxes: {:.2} s",
        outcomes.len(),
        started.elapsed().as_secs_f64()
    );
    for outcome in &outcomes {
        let LinkOutcome::Synced { summary, .. } = outcome else {
            panic!("a link failed: {outcome:?}");
        };
        assert_eq!(summary.mode, SyncMode::Full);
    }
    assert_eq!(outcomes.len(), linked.len());
    assert_store_matches_truth(store, &tenant.id, emulated).await;

    for link in store.links(&tenant.id).await.unwrap() {
        assert_eq!(link.status, LinkStatus::Idle, "{}", link.mailbox);
        let summary = link.last_summary.expect("a summary");
        assert_eq!(summary["mode"], "full");
        assert!(summary["at_ms"].is_i64());
    }

    // Nothing changed: a second run is incremental and adds nothing.
    let before = store.count_activities(&tenant.id).await.unwrap();
    for outcome in tenant.engine.sync_all().await.unwrap() {
        let LinkOutcome::Synced { summary, .. } = outcome else {
            panic!("a link failed: {outcome:?}");
        };
        assert_eq!(summary.mode, SyncMode::Incremental);
        assert_eq!(summary.added, 0);
    }
    assert_eq!(store.count_activities(&tenant.id).await.unwrap(), before);
}

#[tokio::test]
async fn small_organization_on_sqlite() {
    let emulated = emulator(6, 40, EmulatorConfig::default()).await;
    let store = TestStore::sqlite().await;
    full_sync_equals_truth(&emulated, &store.store).await;
    store.close().await;
}

#[tokio::test]
async fn small_organization_on_postgres() {
    let Some(store) = TestStore::postgres().await else {
        return;
    };
    let emulated = emulator(6, 40, EmulatorConfig::default()).await;
    full_sync_equals_truth(&emulated, &store.store).await;
    store.close().await;
}

#[tokio::test]
async fn default_organization_on_sqlite() {
    // The emulator's default size: 25 users, about 400 messages each.
    let emulated = emulator(25, 400, EmulatorConfig::default()).await;
    let store = TestStore::sqlite().await;
    full_sync_equals_truth(&emulated, &store.store).await;
    store.close().await;
}

/// Full syncs cut short by failures resume from their progress cursor, and the end
/// result is the same.
#[tokio::test]
async fn interrupted_full_syncs_resume_where_they_stopped() {
    let emulated = emulator(6, 40, EmulatorConfig::default()).await;
    let store = TestStore::sqlite().await;
    let config = EngineConfig {
        pacing: PacingConfig {
            // No retries for whole calls: a backend error ends the run.
            max_attempts: 1,
            ..test_pacing()
        },
        page_size: 5,
        concurrency: 1,
        ..EngineConfig::default()
    };
    let tenant = connect_tenant_with(&emulated, &store.store, config).await;
    emulated
        .control
        .patch(
            "/faults",
            serde_json::json!({"backend_error_probability": 0.1, "seed": 3}),
        )
        .await;
    let mut failures = 0;
    let mut resumed_mid_list = false;
    for _ in 0..200 {
        let outcomes = tenant.engine.sync_all().await.unwrap();
        let failed: Vec<LinkId> = outcomes
            .iter()
            .filter(|o| matches!(o, LinkOutcome::Failed { .. }))
            .map(LinkOutcome::link)
            .collect();
        for link in &failed {
            let progress = store
                .store
                .cursor(&tenant.id, *link, FULL_SYNC_STREAM)
                .await
                .unwrap();
            let progress: Option<serde_json::Value> =
                progress.map(|p| serde_json::from_str(&p).unwrap());
            resumed_mid_list |= progress.is_some_and(|p| p["page_token"].is_string());
        }
        failures += failed.len();
        if failed.is_empty() {
            break;
        }
    }
    eprintln!("{failures} interrupted runs");
    assert!(failures > 0, "no run was interrupted");
    assert!(resumed_mid_list, "no run stopped in the middle of a label");
    for link in store.store.links(&tenant.id).await.unwrap() {
        assert_eq!(link.status, LinkStatus::Idle, "{link:?}");
    }
    assert_store_matches_truth(&store.store, &tenant.id, &emulated).await;
    store.close().await;
}

#[tokio::test]
async fn default_organization_on_postgres() {
    let Some(store) = TestStore::postgres().await else {
        return;
    };
    let emulated = emulator(25, 400, EmulatorConfig::default()).await;
    full_sync_equals_truth(&emulated, &store.store).await;
    store.close().await;
}
