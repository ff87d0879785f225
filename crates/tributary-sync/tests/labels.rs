//! Per-member extra labels (backfilled when enabled later, forgotten when removed) and
//! the per-label reconciliation that keeps a link with a silent loss from looking
//! healthy.

mod common;

use base64::Engine as _;
use common::{Emulated, Tenant, TestStore, connect_tenant, emulator, test_pacing};
use serde_json::json;
use sqlx::{AssertSqlSafe, Executor};
use std::collections::BTreeSet;
use tributary_emulator::server::EmulatorConfig;
use tributary_store::{Backend, LabelReconciliation, LinkId, LinkStatus, Store};
use tributary_sync::{LinkOutcome, SyncMode, SyncSummary};

const DAY_MS: i64 = 86_400_000;
/// The engine lists `after:` a day before the 365-day window.
const LISTED_DAYS: i64 = 366;

/// Runs every link; answers the outcomes by link.
async fn sync(tenant: &Tenant) -> Vec<LinkOutcome> {
    tenant.engine.sync_all().await.unwrap()
}

fn summary_of(outcomes: &[LinkOutcome], link: LinkId) -> SyncSummary {
    match outcomes.iter().find(|o| o.link() == link).unwrap() {
        LinkOutcome::Synced { summary, .. } => *summary,
        failed => panic!("the link failed: {failed:?}"),
    }
}

fn all_synced(outcomes: &[LinkOutcome]) {
    for outcome in outcomes {
        assert!(
            matches!(outcome, LinkOutcome::Synced { .. }),
            "a link failed: {outcome:?}"
        );
    }
}

/// Inserts a message from an outside sender into `mailbox` carrying only `labels`,
/// received `age_ms` ago; answers its Gmail id.
async fn insert(
    emulated: &Emulated,
    mailbox: &str,
    labels: &[&str],
    tag: &str,
    age_ms: i64,
) -> String {
    let raw = format!(
        "From: quinn@harbor-logistics.example\r\nTo: {mailbox}\r\nSubject: {tag}\r\n\
         Message-ID: <{tag}@harbor-logistics.example>\r\nDate: Mon, 1 Dec 2025 10:00:00 +0000\r\n\r\nHi\r\n"
    );
    let answer = emulated
        .control
        .post(
            "/messages/deliver",
            json!({
                "raw": base64::engine::general_purpose::STANDARD.encode(raw),
                "mailbox": mailbox,
                "labels": labels,
                "internal_date_ms": emulated.now_ms() - age_ms,
            }),
        )
        .await;
    answer["copies"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("delivered: {answer}"))
        .to_owned()
}

async fn set_labels(tenant: &Tenant, link: LinkId, labels: &[&str]) {
    let member = tenant.store.link_member(&tenant.id, link).await.unwrap();
    let labels: Vec<String> = labels.iter().map(|l| (*l).to_owned()).collect();
    tenant
        .store
        .set_member_labels(&tenant.id, member, &labels, "admin@test")
        .await
        .unwrap();
}

async fn rows(tenant: &Tenant, link: LinkId) -> Vec<LabelReconciliation> {
    tenant
        .store
        .label_reconciliation(&tenant.id, link)
        .await
        .unwrap()
}

fn row<'a>(rows: &'a [LabelReconciliation], label: &str) -> &'a LabelReconciliation {
    rows.iter()
        .find(|r| r.label.eq_ignore_ascii_case(label))
        .unwrap_or_else(|| panic!("no row for {label}: {rows:?}"))
}

/// The provider ids `mailbox`'s sightings hold, with their labels.
async fn sightings_of(tenant: &Tenant, mailbox: &str) -> Vec<(String, Vec<String>)> {
    tenant
        .store
        .activities(&tenant.id)
        .await
        .unwrap()
        .into_iter()
        .flat_map(|a| a.sightings)
        .filter(|(m, _, _)| m == mailbox)
        .map(|(_, id, labels)| (id, labels))
        .collect()
}

async fn status_of(store: &Store, tenant: &Tenant, link: LinkId) -> (LinkStatus, Option<String>) {
    let view = store
        .links(&tenant.id)
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.id == link)
        .unwrap();
    (view.status, view.provider_message)
}

