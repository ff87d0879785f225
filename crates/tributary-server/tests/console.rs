//! The console's pages over real HTTP on loopback, against the emulator: sign-in and
//! sessions, CSRF refusal, the setup wizard, the capture notice over real SMTP, the
//! users page's actions, member restrictions and tenant isolation.

mod console_support;

use console_support::{
    BACKENDS, Backend, Browser, Console, SmtpListener, emulator, some_mailbox_user,
};
use std::time::Duration;
use tributary_store::{LinkStatus, MemberRole, TenantId};

const ADMIN: &str = "ops@console.test";

/// Each case runs on SQLite, then on PostgreSQL when it is reachable.
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
    pages_need_a_session_and_a_right_password => sign_in_case;
    forms_without_the_sessions_csrf_token_change_nothing => csrf_case;
    the_wizard_names_a_bad_field_and_never_shows_the_private_key => wizard_case;
    enabling_capture_mails_the_admins_and_says_when_delivery_failed => capture_mail_case;
    the_users_page_rebuilds_syncs_filters_and_unlinks => users_case;
    a_member_sees_and_changes_only_their_own_settings => member_case;
    a_member_picks_labels_by_their_name_in_the_mailbox => member_labels_case;
    another_tenants_admin_can_neither_read_nor_change_this_tenant => isolation_case;
    activity_pages_show_what_the_store_pages_and_page_on => activity_pages_case;
}

type Emulated = tributary_emulator::server::RunningEmulator;

/// The emulator and a console on `backend` with [`ADMIN`]; `None` when the backend is
/// not reachable.
async fn admin_console(
    backend: Backend,
    smtp: Option<&SmtpListener>,
) -> Option<(Emulated, Console)> {
    let emulated = emulator(4, 12).await;
    let console = Console::start_with(backend, &emulated, smtp.map(SmtpListener::config)).await?;
    console
        .add_user(&console.tenant, ADMIN, MemberRole::Admin)
        .await;
    Some((emulated, console))
}

fn key_json(emulated: &tributary_emulator::server::RunningEmulator) -> Vec<u8> {
    serde_json::to_vec(&emulated.key_file).unwrap()
}

/// Signs in, uploads the emulator's key and answers the setup page.
async fn connect(
    browser: &mut Browser,
    emulated: &tributary_emulator::server::RunningEmulator,
) -> console_support::Page {
    let setup = browser.get("/setup").await;
    let csrf = setup.csrf();
    let admin = emulated.info.admin_email.clone();
    browser
        .submit_multipart(
            "/setup/key",
            &[("csrf", &csrf), ("admin_email", &admin)],
            ("key_file", &key_json(emulated)),
        )
        .await
}

async fn sign_in_case(backend: Backend) {
    let Some((_emulated, console)) = admin_console(backend, None).await else {
        return;
    };
    let mut browser = Browser::new(&console.url);

    let anonymous = browser.get("/users").await;
    assert_eq!(anonymous.status, 303);
    assert_eq!(anonymous.location.as_deref(), Some("/signin"));

    let form = browser.get("/signin").await;
    let wrong = browser
        .post(
            "/signin",
            &[
                ("email", ADMIN),
                ("password", "not the password"),
                ("csrf", &form.csrf()),
            ],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.body.contains("do not match an account"),
        "{}",
        wrong.body
    );
    assert_eq!(browser.get("/users").await.status, 303);

    browser.sign_in(ADMIN).await;
    let home = browser.get("/").await;
    assert_eq!(home.location.as_deref(), Some("/setup"));
    let users = browser.get("/users").await;
    assert_eq!(users.status, 200);
    assert!(
        users.body.contains(ADMIN),
        "the header names who is signed in"
    );

    let csrf = users.csrf();
    let out = browser.post("/signout", &[("csrf", &csrf)]).await;
    assert_eq!(out.location.as_deref(), Some("/signin"));
    assert_eq!(browser.get("/users").await.status, 303, "the session ended");
}

