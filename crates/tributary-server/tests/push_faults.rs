//! Push under the faults providers are known for (issue #16), written once and run per
//! provider (Gmail through Pub/Sub, Microsoft Graph subscriptions) and store backend:
//! a real server with push on (its own address as public URL), the runtime opening the
//! channels after each sync as `serve --push` does, and its worker running the jobs.
//! The emulator's push faults (`PUT /control/push/faults`, docs/emulator-push.md) are
//! set once the links are on push, then live mail is delivered to one mailbox:
//!
//! - every notification duplicated, half of them reordered: each message is captured
//!   exactly once, through push alone (no poll is due for an hour);
//! - every notification dropped: the safety poll of a link on push (2 s here) captures
//!   every message anyway, while no notification reached the server.

use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::net::TcpListener;
use tributary_emulator::microsoft::{MicrosoftConfig, RunningMicrosoft, TenantSource};
use tributary_emulator::org::OrgConfig;
use tributary_emulator::server::{EmulatorConfig, OrgSource, RunningEmulator};
use tributary_google::GoogleEndpoints;
use tributary_server::{AppState, PushConfig, ServerConfig};
use tributary_store::testing::TestDatabase;
use tributary_store::{Backend, LinkStatus, MasterKey, PushMode, Store, TenantId};
use tributary_sync::push::PushSettings;
use tributary_sync::{
    EngineConfig, MicrosoftCredential, MicrosoftSettings, PacingConfig, Runtime, RuntimeConfig,
    Worker, WorkerConfig,
};

/// For each named `async fn(Provider, Store)`, a module with one test per provider and
/// backend, in the style of the store's `on_both_backends!`.
macro_rules! on_every_provider {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::{Provider, run};
            use tributary_store::Backend;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn google_on_sqlite() {
                run(Provider::Google, Backend::Sqlite, super::$name).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn google_on_postgres() {
                run(Provider::Google, Backend::Postgres, super::$name).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn microsoft_on_sqlite() {
                run(Provider::Microsoft, Backend::Sqlite, super::$name).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn microsoft_on_postgres() {
                run(Provider::Microsoft, Backend::Postgres, super::$name).await;
            }
        }
    )*};
}

on_every_provider!(
    duplicated_and_reordered_notifications_capture_each_message_once,
    dropped_notifications_are_caught_by_the_safety_poll,
);

/// Runs `$setup`'s worker until `$check` (an async expression) holds; fails saying
/// `$what` never happened after [`PATIENCE`].
macro_rules! eventually {
    ($setup:expr, $what:expr, $check:expr) => {{
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            $setup.pump().await;
            if $check {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                $setup.never(&$what).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }};
}

/// Long enough for a notification on its way or a safety poll; past it the test fails
/// saying what never happened.
const PATIENCE: Duration = Duration::from_secs(60);
const ACTOR: &str = "admin@test";
/// Messages delivered per scenario.
const MESSAGES: usize = 6;
const SENDER: &str = "pat@partner.example";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    Google,
    Microsoft,
}

/// Runs `body` on a fresh store of `backend` (skipped without PostgreSQL), closed
/// afterwards even when `body` panics.
async fn run<F, Fut>(provider: Provider, backend: Backend, body: F)
where
    F: FnOnce(Provider, Store) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Some(database) = TestDatabase::open(backend).await else {
        return;
    };
    let outcome = tokio::spawn(body(provider, database.store.clone())).await;
    database.close().await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// How often a link is synced without a notification.
struct Polls {
    /// A link on polling.
    poll: Duration,
    /// A link on push: the safety poll (never sooner than `poll`).
    push_poll: Duration,
}

/// Only a notification brings a sync forward within the test.
const PUSH_ONLY: Polls = Polls {
    poll: Duration::from_secs(300),
    push_poll: Duration::from_secs(3600),
};

/// A safety poll short enough to wait for.
const SHORT_SAFETY_POLL: Polls = Polls {
    poll: Duration::from_secs(2),
    push_poll: Duration::from_secs(2),
};

enum Emulated {
    Google(RunningEmulator),
    Microsoft(RunningMicrosoft),
}

/// The emulator's notification counters since it started (`totals` of its control
/// API's push report).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
struct Totals {
    published: u64,
    delivered: u64,
    abandoned: u64,
    dropped: u64,
    duplicated: u64,
    reordered: u64,
}

