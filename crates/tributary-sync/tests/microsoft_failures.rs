//! Every Microsoft 365 failure an administrator can meet, injected with the emulator's
//! control API and run through the engine as a worker runs it: the link gets the status
//! the admin sees, Microsoft's own message (one line, verbatim) and code, the cause whose
//! hint fits, and the other links of the tenant keep syncing. Then what an admin need
//! not fix: an account disabled is unlinked as suspended at Rebuild, a delta expired
//! (410) resyncs without duplicates, throttling (429 with `Retry-After`) waits and
//! completes, an outage is retried by itself, and `@removed` entries leave captured
//! activity alone. Each test runs on SQLite and on PostgreSQL.

mod common;

use common::{MicrosoftEmulated, Tenant, assert_store_matches, connect_microsoft_tenant};
use serde_json::{Value, json};
use std::time::Duration;
use tributary_core::{Audience, FailureCause, FailureSite, HintProvider, LinkErrorStatus};
use tributary_store::{LinkStatus, LinkView, MasterKey, Store, TenantId};
use tributary_sync::{
    EngineConfig, LinkOutcome, MicrosoftCredential, Pacer, PacingConfig, Runtime, RuntimeConfig,
    SkipReason, SyncMode, SyncSummary,
};

/// Defines, for each named `async fn(Store)`, a module with a test on each backend.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use $crate::common::{Provider, run_on_postgres, run_on_sqlite};

            #[tokio::test]
            async fn sqlite() {
                run_on_sqlite(Provider::Microsoft, |_, store| super::$name(store)).await;
            }

            #[tokio::test]
            async fn postgres() {
                run_on_postgres(Provider::Microsoft, |_, store| super::$name(store)).await;
            }
        }
    )*};
}

on_both_backends!(
    a_wrong_secret_is_an_authentication_error,
    an_expired_secret_is_an_authentication_error,
    revoked_consent_is_an_authentication_error,
    a_removed_mail_permission_is_unauthorized,
    an_access_policy_stops_only_the_mailboxes_it_excludes,
    a_mailbox_without_exchange_is_unauthorized,
    a_deleted_user_is_an_authentication_error,
    a_disabled_account_is_unlinked_as_suspended,
    an_expired_delta_resyncs_without_duplicates,
    throttling_waits_as_told_then_completes,
    an_outage_is_retried_by_itself_then_syncs,
    removed_entries_leave_captured_activity_alone,
);

/// The emulator's control API over HTTPS, trusting its CA.
struct Control {
    http: reqwest::Client,
    base: String,
}

impl Control {
    fn of(emulated: &MicrosoftEmulated) -> Control {
        let ca = reqwest::Certificate::from_pem(emulated.running.ca_pem.as_bytes())
            .expect("the emulator's CA reads");
        let http = reqwest::Client::builder()
            .tls_certs_only([ca])
            .build()
            .expect("the control client builds");
        Control {
            http,
            base: emulated.running.info.control_url.clone(),
        }
    }

    /// Sends one control call, which must succeed.
    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the control API answers");
        let status = response.status();
        let answer: Value = response.json().await.expect("the control API answers JSON");
        assert!(status.is_success(), "control {path}: {status} {answer}");
        answer
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, body).await
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, Value::Null).await
    }

    async fn patch(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::PATCH, path, body).await
    }

    async fn delete(&self, path: &str) -> Value {
        self.call(reqwest::Method::DELETE, path, Value::Null).await
    }

    /// Tokens already issued stop working, as they do within the hour on Microsoft:
    /// the change reaches the engine with its next token.
    async fn expire_tokens(&self) {
        self.post("/tokens/expire", json!({})).await;
    }
}

/// A connected tenant (members and links from Graph's users), nothing synced yet.
struct Setup {
    emulated: MicrosoftEmulated,
    control: Control,
    tenant: Tenant,
}

fn config() -> EngineConfig {
    EngineConfig {
        pacing: common::test_pacing(),
        ..EngineConfig::default()
    }
}

async fn setup(store: &Store) -> Setup {
    setup_with(store, config()).await
}

