//! Sign-in hardening (issue #11): cookie names and flags follow the public URL, failed
//! sign-ins and API tokens are throttled per account and per client address, and weak
//! passwords are refused with what to do instead.

mod console_support;

use console_support::{Browser, PASSWORD};
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tributary_server::auth::{PasswordError, create_user};
use tributary_server::{AppState, FailureLimit, ServerConfig, SignInLimits};
use tributary_store::testing::TestDatabase;
use tributary_store::{MasterKey, MemberRole, Store, TenantId, UserId};
use tributary_sync::{Runtime, RuntimeConfig};

const ADA: &str = "ada@acme.test";
const BOB: &str = "bob@acme.test";

/// The default bursts (5 failures per account, 20 per address), but forgiven only one a
/// minute, so a blocked key stays blocked however slowly a test runs.
fn slow_limits() -> SignInLimits {
    let default = SignInLimits::default();
    let one = NonZeroU32::new(1).unwrap();
    SignInLimits {
        per_account: FailureLimit::new(one, default.per_account.burst),
        per_address: FailureLimit::new(one, default.per_address.burst),
    }
}

/// A server on loopback (no Google behind it) that believes it is reached at
/// `public_url` (`None`: its own `http://127.0.0.1:PORT`), with accounts [`ADA`]
/// (admin) and [`BOB`] (member) whose password is [`PASSWORD`].
struct Server {
    /// Where the tests reach it (always plain HTTP on loopback).
    url: String,
    store: Store,
    tenant: TenantId,
    /// [`ADA`]'s account.
    ada: UserId,
    _stop: watch::Sender<bool>,
    _database: TestDatabase,
}

impl Server {
    async fn start(public_url: Option<&str>) -> Self {
        Self::start_with(public_url, SignInLimits::default()).await
    }

    async fn start_with(public_url: Option<&str>, sign_in_limits: SignInLimits) -> Self {
        let database = TestDatabase::sqlite().await;
        let store = database.store.clone();
        let tenant = TenantId::new("acme");
        store.create_tenant(&tenant, "Acme").await.unwrap();
        let ada = create_user(&store, &tenant, ADA, MemberRole::Admin, PASSWORD, "test")
            .await
            .unwrap();
        create_user(&store, &tenant, BOB, MemberRole::Member, PASSWORD, "test")
            .await
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let config = ServerConfig {
            public_url: public_url.unwrap_or(&url).to_owned(),
            sign_in_limits,
            ..ServerConfig::default()
        };
        let runtime = Runtime::new(
            store.clone(),
            MasterKey::generate(),
            RuntimeConfig::default(),
        );
        let (stop, mut stopped) = watch::channel(false);
        tokio::spawn(tributary_server::serve(
            listener,
            AppState::new(runtime, config),
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            },
        ));
        Server {
            url,
            store,
            tenant,
            ada,
            _stop: stop,
            _database: database,
        }
    }
}

/// Every `Set-Cookie` of a response, as text.
fn set_cookies(page: &console_support::Page) -> Vec<String> {
    page.headers
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect()
}

/// One sign-in attempt from a fresh form.
async fn attempt(browser: &mut Browser, email: &str, password: &str) -> console_support::Page {
    let form = browser.get("/signin").await;
    let csrf = form.csrf();
    browser
        .post(
            "/signin",
            &[("email", email), ("password", password), ("csrf", &csrf)],
        )
        .await
}

#[tokio::test]
async fn cookie_names_and_flags_follow_the_public_url() {
    // Behind a TLS proxy: Secure, and the __Host- prefix (Path=/, no Domain).
    let server = Server::start(Some("https://tributary.example.com")).await;
    let mut browser = Browser::new(&server.url);
    let form = browser.get("/signin").await;
    let [signin_cookie] = set_cookies(&form).try_into().unwrap();
    assert!(
        signin_cookie.starts_with("__Host-tributary_signin="),
        "{signin_cookie}"
    );
    let signed = attempt(&mut browser, ADA, PASSWORD).await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let cookies = set_cookies(&signed);
    let session = cookies
        .iter()
        .find(|cookie| cookie.starts_with("__Host-tributary_session="))
        .unwrap_or_else(|| panic!("no __Host- session cookie in {cookies:?}"));
    for cookie in cookies.iter().chain([&signin_cookie]) {
        for flag in ["; Path=/", "; HttpOnly", "; SameSite=Lax", "; Secure"] {
            assert!(cookie.contains(flag), "{flag} missing in {cookie}");
        }
        assert!(!cookie.to_lowercase().contains("domain="), "{cookie}");
    }
    // The session is read under its __Host- name only.
    assert_eq!(browser.get("/").await.location.as_deref(), Some("/setup"));
    let token = session
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/users", server.url))
        .header("cookie", format!("tributary_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        plain.headers()["location"],
        "/signin",
        "the plain name is not the session cookie under https"
    );

    // Plain HTTP on loopback: the plain names, without Secure (browsers would drop it).
    let server = Server::start(None).await;
    let mut browser = Browser::new(&server.url);
    let signed = attempt(&mut browser, ADA, PASSWORD).await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let cookies = set_cookies(&signed);
    assert!(
        cookies
            .iter()
            .any(|cookie| cookie.starts_with("tributary_session=")),
        "{cookies:?}"
    );
    for cookie in &cookies {
        assert!(!cookie.contains("Secure"), "{cookie}");
        assert!(cookie.contains("; HttpOnly; SameSite=Lax"), "{cookie}");
    }
}

#[tokio::test]
async fn after_failed_sign_ins_even_the_right_password_is_refused_while_others_sign_in() {
    let server = Server::start_with(None, slow_limits()).await;
    let mut attacker = Browser::new(&server.url);
    for _ in 0..5 {
        let wrong = attempt(&mut attacker, ADA, "not the password at all").await;
        assert_eq!(wrong.status, 401, "{}", wrong.body);
    }
    let refused = attempt(&mut attacker, ADA, PASSWORD).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("Too many sign-in attempts; try again in "),
        "{}",
        refused.body
    );
    let wait: u64 = refused
        .header("retry-after")
        .expect("a Retry-After header")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(
        refused.body.contains(&format!("try again in {wait} s.")),
        "{}",
        refused.body
    );
    // The same account in any case and spacing is the same account.
    let shouted = attempt(&mut attacker, " ADA@ACME.TEST ", PASSWORD).await;
    assert_eq!(shouted.status, 429);

    // Another account, from the same address, is not locked out.
    let mut colleague = Browser::new(&server.url);
    let signed = attempt(&mut colleague, BOB, PASSWORD).await;
    assert_eq!(signed.status, 303, "{}", signed.body);
}

