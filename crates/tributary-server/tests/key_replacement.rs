//! Uploading a key over a working one, through the API and the console: the new key is
//! tested first and a failing one leaves the working key in place (Google's words shown,
//! the refusal audited) unless the admin explicitly replaces it anyway; a key naming
//! another token endpoint and an admin address that is not one (`a@b`) or is outside the
//! organization's domains are refused, naming the field.

mod api_support;
mod console_support;

use api_support::{Backend, Server, TestStore, emulator, key_file, ordinary_user};
use console_support::{Browser, Console};
use serde_json::{Value, json};
use tributary_emulator::server::RunningEmulator;
use tributary_store::MemberRole;

const STRANGER: &str = "stranger@unrelated-project.iam.gserviceaccount.com";

/// A valid key of a service account the organization never delegated to.
fn unrelated_key(emulated: &RunningEmulator) -> Value {
    let mut key = key_file(emulated);
    key["client_email"] = json!(STRANGER);
    key["client_id"] = json!("100000000000000000042");
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_keeps_a_working_key_unless_told_to_replace_it() {
    let store = TestStore::open(Backend::Sqlite).await.unwrap();
    let emulated = emulator(4, 4).await;
    let server = Server::start(store, Some(&emulated), &ordinary_user(&emulated)).await;
    let api = &server.admin;
    let admin_email = emulated.info.admin_email.clone();
    let connect = |key: Value, admin: &str| json!({ "key_file": key, "admin_email": admin });

    // The first key is stored untested, as before; `a@b` never is.
    api.post("/connection", &connect(key_file(&emulated), "a@b"))
        .await
        .expect_error(422, "invalid_admin_email");
    api.get("/connection").await.expect_error(404, "not_found");
    let working = api
        .post("/connection", &connect(key_file(&emulated), &admin_email))
        .await
        .expect(200);
    api.post_empty("/delegation/rebuild").await.expect(200);

    let refused = api
        .post(
            "/connection",
            &connect(unrelated_key(&emulated), &admin_email),
        )
        .await;
    refused.expect_error(409, "key_test_failed");
    let error = &refused.body["error"];
    assert_eq!(error["field"], "key_file");
    assert_eq!(error["status"], "authentication_error", "{error}");
    assert!(
        error["provider_message"]
            .as_str()
            .unwrap()
            .contains("verifier"),
        "Google's parsed words: {error}"
    );
    assert!(error["hint"].is_string(), "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("replace_anyway"),
        "{error}"
    );
    assert_eq!(api.get("/connection").await.expect(200), working);

    // The admin address must be an address on the organization's domains.
    for admin in ["a@b", "root@elsewhere.example"] {
        let reply = api
            .post("/connection", &connect(key_file(&emulated), admin))
            .await;
        reply.expect_error(422, "invalid_admin_email");
        assert_eq!(reply.body["error"]["field"], "admin_email");
    }
    // A key naming another token endpoint is refused before anything is sent there.
    let mut elsewhere = key_file(&emulated);
    elsewhere["token_uri"] = json!("http://127.0.0.1:9/token");
    let reply = api
        .post("/connection", &connect(elsewhere, &admin_email))
        .await;
    reply.expect_error(422, "invalid_key_file");
    assert_eq!(reply.body["error"]["field"], "token_uri");
    assert_eq!(api.get("/connection").await.expect(200), working);

    // Replace anyway: the admin knows the working key is dead.
    let mut anyway = connect(unrelated_key(&emulated), &admin_email);
    anyway["replace_anyway"] = json!(true);
    let replaced = api.post("/connection", &anyway).await.expect(200);
    assert_eq!(replaced["client_email"], STRANGER);

    let events = api.get("/audit?limit=1000").await.expect(200)["events"]
        .as_array()
        .unwrap()
        .clone();
    let refusal = events
        .iter()
        .find(|e| e["action"] == "connection.google.key_replacement_refused")
        .expect("the refusal is audited");
    assert_eq!(refusal["detail"]["client_email"], STRANGER, "{refusal}");
    assert_eq!(refusal["detail"]["test"]["ok"], false, "{refusal}");
    let forced = events
        .iter()
        .find(|e| {
            e["action"] == "connection.google.key_uploaded" && e["detail"]["replace_anyway"] == true
        })
        .expect("the forced replacement is audited");
    assert_eq!(forced["detail"]["replaced"], true, "{forced}");
    assert_eq!(forced["detail"]["test"]["ok"], false, "{forced}");
    server.stop().await;
}

const ADMIN: &str = "ops@console.test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_offers_replace_anyway_once_a_key_is_stored() {
    let emulated = console_support::emulator(4, 4).await;
    let console = Console::start(&emulated, None).await;
    console
        .add_user(&console.tenant, ADMIN, MemberRole::Admin)
        .await;
    let mut browser = Browser::new(&console.url);
    browser.sign_in(ADMIN).await;
    let admin = emulated.info.admin_email.clone();
    let key = serde_json::to_vec(&key_file(&emulated)).unwrap();
    let unrelated = serde_json::to_vec(&unrelated_key(&emulated)).unwrap();

    let first = browser.get("/setup").await;
    assert!(
        !first.body.contains("name=\"replace_anyway\""),
        "{}",
        first.body
    );
    let csrf = first.csrf();
    let bad_admin = browser
        .submit_multipart(
            "/setup/key",
            &[("csrf", &csrf), ("admin_email", "a@b")],
            ("key_file", &key),
        )
        .await;
    assert!(
        bad_admin.body.contains("is not an email address"),
        "{}",
        bad_admin.body
    );
    assert!(bad_admin.body.contains("Nothing was stored"));
    let stored = browser
        .submit_multipart(
            "/setup/key",
            &[("csrf", &csrf), ("admin_email", &admin)],
            ("key_file", &key),
        )
        .await;
    assert!(stored.body.contains("Key uploaded"), "{}", stored.body);
    assert!(stored.body.contains("name=\"replace_anyway\""));
    let working = console.runtime.google_setup(&console.tenant).await.unwrap();

    let refused = browser
        .submit_multipart(
            "/setup/key",
            &[("csrf", &csrf), ("admin_email", &admin)],
            ("key_file", &unrelated),
        )
        .await;
    assert!(
        refused.body.contains("failed the connection test"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("stored key was kept"));
    assert!(
        refused.body.contains("verifier"),
        "Google's words are shown"
    );
    assert!(refused.body.contains("Replace the stored key even if"));
    assert_eq!(
        console.runtime.google_setup(&console.tenant).await.unwrap(),
        working
    );

    let replaced = browser
        .submit_multipart(
            "/setup/key",
            &[
                ("csrf", &csrf),
                ("admin_email", &admin),
                ("replace_anyway", "on"),
            ],
            ("key_file", &unrelated),
        )
        .await;
    assert!(replaced.body.contains("Key uploaded"), "{}", replaced.body);
    let setup = console
        .runtime
        .google_setup(&console.tenant)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(setup.client_email, STRANGER);
    console.stop();
}