async fn setup_with(store: &Store, config: EngineConfig) -> Setup {
    let emulated = MicrosoftEmulated::start(5, 30).await;
    let control = Control::of(&emulated);
    let tenant = connect_microsoft_tenant(&emulated, store, config).await;
    assert!(tenant.delegation.links.len() >= 3, "a few mailboxes");
    Setup {
        emulated,
        control,
        tenant,
    }
}

impl Setup {
    async fn links(&self) -> Vec<LinkView> {
        self.tenant.store.links(&self.tenant.id).await.unwrap()
    }

    /// A linked mailbox; `index` picks which.
    fn mailbox(&self, index: usize) -> String {
        self.tenant.delegation.links[index].mailbox.clone()
    }

    async fn count_activities(&self) -> i64 {
        self.tenant
            .store
            .count_activities(&self.tenant.id)
            .await
            .unwrap()
    }

    async fn sync_everything(&self) -> Vec<SyncSummary> {
        summaries(self.tenant.engine.sync_all().await.unwrap())
    }
}

/// Every link's summary, or a panic naming the one that failed.
fn summaries(outcomes: Vec<LinkOutcome>) -> Vec<SyncSummary> {
    outcomes
        .into_iter()
        .map(|outcome| match outcome {
            LinkOutcome::Synced { summary, .. } => summary,
            failed => panic!("a link failed: {failed:?}"),
        })
        .collect()
}

/// Every run was incremental and found nothing new, nothing unaccounted for.
fn assert_nothing_new(summaries: &[SyncSummary]) {
    for summary in summaries {
        assert_eq!(summary.mode, SyncMode::Incremental, "{summary:?}");
        assert_eq!(summary.added, 0, "{summary:?}");
        assert_eq!(summary.unaccounted, 0, "{summary:?}");
    }
}

const ADMIN: &str = "admin@test";

/// What an administrator must see on a link Microsoft refused.
struct Refusal {
    status: LinkErrorStatus,
    /// Microsoft's code: `AADSTSnnnn` or Graph's `error.code`.
    code: &'static str,
    /// How Microsoft's own message starts (an `AADSTS` one goes on with its trace ids).
    message: &'static str,
    cause: FailureCause,
    /// Words the admin's hint must contain: the fix for this cause.
    fix: &'static str,
}

/// Asserts `link` shows `refusal`, and waits for an administrator.
fn assert_refused(link: &LinkView, refusal: &Refusal) {
    assert_eq!(link.status, LinkStatus::from(refusal.status), "{link:?}");
    let message = link.provider_message.as_deref().unwrap_or_default();
    assert!(message.starts_with(refusal.message), "{link:?}");
    assert!(!message.contains(['\r', '\n']), "one line: {message:?}");
    assert_eq!(
        link.status_reason.as_deref(),
        Some(refusal.code),
        "{link:?}"
    );
    // An admin must act: no retry on a timer.
    assert_eq!(link.next_attempt_ms, None, "{link:?}");
    let cause = FailureCause::classify(
        HintProvider::Microsoft,
        FailureSite::Mailbox,
        refusal.status,
        Some(refusal.code),
        message,
    );
    assert_eq!(cause, refusal.cause, "{link:?}");
    let hint = refusal
        .status
        .microsoft_fix_hint(Some(refusal.code), message);
    assert_eq!(hint, cause.hint(Audience::Admin));
    assert!(hint.contains(refusal.fix), "{hint}");
    assert!(cause.needs_admin());
}

/// A refusal of the whole connection: every link shows it, the next run leaves them
/// alone, and what was captured before stays.
async fn assert_every_link_refused(setup: &Setup, refusal: &Refusal) {
    let before = setup.count_activities().await;
    let outcomes = setup.tenant.engine.sync_all().await.unwrap();
    assert_eq!(outcomes.len(), setup.tenant.delegation.links.len());
    for outcome in &outcomes {
        let LinkOutcome::Failed {
            status, message, ..
        } = outcome
        else {
            panic!("expected a failure: {outcome:?}");
        };
        assert_eq!(*status, refusal.status, "{message}");
        assert!(message.starts_with(refusal.message), "{message}");
    }
    for link in setup.links().await {
        assert_refused(&link, refusal);
        assert!(link.last_success_ms.is_some(), "{link:?}");
    }
    assert!(setup.tenant.engine.sync_all().await.unwrap().is_empty());
    let after = setup.count_activities().await;
    assert_eq!(after, before, "captured activity stays");
}