impl Totals {
    /// Notifications (and copies) not yet acknowledged, given up or dropped: sent,
    /// retried or held back to be overtaken (a held one keeps its copies).
    fn outstanding(&self) -> u64 {
        (self.published + self.duplicated)
            .saturating_sub(self.dropped + self.delivered + self.abandoned)
    }

    fn since(&self, earlier: &Totals) -> Totals {
        Totals {
            published: self.published - earlier.published,
            delivered: self.delivered - earlier.delivered,
            abandoned: self.abandoned - earlier.abandoned,
            dropped: self.dropped - earlier.dropped,
            duplicated: self.duplicated - earlier.duplicated,
            reordered: self.reordered - earlier.reordered,
        }
    }
}

/// A tenant connected to `provider`'s emulator through the runtime, with push on,
/// every link synced and on push; `mailbox` is the one mail is delivered to.
struct Pushed {
    provider: Provider,
    emulated: Emulated,
    runtime: Runtime,
    worker: Worker,
    tenant: TenantId,
    mailbox: String,
    /// The activities captured before the faults were set.
    before: BTreeSet<i64>,
    control: reqwest::Client,
}

impl Pushed {
    async fn start(provider: Provider, store: Store, polls: Polls) -> Pushed {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let organization = OrgConfig {
            users: 4,
            messages_per_user: 4,
            ..OrgConfig::default()
        };
        let emulated = match provider {
            Provider::Google => Emulated::Google(
                tributary_emulator::server::start(EmulatorConfig {
                    organization: OrgSource::Generate(organization),
                    ..EmulatorConfig::default()
                })
                .await
                .expect("the Google emulator starts"),
            ),
            Provider::Microsoft => Emulated::Microsoft(
                tributary_emulator::microsoft::start(MicrosoftConfig {
                    organization: TenantSource::Generate(organization),
                    ..MicrosoftConfig::default()
                })
                .await
                .expect("the Microsoft emulator starts"),
            ),
        };
        let (endpoints, microsoft, push, control) = match &emulated {
            Emulated::Google(google) => (
                GoogleEndpoints::from_base_url(&google.base_url),
                MicrosoftSettings::default(),
                PushConfig {
                    google_certs_url: format!("{}/oauth2/v3/certs", google.base_url),
                },
                reqwest::Client::new(),
            ),
            Emulated::Microsoft(microsoft) => {
                let ca = reqwest::Certificate::from_pem(microsoft.ca_pem.as_bytes()).unwrap();
                (
                    GoogleEndpoints::default(),
                    MicrosoftSettings::at(&microsoft.base_url, vec![microsoft.ca_pem.clone()]),
                    PushConfig::default(),
                    reqwest::Client::builder()
                        .tls_certs_only([ca])
                        .build()
                        .unwrap(),
                )
            }
        };
        let config = RuntimeConfig {
            endpoints,
            engine: EngineConfig {
                pacing: PacingConfig {
                    initial_backoff: Duration::from_millis(5),
                    max_backoff: Duration::from_millis(200),
                    ..PacingConfig::default()
                },
                // Live mail is dated by the real clock, which the capture window must
                // include.
                reference_now_ms: None,
                ..EngineConfig::default()
            },
            worker: WorkerConfig {
                worker_id: "push-faults".into(),
                poll_interval: polls.poll,
                push_poll_interval: polls.push_poll,
                ..WorkerConfig::default()
            },
            push: Some(PushSettings::new(&url).expect("a usable public URL")),
            ..RuntimeConfig::default()
        };
        let runtime = Runtime::with_microsoft(store, MasterKey::generate(), config, microsoft);
        let server = ServerConfig {
            public_url: url,
            push: Some(push),
            ..ServerConfig::default()
        };
        tokio::spawn(tributary_server::serve(
            listener,
            AppState::new(runtime.clone(), server),
            std::future::pending(),
        ));
        let tenant = TenantId::new("acme");
        runtime
            .store()
            .create_tenant(&tenant, "Acme")
            .await
            .unwrap();
        match &emulated {
            Emulated::Google(google) => {
                let key = serde_json::to_vec(&google.key_file).unwrap();
                runtime
                    .connect_google(&tenant, &key, &google.info.admin_email, ACTOR)
                    .await
                    .expect("the key is accepted");
            }
            Emulated::Microsoft(microsoft) => {
                let app = &microsoft.app;
                runtime
                    .connect_microsoft(
                        &tenant,
                        &app.tenant_id,
                        &app.client_id,
                        MicrosoftCredential::Secret(app.client_secret.clone()),
                        ACTOR,
                    )
                    .await
                    .expect("the app registration is accepted");
            }
        }
        runtime.rebuild(&tenant, ACTOR).await.unwrap();
        runtime
            .set_capture_enabled(&tenant, true, ACTOR)
            .await
            .unwrap();
        let worker = Worker::for_runtime(runtime.clone());
        let mut pushed = Pushed {
            provider,
            emulated,
            runtime,
            worker,
            tenant,
            mailbox: String::new(),
            before: BTreeSet::new(),
            control,
        };
        pushed.mailbox = pushed.settle_on_push().await;
        pushed.before = pushed.activity_ids().await;
        pushed
    }

