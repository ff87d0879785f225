//! A hint per cause, not per status, over real HTTP against the emulator: Gmail turned
//! off for one member and a deleted service-account key each put links in an error
//! status, and the Users page shows the admin's fix for *that* cause while the member's
//! own page shows what the member can do, never the admin's console instructions.

mod console_support;

use console_support::{Backend, Browser, Console, emulator, some_mailbox_user};
use serde_json::json;
use std::time::Duration;
use tributary_core::{Audience, FailureCause, LinkErrorStatus};
use tributary_emulator::testing::ControlClient;
use tributary_store::{LinkStatus, LinkView, MemberRole};

const ADMIN: &str = "ops@hints.test";

/// Maud escapes what a page shows; hints name menu paths with `>` and `&`.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn wait_for(console: &Console, done: impl Fn(&[LinkView]) -> bool) -> Vec<LinkView> {
    for _ in 0..300 {
        let links = console.store().links(&console.tenant).await.unwrap();
        if !links.is_empty() && done(&links) {
            return links;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "links did not reach the expected statuses: {:?}",
        console.store().links(&console.tenant).await.unwrap()
    );
}

/// Ticks every link and presses the bulk Retry.
async fn retry_all(browser: &mut Browser, csrf: &str, links: &[LinkView]) {
    let ids: Vec<String> = links.iter().map(|l| l.id.0.to_string()).collect();
    let mut form = vec![("csrf", csrf), ("action", "retry")];
    form.extend(ids.iter().map(|id| ("link", id.as_str())));
    browser.submit("/users", &form).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_cause_shows_its_own_hint_to_the_admin_and_the_member() {
    let emulated = emulator(4, 4).await;
    let console = Console::start_with(Backend::Sqlite, &emulated, None)
        .await
        .expect("SQLite is always there");
    console
        .add_user(&console.tenant, ADMIN, MemberRole::Admin)
        .await;
    let control = ControlClient::new(&emulated.info.control_url);
    let member_email = some_mailbox_user(&emulated, &emulated.info.admin_email);
    console
        .add_user(&console.tenant, &member_email, MemberRole::Member)
        .await;

    let mut admin = Browser::new(&console.url);
    admin.sign_in(ADMIN).await;
    let csrf = admin.get("/setup").await.csrf();
    let key = serde_json::to_vec(&emulated.key_file).unwrap();
    admin
        .submit_multipart(
            "/setup/key",
            &[("csrf", &csrf), ("admin_email", &emulated.info.admin_email)],
            ("key_file", &key),
        )
        .await;
    admin.submit("/users/rebuild", &[("csrf", &csrf)]).await;
    admin
        .post("/setup/capture", &[("csrf", &csrf), ("enabled", "on")])
        .await;
    let links = wait_for(&console, |links| {
        links.iter().all(|l| l.status == LinkStatus::Idle)
    })
    .await;

    // Gmail turned off for the member: their link alone stops, with Gmail's cause.
    control
        .post(
            &format!("/users/{member_email}/mail-service"),
            json!({ "enabled": false }),
        )
        .await;
    retry_all(&mut admin, &csrf, &links).await;
    let links = wait_for(&console, |links| {
        links.iter().all(|l| {
            let expected = if l.mailbox == member_email {
                LinkStatus::Unauthorized
            } else {
                LinkStatus::Idle
            };
            l.status == expected
        })
    })
    .await;
    let failed = links.iter().find(|l| l.mailbox == member_email).unwrap();
    assert_eq!(failed.status_reason.as_deref(), Some("failedPrecondition"));
    let rows = admin.get("/users/rows").await.body;
    let gmail_fix = FailureCause::GmailNotEnabled.hint(Audience::Admin);
    assert!(rows.contains(&escaped(gmail_fix)), "{rows}");
    assert!(
        !rows.contains(&escaped(LinkErrorStatus::Unauthorized.fix_hint())),
        "not the status's catch-all: {rows}"
    );
    // The failed row offers Retry and Unlink, not Start.
    let id = failed.id.0;
    assert!(rows.contains(&format!("value=\"retry:{id}\"")), "{rows}");
    assert!(!rows.contains(&format!("value=\"start:{id}\"")), "{rows}");

    let mut member = Browser::new(&console.url);
    member.sign_in(&member_email).await;
    let own = member.get("/me").await.body;
    let member_part = FailureCause::GmailNotEnabled.hint(Audience::Member);
    assert!(own.contains(&escaped(member_part)), "{own}");
    assert!(
        !own.contains("Admin console"),
        "no admin instructions: {own}"
    );

    // The key deleted: every link stops, each with the key's fix, not Gmail's.
    let key_id = emulated.key_file.private_key_id.clone();
    control
        .delete(&format!("/service-account/keys/{key_id}"))
        .await;
    control.post("/tokens/expire", json!({})).await;
    control
        .post(
            &format!("/users/{member_email}/mail-service"),
            json!({ "enabled": true }),
        )
        .await;
    retry_all(&mut admin, &csrf, &links).await;
    wait_for(&console, |links| {
        links
            .iter()
            .all(|l| l.status == LinkStatus::AuthenticationError)
    })
    .await;
    // A cause that is the connection's is told once, in the banner above the table;
    // the rows only say they wait for the connection.
    let rows = admin.get("/users/rows").await.body;
    let page = admin.get("/users").await.body;
    let key_fix = FailureCause::KeyRejected.hint(Audience::Admin);
    assert_eq!(page.matches(&escaped(key_fix)).count(), 1, "{page}");
    assert_eq!(
        rows.matches("Waiting for the connection").count(),
        links.len(),
        "{rows}"
    );
    assert!(key_fix.contains("Upload a new key"));
    assert!(!page.contains(&escaped(gmail_fix)), "{page}");
    let own = member.get("/me").await.body;
    assert!(
        own.contains(&escaped(FailureCause::KeyRejected.hint(Audience::Member))),
        "{own}"
    );
    assert!(!own.contains("Upload a new key"), "{own}");
    console.stop();
}
