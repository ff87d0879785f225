//! The runtime as the console and workers use it: a tenant connected from an uploaded
//! key, User Delegation Sync with its stored report, capture switched on, workers that
//! build their engine from the store, and link actions.

mod common;

use common::{Emulated, TestStore, assert_store_matches_truth, emulator};
use serde_json::json;
use std::time::Duration;
use tributary_core::{LinkErrorStatus, PolicySettings};
use tributary_emulator::server::EmulatorConfig;
use tributary_google::GoogleEndpoints;
use tributary_store::{LinkStatus, MasterKey, Store, TenantId};
use tributary_sync::{
    EngineConfig, Runtime, RuntimeConfig, RuntimeError, SkipReason, Worker, WorkerConfig,
};

fn runtime_for(emulated: &Emulated, store: &Store) -> Runtime {
    let config = RuntimeConfig {
        endpoints: GoogleEndpoints::from_base_url(&emulated.running.base_url),
        engine: EngineConfig {
            pacing: common::test_pacing(),
            reference_now_ms: Some(emulated.now_ms()),
            ..EngineConfig::default()
        },
        worker: WorkerConfig {
            worker_id: "test-worker".into(),
            idle_sleep: Duration::from_millis(10),
            ..WorkerConfig::default()
        },
        ..RuntimeConfig::default()
    };
    Runtime::new(store.clone(), MasterKey::generate(), config)
}

/// A tenant connected through the runtime as an admin would: key uploaded, directory
/// matched.
async fn connected(emulated: &Emulated, store: &Store) -> (Runtime, TenantId) {
    let runtime = runtime_for(emulated, store);
    let tenant = TenantId::new("acme");
    store.create_tenant(&tenant, "Acme").await.unwrap();
    let setup = runtime
        .connect_google(
            &tenant,
            &emulated.key_file_json(),
            &emulated.admin(),
            "admin@test",
        )
        .await
        .expect("the key is accepted");
    assert_eq!(setup.client_id, emulated.running.key_file.client_id);
    assert!(
        setup
            .scopes_csv
            .contains("https://www.googleapis.com/auth/gmail.readonly")
    );
    (runtime, tenant)
}

/// Runs due jobs until none is left that is due now (the next incremental syncs are
/// minutes away).
async fn drain(runtime: &Runtime) {
    let worker = Worker::for_runtime(runtime.clone());
    for _ in 0..10_000 {
        if worker.run_once().await.expect("the worker runs").is_none() {
            return;
        }
    }
    panic!("jobs kept coming");
}

async fn link_status(store: &Store, tenant: &TenantId, mailbox: &str) -> LinkStatus {
    store
        .links(tenant)
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.mailbox == mailbox)
        .unwrap_or_else(|| panic!("{mailbox} has a link"))
        .status
}

async fn from_upload_to_ground_truth(store: Store) {
    let emulated = emulator(6, 40, EmulatorConfig::default()).await;
    let (runtime, tenant) = connected(&emulated, &store).await;
    let report = runtime.rebuild(&tenant, "admin@test").await.unwrap();
    let truth_mailboxes = emulated.truth().mailbox_counts.len();
    assert_eq!(report.matched.len(), truth_mailboxes, "{report:?}");
    assert!(report.matched.iter().all(|m| m.new_link));
    assert!(
        report
            .unmatched
            .iter()
            .any(|u| u.reason == SkipReason::Suspended),
        "{report:?}"
    );
    let stored = runtime.delegation_report(&tenant).await.unwrap();
    assert_eq!(
        stored.as_ref(),
        Some(&report),
        "the report is stored as shown"
    );

    // Nothing syncs before capture is on.
    drain(&runtime).await;
    assert_eq!(store.count_activities(&tenant).await.unwrap(), 0);

    runtime
        .set_capture_enabled(&tenant, true, "admin@test")
        .await
        .unwrap();
    drain(&runtime).await;
    let links = store.links(&tenant).await.unwrap();
    assert!(
        links.iter().all(|l| l.status == LinkStatus::Idle),
        "{links:?}"
    );
    assert_store_matches_truth(&store, &tenant, &emulated).await;

    // A second rebuild changes nothing and says so.
    let again = runtime.rebuild(&tenant, "admin@test").await.unwrap();
    assert!(again.matched.iter().all(|m| !m.new_link));
    assert!(again.unlinked.is_empty());
}

async fn rebuild_follows_suspensions_and_keeps_admin_unlinks(store: Store) {
    let emulated = emulator(6, 10, EmulatorConfig::default()).await;
    let (runtime, tenant) = connected(&emulated, &store).await;
    let report = runtime.rebuild(&tenant, "admin@test").await.unwrap();
    let admin = emulated.admin().to_lowercase();
    let mut ordinary = report.matched.iter().filter(|m| m.mailbox != admin);
    let leaving = ordinary.next().unwrap().clone();
    let unlinked_by_admin = ordinary.next().unwrap().clone();

    let stopped = runtime
        .unlink_links(
            &tenant,
            &[tributary_store::LinkId(unlinked_by_admin.link)],
            "admin@test",
        )
        .await
        .unwrap();
    assert_eq!(stopped, 1);
    emulated
        .control
        .post(&format!("/users/{}/suspend", leaving.mailbox), json!({}))
        .await;
    let report = runtime.rebuild(&tenant, "admin@test").await.unwrap();
    assert_eq!(
        report
            .unlinked
            .iter()
            .map(|u| (u.member.as_str(), u.reason))
            .collect::<Vec<_>>(),
        [(leaving.member.as_str(), SkipReason::Suspended)]
    );
    assert_eq!(
        link_status(&store, &tenant, &leaving.mailbox).await,
        LinkStatus::Unlinked
    );

    emulated
        .control
        .post(&format!("/users/{}/unsuspend", leaving.mailbox), json!({}))
        .await;
    runtime.rebuild(&tenant, "admin@test").await.unwrap();
    assert_eq!(
        link_status(&store, &tenant, &leaving.mailbox).await,
        LinkStatus::Pending,
        "back from suspension, the link is restored"
    );
    assert_eq!(
        link_status(&store, &tenant, &unlinked_by_admin.mailbox).await,
        LinkStatus::Unlinked,
        "an administrator's unlink stays"
    );
    let audit = store.audit_events(&tenant, 100).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "delegation.rebuilt"));
}

