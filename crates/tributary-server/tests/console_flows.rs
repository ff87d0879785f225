//! The console as people meet it: a form's answer redirects (Post/Redirect/Get) so a
//! reload repeats nothing; unknown addresses and methods get a page with a way back;
//! the audit log shows people's actions by default, filters and pages (console and
//! API); a fresh installation's sign-in page says how to create the first admin; a new
//! admin lands on the setup.

mod console_support;

use console_support::{BACKENDS, Backend, Browser, Console, emulator};
use std::time::Duration;
use tributary_store::{
    AuditActors, AuditEvent, AuditFilter, LinkStatus, MemberRole, SYSTEM_ACTOR, Store, TenantId,
};

const ADMIN: &str = "ops@console.test";

macro_rules! on_every_backend {
    ($($test:ident => $case:ident;)*) => {$(
        #[tokio::test]
        async fn $test() {
            for backend in BACKENDS {
                $case(backend).await;
            }
        }
    )*};
}

on_every_backend! {
    a_posted_form_redirects_and_a_reload_repeats_nothing => redirect_case;
    the_audit_log_shows_people_filters_and_pages => audit_case;
    a_fresh_installation_says_how_to_create_the_first_admin => first_run_case;
}

type Emulated = tributary_emulator::server::RunningEmulator;

async fn admin_console(backend: Backend) -> Option<(Emulated, Console)> {
    let emulated = emulator(4, 12).await;
    let console = Console::start_with(backend, &emulated, None).await?;
    console
        .add_user(&console.tenant, ADMIN, MemberRole::Admin)
        .await;
    Some((emulated, console))
}