async fn csrf_case(backend: Backend) {
    let Some((emulated, console)) = admin_console(backend, None).await else {
        return;
    };
    let mut browser = Browser::new(&console.url);

    // Sign-in itself needs the form's token matching its cookie.
    let forged = browser
        .post(
            "/signin",
            &[
                ("email", ADMIN),
                ("password", console_support::PASSWORD),
                ("csrf", "guess"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);

    browser.sign_in(ADMIN).await;
    let admin = emulated.info.admin_email.clone();
    let upload = browser
        .post_multipart(
            "/setup/key",
            &[("csrf", "forged"), ("admin_email", &admin)],
            ("key_file", &key_json(&emulated)),
        )
        .await;
    assert_eq!(upload.status, 403, "{}", upload.body);
    assert!(
        console
            .runtime
            .google_setup(&console.tenant)
            .await
            .unwrap()
            .is_none()
    );

    let policy = browser
        .post("/policy", &[("backfill_days", "7"), ("sync_inbox", "on")])
        .await;
    assert_eq!(policy.status, 403);
    let rebuild = browser.post("/users/rebuild", &[("csrf", "")]).await;
    assert_eq!(rebuild.status, 403);
    assert!(
        console
            .runtime
            .delegation_report(&console.tenant)
            .await
            .unwrap()
            .is_none()
    );
}

async fn wizard_case(backend: Backend) {
    let Some((emulated, console)) = admin_console(backend, None).await else {
        return;
    };
    let mut browser = Browser::new(&console.url);
    browser.sign_in(ADMIN).await;

    let csrf = browser.get("/setup").await.csrf();
    let bad = browser
        .submit_multipart(
            "/setup/key",
            &[("csrf", &csrf), ("admin_email", "it@console.test")],
            (
                "key_file",
                br#"{"type": "service_account", "project_id": "p"}"#,
            ),
        )
        .await;
    assert_eq!(bad.status, 200);
    assert!(bad.body.contains("Nothing was stored"), "{}", bad.body);
    assert!(
        bad.body.contains("has no `"),
        "the missing field is named: {}",
        bad.body
    );
    assert!(
        console
            .runtime
            .google_setup(&console.tenant)
            .await
            .unwrap()
            .is_none()
    );

    let mut oversized = key_json(&emulated);
    oversized.resize(300 * 1024, b' ');
    let admin = emulated.info.admin_email.clone();
    let too_big = browser
        .post_multipart(
            "/setup/key",
            &[("csrf", &csrf), ("admin_email", &admin)],
            ("key_file", &oversized),
        )
        .await;
    assert_eq!(too_big.status, 413, "{}", too_big.body);
    assert!(
        console
            .runtime
            .google_setup(&console.tenant)
            .await
            .unwrap()
            .is_none()
    );

    let good = connect(&mut browser, &emulated).await;
    assert_eq!(good.status, 200);
    let setup = console
        .runtime
        .google_setup(&console.tenant)
        .await
        .unwrap()
        .unwrap();
    assert!(good.body.contains(&format!(
        "<code id=\"client-id\">{}</code>",
        setup.client_id
    )));
    assert!(
        good.body.contains(&setup.scopes_csv),
        "the comma-separated scopes are shown"
    );
    assert!(
        good.body
            .contains("admin.google.com/ac/owl/domainwidedelegation")
    );
    let private_key = &emulated.key_file.private_key;
    let key_line = private_key.lines().nth(1).unwrap();
    for page in [&good, &browser.get("/setup").await] {
        assert!(!page.body.contains("PRIVATE KEY"));
        assert!(
            !page.body.contains(key_line),
            "no part of the private key is shown"
        );
    }

    let csrf = good.csrf();
    let tested = browser.submit("/setup/test", &[("csrf", &csrf)]).await;
    assert!(tested.body.contains("Connected"), "{}", tested.body);

    // Google refusing is shown in the taxonomy with its words and a hint.
    emulated.state.auth.remove_delegation(&setup.client_id);
    let refused = browser.submit("/setup/test", &[("csrf", &csrf)]).await;
    assert!(refused.body.contains("Unauthorized"), "{}", refused.body);
    assert!(refused.body.contains("Google said:"));
    assert!(
        refused.body.contains("Domain-wide delegation"),
        "the fix hint is shown"
    );
}

async fn capture_mail_case(backend: Backend) {
    let smtp = SmtpListener::start().await;
    let Some((emulated, console)) = admin_console(backend, Some(&smtp)).await else {
        return;
    };
    let mut browser = Browser::new(&console.url);
    browser.sign_in(ADMIN).await;
    let setup = connect(&mut browser, &emulated).await;

    let enabled = browser
        .submit(
            "/setup/capture",
            &[("csrf", &setup.csrf()), ("enabled", "on")],
        )
        .await;
    assert!(
        enabled.body.contains("notified by email"),
        "{}",
        enabled.body
    );
    assert!(
        console
            .runtime
            .capture_enabled(&console.tenant)
            .await
            .unwrap()
    );
    let mails = smtp.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, [ADMIN]);
    assert!(
        mails[0]
            .data
            .contains("Subject: Tributary: capture is on for Acme"),
        "{}",
        mails[0].data
    );
    assert!(mails[0].data.contains(&format!("{}/users", console.url)));

    // A server whose SMTP port is closed says so instead of claiming success.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = tributary_server::SmtpConfig {
        port: closed,
        ..smtp.config()
    };
    let emulated = emulator(3, 5).await;
    let console = Console::start_with(backend, &emulated, Some(unreachable))
        .await
        .unwrap();
    console
        .add_user(&console.tenant, "ops2@console.test", MemberRole::Admin)
        .await;
    let mut browser = Browser::new(&console.url);
    browser.sign_in("ops2@console.test").await;
    let setup = connect(&mut browser, &emulated).await;
    let enabled = browser
        .submit(
            "/setup/capture",
            &[("csrf", &setup.csrf()), ("enabled", "on")],
        )
        .await;
    assert!(
        enabled.body.contains("Mail delivery failed"),
        "{}",
        enabled.body
    );
    assert!(
        console
            .runtime
            .capture_enabled(&console.tenant)
            .await
            .unwrap(),
        "capture is on anyway"
    );
}

