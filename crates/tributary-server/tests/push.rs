//! Push received by the server, against the emulator: Gmail through Pub/Sub (`POST
//! /push/google/{tenant}`) and Google Calendar channels (`POST
//! /push/google/{tenant}/calendar`). A delivery signed by the emulator for this tenant's
//! endpoint brings the mailbox's sync forward, so new mail is captured while no poll is
//! due; forged, unsigned and wrong-audience deliveries are refused and schedule nothing;
//! duplicated and reordered notifications capture each message once. The Gmail provider
//! opens its channels itself through `Connector` (topic, grant, subscription, watch;
//! calendar channel), a calendar notification with a wrong token is refused while the
//! emulator's own schedules the link, and closed channels deliver nothing more. On
//! SQLite and PostgreSQL.
//!
//! The first tests make the topic, subscription and watch by hand with the emulator's
//! Pub/Sub and Gmail calls (what an admin could do); the provider's own are tested last.

mod api_support;

use api_support::{Backend, Server, TestStore, emulator, ordinary_user};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tributary_emulator::server::RunningEmulator;
use tributary_google::{ConnectorOptions, GoogleConnector, GoogleEndpoints, ServiceAccountKey};
use tributary_server::{AppState, PushConfig, ServerConfig};
use tributary_store::{PushChannelRecord, TenantId, secret_hash};
use tributary_sync::push::{OpenedChannel, PushLink, PushStream, PushTarget};
use tributary_sync::{Connector, GmailSource, Pacer, PacingConfig, Worker};

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
    // A tenant without a Google connection has no push endpoint; without a token the
    // request is refused before anything is looked up.
    let globex = http
        .post(endpoint(&url, &server.globex))
        .bearer_auth("anything")
        .json(&envelope)
        .send()
        .await
        .unwrap();
    assert_eq!(globex.status(), StatusCode::NOT_FOUND);
    let anonymous = http
        .post(endpoint(&url, &server.globex))
        .json(&envelope)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

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

/// The tenant's Gmail provider, as the runtime builds it from the key.
fn google_connector(emulated: &RunningEmulator) -> Connector {
    let key =
        ServiceAccountKey::from_json(&serde_json::to_vec(&emulated.key_file).unwrap()).unwrap();
    let options = ConnectorOptions {
        endpoints: GoogleEndpoints::from_base_url(&emulated.base_url),
        ..ConnectorOptions::default()
    };
    Connector::Google(GmailSource::new(
        GoogleConnector::new(key, options).unwrap(),
    ))
}

async fn push_link(server: &Server, mailbox: &str) -> PushLink {
    let links = server.store().links(&server.acme).await.unwrap();
    let link = links
        .iter()
        .find(|l| l.mailbox.eq_ignore_ascii_case(mailbox))
        .expect("the member is linked");
    PushLink {
        tenant: server.acme.clone(),
        link: link.id,
        mailbox: mailbox.to_ascii_lowercase(),
        pacer: Arc::new(Pacer::new(PacingConfig::default())),
    }
}

/// Stores an opened channel as the engine does (only the secret's hash).
async fn save(server: &Server, link: &PushLink, opened: &OpenedChannel) -> PushChannelRecord {
    let record = PushChannelRecord {
        link: link.link,
        stream: opened.stream.as_str().to_owned(),
        channel_id: opened.channel_id.clone(),
        expires_ms: opened.expires_ms,
        secret_hash: opened.secret.as_deref().map(secret_hash),
        renewed_ms: 0,
    };
    server
        .store()
        .save_push_channel(&server.acme, &record)
        .await
        .unwrap();
    record
}

