//! After a full sync, new mail arrives through history; a gone history cursor falls
//! back to a full resync without duplicates.

mod common;

use base64::Engine as _;
use common::{Emulated, Tenant, TestStore, connect_tenant, emulator, test_pacing};
use serde_json::json;
use tributary_emulator::server::EmulatorConfig;
use tributary_store::ActivityView;
use tributary_sync::{LinkOutcome, SyncMode, SyncSummary};

const DAY_MS: i64 = 86_400_000;

/// An RFC 3339 instant `days` before the organization's "now".
fn days_ago(emulated: &Emulated, days: i64) -> String {
    chrono::DateTime::from_timestamp_millis(emulated.now_ms() - days * DAY_MS)
        .unwrap()
        .to_rfc3339()
}

/// Runs every link; answers each link's summary by mailbox.
async fn sync(tenant: &Tenant) -> Vec<(String, SyncSummary)> {
    let outcomes = tenant.engine.sync_all().await.unwrap();
    let mailboxes = tenant.delegation.links.clone();
    outcomes
        .into_iter()
        .map(|outcome| match outcome {
            LinkOutcome::Synced { link, summary } => {
                let mailbox = mailboxes.iter().find(|l| l.link == link).unwrap();
                (mailbox.mailbox.clone(), summary)
            }
            failed => panic!("a link failed: {failed:?}"),
        })
        .collect()
}

fn summary_of<'a>(summaries: &'a [(String, SyncSummary)], mailbox: &str) -> &'a SyncSummary {
    &summaries.iter().find(|(m, _)| m == mailbox).unwrap().1
}

async fn activity(tenant: &Tenant, key: &str) -> Option<ActivityView> {
    tenant
        .store
        .activities(&tenant.id)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.dedupe_key == key)
}

fn mailboxes(activity: &ActivityView) -> Vec<String> {
    let mut mailboxes: Vec<String> = activity.sightings.iter().map(|s| s.0.clone()).collect();
    mailboxes.dedup();
    mailboxes
}

async fn deliver(emulated: &Emulated, to: &[&str], message_id: &str) {
    let answer = emulated
        .control
        .post(
            "/messages/deliver",
            json!({
                "from": "Paula Partner <paula@northwind-trading.example>",
                "to": to,
                "subject": "Order follow-up",
                "body": "Any news?",
                "message_id": format!("<{message_id}>"),
                "date": days_ago(emulated, 1),
            }),
        )
        .await;
    assert_eq!(
        answer["copies"].as_array().unwrap().len(),
        to.len(),
        "{answer}"
    );
}

#[tokio::test]
async fn new_mail_arrives_once_and_a_gone_cursor_resyncs_without_duplicates() {
    let emulated = emulator(6, 40, EmulatorConfig::default()).await;
    let store = TestStore::sqlite().await;
    let tenant = connect_tenant(&emulated, &store.store, test_pacing()).await;
    sync(&tenant).await;
    let full = tenant.store.count_activities(&tenant.id).await.unwrap();
    let first = tenant.delegation.links[0].mailbox.clone();
    let second = tenant.delegation.links[1].mailbox.clone();

    deliver(&emulated, &[&first], "incr-1@northwind-trading.example").await;
    let summaries = sync(&tenant).await;
    assert_eq!(summary_of(&summaries, &first).mode, SyncMode::Incremental);
    assert_eq!(summary_of(&summaries, &first).added, 1);
    assert_eq!(summary_of(&summaries, &second).added, 0);
    assert_eq!(
        tenant.store.count_activities(&tenant.id).await.unwrap(),
        full + 1
    );
    let one = activity(&tenant, "mid:incr-1@northwind-trading.example")
        .await
        .unwrap();
    assert_eq!(mailboxes(&one), std::slice::from_ref(&first));
    assert_eq!(one.direction, "inbound");

    deliver(
        &emulated,
        &[&first, &second],
        "incr-2@northwind-trading.example",
    )
    .await;
    sync(&tenant).await;
    assert_eq!(
        tenant.store.count_activities(&tenant.id).await.unwrap(),
        full + 2
    );
    let two = activity(&tenant, "mid:incr-2@northwind-trading.example")
        .await
        .unwrap();
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort();
    assert_eq!(mailboxes(&two), expected);
    let members: Vec<&str> = two
        .participants
        .iter()
        .filter(|p| p.kind == "member")
        .map(|p| p.address.as_str())
        .collect();
    assert_eq!(members.len(), 2, "{:?}", two.participants);

    emulated
        .control
        .post(&format!("/users/{first}/history/expire"), json!({}))
        .await;
    deliver(&emulated, &[&first], "incr-3@northwind-trading.example").await;
    let summaries = sync(&tenant).await;
    let resync = summary_of(&summaries, &first);
    assert_eq!(resync.mode, SyncMode::Resync);
    assert_eq!(resync.added, 1);
    assert!(resync.already_known > 0, "{resync:?}");
    assert_eq!(summary_of(&summaries, &second).mode, SyncMode::Incremental);
    assert_eq!(
        tenant.store.count_activities(&tenant.id).await.unwrap(),
        full + 3
    );

    // And after the resync, incremental again.
    let summaries = sync(&tenant).await;
    assert_eq!(summary_of(&summaries, &first).mode, SyncMode::Incremental);
    store.close().await;
}

#[tokio::test]
async fn a_message_gaining_a_synced_label_is_captured() {
    let emulated = emulator(6, 40, EmulatorConfig::default()).await;
    let store = TestStore::sqlite().await;
    let tenant = connect_tenant(&emulated, &store.store, test_pacing()).await;
    sync(&tenant).await;
    let before = tenant.store.count_activities(&tenant.id).await.unwrap();
    let mailbox = tenant.delegation.links[0].mailbox.clone();
    let label = emulated
        .control
        .post(
            &format!("/users/{mailbox}/labels"),
            json!({"name": "Parked"}),
        )
        .await;
    let label_id = label["id"].as_str().unwrap().to_owned();
    let raw = format!(
        "From: quinn@harbor-logistics.example\r\nTo: {mailbox}\r\nSubject: Parked\r\n\
         Message-ID: <parked-1@harbor-logistics.example>\r\nDate: Mon, 1 Dec 2025 10:00:00 +0000\r\n\r\nHi\r\n"
    );
    let delivered = emulated
        .control
        .post(
            "/messages/deliver",
            json!({
                "raw": base64::engine::general_purpose::STANDARD.encode(raw),
                "mailbox": mailbox,
                "labels": [label_id],
                "internal_date_ms": emulated.now_ms() - 2 * DAY_MS,
            }),
        )
        .await;
    let id = delivered["copies"][0]["id"].as_str().unwrap().to_owned();

    // Outside the synced labels: not captured.
    sync(&tenant).await;
    assert_eq!(
        tenant.store.count_activities(&tenant.id).await.unwrap(),
        before
    );

    emulated
        .control
        .post(
            &format!("/users/{mailbox}/messages/{id}/labels"),
            json!({"add": ["INBOX"]}),
        )
        .await;
    let summaries = sync(&tenant).await;
    assert_eq!(summary_of(&summaries, &mailbox).added, 1);
    let parked = activity(&tenant, "mid:parked-1@harbor-logistics.example")
        .await
        .unwrap();
    assert_eq!(parked.sightings[0].1, id);
    assert!(parked.sightings[0].2.contains(&"INBOX".to_owned()));
    store.close().await;
}