/// After a first sync, a change to the app (`path` posted to the control API) reaches
/// the engine with its next token and refuses every link.
async fn assert_app_change_refuses_every_link(
    store: &Store,
    path: &str,
    body: Value,
    refusal: &Refusal,
) {
    let setup = setup(store).await;
    setup.sync_everything().await;
    setup.control.post(path, body).await;
    setup.control.expire_tokens().await;
    assert_every_link_refused(&setup, refusal).await;
}

/// One mailbox is refused; every other link syncs in full.
async fn assert_only_refused(setup: &Setup, mailbox: &str, refusal: &Refusal) {
    let outcomes = setup.tenant.engine.sync_all().await.unwrap();
    let failed: Vec<_> = outcomes
        .iter()
        .filter(|o| matches!(o, LinkOutcome::Failed { .. }))
        .collect();
    assert_eq!(failed.len(), 1, "{outcomes:?}");
    let links = setup.links().await;
    let refused = links.iter().find(|l| l.mailbox == mailbox).unwrap();
    assert_refused(refused, refusal);
    for link in links.iter().filter(|l| l.mailbox != mailbox) {
        assert_eq!(link.status, LinkStatus::Idle, "{link:?}");
        let summary = link.last_summary.as_ref().expect("a summary");
        assert!(summary["added"].as_u64().unwrap() > 0, "{link:?}");
        assert_eq!(summary["unaccounted"], 0, "{link:?}");
    }
}

async fn a_wrong_secret_is_an_authentication_error(store: Store) {
    // The admin replaced the app's secrets in Entra ID: the one Tributary holds is wrong.
    let refusal = Refusal {
        status: LinkErrorStatus::AuthenticationError,
        code: "AADSTS7000215",
        message: "AADSTS7000215: Invalid client secret provided.",
        cause: FailureCause::MsSecretWrong,
        fix: "create a new client secret",
    };
    assert_app_change_refuses_every_link(
        &store,
        "/app/secrets",
        json!({"replace": true}),
        &refusal,
    )
    .await;
}

async fn an_expired_secret_is_an_authentication_error(store: Store) {
    let refusal = Refusal {
        status: LinkErrorStatus::AuthenticationError,
        code: "AADSTS7000222",
        message: "AADSTS7000222: The provided client secret keys for app",
        cause: FailureCause::MsSecretExpired,
        fix: "has expired",
    };
    assert_app_change_refuses_every_link(&store, "/app/secrets/expire", json!({}), &refusal).await;
}

async fn revoked_consent_is_an_authentication_error(store: Store) {
    let refusal = Refusal {
        status: LinkErrorStatus::AuthenticationError,
        code: "AADSTS7000229",
        message: "AADSTS7000229: The client application",
        cause: FailureCause::MsConsentMissing,
        fix: "Grant admin consent",
    };
    assert_app_change_refuses_every_link(&store, "/consent/revoke", json!({}), &refusal).await;
}

async fn a_removed_mail_permission_is_unauthorized(store: Store) {
    let setup = setup(&store).await;
    setup.sync_everything().await;
    let state = setup.control.get("/state").await;
    let roles: Vec<String> = serde_json::from_value(state["apps"][0]["roles"].clone())
        .unwrap_or_else(|_| panic!("roles in {state}"));
    let mail: Vec<&String> = roles.iter().filter(|r| r.starts_with("Mail.")).collect();
    assert!(!mail.is_empty(), "{roles:?}");
    for role in mail {
        setup
            .control
            .post("/permissions/remove", json!({"permission": role}))
            .await;
    }
    setup.control.expire_tokens().await;
    let refusal = Refusal {
        status: LinkErrorStatus::Unauthorized,
        code: "ErrorAccessDenied",
        message: "Access is denied. Check credentials and try again.",
        cause: FailureCause::MsMailDenied,
        fix: "Mail.ReadBasic.All",
    };
    assert_every_link_refused(&setup, &refusal).await;
    // The directory permission stays: Rebuild still reads every user.
    let pacer = Pacer::new(common::test_pacing());
    let accounts = setup
        .tenant
        .engine
        .connector()
        .accounts(&setup.emulated.running.info.admin_email, &pacer)
        .await
        .expect("the directory is still read");
    assert!(accounts.len() >= setup.tenant.delegation.links.len());
}

