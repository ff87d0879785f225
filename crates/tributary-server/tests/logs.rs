//! Log lines cannot be forged: text a member or Google controls (label names, provider
//! messages, addresses) is logged as an escaped field, so a line break in it never
//! starts a line of its own. The log is captured with a `tracing` subscriber writing
//! into a buffer, for a whole sync run on this thread.

mod api_support;

use api_support::{Backend, Server, TestStore, emulator, key_file, ordinary_user};
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};

const FORGED: &str = "FORGED ERROR admin logged in";

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

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// A label named `x\nFORGED ERROR …` (stored as it could be before labels were checked
/// against the mailbox) is synced: the sync warns that the mailbox has no such label and
/// that the run left a gap, and neither warning lets the name start a line.
// One thread, so that the subscriber set for it sees the server, the worker and sync.
#[tokio::test(flavor = "current_thread")]
async fn a_label_name_cannot_forge_a_log_line() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let emulated = emulator(2, 2).await;
    let member_email = ordinary_user(&emulated);
    let store = TestStore::open(Backend::Sqlite).await.unwrap();
    let server = Server::start(store, Some(&emulated), &member_email).await;
    let api = &server.admin;
    api.post(
        "/connection",
        &json!({ "key_file": key_file(&emulated), "admin_email": emulated.info.admin_email }),
    )
    .await
    .expect(200);
    api.post_empty("/delegation/rebuild").await.expect(200);
    let member = server
        .store()
        .member_by_address(&server.acme, &member_email)
        .await
        .unwrap()
        .unwrap();
    let forged_label = format!("x\n{FORGED}");
    server
        .store()
        .set_member_labels(&server.acme, member.id, &[forged_label], "test")
        .await
        .unwrap();
    api.put("/capture", &json!({ "enabled": true }))
        .await
        .expect(200);
    server.run_jobs().await;

    let log = captured.text();
    assert!(
        log.contains(r"x\nFORGED ERROR"),
        "the label is logged, escaped:\n{log}"
    );
    let forged: Vec<&str> = log
        .lines()
        .filter(|line| line.trim_start().starts_with("FORGED"))
        .collect();
    assert!(forged.is_empty(), "forged lines: {forged:?}\n{log}");
    server.stop().await;
}
