//! The Microsoft 365 emulator in-process: every token error path, Graph's refusals,
//! users paging, message delta (opaque links, replays of moves and deletes, 410 after
//! expiry), `$batch`, throttling, and the ground truth against the served mailboxes.
//! Requests go straight to the router (TLS is covered by the msal conformance tests).

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;
use tributary_emulator::kit::WindowConfig;
use tributary_emulator::microsoft::app::router;
use tributary_emulator::microsoft::state::MicrosoftState;
use tributary_emulator::microsoft::{MicrosoftConfig, RunningMicrosoft, TenantSource, start};
use tributary_emulator::org::OrgConfig;

const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

struct Harness {
    running: RunningMicrosoft,
    app: Router,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

fn small_org() -> OrgConfig {
    OrgConfig {
        seed: 11,
        users: 6,
        messages_per_user: 40,
        ..OrgConfig::default()
    }
}

async fn harness_with(config: MicrosoftConfig) -> Harness {
    let running = start(config).await.expect("the emulator starts");
    let app = router(Arc::clone(&running.state));
    Harness { running, app }
}

async fn harness() -> Harness {
    harness_with(MicrosoftConfig {
        organization: TenantSource::Generate(small_org()),
        ..MicrosoftConfig::default()
    })
    .await
}

impl Harness {
    fn state(&self) -> &MicrosoftState {
        &self.running.state
    }

