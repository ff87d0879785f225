//! Gmail push received by the server (`POST /push/google/{tenant}`), against the
//! emulator's Pub/Sub: a delivery signed by the emulator for this tenant's endpoint brings
//! the mailbox's sync forward, so new mail is captured while no poll is due; forged,
//! unsigned and wrong-audience deliveries are refused and schedule nothing; duplicated
//! and reordered notifications capture each message once. On SQLite and PostgreSQL.
//!
//! The topic, subscription and watch are made here with the emulator's Pub/Sub and Gmail
//! calls, as the admin's Pub/Sub setup would: the server does not make them yet
//! (docs/push.md, "Not built yet").

mod api_support;

use api_support::{Backend, Server, TestStore, emulator, ordinary_user};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tributary_emulator::server::RunningEmulator;
use tributary_server::{AppState, PushConfig, ServerConfig};
use tributary_store::TenantId;
use tributary_sync::Worker;

const PUBSUB_SCOPE: &str = "https://www.googleapis.com/auth/pubsub";
const GMAIL_SCOPE: &str = "https://www.googleapis.com/auth/gmail.readonly";
const GMAIL_PUSH: &str = "serviceAccount:gmail-api-push@system.gserviceaccount.com";
const TOKEN_AUDIENCE: &str = "https://oauth2.googleapis.com/token";
/// Long enough for a notification on its way; a missing one fails the test.
const PATIENCE: Duration = Duration::from_secs(30);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A second server over the same runtime, with push on and its own address as public URL
/// (the audience its tokens must carry).
async fn push_server(server: &Server, emulated: &RunningEmulator) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let config = ServerConfig {
        public_url: url.clone(),
        push: Some(PushConfig {
            google_certs_url: format!("{}/oauth2/v3/certs", emulated.base_url),
        }),
        ..ServerConfig::default()
    };
    let state = AppState::new(server.runtime.clone(), config);
    tokio::spawn(tributary_server::serve(
        listener,
        state,
        std::future::pending(),
    ));
    url
}

/// A token for the service account, as `subject` (`None`: its own, as Pub/Sub wants).
async fn token(emulated: &RunningEmulator, subject: Option<&str>, scope: &str) -> String {
    let key = &emulated.key_file;
    let now = unix_now();
    let mut claims = json!({
        "iss": key.client_email, "scope": scope, "aud": TOKEN_AUDIENCE,
        "iat": now, "exp": now + 3600,
    });
    if let Some(subject) = subject {
        claims["sub"] = json!(subject);
    }
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.private_key_id.clone());
    let signing = EncodingKey::from_rsa_pem(key.private_key.as_bytes()).unwrap();
    let assertion = encode(&header, &claims, &signing).unwrap();
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/token", emulated.base_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
                .append_pair("assertion", &assertion)
                .finish(),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {answer}"))
        .to_owned()
}