    /// Runs the first syncs, which open the channels, and waits until every link is
    /// synced and on push and the notifications the opening sent are acknowledged;
    /// answers a mailbox on push.
    async fn settle_on_push(&self) -> String {
        eventually!(
            self,
            "every link synced, on push, and the opening notifications acknowledged",
            self.on_push_and_settled().await
        );
        let links = self.runtime.store().links(&self.tenant).await.unwrap();
        links[0].mailbox.clone()
    }

    async fn on_push_and_settled(&self) -> bool {
        let store = self.runtime.store();
        let links = store.links(&self.tenant).await.unwrap();
        let modes = store.link_push_modes(&self.tenant).await.unwrap();
        let synced = !links.is_empty()
            && links
                .iter()
                .all(|l| l.status == LinkStatus::Idle && l.last_summary.is_some());
        let on_push = links.iter().all(|l| {
            modes
                .iter()
                .any(|m| m.link == l.id && m.mode == PushMode::Push)
        });
        synced && on_push && self.totals().await.outstanding() == 0
    }

    /// Runs the jobs due now.
    async fn pump(&self) {
        for _ in 0..1_000 {
            if self
                .worker
                .run_once()
                .await
                .expect("the job runs")
                .is_none()
            {
                return;
            }
        }
        panic!("jobs kept coming after 1,000 runs");
    }

    /// Fails with `what` and the emulator's counters: it never happened.
    async fn never(&self, what: &str) -> ! {
        let totals = self.totals().await;
        panic!(
            "{:?}: never {what} within {PATIENCE:?}; push totals {totals:?}",
            self.provider
        );
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let base = match &self.emulated {
            Emulated::Google(google) => &google.info.control_url,
            Emulated::Microsoft(microsoft) => &microsoft.info.control_url,
        };
        let response = self
            .control
            .request(method, format!("{base}{path}"))
            .json(&body)
            .send()
            .await
            .expect("the control API answers");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "control {path}: {status} {body}");
        body
    }

    async fn totals(&self) -> Totals {
        let report = match self.provider {
            Provider::Google => "/push",
            Provider::Microsoft => "/subscriptions",
        };
        let report = self
            .control(reqwest::Method::GET, report, Value::Null)
            .await;
        serde_json::from_value(report["totals"].clone())
            .unwrap_or_else(|e| panic!("push totals unreadable ({e}): {report}"))
    }

    async fn set_faults(&self, faults: Value) {
        self.control(reqwest::Method::PUT, "/push/faults", faults)
            .await;
    }

    /// Delivers `subject` from an external sender to the mailbox and waits until the
    /// emulator has published its notification (each message its own: Gmail coalesces
    /// the changes of one second).
    async fn deliver(&self, subject: &str) {
        let published = self.totals().await.published;
        let from = match self.provider {
            Provider::Google => json!(format!("Pat Partner <{SENDER}>")),
            Provider::Microsoft => json!({"name": "Pat Partner", "address": SENDER}),
        };
        let mail =
            json!({"from": from, "to": [self.mailbox], "subject": subject, "body": "Hello."});
        self.control(reqwest::Method::POST, "/messages/deliver", mail)
            .await;
        eventually!(
            self,
            format!("a notification published for {subject:?}"),
            self.totals().await.published > published
        );
    }

    async fn activity_ids(&self) -> BTreeSet<i64> {
        let activities = self.runtime.store().activities(&self.tenant).await.unwrap();
        activities.into_iter().map(|a| a.id).collect()
    }

    /// The subjects of the activities captured since the faults were set, with the
    /// mailboxes that saw each.
    async fn captured(&self) -> Vec<(String, Vec<String>)> {
        let activities = self.runtime.store().activities(&self.tenant).await.unwrap();
        let mut captured: Vec<(String, Vec<String>)> = activities
            .into_iter()
            .filter(|a| !self.before.contains(&a.id))
            .map(|a| {
                let mailboxes = a.sightings.into_iter().map(|(m, _, _)| m).collect();
                (a.subject.unwrap_or_default(), mailboxes)
            })
            .collect();
        captured.sort();
        captured
    }

    async fn all_captured(&self, subjects: &[String]) -> bool {
        let captured = self.captured().await;
        subjects
            .iter()
            .all(|s| captured.iter().any(|(c, _)| c == s))
    }

    /// The store holds exactly the delivered messages: one activity each, seen once,
    /// in the mailbox they were delivered to.
    async fn assert_captured_exactly(&self, subjects: &[String]) {
        let mut expected: Vec<(String, Vec<String>)> = subjects
            .iter()
            .map(|s| (s.clone(), vec![self.mailbox.to_ascii_lowercase()]))
            .collect();
        expected.sort();
        let captured: Vec<(String, Vec<String>)> = self
            .captured()
            .await
            .into_iter()
            .map(|(s, m)| (s, m.iter().map(|m| m.to_ascii_lowercase()).collect()))
            .collect();
        assert_eq!(
            captured, expected,
            "{:?}: the store differs from what was delivered",
            self.provider
        );
    }

    async fn mode(&self) -> PushMode {
        let links = self.runtime.store().links(&self.tenant).await.unwrap();
        let link = links.iter().find(|l| l.mailbox == self.mailbox).unwrap();
        let modes = self
            .runtime
            .store()
            .link_push_modes(&self.tenant)
            .await
            .unwrap();
        modes
            .into_iter()
            .find(|m| m.link == link.id)
            .map(|m| m.mode)
            .expect("the link's push mode is recorded")
    }
}

