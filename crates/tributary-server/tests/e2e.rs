//! The browser walk of the admin console (`e2e/walk.js`): this test starts the
//! emulator, the server with a worker, and a real SMTP listener on loopback, creates
//! the tenant's admin and member accounts, runs the walk in Debian's Chromium through
//! playwright-core, and checks the notice mail arrived. Screenshots land in
//! `target/e2e/`.
//!
//! Needs `npm ci --prefix crates/tributary-server/e2e` once, and `/usr/bin/chromium`.

mod console_support;

use axum::Json;
use axum::routing::get;
use console_support::{Console, PASSWORD, SmtpListener, emulator, some_mailbox_user};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tributary_store::MemberRole;

const ADMIN: &str = "it-admin@console.test";
const WALK_TIMEOUT: Duration = Duration::from_secs(300);

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e")
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    target.join("e2e")
}

/// Serves what the SMTP listener received as JSON, so the walk can see the mail
/// arrive right after it enables capture.
async fn serve_mailbox(smtp: Arc<SmtpListener>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mail", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/mail",
        get(move || {
            let smtp = Arc::clone(&smtp);
            async move {
                Json(
                    smtp.received()
                        .into_iter()
                        .map(|m| serde_json::json!({"from": m.from, "to": m.to, "data": m.data}))
                        .collect::<Vec<_>>(),
                )
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_console_walk_passes_in_chromium() {
    let playwright = e2e_dir().join("node_modules/playwright-core");
    assert!(
        playwright.exists(),
        "playwright-core is not installed at {}: run `npm ci --prefix crates/tributary-server/e2e`",
        playwright.display()
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: install Debian's chromium (`apt-get install -y chromium`)"
    );

    let smtp = Arc::new(SmtpListener::start().await);
    let mailbox_url = serve_mailbox(Arc::clone(&smtp)).await;
    let emulated = emulator(6, 25).await;
    let console = Console::start(&emulated, Some(smtp.config())).await;
    console
        .add_user(&console.tenant, ADMIN, MemberRole::Admin)
        .await;
    let member = some_mailbox_user(&emulated, &emulated.info.admin_email);
    console
        .add_user(&console.tenant, &member, MemberRole::Member)
        .await;

    let scratch = tempfile::tempdir().unwrap();
    let key_file = scratch.path().join("service-account.json");
    std::fs::write(
        &key_file,
        serde_json::to_vec_pretty(&emulated.key_file).unwrap(),
    )
    .unwrap();
    let scopes: Vec<&str> = tributary_google::scopes::ALL.to_vec();
    let shots = screenshot_dir();
    std::fs::create_dir_all(&shots).unwrap();
    // Screenshots of an earlier run would be mistaken for this one's.
    for entry in std::fs::read_dir(&shots).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "png") {
            std::fs::remove_file(path).unwrap();
        }
    }

    let run = tokio::process::Command::new("node")
        .arg(e2e_dir().join("walk.js"))
        .env("CONSOLE_URL", &console.url)
        .env("ADMIN_EMAIL", ADMIN)
        .env("MEMBER_EMAIL", &member)
        .env("PASSWORD", PASSWORD)
        .env("KEY_FILE", &key_file)
        .env("WORKSPACE_ADMIN", &emulated.info.admin_email)
        .env("EXPECTED_CLIENT_ID", &emulated.key_file.client_id)
        .env("EXPECTED_SCOPES", scopes.join(","))
        .env("MAILBOX_URL", &mailbox_url)
        .env("CONTROL_URL", &emulated.info.control_url)
        .env("SCREENSHOT_DIR", &shots)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(WALK_TIMEOUT, run)
        .await
        .expect("the walk finishes within five minutes")
        .expect("node runs (is Node.js installed?)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "the browser walk failed ({}); screenshots in {}\n{stdout}\n{stderr}",
        output.status,
        shots.display()
    );

    let mails = smtp.received();
    assert_eq!(mails.len(), 1, "one capture notice: {mails:?}");
    assert_eq!(mails[0].to, [ADMIN]);
    let links = console.store().links(&console.tenant).await.unwrap();
    assert_eq!(
        links
            .iter()
            .filter(|l| l.status == tributary_store::LinkStatus::Unlinked)
            .count(),
        1,
        "the walk unlinked exactly one mailbox: {links:?}"
    );
}
