//! The whole organization's backfill as an admin reads it: `GET /api/v1/progress`
//! (mailboxes by state, messages listed and captured, the time left at the quota) and
//! the Users page (the organization's line above the table, a backfilling row's counts,
//! a row whose worker stopped). Links are put in each state through the store: a synced
//! organization, then a backfill cursor part way (as the engine commits it with a page),
//! a failure, a new mailbox not started, an unlinked one and a job held by a worker
//! that stopped. Admin only, scoped to the token's tenant.

mod api_support;
mod console_support;

use api_support::{ACME_ADMIN, Backend, PASSWORD, Server, TestStore, emulator, ordinary_user};
use console_support::Browser;
use serde_json::{Value, json};
use tributary_core::LinkErrorStatus;
use tributary_store::{
    CapturePage, ConnectionKind, CursorAdvance, LeaseScope, LinkId, LinkStatus, MemberRole,
};

const SECOND_MS: i64 = 1_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap())
}

/// A Gmail backfill cursor part way: `(provider_total, listed, captured)` per label.
fn partial_cursor(labels: &[(u64, u64, u64)]) -> CursorAdvance {
    let counts: Vec<Value> = labels
        .iter()
        .map(|(total, listed, captured)| {
            json!({ "provider_total": total, "listed": listed, "captured": captured,
                "excluded": listed - captured, "not_seen": 0, "gone": 0 })
        })
        .collect();
    let value = json!({ "history_id": 1, "labels": ["INBOX", "SENT"], "label": 0,
        "page_token": "next", "counts": counts, "done": false });
    CursorAdvance {
        stream: "gmail.full_sync".to_owned(),
        value: value.to_string(),
    }
}

fn count(value: &Value, field: &str) -> u64 {
    value["counts"][field].as_u64().unwrap()
}