#[tokio::test]
async fn a_label_enabled_later_is_backfilled_once_and_forgotten_when_removed() {
    let emulated = emulator(6, 40, EmulatorConfig::default()).await;
    let store = TestStore::sqlite().await;
    let tenant = connect_tenant(&emulated, &store.store, test_pacing()).await;
    let link = tenant.delegation.links[0].link;
    let mailbox = tenant.delegation.links[0].mailbox.clone();
    all_synced(&sync(&tenant).await);

    let label = emulated
        .control
        .post(
            &format!("/users/{mailbox}/labels"),
            json!({"name": "Projects"}),
        )
        .await;
    let label_id = label["id"].as_str().unwrap().to_owned();
    // Old mail only in the new label; one message listed (Gmail's `after:` is coarse)
    // but out of the window, one not even listed; and an inbox message (already
    // captured) that also gets the label.
    let mut projects = Vec::new();
    for (n, days) in [(1, 3), (2, 40), (3, 200)] {
        let tag = format!("project-{n}");
        projects.push(insert(&emulated, &mailbox, &[&label_id], &tag, days * DAY_MS).await);
    }
    let edge_age = 365 * DAY_MS + DAY_MS / 2;
    insert(&emulated, &mailbox, &[&label_id], "project-edge", edge_age).await;
    insert(
        &emulated,
        &mailbox,
        &[&label_id],
        "project-ancient",
        800 * DAY_MS,
    )
    .await;
    let inbox_id = sightings_of(&tenant, &mailbox)
        .await
        .into_iter()
        .find(|(_, labels)| labels.contains(&"INBOX".to_owned()))
        .expect("the mailbox has captured inbox mail")
        .0;
    emulated
        .control
        .post(
            &format!("/users/{mailbox}/messages/{inbox_id}/labels"),
            json!({"add": [label_id]}),
        )
        .await;

    // Not synced yet: nothing of it is captured.
    let before = tenant.store.count_activities(&tenant.id).await.unwrap();
    all_synced(&sync(&tenant).await);
    assert_eq!(
        tenant.store.count_activities(&tenant.id).await.unwrap(),
        before
    );

    // Enabled, with a policy label in another case (the same label, not listed again):
    // backfilled within the window.
    set_labels(&tenant, link, &[&label_id, "inbox"]).await;
    let outcomes = sync(&tenant).await;
    all_synced(&outcomes);
    let summary = summary_of(&outcomes, link);
    assert_eq!(summary.mode, SyncMode::Incremental);
    assert_eq!(summary.labels_backfilled, 1, "{summary:?}");
    assert_eq!(summary.added, 3, "{summary:?}");
    assert_eq!(summary.not_seen, 1, "the message at the edge: {summary:?}");
    assert_eq!(
        tenant.store.count_activities(&tenant.id).await.unwrap(),
        before + 3
    );
    let sightings = sightings_of(&tenant, &mailbox).await;
    for id in &projects {
        let (_, labels) = sightings.iter().find(|(s, _)| s == id).expect("captured");
        assert!(labels.contains(&label_id), "{labels:?}");
    }
    let inbox = sightings.iter().find(|(s, _)| *s == inbox_id).unwrap();
    assert!(
        inbox.1.contains(&label_id),
        "the label joins the sighting: {inbox:?}"
    );
    let distinct: BTreeSet<&String> = sightings.iter().map(|(id, _)| id).collect();
    assert_eq!(distinct.len(), sightings.len(), "a message sighted twice");
    let projects_row = rows(&tenant, link).await;
    let projects_row = row(&projects_row, &label_id);
    assert_eq!(projects_row.provider_total, Some(6));
    assert_eq!(projects_row.listed, 5, "{projects_row:?}");
    assert_eq!(
        (
            projects_row.captured,
            projects_row.not_seen,
            projects_row.unaccounted()
        ),
        (4, 1, 0),
        "{projects_row:?}"
    );

    // Backfilled once: the next run is incremental and adds nothing.
    let outcomes = sync(&tenant).await;
    let summary = summary_of(&outcomes, link);
    assert_eq!(
        (summary.labels_backfilled, summary.added),
        (0, 0),
        "{summary:?}"
    );
    assert_eq!(
        tenant.store.count_activities(&tenant.id).await.unwrap(),
        before + 3
    );

    // Removed: new mail in the label is no longer captured, captured mail stays.
    set_labels(&tenant, link, &[]).await;
    all_synced(&sync(&tenant).await);
    assert!(
        rows(&tenant, link)
            .await
            .iter()
            .all(|r| !r.label.eq_ignore_ascii_case(&label_id)),
        "the removed label's reconciliation is dropped"
    );
    let late = insert(&emulated, &mailbox, &[&label_id], "project-late", DAY_MS).await;
    all_synced(&sync(&tenant).await);
    assert_eq!(
        tenant.store.count_activities(&tenant.id).await.unwrap(),
        before + 3
    );

    // Enabled again: backfilled again, catching what arrived while it was off.
    set_labels(&tenant, link, &[&label_id]).await;
    let outcomes = sync(&tenant).await;
    let summary = summary_of(&outcomes, link);
    assert_eq!(
        (summary.labels_backfilled, summary.added),
        (1, 1),
        "{summary:?}"
    );
    assert!(
        sightings_of(&tenant, &mailbox)
            .await
            .iter()
            .any(|(id, _)| *id == late)
    );
    assert_eq!(
        tenant.store.count_activities(&tenant.id).await.unwrap(),
        before + 4
    );
    store.close().await;
}