async fn users_case(backend: Backend) {
    let Some((emulated, console)) = admin_console(backend, None).await else {
        return;
    };
    let mut browser = Browser::new(&console.url);
    browser.sign_in(ADMIN).await;
    let setup = connect(&mut browser, &emulated).await;
    let csrf = setup.csrf();

    let rebuilt = browser.submit("/users/rebuild", &[("csrf", &csrf)]).await;
    assert!(
        rebuilt.body.contains("User matching rebuilt"),
        "{}",
        rebuilt.body
    );
    let report = console
        .runtime
        .delegation_report(&console.tenant)
        .await
        .unwrap()
        .unwrap();
    assert!(
        rebuilt
            .body
            .contains(&format!("{} matched", report.matched.len()))
    );
    for skipped in &report.unmatched {
        assert!(
            rebuilt.body.contains(skipped.describe()),
            "the reason is shown"
        );
    }

    browser
        .post("/setup/capture", &[("csrf", &csrf), ("enabled", "on")])
        .await;
    let links = wait_all_idle(&console).await;
    let rows = browser.get("/users/rows").await;
    assert_eq!(
        rows.body.matches("data-status=\"idle\"").count(),
        links.len()
    );
    assert!(
        rows.body.contains("added"),
        "the last run's summary is shown"
    );

    let target = links[0].id.0.to_string();
    let unlinked = browser
        .submit(
            "/users",
            &[("csrf", &csrf), ("action", "unlink"), ("link", &target)],
        )
        .await;
    assert!(unlinked.body.contains("1 unlinked."), "{}", unlinked.body);
    let after = console.store().links(&console.tenant).await.unwrap();
    assert_eq!(
        after
            .iter()
            .filter(|l| l.status == LinkStatus::Unlinked)
            .count(),
        1
    );

    let filtered = browser.get("/users?status=unlinked").await;
    assert_eq!(filtered.body.matches("data-status=").count(), 1);
    assert!(filtered.body.contains(&format!("data-link=\"{target}\"")));

    // The unlinked row offers its own Start, and only that.
    let start_value = format!("value=\"start:{target}\"");
    assert!(filtered.body.contains(&start_value), "{}", filtered.body);
    assert!(
        !filtered
            .body
            .contains(&format!("value=\"unlink:{target}\""))
    );
    // Retry on an unlinked link changes nothing and says why, in no green notice.
    let refused = browser
        .submit(
            "/users",
            &[("csrf", &csrf), ("action", "retry"), ("link", &target)],
        )
        .await;
    assert!(
        refused
            .body
            .contains("Nothing changed: 0 retried; 1 was unlinked (use Start"),
        "{}",
        refused.body
    );
    assert!(!refused.body.contains("notice success"), "{}", refused.body);
    // A row's button acts on its link alone, whatever else is ticked.
    let other = links[1].id.0.to_string();
    let started = browser
        .submit(
            "/users",
            &[
                ("csrf", &csrf),
                ("row", &format!("start:{target}")),
                ("link", &other),
            ],
        )
        .await;
    assert!(started.body.contains("1 started."), "{}", started.body);
    let statuses = console.store().links(&console.tenant).await.unwrap();
    let status_of = |id: &str| {
        statuses
            .iter()
            .find(|l| l.id.0.to_string() == id)
            .map(|l| l.status)
    };
    assert_ne!(status_of(&target), Some(LinkStatus::Unlinked));
    assert_eq!(
        status_of(&other),
        Some(LinkStatus::Idle),
        "the ticked one is untouched"
    );
}

