//! Retry on the Users page and a calendar that failed alone: the calendar runs in its
//! link's job whatever its last status, so once the admin fixed the cause (the calendar
//! scope delegated again), Retry on the link, whose mail is `idle`, schedules the run
//! that clears the calendar's error without waiting for the next incremental sync.

mod common;

use common::{TestStore, emulator};
use std::time::Duration;
use tributary_core::{FailureCause, FailureSite, HintProvider};
use tributary_emulator::server::EmulatorConfig;
use tributary_google::{GoogleEndpoints, scopes};
use tributary_store::{LinkStatus, MasterKey, Store, TenantId};
use tributary_sync::runtime::resume::error_status;
use tributary_sync::{EngineConfig, Runtime, RuntimeConfig, Worker, WorkerConfig};

/// Runs due jobs until none is due now (the next incremental syncs are minutes away).
async fn drain(runtime: &Runtime) {
    let worker = Worker::for_runtime(runtime.clone());
    for _ in 0..10_000 {
        if worker.run_once().await.expect("the worker runs").is_none() {
            return;
        }
    }
    panic!("jobs kept coming");
}

async fn delegate(emulated: &common::Emulated, scopes: &[&str]) {
    emulated
        .control
        .put("/delegation", serde_json::json!({ "scopes": scopes }))
        .await;
    // Tokens already minted keep their scopes until they expire.
    emulated
        .control
        .post("/tokens/expire", serde_json::json!({}))
        .await;
}

async fn retry_clears_a_calendar_error_on_an_idle_link(store: Store) {
    let emulated = emulator(4, 5, EmulatorConfig::default()).await;
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
    let runtime = Runtime::new(store.clone(), MasterKey::generate(), config);
    let tenant = TenantId::new("acme");
    store.create_tenant(&tenant, "Acme").await.unwrap();
    runtime
        .connect_google(
            &tenant,
            &emulated.key_file_json(),
            &emulated.admin(),
            "admin@test",
        )
        .await
        .expect("the key is accepted");
    runtime.rebuild(&tenant, "admin@test").await.unwrap();

    // The calendar scope left out of delegation: mail syncs, calendars fail alone.
    delegate(
        &emulated,
        &[scopes::GMAIL_READONLY, scopes::DIRECTORY_USER_READONLY],
    )
    .await;
    runtime
        .set_capture_enabled(&tenant, true, "admin@test")
        .await
        .unwrap();
    drain(&runtime).await;
    let links = store.links(&tenant).await.unwrap();
    assert!(!links.is_empty());
    for link in &links {
        assert_eq!(link.status, LinkStatus::Idle, "{link:?}");
        let calendar = store.calendar_state(&tenant, link.id).await.unwrap();
        let status = error_status(calendar.status).expect("the calendar failed");
        let cause = FailureCause::classify(
            HintProvider::Google,
            FailureSite::Calendar,
            status,
            calendar.status_reason.as_deref(),
            calendar.provider_message.as_deref().unwrap_or(""),
        );
        assert_eq!(
            cause,
            FailureCause::CalendarScopeNotDelegated,
            "{calendar:?}"
        );
    }
    assert_eq!(store.count_meetings(&tenant).await.unwrap(), 0);

    // The admin delegates the scope again: nothing runs by itself before the next
    // incremental sync, so the calendars still show the error.
    delegate(&emulated, &scopes::ALL).await;
    drain(&runtime).await;
    let first = &links[0];
    let still = store.calendar_state(&tenant, first.id).await.unwrap();
    assert_eq!(still.status, LinkStatus::Unauthorized, "{still:?}");

    // Retry on the link (its mail is idle) runs it now, and its calendar with it.
    let retried = runtime
        .retry_links(&tenant, &[first.id], "admin@test")
        .await
        .unwrap();
    assert_eq!(retried, 1, "Retry applies to an idle link");
    drain(&runtime).await;
    let cleared = store.calendar_state(&tenant, first.id).await.unwrap();
    assert_eq!(cleared.status, LinkStatus::Idle, "{cleared:?}");
    assert_eq!(cleared.provider_message, None);
    assert!(cleared.cursor.is_some(), "the calendar was read");
    for other in &links[1..] {
        let calendar = store.calendar_state(&tenant, other.id).await.unwrap();
        assert_eq!(
            calendar.status,
            LinkStatus::Unauthorized,
            "{}",
            other.mailbox
        );
    }
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

on_both_backends!(retry_clears_a_calendar_error_on_an_idle_link);
