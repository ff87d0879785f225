//! Input bounds of the REST API over real HTTP on loopback: bulk link actions count each
//! link once and take at most 1,000; member labels are bounded and checked against the
//! member's mailbox (the emulator's); long names and addresses are refused; bodies must
//! be JSON objects; answers are never cached; and the OpenAPI document says all this.

mod api_support;

use api_support::{Backend, Server, TestStore, emulator, key_file, ordinary_user};
use reqwest::header::CACHE_CONTROL;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tributary_server::{AppState, ServerConfig};
use tributary_store::{MasterKey, MemberRole, TenantId};
use tributary_sync::{Runtime, RuntimeConfig};

/// A server connected to an emulated organization, its directory read (links exist).
async fn connected(
    emulated: &tributary_emulator::server::RunningEmulator,
    member_email: &str,
) -> Server {
    let store = TestStore::open(Backend::Sqlite).await.unwrap();
    let server = Server::start(store, Some(emulated), member_email).await;
    server
        .admin
        .post(
            "/connection",
            &json!({ "key_file": key_file(emulated), "admin_email": emulated.info.admin_email }),
        )
        .await
        .expect(200);
    server
        .admin
        .post_empty("/delegation/rebuild")
        .await
        .expect(200);
    server
}

/// One link named 1,000 times is one write, counted once; more than 1,000 ids (30,000
/// times the same one, or 1,001 distinct) is a 400 naming the limit, and changes
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_link_actions_count_each_link_once_and_take_at_most_1000() {
    let emulated = emulator(3, 2).await;
    let server = connected(&emulated, &ordinary_user(&emulated)).await;
    let api = &server.admin;
    let links = server.store().links(&server.acme).await.unwrap();
    let id = links[0].id.0;

    let repeated = json!({ "links": vec![id; 1_000] });
    let unlinked = api.post("/links/unlink", &repeated).await.expect(200);
    assert_eq!(unlinked, json!({ "requested": 1, "changed": 1 }));
    let again = api.post("/links/unlink", &repeated).await.expect(200);
    assert_eq!(
        again["changed"], 0,
        "an unlinked link does not change again"
    );
    let started = api.post("/links/start", &repeated).await.expect(200);
    assert_eq!(started["changed"], 1);
    let audit = server
        .store()
        .audit_events(&server.acme, 10_000)
        .await
        .unwrap();
    assert!(
        audit.len() < 100,
        "one audit row per change, not per repeat: {}",
        audit.len()
    );

    let before = server.store().links(&server.acme).await.unwrap();
    let distinct: Vec<i64> = (0..1_001).map(|i| id + i).collect();
    for too_many in [distinct, vec![id; 30_000]] {
        for path in ["/links/start", "/links/unlink", "/links/retry"] {
            let refused = api.post(path, &json!({ "links": too_many })).await;
            refused.expect_error(400, "too_many_links");
            assert!(refused.text.contains("at most 1000"), "{}", refused.text);
        }
    }
    let after = server.store().links(&server.acme).await.unwrap();
    assert_eq!(
        before.iter().map(|l| l.status).collect::<Vec<_>>(),
        after.iter().map(|l| l.status).collect::<Vec<_>>()
    );
    server.stop().await;
}

/// At most 50 labels of at most 225 characters; a new label must be one the member's
/// mailbox has (by id or name), and a refusal names the labels that exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_labels_are_bounded_and_must_exist_in_the_mailbox() {
    let emulated = emulator(3, 2).await;
    let member_email = ordinary_user(&emulated);
    let server = connected(&emulated, &member_email).await;
    let own = server
        .store()
        .member_by_address(&server.acme, &member_email)
        .await
        .unwrap()
        .unwrap();
    let path = format!("/members/{}/labels", own.id.0);
    let (label_id, label_name) = {
        let org = emulated.state.org();
        let label = org.mailboxes[&member_email]
            .labels
            .values()
            .find(|l| l.kind == tributary_emulator::model::LabelKind::User)
            .expect("the mailbox has a user label")
            .clone();
        (label.id, label.name)
    };
    let many: Vec<String> = (0..51).map(|i| format!("Label_{i}")).collect();
    let refused = server.member.put(&path, &json!({ "labels": many })).await;
    refused.expect_error(422, "invalid_label");
    assert!(refused.text.contains("at most 50"), "{}", refused.text);

    let long = "L".repeat(226);
    let refused = server.member.put(&path, &json!({ "labels": [long] })).await;
    refused.expect_error(422, "invalid_label");
    assert!(refused.text.contains("225"), "{}", refused.text);

    let refused = server
        .member
        .put(&path, &json!({ "labels": ["Label_999999", label_id] }))
        .await;
    refused.expect_error(422, "invalid_label");
    assert!(refused.text.contains("Label_999999"), "{}", refused.text);
    assert!(
        refused.text.contains(&label_name),
        "the refusal names the mailbox's labels: {}",
        refused.text
    );
    let stored = server
        .store()
        .member_labels(&server.acme, own.id)
        .await
        .unwrap();
    assert!(stored.is_empty(), "nothing saved: {stored:?}");

    // A real label, by its name, is saved as its id.
    let accepted = server
        .member
        .put(&path, &json!({ "labels": [label_name] }))
        .await
        .expect(200);
    assert_eq!(accepted["labels"], json!([label_id]));
    server.stop().await;
}

