//! Microsoft 365 setup in the console and the API, against the Microsoft emulator over
//! TLS: the app registration (secret or certificate) with each wrong field named and
//! nothing stored, admin consent through Microsoft's redirect (declined, granted, granted
//! in another directory, or an answer this session did not ask for), *Test connection*
//! with Microsoft's own message and a hint, admins only, and the secret nowhere.

mod console_support;

use console_support::{Browser, Console, PASSWORD, Page};
use serde_json::{Value, json};
use std::io::Write;
use std::sync::{Arc, Mutex};
use tributary_emulator::microsoft::app::AppFile;
use tributary_emulator::microsoft::{MicrosoftConfig, RunningMicrosoft, TenantSource};
use tributary_emulator::org::OrgConfig;
use tributary_store::{MemberRole, TenantId};

const ADMIN: &str = "it-admin@console.test";
const MEMBER: &str = "member@console.test";
const OTHER_ADMIN: &str = "admin@other.test";
const OTHER_DIRECTORY: &str = "99999999-8888-7777-6666-555555555555";

/// The Microsoft emulator with admin consent not yet granted, so that the consent step
/// is what makes the connection work.
async fn microsoft() -> RunningMicrosoft {
    tributary_emulator::microsoft::start(MicrosoftConfig {
        organization: TenantSource::Generate(OrgConfig {
            users: 3,
            messages_per_user: 2,
            ..OrgConfig::default()
        }),
        consent: false,
        ..MicrosoftConfig::default()
    })
    .await
    .expect("the Microsoft emulator starts")
}

/// The console on the Microsoft emulator with an admin and a member of tenant `acme`,
/// and an admin of another tenant.
async fn console(emulated: &RunningMicrosoft) -> Console {
    let console = Console::start_microsoft(emulated, None).await;
    console
        .add_user(&console.tenant, ADMIN, MemberRole::Admin)
        .await;
    console
        .add_user(&console.tenant, MEMBER, MemberRole::Member)
        .await;
    let other = TenantId::new("other");
    console
        .store()
        .create_tenant(&other, "Other")
        .await
        .unwrap();
    console
        .add_user(&other, OTHER_ADMIN, MemberRole::Admin)
        .await;
    console
}

async fn signed_in(console: &Console, email: &str) -> Browser {
    let mut browser = Browser::new(&console.url);
    browser.sign_in(email).await;
    browser
}

/// Saves the app registration through the console's form (multipart, like a browser).
async fn save_app(
    browser: &mut Browser,
    tenant_id: &str,
    client_id: &str,
    credential: Credential<'_>,
) -> Page {
    let csrf = browser.get("/setup/microsoft").await.csrf();
    let (kind, secret, file) = match credential {
        Credential::Secret(secret) => ("secret", secret, ("certificate_file", &b""[..])),
        Credential::Certificate(pem) => ("certificate", "", ("certificate_file", pem)),
    };
    browser
        .submit_multipart(
            "/setup/microsoft/app",
            &[
                ("csrf", &csrf),
                ("tenant_id", tenant_id),
                ("client_id", client_id),
                ("credential", kind),
                ("client_secret", secret),
            ],
            file,
        )
        .await
}

/// Saves the emulated app registration's own IDs with `credential`.
async fn save_registered(browser: &mut Browser, app: &AppFile, credential: Credential<'_>) -> Page {
    save_app(browser, &app.tenant_id, &app.client_id, credential).await
}