/// After the default full sync every link has one row per policy label, the provider's
/// listing is fully accounted for, and the counts agree with the emulator's mailbox
/// and the store's sightings.
async fn full_sync_reconciles(store: &Store) {
    let emulated = emulator(6, 40, EmulatorConfig::default()).await;
    let tenant = connect_tenant(&emulated, store, test_pacing()).await;
    all_synced(&sync(&tenant).await);
    let listed_from_ms = (emulated.now_ms() - LISTED_DAYS * DAY_MS).div_euclid(1000) * 1000;
    let mut listed_total = 0;
    for link in &tenant.delegation.links {
        assert_eq!(
            status_of(store, &tenant, link.link).await.0,
            LinkStatus::Idle
        );
        let rows = rows(&tenant, link.link).await;
        let labels: Vec<&str> = rows.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["INBOX", "SENT"], "{}", link.mailbox);
        let sightings = sightings_of(&tenant, &link.mailbox).await;
        for row in &rows {
            let (in_window, total): (BTreeSet<String>, usize) = {
                let org = emulated.running.state.org();
                let messages = &org.mailboxes[&link.mailbox].messages;
                let labelled = || {
                    messages
                        .values()
                        .filter(|m| m.label_ids.contains(&row.label))
                };
                let in_window = labelled()
                    .filter(|m| !m.label_ids.contains("SPAM") && !m.label_ids.contains("TRASH"))
                    .filter(|m| m.internal_date_ms >= listed_from_ms)
                    .map(|m| m.id.clone())
                    .collect();
                (in_window, labelled().count())
            };
            let what = format!("{} {}: {row:?}", link.mailbox, row.label);
            assert_eq!(row.listed, in_window.len() as u64, "{what}");
            assert_eq!(row.provider_total, Some(total as u64), "{what}");
            assert_eq!(
                row.captured + row.excluded + row.not_seen + row.gone,
                row.listed,
                "{what}"
            );
            assert_eq!(row.unaccounted(), 0, "{what}");
            // Captured copies are sightings; so are internal-looking copies attached to
            // an activity another mailbox captured, which count as excluded.
            let sighted = sightings
                .iter()
                .filter(|(id, _)| in_window.contains(id))
                .count() as u64;
            assert!(row.captured <= sighted, "{sighted} sighted: {what}");
            assert!(
                sighted <= row.captured + row.excluded,
                "{sighted} sighted: {what}"
            );
            listed_total += row.listed;
        }
    }
    assert!(listed_total > 0, "the organization has mail");
}

#[tokio::test]
async fn full_sync_reconciles_on_sqlite() {
    let store = TestStore::sqlite().await;
    full_sync_reconciles(&store.store).await;
    store.close().await;
}

#[tokio::test]
async fn full_sync_reconciles_on_postgres() {
    let Some(store) = TestStore::postgres().await else {
        return;
    };
    full_sync_reconciles(&store.store).await;
    store.close().await;
}

/// Makes the store silently drop the sighting of `provider_id`, as a defect would.
async fn drop_sightings_of(store: &Store, provider_id: &str) {
    let sql = match store.backend() {
        Backend::Sqlite => vec![format!(
            "CREATE TRIGGER lose_one BEFORE INSERT ON activity_sightings
             WHEN NEW.provider_message_id = '{provider_id}' BEGIN SELECT RAISE(IGNORE); END"
        )],
        Backend::Postgres => vec![
            format!(
                "CREATE OR REPLACE FUNCTION lose_one() RETURNS trigger AS $$ BEGIN
                     IF NEW.provider_message_id = '{provider_id}' THEN RETURN NULL; END IF;
                     RETURN NEW; END $$ LANGUAGE plpgsql"
            ),
            "CREATE TRIGGER lose_one BEFORE INSERT ON activity_sightings
             FOR EACH ROW EXECUTE FUNCTION lose_one()"
                .to_owned(),
        ],
    };
    for statement in sql {
        // Test-only SQL; the id is a Gmail id of hex digits.
        store
            .pool()
            .execute(AssertSqlSafe(statement))
            .await
            .unwrap();
    }
}

async fn stop_dropping(store: &Store) {
    let sql = match store.backend() {
        Backend::Sqlite => "DROP TRIGGER lose_one",
        Backend::Postgres => "DROP TRIGGER lose_one ON activity_sightings",
    };
    store.pool().execute(sql).await.unwrap();
}

fn failure_of(outcomes: &[LinkOutcome], link: LinkId) -> String {
    match outcomes.iter().find(|o| o.link() == link).unwrap() {
        LinkOutcome::Failed { message, .. } => message.clone(),
        synced => panic!("the link synced: {synced:?}"),
    }
}