#[tokio::test]
async fn a_parallel_burst_of_guesses_gets_no_more_checks_than_the_budget() {
    let server = Server::start_with(None, slow_limits()).await;
    let http = reqwest::Client::new();
    // The double-submit check compares the cookie with the field: any equal pair passes.
    let guesses = (0..16).map(|guess| {
        http.post(format!("{}/signin", server.url))
            .header("cookie", "tributary_signin=burst")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "email=ada%40acme.test&password=guess+number+{guess}&csrf=burst"
            ))
            .send()
    });
    let statuses: Vec<u16> = futures_statuses(guesses).await;
    let checked = statuses.iter().filter(|status| **status == 401).count();
    let throttled = statuses.iter().filter(|status| **status == 429).count();
    assert_eq!(checked + throttled, 16, "{statuses:?}");
    // The budget (5), plus at most the other hashing permit's attempt in flight.
    let most = 5 + tributary_server::auth::HASHING_PERMITS - 1;
    assert!(checked <= most, "{checked} guesses checked: {statuses:?}");
}

/// The statuses of requests sent side by side.
async fn futures_statuses(
    requests: impl Iterator<
        Item = impl std::future::Future<Output = reqwest::Result<reqwest::Response>> + Send + 'static,
    >,
) -> Vec<u16> {
    let tasks: Vec<_> = requests.map(tokio::spawn).collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap().unwrap().status().as_u16());
    }
    statuses
}

/// `GET /api/v1/links` with `token`, from loopback address `from`.
async fn read_links(server: &Server, from: Ipv4Addr, token: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(from))
        .build()
        .unwrap()
        .get(format!("{}/api/v1/links", server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn api_tokens_are_throttled_per_address_after_failures() {
    let server = Server::start_with(None, slow_limits()).await;
    let token = server
        .store
        .create_api_token(&server.tenant, server.ada, "crm", "test")
        .await
        .unwrap()
        .secret;
    let home = Ipv4Addr::LOCALHOST;
    assert_eq!(read_links(&server, home, &token).await.status(), 200);
    for guess in 0..20 {
        let wrong = read_links(&server, home, &format!("trb_guess{guess}")).await;
        assert_eq!(wrong.status(), 401);
    }
    let refused = read_links(&server, home, &token).await;
    assert_eq!(refused.status(), 429, "the right token is not even checked");
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_attempts", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("try again in {wait} s")),
        "{body}"
    );
    // Another address with the same token is not throttled.
    let elsewhere = read_links(&server, Ipv4Addr::new(127, 0, 0, 2), &token).await;
    assert_eq!(elsewhere.status(), 200);
}

#[tokio::test]
async fn weak_passwords_are_refused_with_what_to_do_and_strong_ones_accepted() {
    let server = Server::start(None).await;
    for weak in ["            ", "aaaaaaaaaaaa", "password1234", "short"] {
        let refused = create_user(
            &server.store,
            &server.tenant,
            "weak@acme.test",
            MemberRole::Member,
            weak,
            "test",
        )
        .await
        .expect_err(weak);
        assert!(
            matches!(
                refused,
                PasswordError::TooWeak { .. } | PasswordError::TooShort
            ),
            "{weak:?}: {refused:?}"
        );
        let message = refused.to_string();
        assert!(message.contains("add more words"), "{weak:?}: {message}");
    }
    assert!(
        server
            .store
            .user_credentials("weak@acme.test")
            .await
            .unwrap()
            .is_none(),
        "no account was created"
    );
    create_user(
        &server.store,
        &server.tenant,
        "strong@acme.test",
        MemberRole::Member,
        "violet tractor umbrella seventeen",
        "test",
    )
    .await
    .expect("a strong password is accepted");
    let mut browser = Browser::new(&server.url);
    let signed = attempt(
        &mut browser,
        "strong@acme.test",
        "violet tractor umbrella seventeen",
    )
    .await;
    assert_eq!(signed.status, 303, "{}", signed.body);
}
