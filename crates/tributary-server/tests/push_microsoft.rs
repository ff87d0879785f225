//! Microsoft Graph push received by the server (`POST /push/microsoft/{tenant}` and
//! `…/lifecycle`), against the Microsoft emulator's subscriptions: the Graph provider's
//! `open_push` (called through `Connector`, as the engine's push lifecycle calls it)
//! passes the validation handshake at this server, and the emulator's notifications of
//! new mail bring the link's sync forward while no poll is due. A wrong `clientState`,
//! an unknown subscription and a forged lifecycle event change nothing; lifecycle
//! events do what Graph asks; `renew_push` extends a subscription (or makes it again
//! when Graph removed it) and `close_push` stops its deliveries. On SQLite and
//! PostgreSQL.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tributary_emulator::microsoft::{MicrosoftConfig, RunningMicrosoft, TenantSource};
use tributary_emulator::org::OrgConfig;
use tributary_server::{AppState, PushConfig, ServerConfig};
use tributary_store::testing::TestDatabase;
use tributary_store::{
    Backend, ConnectionKind, LinkStatus, MasterKey, PushChannelRecord, TenantId, secret_hash,
};
use tributary_sync::push::{OpenedChannel, PushLink, PushStream, PushTarget};
use tributary_sync::{
    Connector, EngineConfig, JobOutcome, MicrosoftCredential, MicrosoftSettings, Pacer,
    PacingConfig, Runtime, RuntimeConfig, Worker,
};

/// Long enough for a notification on its way; a missing one fails the test.
const PATIENCE: Duration = Duration::from_secs(30);
const ADMIN: &str = "admin@test";

/// A tenant connected to the emulated Microsoft 365 organization, every link synced
/// once, and a server with push on whose public URL is its own address.
struct Setup {
    database: TestDatabase,
    emulated: RunningMicrosoft,
    runtime: Runtime,
    tenant: TenantId,
    /// The push server's public URL.
    url: String,
    control: reqwest::Client,
    http: reqwest::Client,
    connector: Connector,
    link: PushLink,
}

async fn setup(backend: Backend) -> Option<Setup> {
    let database = TestDatabase::open(backend).await?;
    let emulated = tributary_emulator::microsoft::start(MicrosoftConfig {
        organization: TenantSource::Generate(OrgConfig {
            users: 3,
            messages_per_user: 5,
            ..OrgConfig::default()
        }),
        ..MicrosoftConfig::default()
    })
    .await
    .expect("the Microsoft emulator starts");
    let config = RuntimeConfig {
        engine: EngineConfig {
            pacing: PacingConfig {
                initial_backoff: Duration::from_millis(5),
                max_backoff: Duration::from_millis(200),
                ..PacingConfig::default()
            },
            // Live mail is dated by the real clock, which the capture window must
            // include (the generated mailboxes need not be captured here).
            reference_now_ms: None,
            ..EngineConfig::default()
        },
        ..RuntimeConfig::default()
    };
    let settings = MicrosoftSettings::at(&emulated.base_url, vec![emulated.ca_pem.clone()]);
    let runtime = Runtime::with_microsoft(
        database.store.clone(),
        MasterKey::generate(),
        config,
        settings,
    );
    let tenant = TenantId::new("acme");
    let store = runtime.store();
    store.create_tenant(&tenant, "Acme").await.unwrap();
    store
        .create_tenant(&TenantId::new("globex"), "Globex")
        .await
        .unwrap();
    let app = &emulated.app;
    runtime
        .connect_microsoft(
            &tenant,
            &app.tenant_id,
            &app.client_id,
            MicrosoftCredential::Secret(app.client_secret.clone()),
            ADMIN,
        )
        .await
        .expect("the app registration is accepted");
    runtime.rebuild(&tenant, ADMIN).await.unwrap();
    runtime
        .set_capture_enabled(&tenant, true, ADMIN)
        .await
        .unwrap();
    drain(&runtime).await;
    let linked = store
        .links(&tenant)
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.status == LinkStatus::Idle)
        .expect("a synced link");
    let connector = runtime
        .engine_for(&tenant, ConnectionKind::Microsoft)
        .await
        .unwrap()
        .expect("a Microsoft engine")
        .connector()
        .clone();
    let link = PushLink {
        tenant: tenant.clone(),
        link: linked.id,
        mailbox: linked.mailbox.clone(),
        pacer: Arc::new(Pacer::new(PacingConfig::default())),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = ServerConfig {
        public_url: url.clone(),
        push: Some(PushConfig::default()),
        ..ServerConfig::default()
    };
    tokio::spawn(tributary_server::serve(
        listener,
        AppState::new(runtime.clone(), server),
        std::future::pending(),
    ));
    let control = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(emulated.ca_pem.as_bytes()).unwrap()])
        .build()
        .unwrap();
    Some(Setup {
        database,
        emulated,
        runtime,
        tenant,
        url,
        control,
        http: reqwest::Client::new(),
        connector,
        link,
    })
}

