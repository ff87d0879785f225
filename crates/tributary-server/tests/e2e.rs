//! The browser walks of the admin console (`e2e/walk.js` for Google Workspace,
//! `e2e/walk_microsoft.js` for Microsoft 365): each test starts its emulator, the server
//! with a worker, and a real SMTP listener on loopback, creates the tenant's accounts,
//! runs the walk in Debian's Chromium through playwright-core, and checks the notice
//! mail arrived. Screenshots land in `target/e2e/` (Microsoft's in `target/e2e/microsoft/`).
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
use tributary_emulator::microsoft::{MicrosoftConfig, TenantSource};
use tributary_emulator::org::OrgConfig;
use tributary_store::MemberRole;

const ADMIN: &str = "it-admin@console.test";
const WALK_TIMEOUT: Duration = Duration::from_secs(300);

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e")
}

/// Fails with what to install when the walk cannot run.
fn require_browser() {
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
}

/// `dir`, created, without the screenshots of an earlier run (they would be mistaken
/// for this one's).
fn fresh_screenshots(dir: PathBuf) -> PathBuf {
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "png") {
            std::fs::remove_file(path).unwrap();
        }
    }
    dir
}

/// Runs a walk to its end, its output shown; fails with it when the walk fails.
async fn run_walk(mut walk: tokio::process::Command, shots: &Path) {
    let run = walk.kill_on_drop(true).output();
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
    require_browser();
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
    let shots = fresh_screenshots(screenshot_dir());
    let mut walk = tokio::process::Command::new("node");
    walk.arg(e2e_dir().join("walk.js"))
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
        .env("SCREENSHOT_DIR", &shots);
    run_walk(walk, &shots).await;

    let mails = smtp.received();
    assert_eq!(mails.len(), 1, "one capture notice: {mails:?}");
    assert_eq!(mails[0].to, [ADMIN]);
    // The walk ends with Disconnect: every link unlinked, the key gone, the capture kept.
    let store = console.store();
    let links = store.links(&console.tenant).await.unwrap();
    assert!(
        !links.is_empty()
            && links
                .iter()
                .all(|l| l.status == tributary_store::LinkStatus::Unlinked),
        "Disconnect unlinked every mailbox: {links:?}"
    );
    assert!(
        store
            .connection(&console.tenant, tributary_store::ConnectionKind::Google)
            .await
            .unwrap()
            .is_none(),
        "Disconnect forgot the key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_microsoft_365_walk_passes_in_chromium() {
    require_browser();
    let smtp = Arc::new(SmtpListener::start().await);
    let mailbox_url = serve_mailbox(Arc::clone(&smtp)).await;
    // Without consent: the walk grants it on the emulated Microsoft page.
    let microsoft = tributary_emulator::microsoft::start(MicrosoftConfig {
        organization: TenantSource::Generate(OrgConfig {
            users: 5,
            messages_per_user: 20,
            ..OrgConfig::default()
        }),
        consent: false,
        ..MicrosoftConfig::default()
    })
    .await
    .expect("the Microsoft emulator starts");
    let console = Console::start_microsoft(&microsoft, Some(smtp.config())).await;
    console
        .add_user(&console.tenant, ADMIN, MemberRole::Admin)
        .await;

    let shots = fresh_screenshots(screenshot_dir().join("microsoft"));
    let app = &microsoft.app;
    let mut walk = tokio::process::Command::new("node");
    walk.arg(e2e_dir().join("walk_microsoft.js"))
        .env("CONSOLE_URL", &console.url)
        .env("ADMIN_EMAIL", ADMIN)
        .env("PASSWORD", PASSWORD)
        .env("MS_TENANT_ID", &app.tenant_id)
        .env("MS_CLIENT_ID", &app.client_id)
        .env("MS_CLIENT_SECRET", &app.client_secret)
        .env("MS_BASE_URL", &microsoft.base_url)
        .env("MAILBOX_URL", &mailbox_url)
        .env("SCREENSHOT_DIR", &shots);
    run_walk(walk, &shots).await;

    let mails = smtp.received();
    assert_eq!(mails.len(), 1, "one capture notice: {mails:?}");
    let links = console.store().links(&console.tenant).await.unwrap();
    assert!(
        links
            .iter()
            .all(|l| l.status == tributary_store::LinkStatus::Idle),
        "every Microsoft mailbox synced: {links:?}"
    );
}