/// Uploads the emulator's key, rebuilds and turns capture on; waits until every link
/// is idle. Answers the session's CSRF token.
async fn connect_and_sync(browser: &mut Browser, emulated: &Emulated, console: &Console) -> String {
    let csrf = browser.get("/setup").await.csrf();
    let key = serde_json::to_vec(&emulated.key_file).unwrap();
    let admin = emulated.info.admin_email.clone();
    let setup = browser
        .submit_multipart(
            "/setup/key",
            &[("csrf", &csrf), ("admin_email", &admin)],
            ("key_file", &key),
        )
        .await;
    assert!(setup.body.contains("Key uploaded"), "{}", setup.body);
    browser.submit("/users/rebuild", &[("csrf", &csrf)]).await;
    browser
        .submit("/setup/capture", &[("csrf", &csrf), ("enabled", "on")])
        .await;
    for _ in 0..300 {
        let links = console.store().links(&console.tenant).await.unwrap();
        if !links.is_empty() && links.iter().all(|l| l.status == LinkStatus::Idle) {
            return csrf;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the links did not become idle");
}

/// Audit events of `action` by people.
async fn audited(store: &Store, tenant: &TenantId, action: &str) -> usize {
    let filter = AuditFilter {
        action: Some(action.to_owned()),
        ..AuditFilter::default()
    };
    store
        .audit_page(tenant, &filter, None, 1000)
        .await
        .unwrap()
        .entries
        .len()
}

async fn redirect_case(backend: Backend) {
    let Some((emulated, console)) = admin_console(backend).await else {
        return;
    };
    let (store, tenant) = (console.store(), &console.tenant);
    let mut browser = Browser::new(&console.url);
    browser.sign_in(ADMIN).await;
    let csrf = connect_and_sync(&mut browser, &emulated, &console).await;

    // Rebuild: 303 to the Users page, whose notice shows once.
    let answer = browser.post("/users/rebuild", &[("csrf", &csrf)]).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let location = answer.location.clone().unwrap();
    assert!(location.starts_with("/users?flash="), "{location}");
    let rebuilds = audited(store, tenant, "delegation.rebuilt").await;
    let shown = browser.get(&location).await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body.matches("User matching rebuilt").count(), 1);
    let reloaded = browser.get(&location).await;
    assert_eq!(reloaded.status, 200);
    assert!(
        !reloaded.body.contains("User matching rebuilt"),
        "{}",
        reloaded.body
    );
    assert_eq!(audited(store, tenant, "delegation.rebuilt").await, rebuilds);

    // A bulk action keeps the page's filter and says what changed, once.
    let links = store.links(tenant).await.unwrap();
    let target = links[0].id.0.to_string();
    let answer = browser
        .post(
            "/users?status=idle",
            &[("csrf", &csrf), ("action", "unlink"), ("link", &target)],
        )
        .await;
    assert_eq!(answer.status, 303);
    let location = answer.location.clone().unwrap();
    assert!(
        location.starts_with("/users?status=idle&flash="),
        "{location}"
    );
    let status_changes = audited(store, tenant, "link.status").await;
    let shown = browser.get(&location).await;
    assert!(shown.body.contains("1 unlinked."), "{}", shown.body);
    let reloaded = browser.get(&location).await;
    assert!(!reloaded.body.contains("1 unlinked."));
    assert_eq!(audited(store, tenant, "link.status").await, status_changes);

    // Another session cannot read this session's outcome.
    console
        .add_user(tenant, "second@console.test", MemberRole::Admin)
        .await;
    let mut other = Browser::new(&console.url);
    other.sign_in("second@console.test").await;
    let answer = browser
        .post(
            "/policy",
            &[
                ("csrf", &csrf),
                ("backfill_days", "30"),
                ("sync_inbox", "on"),
                ("privacy", "subject"),
            ],
        )
        .await;
    assert_eq!(answer.status, 303);
    let location = answer.location.unwrap();
    assert!(!other.get(&location).await.body.contains("Policy saved"));
    assert!(browser.get(&location).await.body.contains("Policy saved"));

    // Unknown addresses and a form's address opened in the address bar: a page with a
    // way back; the API keeps its JSON errors.
    for (path, status) in [
        ("/no-such-page", 404),
        ("/users/rebuild", 405),
        ("/setup/key", 405),
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status, status, "{path}");
        assert!(
            page.header("content-type")
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        assert!(page.body.contains("href=\"/\""), "{path}: {}", page.body);
        assert!(page.body.contains("Back to the console"));
    }
    let anonymous = Browser::new(&console.url).get("/nothing/here").await;
    assert_eq!(anonymous.status, 404);
    assert!(anonymous.body.contains("Back to the console"));
    let api = browser.get("/api/v1/no-such-route").await;
    assert_eq!(api.status, 404);
    assert!(
        api.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    console.stop();
}

async fn audit_case(backend: Backend) {
    let Some((emulated, console)) = admin_console(backend).await else {
        return;
    };
    let (store, tenant) = (console.store(), &console.tenant);
    let mut browser = Browser::new(&console.url);
    browser.sign_in(ADMIN).await;
    connect_and_sync(&mut browser, &emulated, &console).await;
    let system = AuditFilter {
        actors: AuditActors::System,
        ..AuditFilter::default()
    };
    let system_rows = store.audit_page(tenant, &system, None, 10).await.unwrap();
    assert!(
        !system_rows.entries.is_empty(),
        "the engine recorded its status changes"
    );

    // By default: people's actions as sentences, no engine rows.
    let page = browser.get("/audit").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Capture turned on by ops@console.test"),
        "{}",
        page.body
    );
    assert!(page.body.contains("rebuilt user matching"), "{}", page.body);
    assert!(!page.body.contains("class=\"system\""), "{}", page.body);
    let with_system = browser.get("/audit?who=system").await;
    assert!(
        with_system.body.contains("class=\"system\""),
        "{}",
        with_system.body
    );
    assert!(!with_system.body.contains("Capture turned on"));

    // Filters: action, actor, target.
    let captures = browser.get("/audit?action=capture.set").await;
    assert!(captures.body.contains("Capture turned on"));
    assert!(!captures.body.contains("rebuilt user matching"));
    let nobody = browser.get("/audit?actor=nobody%40console.test").await;
    assert!(nobody.body.contains("Nothing matches"), "{}", nobody.body);
    let mailbox = &store.links(tenant).await.unwrap()[0].mailbox;
    let about = browser
        .get(&format!(
            "/audit?who=all&target={}",
            mailbox.split('@').next().unwrap()
        ))
        .await;
    assert!(about.body.contains(mailbox.as_str()));
    assert!(!about.body.contains("Capture turned on"));

    // More than a page of history: the console pages by "Older", the API by cursor.
    for i in 0..130 {
        let event = AuditEvent {
            at_ms: 1_000 + i,
            actor: ADMIN.to_owned(),
            action: "account.enabled".to_owned(),
            subject: Some(format!("user{i}@console.test")),
            detail: serde_json::json!({}),
        };
        store.record_audit(tenant, &event).await.unwrap();
    }
    let people = store
        .audit_page(tenant, &AuditFilter::default(), None, 1000)
        .await
        .unwrap()
        .entries
        .len();
    assert!(people > 130);
    let mut seen = 0;
    let mut path = "/audit".to_owned();
    let mut pages = 0;
    loop {
        let page = browser.get(&path).await;
        assert_eq!(page.status, 200);
        pages += 1;
        seen += events_shown(&page.body);
        let Some(start) = page.body.find("id=\"older\" href=\"") else {
            break;
        };
        let rest = &page.body[start + "id=\"older\" href=\"".len()..];
        path = rest[..rest.find('"').unwrap()].replace("&amp;", "&");
        assert!(pages < 10, "paging ends");
    }
    assert!(pages >= 2, "more than one console page");
    assert_eq!(seen, people, "every event once across the pages");
    let oldest = browser.get(&path).await;
    assert!(oldest.body.contains("user0@console.test"));

    let user = store.user_by_email(tenant, ADMIN).await.unwrap().unwrap();
    let token = store
        .create_api_token(tenant, user.id, "audit reader", ADMIN)
        .await
        .unwrap()
        .secret;
    let http = reqwest::Client::new();
    let mut cursor: Option<String> = None;
    let mut api_seen = Vec::new();
    let mut api_pages = 0;
    loop {
        let mut url = format!("{}/api/v1/audit?limit=40&who=all", console.url);
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page: serde_json::Value = http
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        api_pages += 1;
        for event in page["events"].as_array().unwrap() {
            api_seen.push(event["id"].as_i64().unwrap());
            assert!(event["text"].as_str().is_some_and(|t| !t.is_empty()));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let all = AuditFilter {
        actors: AuditActors::All,
        ..AuditFilter::default()
    };
    let everything = store.audit_page(tenant, &all, None, 100_000).await.unwrap();
    assert!(api_pages > 1);
    let expected: Vec<i64> = everything.entries.iter().map(|e| e.id).collect();
    assert_eq!(api_seen, expected, "every event once, newest first");
    let people_only: serde_json::Value = http
        .get(format!("{}/api/v1/audit?limit=1000", console.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        people_only["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] != SYSTEM_ACTOR)
    );
    let refused = http
        .get(format!("{}/api/v1/audit?who=robots", console.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    console.stop();
}

async fn first_run_case(backend: Backend) {
    let emulated = emulator(3, 4).await;
    let Some(console) = Console::start_with(backend, &emulated, None).await else {
        return;
    };
    let mut browser = Browser::new(&console.url);
    let fresh = browser.get("/signin").await;
    assert_eq!(fresh.status, 200);
    assert!(
        fresh.body.contains("No account exists yet"),
        "{}",
        fresh.body
    );
    assert!(fresh.body.contains("tributary admin create-user"));

    console
        .add_user(&console.tenant, ADMIN, MemberRole::Admin)
        .await;
    let later = browser.get("/signin").await;
    assert!(!later.body.contains("No account exists yet"));

    // A new admin with nothing connected starts on the setup, not an empty Users page.
    browser.sign_in(ADMIN).await;
    assert_eq!(browser.get("/").await.location.as_deref(), Some("/setup"));
    console.stop();
}

/// The events a page of the audit log shows (a row may tell several).
fn events_shown(body: &str) -> usize {
    body.split("data-events=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].parse::<usize>().unwrap())
        .sum()
}
