//! The control API over real loopback HTTP: each change is checked through the APIs a
//! client sees (token endpoint, Gmail, Directory), not only in the emulator's state.

mod common;

use base64::Engine as _;
use common::{
    ADMIN, BOB, BOB_ALIAS, DELETED, MAIL_DISABLED, SUSPENDED, TestEmulator, assert_api_error,
    config, emulator, emulator_with,
};
use reqwest::{Method, StatusCode};
use rsa::pkcs8::DecodePrivateKey;
use serde_json::{Value, json};
use tributary_emulator::server::auth::scopes;
use tributary_emulator::server::quota::{GmailMethod, QuotaConfig};

/// Calls the control API and parses its JSON answer.
async fn control(
    emulator: &TestEmulator,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let url = format!("{}{path}", emulator.running.info.control_url);
    let mut request = emulator.http.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, value)
}

async fn post(emulator: &TestEmulator, path: &str, body: Value) -> (StatusCode, Value) {
    control(emulator, Method::POST, path, Some(body)).await
}

async fn put(emulator: &TestEmulator, path: &str, body: Value) -> (StatusCode, Value) {
    control(emulator, Method::PUT, path, Some(body)).await
}

fn copy_for<'a>(delivery: &'a Value, mailbox: &str) -> &'a Value {
    delivery["copies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["mailbox"] == mailbox)
        .unwrap_or_else(|| panic!("no copy for {mailbox} in {delivery}"))
}

fn history_id_of(value: &Value) -> u64 {
    value["historyId"].as_str().unwrap().parse().unwrap()
}