/// A `[]` body is not a policy of defaults: it is refused, and the policy stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_must_be_json_objects() {
    let emulated = emulator(2, 2).await;
    let server = connected(&emulated, &ordinary_user(&emulated)).await;
    let api = &server.admin;
    let policy = api
        .put(
            "/policy",
            &json!({ "backfill_days": 30, "privacy": "metadata" }),
        )
        .await
        .expect(200);
    for body in [
        json!([]),
        json!([true, true, 5]),
        json!("x"),
        json!(3),
        json!(null),
    ] {
        let refused = api.put("/policy", &body).await;
        refused.expect_error(400, "not_an_object");
    }
    assert_eq!(api.get("/policy").await.expect(200), policy);
    assert_eq!(policy["backfill_days"], 30);
    api.post("/links/start", &json!([[1]]))
        .await
        .expect_error(400, "not_an_object");
    server.stop().await;
}

/// An explicit `null` where the document allows none is refused (serde alone reads it as
/// "absent"), and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_is_not_absent() {
    let emulated = emulator(2, 2).await;
    let server = connected(&emulated, &ordinary_user(&emulated)).await;
    let api = &server.admin;
    let members = api.get("/members").await.expect(200);
    let member = members["members"][0]["id"].as_i64().expect("a member id");
    let path = format!("/members/{member}");
    for body in [json!({ "active": null }), json!({ "role": null })] {
        let refused = api.patch(&path, &body).await;
        assert!(
            refused.status == 422 || refused.status == 400,
            "{body} was accepted: {}",
            refused.status
        );
    }
    let accounts = api.get("/accounts").await.expect(200);
    let account = accounts["accounts"][0]["id"]
        .as_i64()
        .expect("an account id");
    for body in [json!({ "role": null }), json!({ "active": null })] {
        api.patch(&format!("/accounts/{account}"), &body)
            .await
            .expect_error(422, "invalid_body");
    }
    api.post(
        "/accounts",
        &json!({ "email": "new@acme.test", "password": null }),
    )
    .await
    .expect_error(422, "invalid_body");
    assert_eq!(api.get("/accounts").await.expect(200), accounts);
    server.stop().await;
}

/// A server of its own with the production body limit (1 MiB), so that 100,000
/// characters reach the handlers; answers the base URL and an admin token.
async fn production_limits() -> (String, String, watch::Sender<bool>, TestStore) {
    let store = TestStore::open(Backend::Sqlite).await.unwrap();
    let runtime = Runtime::new(
        store.store.clone(),
        MasterKey::generate(),
        RuntimeConfig::default(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let config = ServerConfig {
        public_url: url.clone(),
        ..ServerConfig::default()
    };
    assert!(config.max_body_bytes > 200_000);
    let (shutdown, mut stop) = watch::channel(false);
    tokio::spawn(tributary_server::serve(
        listener,
        AppState::new(runtime.clone(), config),
        async move {
            let _ = stop.wait_for(|stop| *stop).await;
        },
    ));
    let tenant = TenantId::new("acme");
    let db = runtime.store();
    db.create_tenant(&tenant, "Acme").await.unwrap();
    let user = tributary_server::auth::create_user(
        db,
        &tenant,
        "root@acme.test",
        MemberRole::Admin,
        "a long enough password",
        "test",
    )
    .await
    .unwrap();
    let token = db
        .create_api_token(&tenant, user, "tests", "test")
        .await
        .unwrap();
    (format!("{url}/api/v1"), token.secret, shutdown, store)
}

async fn send(
    http: &reqwest::Client,
    token: &str,
    method: reqwest::Method,
    url: String,
    body: Option<&Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut request = http.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, headers)
}

/// 100,000-character addresses, aliases, token names and token owners are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_names_and_addresses_are_refused() {
    let (base, token, shutdown, store) = production_limits().await;
    let http = reqwest::Client::new();
    let huge = format!("{}@acme.test", "a".repeat(100_000));
    let post = |path: &str, body: Value| {
        let (http, token, url) = (http.clone(), token.clone(), format!("{base}{path}"));
        async move { send(&http, &token, reqwest::Method::POST, url, Some(&body)).await }
    };
    for (path, body, field) in [
        ("/members", json!({ "email": huge }), "email"),
        (
            "/members",
            json!({ "email": "ok@acme.test", "aliases": [huge] }),
            "aliases",
        ),
        (
            "/members",
            json!({ "email": "ok@acme.test", "aliases": vec!["x@acme.test"; 101] }),
            "aliases",
        ),
        ("/tokens", json!({ "name": "n".repeat(100_000) }), "name"),
        ("/tokens", json!({ "name": "n".repeat(101) }), "name"),
        ("/tokens", json!({ "name": "ok", "user": huge }), "user"),
    ] {
        let (status, body, _) = post(path, body).await;
        assert_eq!(status, 422, "{path} {field}: {body}");
        assert_eq!(body["error"]["field"], field, "{body}");
        assert!(
            body.to_string().len() < 2_000,
            "the refusal does not echo the input"
        );
    }
    let (status, body, _) = post("/members", json!({ "email": "a@b" })).await;
    assert_eq!(status, 422, "not an address a mailbox has: {body}");
    let (status, _, _) = post("/tokens", json!({ "name": "n".repeat(100) })).await;
    assert_eq!(status, 201, "100 characters is a fine name");
    let (status, members, _) = send(
        &http,
        &token,
        reqwest::Method::GET,
        format!("{base}/members"),
        None,
    )
    .await;
    assert_eq!(
        (status, members["members"].as_array().unwrap().len()),
        (200, 0)
    );
    for path in [
        format!("/contacts?q={}", "q".repeat(255)),
        "/contacts?limit=0".to_owned(),
        "/audit?limit=1001".to_owned(),
        format!("/activities?member={}", "m".repeat(5_000)),
        format!("/relationships?cursor={}", "c".repeat(10_000)),
    ] {
        let (status, body, _) = send(
            &http,
            &token,
            reqwest::Method::GET,
            format!("{base}{path}"),
            None,
        )
        .await;
        assert_eq!(status, 400, "{body}");
    }
    let _ = shutdown.send(true);
    store.close().await;
}