async fn an_access_policy_stops_only_the_mailboxes_it_excludes(store: Store) {
    let setup = setup(&store).await;
    let excluded = setup.mailbox(1);
    setup
        .control
        .call(
            reqwest::Method::PUT,
            "/access-policy",
            json!({"members": [excluded], "access_right": "DenyAccess"}),
        )
        .await;
    let refusal = Refusal {
        status: LinkErrorStatus::Unauthorized,
        code: "ErrorAccessDenied",
        message: "Access to OData is disabled.",
        cause: FailureCause::MsAccessPolicy,
        fix: "application access policy",
    };
    assert_only_refused(&setup, &excluded, &refusal).await;
}

async fn a_mailbox_without_exchange_is_unauthorized(store: Store) {
    let setup = setup(&store).await;
    let unlicensed = setup.mailbox(1);
    setup
        .control
        .post(
            &format!("/users/{unlicensed}/mailbox"),
            json!({"enabled": false}),
        )
        .await;
    let refusal = Refusal {
        status: LinkErrorStatus::Unauthorized,
        code: "MailboxNotEnabledForRESTAPI",
        message: "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
        cause: FailureCause::MsNoMailbox,
        fix: "Exchange Online license",
    };
    assert_only_refused(&setup, &unlicensed, &refusal).await;
}

async fn a_deleted_user_is_an_authentication_error(store: Store) {
    let setup = setup(&store).await;
    let deleted = setup.mailbox(1);
    setup.control.delete(&format!("/users/{deleted}")).await;
    let refusal = Refusal {
        status: LinkErrorStatus::AuthenticationError,
        code: "ResourceNotFound",
        message: "Resource could not be discovered.",
        cause: FailureCause::MsUserGone,
        fix: "no longer exists in Entra ID",
    };
    assert_only_refused(&setup, &deleted, &refusal).await;
}

