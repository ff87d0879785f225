//! The runtime as the console and workers use it: a tenant connected from an uploaded
//! key, User Delegation Sync with its stored report, capture switched on, workers that
//! build their engine from the store, and link actions.

mod common;

use common::{Emulated, TestStore, assert_store_matches_truth, emulator};
use serde_json::json;
use std::time::Duration;
use tributary_core::{LinkErrorStatus, PolicySettings};
use tributary_emulator::server::EmulatorConfig;
use tributary_emulator::testing::trap::{Canned, Trap};
use tributary_google::GoogleEndpoints;
use tributary_google::KeyFileError;
use tributary_store::{ConnectionKind, LinkStatus, MasterKey, Store, TenantId};
use tributary_sync::runtime::KeyReplacement;
use tributary_sync::{
    EngineConfig, Runtime, RuntimeConfig, RuntimeError, SkipReason, Worker, WorkerConfig,
};

fn runtime_for(emulated: &Emulated, store: &Store) -> Runtime {
    runtime_with(
        emulated,
        store,
        GoogleEndpoints::from_base_url(&emulated.running.base_url),
    )
}

/// A runtime whose server reaches Google at `endpoints`.
fn runtime_with(emulated: &Emulated, store: &Store, endpoints: GoogleEndpoints) -> Runtime {
    let config = RuntimeConfig {
        endpoints,
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
    // The hint for the cause (a scope not delegated), not the status's catch-all.
    let hint = check.hint.unwrap_or_default();
    assert!(hint.contains("Domain-wide delegation"), "{hint}");
    assert_ne!(hint, LinkErrorStatus::Unauthorized.fix_hint());
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

/// Text only the traps answer with: it must never reach an admin.
const MARKER: &str = "TRAP-MARKER-51c9";

/// The emulated organization's key file with `changes` made to it.
fn key_with(emulated: &Emulated, changes: serde_json::Value) -> Vec<u8> {
    let mut key: serde_json::Value = serde_json::from_slice(&emulated.key_file_json()).unwrap();
    for (field, value) in changes.as_object().unwrap() {
        key[field] = value.clone();
    }
    serde_json::to_vec(&key).unwrap()
}

/// A valid key of a service account the organization never delegated to.
fn unrelated_key(emulated: &Emulated) -> Vec<u8> {
    key_with(
        emulated,
        json!({
            "client_email": "stranger@unrelated-project.iam.gserviceaccount.com",
            "client_id": "100000000000000000042",
        }),
    )
}

async fn audit_text(store: &Store, tenant: &TenantId) -> Vec<(String, String)> {
    store
        .audit_events(tenant, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action.clone(), format!("{e:?} {}", e.detail)))
        .collect()
}

/// A key naming another token endpoint is refused at upload, naming `token_uri`, with
/// nothing stored and no request sent there; so is an admin address like `a@b`.
async fn keys_naming_other_endpoints_are_refused_at_upload(store: Store) {
    let trap = Trap::start(Canned::json(
        200,
        r#"{"access_token": "trap", "expires_in": 3600}"#,
    ))
    .await;
    let emulated = emulator(3, 5, EmulatorConfig::default()).await;
    let runtime = runtime_for(&emulated, &store);
    let tenant = TenantId::new("acme");
    store.create_tenant(&tenant, "Acme").await.unwrap();
    let key = key_with(
        &emulated,
        json!({ "token_uri": format!("{}/token", trap.url) }),
    );
    let error = runtime
        .connect_google(&tenant, &key, &emulated.admin(), "a")
        .await
        .unwrap_err();
    let RuntimeError::KeyFile(key_error) = &error else {
        panic!("{error}");
    };
    assert!(
        matches!(key_error, KeyFileError::UntrustedTokenUri { .. }),
        "{error}"
    );
    assert_eq!(key_error.field(), Some("token_uri"));
    let error = runtime
        .connect_google(&tenant, &emulated.key_file_json(), "a@b", "a")
        .await
        .unwrap_err();
    assert!(matches!(error, RuntimeError::AdminEmail(_)), "{error}");
    assert!(runtime.google_setup(&tenant).await.unwrap().is_none());
    assert!(
        store.audit_events(&tenant, 10).await.unwrap().is_empty(),
        "nothing was stored"
    );
    assert_eq!(trap.seen(), []);
}

/// The configured token endpoint answering an HTML page (a proxy, a captive portal):
/// *Test connection*, its audit entry, a rebuild and a refused replacement describe the
/// answer (status, content type, length) and never quote it.
async fn answers_that_are_not_googles_never_reach_the_admin(store: Store) {
    let page = format!("<html><body><h1>Sign in</h1><p>{MARKER}</p></body></html>");
    let portal = Trap::start(Canned::html(403, &page)).await;
    let emulated = emulator(3, 5, EmulatorConfig::default()).await;
    let token_url = format!("{}/token", portal.url);
    let endpoints = GoogleEndpoints {
        token_url: token_url.clone(),
        ..GoogleEndpoints::from_base_url(&emulated.running.base_url)
    };
    let runtime = runtime_with(&emulated, &store, endpoints);
    let tenant = TenantId::new("acme");
    store.create_tenant(&tenant, "Acme").await.unwrap();
    let key = key_with(&emulated, json!({ "token_uri": token_url }));
    runtime
        .connect_google(&tenant, &key, &emulated.admin(), "a")
        .await
        .expect("the first key is stored untested");

    let check = runtime.test_connection(&tenant, "a").await.unwrap();
    assert!(!check.ok);
    let shown = serde_json::to_string(&check).unwrap();
    assert!(!shown.contains(MARKER), "{shown}");
    assert!(check.message.contains("403"), "{shown}");
    assert!(check.message.contains("text/html"), "{shown}");
    let rebuild = runtime.rebuild(&tenant, "a").await.unwrap_err();
    assert!(
        !format!("{rebuild} {rebuild:?}").contains(MARKER),
        "{rebuild}"
    );
    let refused = runtime
        .connect_google(&tenant, &key, &emulated.admin(), "a")
        .await
        .unwrap_err();
    assert!(
        matches!(refused, RuntimeError::KeyNotReplaced { .. }),
        "{refused}"
    );
    assert!(
        !format!("{refused} {refused:?}").contains(MARKER),
        "{refused}"
    );
    let audit = audit_text(&store, &tenant).await;
    assert!(
        audit
            .iter()
            .any(|(action, _)| action == "connection.google.tested")
    );
    for (action, text) in &audit {
        assert!(!text.contains(MARKER), "{action}: {text}");
    }
    assert!(!portal.seen().is_empty());
}

/// An unrelated key (its service account has no delegation here) does not replace the
/// working one: the tenant keeps syncing, the admin sees why, and the refusal is
/// audited. "Replace anyway" replaces it, audited too.
async fn an_unrelated_key_never_replaces_a_working_one(store: Store) {
    let emulated = emulator(4, 10, EmulatorConfig::default()).await;
    let (runtime, tenant) = connected(&emulated, &store).await;
    runtime.rebuild(&tenant, "admin@test").await.unwrap();
    runtime
        .set_capture_enabled(&tenant, true, "admin@test")
        .await
        .unwrap();
    drain(&runtime).await;
    let synced = store.count_activities(&tenant).await.unwrap();
    let working = runtime.google_setup(&tenant).await.unwrap().unwrap();

    let error = runtime
        .connect_google(&tenant, &unrelated_key(&emulated), &emulated.admin(), "it")
        .await
        .unwrap_err();
    let RuntimeError::KeyNotReplaced { check } = &error else {
        panic!("{error}");
    };
    assert!(!check.ok);
    assert_eq!(check.status, Some(LinkErrorStatus::AuthenticationError));
    assert!(
        check.message.contains("verifier"),
        "Google's words: {check:?}"
    );
    assert!(error.to_string().contains(&check.message), "{error}");
    assert_eq!(
        runtime.google_setup(&tenant).await.unwrap().as_ref(),
        Some(&working)
    );
    let audit = audit_text(&store, &tenant).await;
    let (_, refusal) = audit
        .iter()
        .find(|(action, _)| action == "connection.google.key_replacement_refused")
        .expect("the refusal is audited");
    assert!(refusal.contains("stranger@unrelated-project"), "{refusal}");

    // The working key still syncs new mail.
    let mailbox = store.links(&tenant).await.unwrap()[0].mailbox.clone();
    deliver(
        &emulated,
        &mailbox,
        "after-refusal@northwind-trading.example",
    )
    .await;
    let engine = runtime.engine(&tenant).await.unwrap().unwrap();
    engine.sync_all().await.unwrap();
    assert_eq!(store.count_activities(&tenant).await.unwrap(), synced + 1);

    // The admin says the stored key is dead: replaced, untested key and all.
    let setup = runtime
        .upload_google_key(
            &tenant,
            &unrelated_key(&emulated),
            &emulated.admin(),
            "it",
            KeyReplacement::Anyway,
        )
        .await
        .unwrap();
    assert_eq!(
        setup.client_email,
        "stranger@unrelated-project.iam.gserviceaccount.com"
    );
    let events = store.audit_events(&tenant, 1000).await.unwrap();
    let replaced = events
        .iter()
        .find(|e| {
            e.action == "connection.google.key_uploaded" && e.detail["replace_anyway"] == true
        })
        .expect("the forced replacement is audited");
    assert_eq!(replaced.detail["replaced"], true);
    assert_eq!(replaced.detail["test"]["ok"], false);
    deliver(
        &emulated,
        &mailbox,
        "after-replacement@northwind-trading.example",
    )
    .await;
    let engine = runtime.engine(&tenant).await.unwrap().unwrap();
    engine.sync_all().await.unwrap();
    assert_eq!(
        store.count_activities(&tenant).await.unwrap(),
        synced + 1,
        "the unrelated key reads nothing"
    );
}

/// Once the organization's domains are known, the admin address must be on one of them;
/// a key that passes its test replaces the stored one.
async fn the_admin_address_is_on_the_organizations_domains(store: Store) {
    let emulated = emulator(3, 5, EmulatorConfig::default()).await;
    let (runtime, tenant) = connected(&emulated, &store).await;
    runtime.rebuild(&tenant, "admin@test").await.unwrap();
    let error = runtime
        .connect_google(
            &tenant,
            &emulated.key_file_json(),
            "admin@elsewhere.example",
            "a",
        )
        .await
        .unwrap_err();
    assert!(matches!(error, RuntimeError::AdminDomain { .. }), "{error}");
    assert!(
        error.to_string().contains(&emulated.primary_domain()),
        "{error}"
    );
    let error = runtime
        .connect_google(&tenant, &emulated.key_file_json(), "a@b", "a")
        .await
        .unwrap_err();
    assert!(matches!(error, RuntimeError::AdminEmail(_)), "{error}");
    let setup = runtime.google_setup(&tenant).await.unwrap().unwrap();
    assert_eq!(setup.admin_email, emulated.admin().to_lowercase());
    // The same key again passes its test and is stored.
    runtime
        .connect_google(
            &tenant,
            &emulated.key_file_json(),
            &emulated.admin().to_uppercase(),
            "a",
        )
        .await
        .unwrap();
    let events = store.audit_events(&tenant, 1000).await.unwrap();
    assert!(events.iter().any(|e| {
        e.action == "connection.google.key_uploaded"
            && e.detail["replaced"] == true
            && e.detail["test"]["ok"] == true
    }));
}

/// Delivers one message to `mailbox`, dated a day before the organization's "now".
async fn deliver(emulated: &Emulated, mailbox: &str, message_id: &str) {
    let date = chrono::DateTime::from_timestamp_millis(emulated.now_ms() - 86_400_000)
        .unwrap()
        .to_rfc3339();
    emulated
        .control
        .post(
            "/messages/deliver",
            json!({
                "from": "Paula Partner <paula@northwind-trading.example>",
                "to": [mailbox],
                "subject": "Order follow-up",
                "body": "Any news?",
                "message_id": format!("<{message_id}>"),
                "date": date,
            }),
        )
        .await;
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
    keys_naming_other_endpoints_are_refused_at_upload,
    answers_that_are_not_googles_never_reach_the_admin,
    an_unrelated_key_never_replaces_a_working_one,
    the_admin_address_is_on_the_organizations_domains,
    only_the_connections_provider_links_are_scheduled,
);

/// A link of another connection (a mailbox that moved to Microsoft 365) is neither
/// scheduled nor synced by the tenant's Google engine; the others sync as before.
async fn only_the_connections_provider_links_are_scheduled(store: Store) {
    let emulated = emulator(6, 40, EmulatorConfig::default()).await;
    let (runtime, tenant) = connected(&emulated, &store).await;
    runtime.rebuild(&tenant, "admin@test").await.unwrap();
    let links = store.links(&tenant).await.unwrap();
    assert!(links.iter().all(|l| l.provider == ConnectionKind::Google));
    let moved = links[0].clone();
    store
        .set_link_provider(&tenant, moved.id, ConnectionKind::Microsoft)
        .await
        .unwrap();

    let scheduled = runtime.schedule_runnable_links(&tenant).await.unwrap();
    assert_eq!(scheduled, links.len() - 1);
    runtime
        .set_capture_enabled(&tenant, true, "admin@test")
        .await
        .unwrap();
    drain(&runtime).await;
    for link in store.links(&tenant).await.unwrap() {
        let expected = if link.id == moved.id {
            LinkStatus::Pending
        } else {
            LinkStatus::Idle
        };
        assert_eq!(link.status, expected, "{link:?}");
    }
    assert!(store.activities(&tenant).await.unwrap().iter().all(|a| {
        a.sightings
            .iter()
            .all(|(mailbox, _, _)| *mailbox != moved.mailbox)
    }));
}