async fn bad_input_changes_nothing(store: Store) {
    let emulated = emulator(3, 5, EmulatorConfig::default()).await;
    let runtime = runtime_for(&emulated, &store);
    let tenant = TenantId::new("acme");
    store.create_tenant(&tenant, "Acme").await.unwrap();
    let mut key: serde_json::Value = serde_json::from_slice(&emulated.key_file_json()).unwrap();
    key.as_object_mut().unwrap().remove("private_key");
    let error = runtime
        .connect_google(&tenant, key.to_string().as_bytes(), &emulated.admin(), "a")
        .await
        .unwrap_err();
    assert!(
        matches!(error, RuntimeError::KeyFile(_)) && error.to_string().contains("private_key"),
        "{error}"
    );
    let error = runtime
        .connect_google(&tenant, &emulated.key_file_json(), "not an address", "a")
        .await
        .unwrap_err();
    assert!(matches!(error, RuntimeError::AdminEmail(_)), "{error}");
    assert!(runtime.google_setup(&tenant).await.unwrap().is_none());
    assert!(matches!(
        runtime.rebuild(&tenant, "a").await,
        Err(RuntimeError::NotConnected)
    ));

    runtime
        .connect_google(&tenant, &emulated.key_file_json(), &emulated.admin(), "a")
        .await
        .unwrap();
    let bad_policy = PolicySettings {
        backfill_days: 0,
        ..PolicySettings::default()
    };
    assert!(matches!(
        runtime.set_policy(&tenant, &bad_policy, "a").await,
        Err(RuntimeError::Policy(_))
    ));
    assert_eq!(
        runtime.policy(&tenant).await.unwrap(),
        PolicySettings::default()
    );
    let unknown = runtime
        .start_links(&tenant, &[tributary_store::LinkId(987_654)], "a")
        .await;
    assert!(matches!(unknown, Err(RuntimeError::UnknownLink(987_654))));
}

async fn test_connection_reports_in_the_taxonomy(store: Store) {
    let emulated = emulator(3, 5, EmulatorConfig::default()).await;
    let (runtime, tenant) = connected(&emulated, &store).await;
    let check = runtime
        .test_connection(&tenant, "admin@test")
        .await
        .unwrap();
    assert!(check.ok, "{check:?}");
    assert!(check.accounts_seen.unwrap_or(0) >= 3);

    emulated
        .control
        .put("/delegation", json!({"scopes": []}))
        .await;
    let check = runtime
        .test_connection(&tenant, "admin@test")
        .await
        .unwrap();
    assert!(!check.ok);
    assert_eq!(check.status, Some(LinkErrorStatus::Unauthorized));
    assert!(check.message.contains("unauthorized"), "{check:?}");
    assert_eq!(check.hint, Some(LinkErrorStatus::Unauthorized.fix_hint()));
}

async fn policy_is_read_by_the_engine(store: Store) {
    let emulated = emulator(4, 30, EmulatorConfig::default()).await;
    let (runtime, tenant) = connected(&emulated, &store).await;
    runtime.rebuild(&tenant, "admin@test").await.unwrap();
    let sent_only = PolicySettings {
        sync_inbox: false,
        ..PolicySettings::default()
    };
    runtime
        .set_policy(&tenant, &sent_only, "admin@test")
        .await
        .unwrap();
    assert_eq!(runtime.policy(&tenant).await.unwrap(), sent_only);
    runtime
        .set_capture_enabled(&tenant, true, "admin@test")
        .await
        .unwrap();
    drain(&runtime).await;
    let activities = store.activities(&tenant).await.unwrap();
    assert!(!activities.is_empty());
    let truth_total = emulated.truth().activities.len();
    assert!(
        activities.len() < truth_total,
        "Sent only captures less than Inbox and Sent ({} vs {truth_total})",
        activities.len()
    );
    assert!(
        activities.iter().all(|a| a.direction != "inbound"),
        "no inbound mail is captured from Sent alone"
    );
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let test_store = super::TestStore::sqlite().await;
                super::$name(test_store.store.clone()).await;
                test_store.close().await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(test_store) = super::TestStore::postgres().await else {
                    return;
                };
                super::$name(test_store.store.clone()).await;
                test_store.close().await;
            }
        }
    )*};
}

on_both_backends!(
    from_upload_to_ground_truth,
    rebuild_follows_suspensions_and_keeps_admin_unlinks,
    bad_input_changes_nothing,
    test_connection_reports_in_the_taxonomy,
    policy_is_read_by_the_engine,
);
