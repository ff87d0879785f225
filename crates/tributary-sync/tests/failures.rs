//! Each refusal Google can give ends on the link as the status the admin sees, with
//! Google's own message, while the other links keep syncing.

mod common;

use common::{
    Emulated, Tenant, TestStore, assert_store_matches_truth, connect_tenant, emulator, test_pacing,
};
use serde_json::json;
use tributary_core::LinkErrorStatus;
use tributary_emulator::server::EmulatorConfig;
use tributary_store::{LinkStatus, LinkView};
use tributary_sync::LinkOutcome;

struct Setup {
    emulated: Emulated,
    store: TestStore,
    tenant: Tenant,
}

async fn setup() -> Setup {
    let emulated = emulator(6, 40, EmulatorConfig::default()).await;
    let store = TestStore::sqlite().await;
    let tenant = connect_tenant(&emulated, &store.store, test_pacing()).await;
    Setup {
        emulated,
        store,
        tenant,
    }
}

async fn link_views(tenant: &Tenant) -> Vec<LinkView> {
    tenant.store.links(&tenant.id).await.unwrap()
}

/// Asserts the link of `mailbox` failed with `status` and a message containing
/// `message`, and waits for an admin (no retry scheduled).
fn assert_failed(links: &[LinkView], mailbox: &str, status: LinkStatus, message: &str) {
    let link = links.iter().find(|l| l.mailbox == mailbox).unwrap();
    assert_eq!(link.status, status, "{link:?}");
    let provider_message = link.provider_message.as_deref().unwrap_or_default();
    assert!(provider_message.contains(message), "{link:?}");
    assert_eq!(link.next_attempt_ms, None, "{link:?}");
    assert_eq!(link.attempts, 1, "{link:?}");
}

/// Every link fails (a refusal for the whole connection) with `status` and `message`.
async fn assert_every_link_fails(setup: &Setup, status: LinkErrorStatus, message: &str) {
    let outcomes = setup.tenant.engine.sync_all().await.unwrap();
    assert_eq!(outcomes.len(), setup.tenant.delegation.links.len());
    for outcome in &outcomes {
        let LinkOutcome::Failed {
            status: got,
            message: got_message,
            ..
        } = outcome
        else {
            panic!("expected a failure: {outcome:?}");
        };
        assert_eq!(*got, status);
        assert!(got_message.contains(message), "{got_message}");
    }
    let links = link_views(&setup.tenant).await;
    for link in &links {
        assert_failed(&links, &link.mailbox, status.into(), message);
    }
    // Waiting for an admin: the next run leaves them alone.
    assert!(setup.tenant.engine.sync_all().await.unwrap().is_empty());
}

/// One mailbox fails with `status` and `message`; the others sync.
async fn assert_only_that_link_fails(
    setup: &Setup,
    mailbox: &str,
    status: LinkErrorStatus,
    message: &str,
) {
    let outcomes = setup.tenant.engine.sync_all().await.unwrap();
    let links = link_views(&setup.tenant).await;
    assert_failed(&links, mailbox, status.into(), message);
    for link in links.iter().filter(|l| l.mailbox != mailbox) {
        assert_eq!(link.status, LinkStatus::Idle, "{link:?}");
        assert!(
            link.last_summary.as_ref().unwrap()["added"]
                .as_u64()
                .unwrap()
                > 0
        );
    }
    let failed = outcomes
        .iter()
        .filter(|o| matches!(o, LinkOutcome::Failed { .. }))
        .count();
    assert_eq!(failed, 1);
    assert!(
        setup
            .tenant
            .store
            .count_activities(&setup.tenant.id)
            .await
            .unwrap()
            > 0
    );
}

/// A linked mailbox other than the administrator's.
fn ordinary_mailbox(setup: &Setup) -> String {
    let admin = setup.emulated.admin().to_lowercase();
    setup
        .tenant
        .delegation
        .links
        .iter()
        .map(|l| l.mailbox.clone())
        .find(|m| *m != admin)
        .expect("a member besides the admin")
}