async fn organization_progress(backend: Backend) {
    let store = TestStore::open(backend).await.unwrap();
    let emulated = emulator(8, 12).await;
    let member_email = ordinary_user(&emulated);
    let server = Server::start(store, Some(&emulated), &member_email).await;
    server.connect_and_sync(&emulated).await;
    std::mem::forget(emulated);
    let api = &server.admin;
    let links = api.get("/links").await.expect(200)["links"]
        .as_array()
        .unwrap()
        .clone();
    let n = links.len();
    assert!(n >= 4, "{links:?}");

    // Every mailbox synced: nothing left, no estimate.
    let synced = api.get("/progress").await.expect(200);
    let mailboxes = &synced["mailboxes"];
    assert_eq!(mailboxes["total"], n, "{synced}");
    assert_eq!(mailboxes["backfilled"], n, "{synced}");
    assert_eq!(
        (&mailboxes["backfilling"], &mailboxes["not_started"]),
        (&json!(0), &json!(0)),
        "{synced}"
    );
    let listed: u64 = links.iter().map(|l| count(l, "listed")).sum();
    let captured: u64 = links.iter().map(|l| count(l, "captured")).sum();
    assert!(listed > 0, "{synced}");
    assert_eq!(synced["messages"]["listed"], listed, "{synced}");
    assert_eq!(synced["messages"]["captured"], captured, "{synced}");
    assert_eq!(synced["messages"]["expected_total"], listed, "{synced}");
    assert!(synced["estimated_seconds_left"].is_null(), "{synced}");

    // One mailbox backfills again, held by a worker that stopped; one failed part way;
    // one is unlinked; a new one has not started.
    let id = |i: usize| LinkId(links[i]["id"].as_i64().unwrap());
    let (running, failed, unlinked) = (id(0), id(1), id(2));
    let db = server.store();
    let acme = &server.acme;
    let empty = CapturePage {
        sightings: Vec::new(),
    };
    let cursor = partial_cursor(&[(9_000, 1_000, 900), (1_000, 0, 0)]);
    db.commit_page(acme, running, &empty, Some(&cursor))
        .await
        .unwrap();
    db.set_link_status(acme, running, LinkStatus::Syncing, "test")
        .await
        .unwrap();
    let now = now_ms();
    db.enqueue_job(acme, "sync_link", Some(running), now)
        .await
        .unwrap();
    let leased = db
        .lease_job_in("worker-gone", now, 60 * SECOND_MS, LeaseScope::Any)
        .await
        .unwrap()
        .expect("the job is due");
    assert_eq!(leased.link, Some(running));
    db.worker_heartbeat("worker-gone", now - 50 * SECOND_MS, now + 10 * SECOND_MS)
        .await
        .unwrap();
    let cursor = partial_cursor(&[(500, 100, 100)]);
    db.commit_page(acme, failed, &empty, Some(&cursor))
        .await
        .unwrap();
    db.record_link_failure(
        acme,
        failed,
        LinkErrorStatus::LinkageError,
        "Backend Error",
        None,
    )
    .await
    .unwrap();
    api.post_empty(&format!("/links/{}/unlink", unlinked.0))
        .await
        .expect(200);
    let domain = member_email.split('@').nth(1).unwrap();
    let newcomer = format!("newcomer@{domain}");
    let member = db
        .add_member(acme, &newcomer, &[], MemberRole::Member)
        .await
        .unwrap();
    db.link_mailbox(acme, member, &newcomer, ConnectionKind::Google)
        .await
        .unwrap();

    let shown = api.get("/progress").await.expect(200);
    let mailboxes = &shown["mailboxes"];
    assert_eq!(mailboxes["total"], n, "one unlinked, one new: {shown}");
    assert_eq!(mailboxes["backfilled"], n - 3, "{shown}");
    assert_eq!(mailboxes["backfilling"], 1, "{shown}");
    assert_eq!(mailboxes["not_started"], 1, "{shown}");
    assert_eq!(mailboxes["error"], 1, "{shown}");
    assert_eq!(mailboxes["worker_stopped"], 1, "{shown}");
    let still_done = &links[3..];
    let done_listed: u64 = still_done.iter().map(|l| count(l, "listed")).sum();
    let done_captured: u64 = still_done.iter().map(|l| count(l, "captured")).sum();
    let messages = &shown["messages"];
    assert_eq!(messages["listed"], done_listed + 1_000 + 100, "{shown}");
    assert_eq!(messages["captured"], done_captured + 900 + 100, "{shown}");
    assert_eq!(
        messages["expected_total"],
        done_listed + 10_000 + 500,
        "{shown}"
    );
    // 9,000 messages left × 5 units at 15,000 units a minute per user: 3 minutes
    // (the project's budget, 80 times larger, is not the bound for one mailbox).
    assert_eq!(shown["estimated_seconds_left"], 180, "{shown}");
    assert_eq!(shown["estimated_mailboxes"], 1, "{shown}");
    assert_eq!(shown["budget"]["user_units_per_minute"], 15_000, "{shown}");

    // The link's own progress reads the same backfill.
    let link = api.get(&format!("/links/{}", running.0)).await.expect(200);
    assert_eq!(link["progress"]["backfill"]["estimated_seconds_left"], 180);
    assert_eq!(link["progress"]["state"], "worker_stopped", "{link}");

    // Admins only; another tenant sees its own (empty) organization.
    server
        .member
        .get("/progress")
        .await
        .expect_error(403, "forbidden");
    server
        .anonymous
        .get("/progress")
        .await
        .expect_error(401, "unauthorized");
    let other = server.other_tenant.get("/progress").await.expect(200);
    assert_eq!(other["mailboxes"]["total"], 0, "{other}");
    assert_eq!(other["messages"]["listed"], 0, "{other}");

    // The Users page: the organization's line, the backfilling row, the stopped worker.
    let mut browser = Browser::new(&server.url);
    let csrf = browser.get("/signin").await.csrf();
    let signed = browser
        .post(
            "/signin",
            &[
                ("email", ACME_ADMIN),
                ("password", PASSWORD),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let page = browser.get("/users").await;
    assert_eq!(page.status, 200);
    let line = format!(
        "{} of {n} mailboxes backfilled · {} of ~{} messages listed · about 3 min left at the quota",
        n - 3,
        thousands(done_listed + 1_100),
        thousands(done_listed + 10_500)
    );
    assert!(page.body.contains("Organization backfill"), "{}", page.body);
    assert!(page.body.contains(&line), "{line} in {}", page.body);
    assert!(page.body.contains("1 stopped by an error"), "{}", page.body);
    let rows = browser.get("/users/rows").await.body;
    assert!(
        rows.contains("Backfilling: 1,000 of ~10,000 listed, 900 captured · about 3 min left"),
        "{rows}"
    );
    assert!(
        rows.contains("Worker <code>worker-gone</code> stopped at"),
        "{rows}"
    );
    assert!(rows.contains("another worker takes over after"), "{rows}");
    // The live refresh brings the line with the banner.
    let banner = browser.get("/users/banner").await.body;
    assert!(banner.contains(&line), "{banner}");

    // All backfilled again: the line goes.
    for link in [running, failed] {
        let done = json!({ "counts": [], "done": true }).to_string();
        let cursor = CursorAdvance {
            stream: "gmail.full_sync".to_owned(),
            value: done,
        };
        db.commit_page(acme, link, &empty, Some(&cursor))
            .await
            .unwrap();
    }
    let newcomer_link = db
        .links(acme)
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.mailbox == newcomer)
        .unwrap()
        .id;
    db.set_link_status(acme, newcomer_link, LinkStatus::Unlinked, "test")
        .await
        .unwrap();
    let banner = browser.get("/users/banner").await.body;
    assert!(!banner.contains("Organization backfill"), "{banner}");
    server.stop().await;
}

fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut text = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organization_progress_on_sqlite() {
    organization_progress(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organization_progress_on_postgres() {
    organization_progress(Backend::Postgres).await;
}