async fn wait_all_idle(console: &Console) -> Vec<tributary_store::LinkView> {
    for _ in 0..300 {
        let links = console.store().links(&console.tenant).await.unwrap();
        if !links.is_empty() && links.iter().all(|l| l.status == LinkStatus::Idle) {
            return links;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "links did not all become idle: {:?}",
        console.store().links(&console.tenant).await.unwrap()
    );
}

async fn member_case(backend: Backend) {
    let Some((emulated, console)) = admin_console(backend, None).await else {
        return;
    };
    let mut admin = Browser::new(&console.url);
    admin.sign_in(ADMIN).await;
    let csrf = connect(&mut admin, &emulated).await.csrf();
    admin.post("/users/rebuild", &[("csrf", &csrf)]).await;

    let member_email = some_mailbox_user(&emulated, &emulated.info.admin_email);
    console
        .add_user(&console.tenant, &member_email, MemberRole::Member)
        .await;
    let mut member = Browser::new(&console.url);
    member.sign_in(&member_email).await;
    assert_eq!(member.get("/").await.location.as_deref(), Some("/me"));
    let own = member.get("/me").await;
    assert_eq!(own.status, 200);
    assert!(own.body.contains(&member_email));
    assert!(!own.body.contains("href=\"/users\""), "no admin navigation");

    for path in ["/users", "/users/rows", "/setup", "/policy", "/audit"] {
        assert_eq!(member.get(path).await.status, 403, "{path}");
    }
    // Their own CRM (see tests/member_views.rs): companies and search answer.
    for path in ["/companies", "/search?q=a"] {
        assert_eq!(member.get(path).await.status, 200, "{path}");
    }
    let csrf = own.csrf();
    for path in ["/users/rebuild", "/setup/test", "/policy", "/setup/capture"] {
        assert_eq!(
            member
                .post(path, &[("csrf", &csrf), ("enabled", "on")])
                .await
                .status,
            403,
            "{path}"
        );
    }
    assert!(
        !console
            .runtime
            .capture_enabled(&console.tenant)
            .await
            .unwrap()
    );

    // A label the mailbox does not have is refused, naming those it has; one typed by
    // its name is saved as its id.
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
    let refused = member
        .submit("/me", &[("csrf", &csrf), ("other_labels", "Label_999999")])
        .await;
    assert!(refused.body.contains("Not saved"), "{}", refused.body);
    assert!(
        refused.body.contains(&escaped(&label_name)),
        "{}",
        refused.body
    );
    let saved = member
        .submit(
            "/me",
            &[
                ("csrf", &csrf),
                ("label", "STARRED"),
                ("other_labels", &label_name),
            ],
        )
        .await;
    assert!(saved.body.contains("2 extra label(s)"), "{}", saved.body);
    let members = console.store().members(&console.tenant).await.unwrap();
    let own_member = members.iter().find(|m| m.email == member_email).unwrap();
    let labels = console
        .store()
        .member_labels(&console.tenant, own_member.id)
        .await
        .unwrap();
    let mut expected = vec![label_id, "STARRED".to_owned()];
    expected.sort_by_key(|l| l.to_lowercase());
    assert_eq!(labels, expected);
}

async fn isolation_case(backend: Backend) {
    let Some((emulated, console)) = admin_console(backend, None).await else {
        return;
    };
    let mut admin = Browser::new(&console.url);
    admin.sign_in(ADMIN).await;
    let csrf = connect(&mut admin, &emulated).await.csrf();
    admin.post("/users/rebuild", &[("csrf", &csrf)]).await;
    let links = console.store().links(&console.tenant).await.unwrap();
    assert!(!links.is_empty());

    let other = TenantId::new("globex");
    console
        .store()
        .create_tenant(&other, "Globex")
        .await
        .unwrap();
    console
        .add_user(&other, "boss@globex.test", MemberRole::Admin)
        .await;
    let mut outsider = Browser::new(&console.url);
    outsider.sign_in("boss@globex.test").await;

    let users = outsider.get("/users").await;
    assert_eq!(users.status, 200);
    for link in &links {
        assert!(
            !users.body.contains(&link.mailbox),
            "{} leaked",
            link.mailbox
        );
    }
    let member = outsider.get(&format!("/members/{}", links[0].member)).await;
    assert_eq!(member.status, 404);
    let audit = outsider.get("/audit").await;
    assert!(!audit.body.contains("delegation.rebuilt"));
    assert!(
        outsider
            .get("/setup")
            .await
            .body
            .contains("Upload the service-account key")
    );

    let csrf = users.csrf();
    let target = links[0].id.0.to_string();
    let unlink = outsider
        .post(
            "/users",
            &[("csrf", &csrf), ("action", "unlink"), ("link", &target)],
        )
        .await;
    assert_eq!(unlink.status, 404);
    let after = console.store().links(&console.tenant).await.unwrap();
    assert_eq!(after, links, "nothing changed in the other tenant");
}

/// Entries of a page's timeline.
fn timeline_entries(body: &str) -> usize {
    body.matches("<div class=\"when\">").count()
}

/// The activity views after a sync: the ranking, a company's, a contact's and a member's
/// page, and search, each as the store's paged reads say; a timeline continues after a
/// cursor and refuses one it did not make.
async fn activity_pages_case(backend: Backend) {
    use base64::Engine as _;
    use tributary_store::TimelineOf;

    let Some((emulated, console)) = admin_console(backend, None).await else {
        return;
    };
    let mut admin = Browser::new(&console.url);
    admin.sign_in(ADMIN).await;
    let csrf = connect(&mut admin, &emulated).await.csrf();
    admin.post("/users/rebuild", &[("csrf", &csrf)]).await;
    admin
        .post("/setup/capture", &[("csrf", &csrf), ("enabled", "on")])
        .await;
    wait_all_idle(&console).await;
    let store = console.store();
    let tenant = &console.tenant;

    // The calendars may still be adding companies after the mail went idle: compare the
    // page with a ranking that did not change while it was rendered.
    let mut tries = 0;
    let (ranking, page) = loop {
        let before = store.ranked_companies(tenant, 0, 1000).await.unwrap();
        let page = admin.get("/companies").await;
        let after = store.ranked_companies(tenant, 0, 1000).await.unwrap();
        tries += 1;
        if before.companies.len() == after.companies.len() {
            break (after, page);
        }
        assert!(tries < 50, "the companies kept changing");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(!ranking.companies.is_empty(), "the sync found companies");
    assert_eq!(page.status, 200);
    let shown = ranking.companies.len().min(50);
    assert_eq!(page.body.matches("<td class=\"num\">").count() / 3, shown);
    let top = &ranking.companies[0];
    assert!(page.body.contains(&top.domain));
    let beyond = admin.get("/companies?page=1000").await;
    assert!(
        beyond.body.contains("No more companies."),
        "{}",
        beyond.body
    );

    let company = admin.get(&format!("/companies/{}", top.domain)).await;
    assert_eq!(company.status, 200);
    assert!(
        company
            .body
            .contains(&format!("Contacts ({})", top.contacts))
    );
    let timeline = store
        .timeline_page(tenant, &TimelineOf::Company(top.domain.clone()), None, 1000)
        .await
        .unwrap();
    assert_eq!(
        timeline_entries(&company.body),
        timeline.activities.len().min(200)
    );

    // The contact with the longest timeline; its page after the first entry holds the rest.
    let contacts = store.contacts(tenant).await.unwrap();
    let mut longest = (0, String::new());
    for contact in &contacts {
        let of = TimelineOf::Contact(contact.address.clone());
        let all = store.timeline_page(tenant, &of, None, 1000).await.unwrap();
        if all.activities.len() > longest.0 {
            longest = (all.activities.len(), contact.address.clone());
        }
    }
    let (count, address) = longest;
    assert!(count > 1, "some contact has two contact points");
    let first = admin.get(&format!("/contacts/{address}")).await;
    assert_eq!(timeline_entries(&first.body), count.min(200));
    let of = TimelineOf::Contact(address.clone());
    let after_one = store.timeline_page(tenant, &of, None, 1).await.unwrap();
    let cursor = after_one.next.unwrap();
    let before = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{}:{}",
        cursor.time_ms.map(|t| t.to_string()).unwrap_or_default(),
        cursor.dedupe_key
    ));
    let rest = admin
        .get(&format!("/contacts/{address}?before={before}"))
        .await;
    assert_eq!(rest.status, 200);
    assert_eq!(timeline_entries(&rest.body), count - 1);
    assert!(rest.body.contains("← Newest"));
    let stranger = admin.get(&format!("/contacts/{address}?before=eDox")).await;
    assert_eq!(stranger.status, 400);

    let members = store.members(tenant).await.unwrap();
    let member = &members[0];
    let page = admin.get(&format!("/members/{}", member.email)).await;
    assert_eq!(page.status, 200);
    let mine = store
        .timeline_page(tenant, &TimelineOf::Member(member.id), None, 1000)
        .await
        .unwrap();
    assert_eq!(timeline_entries(&page.body), mine.activities.len().min(200));
    for link in store.links_of_member(tenant, member.id).await.unwrap() {
        assert!(page.body.contains(&link.mailbox));
    }

    let needle = &address[..2];
    let search = admin.get(&format!("/search?q={needle}")).await;
    let found = store.search_contacts(tenant, needle, 100).await.unwrap();
    assert!(found.total > 0);
    assert!(
        search.body.contains(&format!("Contacts ({})", found.total)),
        "{}",
        search.body
    );
}

