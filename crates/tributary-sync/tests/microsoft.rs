//! Microsoft 365 through the runtime, as an admin connects it: the app registration's
//! fields validated (the wrong one named, nothing stored) and sealed, the tenant's
//! provider then Microsoft, *Rebuild* (UPN sync) linking every enabled user's mailbox
//! as Microsoft's and skipping disabled accounts with the reason, and the engine's full
//! sync equal to the emulator's ground truth; and a full sync of mailboxes Graph
//! throttles (429 with `Retry-After`) retried to the truth.

mod common;

use common::{
    MicrosoftEmulated, TestStore, WindowConfig, assert_store_matches, connect_microsoft_tenant,
    test_pacing,
};
use tributary_store::{ConnectionKind, MasterKey, Store, TenantId};
use tributary_sync::{
    EngineConfig, LinkOutcome, MicrosoftCredential, Runtime, RuntimeConfig, RuntimeError,
    SkipReason, SyncMode,
};

fn runtime(emulated: &MicrosoftEmulated, store: &Store) -> Runtime {
    let config = RuntimeConfig {
        engine: EngineConfig {
            pacing: test_pacing(),
            reference_now_ms: Some(emulated.now_ms()),
            ..EngineConfig::default()
        },
        ..RuntimeConfig::default()
    };
    Runtime::with_microsoft(
        store.clone(),
        MasterKey::generate(),
        config,
        emulated.settings(),
    )
}

async fn connect_and_sync(store: Store, credential: fn(&MicrosoftEmulated) -> MicrosoftCredential) {
    let emulated = MicrosoftEmulated::start(6, 40).await;
    let runtime = runtime(&emulated, &store);
    let tenant = TenantId::new("acme");
    store.create_tenant(&tenant, "Acme").await.unwrap();
    let app = &emulated.running.app;

    // A wrong field is named, and nothing is stored.
    let refused = runtime
        .connect_microsoft(
            &tenant,
            &app.tenant_id,
            "not-a-guid",
            credential(&emulated),
            "admin@test",
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(RuntimeError::MicrosoftField {
                field: "client_id",
                ..
            })
        ),
        "{refused:?}"
    );
    assert!(
        store
            .connection(&tenant, ConnectionKind::Microsoft)
            .await
            .unwrap()
            .is_none()
    );

    runtime
        .connect_microsoft(
            &tenant,
            &app.tenant_id,
            &app.client_id,
            credential(&emulated),
            "admin@test",
        )
        .await
        .unwrap();
    // One enabled user is disabled by the admin: UPN sync skips it with the reason.
    let (_, disabled) = emulated
        .running
        .state
        .tenant()
        .users
        .iter()
        .filter(|u| u.mail.is_some())
        .map(|u| (u.id.clone(), u.mail.clone().unwrap()))
        .next()
        .unwrap();
    emulated.set_account_enabled(&disabled, false);

    let report = runtime.rebuild(&tenant, "admin@test").await.unwrap();
    assert!(!report.matched.is_empty());
    assert!(
        report
            .unmatched
            .iter()
            .any(|s| s.email.eq_ignore_ascii_case(&disabled) && s.reason == SkipReason::Suspended),
        "{:?}",
        report.unmatched
    );
    let links = store.links(&tenant).await.unwrap();
    assert_eq!(links.len(), report.matched.len());
    for link in &links {
        assert_eq!(link.provider, ConnectionKind::Microsoft, "{link:?}");
    }

    runtime
        .set_capture_enabled(&tenant, true, "admin@test")
        .await
        .unwrap();
    let engine = runtime.engine(&tenant).await.unwrap().expect("an engine");
    assert_eq!(engine.connector().kind(), ConnectionKind::Microsoft);
    for outcome in engine.sync_all().await.unwrap() {
        let LinkOutcome::Synced { summary, .. } = outcome else {
            panic!("a link failed: {outcome:?}");
        };
        assert_eq!(summary.mode, SyncMode::Full);
    }
    // The disabled user's mail is not captured: the truth without its mailbox would be
    // needed to compare; re-enable it, rebuild and sync it too.
    emulated.set_account_enabled(&disabled, true);
    runtime.rebuild(&tenant, "admin@test").await.unwrap();
    let engine = runtime.engine(&tenant).await.unwrap().expect("an engine");
    for outcome in engine.sync_all().await.unwrap() {
        assert!(matches!(outcome, LinkOutcome::Synced { .. }), "{outcome:?}");
    }
    assert_store_matches(&store, &tenant, emulated.truth(), 1000).await;
}

fn secret(emulated: &MicrosoftEmulated) -> MicrosoftCredential {
    MicrosoftCredential::Secret(emulated.secret())
}

fn certificate(emulated: &MicrosoftEmulated) -> MicrosoftCredential {
    let certificate = &emulated.running.certificate;
    MicrosoftCredential::Certificate {
        certificate_pem: certificate.certificate_pem.clone(),
        private_key_pem: certificate.private_key_pem.clone(),
    }
}

#[tokio::test]
async fn connected_with_a_secret_on_sqlite() {
    let database = TestStore::sqlite().await;
    connect_and_sync(database.store.clone(), secret).await;
    database.close().await;
}

#[tokio::test]
async fn connected_with_a_certificate_on_postgres() {
    let Some(database) = TestStore::postgres().await else {
        return;
    };
    connect_and_sync(database.store.clone(), certificate).await;
    database.close().await;
}

/// Graph allows each mailbox only a few requests per (scaled) window: the full sync is
/// refused with 429 and `Retry-After`, waits as told and still ends equal to the truth.
#[tokio::test]
async fn throttled_mailboxes_sync_to_the_truth_on_sqlite() {
    let emulated = MicrosoftEmulated::start_with(
        4,
        20,
        WindowConfig {
            requests_per_window: 3,
            window_seconds: 60.0,
            time_scale: 120.0,
            ..WindowConfig::default()
        },
    )
    .await;
    let database = TestStore::sqlite().await;
    let store = database.store.clone();
    let config = EngineConfig {
        pacing: tributary_sync::PacingConfig {
            max_attempts: 20,
            ..test_pacing()
        },
        ..EngineConfig::default()
    };
    let tenant = connect_microsoft_tenant(&emulated, &store, config).await;
    for outcome in tenant.engine.sync_all().await.unwrap() {
        assert!(matches!(outcome, LinkOutcome::Synced { .. }), "{outcome:?}");
    }
    let counters = emulated.running.state.counters.snapshot();
    assert!(counters.total_throttled > 0, "nothing was throttled");
    assert_store_matches(&store, &tenant.id, emulated.truth(), 1000).await;
    database.close().await;
}
