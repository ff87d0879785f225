//! `GET /api/v1/links/{id}`: one link's progress as an admin reads it while a backfill
//! runs: messages captured and listed against the provider's total, the worker holding
//! it (and, once that worker's heartbeat is stale, that it stopped and when its job is
//! taken over), and the link's recent runs. A member's token reads its own link only.

mod api_support;

use api_support::{Backend, Server, TestStore, emulator, ordinary_user};
use serde_json::Value;
use tributary_store::{LeaseScope, LinkId};

const SECOND_MS: i64 = 1_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap())
}

/// The server with the emulated organization connected and every link synced once.
async fn synced_server(backend: Backend) -> (Server, String) {
    let store = TestStore::open(backend).await.unwrap();
    let emulated = emulator(4, 30).await;
    let member_email = ordinary_user(&emulated);
    let server = Server::start(store, Some(&emulated), &member_email).await;
    server.connect_and_sync(&emulated).await;
    // The emulator must outlive the requests: leaked for the test's length.
    std::mem::forget(emulated);
    (server, member_email)
}

fn link_of<'a>(links: &'a Value, mailbox: &str) -> &'a Value {
    links["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["mailbox"] == mailbox)
        .unwrap_or_else(|| panic!("no link for {mailbox}: {links}"))
}

async fn progress_of_links(backend: Backend) {
    let (server, member_email) = synced_server(backend).await;
    let api = &server.admin;
    let links = api.get("/links").await.expect(200);
    let own = link_of(&links, &member_email);
    let id = own["id"].as_i64().unwrap();
    let other = links["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["mailbox"] != member_email.as_str())
        .unwrap()["id"]
        .as_i64()
        .unwrap();

    // A synced link: its backfill done, every listed message accounted for, one run.
    let shown = api.get(&format!("/links/{id}")).await.expect(200);
    assert_eq!(shown["status"], "idle", "{shown}");
    let progress = &shown["progress"];
    assert_eq!(progress["state"], "not_running", "{shown}");
    assert!(progress["worker"].is_null(), "{shown}");
    let backfill = &progress["backfill"];
    assert_eq!(backfill["done"], true, "{shown}");
    assert_eq!(backfill["listed"], own["counts"]["listed"], "{shown}");
    assert_eq!(backfill["captured"], own["counts"]["captured"], "{shown}");
    assert!(backfill["estimated_seconds_left"].is_null(), "{shown}");
    let captured = progress["captured"].as_u64().unwrap();
    assert!(captured > 0, "{shown}");
    assert!(
        captured >= own["counts"]["captured"].as_u64().unwrap(),
        "{shown}"
    );
    let runs = shown["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{shown}");
    assert_eq!(runs[0]["status"], "idle");
    assert!(runs[0]["ended_ms"].as_i64().unwrap() >= runs[0]["started_ms"].as_i64().unwrap());

    // The link runs again, leased by a worker that then stops renewing its heartbeat
    // (killed): the link says so, and when the job is taken over.
    let store = server.runtime.store();
    let now = now_ms();
    store
        .enqueue_job(&server.acme, "sync_link", Some(LinkId(id)), now)
        .await
        .unwrap();
    let leased = store
        .lease_job_in("worker-gone", now, 60 * SECOND_MS, LeaseScope::Any)
        .await
        .unwrap()
        .expect("the job is due");
    assert_eq!(leased.link, Some(LinkId(id)));
    store
        .worker_heartbeat("worker-gone", now - 50 * SECOND_MS, now + 10 * SECOND_MS)
        .await
        .unwrap();
    let shown = api.get(&format!("/links/{id}")).await.expect(200);
    let progress = &shown["progress"];
    assert_eq!(progress["state"], "worker_stopped", "{shown}");
    let worker = &progress["worker"];
    assert_eq!(worker["id"], "worker-gone", "{shown}");
    assert_eq!(worker["stopped"], true);
    assert_eq!(worker["last_heartbeat_ms"], now - 50 * SECOND_MS);
    assert_eq!(worker["taken_over_after_ms"], worker["lease_expires_ms"]);
    assert!(worker["lease_expires_ms"].as_i64().unwrap() >= now + 60 * SECOND_MS);

    // Alive again: running, not stopped.
    store
        .worker_heartbeat("worker-gone", now_ms(), now_ms() + 60 * SECOND_MS)
        .await
        .unwrap();
    let shown = api.get(&format!("/links/{id}")).await.expect(200);
    assert_eq!(shown["progress"]["state"], "running", "{shown}");
    assert_eq!(shown["progress"]["worker"]["stopped"], false, "{shown}");
    assert!(shown["progress"]["worker"]["taken_over_after_ms"].is_null());

    // A member reads its own link, not another's; an unknown id is not found, and
    // another tenant's token does not find this one.
    let mine = server.member.get(&format!("/links/{id}")).await.expect(200);
    assert_eq!(mine["mailbox"], member_email.as_str());
    server
        .member
        .get(&format!("/links/{other}"))
        .await
        .expect_error(403, "forbidden");
    api.get("/links/999999")
        .await
        .expect_error(404, "not_found");
    server
        .other_tenant
        .get(&format!("/links/{id}"))
        .await
        .expect_error(404, "not_found");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_links_progress_on_sqlite() {
    progress_of_links(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_links_progress_on_postgres() {
    progress_of_links(Backend::Postgres).await;
}