/// Text as the console's templates escape it.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The member page offers the mailbox's own labels by name (the id as the value); when
/// Gmail refuses, it shows Google's words and keeps the chosen labels.
async fn member_labels_case(backend: Backend) {
    let Some((emulated, console)) = admin_console(backend, None).await else {
        return;
    };
    let control = tributary_emulator::testing::ControlClient::new(&emulated.info.control_url);
    let mut admin = Browser::new(&console.url);
    admin.sign_in(ADMIN).await;
    let csrf = connect(&mut admin, &emulated).await.csrf();
    admin.post("/users/rebuild", &[("csrf", &csrf)]).await;
    let member_email = some_mailbox_user(&emulated, &emulated.info.admin_email);
    console
        .add_user(&console.tenant, &member_email, MemberRole::Member)
        .await;
    let created = control
        .post(
            &format!("/users/{member_email}/labels"),
            serde_json::json!({ "name": "Clients/Zephyr & Sons" }),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let name = created["name"].as_str().unwrap().to_owned();

    let mut member = Browser::new(&console.url);
    member.sign_in(&member_email).await;
    let page = member.get("/me").await;
    assert_eq!(page.status, 200);
    let checkbox = format!("name=\"label\" value=\"{id}\"");
    assert!(page.body.contains(&checkbox), "{}", page.body);
    assert!(page.body.contains(&escaped(&name)), "{}", page.body);
    // Every user label of the mailbox is offered by its name.
    let user_labels: Vec<String> = emulated.state.org().mailboxes[&member_email]
        .labels
        .values()
        .filter(|l| l.kind == tributary_emulator::model::LabelKind::User)
        .map(|l| l.name.clone())
        .collect();
    for label in &user_labels {
        assert!(
            page.body.contains(&escaped(label)),
            "{label} is not offered"
        );
    }

    let saved = member
        .submit("/me", &[("csrf", &page.csrf()), ("label", &id)])
        .await;
    assert!(saved.body.contains("1 extra label(s)"), "{}", saved.body);
    control
        .post(
            &format!("/users/{member_email}/mail-service"),
            serde_json::json!({ "enabled": false }),
        )
        .await;
    let refused = member.get("/me").await;
    assert_eq!(refused.status, 200);
    assert!(
        refused
            .body
            .contains("Could not read your labels: Mail service not enabled"),
        "{}",
        refused.body
    );
    let checked = format!("name=\"label\" value=\"{id}\" checked");
    assert!(refused.body.contains(&checked), "{}", refused.body);
    assert!(refused.body.contains("name=\"other_labels\""));
}