/// Waits until the emulator has made an attempt to `endpoint` satisfying `wanted`.
async fn attempt_seen(emulated: &RunningEmulator, endpoint: &str, wanted: impl Fn(&Value) -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !attempts_to(emulated, endpoint).await.iter().any(&wanted) {
        if tokio::time::Instant::now() >= deadline {
            let push = control(emulated, reqwest::Method::GET, "/push", Value::Null).await;
            panic!("no such attempt to {endpoint}: {push}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many notifications `endpoint` accepted (204).
async fn acknowledged_by(emulated: &RunningEmulator, endpoint: &str) -> usize {
    let attempts = attempts_to(emulated, endpoint).await;
    attempts.iter().filter(|a| a["status"] == 204).count()
}

async fn meeting(emulated: &RunningEmulator, organizer: &str, summary: &str) {
    let start = chrono::DateTime::from_timestamp_millis(emulated.state.org().now_ms).unwrap()
        + chrono::Duration::days(1);
    let body = json!({"organizer": organizer, "summary": summary, "start": start.to_rfc3339(),
        "end": (start + chrono::Duration::hours(1)).to_rfc3339()});
    control(emulated, reqwest::Method::POST, "/calendar/events", body).await;
}

/// A Calendar notification as Google sends it, with `token`.
async fn calendar_notification(
    url: &str,
    channel: &str,
    resource: &str,
    token: &str,
) -> StatusCode {
    reqwest::Client::new()
        .post(url)
        .header("X-Goog-Channel-ID", channel)
        .header("X-Goog-Resource-ID", resource)
        .header("X-Goog-Resource-State", "exists")
        .header("X-Goog-Message-Number", "2")
        .header("X-Goog-Channel-Token", token)
        .send()
        .await
        .unwrap()
        .status()
}

async fn the_provider_opens_and_closes_its_own_channels(backend: Backend) {
    let Some((server, emulated, member)) = synced(backend).await else {
        return;
    };
    let url = push_server(&server, &emulated).await;
    let target = PushTarget::new(&url, &server.acme);
    let connector = google_connector(&emulated);
    assert_eq!(
        connector.push_streams(),
        [PushStream::Mail, PushStream::Calendar]
    );
    let link = push_link(&server, &member).await;
    let worker = Worker::for_runtime(server.runtime.clone());
    assert!(worker.run_once().await.unwrap().is_none(), "no poll is due");

    // Mail: the topic, grant, subscription and watch made by the provider; the
    // emulator's signed delivery brings the new mail in.
    let mail = connector
        .open_push(&link, PushStream::Mail, &target)
        .await
        .unwrap();
    assert_eq!(mail.channel_id, member);
    assert_eq!(mail.secret, None);
    let week = 7 * 86_400_000;
    let now = chrono::Utc::now().timestamp_millis();
    assert!(
        (now + week - 60_000..=now + week).contains(&mail.expires_ms),
        "{mail:?}"
    );
    let mail_record = save(&server, &link, &mail).await;
    deliver(&emulated, &member, "Pushed by our own watch").await;
    run_until_captured(&server, &emulated, &["Pushed by our own watch"]).await;
    // Renewing is watching again: still one watch, pushing (a new watch notifies at
    // once: that sync is run before the close below).
    let mail_url = target.google_mail_url();
    let acknowledged = acknowledged_by(&emulated, &mail_url).await;
    let renewed = connector
        .renew_push(&link, &mail_record, &target)
        .await
        .unwrap();
    assert!(renewed.expires_ms >= mail.expires_ms);
    assert_eq!(emulated.state.push.watches().len(), 1);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while acknowledged_by(&emulated, &mail_url).await == acknowledged {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the renewed watch delivered nothing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    while worker.run_once().await.unwrap().is_some() {}

    // Closed: no more deliveries, nothing scheduled.
    connector.close_push(&link, &mail_record).await.unwrap();
    assert!(emulated.state.push.watches().is_empty());
    let before = attempts_to(&emulated, &mail_url).await.len();
    deliver(&emulated, &member, "After the stop").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(attempts_to(&emulated, &mail_url).await.len(), before);
    assert!(
        worker.run_once().await.unwrap().is_none(),
        "a stopped watch scheduled a sync"
    );
    // Closing again: the watch is gone already, which is closed.
    connector.close_push(&link, &mail_record).await.unwrap();

    // Calendar: a channel with a secret token; its first message is acknowledged.
    let calendar = connector
        .open_push(&link, PushStream::Calendar, &target)
        .await
        .unwrap();
    let token = calendar
        .secret
        .clone()
        .expect("a calendar channel has a token");
    let record = save(&server, &link, &calendar).await;
    let (channel, resource) = record.channel_id.split_once(' ').unwrap();
    let calendar_url = target.google_calendar_url();
    attempt_seen(&emulated, &calendar_url, |a| a["status"] == 204).await;

    // Refused, scheduling nothing: a wrong token, a channel the tenant does not have,
    // the right token at another tenant, no token.
    assert_eq!(
        calendar_notification(&calendar_url, channel, resource, "guess").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        calendar_notification(&calendar_url, "c-unknown", resource, &token).await,
        StatusCode::NOT_FOUND
    );
    let globex = PushTarget::new(&url, &server.globex).google_calendar_url();
    assert_eq!(
        calendar_notification(&globex, channel, resource, &token).await,
        StatusCode::NOT_FOUND
    );
    let tokenless = reqwest::Client::new()
        .post(&calendar_url)
        .header("X-Goog-Channel-ID", channel)
        .header("X-Goog-Resource-ID", resource)
        .header("X-Goog-Resource-State", "exists")
        .send()
        .await
        .unwrap();
    assert_eq!(tokenless.status(), StatusCode::UNAUTHORIZED);
    assert!(
        worker.run_once().await.unwrap().is_none(),
        "a refused notification scheduled a sync"
    );

    // Google's own notification of a new meeting schedules the link.
    let acknowledged = acknowledged_by(&emulated, &calendar_url).await;
    meeting(&emulated, &member, "Pushed kickoff").await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while acknowledged_by(&emulated, &calendar_url).await == acknowledged {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no calendar notification accepted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while worker.run_once().await.unwrap().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the calendar push scheduled nothing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Renewed: a new channel replaces the old one, which is stopped.
    let replaced = connector.renew_push(&link, &record, &target).await.unwrap();
    assert_ne!(replaced.channel_id, record.channel_id);
    assert_ne!(replaced.secret, calendar.secret);
    let replaced_record = save(&server, &link, &replaced).await;
    {
        let channels = emulated.state.push.channels();
        assert_eq!(channels.len(), 1);
        assert!(!channels.contains_key(channel));
    }
    // The old channel's token no longer opens anything.
    assert_eq!(
        calendar_notification(&calendar_url, channel, resource, &token).await,
        StatusCode::NOT_FOUND
    );

    // Closed: the emulator sends nothing more.
    connector.close_push(&link, &replaced_record).await.unwrap();
    assert!(emulated.state.push.channels().is_empty());
    let before = attempts_to(&emulated, &calendar_url).await.len();
    meeting(&emulated, &member, "After the calendar stop").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(attempts_to(&emulated, &calendar_url).await.len(), before);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_channels_on_sqlite() {
    the_provider_opens_and_closes_its_own_channels(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_channels_on_postgres() {
    the_provider_opens_and_closes_its_own_channels(Backend::Postgres).await;
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
