//! The console as a control room, over real HTTP against the emulator, on both
//! backends: a failure that is the connection's is one banner (not a hint per row)
//! and its links resume by themselves once Test connection (or a new key's own test)
//! passes, audited; the Users page's filter counts each status; the policy and
//! "connect new users automatically" are the tenant's, saved before any key exists
//! (console and API), and Rebuild leaves new users unstarted while that is off; an
//! admin edits any member's labels, validated against the mailbox.

mod console_support;

use console_support::{
    BACKENDS, Backend, Browser, Console, emulator, escaped, some_mailbox_user, wait_for_links,
};
use serde_json::{Value, json};
use tributary_core::{Audience, FailureCause, PrivacyMode};
use tributary_emulator::testing::ControlClient;
use tributary_store::{AuditFilter, LinkStatus, MemberRole, Store, TenantId};

const ADMIN: &str = "ops@control.test";

macro_rules! on_every_backend {
    ($($test:ident => $case:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            for backend in BACKENDS {
                $case(backend).await;
            }
        }
    )*};
}

on_every_backend! {
    a_connection_failure_is_one_banner_and_resumes_after_the_fix => banner_case;
    policy_and_new_user_setting_are_the_tenant_s_before_any_key => tenant_settings_case;
    an_admin_edits_a_member_s_labels_validated_against_the_mailbox => admin_labels_case;
}

type Emulated = tributary_emulator::server::RunningEmulator;

async fn admin_console(backend: Backend, users: usize) -> Option<(Emulated, Console, Browser)> {
    let emulated = emulator(users, 3).await;
    let console = Console::start_with(backend, &emulated, None).await?;
    console
        .add_user(&console.tenant, ADMIN, MemberRole::Admin)
        .await;
    let mut browser = Browser::new(&console.url);
    browser.sign_in(ADMIN).await;
    Some((emulated, console, browser))
}

async fn upload_key(browser: &mut Browser, emulated: &Emulated) -> String {
    let csrf = browser.get("/setup").await.csrf();
    let key = serde_json::to_vec(&emulated.key_file).unwrap();
    let setup = browser
        .submit_multipart(
            "/setup/key",
            &[("csrf", &csrf), ("admin_email", &emulated.info.admin_email)],
            ("key_file", &key),
        )
        .await;
    assert!(setup.body.contains("Key uploaded"), "{}", setup.body);
    csrf
}

/// Audit events of `action`, newest first.
async fn audited(store: &Store, tenant: &TenantId, action: &str) -> Vec<Value> {
    let filter = AuditFilter {
        action: Some(action.to_owned()),
        ..AuditFilter::default()
    };
    store
        .audit_page(tenant, &filter, None, 1000)
        .await
        .unwrap()
        .entries
        .into_iter()
        .map(|entry| entry.event.detail)
        .collect()
}

/// An API token acting as the console's admin.
async fn admin_token(console: &Console) -> String {
    let store = console.store();
    let user = store
        .user_by_email(&console.tenant, ADMIN)
        .await
        .unwrap()
        .unwrap();
    store
        .create_api_token(&console.tenant, user.id, "control", ADMIN)
        .await
        .unwrap()
        .secret
}