async fn call(
    emulated: &RunningEmulator,
    method: reqwest::Method,
    path: &str,
    bearer: &str,
    body: Value,
) -> Value {
    let response = reqwest::Client::new()
        .request(method, format!("{}{path}", emulated.base_url))
        .bearer_auth(bearer)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

/// The topic with Gmail's publisher grant, and a push subscription to `endpoint` signed
/// for `audience`; answers the topic's name.
async fn subscribe(
    emulated: &RunningEmulator,
    name: &str,
    endpoint: &str,
    audience: &str,
) -> String {
    let own = token(emulated, None, PUBSUB_SCOPE).await;
    let project = &emulated.key_file.project_id;
    let topic = format!("/v1/projects/{project}/topics/{name}");
    call(emulated, reqwest::Method::PUT, &topic, &own, json!({})).await;
    let grant = json!({"policy": {"bindings": [{"role": "roles/pubsub.publisher", "members": [GMAIL_PUSH]}]}});
    call(
        emulated,
        reqwest::Method::POST,
        &format!("{topic}:setIamPolicy"),
        &own,
        grant,
    )
    .await;
    let topic_name = format!("projects/{project}/topics/{name}");
    let subscription = json!({
        "topic": topic_name,
        "pushConfig": {"pushEndpoint": endpoint, "oidcToken": {
            "serviceAccountEmail": emulated.key_file.client_email, "audience": audience}},
    });
    let path = format!("/v1/projects/{project}/subscriptions/{name}-push");
    call(emulated, reqwest::Method::PUT, &path, &own, subscription).await;
    topic_name
}

async fn watch(emulated: &RunningEmulator, mailbox: &str, topic: &str) {
    let bearer = token(emulated, Some(mailbox), GMAIL_SCOPE).await;
    let body = json!({"topicName": topic, "labelIds": ["INBOX"], "labelFilterBehavior": "include"});
    call(
        emulated,
        reqwest::Method::POST,
        "/gmail/v1/users/me/watch",
        &bearer,
        body,
    )
    .await;
}

async fn control(
    emulated: &RunningEmulator,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> Value {
    let response = reqwest::Client::new()
        .request(method, format!("{}/control{path}", emulated.base_url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

async fn deliver(emulated: &RunningEmulator, to: &str, subject: &str) {
    // Dated within the organization's clock: the engine captures by the emulator's now.
    let hour_ago = emulated.state.org().now_ms - 3_600_000;
    let date = chrono::DateTime::from_timestamp_millis(hour_ago)
        .unwrap()
        .to_rfc3339();
    let mail = json!({"from": "Pat Partner <pat@partner.example>", "to": [to],
        "subject": subject, "body": "Hello.", "date": date});
    control(emulated, reqwest::Method::POST, "/messages/deliver", mail).await;
}

/// How many captured activities have `subject`.
async fn captured(server: &Server, subject: &str) -> usize {
    let activities = server.store().activities(&server.acme).await.unwrap();
    activities
        .iter()
        .filter(|a| a.subject.as_deref() == Some(subject))
        .count()
}

/// Runs due jobs (only a push makes one due: the next poll is minutes away) until every
/// subject is captured, or [`PATIENCE`] runs out.
async fn run_until_captured(server: &Server, emulated: &RunningEmulator, subjects: &[&str]) {
    let worker = Worker::for_runtime(server.runtime.clone());
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        while worker.run_once().await.unwrap().is_some() {}
        let mut all = true;
        for subject in subjects {
            all &= captured(server, subject).await > 0;
        }
        if all {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            let push = control(emulated, reqwest::Method::GET, "/push", Value::Null).await;
            panic!("not captured through push: {subjects:?}; the emulator's push: {push}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The emulator's latest push attempts to `endpoint`, with their statuses.
async fn attempts_to(emulated: &RunningEmulator, endpoint: &str) -> Vec<Value> {
    let push = control(emulated, reqwest::Method::GET, "/push", Value::Null).await;
    push["recent"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|x| x["endpoint"] == endpoint)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

async fn synced(backend: Backend) -> Option<(Server, RunningEmulator, String)> {
    let store = TestStore::open(backend).await?;
    let emulated = emulator(3, 10).await;
    let member = ordinary_user(&emulated);
    let server = Server::start(store, Some(&emulated), &member).await;
    server.connect_and_sync(&emulated).await;
    Some((server, emulated, member))
}

fn endpoint(url: &str, tenant: &TenantId) -> String {
    tributary_server::push::google::endpoint(url, tenant)
}

async fn push_brings_new_mail_in_and_refuses_forgeries(backend: Backend) {
    let Some((server, emulated, member)) = synced(backend).await else {
        return;
    };
    let url = push_server(&server, &emulated).await;
    let ours = endpoint(&url, &server.acme);
    let worker = Worker::for_runtime(server.runtime.clone());
    assert!(worker.run_once().await.unwrap().is_none(), "no poll is due");

    // Refused: no token, a token signed by another key under the emulator's key id, and
    // a genuine emulator token for another audience. None schedules anything.
    let envelope = json!({"message": {"data": "eyJlbWFpbEFkZHJlc3MiOiJ4In0=", "messageId": "1"}});
    let http = reqwest::Client::new();
    let unsigned = http.post(&ours).json(&envelope).send().await.unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    let certs: Value = http
        .get(format!("{}/oauth2/v3/certs", emulated.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = certs["keys"][0]["kid"].as_str().map(str::to_owned);
    let now = unix_now();
    let claims = json!({"iss": "https://accounts.google.com", "aud": ours, "iat": now, "exp": now + 600,
        "email": emulated.key_file.client_email, "email_verified": true});
    let wrong_key = EncodingKey::from_rsa_pem(emulated.key_file.private_key.as_bytes()).unwrap();
    let forged = encode(&header, &claims, &wrong_key).unwrap();
    let refused = http
        .post(&ours)
        .bearer_auth(forged)
        .json(&envelope)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let elsewhere = subscribe(&emulated, "elsewhere", &ours, "https://crm.example/push").await;
    watch(&emulated, &member, &elsewhere).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !attempts_to(&emulated, &ours)
        .await
        .iter()
        .any(|a| a["status"] == 403)
    {
        if tokio::time::Instant::now() >= deadline {
            let push = control(&emulated, reqwest::Method::GET, "/push", Value::Null).await;
            panic!("no wrong-audience delivery: {push}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        worker.run_once().await.unwrap().is_none(),
        "a refused push scheduled a sync"
    );

    // Without push configured (the other server, as by default) there is no such route.
    let off = http
        .post(endpoint(&server.url, &server.acme))
        .json(&envelope)
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), StatusCode::NOT_FOUND);
    // A tenant without a Google connection has no push endpoint.
    let globex = http
        .post(endpoint(&url, &server.globex))
        .json(&envelope)
        .send()
        .await
        .unwrap();
    assert_eq!(globex.status(), StatusCode::NOT_FOUND);

    // Accepted: the tenant's own subscription; new mail is captured with no poll due.
    let topic = subscribe(&emulated, "tributary-gmail", &ours, &ours).await;
    watch(&emulated, &member, &topic).await;
    deliver(&emulated, &member, "Pushed in").await;
    run_until_captured(&server, &emulated, &["Pushed in"]).await;
    assert_eq!(captured(&server, "Pushed in").await, 1);
    server.stop().await;
}

async fn duplicated_and_reordered_pushes_capture_once(backend: Backend) {
    let Some((server, emulated, member)) = synced(backend).await else {
        return;
    };
    let url = push_server(&server, &emulated).await;
    let ours = endpoint(&url, &server.acme);
    let faults = json!({"duplicate_probability": 1.0, "reorder_probability": 0.5, "seed": 7});
    control(&emulated, reqwest::Method::PUT, "/push/faults", faults).await;
    let topic = subscribe(&emulated, "tributary-gmail", &ours, &ours).await;
    watch(&emulated, &member, &topic).await;
    let subjects = ["Burst one", "Burst two", "Burst three"];
    for subject in subjects {
        deliver(&emulated, &member, subject).await;
    }
    run_until_captured(&server, &emulated, &subjects).await;
    // Let the duplicates land and run too.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let worker = Worker::for_runtime(server.runtime.clone());
    while worker.run_once().await.unwrap().is_some() {}
    for subject in subjects {
        assert_eq!(captured(&server, subject).await, 1, "{subject}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_push_on_sqlite() {
    push_brings_new_mail_in_and_refuses_forgeries(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_push_on_postgres() {
    push_brings_new_mail_in_and_refuses_forgeries(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_and_reordered_pushes_on_sqlite() {
    duplicated_and_reordered_pushes_capture_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_and_reordered_pushes_on_postgres() {
    duplicated_and_reordered_pushes_capture_once(Backend::Postgres).await;
}