fn subjects(scenario: &str) -> Vec<String> {
    (1..=MESSAGES).map(|n| format!("{scenario} #{n}")).collect()
}

async fn duplicated_and_reordered_notifications_capture_each_message_once(
    provider: Provider,
    store: Store,
) {
    let setup = Pushed::start(provider, store, PUSH_ONLY).await;
    let faults = json!({"duplicate_probability": 1.0, "reorder_probability": 0.5, "seed": 7});
    setup.set_faults(faults).await;
    let start = setup.totals().await;
    let subjects = subjects("Duplicated and reordered");
    for subject in &subjects {
        setup.deliver(subject).await;
    }
    eventually!(
        setup,
        "every message captured and every copy acknowledged",
        setup.all_captured(&subjects).await && setup.totals().await.outstanding() == 0
    );
    // The syncs the last copies brought forward.
    setup.pump().await;
    let faults = setup.totals().await.since(&start);
    assert!(
        faults.duplicated > 0 && faults.reordered > 0,
        "{provider:?}: {faults:?}"
    );
    assert!(
        faults.delivered > faults.published,
        "{provider:?}: the duplicates reached the server: {faults:?}"
    );
    setup.assert_captured_exactly(&subjects).await;
}

async fn dropped_notifications_are_caught_by_the_safety_poll(provider: Provider, store: Store) {
    let setup = Pushed::start(provider, store, SHORT_SAFETY_POLL).await;
    setup
        .set_faults(json!({"drop_probability": 1.0, "seed": 7}))
        .await;
    let start = setup.totals().await;
    let subjects = subjects("Dropped");
    for subject in &subjects {
        setup.deliver(subject).await;
    }
    eventually!(
        setup,
        "every message captured by the safety poll",
        setup.all_captured(&subjects).await
    );
    let faults = setup.totals().await.since(&start);
    assert!(
        faults.published >= MESSAGES as u64 && faults.dropped == faults.published,
        "{provider:?}: every notification was dropped: {faults:?}"
    );
    assert_eq!(
        faults.delivered, 0,
        "{provider:?}: a notification reached the server: {faults:?}"
    );
    assert_eq!(setup.mode().await, PushMode::Push, "{provider:?}");
    setup.assert_captured_exactly(&subjects).await;
}