async fn banner_case(backend: Backend) {
    let Some((emulated, console, mut admin)) = admin_console(backend, 4).await else {
        return;
    };
    let control = ControlClient::new(&emulated.info.control_url);
    let csrf = upload_key(&mut admin, &emulated).await;
    admin.submit("/users/rebuild", &[("csrf", &csrf)]).await;
    admin
        .submit("/setup/capture", &[("csrf", &csrf), ("enabled", "on")])
        .await;
    let links = wait_for_links(&console, |links| {
        links.iter().all(|l| l.status == LinkStatus::Idle)
    })
    .await;
    let page = admin.get("/users").await.body;
    assert!(!page.contains("connection-banner"), "no failure, no banner");

    // A Workspace admin restricts the app's API access: every link fails alike.
    control
        .post("/api-access", json!({ "restricted": true }))
        .await;
    control.post("/tokens/expire", json!({})).await;
    let ids: Vec<String> = links.iter().map(|l| l.id.0.to_string()).collect();
    let mut form = vec![("csrf", csrf.as_str()), ("action", "retry")];
    form.extend(ids.iter().map(|id| ("link", id.as_str())));
    admin.submit("/users", &form).await;
    let failed = wait_for_links(&console, |links| {
        links.iter().all(|l| l.status == LinkStatus::Unauthorized)
    })
    .await;
    assert!(
        failed
            .iter()
            .all(|l| l.status_reason.as_deref() == Some("admin_policy_enforced")),
        "{failed:?}"
    );
    let page = admin.get("/users").await.body;
    let fix = escaped(FailureCause::AppRestricted.hint(Audience::Admin));
    assert_eq!(
        page.matches("id=\"connection-banner\"").count(),
        1,
        "{page}"
    );
    assert_eq!(page.matches(&fix).count(), 1, "the fix once: {page}");
    assert!(
        page.contains(&format!("{} mailboxes wait for it", links.len())),
        "{page}"
    );
    let rows = admin.get("/users/rows").await.body;
    assert_eq!(
        rows.matches("Waiting for the connection").count(),
        links.len(),
        "{rows}"
    );
    assert!(!rows.contains(&fix), "no row repeats the fix: {rows}");
    // The filter counts each status.
    assert!(
        page.contains(&format!("Unauthorized ({})", links.len())),
        "{page}"
    );
    assert!(page.contains("Idle · up to date (0)"), "{page}");
    // A failing Test connection resumes nothing.
    admin.submit("/setup/test", &[("csrf", &csrf)]).await;
    let still = console.store().links(&console.tenant).await.unwrap();
    assert!(still.iter().all(|l| l.status == LinkStatus::Unauthorized));
    assert!(
        audited(console.store(), &console.tenant, "links.resumed")
            .await
            .is_empty()
    );

    // The restriction lifted and Test connection passing: the links resume by
    // themselves, audited once, and the banner goes.
    control
        .post("/api-access", json!({ "restricted": false }))
        .await;
    admin.submit("/setup/test", &[("csrf", &csrf)]).await;
    wait_for_links(&console, |links| {
        links.iter().all(|l| l.status == LinkStatus::Idle)
    })
    .await;
    let resumed = audited(console.store(), &console.tenant, "links.resumed").await;
    assert_eq!(resumed.len(), 1, "{resumed:?}");
    assert_eq!(resumed[0]["count"], json!(links.len()));
    assert_eq!(resumed[0]["causes"], json!(["app_restricted"]));
    let page = admin.get("/users").await.body;
    assert!(!page.contains("connection-banner"), "{page}");

    // The key deleted: the banner names the key; a new key that passes its test on
    // upload resumes the links without a Test connection or a Retry.
    let key_id = emulated.key_file.private_key_id.clone();
    control
        .delete(&format!("/service-account/keys/{key_id}"))
        .await;
    control.post("/tokens/expire", json!({})).await;
    admin.submit("/users", &form).await;
    wait_for_links(&console, |links| {
        links
            .iter()
            .all(|l| l.status == LinkStatus::AuthenticationError)
    })
    .await;
    let page = admin.get("/users").await.body;
    let key_fix = escaped(FailureCause::KeyRejected.hint(Audience::Admin));
    assert_eq!(page.matches(&key_fix).count(), 1, "{page}");
    let new_key = control.post("/service-account/keys", json!({})).await;
    let uploaded = admin
        .submit_multipart(
            "/setup/key",
            &[("csrf", &csrf), ("admin_email", &emulated.info.admin_email)],
            ("key_file", &serde_json::to_vec(&new_key).unwrap()),
        )
        .await;
    assert!(uploaded.body.contains("Key uploaded"), "{}", uploaded.body);
    wait_for_links(&console, |links| {
        links.iter().all(|l| l.status == LinkStatus::Idle)
    })
    .await;
    let resumed = audited(console.store(), &console.tenant, "links.resumed").await;
    assert_eq!(resumed.len(), 2, "{resumed:?}");
    assert_eq!(resumed[0]["causes"], json!(["key_rejected"]));
    console.stop();
}