/// An account with sign-in blocked (`accountEnabled: false`) is no Graph failure:
/// Exchange still serves its mailbox to the app. It is what Google calls suspended, and
/// is handled the same way, through the runtime as the admin's *Rebuild* runs: the
/// account is skipped and its link unlinked with that reason, what was captured stays,
/// the other links keep syncing, and enabling it again brings the link back.
async fn a_disabled_account_is_unlinked_as_suspended(store: Store) {
    let emulated = MicrosoftEmulated::start(5, 30).await;
    let control = Control::of(&emulated);
    let runtime = Runtime::with_microsoft(
        store.clone(),
        MasterKey::generate(),
        RuntimeConfig {
            engine: EngineConfig {
                reference_now_ms: Some(emulated.now_ms()),
                ..config()
            },
            ..RuntimeConfig::default()
        },
        emulated.settings(),
    );
    let tenant = TenantId::new("acme");
    store.create_tenant(&tenant, "Acme").await.unwrap();
    let app = &emulated.running.app;
    runtime
        .connect_microsoft(
            &tenant,
            &app.tenant_id,
            &app.client_id,
            MicrosoftCredential::Secret(emulated.secret()),
            ADMIN,
        )
        .await
        .unwrap();
    let linked = runtime.rebuild(&tenant, ADMIN).await.unwrap().matched.len();
    runtime
        .set_capture_enabled(&tenant, true, ADMIN)
        .await
        .unwrap();
    let sync = || async {
        let engine = runtime.engine(&tenant).await.unwrap().expect("an engine");
        summaries(engine.sync_all().await.unwrap())
    };
    assert_eq!(sync().await.len(), linked);
    let before = store.count_activities(&tenant).await.unwrap();
    let disabled = store.links(&tenant).await.unwrap()[1].mailbox.clone();
    control
        .post(
            &format!("/users/{disabled}/account"),
            json!({"enabled": false}),
        )
        .await;

    let report = runtime.rebuild(&tenant, ADMIN).await.unwrap();
    assert!(
        report
            .unmatched
            .iter()
            .any(|s| s.email == disabled && s.reason == SkipReason::Suspended),
        "{:?}",
        report.unmatched
    );
    assert_eq!(report.unlinked.len(), 1, "{:?}", report.unlinked);
    assert_eq!(report.unlinked[0].reason, SkipReason::Suspended);
    let links = store.links(&tenant).await.unwrap();
    let unlinked = links.iter().find(|l| l.mailbox == disabled).unwrap();
    assert_eq!(unlinked.status, LinkStatus::Unlinked, "{unlinked:?}");

    let synced = sync().await;
    assert_eq!(synced.len(), linked - 1, "the unlinked one is left alone");
    for summary in &synced {
        assert_eq!(summary.mode, SyncMode::Incremental, "{summary:?}");
    }
    assert_eq!(store.count_activities(&tenant).await.unwrap(), before);

    control
        .post(
            &format!("/users/{disabled}/account"),
            json!({"enabled": true}),
        )
        .await;
    runtime.rebuild(&tenant, ADMIN).await.unwrap();
    assert_eq!(sync().await.len(), linked);
    assert_store_matches(&store, &tenant, emulated.truth(), 1000).await;
}

async fn an_expired_delta_resyncs_without_duplicates(store: Store) {
    let setup = setup(&store).await;
    setup.sync_everything().await;
    let before = setup.count_activities().await;
    let expired = setup.mailbox(1);
    setup
        .control
        .post(&format!("/users/{expired}/delta/expire"), json!({}))
        .await;

    let outcomes = setup.tenant.engine.sync_all().await.unwrap();
    let links = setup.links().await;
    for outcome in outcomes {
        let LinkOutcome::Synced { link, summary } = outcome else {
            panic!("a link failed: {outcome:?}");
        };
        let view = links.iter().find(|l| l.id == link).unwrap();
        assert_eq!(view.status, LinkStatus::Idle, "{view:?}");
        if view.mailbox == expired {
            assert_eq!(summary.mode, SyncMode::Resync, "{summary:?}");
            assert!(summary.already_known > 0, "{summary:?}");
            assert_eq!(summary.added, 0, "{summary:?}");
            assert_eq!(summary.unaccounted, 0, "{summary:?}");
        } else {
            assert_eq!(summary.mode, SyncMode::Incremental, "{summary:?}");
        }
    }
    let after = setup.count_activities().await;
    assert_eq!(after, before, "no duplicates");
    // The resync stored fresh delta links: the next run is incremental again.
    assert_nothing_new(&setup.sync_everything().await);
    assert_store_matches(&store, &setup.tenant.id, setup.emulated.truth(), 1000).await;
}

/// Each mailbox may make 3 requests a second; the engine gives up after 3 attempts,
/// its own backoff being a millisecond or two. Only waiting for Graph's `Retry-After`
/// (at least a second) gets a refused request through, so a complete sync shows the
/// engine waited as told.
async fn throttling_waits_as_told_then_completes(store: Store) {
    let config = EngineConfig {
        pacing: PacingConfig {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            ..PacingConfig::default()
        },
        ..EngineConfig::default()
    };
    let setup = setup_with(&store, config).await;
    setup
        .control
        .patch(
            "/throttling",
            json!({"requests_per_window": 3, "window_seconds": 60.0, "time_scale": 60.0}),
        )
        .await;

    let summaries = setup.sync_everything().await;
    assert_eq!(summaries.len(), setup.tenant.delegation.links.len());
    let counters = setup.control.get("/counters").await;
    let throttled = counters["total_throttled"].as_u64().unwrap();
    assert!(throttled > 0, "nothing was throttled: {counters}");
    assert!(setup.tenant.engine.pacing_stats().retries > 0);
    for link in setup.links().await {
        assert_eq!(link.status, LinkStatus::Idle, "{link:?}");
    }
    assert_store_matches(&store, &setup.tenant.id, setup.emulated.truth(), 1000).await;
}