#[tokio::test]
async fn a_deleted_key_is_an_authentication_error() {
    let setup = setup().await;
    let key_id = setup.emulated.key_id();
    setup
        .emulated
        .control
        .delete(&format!("/service-account/keys/{key_id}"))
        .await;
    assert_every_link_fails(
        &setup,
        LinkErrorStatus::AuthenticationError,
        "Invalid JWT Signature.",
    )
    .await;
    setup.store.close().await;
}

#[tokio::test]
async fn removed_delegation_is_unauthorized() {
    let setup = setup().await;
    setup
        .emulated
        .control
        .put("/delegation", json!({"scopes": []}))
        .await;
    assert_every_link_fails(
        &setup,
        LinkErrorStatus::Unauthorized,
        "Client is unauthorized to retrieve access tokens",
    )
    .await;
    setup.store.close().await;
}

#[tokio::test]
async fn a_mailbox_without_mail_service_is_unauthorized() {
    let setup = setup().await;
    let mailbox = ordinary_mailbox(&setup);
    setup
        .emulated
        .control
        .post(
            &format!("/users/{mailbox}/mail-service"),
            json!({"enabled": false}),
        )
        .await;
    assert_only_that_link_fails(
        &setup,
        &mailbox,
        LinkErrorStatus::Unauthorized,
        "Mail service not enabled",
    )
    .await;
    setup.store.close().await;
}

#[tokio::test]
async fn a_deleted_user_is_an_authentication_error() {
    let setup = setup().await;
    let mailbox = ordinary_mailbox(&setup);
    setup
        .emulated
        .control
        .delete(&format!("/users/{mailbox}"))
        .await;
    assert_only_that_link_fails(
        &setup,
        &mailbox,
        LinkErrorStatus::AuthenticationError,
        "The account has been deleted",
    )
    .await;
    setup.store.close().await;
}

#[tokio::test]
async fn injected_backend_errors_are_retried_until_the_store_equals_the_truth() {
    let emulated = emulator(6, 40, EmulatorConfig::default()).await;
    emulated
        .control
        .patch(
            "/faults",
            json!({"backend_error_probability": 0.1, "seed": 11}),
        )
        .await;
    let store = TestStore::sqlite().await;
    let tenant = connect_tenant(&emulated, &store.store, test_pacing()).await;
    for outcome in tenant.engine.sync_all().await.unwrap() {
        assert!(matches!(outcome, LinkOutcome::Synced { .. }), "{outcome:?}");
    }
    assert_store_matches_truth(&store.store, &tenant.id, &emulated).await;
    let counters = emulated.control.get("/counters").await;
    let backend_errors = counters["faults_injected"]["backend_errors"]
        .as_u64()
        .unwrap();
    eprintln!(
        "backend errors injected: {backend_errors}, retries: {}",
        tenant.engine.pacing_stats().retries
    );
    assert!(backend_errors > 0);
    assert!(tenant.engine.pacing_stats().retries > 0);
    store.close().await;
}

#[tokio::test]
async fn a_missing_gmail_scope_is_unauthorized() {
    let setup = setup().await;
    let without_gmail: Vec<&str> = tributary_google::scopes::ALL
        .into_iter()
        .filter(|scope| *scope != tributary_google::scopes::GMAIL_READONLY)
        .collect();
    setup
        .emulated
        .control
        .put("/delegation", json!({ "scopes": without_gmail }))
        .await;
    assert_every_link_fails(
        &setup,
        LinkErrorStatus::Unauthorized,
        "Client is unauthorized to retrieve access tokens",
    )
    .await;
    setup.store.close().await;
}

#[tokio::test]
async fn restricted_api_access_is_unauthorized() {
    let setup = setup().await;
    setup
        .emulated
        .control
        .post("/api-access", json!({ "restricted": true }))
        .await;
    assert_every_link_fails(
        &setup,
        LinkErrorStatus::Unauthorized,
        "restricted by your administrator",
    )
    .await;
    setup.store.close().await;
}