/// Every API answer, success or error, says `Cache-Control: no-store`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_answers_are_never_cached() {
    let (base, token, shutdown, store) = production_limits().await;
    let http = reqwest::Client::new();
    let get = reqwest::Method::GET;
    for (method, path, status) in [
        (get.clone(), "/members", 200),
        (get.clone(), "/openapi.json", 200),
        (get.clone(), "/no-such-route", 404),
        (reqwest::Method::POST, "/tokens", 415),
        (reqwest::Method::DELETE, "/links", 405),
    ] {
        let (answered, _, headers) =
            send(&http, &token, method, format!("{base}{path}"), None).await;
        assert_eq!(answered, status, "{path}");
        assert_eq!(
            headers.get(CACHE_CONTROL).and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "{path}"
        );
    }
    let (status, _, headers) = send(&http, "wrong", get, format!("{base}/members"), None).await;
    assert_eq!(status, 401);
    assert_eq!(headers.get(CACHE_CONTROL).unwrap(), "no-store");
    let _ = shutdown.send(true);
    store.close().await;
}

/// The document states the bounds the server holds requests to.
#[test]
fn the_openapi_document_declares_the_limits() {
    let document = tributary_server::openapi::document();
    let schema = |name: &str| document["components"]["schemas"][name].clone();
    let query = |path: &str, name: &str| -> Value {
        document["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{path} has no {name}"))["schema"]
            .clone()
    };
    for path in [
        "/activities",
        "/contacts",
        "/companies",
        "/relationships",
        "/audit",
    ] {
        let limit = query(path, "limit");
        assert_eq!(
            (limit["minimum"].clone(), limit["maximum"].clone()),
            (json!(1), json!(1000)),
            "{path}"
        );
    }
    let status = query("/links", "status");
    assert!(
        status["enum"]
            .as_array()
            .unwrap()
            .contains(&json!("linkage_error"))
    );
    assert!(query("/contacts", "q")["maxLength"].is_u64());

    let policy = schema("PolicySettings");
    assert_eq!(policy["additionalProperties"], false);
    assert_eq!(
        policy["properties"]["privacy"]["enum"],
        json!(["metadata", "subject", "snippet"])
    );
    assert_eq!(policy["properties"]["blocklist"]["maxItems"], 1000);
    assert_eq!(policy["properties"]["blocklist"]["items"]["maxLength"], 254);

    let links = &schema("LinkIds")["properties"]["links"];
    assert_eq!(links["maxItems"], 1000);
    let labels = &schema("SetLabels")["properties"]["labels"];
    assert_eq!(
        (
            labels["maxItems"].clone(),
            labels["items"]["maxLength"].clone()
        ),
        (json!(50), json!(225))
    );
    let member = schema("CreateMember");
    assert_eq!(member["properties"]["email"]["format"], "email");
    assert_eq!(member["properties"]["email"]["maxLength"], 254);
    assert_eq!(member["additionalProperties"], false);
    let token = schema("CreateToken");
    assert_eq!(token["properties"]["name"]["maxLength"], 100);
    assert_eq!(token["properties"]["user"]["format"], "email");
}