/// Graph down (503 `ServiceNotAvailable`) beyond the engine's retries: a
/// `linkage_error` with Microsoft's message, retried on a timer with nothing for the
/// admin to fix; once Graph is back, the next run completes.
async fn an_outage_is_retried_by_itself_then_syncs(store: Store) {
    let config = EngineConfig {
        pacing: PacingConfig {
            max_attempts: 2,
            ..common::test_pacing()
        },
        ..EngineConfig::default()
    };
    let setup = setup_with(&store, config).await;
    setup
        .control
        .patch("/faults", json!({"server_error_probability": 1.0}))
        .await;
    let message = "The service is temporarily unavailable. Please retry later.";
    for outcome in setup.tenant.engine.sync_all().await.unwrap() {
        let LinkOutcome::Failed {
            status,
            message: got,
            ..
        } = &outcome
        else {
            panic!("expected a failure: {outcome:?}");
        };
        assert_eq!(*status, LinkErrorStatus::LinkageError);
        assert_eq!(got, message);
    }
    for link in setup.links().await {
        assert_eq!(link.status, LinkStatus::LinkageError, "{link:?}");
        assert_eq!(link.provider_message.as_deref(), Some(message));
        assert_eq!(link.status_reason.as_deref(), Some("ServiceNotAvailable"));
        assert!(
            link.next_attempt_ms.is_some(),
            "retried on a timer: {link:?}"
        );
        let cause = FailureCause::classify(
            HintProvider::Microsoft,
            FailureSite::Mailbox,
            LinkErrorStatus::LinkageError,
            link.status_reason.as_deref(),
            message,
        );
        assert_eq!(cause, FailureCause::ProviderUnavailable);
        assert!(!cause.needs_admin());
    }

    setup
        .control
        .patch("/faults", json!({"server_error_probability": 0.0}))
        .await;
    setup.sync_everything().await;
    assert_store_matches(&store, &setup.tenant.id, setup.emulated.truth(), 1000).await;
}

/// Graph's delta reports a message deleted or moved out of a folder as `@removed`.
/// Captured activity is immutable: nothing is taken back, nothing counted as new.
async fn removed_entries_leave_captured_activity_alone(store: Store) {
    let setup = setup(&store).await;
    setup.sync_everything().await;
    let before = setup
        .tenant
        .store
        .activities(&setup.tenant.id)
        .await
        .unwrap();
    let mailbox = setup.mailbox(0);
    let inbox: Vec<String> = {
        let tenant = setup.emulated.running.state.tenant();
        let user = tenant.user_by_address(&mailbox).expect("the user");
        let exchange = &tenant.mailboxes[&user.id];
        exchange
            .items_in(&exchange.well_known_id("inbox"))
            .iter()
            .map(|item| item.immutable_id.clone())
            .collect()
    };
    assert!(inbox.len() >= 2, "{inbox:?}");
    setup
        .control
        .delete(&format!("/users/{mailbox}/messages/{}", inbox[0]))
        .await;
    setup
        .control
        .post(
            &format!("/users/{mailbox}/messages/{}/move", inbox[1]),
            json!({"folder": "deleteditems"}),
        )
        .await;

    assert_nothing_new(&setup.sync_everything().await);
    let after = setup
        .tenant
        .store
        .activities(&setup.tenant.id)
        .await
        .unwrap();
    let keys = |activities: &[tributary_store::ActivityView]| {
        activities
            .iter()
            .map(|a| (a.dedupe_key.clone(), a.sightings.len()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(&after),
        keys(&before),
        "activity and sightings unchanged"
    );
    assert_store_matches(&store, &setup.tenant.id, setup.emulated.truth(), 1000).await;
}