/// A captured message the store does not hold leaves the link in `linkage_error`
/// with the gap named, in a full sync and in an incremental one; once the store keeps
/// it again the retry lists the label again and the link is idle.
async fn a_gap_is_not_healthy(store: &Store) {
    let emulated = emulator(4, 30, EmulatorConfig::default()).await;
    let tenant = connect_tenant(&emulated, store, test_pacing()).await;
    let link = tenant.delegation.links[0].link;
    let mailbox = tenant.delegation.links[0].mailbox.clone();
    let lost = insert(&emulated, &mailbox, &["INBOX"], "lost-1", 2 * DAY_MS).await;
    drop_sightings_of(store, &lost).await;

    let outcomes = sync(&tenant).await;
    let message = failure_of(&outcomes, link);
    let inbox = row(&rows(&tenant, link).await, "INBOX").clone();
    assert_eq!(inbox.unaccounted(), 1, "{inbox:?}");
    assert_eq!(
        message,
        format!(
            "INBOX: 1 of {} messages listed were not captured",
            inbox.listed
        )
    );
    assert_eq!(
        status_of(store, &tenant, link).await,
        (LinkStatus::LinkageError, Some(message))
    );
    for other in tenant.delegation.links.iter().skip(1) {
        assert_eq!(
            status_of(store, &tenant, other.link).await.0,
            LinkStatus::Idle
        );
    }

    // Fixed: the retry lists INBOX again, captures the sighting, and the link is healthy.
    stop_dropping(store).await;
    let summary = summary_of(&sync(&tenant).await, link);
    // The activity was stored, only the sighting was lost.
    assert_eq!(
        (
            summary.labels_backfilled,
            summary.added,
            summary.already_known > 0
        ),
        (1, 0, true),
        "{summary:?}"
    );
    assert!(
        sightings_of(&tenant, &mailbox)
            .await
            .iter()
            .any(|(id, _)| *id == lost)
    );
    assert_eq!(row(&rows(&tenant, link).await, "INBOX").unaccounted(), 0);
    assert_eq!(
        status_of(store, &tenant, link).await,
        (LinkStatus::Idle, None)
    );

    // The same loss in an incremental run, and the same recovery.
    let also_lost = insert(&emulated, &mailbox, &["INBOX"], "lost-2", DAY_MS).await;
    drop_sightings_of(store, &also_lost).await;
    let message = failure_of(&sync(&tenant).await, link);
    assert_eq!(
        message,
        "INBOX: 1 of 1 messages history named were not captured"
    );
    assert_eq!(row(&rows(&tenant, link).await, "INBOX").unaccounted(), 1);
    assert_eq!(
        status_of(store, &tenant, link).await.0,
        LinkStatus::LinkageError
    );
    stop_dropping(store).await;
    let summary = summary_of(&sync(&tenant).await, link);
    // The activity was stored, only the sighting was lost.
    assert_eq!(
        (
            summary.labels_backfilled,
            summary.added,
            summary.already_known > 0
        ),
        (1, 0, true),
        "{summary:?}"
    );
    assert!(
        sightings_of(&tenant, &mailbox)
            .await
            .iter()
            .any(|(id, _)| *id == also_lost)
    );
    assert_eq!(row(&rows(&tenant, link).await, "INBOX").unaccounted(), 0);
    assert_eq!(
        status_of(store, &tenant, link).await,
        (LinkStatus::Idle, None)
    );
}

#[tokio::test]
async fn a_gap_is_not_healthy_on_sqlite() {
    let store = TestStore::sqlite().await;
    a_gap_is_not_healthy(&store.store).await;
    store.close().await;
}

#[tokio::test]
async fn a_gap_is_not_healthy_on_postgres() {
    let Some(store) = TestStore::postgres().await else {
        return;
    };
    a_gap_is_not_healthy(&store.store).await;
    store.close().await;
}

#[tokio::test]
async fn a_label_the_mailbox_lacks_is_reported() {
    let emulated = emulator(3, 20, EmulatorConfig::default()).await;
    let store = TestStore::sqlite().await;
    let tenant = connect_tenant(&emulated, &store.store, test_pacing()).await;
    let link = tenant.delegation.links[0].link;
    set_labels(&tenant, link, &["Label_999"]).await;
    let outcomes = sync(&tenant).await;
    assert_eq!(
        failure_of(&outcomes, link),
        "Label_999: the mailbox has no such label"
    );
    // The policy's labels are still synced and reconciled.
    let rows = rows(&tenant, link).await;
    assert_eq!(row(&rows, "INBOX").unaccounted(), 0);
    assert_eq!(row(&rows, "SENT").unaccounted(), 0);
    store.close().await;
}