async fn tenant_settings_case(backend: Backend) {
    let Some((emulated, console, mut admin)) = admin_console(backend, 4).await else {
        return;
    };
    let tenant = &console.tenant;
    // Before any key: the policy page saves, and says nothing about a missing key.
    let page = admin.get("/policy").await;
    assert!(
        !page.body.contains("upload a service-account key"),
        "{}",
        page.body
    );
    let csrf = page.csrf();
    let saved = admin
        .submit(
            "/policy",
            &[
                ("csrf", &csrf),
                ("sync_sent", "on"),
                ("backfill_days", "45"),
                ("privacy", "metadata"),
            ],
        )
        .await;
    assert!(saved.body.contains("Policy saved"), "{}", saved.body);
    let policy = console.runtime.policy(tenant).await.unwrap();
    assert_eq!(
        (policy.sync_inbox, policy.backfill_days, policy.privacy),
        (false, 45, PrivacyMode::Metadata)
    );
    // "Connect new users automatically" is on by default; turned off here.
    assert!(console.runtime.auto_connect(tenant).await.unwrap());
    let off = admin.submit("/policy/new-users", &[("csrf", &csrf)]).await;
    assert!(off.body.contains("without starting them"), "{}", off.body);
    assert!(!console.runtime.auto_connect(tenant).await.unwrap());
    let changes = audited(console.store(), tenant, "settings.auto_connect").await;
    assert_eq!(changes, [json!({ "enabled": false })]);

    // The API saves the policy before any key too.
    let http = reqwest::Client::new();
    let token = admin_token(&console).await;
    let api = |path: &str| format!("{}/api/v1{path}", console.url);
    let mut wanted = serde_json::to_value(&policy).unwrap();
    wanted["backfill_days"] = json!(46);
    let put = http
        .put(api("/policy"))
        .bearer_auth(&token)
        .json(&wanted)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 200);
    let policy = console.runtime.policy(tenant).await.unwrap();
    assert_eq!(policy.backfill_days, 46);

    // The key upload keeps the policy saved before it.
    upload_key(&mut admin, &emulated).await;
    assert_eq!(console.runtime.policy(tenant).await.unwrap(), policy);

    // Rebuild matches every user but starts none of them.
    let rebuilt = admin.submit("/users/rebuild", &[("csrf", &csrf)]).await;
    assert!(
        rebuilt.body.contains("were not started"),
        "{}",
        rebuilt.body
    );
    let links = console.store().links(tenant).await.unwrap();
    assert!(!links.is_empty());
    assert!(
        links.iter().all(|l| l.status == LinkStatus::Unlinked),
        "{links:?}"
    );
    let held = audited(console.store(), tenant, "delegation.new_links_held").await;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0]["count"], json!(links.len()));

    // The API reads and sets the same setting; on again, a new user starts.
    let url = api("/settings");
    let read: Value = http
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read, json!({ "connect_new_users": false }));
    let refused = http
        .put(&url)
        .bearer_auth(&token)
        .json(&json!({ "connect_new_users": "yes" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 422);
    let set = http
        .put(&url)
        .bearer_auth(&token)
        .json(&json!({ "connect_new_users": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status().as_u16(), 200);
    assert!(console.runtime.auto_connect(tenant).await.unwrap());
    let domain = emulated.info.admin_email.rsplit_once('@').unwrap().1;
    let newcomer = format!("newcomer@{domain}");
    ControlClient::new(&emulated.info.control_url)
        .post(
            "/users",
            json!({ "primary_email": newcomer, "given_name": "New", "family_name": "Comer" }),
        )
        .await;
    admin.submit("/users/rebuild", &[("csrf", &csrf)]).await;
    let links = console.store().links(tenant).await.unwrap();
    let new_link = links.iter().find(|l| l.mailbox == newcomer).unwrap();
    assert_eq!(new_link.status, LinkStatus::Pending, "{links:?}");
    assert_eq!(
        links
            .iter()
            .filter(|l| l.status == LinkStatus::Unlinked)
            .count(),
        links.len() - 1,
        "the users held before stay unstarted"
    );
    console.stop();
}

async fn admin_labels_case(backend: Backend) {
    let Some((emulated, console, mut admin)) = admin_console(backend, 4).await else {
        return;
    };
    let control = ControlClient::new(&emulated.info.control_url);
    let member = some_mailbox_user(&emulated, &emulated.info.admin_email);
    let created = control
        .post(
            &format!("/users/{member}/labels"),
            json!({ "name": "Deals/Won" }),
        )
        .await;
    let label_id = created["id"].as_str().unwrap().to_owned();
    let csrf = upload_key(&mut admin, &emulated).await;
    admin.submit("/users/rebuild", &[("csrf", &csrf)]).await;

    // The Users page leads to the member's labels; the page offers the mailbox's own.
    let rows = admin.get("/users/rows").await.body;
    let path = format!("/members/{member}/labels");
    assert!(rows.contains(&format!("href=\"{path}\"")), "{rows}");
    let page = admin.get(&path).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Deals/Won"), "{}", page.body);
    assert!(
        page.body.contains(&format!("action=\"{path}\"")),
        "{}",
        page.body
    );

    // An unknown label is refused with the labels that exist; nothing is saved.
    let refused = admin
        .submit(&path, &[("csrf", &csrf), ("other_labels", "Label_9999")])
        .await;
    assert!(refused.body.contains("Not saved"), "{}", refused.body);
    assert!(refused.body.contains("Deals/Won"), "{}", refused.body);
    let member_id = console
        .store()
        .member_by_address(&console.tenant, &member)
        .await
        .unwrap()
        .unwrap()
        .id;
    let labels = |store: &Store| {
        let store = store.clone();
        let tenant = console.tenant.clone();
        async move { store.member_labels(&tenant, member_id).await.unwrap() }
    };
    assert!(labels(console.store()).await.is_empty());
    // A real label is saved for the member.
    let saved = admin
        .submit(&path, &[("csrf", &csrf), ("label", &label_id)])
        .await;
    assert!(saved.body.contains("Saved"), "{}", saved.body);
    assert_eq!(labels(console.store()).await, [label_id]);

    // A member may not open another member's labels.
    let other = some_mailbox_user(&emulated, &member);
    console
        .add_user(&console.tenant, &other, MemberRole::Member)
        .await;
    let mut stranger = Browser::new(&console.url);
    stranger.sign_in(&other).await;
    assert_eq!(stranger.get(&path).await.status, 403);
    console.stop();
}