    fn tenant_id(&self) -> String {
        self.running.app.tenant_id.clone()
    }

    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.app.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn token_request(&self, tenant: &str, form: &[(&str, &str)]) -> Answer {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = Request::post(format!("/{tenant}/oauth2/v2.0/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        self.send(request).await
    }

    /// A token error's (status, error, code).
    async fn token_error(&self, tenant: &str, form: &[(&str, &str)]) -> (u16, String, u64) {
        let answer = self.token_request(tenant, form).await;
        let code = answer.body["error_codes"][0].as_u64().unwrap_or(0);
        let error = answer.body["error"].as_str().unwrap_or("").to_string();
        (answer.status.as_u16(), error, code)
    }

    fn secret_form(&self) -> Vec<(&'static str, String)> {
        vec![
            ("client_id", self.running.app.client_id.clone()),
            ("client_secret", self.running.app.client_secret.clone()),
            ("grant_type", "client_credentials".into()),
            ("scope", GRAPH_SCOPE.into()),
        ]
    }

    async fn token(&self) -> String {
        let form = self.secret_form();
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = self.token_request(&self.tenant_id(), &pairs).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.body["access_token"].as_str().unwrap().to_string()
    }

    async fn get(&self, path: &str, token: &str, headers: &[(&str, &str)]) -> Answer {
        let path = path
            .strip_prefix(&self.running.base_url)
            .unwrap_or(path)
            .to_string();
        let mut request = Request::get(path).header("authorization", format!("Bearer {token}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    async fn control(&self, method: &str, path: &str, body: Value) -> Answer {
        let request = Request::builder()
            .method(method)
            .uri(format!("/control{path}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let answer = self.send(request).await;
        assert!(answer.status.as_u16() < 300, "{path}: {}", answer.body);
        answer
    }

    /// A user with an enabled mailbox and some Inbox mail.
    fn mailbox_user(&self) -> String {
        let tenant = self.state().tenant();
        tenant
            .users
            .iter()
            .find(|u| {
                let mailbox = &tenant.mailboxes[&u.id];
                mailbox.enabled && mailbox.counts(&mailbox.well_known_id("inbox")).0 > 3
            })
            .map(|u| u.id.clone())
            .expect("a user with mail")
    }
}

fn with(
    form: &[(&'static str, String)],
    changes: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let mut form: Vec<(&'static str, String)> = form
        .iter()
        .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
        .cloned()
        .collect();
    form.extend(
        changes
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (*k, v.to_string())),
    );
    form
}

/// A token request's form fields.
type Form = Vec<(&'static str, String)>;
/// (HTTP status, `error`, first of `error_codes`).
type Expected = (u16, &'static str, u64);

fn pairs<'a>(form: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    form.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn every_token_error_answers_in_microsoft_s_shape() {
    let h = harness().await;
    let tenant = h.tenant_id();
    let base = h.secret_form();
    let cases: Vec<(&str, Form, &str, Expected)> = vec![
        (
            "wrong secret",
            with(&base, &[("client_secret", "nope")]),
            &tenant,
            (401, "invalid_client", 7_000_215),
        ),
        (
            "no credential",
            with(&base, &[("client_secret", "")]),
            &tenant,
            (401, "invalid_client", 7_000_218),
        ),
        (
            "unknown app",
            with(
                &base,
                &[("client_id", "11111111-1111-1111-1111-111111111111")],
            ),
            &tenant,
            (400, "unauthorized_client", 700_016),
        ),
        (
            "unknown tenant",
            base.clone(),
            "22222222-2222-2222-2222-222222222222",
            (400, "invalid_request", 90_002),
        ),
        (
            "/common",
            base.clone(),
            "common",
            (400, "invalid_request", 9_001_023),
        ),
        (
            "bad scope",
            with(&base, &[("scope", "User.Read")]),
            &tenant,
            (400, "invalid_scope", 70_011),
        ),
        (
            "two resources",
            with(
                &base,
                &[(
                    "scope",
                    "https://graph.microsoft.com/.default https://outlook.office.com/.default",
                )],
            ),
            &tenant,
            (400, "invalid_scope", 700_022),
        ),
        (
            "wrong grant",
            with(&base, &[("grant_type", "password")]),
            &tenant,
            (400, "unsupported_grant_type", 70_003),
        ),
    ];
    for (name, form, tenant, expected) in cases {
        let got = h.token_error(tenant, &pairs(&form)).await;
        assert_eq!(
            got,
            (expected.0, expected.1.to_string(), expected.2),
            "{name}"
        );
    }
    let answer = h
        .token_request(&tenant, &pairs(&with(&base, &[("client_secret", "nope")])))
        .await;
    let description = answer.body["error_description"].as_str().unwrap();
    assert!(description.starts_with("AADSTS7000215: "), "{description}");
    for field in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
        assert!(answer.body[field].is_string(), "{field}");
    }

    h.control("POST", "/app/disable", json!({"disabled": true}))
        .await;
    assert_eq!(h.token_error(&tenant, &pairs(&base)).await.2, 7_000_112);
    h.control("POST", "/app/disable", json!({"disabled": false}))
        .await;
    h.control("POST", "/consent/revoke", json!({})).await;
    assert_eq!(h.token_error(&tenant, &pairs(&base)).await.2, 7_000_229);
    h.control("POST", "/consent/grant", json!({})).await;
    h.control("POST", "/app/secrets/expire", json!({})).await;
    assert_eq!(
        h.token_error(&tenant, &pairs(&base)).await,
        (401, "invalid_client".into(), 7_000_222)
    );
}

#[tokio::test]
async fn a_secret_in_basic_auth_and_a_domain_authority_get_tokens() {
    let h = harness().await;
    let app = &h.running.app;
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", app.client_id, app.client_secret));
    let domain = h.running.info.domains[0].clone();
    let request = Request::post(format!("/{domain}/oauth2/v2.0/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", format!("Basic {basic}"))
        .body(Body::from(format!(
            "grant_type=client_credentials&scope={GRAPH_SCOPE}"
        )))
        .unwrap();
    let answer = h.send(request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["token_type"], "Bearer");
    assert_eq!(answer.body["expires_in"], 3599);
}

fn assertion(h: &Harness, header: Value, key_pem: &str) -> String {
    let token_endpoint = h.running.info.token_endpoint.clone();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let claims = json!({"aud": token_endpoint, "iss": h.running.app.client_id, "sub": h.running.app.client_id,
        "jti": "1", "iat": now, "exp": now + 600.5});
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(key_pem).unwrap();
    let signature = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key).sign(signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_vec()))
}

#[tokio::test]
async fn certificate_assertions_need_the_registered_certificate() {
    let h = harness().await;
    let tenant = h.tenant_id();
    let sha1 = hex::decode(&h.running.app.thumbprint_sha1).unwrap();
    let header = json!({"alg": "RS256", "typ": "JWT", "x5t": URL_SAFE_NO_PAD.encode(&sha1)});
    let good = assertion(&h, header, &h.running.certificate.private_key_pem);
    let client_id = h.running.app.client_id.clone();
    let form = |assertion: &str| {
        vec![
            ("client_id", client_id.clone()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string(),
            ),
            ("client_assertion", assertion.to_string()),
            ("grant_type", "client_credentials".to_string()),
            ("scope", GRAPH_SCOPE.to_string()),
        ]
    };
    let answer = h.token_request(&tenant, &pairs(&form(&good))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let unknown = json!({"alg": "RS256", "x5t": URL_SAFE_NO_PAD.encode([7u8; 20])});
    let bad = assertion(&h, unknown, &h.running.certificate.private_key_pem);
    assert_eq!(
        h.token_error(&tenant, &pairs(&form(&bad))).await,
        (401, "invalid_client".into(), 700_027)
    );
}

#[tokio::test]
async fn graph_refuses_as_microsoft_does() {
    let h = harness().await;
    let token = h.token().await;
    let user = h.mailbox_user();
    let code = |a: &Answer| a.body["error"]["code"].as_str().unwrap_or("").to_string();

    let answer = h.get("/v1.0/users", "", &[]).await;
    assert_eq!(
        (answer.status.as_u16(), code(&answer)),
        (401, "InvalidAuthenticationToken".into())
    );
    let answer = h
        .get("/v1.0/users/nobody@nowhere.example", &token, &[])
        .await;
    assert_eq!(
        (answer.status.as_u16(), code(&answer)),
        (404, "Request_ResourceNotFound".into())
    );
    assert!(answer.body["error"]["innerError"]["request-id"].is_string());
    assert_eq!(
        answer.headers["request-id"],
        answer.body["error"]["innerError"]["request-id"]
            .as_str()
            .unwrap()
    );

    h.control(
        "POST",
        &format!("/users/{user}/mailbox"),
        json!({"enabled": false}),
    )
    .await;
    let answer = h
        .get(
            &format!("/v1.0/users/{user}/mailFolders/inbox"),
            &token,
            &[],
        )
        .await;
    assert_eq!(
        (answer.status.as_u16(), code(&answer)),
        (404, "MailboxNotEnabledForRESTAPI".into())
    );
    h.control(
        "POST",
        &format!("/users/{user}/mailbox"),
        json!({"enabled": true}),
    )
    .await;

    h.control(
        "PUT",
        "/access-policy",
        json!({"members": [user], "access_right": "DenyAccess"}),
    )
    .await;
    let answer = h
        .get(
            &format!("/v1.0/users/{user}/mailFolders/inbox"),
            &token,
            &[],
        )
        .await;
    assert_eq!(
        (answer.status.as_u16(), code(&answer)),
        (403, "ErrorAccessDenied".into())
    );
    h.control("DELETE", "/access-policy", json!({})).await;

    let answer = h
        .get(
            &format!("/v1.0/users/{user}/messages/AAMkAnothing"),
            &token,
            &[],
        )
        .await;
    assert_eq!(
        (answer.status.as_u16(), code(&answer)),
        (404, "ErrorItemNotFound".into())
    );
    let answer = h
        .get(
            "/v1.0/users/nobody@nowhere.example/mailFolders",
            &token,
            &[],
        )
        .await;
    assert_eq!(
        (answer.status.as_u16(), code(&answer)),
        (404, "ResourceNotFound".into())
    );

    h.control("PUT", "/permissions", json!({"roles": ["Mail.Read"]}))
        .await;
    let limited = h.token().await;
    let answer = h.get("/v1.0/users", &limited, &[]).await;
    assert_eq!(
        (answer.status.as_u16(), code(&answer)),
        (403, "Authorization_RequestDenied".into())
    );
    h.control("PUT", "/permissions", json!({"roles": ["User.Read.All"]}))
        .await;
    let no_mail = h.token().await;
    let answer = h
        .get(&format!("/v1.0/users/{user}/mailFolders"), &no_mail, &[])
        .await;
    assert_eq!(
        (answer.status.as_u16(), code(&answer)),
        (403, "ErrorAccessDenied".into())
    );

    h.control("POST", "/tokens/expire", json!({})).await;
    let answer = h.get("/v1.0/users", &token, &[]).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(
        answer.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    assert!(answer.headers.contains_key("www-authenticate"));
}

#[tokio::test]
async fn users_page_with_links_that_keep_the_query() {
    let h = harness().await;
    let token = h.token().await;
    let mut url = "/v1.0/users?$select=id,proxyAddresses&$top=2".to_string();
    let mut seen = Vec::new();
    while !url.is_empty() {
        let answer = h.get(&url, &token, &[]).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        for user in answer.body["value"].as_array().unwrap() {
            let keys: Vec<&String> = user.as_object().unwrap().keys().collect();
            assert_eq!(
                keys,
                ["id", "proxyAddresses"],
                "the $select survives paging"
            );
            seen.push(user["id"].as_str().unwrap().to_string());
        }
        url = answer.body["@odata.nextLink"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if !url.is_empty() {
            assert!(url.starts_with("https://"), "absolute: {url}");
        }
    }
    let live = h
        .state()
        .tenant()
        .users
        .iter()
        .filter(|u| !u.deleted)
        .count();
    assert_eq!(seen.len(), live);
    let answer = h.get("/v1.0/users?$top=1000", &token, &[]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let answer = h
        .get(
            "/v1.0/users?$filter=accountEnabled%20eq%20false&$select=id,accountEnabled",
            &token,
            &[],
        )
        .await;
    let disabled = answer.body["value"].as_array().unwrap();
    let expected = h
        .state()
        .tenant()
        .users
        .iter()
        .filter(|u| !u.deleted && !u.account_enabled)
        .count();
    assert!(expected > 0, "the generator suspends someone");
    assert_eq!(disabled.len(), expected);
    assert!(disabled.iter().all(|u| u["accountEnabled"] == false));
}

async fn walk(h: &Harness, token: &str, first: &str, page: usize) -> (Vec<Value>, String) {
    let prefer = format!("odata.maxpagesize={page}");
    let mut url = first.to_string();
    let mut items = Vec::new();
    loop {
        let answer = h.get(&url, token, &[("prefer", &prefer)]).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        items.extend(answer.body["value"].as_array().unwrap().iter().cloned());
        if let Some(link) = answer.body["@odata.deltaLink"].as_str() {
            return (items, link.to_string());
        }
        url = answer.body["@odata.nextLink"].as_str().unwrap().to_string();
    }
}

#[tokio::test]
async fn message_delta_links_are_opaque_and_report_moves_deletes_and_expiry() {
    let h = harness().await;
    let token = h.token().await;
    let user = h.mailbox_user();
    let (inbox_id, total) = {
        let tenant = h.state().tenant();
        let mailbox = &tenant.mailboxes[&user];
        let inbox = mailbox.well_known_id("inbox");
        (inbox.clone(), mailbox.counts(&inbox).0)
    };
    let first = format!("/v1.0/users/{user}/mailFolders/inbox/messages/delta?$select=subject");
    let (items, link) = walk(&h, &token, &first, 2).await;
    assert_eq!(items.len(), total);
    let token_part = link.split("$deltatoken=").nth(1).unwrap();
    for clear in [user.as_str(), inbox_id.as_str(), "subject"] {
        assert!(!token_part.contains(clear));
    }
    // A changed token is refused, and so is one from another folder.
    let tampered = format!("{}x{}", &link[..link.len() - 4], &link[link.len() - 3..]);
    assert_eq!(
        h.get(&tampered, &token, &[]).await.status,
        StatusCode::BAD_REQUEST
    );
    let elsewhere = link.replace(
        &inbox_id,
        &h.state().tenant().mailboxes[&user].well_known_id("archive"),
    );
    assert_eq!(
        h.get(&elsewhere, &token, &[]).await.status,
        StatusCode::BAD_REQUEST
    );

    // The Graph SDKs call the function form `delta()`.
    let sdk_form = format!("/v1.0/users/{user}/mailFolders/inbox/messages/delta()");
    assert_eq!(h.get(&sdk_form, &token, &[]).await.status, StatusCode::OK);

    // Nothing changed: an empty round.
    let (again, link) = walk(&h, &token, &link, 2).await;
    assert!(again.is_empty());

    let moved = items[0]["id"].as_str().unwrap().to_string();
    let deleted = items[1]["id"].as_str().unwrap().to_string();
    h.control(
        "POST",
        &format!("/users/{user}/messages/{moved}/move"),
        json!({"folder": "deleteditems"}),
    )
    .await;
    h.control(
        "DELETE",
        &format!("/users/{user}/messages/{deleted}"),
        json!({}),
    )
    .await;
    let (changes, link) = walk(&h, &token, &link, 1).await;
    let removed: Vec<&str> = changes
        .iter()
        .filter(|c| c["@removed"]["reason"] == "deleted")
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(removed, [moved.as_str(), deleted.as_str()]);

    h.control("POST", &format!("/users/{user}/delta/expire"), json!({}))
        .await;
    let answer = h.get(&link, &token, &[]).await;
    assert_eq!(answer.status, StatusCode::GONE);
    assert_eq!(answer.body["error"]["code"], "SyncStateNotFound");
    let restart = answer.headers["location"].to_str().unwrap().to_string();
    assert!(restart.ends_with("/messages/delta"), "{restart}");
    let (again, _) = walk(&h, &token, &restart, 50).await;
    assert_eq!(
        again.len(),
        total - 2,
        "a fresh first round lists the folder again"
    );
}

#[tokio::test]
async fn immutable_ids_survive_a_move_and_rest_ids_do_not() {
    let h = harness().await;
    let token = h.token().await;
    let user = h.mailbox_user();
    let immutable = [("prefer", "IdType=\"ImmutableId\"")];
    let list = h
        .get(
            &format!("/v1.0/users/{user}/mailFolders/inbox/messages?$top=1"),
            &token,
            &immutable,
        )
        .await;
    assert_eq!(list.headers["preference-applied"], "IdType=\"ImmutableId\"");
    let id = list.body["value"][0]["id"].as_str().unwrap().to_string();
    let rest = h
        .get(
            &format!("/v1.0/users/{user}/messages/{id}?$select=id"),
            &token,
            &[],
        )
        .await;
    let rest_id = rest.body["id"].as_str().unwrap().to_string();
    assert_ne!(rest_id, id);
    h.control(
        "POST",
        &format!("/users/{user}/messages/{id}/move"),
        json!({"folder": "archive"}),
    )
    .await;
    assert_eq!(
        h.get(
            &format!("/v1.0/users/{user}/messages/{id}"),
            &token,
            &immutable
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        h.get(
            &format!("/v1.0/users/{user}/messages/{rest_id}"),
            &token,
            &[]
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn live_delivery_reaches_inboxes_and_the_sender_s_sent_items() {
    let h = harness().await;
    let token = h.token().await;
    let (sender, recipient) = {
        let tenant = h.state().tenant();
        let mut with_mail = tenant
            .users
            .iter()
            .filter(|u| u.mail.is_some() && tenant.mailboxes[&u.id].enabled);
        let a = with_mail.next().unwrap();
        let b = with_mail.next().unwrap();
        (
            (a.id.clone(), a.mail.clone().unwrap()),
            (
                b.id.clone(),
                b.aliases()
                    .first()
                    .cloned()
                    .unwrap_or(b.mail.clone().unwrap()),
            ),
        )
    };
    let answer = h
        .control("POST", "/messages/deliver", json!({"from": {"name": "Sender", "address": sender.1},
            "to": [recipient.1], "bcc": ["hidden@outside.example"], "subject": "Quarterly", "body": "numbers"}))
        .await;
    let delivered = answer.body["delivered"].as_array().unwrap();
    assert_eq!(delivered.len(), 2);
    let sent = delivered
        .iter()
        .find(|d| d["folder"] == "sentitems")
        .unwrap();
    let message = h
        .get(
            &format!(
                "/v1.0/users/{}/messages/{}?$select=bccRecipients,from,subject",
                sender.0,
                sent["rest_id"].as_str().unwrap()
            ),
            &token,
            &[],
        )
        .await;
    assert_eq!(message.body["subject"], "Quarterly");
    assert_eq!(
        message.body["bccRecipients"][0]["emailAddress"]["address"],
        "hidden@outside.example"
    );
    assert_eq!(message.body["from"]["emailAddress"]["name"], "Sender");
    assert!(
        delivered
            .iter()
            .any(|d| d["folder"] == "inbox" && d["user_id"] == recipient.0.as_str())
    );
}

#[tokio::test]
async fn batch_runs_dependencies_and_refuses_more_than_twenty() {
    let h = harness().await;
    let token = h.token().await;
    let user = h.mailbox_user();
    let batch = |body: Value| {
        Request::post("/v1.0/$batch")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let answer = h
        .send(batch(json!({"requests": [
            {"id": "a", "method": "GET", "url": format!("/users/{user}/mailFolders/inbox")},
            {"id": "b", "method": "GET", "url": "/users/ghost@nowhere.example"},
            {"id": "c", "method": "GET", "url": "/users", "dependsOn": ["b"]},
        ]})))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let mut statuses: Vec<(String, u64)> = answer.body["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect();
    statuses.sort();
    assert_eq!(
        statuses,
        [("a".into(), 200), ("b".into(), 404), ("c".into(), 424)]
    );
    let many: Vec<Value> = (0..21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users"}))
        .collect();
    assert_eq!(
        h.send(batch(json!({"requests": many}))).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn throttling_is_per_app_and_mailbox_with_retry_after() {
    let h = harness_with(MicrosoftConfig {
        organization: TenantSource::Generate(small_org()),
        throttling: WindowConfig {
            requests_per_window: 2,
            window_seconds: 600.0,
            ..WindowConfig::default()
        },
        ..MicrosoftConfig::default()
    })
    .await;
    let token = h.token().await;
    let (first, second) = {
        let tenant = h.state().tenant();
        let mut ids = tenant
            .users
            .iter()
            .filter(|u| tenant.mailboxes[&u.id].enabled)
            .map(|u| u.id.clone());
        (ids.next().unwrap(), ids.next().unwrap())
    };
    let path = |u: &str| format!("/v1.0/users/{u}/mailFolders/inbox");
    for _ in 0..2 {
        assert_eq!(
            h.get(&path(&first), &token, &[]).await.status,
            StatusCode::OK
        );
    }
    let refused = h.get(&path(&first), &token, &[]).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.body["error"]["code"], "ApplicationThrottled");
    // One request comes back every 300 s.
    assert_eq!(refused.headers["retry-after"], "300");
    assert_eq!(
        h.get(&path(&second), &token, &[]).await.status,
        StatusCode::OK,
        "other mailboxes are unaffected"
    );
    let counters = h.state().counters.snapshot();
    assert_eq!(counters.mailboxes[&first].throttled["window"], 1);
}

#[tokio::test]
async fn the_folder_ground_truth_matches_the_served_mailboxes_and_google_s_truth() {
    use tributary_emulator::microsoft::tenant::Tenant;
    use tributary_emulator::microsoft::truth::folder_truth;
    let generated = tributary_emulator::org::generate(&small_org());
    let google = &generated.truth;
    let microsoft = folder_truth(google);
    assert_eq!(microsoft.activities, google.activities);
    assert_eq!(microsoft.contacts, google.contacts);
    assert_eq!(microsoft.relationships, google.relationships);
    assert_eq!(microsoft.policy.labels, ["inbox", "sentitems"]);

    let tenant = Tenant::from_organization(&generated.org, 1);
    let window_start = generated.org.now_ms - microsoft.policy.backfill_days * 86_400_000;
    for (member, folders) in &microsoft.mailbox_counts {
        let user = tenant.user(member).expect("every member is a tenant user");
        let mailbox = &tenant.mailboxes[&user.id];
        for (folder, counts) in folders {
            let items = mailbox.items_in(&mailbox.well_known_id(folder));
            let in_window = items
                .iter()
                .filter(|i| i.received_ms >= window_start)
                .count();
            assert_eq!(
                (items.len(), in_window),
                (counts.total, counts.in_window),
                "{member} {folder}"
            );
        }
    }
}

#[tokio::test]
async fn slow_answers_hold_the_mailbox_s_four_concurrent_slots() {
    let h = harness().await;
    let token = h.token().await;
    let user = h.mailbox_user();
    h.control("PUT", "/faults", json!({"latency_ms": 1000}))
        .await;
    let path = format!("/v1.0/users/{user}/mailFolders/inbox");
    let (a, b, c, d, e) = tokio::join!(
        h.get(&path, &token, &[]),
        h.get(&path, &token, &[]),
        h.get(&path, &token, &[]),
        h.get(&path, &token, &[]),
        h.get(&path, &token, &[]),
    );
    let mut statuses: Vec<u16> = [a, b, c, d, e].iter().map(|x| x.status.as_u16()).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 200, 200, 200, 429]);
    let counters = h.state().counters.snapshot();
    assert_eq!(counters.mailboxes[&user].throttled["concurrency"], 1);
}

#[tokio::test]
async fn injected_faults_answer_as_microsoft_s_servers_do() {
    let h = harness().await;
    let token = h.token().await;
    h.control(
        "PUT",
        "/faults",
        json!({"server_error_probability": 1.0, "token_error_probability": 1.0}),
    )
    .await;
    let answer = h.get("/v1.0/users", &token, &[]).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.body["error"]["code"], "ServiceNotAvailable");
    assert_eq!(answer.headers["retry-after"], "1");
    let form = h.secret_form();
    assert_eq!(
        h.token_error(&h.tenant_id(), &pairs(&form)).await,
        (503, "temporarily_unavailable".into(), 90_033)
    );
    let counters = h.control("GET", "/counters", json!(null)).await;
    assert_eq!(counters.body["faults"]["server_errors"], 1);
    assert_eq!(counters.body["faults"]["token_errors"], 1);
}

#[tokio::test]
async fn delta_filters_on_received_time_and_change_type_for_every_round() {
    let h = harness().await;
    let token = h.token().await;
    let user = h.mailbox_user();
    let (total, recent, cutoff) = {
        let tenant = h.state().tenant();
        let mailbox = &tenant.mailboxes[&user];
        let items = mailbox.items_in(&mailbox.well_known_id("inbox"));
        let mut times: Vec<i64> = items.iter().map(|i| i.received_ms).collect();
        times.sort();
        let cutoff = times[times.len() / 2];
        let recent = times.iter().filter(|t| **t >= cutoff).count();
        (items.len(), recent, cutoff)
    };
    let instant = chrono::DateTime::from_timestamp_millis(cutoff)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let first = format!(
        "/v1.0/users/{user}/mailFolders/inbox/messages/delta?$filter=receivedDateTime%20ge%20{instant}"
    );
    let (items, link) = walk(&h, &token, &first, 3).await;
    assert_eq!(items.len(), recent);
    assert!(recent < total, "the filter leaves older mail out");

    let bad =
        format!("/v1.0/users/{user}/mailFolders/inbox/messages/delta?$filter=subject%20eq%20'x'");
    assert_eq!(
        h.get(&bad, &token, &[]).await.status,
        StatusCode::BAD_REQUEST
    );

    // changeType=deleted: the first round lists nothing, later rounds only removals.
    let deleted_only =
        format!("/v1.0/users/{user}/mailFolders/inbox/messages/delta?changeType=deleted");
    let (none, deleted_link) = walk(&h, &token, &deleted_only, 50).await;
    assert!(none.is_empty());
    let gone = items[0]["id"].as_str().unwrap().to_string();
    let address = h
        .state()
        .tenant()
        .user(&user)
        .unwrap()
        .mail
        .clone()
        .unwrap();
    h.control(
        "DELETE",
        &format!("/users/{user}/messages/{gone}"),
        json!({}),
    )
    .await;
    h.control(
        "POST",
        "/messages/deliver",
        json!({"from": "x@outside.example", "to": [address], "subject": "new"}),
    )
    .await;
    let (changes, _) = walk(&h, &token, &deleted_link, 50).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["@removed"]["reason"], "deleted");
    let (changes, _) = walk(&h, &token, &link, 50).await;
    assert_eq!(
        changes.len(),
        2,
        "the filtered link sees the removal and the new mail: {changes:?}"
    );
}

#[tokio::test]
async fn a_scenario_file_sets_throttling_faults_and_disabled_mailboxes() {
    use tributary_emulator::microsoft::control::Scenario;
    use tributary_emulator::microsoft::tenant::Tenant;
    let generated = tributary_emulator::org::generate(&small_org());
    let (disabled, open) = {
        let tenant = Tenant::from_organization(&generated.org, 1);
        let mut users = tenant
            .users
            .iter()
            .filter(|u| tenant.mailboxes[&u.id].enabled)
            .map(|u| (u.user_principal_name.clone(), u.id.clone()));
        (users.next().unwrap(), users.next().unwrap())
    };
    let path = std::env::temp_dir().join(format!("ms-scenario-{}.json", std::process::id()));
    let file = json!({
        "throttling": {"requests_per_window": 2, "window_seconds": 600},
        "time_scale": 2,
        "faults": {"latency_ms": 1, "seed": 5},
        "mail_disabled": [disabled.0],
    });
    std::fs::write(&path, file.to_string()).unwrap();
    let scenario = Scenario::from_path(&path);
    std::fs::remove_file(&path).unwrap();
    let h = harness_with(MicrosoftConfig {
        organization: TenantSource::Generated(Box::new(generated.clone())),
        scenario: Some(scenario.expect("a valid scenario")),
        ..MicrosoftConfig::default()
    })
    .await;

    let throttling = h.control("GET", "/throttling", json!(null)).await.body;
    assert_eq!(
        (
            &throttling["requests_per_window"],
            &throttling["time_scale"],
            &throttling["concurrency"]
        ),
        (&json!(2), &json!(2.0), &json!(4))
    );
    assert_eq!(
        h.control("GET", "/faults", json!(null)).await.body["latency_ms"],
        1
    );
    let token = h.token().await;
    let inbox = |u: &str| format!("/v1.0/users/{u}/mailFolders/inbox");
    let answer = h.get(&inbox(&disabled.1), &token, &[]).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.body["error"]["code"], "MailboxNotEnabledForRESTAPI");
    for _ in 0..2 {
        assert_eq!(
            h.get(&inbox(&open.1), &token, &[]).await.status,
            StatusCode::OK
        );
    }
    let refused = h.get(&inbox(&open.1), &token, &[]).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    // 2 requests per 600 s, twice as fast: one comes back every 150 s.
    assert_eq!(refused.headers["retry-after"], "150");

    // A scenario naming nobody's mailbox stops the start.
    let error = start(MicrosoftConfig {
        organization: TenantSource::Generated(Box::new(generated)),
        scenario: Some(
            serde_json::from_value(json!({"mail_disabled": ["nobody@nowhere.example"]})).unwrap(),
        ),
        ..MicrosoftConfig::default()
    })
    .await
    .err()
    .expect("an unknown mailbox is refused");
    assert!(
        error.to_string().contains("nobody@nowhere.example"),
        "{error}"
    );
}

#[tokio::test]
async fn live_settings_can_be_patched_and_bad_bodies_answer_in_the_control_form() {
    let h = harness().await;
    let patched = h
        .control("PATCH", "/throttling", json!({"requests_per_window": 7}))
        .await
        .body;
    assert_eq!(
        (&patched["requests_per_window"], &patched["concurrency"]),
        (&json!(7), &json!(4))
    );
    let patched = h
        .control("PATCH", "/faults", json!({"latency_ms": 3}))
        .await
        .body;
    assert_eq!(
        (&patched["latency_ms"], &patched["server_error_probability"]),
        (&json!(3), &json!(0.0))
    );

    for (method, path, body) in [
        ("PUT", "/faults", r#"{"bogus": 1}"#),
        ("PATCH", "/throttling", r#"{"time_scale": 0}"#),
        ("POST", "/users/x/account", "{not json"),
    ] {
        let request = Request::builder()
            .method(method)
            .uri(format!("/control{path}"))
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let answer = h.send(request).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{method} {path}");
        assert!(
            answer.body["error"].is_string(),
            "{method} {path}: {}",
            answer.body
        );
    }
}