/// Runs due jobs until none is due now.
async fn drain(runtime: &Runtime) {
    let worker = Worker::for_runtime(runtime.clone());
    for _ in 0..500 {
        if worker.run_once().await.expect("the job runs").is_none() {
            return;
        }
    }
    panic!("jobs kept coming after 500 runs");
}

/// Waits until `check` holds, or fails with `what`.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Setup {
    fn target(&self) -> PushTarget {
        PushTarget::new(&self.url, &self.tenant)
    }

    fn endpoint(&self) -> String {
        self.target().microsoft_url()
    }

    fn lifecycle_endpoint(&self) -> String {
        self.target().microsoft_lifecycle_url()
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.emulated.info.control_url);
        let response = self.control.request(method, url).json(&body).send().await;
        let response = response.expect("the control API answers");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "control {path}: {status} {body}");
        body
    }

    /// The emulator's subscriptions and recent delivery attempts.
    async fn subscriptions(&self) -> Value {
        self.control(reqwest::Method::GET, "/subscriptions", Value::Null)
            .await
    }

    async fn subscription(&self, id: &str) -> Option<Value> {
        let all = self.subscriptions().await;
        all["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .cloned()
    }

    /// Deliveries to subscription `id` this server acknowledged.
    async fn acknowledged(&self, id: &str) -> usize {
        let all = self.subscriptions().await;
        all["recent"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["label"] == id && a["acknowledged"] == true)
            .count()
    }

    /// Every delivery attempt to subscription `id`.
    async fn attempts(&self, id: &str) -> usize {
        let all = self.subscriptions().await;
        all["recent"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["label"] == id)
            .count()
    }

    async fn deliver(&self, subject: &str) {
        let mail = json!({"from": {"name": "Pat Partner", "address": "pat@partner.example"},
            "to": [self.link.mailbox], "subject": subject, "body": "Hello."});
        self.control(reqwest::Method::POST, "/messages/deliver", mail)
            .await;
    }

    /// Opens the link's channel for `stream` and stores it, as the engine's lifecycle
    /// does (only the secret's hash).
    async fn open(&self, stream: PushStream) -> OpenedChannel {
        let opened = self
            .connector
            .open_push(&self.link, stream, &self.target())
            .await
            .expect("the subscription is made");
        self.save(&opened).await;
        opened
    }

    async fn save(&self, opened: &OpenedChannel) {
        let record = PushChannelRecord {
            link: self.link.link,
            stream: opened.stream.as_str().to_owned(),
            channel_id: opened.channel_id.clone(),
            expires_ms: opened.expires_ms,
            secret_hash: opened.secret.as_deref().map(secret_hash),
            renewed_ms: chrono::Utc::now().timestamp_millis(),
        };
        self.runtime
            .store()
            .save_push_channel(&self.tenant, &record)
            .await
            .unwrap();
    }

    async fn stored(&self, stream: PushStream) -> Option<PushChannelRecord> {
        self.runtime
            .store()
            .push_channels(&self.tenant, self.link.link)
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.stream == stream.as_str())
    }

    /// The next due job, which must be a sync of the link; fails if none comes.
    async fn expect_sync(&self) {
        let worker = Worker::for_runtime(self.runtime.clone());
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            match worker.run_once().await.unwrap() {
                Some(JobOutcome::Synced { link, .. }) => {
                    assert_eq!(link, self.link.link, "another link was synced");
                    return;
                }
                Some(other) => panic!("not a sync of the link: {other:?}"),
                None => {}
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no sync was brought forward; the emulator's push: {}",
                self.subscriptions().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn nothing_due(&self, why: &str) {
        let worker = Worker::for_runtime(self.runtime.clone());
        let outcome = worker.run_once().await.unwrap();
        assert!(outcome.is_none(), "{why}: {outcome:?}");
    }

    /// POSTs `body` to `url`, answering the status.
    async fn post(&self, url: &str, body: &Value) -> StatusCode {
        self.http
            .post(url)
            .json(body)
            .send()
            .await
            .unwrap()
            .status()
    }

    async fn stop(self) {
        self.database.close().await;
    }
}

fn entry(subscription: &str, client_state: &str) -> Value {
    json!({"value": [{"subscriptionId": subscription, "clientState": client_state,
        "changeType": "created", "resource": "Users/x/Messages/y",
        "subscriptionExpirationDateTime": "2030-01-01T00:00:00Z", "tenantId": "t"}]})
}

fn lifecycle(subscription: &str, client_state: &str, event: &str) -> Value {
    json!({"value": [{"subscriptionId": subscription, "clientState": client_state,
        "lifecycleEvent": event, "subscriptionExpirationDateTime": "2030-01-01T00:00:00Z"}]})
}

async fn notifications_schedule_the_link_s_sync_and_nothing_else(backend: Backend) {
    let Some(setup) = setup(backend).await else {
        return;
    };
    setup
        .nothing_due("no poll is due after the first sync")
        .await;

    // The handshake: the token echoed as plain text, whatever it holds.
    let token = "Validation: Testing client application reachability <b>x</b>";
    let mut url = reqwest::Url::parse(&setup.endpoint()).unwrap();
    url.query_pairs_mut().append_pair("validationToken", token);
    let answer = setup.http.post(url).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(
        answer.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(answer.headers()["x-content-type-options"], "nosniff");
    assert_eq!(answer.text().await.unwrap(), token);

    // A subscription on every message of the mailbox, validated at this server.
    let opened = setup.open(PushStream::Mail).await;
    let secret = opened.secret.clone().expect("a clientState");
    assert!(secret.len() >= 32, "a long random secret");
    let remaining = opened.expires_ms - chrono::Utc::now().timestamp_millis();
    assert!(
        remaining > 2 * 24 * 3_600_000 && remaining <= 7 * 24 * 3_600_000,
        "{remaining}"
    );
    let id = opened.channel_id.clone();
    let made = setup.subscription(&id).await.expect("Graph has it");
    assert_eq!(
        made["resource"],
        format!("users/{}/messages", setup.link.mailbox)
    );
    assert_eq!(made["notification_url"], setup.endpoint());
    assert_eq!(
        made["lifecycle_notification_url"],
        setup.lifecycle_endpoint()
    );
    setup
        .nothing_due("making the subscription schedules nothing")
        .await;

    // Refused, and changing nothing: a wrong clientState, an unknown subscription, a
    // forged lifecycle event, another tenant's endpoint. All acknowledged (202).
    let endpoint = setup.endpoint();
    let wrong = setup.post(&endpoint, &entry(&id, "not-the-secret")).await;
    assert_eq!(wrong, StatusCode::ACCEPTED);
    let unknown = setup.post(&endpoint, &entry("0000-unknown", &secret)).await;
    assert_eq!(unknown, StatusCode::ACCEPTED);
    let missing = json!({"value": [{"subscriptionId": id}]});
    assert_eq!(setup.post(&endpoint, &missing).await, StatusCode::ACCEPTED);
    let forged = lifecycle(&id, "guess", "subscriptionRemoved");
    let lifecycle_url = setup.lifecycle_endpoint();
    assert_eq!(
        setup.post(&lifecycle_url, &forged).await,
        StatusCode::ACCEPTED
    );
    let globex = PushTarget::new(&setup.url, &TenantId::new("globex")).microsoft_url();
    assert_eq!(
        setup.post(&globex, &entry(&id, &secret)).await,
        StatusCode::ACCEPTED
    );
    setup
        .nothing_due("a refused notification scheduled a sync")
        .await;
    assert!(
        setup.stored(PushStream::Mail).await.is_some(),
        "a forged subscriptionRemoved deleted the channel"
    );
    // Without push configured (as by default) there is no such route.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let off = format!("http://{}", listener.local_addr().unwrap());
    let config = ServerConfig {
        public_url: off.clone(),
        ..ServerConfig::default()
    };
    tokio::spawn(tributary_server::serve(
        listener,
        AppState::new(setup.runtime.clone(), config),
        std::future::pending(),
    ));
    let off = PushTarget::new(&off, &setup.tenant).microsoft_url();
    assert_eq!(
        setup.post(&off, &entry(&id, &secret)).await,
        StatusCode::NOT_FOUND
    );
    // Not a notification at all: refused with the reason.
    let answer = setup
        .http
        .post(&endpoint)
        .body("{\"value\": 3}")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let huge = json!({"value": vec![json!({"subscriptionId": "x"}); 1001]});
    assert_eq!(
        setup.post(&endpoint, &huge).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    // The emulator's own notification with a clientState that is not the stored one
    // (the hash of another secret) is acknowledged and schedules nothing.
    let mut tampered = setup.stored(PushStream::Mail).await.unwrap();
    let genuine = tampered.clone();
    tampered.secret_hash = Some(secret_hash("another secret"));
    let store = setup.runtime.store();
    store
        .save_push_channel(&setup.tenant, &tampered)
        .await
        .unwrap();
    let before = setup.acknowledged(&id).await;
    setup.deliver("Refused push").await;
    eventually("the tampered notification is acknowledged", || async {
        setup.acknowledged(&id).await > before
    })
    .await;
    setup
        .nothing_due("a wrong clientState scheduled a sync")
        .await;

    // The genuine one brings the link's sync forward, and the mail is captured.
    store
        .save_push_channel(&setup.tenant, &genuine)
        .await
        .unwrap();
    setup.deliver("Pushed in").await;
    setup.expect_sync().await;
    let activities = store.activities(&setup.tenant).await.unwrap();
    let pushed = |subject: &str| {
        activities
            .iter()
            .filter(|a| a.subject.as_deref() == Some(subject))
            .count()
    };
    assert_eq!(pushed("Pushed in"), 1, "captured by the pushed sync");
    assert_eq!(pushed("Refused push"), 1, "and what came before it too");

    // Calendars: a subscription on every event of the mailbox's calendars.
    let calendar = setup.open(PushStream::Calendar).await;
    let made = setup.subscription(&calendar.channel_id).await.unwrap();
    assert_eq!(
        made["resource"],
        format!("users/{}/events", setup.link.mailbox)
    );
    assert_ne!(
        calendar.secret, opened.secret,
        "each channel has its own secret"
    );
    setup.stop().await;
}

async fn lifecycle_renewal_and_close(backend: Backend) {
    let Some(setup) = setup(backend).await else {
        return;
    };
    let opened = setup.open(PushStream::Mail).await;
    let id = opened.channel_id.clone();
    let lifecycle_path = format!("/subscriptions/{id}/lifecycle");
    let event = |name: &str| json!({ "lifecycleEvent": name });

    // reauthorizationRequired: the channel is due for renewal, and the sync that
    // renews it is brought forward.
    setup
        .control(
            reqwest::Method::POST,
            &lifecycle_path,
            event("reauthorizationRequired"),
        )
        .await;
    eventually("the channel is marked due", || async {
        setup
            .stored(PushStream::Mail)
            .await
            .is_some_and(|c| c.expires_ms == 0)
    })
    .await;
    setup.expect_sync().await;
    assert_eq!(
        setup.subscription(&id).await.unwrap()["reauthorization_required"],
        true
    );

    // Renewed with a PATCH: the same subscription, later, reauthorized, same secret.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let due = setup.stored(PushStream::Mail).await.unwrap();
    let renewed = setup
        .connector
        .renew_push(&setup.link, &due, &setup.target())
        .await
        .unwrap();
    assert_eq!(renewed.channel_id, id);
    assert_eq!(renewed.secret, None, "the clientState is unchanged");
    assert!(renewed.expires_ms > opened.expires_ms, "extended");
    let at_graph = setup.subscription(&id).await.unwrap();
    assert_eq!(at_graph["reauthorization_required"], false);
    let graph_expiry: chrono::DateTime<chrono::Utc> =
        at_graph["expiration"].as_str().unwrap().parse().unwrap();
    assert_eq!(graph_expiry.timestamp_millis(), renewed.expires_ms);
    setup
        .save(&OpenedChannel {
            secret: opened.secret.clone(),
            ..renewed
        })
        .await;

    // missed: only the sync.
    setup
        .control(reqwest::Method::POST, &lifecycle_path, event("missed"))
        .await;
    setup.expect_sync().await;
    assert_eq!(setup.stored(PushStream::Mail).await.unwrap().channel_id, id);

    // subscriptionRemoved: the record goes, and the sync is brought forward.
    setup
        .control(
            reqwest::Method::POST,
            &lifecycle_path,
            event("subscriptionRemoved"),
        )
        .await;
    eventually("the removed channel is forgotten", || async {
        setup.stored(PushStream::Mail).await.is_none()
    })
    .await;
    setup.expect_sync().await;

    // Renewing a subscription Graph no longer has makes a new one.
    let remade = setup
        .connector
        .renew_push(&setup.link, &due, &setup.target())
        .await
        .unwrap();
    assert_ne!(remade.channel_id, id);
    assert!(remade.secret.is_some(), "a new subscription, a new secret");
    assert!(setup.subscription(&remade.channel_id).await.is_some());
    setup.save(&remade).await;

    // Closed: Graph has it no more, closing again is fine, and new mail is not pushed.
    let record = setup.stored(PushStream::Mail).await.unwrap();
    setup
        .connector
        .close_push(&setup.link, &record)
        .await
        .unwrap();
    assert!(setup.subscription(&remade.channel_id).await.is_none());
    setup
        .connector
        .close_push(&setup.link, &record)
        .await
        .unwrap();
    let attempts = setup.attempts(&remade.channel_id).await;
    setup.deliver("After close").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(setup.attempts(&remade.channel_id).await, attempts);
    setup
        .nothing_due("a closed subscription still pushed")
        .await;
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_push_on_sqlite() {
    notifications_schedule_the_link_s_sync_and_nothing_else(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_push_on_postgres() {
    notifications_schedule_the_link_s_sync_and_nothing_else(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_lifecycle_renewal_and_close_on_sqlite() {
    lifecycle_renewal_and_close(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_lifecycle_renewal_and_close_on_postgres() {
    lifecycle_renewal_and_close(Backend::Postgres).await;
}
