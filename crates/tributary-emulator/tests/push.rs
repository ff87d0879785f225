//! Push in both emulators, delivered to a small receiver on loopback: Gmail watches
//! through Pub/Sub push subscriptions (envelopes with OIDC tokens that verify against
//! the served certificates, retries, stop), Graph subscriptions (the validation
//! handshake, notifications with `clientState`, renewal, lifecycle events), and the
//! push faults (drop, delay, duplicate, reorder) on both.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{ADMIN, BOB, TestEmulator, emulator, unix_now};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier;
use rsa::{BigUint, RsaPublicKey};
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;
use tributary_emulator::microsoft::app::router as microsoft_router;
use tributary_emulator::microsoft::{MicrosoftConfig, RunningMicrosoft, TenantSource};
use tributary_emulator::org::OrgConfig;
use tributary_emulator::testing::{Delivery, PushReceiver};

const PUBSUB_SCOPE: &str = "https://www.googleapis.com/auth/pubsub";
const GMAIL_PUSH: &str = "serviceAccount:gmail-api-push@system.gserviceaccount.com";
const AUDIENCE: &str = "https://crm.example/push/google";

// ---------------------------------------------------------------------------------------
// Google: Pub/Sub set up by the service account itself, watches, envelopes

/// The service account's own token (no `sub`), as it calls Pub/Sub.
async fn own_token(emulator: &TestEmulator, scope: &str) -> String {
    let now = unix_now();
    let claims = json!({
        "iss": emulator.client_email(),
        "scope": scope,
        "aud": common::GOOGLE_AUD,
        "iat": now,
        "exp": now + 3600,
    });
    let (status, body) = emulator.token_response(&emulator.assertion(&claims)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

async fn call(
    emulator: &TestEmulator,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = emulator
        .http
        .request(method, emulator.url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn control(
    emulator: &TestEmulator,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> Value {
    let response = emulator
        .http
        .request(method, emulator.url(&format!("/control{path}")))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

fn project(emulator: &TestEmulator) -> String {
    emulator.running.key_file.project_id.clone()
}

/// Creates `topic` (with Gmail's publisher grant when `grant`) and a push subscription
/// to `endpoint` signed for [`AUDIENCE`]; answers the topic's full name.
async fn set_up_topic(emulator: &TestEmulator, topic: &str, grant: bool, endpoint: &str) -> String {
    let token = own_token(emulator, PUBSUB_SCOPE).await;
    let project = project(emulator);
    let path = format!("/v1/projects/{project}/topics/{topic}");
    let (status, body) = call(emulator, reqwest::Method::PUT, &path, &token, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let name = format!("projects/{project}/topics/{topic}");
    assert_eq!(body["name"], name.as_str());
    if grant {
        let policy = json!({"policy": {"bindings": [
            {"role": "roles/pubsub.publisher", "members": [GMAIL_PUSH]}
        ]}});
        let (status, body) = call(
            emulator,
            reqwest::Method::POST,
            &format!("{path}:setIamPolicy"),
            &token,
            Some(policy),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let subscription = json!({
        "topic": name,
        "pushConfig": {
            "pushEndpoint": endpoint,
            "oidcToken": {"serviceAccountEmail": emulator.client_email(), "audience": AUDIENCE},
        },
    });
    let (status, body) = call(
        emulator,
        reqwest::Method::PUT,
        &format!("/v1/projects/{project}/subscriptions/{topic}-push"),
        &token,
        Some(subscription),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    name
}

async fn watch(emulator: &TestEmulator, user: &str, topic: &str) -> (StatusCode, Value) {
    let token = emulator.gmail_token(user).await;
    call(
        emulator,
        reqwest::Method::POST,
        "/gmail/v1/users/me/watch",
        &token,
        Some(json!({"topicName": topic, "labelIds": ["INBOX"], "labelFilterBehavior": "INCLUDE"})),
    )
    .await
}

async fn deliver(emulator: &TestEmulator, to: &[&str], subject: &str) -> Value {
    control(
        emulator,
        reqwest::Method::POST,
        "/messages/deliver",
        json!({"from": "Pat Partner <pat@partner.example>", "to": to, "subject": subject, "body": "Hello."}),
    )
    .await
}

/// The `{emailAddress, historyId}` a Pub/Sub envelope carries.
fn gmail_data(received: &Delivery) -> (String, u64) {
    let data = received.body["message"]["data"]
        .as_str()
        .expect("message.data");
    let decoded: Value = serde_json::from_slice(&STANDARD.decode(data).unwrap()).unwrap();
    let history = &decoded["historyId"];
    let history = history
        .as_u64()
        .or_else(|| history.as_str().and_then(|s| s.parse().ok()))
        .expect("a historyId");
    (
        decoded["emailAddress"].as_str().unwrap().to_string(),
        history,
    )
}

/// Verifies the push request's bearer token against the emulator's JWKS, as a receiver
/// must, and answers its claims.
async fn verified_claims(emulator: &TestEmulator, received: &Delivery) -> Value {
    let token = received
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .expect("a bearer token");
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let (header, claims) = signing_input.split_once('.').unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    assert_eq!(header["alg"], "RS256");
    let certs: Value = emulator
        .http
        .get(emulator.url("/oauth2/v3/certs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = certs["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the token's key is served");
    let number = |field: &str| {
        BigUint::from_bytes_be(
            &URL_SAFE_NO_PAD
                .decode(jwk[field].as_str().unwrap())
                .unwrap(),
        )
    };
    let key = VerifyingKey::<Sha256>::new(RsaPublicKey::new(number("n"), number("e")).unwrap());
    let signature = Signature::try_from(&URL_SAFE_NO_PAD.decode(signature).unwrap()[..]).unwrap();
    key.verify(signing_input.as_bytes(), &signature)
        .expect("the signature verifies");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap()
}

#[tokio::test]
async fn a_watch_pushes_signed_envelopes_until_stopped() {
    let emulator = emulator().await;
    let mut receiver = PushReceiver::start().await;
    let endpoint = format!("{}/push/google", receiver.url());
    let topic = set_up_topic(&emulator, "gmail-push", true, &endpoint).await;

    let (status, answer) = watch(&emulator, BOB, &topic).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let watched_at: u64 = answer["historyId"].as_str().unwrap().parse().unwrap();
    let expiration: i64 = answer["expiration"].as_str().unwrap().parse().unwrap();
    let week_ms = 7 * 86_400_000;
    let now_ms = unix_now() * 1000;
    assert!((now_ms + week_ms - 60_000..=now_ms + week_ms + 60_000).contains(&expiration));

    // A successful watch sends one notification at once.
    let first = receiver.next().await;
    assert_eq!(first.path, "/push/google");
    assert_eq!(gmail_data(&first), (BOB.to_string(), watched_at));
    assert_eq!(
        first.body["subscription"],
        format!(
            "projects/{}/subscriptions/gmail-push-push",
            project(&emulator)
        )
    );
    assert!(
        first.body["message"]["messageId"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    assert!(
        first.body["message"]["publishTime"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let claims = verified_claims(&emulator, &first).await;
    assert_eq!(claims["iss"], "https://accounts.google.com");
    assert_eq!(claims["aud"], AUDIENCE);
    assert_eq!(claims["email"], emulator.client_email());
    assert_eq!(claims["email_verified"], true);
    assert!(claims["exp"].as_i64().unwrap() > unix_now());

    let delivered = deliver(&emulator, &[BOB], "Push me").await;
    let copy = delivered["copies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["mailbox"] == BOB)
        .expect("Bob's copy")
        .clone();
    let history_id = copy["history_id"].as_u64().unwrap();
    let second = receiver.next().await;
    assert_eq!(gmail_data(&second), (BOB.to_string(), history_id));
    assert_ne!(
        second.body["message"]["messageId"],
        first.body["message"]["messageId"]
    );
    verified_claims(&emulator, &second).await;

    let token = emulator.gmail_token(BOB).await;
    let (status, _) = call(
        &emulator,
        reqwest::Method::POST,
        "/gmail/v1/users/me/stop",
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    deliver(&emulator, &[BOB], "After stop").await;
    receiver.nothing_more().await;
}

#[tokio::test]
async fn a_failed_push_is_retried_until_acknowledged() {
    let emulator = emulator().await;
    control(
        &emulator,
        reqwest::Method::PATCH,
        "/push/faults",
        json!({"retry_min_backoff_ms": 10, "retry_max_backoff_ms": 40}),
    )
    .await;
    let mut receiver = PushReceiver::start().await;
    let topic = set_up_topic(&emulator, "retried", true, &format!("{}/p", receiver.url())).await;
    receiver.fail_next(2);
    let (status, body) = watch(&emulator, BOB, &topic).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let attempts = [
        receiver.next().await,
        receiver.next().await,
        receiver.next().await,
    ];
    let ids: Vec<&Value> = attempts
        .iter()
        .map(|a| &a.body["message"]["messageId"])
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one message redelivered: {ids:?}"
    );
    receiver.nothing_more().await;
    let state = control(&emulator, reqwest::Method::GET, "/push", json!(null)).await;
    assert_eq!(state["totals"]["failed_attempts"], 2, "{state}");
    assert_eq!(state["totals"]["delivered"], 1, "{state}");
    let statuses: Vec<&Value> = state["recent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["status"])
        .collect();
    assert_eq!(statuses, [&json!(500), &json!(500), &json!(202)]);
}

#[tokio::test]
async fn watches_need_a_topic_of_the_project_that_gmail_may_publish_to() {
    let emulator = emulator().await;
    let receiver = PushReceiver::start().await;
    let endpoint = format!("{}/p", receiver.url());
    let ungranted = set_up_topic(&emulator, "no-grant", false, &endpoint).await;
    let (status, body) = watch(&emulator, BOB, &ungranted).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("User not authorized to perform this action"),
        "{body}"
    );
    let missing = format!("projects/{}/topics/missing", project(&emulator));
    let (status, _) = watch(&emulator, BOB, &missing).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = watch(&emulator, BOB, "projects/someone-else/topics/t").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Pub/Sub admin calls: the service account's own token, its own project, a loopback endpoint.
    // A member's Gmail token is no Cloud project identity.
    let delegated = emulator.gmail_token(ADMIN).await;
    let path = format!("/v1/projects/{}/topics/other", project(&emulator));
    let (status, body) = call(&emulator, reqwest::Method::PUT, &path, &delegated, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
    let own = own_token(&emulator, PUBSUB_SCOPE).await;
    let (status, _) = call(
        &emulator,
        reqwest::Method::PUT,
        "/v1/projects/elsewhere/topics/other",
        &own,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = call(&emulator, reqwest::Method::PUT, &path, &own, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(&emulator, reqwest::Method::PUT, &path, &own, None).await;
    assert_eq!(
        (status, &body["error"]["status"]),
        (StatusCode::CONFLICT, &json!("ALREADY_EXISTS"))
    );
    let remote =
        json!({"topic": ungranted, "pushConfig": {"pushEndpoint": "https://crm.example/push"}});
    let (status, body) = call(
        &emulator,
        reqwest::Method::PUT,
        &format!("/v1/projects/{}/subscriptions/remote", project(&emulator)),
        &own,
        Some(remote),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("loopback"),
        "{body}"
    );
}

/// Sets `faults` on Google's push, watches Bob and Ann and drains the watches' first
/// notifications (sent before the faults).
async fn google_with_faults(faults: Value) -> (TestEmulator, PushReceiver) {
    let emulator = emulator().await;
    let mut receiver = PushReceiver::start().await;
    let topic = set_up_topic(&emulator, "faulty", true, &format!("{}/p", receiver.url())).await;
    for user in [ADMIN, BOB] {
        let (status, body) = watch(&emulator, user, &topic).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        receiver.next().await;
    }
    let mut faults = faults;
    faults["seed"] = json!(7);
    control(&emulator, reqwest::Method::PUT, "/push/faults", faults).await;
    (emulator, receiver)
}

#[tokio::test]
async fn google_push_faults_drop_duplicate_delay_and_reorder() {
    let (emulator, mut receiver) = google_with_faults(json!({"drop_probability": 1.0})).await;
    deliver(&emulator, &[BOB], "Dropped").await;
    receiver.nothing_more().await;
    let state = control(&emulator, reqwest::Method::GET, "/push", json!(null)).await;
    assert_eq!(state["totals"]["dropped"], 1, "{state}");

    let (emulator, mut receiver) = google_with_faults(json!({"duplicate_probability": 1.0})).await;
    deliver(&emulator, &[BOB], "Twice").await;
    let (a, b) = (receiver.next().await, receiver.next().await);
    assert_eq!(
        a.body["message"]["messageId"],
        b.body["message"]["messageId"]
    );
    receiver.nothing_more().await;

    let (emulator, mut receiver) = google_with_faults(json!({"delay_ms": 200})).await;
    let copy = deliver(&emulator, &[BOB], "Late").await;
    let late = receiver.next().await;
    assert_eq!(
        gmail_data(&late).1,
        copy["copies"][0]["history_id"].as_u64().unwrap()
    );
    let state = control(&emulator, reqwest::Method::GET, "/push", json!(null)).await;
    assert_eq!(state["totals"]["delayed"], 1, "{state}");

    // One message to both: Ann's notification is published first (watches are scanned
    // in address order) and held back, so Bob's overtakes it.
    let (emulator, mut receiver) = google_with_faults(json!({"reorder_probability": 1.0})).await;
    // Past both watches' one-a-second window, so both are published in the same scan.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    deliver(&emulator, &[ADMIN, BOB], "Both").await;
    let first = gmail_data(&receiver.next().await).0;
    let second = gmail_data(&receiver.next().await).0;
    assert_eq!((first.as_str(), second.as_str()), (BOB, ADMIN));
    let state = control(&emulator, reqwest::Method::GET, "/push", json!(null)).await;
    assert_eq!(state["totals"]["reordered"], 1, "{state}");
}

#[tokio::test]
async fn push_faults_are_validated() {
    let emulator = emulator().await;
    let response = emulator
        .http
        .patch(emulator.url("/control/push/faults"))
        .json(&json!({"drop_probability": 2.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("drop_probability"),
        "{body}"
    );
}

// ---------------------------------------------------------------------------------------
// Microsoft: Graph subscriptions (in-process router; deliveries still go over loopback)

struct Graph {
    running: RunningMicrosoft,
    app: Router,
    token: String,
}

struct Answer {
    status: StatusCode,
    body: Value,
}

async fn graph() -> Graph {
    let running = tributary_emulator::microsoft::start(MicrosoftConfig {
        organization: TenantSource::Generate(OrgConfig {
            seed: 5,
            users: 4,
            messages_per_user: 10,
            ..OrgConfig::default()
        }),
        ..MicrosoftConfig::default()
    })
    .await
    .expect("the emulator starts");
    let app = microsoft_router(Arc::clone(&running.state));
    let mut graph = Graph {
        running,
        app,
        token: String::new(),
    };
    let form = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("client_id", graph.running.app.client_id.as_str()),
            ("client_secret", graph.running.app.client_secret.as_str()),
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .finish();
    let path = format!("/{}/oauth2/v2.0/token", graph.running.app.tenant_id);
    let request = Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .unwrap();
    let answer = graph.send(request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    graph.token = answer.body["access_token"].as_str().unwrap().to_string();
    graph
}

impl Graph {
    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.app.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn api(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let request = Request::builder()
            .method(method)
            .uri(format!("/v1.0{path}"))
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .body(body.map_or(Body::empty(), |b| Body::from(b.to_string())))
            .unwrap();
        self.send(request).await
    }

    async fn control(&self, method: &str, path: &str, body: Value) -> Value {
        let request = Request::builder()
            .method(method)
            .uri(format!("/control{path}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let answer = self.send(request).await;
        assert!(answer.status.is_success(), "{path}: {}", answer.body);
        answer.body
    }

    /// Two users with mailboxes: (id, address).
    fn users(&self) -> Vec<(String, String)> {
        let tenant = self.running.state.tenant();
        tenant
            .users
            .iter()
            .filter(|u| u.mail.is_some() && tenant.mailboxes.get(&u.id).is_some_and(|m| m.enabled))
            .map(|u| (u.id.clone(), u.mail.clone().unwrap()))
            .take(2)
            .collect()
    }

    async fn subscribe(&self, user: &str, receiver: &PushReceiver, minutes: i64) -> Answer {
        self.api(
            "POST",
            "/subscriptions",
            Some(json!({
                "changeType": "created,updated",
                "notificationUrl": format!("{}/graph", receiver.url()),
                "lifecycleNotificationUrl": format!("{}/lifecycle", receiver.url()),
                "resource": format!("users/{user}/mailFolders('inbox')/messages"),
                "expirationDateTime": in_minutes(minutes),
                "clientState": "secret-state",
            })),
        )
        .await
    }

    async fn deliver(&self, to: &str, subject: &str) -> Value {
        self.control(
            "POST",
            "/messages/deliver",
            json!({"from": {"name": "Pat", "address": "pat@partner.example"}, "to": [to], "subject": subject, "body": "Hi"}),
        )
        .await
    }
}

fn in_minutes(minutes: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::minutes(minutes)).to_rfc3339()
}

#[tokio::test]
async fn graph_subscriptions_validate_notify_renew_and_send_lifecycle_events() {
    let graph = graph().await;
    let mut receiver = PushReceiver::start().await;
    let (user, address) = graph.users()[0].clone();
    let created = graph.subscribe(&user, &receiver, 60).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(created.body["clientState"], "secret-state");
    assert_eq!(
        created.body["applicationId"],
        graph.running.app.client_id.as_str()
    );

    let delivered = graph.deliver(&address, "Notify me").await;
    let inbox_copy = delivered["delivered"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["folder"] == "inbox")
        .unwrap()
        .clone();
    let notification = receiver.next().await;
    assert_eq!(notification.path, "/graph");
    let entries = notification.body["value"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{}", notification.body);
    let entry = &entries[0];
    assert_eq!(entry["subscriptionId"], id.as_str());
    assert_eq!(entry["clientState"], "secret-state");
    assert_eq!(entry["changeType"], "created");
    assert_eq!(entry["tenantId"], graph.running.app.tenant_id.as_str());
    assert_eq!(entry["resourceData"]["id"], inbox_copy["rest_id"]);
    assert_eq!(
        entry["resource"],
        format!(
            "Users/{user}/Messages/{}",
            inbox_copy["rest_id"].as_str().unwrap()
        )
    );

    // Renewal within the maximum; beyond it is refused.
    let renewed = graph
        .api(
            "PATCH",
            &format!("/subscriptions/{id}"),
            Some(json!({"expirationDateTime": in_minutes(10_000)})),
        )
        .await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.body);
    assert_ne!(
        renewed.body["expirationDateTime"],
        created.body["expirationDateTime"]
    );
    let too_long = graph
        .api(
            "PATCH",
            &format!("/subscriptions/{id}"),
            Some(json!({"expirationDateTime": in_minutes(10_200)})),
        )
        .await;
    assert_eq!(
        too_long.status,
        StatusCode::BAD_REQUEST,
        "{}",
        too_long.body
    );
    let fetched = graph
        .api("GET", &format!("/subscriptions/{id}"), None)
        .await;
    assert_eq!(
        fetched.body["expirationDateTime"],
        renewed.body["expirationDateTime"]
    );

    for event in ["reauthorizationRequired", "missed", "subscriptionRemoved"] {
        graph
            .control(
                "POST",
                &format!("/subscriptions/{id}/lifecycle"),
                json!({"lifecycleEvent": event}),
            )
            .await;
        let lifecycle = receiver.next().await;
        assert_eq!(lifecycle.path, "/lifecycle");
        let entry = &lifecycle.body["value"][0];
        assert_eq!(entry["lifecycleEvent"], event);
        assert_eq!(entry["subscriptionId"], id.as_str());
        assert_eq!(entry["clientState"], "secret-state");
    }
    let gone = graph
        .api("GET", &format!("/subscriptions/{id}"), None)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    graph.deliver(&address, "After removal").await;
    receiver.nothing_more().await;

    let again = graph.subscribe(&user, &receiver, 60).await;
    let again_id = again.body["id"].as_str().unwrap();
    let deleted = graph
        .api("DELETE", &format!("/subscriptions/{again_id}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let listed = graph.api("GET", "/subscriptions", None).await;
    assert_eq!(listed.body["value"], json!([]));
}

#[tokio::test]
async fn graph_refuses_subscriptions_it_cannot_validate() {
    let graph = graph().await;
    let receiver = PushReceiver::start().await;
    let (user, _) = graph.users()[0].clone();
    receiver.echo_validation(false);
    let refused = graph.subscribe(&user, &receiver, 60).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "InvalidRequest");
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Subscription validation request failed."),
        "{}",
        refused.body
    );
    receiver.echo_validation(true);
    let too_long = graph.subscribe(&user, &receiver, 10_081).await;
    assert_eq!(
        too_long.status,
        StatusCode::BAD_REQUEST,
        "{}",
        too_long.body
    );
    let remote = graph
        .api(
            "POST",
            "/subscriptions",
            Some(json!({
                "changeType": "created",
                "notificationUrl": "https://crm.example/graph",
                "resource": format!("users/{user}/messages"),
                "expirationDateTime": in_minutes(60),
            })),
        )
        .await;
    assert_eq!(remote.status, StatusCode::BAD_REQUEST, "{}", remote.body);
    let listed = graph.api("GET", "/subscriptions", None).await;
    assert_eq!(listed.body["value"], json!([]), "nothing was kept");
}

#[tokio::test]
async fn graph_push_faults_drop_duplicate_delay_and_reorder() {
    let graph = graph().await;
    let mut receiver = PushReceiver::start().await;
    let (user, address) = graph.users()[0].clone();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let created = graph.subscribe(&user, &receiver, 60).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        ids.push(created.body["id"].as_str().unwrap().to_string());
    }
    ids.sort();
    let subscription_of = |r: &Delivery| {
        r.body["value"][0]["subscriptionId"]
            .as_str()
            .unwrap()
            .to_string()
    };

    graph
        .control(
            "PUT",
            "/push/faults",
            json!({"drop_probability": 1.0, "seed": 1}),
        )
        .await;
    graph.deliver(&address, "Dropped").await;
    receiver.nothing_more().await;

    graph
        .control(
            "PUT",
            "/push/faults",
            json!({"duplicate_probability": 1.0, "seed": 1}),
        )
        .await;
    graph.deliver(&address, "Twice").await;
    let mut got: Vec<String> = Vec::new();
    for _ in 0..4 {
        got.push(subscription_of(&receiver.next().await));
    }
    got.sort();
    assert_eq!(
        got,
        [
            ids[0].clone(),
            ids[0].clone(),
            ids[1].clone(),
            ids[1].clone()
        ]
    );
    receiver.nothing_more().await;

    graph
        .control("PUT", "/push/faults", json!({"delay_ms": 200, "seed": 1}))
        .await;
    graph.deliver(&address, "Late").await;
    receiver.next().await;
    receiver.next().await;

    // Both subscriptions see the same change in one scan, in id order; the first is
    // held back and overtaken.
    graph
        .control(
            "PUT",
            "/push/faults",
            json!({"reorder_probability": 1.0, "seed": 1}),
        )
        .await;
    graph.deliver(&address, "Reordered").await;
    let first = subscription_of(&receiver.next().await);
    let second = subscription_of(&receiver.next().await);
    assert_eq!((first, second), (ids[1].clone(), ids[0].clone()));

    let state = graph.control("GET", "/subscriptions", json!(null)).await;
    let totals = &state["totals"];
    assert_eq!(
        (
            &totals["dropped"],
            &totals["duplicated"],
            &totals["delayed"],
            &totals["reordered"]
        ),
        (&json!(2), &json!(2), &json!(2), &json!(1)),
        "{state}"
    );
}

#[tokio::test]
async fn graph_event_subscriptions_report_meetings_made_moved_and_cancelled() {
    let graph = graph().await;
    let mut receiver = PushReceiver::start().await;
    let (user, address) = graph.users()[0].clone();
    let created = graph
        .api(
            "POST",
            "/subscriptions",
            Some(json!({
                "changeType": "created,updated,deleted",
                "notificationUrl": format!("{}/events", receiver.url()),
                "resource": format!("/users/{user}/events"),
                "expirationDateTime": in_minutes(60),
                "clientState": "calendar-state",
            })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);

    let start = chrono::Utc::now() + chrono::Duration::days(2);
    let at = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339();
    let meeting = graph
        .control(
            "POST",
            "/calendar/events",
            json!({"organizer": address, "summary": "Pipeline review",
                   "start": at(start), "end": at(start + chrono::Duration::hours(1))}),
        )
        .await;
    let meeting_id = meeting["id"].as_str().expect("the meeting's id");
    let made = receiver.next().await;
    let entry = &made.body["value"][0];
    assert_eq!(entry["changeType"], "created", "{}", made.body);
    assert_eq!(entry["clientState"], "calendar-state");
    let event_id = entry["resourceData"]["id"].as_str().unwrap().to_string();
    assert_eq!(entry["resource"], format!("Users/{user}/Events/{event_id}"));
    assert_eq!(
        entry["resourceData"]["@odata.type"],
        "#Microsoft.Graph.Event"
    );

    // The id is the one calendarView/delta serves.
    let window = format!(
        "/users/{user}/calendarView/delta?startDateTime={}&endDateTime={}",
        (start - chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M:%SZ"),
        (start + chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M:%SZ"),
    );
    let delta = graph.api("GET", &window, None).await;
    assert_eq!(delta.status, StatusCode::OK, "{}", delta.body);
    assert!(
        delta.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == event_id.as_str()),
        "{}",
        delta.body
    );

    let later = start + chrono::Duration::hours(3);
    graph
        .control(
            "POST",
            &format!("/calendar/events/{meeting_id}/reschedule"),
            json!({"start": at(later), "end": at(later + chrono::Duration::hours(1))}),
        )
        .await;
    let moved = receiver.next().await;
    assert_eq!(
        moved.body["value"][0]["changeType"], "updated",
        "{}",
        moved.body
    );
    assert_eq!(
        moved.body["value"][0]["resourceData"]["id"],
        event_id.as_str()
    );

    graph
        .control(
            "POST",
            &format!("/calendar/events/{meeting_id}/cancel"),
            json!({}),
        )
        .await;
    let cancelled = receiver.next().await;
    assert_eq!(
        cancelled.body["value"][0]["changeType"], "deleted",
        "{}",
        cancelled.body
    );
}

// ---------------------------------------------------------------------------------------
// Google Calendar: web-hook channels

#[derive(Debug)]
struct Hook {
    state: String,
    number: u64,
    channel: String,
    token: Option<String>,
}

/// The next of Calendar's body-less notifications: their `X-Goog-*` headers.
async fn next_hook(receiver: &mut PushReceiver) -> Hook {
    let delivery = receiver.next().await;
    assert!(
        delivery.raw_body.is_empty(),
        "Calendar notifications have no body"
    );
    let header = |name: &str| delivery.header(name).map(str::to_string);
    Hook {
        state: header("x-goog-resource-state").unwrap_or_default(),
        number: header("x-goog-message-number")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        channel: header("x-goog-channel-id").unwrap_or_default(),
        token: header("x-goog-channel-token"),
    }
}

#[tokio::test]
async fn calendar_channels_say_sync_then_exists_until_stopped() {
    let emulator = emulator().await;
    let mut hooks = PushReceiver::start().await;
    let address = format!("{}/calendar-hook", hooks.url());
    let token = emulator
        .token(BOB, "https://www.googleapis.com/auth/calendar.readonly")
        .await;
    let watch =
        json!({"id": "channel-1", "type": "web_hook", "address": address, "token": "tenant=7"});
    let (status, channel) = call(
        &emulator,
        reqwest::Method::POST,
        "/calendar/v3/calendars/primary/events/watch",
        &token,
        Some(watch.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{channel}");
    assert_eq!(channel["kind"], "api#channel");
    assert_eq!(channel["id"], "channel-1");
    let sync = next_hook(&mut hooks).await;
    assert_eq!((sync.state.as_str(), sync.number), ("sync", 1));
    assert_eq!(sync.channel, "channel-1");
    assert_eq!(sync.token.as_deref(), Some("tenant=7"));
    let (status, _) = call(
        &emulator,
        reqwest::Method::POST,
        "/calendar/v3/calendars/primary/events/watch",
        &token,
        Some(watch),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "channel ids are unique");

    let start = chrono::Utc::now() + chrono::Duration::days(1);
    let meeting = json!({"organizer": BOB, "summary": "Kickoff", "start": start.to_rfc3339(),
        "end": (start + chrono::Duration::hours(1)).to_rfc3339()});
    control(
        &emulator,
        reqwest::Method::POST,
        "/calendar/events",
        meeting.clone(),
    )
    .await;
    let exists = next_hook(&mut hooks).await;
    assert_eq!((exists.state.as_str(), exists.number), ("exists", 2));

    let stop = json!({"id": "channel-1", "resourceId": channel["resourceId"]});
    let (status, _) = call(
        &emulator,
        reqwest::Method::POST,
        "/calendar/v3/channels/stop",
        &token,
        Some(stop),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    control(
        &emulator,
        reqwest::Method::POST,
        "/calendar/events",
        meeting,
    )
    .await;
    // A stopped channel is notified no more.
    hooks.nothing_more().await;
}