/// Every id a history.list page reports under `kind` (`messagesAdded`, ...).
fn history_ids(page: &Value, kind: &str) -> Vec<String> {
    page["history"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|record| record[kind].as_array().cloned().unwrap_or_default())
        .map(|entry| entry["message"]["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn delivered_mail_shows_in_history_and_threads_replies() {
    let emulator = emulator().await;
    let bob = emulator.gmail_token(BOB).await;
    let ann = emulator.gmail_token(ADMIN).await;
    let (_, profile) = emulator.get("/gmail/v1/users/me/profile", &bob).await;
    let start = history_id_of(&profile);

    let (status, delivery) = post(
        &emulator,
        "/messages/deliver",
        json!({
            "from": "Ann Admin <ann@acme.example>",
            "to": [format!("Robert <{BOB_ALIAS}>"), "someone@elsewhere.test"],
            "subject": "Quarterly numbers",
            "body": "See attached.",
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{delivery}");
    assert_eq!(delivery["copies"].as_array().unwrap().len(), 2);
    let bob_copy = copy_for(&delivery, BOB);
    let ann_copy = copy_for(&delivery, ADMIN);

    let path = format!("/gmail/v1/users/me/history?startHistoryId={start}");
    let (status, page) = emulator.get(&path, &bob).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        history_ids(&page, "messagesAdded"),
        [bob_copy["id"].as_str().unwrap()]
    );
    assert_eq!(
        history_id_of(&page),
        bob_copy["history_id"].as_u64().unwrap()
    );

    let message_path = format!(
        "/gmail/v1/users/me/messages/{}",
        bob_copy["id"].as_str().unwrap()
    );
    let (_, message) = emulator.get(&message_path, &bob).await;
    assert_eq!(
        message["labelIds"],
        json!(["CATEGORY_PERSONAL", "INBOX", "UNREAD"])
    );
    assert_eq!(message["snippet"], "See attached.");
    let message_path = format!(
        "/gmail/v1/users/me/messages/{}",
        ann_copy["id"].as_str().unwrap()
    );
    let (_, message) = emulator.get(&message_path, &ann).await;
    assert_eq!(message["labelIds"], json!(["SENT"]));

    let (status, reply) = post(
        &emulator,
        "/messages/deliver",
        json!({
            "from": BOB,
            "to": [ADMIN],
            "subject": "Re: Quarterly numbers",
            "in_reply_to": delivery["message_id"],
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(copy_for(&reply, ADMIN)["thread_id"], ann_copy["thread_id"]);
    assert_eq!(copy_for(&reply, BOB)["thread_id"], bob_copy["thread_id"]);
}

#[tokio::test]
async fn raw_messages_are_inserted_exactly() {
    let emulator = emulator().await;
    let raw =
        "From: x@elsewhere.test\r\nTo: bob@acme.example\r\nSubject: exact\r\n\r\nexact body\r\n";
    let encoded = base64::engine::general_purpose::URL_SAFE.encode(raw);
    let (status, answer) = post(
        &emulator,
        "/messages/deliver",
        json!({"raw": encoded, "mailbox": BOB, "labels": ["INBOX", "Label_1"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let id = answer["copies"][0]["id"].as_str().unwrap();

    let bob = emulator.gmail_token(BOB).await;
    let (_, message) = emulator
        .get(
            &format!("/gmail/v1/users/me/messages/{id}?format=raw"),
            &bob,
        )
        .await;
    let served = base64::engine::general_purpose::URL_SAFE
        .decode(message["raw"].as_str().unwrap())
        .unwrap();
    assert_eq!(served, raw.as_bytes());
    assert_eq!(message["labelIds"], json!(["INBOX", "Label_1"]));

    let (status, answer) = post(
        &emulator,
        "/messages/deliver",
        json!({"raw": encoded, "mailbox": BOB, "labels": ["Label_99"]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer["error"].as_str().unwrap().contains("Label_99"));
}

#[tokio::test]
async fn labels_deletions_and_expiry_reach_history_list() {
    let emulator = emulator().await;
    let bob = emulator.gmail_token(BOB).await;
    let (_, delivery) = post(
        &emulator,
        "/messages/deliver",
        json!({"from": "x@elsewhere.test", "to": [BOB], "subject": "s"}),
    )
    .await;
    let id = copy_for(&delivery, BOB)["id"].as_str().unwrap().to_string();
    let start = copy_for(&delivery, BOB)["history_id"].as_u64().unwrap();

    let (status, label) = post(
        &emulator,
        "/users/bob@acme.example/labels",
        json!({"name": "Projects"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{label}");
    assert_eq!(label["id"], "Label_2", "Label_1 exists already");
    let (status, _) = post(
        &emulator,
        "/users/bob@acme.example/labels",
        json!({"name": "projects"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let labels_path = format!("/users/bob@acme.example/messages/{id}/labels");
    let (status, changed) = post(
        &emulator,
        &labels_path,
        json!({"add": ["Label_2"], "remove": ["UNREAD"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(
        changed["label_ids"],
        json!(["CATEGORY_PERSONAL", "INBOX", "Label_2"])
    );
    let (status, _) = post(&emulator, &labels_path, json!({"add": ["NO_SUCH_LABEL"]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let message_path = format!("/users/bob@acme.example/messages/{id}");
    let (status, _) = control(&emulator, Method::DELETE, &message_path, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = control(&emulator, Method::DELETE, &message_path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let history_path = format!("/gmail/v1/users/me/history?startHistoryId={start}");
    let (status, page) = emulator.get(&history_path, &bob).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(history_ids(&page, "labelsAdded"), [id.as_str()]);
    assert_eq!(history_ids(&page, "labelsRemoved"), [id.as_str()]);
    assert_eq!(history_ids(&page, "messagesDeleted"), [id.as_str()]);

    let (status, expired) = post(
        &emulator,
        "/users/robert@acme.example/history/expire",
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{expired}");
    let (status, body) = emulator.get(&history_path, &bob).await;
    assert_api_error(
        status,
        &body,
        404,
        "notFound",
        Some("Requested entity was not found."),
    );

    let (_, all) = post(&emulator, "/history/expire", json!({})).await;
    assert!(all["mailboxes"].as_array().unwrap().len() >= 2);

    // Labels on delivery must exist in every receiving mailbox: Ann has no Label_1.
    let labelled = json!({"from": "x@elsewhere.test", "to": [BOB], "subject": "l",
                          "labels": ["Label_1"]});
    let (status, delivery) = post(&emulator, "/messages/deliver", labelled.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{delivery}");
    let id = copy_for(&delivery, BOB)["id"].as_str().unwrap();
    let (_, message) = emulator
        .get(&format!("/gmail/v1/users/me/messages/{id}"), &bob)
        .await;
    assert_eq!(
        message["labelIds"],
        json!(["CATEGORY_PERSONAL", "INBOX", "Label_1", "UNREAD"])
    );
    let mut to_both = labelled;
    to_both["to"] = json!([BOB, ADMIN]);
    let (status, answer) = post(&emulator, "/messages/deliver", to_both).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer["error"].as_str().unwrap().contains("Label_1"));
}

#[tokio::test]
async fn the_mail_service_fault_is_switched_per_mailbox() {
    let emulator = emulator().await;
    let bob = emulator.gmail_token(BOB).await;
    let (status, _) = post(
        &emulator,
        "/users/bob@acme.example/mail-service",
        json!({"enabled": false}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = emulator.get("/gmail/v1/users/me/profile", &bob).await;
    assert_api_error(
        status,
        &body,
        400,
        "failedPrecondition",
        Some("Mail service not enabled"),
    );

    post(
        &emulator,
        "/users/bob@acme.example/mail-service",
        json!({"enabled": true}),
    )
    .await;
    let (status, _) = emulator.get("/gmail/v1/users/me/profile", &bob).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn users_are_added_aliased_suspended_and_deleted() {
    let emulator = emulator().await;
    let (status, added) = post(
        &emulator,
        "/users",
        json!({"primary_email": "hugo@acme.example", "given_name": "Hugo",
               "family_name": "Hill", "aliases": ["h@acme-alias.example"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(added["mailbox"]["messages"], 0);

    let (status, _) = post(
        &emulator,
        "/users",
        json!({"primary_email": "HUGO@acme.example", "given_name": "H", "family_name": "H"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = post(
        &emulator,
        "/users",
        json!({"primary_email": DELETED, "given_name": "D", "family_name": "D"}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a deleted user's address stays taken"
    );
    let (status, answer) = post(
        &emulator,
        "/users",
        json!({"primary_email": "ivy@other.test", "given_name": "I", "family_name": "V"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer["error"].as_str().unwrap().contains("other.test"));

    // The new user is in the directory, can be impersonated, and receives mail at an alias.
    let admin = emulator.token(ADMIN, scopes::DIRECTORY_USER_READONLY).await;
    let (_, listing) = emulator
        .get("/admin/directory/v1/users?customer=my_customer", &admin)
        .await;
    let listed = |listing: &Value| {
        listing["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["primaryEmail"] == "hugo@acme.example")
    };
    assert!(listed(&listing), "{listing}");
    let hugo = emulator.gmail_token("hugo@acme.example").await;
    post(
        &emulator,
        "/messages/deliver",
        json!({"from": "x@elsewhere.test", "to": ["h@acme-alias.example"], "subject": "hi"}),
    )
    .await;
    let (_, profile) = emulator.get("/gmail/v1/users/me/profile", &hugo).await;
    assert_eq!(profile["messagesTotal"], 1);

    let (status, _) = post(
        &emulator,
        "/users/hugo@acme.example/aliases",
        json!({"alias": "hh@acme.example"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = post(
        &emulator,
        "/users/hugo@acme.example/aliases",
        json!({"alias": BOB_ALIAS}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Suspension revokes the user's tokens and stops delivery.
    let (status, suspended) = post(&emulator, "/users/hh@acme.example/suspend", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(suspended["suspended"], true);
    let (status, _) = emulator.get("/gmail/v1/users/me/profile", &hugo).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, delivery) = post(
        &emulator,
        "/messages/deliver",
        json!({"from": "x@elsewhere.test", "to": ["hugo@acme.example"], "subject": "hi"}),
    )
    .await;
    assert_eq!(delivery["copies"], json!([]));
    assert_eq!(delivery["skipped"][0]["reason"], "suspended");
    let (status, _) = post(&emulator, "/users/hugo@acme.example/unsuspend", json!({})).await;
    assert_eq!(status, StatusCode::OK);

    // Deletion: gone from the directory, and the token endpoint says so.
    let (status, deleted) =
        control(&emulator, Method::DELETE, "/users/hugo@acme.example", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deleted["deleted"], true);
    let (status, answer) =
        control(&emulator, Method::DELETE, "/users/hugo@acme.example", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("hugo@acme.example")
    );
    let (_, listing) = emulator
        .get("/admin/directory/v1/users?customer=my_customer", &admin)
        .await;
    assert!(!listed(&listing), "{listing}");
    let claims = emulator.claims("hugo@acme.example", scopes::GMAIL_READONLY);
    let (status, body) = emulator.token_response(&emulator.assertion(&claims)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error_description"], "The account has been deleted");

    let (_, state) = post(&emulator, "/counters/reset", json!({})).await;
    assert_eq!(state["total"]["requests"], 0);
    let (_, state) = control(&emulator, Method::GET, "/state", None).await;
    let summary = state["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["primary_email"] == "hugo@acme.example")
        .unwrap();
    assert_eq!(summary["deleted"], true);
    assert!(
        state["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["primary_email"] == SUSPENDED && u["suspended"] == true)
    );
}

#[tokio::test]
async fn quotas_are_enforced_live_and_counted() {
    let emulator = emulator().await;
    let bob = emulator.gmail_token(BOB).await;
    // messages.list costs 5: two fit in 10 units, and refilling 5 takes 30 s.
    let (status, quota) = control(
        &emulator,
        Method::PATCH,
        "/quota",
        Some(json!({"enabled": true, "per_user_units_per_minute": 10})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{quota}");
    assert_eq!(quota["per_project_units_per_minute"], 1_200_000);
    for _ in 0..2 {
        let (status, _) = emulator.get("/gmail/v1/users/me/messages", &bob).await;
        assert_eq!(status, StatusCode::OK);
    }
    let response = emulator
        .http
        .get(emulator.url("/gmail/v1/users/me/messages"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_api_error(status, &body, 403, "userRateLimitExceeded", None);
    assert_eq!(body["error"]["errors"][0]["domain"], "usageLimits");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("User-rate limit exceeded.  Retry after "),
        "{message}"
    );

    // Another user still has budget; then the concurrency cap, with one slot held here.
    let ann = emulator.gmail_token(ADMIN).await;
    put(
        &emulator,
        "/quota",
        json!({"concurrent_requests_per_user": 1}),
    )
    .await;
    let held = emulator
        .running
        .state
        .quotas
        .admit(ADMIN, GmailMethod::GetProfile)
        .unwrap();
    let (status, body) = emulator.get("/gmail/v1/users/me/profile", &ann).await;
    assert_api_error(
        status,
        &body,
        429,
        "rateLimitExceeded",
        Some("Too many concurrent requests for user"),
    );
    drop(held);
    let (status, _) = emulator.get("/gmail/v1/users/me/profile", &ann).await;
    assert_eq!(status, StatusCode::OK);

    let (_, counters) = control(&emulator, Method::GET, "/counters", None).await;
    let bob_list = &counters["users"][BOB]["methods"]["users.messages.list"];
    assert_eq!(bob_list["requests"], 3, "{counters}");
    assert_eq!(bob_list["units"], 10);
    assert_eq!(bob_list["rate_limited"], 1);
    assert_eq!(counters["rate_limited_by_kind"]["user_rate"], 1);
    assert_eq!(counters["rate_limited_by_kind"]["concurrency"], 1);
    assert_eq!(counters["users"][ADMIN]["total"]["rate_limited"], 1);
    assert_eq!(counters["quota"]["concurrent_requests_per_user"], 1);

    let (status, answer) = put(&emulator, "/quota", json!({"time_scale": 0})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer["error"].as_str().unwrap().contains("time_scale"));
}

#[tokio::test]
async fn injected_backend_errors_and_their_count() {
    let emulator = emulator().await;
    let bob = emulator.gmail_token(BOB).await;
    let (status, faults) = put(
        &emulator,
        "/faults",
        json!({"backend_error_probability": 1.0, "seed": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{faults}");
    let (status, body) = emulator.get("/gmail/v1/users/me/profile", &bob).await;
    assert_api_error(status, &body, 500, "backendError", Some("Backend Error"));
    let (status, _) = control(
        &emulator,
        Method::PATCH,
        "/faults",
        Some(json!({"backend_error_probability": 2})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (_, counters) = control(&emulator, Method::GET, "/counters", None).await;
    assert_eq!(counters["faults_injected"]["backend_errors"], 1);
    put(&emulator, "/faults", json!({})).await;
    let (status, _) = emulator.get("/gmail/v1/users/me/profile", &bob).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_scenario_applies_at_start() {
    let mut start = config();
    // Fault settings from the flags stay: the scenario has no `faults` part.
    start.faults.latency_ms = 1;
    start.scenario = Some(
        serde_json::from_value(json!({
            "quota": {"per_user_units_per_minute": 600, "time_scale": 60},
            "mail_disabled": [BOB],
        }))
        .unwrap(),
    );
    let emulator = emulator_with(start).await;
    let (_, quota) = control(&emulator, Method::GET, "/quota", None).await;
    let expected = QuotaConfig {
        per_user_units_per_minute: 600,
        time_scale: 60.0,
        ..QuotaConfig::default()
    };
    assert_eq!(
        serde_json::from_value::<QuotaConfig>(quota).unwrap(),
        expected
    );
    let bob = emulator.gmail_token(BOB).await;
    let (status, body) = emulator.get("/gmail/v1/users/me/profile", &bob).await;
    assert_api_error(status, &body, 400, "failedPrecondition", None);
    let (_, counters) = control(&emulator, Method::GET, "/counters", None).await;
    assert_eq!(counters["quota"]["per_user_units_per_second"], 600.0);
    assert_eq!(counters["faults_injected"]["delayed_requests"], 1);
    let (_, state) = control(&emulator, Method::GET, "/state", None).await;
    let erin = state["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["primary_email"] == MAIL_DISABLED)
        .unwrap();
    assert_eq!(erin["mailbox"]["mail_enabled"], false);
}

#[tokio::test]
async fn a_scenario_s_time_scale_speeds_up_the_quota_in_force() {
    let mut start = config();
    start.quota.per_user_units_per_minute = 600;
    start.scenario = Some(
        serde_json::from_value(json!({"time_scale": 60, "mail_disabled": [BOB_ALIAS]})).unwrap(),
    );
    let emulator = emulator_with(start).await;
    let (_, quota) = control(&emulator, Method::GET, "/quota", None).await;
    let quota: QuotaConfig = serde_json::from_value(quota).unwrap();
    assert_eq!(
        (quota.time_scale, quota.per_user_units_per_minute),
        (60.0, 600),
        "the flags' budget, sixty times faster"
    );
    let bob = emulator.gmail_token(BOB).await;
    let (status, body) = emulator.get("/gmail/v1/users/me/profile", &bob).await;
    assert_api_error(status, &body, 400, "failedPrecondition", None);
}

#[tokio::test]
async fn malformed_requests_get_json_errors() {
    let emulator = emulator().await;
    let response = emulator
        .http
        .post(format!("{}/users", emulator.running.info.control_url))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].is_string());

    let (status, answer) = post(
        &emulator,
        "/users/bob@acme.example/mail-service",
        json!({"enable": false}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer["error"].as_str().unwrap().contains("enable"));
    let (status, _) = post(&emulator, "/users/nobody@acme.example/suspend", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = post(
        &emulator,
        "/messages/deliver",
        json!({"from": BOB, "subject": "no one"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn keys_delegation_access_and_disabling_reach_the_token_endpoint() {
    let emulator = emulator().await;
    let gmail_claims = || emulator.claims(BOB, scopes::GMAIL_READONLY);
    let original_key = emulator.running.key_file.private_key_id.clone();

    // A new key signs valid assertions; deleting the original one invalidates its own.
    let (status, key_file) = post(&emulator, "/service-account/keys", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{key_file}");
    assert_eq!(key_file["client_id"], emulator.client_id());
    let new_key =
        rsa::RsaPrivateKey::from_pkcs8_pem(key_file["private_key"].as_str().unwrap()).unwrap();
    let new_header = json!({"alg": "RS256", "typ": "JWT", "kid": key_file["private_key_id"]});
    let signed_with_new = common::sign_jwt(&new_key, &new_header, &gmail_claims());
    let (status, body) = emulator.token_response(&signed_with_new).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, account) = control(
        &emulator,
        Method::DELETE,
        &format!("/service-account/keys/{original_key}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{account}");
    assert_eq!(account["key_ids"], json!([key_file["private_key_id"]]));
    let (status, body) = emulator
        .token_response(&emulator.assertion(&gmail_claims()))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_description"], "Invalid JWT Signature.");
    let (status, _) = control(
        &emulator,
        Method::DELETE,
        &format!("/service-account/keys/{original_key}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Delegation removed: unauthorized_client; restored: tokens again.
    let (status, _) = put(&emulator, "/delegation", json!({"scopes": []})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = emulator.token_response(&signed_with_new).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "unauthorized_client");
    let (_, delegation) = put(
        &emulator,
        "/delegation",
        json!({"scopes": [scopes::GMAIL_READONLY]}),
    )
    .await;
    assert_eq!(delegation["scopes"], json!([scopes::GMAIL_READONLY]));
    let (status, _) = emulator.token_response(&signed_with_new).await;
    assert_eq!(status, StatusCode::OK);

    let (status, _) = post(&emulator, "/api-access", json!({"restricted": true})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = emulator.token_response(&signed_with_new).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "admin_policy_enforced");
    post(&emulator, "/api-access", json!({"restricted": false})).await;

    let (status, account) = post(
        &emulator,
        "/service-account/disable",
        json!({"disabled": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(account["disabled"], true);
    let (_, body) = emulator.token_response(&signed_with_new).await;
    assert_eq!(body["error_description"], "Robot is disabled.");

    let bob = {
        post(
            &emulator,
            "/service-account/disable",
            json!({"disabled": false}),
        )
        .await;
        let (_, body) = emulator.token_response(&signed_with_new).await;
        body["access_token"].as_str().unwrap().to_string()
    };
    let (status, _) = post(&emulator, "/tokens/expire", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = emulator.get("/gmail/v1/users/me/profile", &bob).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn token_requests_are_counted_per_subject() {
    let emulator = emulator().await;
    emulator.gmail_token(BOB).await;
    emulator.gmail_token(BOB).await;
    emulator.gmail_token(ADMIN).await;
    let (status, counters) = control(&emulator, Method::GET, "/counters", None).await;
    assert_eq!(status, StatusCode::OK);
    let grants =
        |user: &str| counters["users"][user]["methods"]["oauth2.token"]["requests"].clone();
    assert_eq!(grants(BOB), json!(2), "{counters}");
    assert_eq!(grants(ADMIN), json!(1), "{counters}");
    assert_eq!(
        counters["users"][BOB]["methods"]["oauth2.token"]["units"],
        json!(0)
    );
}

#[tokio::test]
async fn token_faults_answer_a_transient_internal_failure() {
    let emulator = emulator().await;
    let (status, _) = control(
        &emulator,
        Method::PATCH,
        "/faults",
        Some(json!({"token_error_probability": 1.0})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let assertion = emulator.assertion(&emulator.claims(BOB, scopes::GMAIL_READONLY));
    let (status, body) = emulator.token_response(&assertion).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body,
        json!({"error": "internal_failure", "error_description": "Backend Error"})
    );
    // API faults are separate: with token faults off again, minting works.
    patch_faults(&emulator, json!({"token_error_probability": 0.0})).await;
    let (status, _) = emulator.token_response(&assertion).await;
    assert_eq!(status, StatusCode::OK);
    let (_, counters) = control(&emulator, Method::GET, "/counters", None).await;
    assert_eq!(
        counters["faults_injected"]["token_errors"],
        json!(1),
        "{counters}"
    );
}

async fn patch_faults(emulator: &TestEmulator, body: Value) {
    let (status, answer) = control(emulator, Method::PATCH, "/faults", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[tokio::test]
async fn an_out_of_range_token_fault_names_the_field() {
    let emulator = emulator().await;
    let (status, body) = control(
        &emulator,
        Method::PATCH,
        "/faults",
        Some(json!({"token_error_probability": 2.0})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("token_error_probability"),
        "{body}"
    );
}