enum Credential<'a> {
    Secret(&'a str),
    /// Certificate and private key in one PEM file.
    Certificate(&'a [u8]),
}

async fn test_connection(browser: &mut Browser) -> Page {
    let csrf = browser.get("/setup/microsoft").await.csrf();
    browser
        .submit("/setup/microsoft/test", &[("csrf", &csrf)])
        .await
}

/// Asserts that `page` shows `text`, printing the page when it does not.
fn assert_shows(page: &Page, text: &str) {
    assert!(page.body.contains(text), "{}", page.body);
}

/// Opens `path` and the page its 303 answer leads to, as a browser does.
async fn open(browser: &mut Browser, path: &str) -> Page {
    let answer = browser.get(path).await;
    browser.follow(answer).await
}

/// The Grant admin consent link's address, as the browser would follow it.
fn consent_link(page: &Page) -> String {
    let marker = "id=\"grant-consent\" href=\"";
    let start = page
        .body
        .find(marker)
        .unwrap_or_else(|| panic!("no consent link in:\n{}", page.body))
        + marker.len();
    let end = page.body[start..].find('"').unwrap() + start;
    page.body[start..end].replace("&amp;", "&")
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// Opens Microsoft's consent page (the emulator, over TLS) and answers where it sends
/// the admin back.
async fn follow_consent(emulated: &RunningMicrosoft, link: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tls_certs_merge([reqwest::Certificate::from_pem(emulated.ca_pem.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let answer = http.get(link).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 303, "Microsoft redirects back");
    answer
        .headers()
        .get(reqwest::header::LOCATION)
        .expect("a redirect")
        .to_str()
        .unwrap()
        .to_owned()
}

/// The path and query of a URL on the console.
fn on_console(console: &Console, url: &str) -> String {
    url.strip_prefix(&console.url)
        .unwrap_or_else(|| panic!("{url} is not on the console {}", console.url))
        .to_owned()
}

fn certificate_pem(emulated: &RunningMicrosoft) -> Vec<u8> {
    format!(
        "{}\n{}",
        emulated.certificate.certificate_pem, emulated.certificate.private_key_pem
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_then_admin_consent_connects_and_the_test_passes() {
    let emulated = microsoft().await;
    let console = console(&emulated).await;
    let mut admin = signed_in(&console, ADMIN).await;
    let app = &emulated.app;

    let start = admin.get("/setup").await;
    assert!(
        start.body.contains("href=\"/setup/microsoft\""),
        "the provider choice"
    );
    let page = admin.get("/setup/microsoft").await;
    for permission in ["User.Read.All", "Mail.ReadBasic.All"] {
        assert!(page.body.contains(permission), "{permission} is listed");
    }
    assert!(
        !page.body.contains("id=\"grant-consent\""),
        "no consent before an app"
    );

    let saved = save_registered(&mut admin, app, Credential::Secret(&app.client_secret)).await;
    assert_shows(&saved, "App registration saved");
    let ending: String = app
        .client_secret
        .chars()
        .skip(app.client_secret.chars().count() - 3)
        .collect();
    assert!(
        saved.body.contains(&format!("…{ending}")),
        "the secret's ending is shown"
    );
    assert!(!saved.body.contains(&app.client_secret));
    let setup_page = admin.get("/setup").await;
    assert!(
        setup_page.body.contains("Microsoft 365 setup"),
        "a Microsoft tenant's setup is Microsoft's"
    );

    // Before consent Microsoft has no service principal for the app.
    let before = test_connection(&mut admin).await;
    assert_shows(&before, "AADSTS7000229");
    assert!(before.body.contains("Microsoft said:"));
    assert!(before.body.contains("What to do:"));

    let link = consent_link(&admin.get("/setup/microsoft").await);
    let expected_prefix = format!("{}/{}/v2.0/adminconsent?", emulated.base_url, app.tenant_id);
    assert!(link.starts_with(&expected_prefix), "{link}");
    assert_eq!(
        query_param(&link, "client_id").as_deref(),
        Some(app.client_id.as_str())
    );
    assert_eq!(
        query_param(&link, "redirect_uri"),
        Some(format!("{}/setup/microsoft/consent", console.url))
    );
    let back = follow_consent(&emulated, &link).await;
    assert_eq!(query_param(&back, "admin_consent").as_deref(), Some("True"));
    let returned = admin.get(&on_console(&console, &back)).await;
    assert_eq!(returned.status, 303);
    let after = admin.follow(returned).await;
    assert_shows(&after, "Admin consent granted");
    assert!(
        after.body.contains("Consent granted"),
        "the consent is recorded"
    );
    assert!(
        after.body.contains("Connected"),
        "tested at once: {}",
        after.body
    );

    let again = test_connection(&mut admin).await;
    assert_shows(&again, "Connected");
    let setup = console
        .runtime
        .microsoft_setup(&console.tenant)
        .await
        .unwrap()
        .unwrap();
    let consent = setup.consent.expect("consent recorded");
    assert!(consent.granted);
    assert_eq!(consent.directory.as_deref(), Some(app.tenant_id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_fails_the_test_with_microsofts_message_and_a_hint() {
    let emulated = microsoft().await;
    emulated
        .state
        .identity_mut()
        .consent(&emulated.app.client_id);
    let console = console(&emulated).await;
    let mut admin = signed_in(&console, ADMIN).await;
    let app = &emulated.app;
    save_registered(&mut admin, app, Credential::Secret("wrong~secret-value")).await;
    let tested = test_connection(&mut admin).await;
    assert_shows(&tested, "Microsoft said:");
    assert!(
        tested.body.contains("AADSTS7000215"),
        "Microsoft's code: {}",
        tested.body
    );
    let hint_at = tested.body.find("What to do:").expect("a hint");
    assert!(
        tested.body[hint_at..].contains("secret"),
        "the hint is about the secret"
    );

    let api = Api::admin(&console, ADMIN).await;
    let check = api.post_empty("/microsoft/connection/test").await;
    assert_eq!(check.0, 200);
    assert_eq!(check.1["ok"], false);
    assert_eq!(check.1["status"], "authentication_error");
    assert!(
        check.1["message"]
            .as_str()
            .unwrap()
            .contains("AADSTS7000215")
    );
    assert!(
        check.1["hint"]
            .as_str()
            .is_some_and(|hint| !hint.is_empty())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_guid_or_pem_is_refused_with_the_field_named_and_nothing_stored() {
    let emulated = microsoft().await;
    let console = console(&emulated).await;
    let mut admin = signed_in(&console, ADMIN).await;
    let app = &emulated.app;

    let page = save_app(
        &mut admin,
        &app.tenant_id,
        "not-a-guid",
        Credential::Secret(&app.client_secret),
    )
    .await;
    assert_shows(&page, "Application (client) ID is not usable");
    assert!(page.body.contains("GUID"));
    assert!(page.body.contains("Nothing was stored"));
    assert!(
        page.body.contains("value=\"not-a-guid\""),
        "what was typed is kept"
    );
    assert!(page.body.contains(&format!("value=\"{}\"", app.tenant_id)));
    assert!(
        !page.body.contains(&app.client_secret),
        "but never the secret"
    );
    let page = save_app(
        &mut admin,
        "contoso.com/../x",
        &app.client_id,
        Credential::Secret(&app.client_secret),
    )
    .await;
    assert_shows(&page, "Directory (tenant) ID is not usable");
    let page = save_registered(
        &mut admin,
        app,
        Credential::Certificate(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"),
    )
    .await;
    assert_shows(&page, "Certificate is not usable");
    assert!(page.body.contains("PEM"));
    let only_certificate = emulated.certificate.certificate_pem.as_bytes();
    let page = save_registered(&mut admin, app, Credential::Certificate(only_certificate)).await;
    assert!(
        page.body.contains("private key"),
        "the missing key is named: {}",
        page.body
    );
    assert!(
        console
            .runtime
            .microsoft_setup(&console.tenant)
            .await
            .unwrap()
            .is_none()
    );

    let api = Api::admin(&console, ADMIN).await;
    let cases = [
        (
            json!({ "tenant_id": app.tenant_id, "client_id": "1234", "client_secret": "x" }),
            "invalid_client_id",
            "client_id",
        ),
        (
            json!({ "tenant_id": "", "client_id": app.client_id, "client_secret": "x" }),
            "invalid_tenant_id",
            "tenant_id",
        ),
        (
            json!({ "tenant_id": app.tenant_id, "client_id": app.client_id, "certificate_pem": "garbage" }),
            "invalid_certificate",
            "certificate",
        ),
        (
            json!({ "tenant_id": app.tenant_id, "client_id": app.client_id }),
            "invalid_credential",
            "client_secret",
        ),
        (
            json!({ "tenant_id": app.tenant_id, "client_id": app.client_id, "client_secret": "  " }),
            "invalid_client_secret",
            "client_secret",
        ),
    ];
    for (body, code, field) in cases {
        let (status, answer) = api.post("/microsoft/connection", &body).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    assert_eq!(api.get("/microsoft/connection").await.0, 404);

    // The certificate (and key, in one PEM) is accepted and works once consented.
    emulated.state.identity_mut().consent(&app.client_id);
    let pem = String::from_utf8(certificate_pem(&emulated)).unwrap();
    let (status, setup) = api
        .post("/microsoft/connection", &json!({ "tenant_id": app.tenant_id, "client_id": app.client_id, "certificate_pem": pem }))
        .await;
    assert_eq!(status, 200, "{setup}");
    assert_eq!(setup["credential"]["kind"], "certificate");
    assert_eq!(
        setup["credential"]["thumbprint_sha1"],
        emulated.certificate.thumbprint_sha1
    );
    let (_, check) = api.post_empty("/microsoft/connection/test").await;
    assert_eq!(check["ok"], true, "{check}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_and_other_tenants_cannot_set_up_or_answer_consent() {
    let emulated = microsoft().await;
    let console = console(&emulated).await;
    let mut admin = signed_in(&console, ADMIN).await;
    let app = &emulated.app;
    save_registered(&mut admin, app, Credential::Secret(&app.client_secret)).await;
    let link = consent_link(&admin.get("/setup/microsoft").await);
    let state = query_param(&link, "state").unwrap();

    let mut member = signed_in(&console, MEMBER).await;
    assert_eq!(member.get("/setup/microsoft").await.status, 403);
    let csrf = member.get("/me").await.csrf();
    let posted = member
        .post_multipart(
            "/setup/microsoft/app",
            &[
                ("csrf", &csrf),
                ("tenant_id", &app.tenant_id),
                ("client_id", &app.client_id),
                ("client_secret", "x"),
            ],
            ("certificate_file", &b""[..]),
        )
        .await;
    assert_eq!(posted.status, 403);
    assert_eq!(
        member
            .post("/setup/microsoft/test", &[("csrf", &csrf)])
            .await
            .status,
        403
    );
    let granted = format!(
        "/setup/microsoft/consent?admin_consent=True&tenant={}&state={state}",
        app.tenant_id
    );
    assert_eq!(member.get(&granted).await.status, 403);
    let member_api = Api::token(
        &console,
        &console.tenant,
        "member-api@console.test",
        MemberRole::Member,
    )
    .await;
    assert_eq!(member_api.get("/microsoft/connection").await.0, 403);
    assert_eq!(member_api.post("/microsoft/connection", &json!({ "tenant_id": app.tenant_id, "client_id": app.client_id, "client_secret": "x" })).await.0, 403);

    // Another tenant's admin replaying acme's consent answer: not this session's.
    let mut other = signed_in(&console, OTHER_ADMIN).await;
    let replayed = open(&mut other, &granted).await;
    assert_shows(&replayed, "did not start from your setup page");
    let other_api = Api::token(
        &console,
        &TenantId::new("other"),
        "other-api@other.test",
        MemberRole::Admin,
    )
    .await;
    assert_eq!(
        other_api.get("/microsoft/connection").await.0,
        404,
        "acme's app is not the other tenant's"
    );

    // Consent granted in another directory than the connected one is refused.
    let elsewhere = format!(
        "/setup/microsoft/consent?admin_consent=True&tenant={OTHER_DIRECTORY}&state={state}"
    );
    let refused = open(&mut admin, &elsewhere).await;
    assert_shows(&refused, OTHER_DIRECTORY);
    assert!(refused.body.contains("Consent was not recorded"));
    let api = Api::admin(&console, ADMIN).await;
    let (status, answer) = api
        .post(
            "/microsoft/consent",
            &json!({ "admin_consent": "True", "tenant": OTHER_DIRECTORY }),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], "consent_other_directory");
    assert!(
        console
            .runtime
            .microsoft_setup(&console.tenant)
            .await
            .unwrap()
            .unwrap()
            .consent
            .is_none()
    );

    // A declined consent is shown with Microsoft's description, escaped.
    let declined = format!(
        "/setup/microsoft/consent?admin_consent=True&error=consent_required&error_description={}&state={state}",
        form_urlencoded::byte_serialize(b"AADSTS65004: <b>declined</b>").collect::<String>()
    );
    let page = open(&mut admin, &declined).await;
    assert!(
        page.body
            .contains("AADSTS65004: &lt;b&gt;declined&lt;/b&gt;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<b>declined</b>"));
    let consent = console
        .runtime
        .microsoft_setup(&console.tenant)
        .await
        .unwrap()
        .unwrap()
        .consent
        .unwrap();
    assert!(!consent.granted);
    assert_eq!(consent.error.as_deref(), Some("consent_required"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_walks_the_same_flow() {
    let emulated = microsoft().await;
    let console = console(&emulated).await;
    let app = &emulated.app;
    let api = Api::admin(&console, ADMIN).await;
    let (status, setup) = api
        .post("/microsoft/connection", &json!({ "tenant_id": app.tenant_id, "client_id": app.client_id, "client_secret": app.client_secret }))
        .await;
    assert_eq!(status, 200, "{setup}");
    assert_eq!(setup["credential"]["kind"], "secret");
    let names: Vec<&str> = setup["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "User.Read.All",
            "Mail.ReadBasic.All",
            "Calendars.Read",
            "RoleManagement.Read.Directory"
        ]
    );

    let (status, bad) = api
        .post(
            "/microsoft/consent-link",
            &json!({ "redirect_uri": "javascript:alert(1)", "state": "s" }),
        )
        .await;
    assert_eq!(
        (status, bad["error"]["field"].as_str()),
        (422, Some("redirect_uri"))
    );
    let redirect = "https://crm.example/microsoft/consented";
    let (status, link) = api
        .post(
            "/microsoft/consent-link",
            &json!({ "redirect_uri": redirect, "state": "crm-42" }),
        )
        .await;
    assert_eq!(status, 200, "{link}");
    let url = link["consent_url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!(
            "{}/{}/v2.0/adminconsent?",
            emulated.base_url, app.tenant_id
        )),
        "{url}"
    );
    let back = follow_consent(&emulated, url).await;
    assert!(back.starts_with(redirect), "{back}");
    assert_eq!(query_param(&back, "state").as_deref(), Some("crm-42"));
    let (status, recorded) = api
        .post(
            "/microsoft/consent",
            &json!({ "admin_consent": query_param(&back, "admin_consent"), "tenant": query_param(&back, "tenant") }),
        )
        .await;
    assert_eq!(status, 200, "{recorded}");
    assert_eq!(recorded["consent"]["granted"], true);
    assert_eq!(recorded["check"]["ok"], true, "{recorded}");
    let (_, setup) = api.get("/microsoft/connection").await;
    assert_eq!(setup["consent"]["directory"], app.tenant_id.as_str());
    let (status, _) = api
        .post("/microsoft/consent", &json!({ "admin_consent": "False" }))
        .await;
    assert_eq!(status, 422);
}

/// A `MakeWriter` into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// One thread, so that the log subscriber set for it sees the server and the worker.
#[tokio::test(flavor = "current_thread")]
async fn the_secret_is_never_in_a_page_an_answer_the_audit_or_the_log() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let emulated = microsoft().await;
    let console = console(&emulated).await;
    let app = &emulated.app;
    let secret = app.client_secret.clone();
    let mut admin = signed_in(&console, ADMIN).await;
    let mut bodies = Vec::new();
    bodies.push(
        save_registered(&mut admin, app, Credential::Secret(&secret))
            .await
            .body,
    );
    bodies.push(test_connection(&mut admin).await.body);
    let link = consent_link(&admin.get("/setup/microsoft").await);
    let back = follow_consent(&emulated, &link).await;
    bodies.push(open(&mut admin, &on_console(&console, &back)).await.body);
    bodies.push(test_connection(&mut admin).await.body);
    // A wrong secret's refusal does not echo it either.
    let wrong = format!("{secret}-WRONG");
    bodies.push(
        save_registered(&mut admin, app, Credential::Secret(&wrong))
            .await
            .body,
    );
    bodies.push(test_connection(&mut admin).await.body);
    bodies.push(admin.get("/audit").await.body);

    let api = Api::admin(&console, ADMIN).await;
    bodies.push(api.post("/microsoft/connection", &json!({ "tenant_id": app.tenant_id, "client_id": app.client_id, "client_secret": secret })).await.1.to_string());
    bodies.push(api.get("/microsoft/connection").await.1.to_string());
    bodies.push(
        api.post_empty("/microsoft/connection/test")
            .await
            .1
            .to_string(),
    );
    bodies.push(api.get("/audit").await.1.to_string());
    let audit = console
        .store()
        .audit_events(&console.tenant, 1_000)
        .await
        .unwrap();
    bodies
        .push(serde_json::to_string(&audit.iter().map(|e| &e.detail).collect::<Vec<_>>()).unwrap());

    assert!(
        bodies[1].contains("AADSTS7000229") || bodies[1].contains("Connected"),
        "the flow ran"
    );
    assert!(
        bodies[5].contains("AADSTS7000215"),
        "the wrong secret was tested: {}",
        bodies[5]
    );
    for body in &bodies {
        assert!(!body.contains(&secret), "the secret leaked: {body}");
        assert!(!body.contains(&wrong));
    }
    let log = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(!log.is_empty(), "the log was captured");
    assert!(!log.contains(&secret), "the secret is in the log");
}

/// A JSON client of `/api/v1` with one account's token.
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn admin(console: &Console, email: &str) -> Api {
        let api_email = format!("api-{email}");
        Api::token(console, &console.tenant, &api_email, MemberRole::Admin).await
    }

    async fn token(console: &Console, tenant: &TenantId, email: &str, role: MemberRole) -> Api {
        let store = console.store();
        let user =
            tributary_server::auth::create_user(store, tenant, email, role, PASSWORD, "test")
                .await
                .unwrap();
        let created = store
            .create_api_token(tenant, user, "tests", "test")
            .await
            .unwrap();
        Api {
            http: reqwest::Client::new(),
            base: format!("{}/api/v1", console.url),
            token: created.secret,
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let answer = request.bearer_auth(&self.token).send().await.unwrap();
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    async fn post_empty(&self, path: &str) -> (u16, Value) {
        self.send(self.http.post(format!("{}{path}", self.base)))
            .await
    }
}
