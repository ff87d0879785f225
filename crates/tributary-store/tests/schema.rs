//! The schema on both backends: migrations, immutability triggers, sealed credentials.

mod common;

use common::{Acme, DATELESS, OUTBOUND};
use serde_json::json;
use sqlx::{AssertSqlSafe, Executor, Row};
use tributary_store::{
    Backend, CapturePage, ConnectionKind, MasterKey, SecretBytes, Store, StoreError,
};

on_both_backends!(
    migrations_create_every_table,
    database_refuses_changes_to_captured_activity,
    database_permits_only_lowering_a_receipt_time,
    connection_credentials_are_sealed_per_tenant,
);

/// Migration files per backend (the same numbers on both), each recorded in
/// `_sqlx_migrations`.
fn migration_files() -> i64 {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite");
    let count = std::fs::read_dir(dir)
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count();
    i64::try_from(count).unwrap()
}

const TABLES: [&str; 22] = [
    "tenants",
    "connections",
    "members",
    "member_addresses",
    "mailbox_links",
    "cursors",
    "activities",
    "activity_participants",
    "activity_sightings",
    "held_sightings",
    "contacts",
    "companies",
    "relationships",
    "jobs",
    "audit_events",
    "member_labels",
    "label_reconciliations",
    "delegation_results",
    "users",
    "sessions",
    "api_tokens",
    "_sqlx_migrations",
];

async fn migrations_create_every_table(store: Store) {
    for table in TABLES {
        let row = store
            .pool()
            .fetch_one(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"));
        let rows: i64 = row.try_get(0).unwrap();
        let expected = if table == "_sqlx_migrations" {
            migration_files()
        } else {
            0
        };
        assert_eq!(rows, expected, "{table}");
    }
}

#[tokio::test]
async fn sqlite_file_is_created_in_wal_mode_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data dir #1?%").join("tributary.db");
    assert!(!path.exists());
    let url = format!("sqlite://{}", path.display());
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    assert!(path.is_file(), "the database is not at {}", path.display());
    let mode: String = store
        .pool()
        .fetch_one("PRAGMA journal_mode")
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(mode, "wal");
    let foreign_keys: i64 = store
        .pool()
        .fetch_one("PRAGMA foreign_keys")
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(foreign_keys, 1);
    let acme = Acme::create(&store, "acme").await;
    let page = CapturePage {
        sightings: vec![acme.sighting(OUTBOUND, "m1", &["SENT"])],
    };
    store
        .commit_page(&acme.tenant, acme.ann_link, &page, None)
        .await
        .unwrap();
    store.close().await;
    let reopened = Store::open(path.to_str().unwrap()).await.unwrap();
    assert_eq!(reopened.count_activities(&acme.tenant).await.unwrap(), 1);
    reopened.close().await;
}

async fn database_refuses_changes_to_captured_activity(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let page = CapturePage {
        sightings: vec![acme.sighting(OUTBOUND, "m1", &["SENT"])],
    };
    store
        .commit_page(&acme.tenant, acme.ann_link, &page, None)
        .await
        .unwrap();
    let before = store.activities(&acme.tenant).await.unwrap();
    let mut refused = vec![
        "UPDATE activities SET subject = 'changed'",
        "UPDATE activities SET time_ms = 0",
        "UPDATE activities SET dedupe_key = 'mid:other'",
        "UPDATE activities SET thread_key = NULL",
        "UPDATE activities SET direction = 'inbound'",
        "UPDATE activities SET tenant_id = 'acme'",
        "DELETE FROM activities",
        "UPDATE activity_participants SET role = 'bcc' WHERE role = 'cc'",
        "UPDATE activity_participants SET member_id = NULL",
        "DELETE FROM activity_participants",
    ];
    if store.backend() == Backend::Postgres {
        refused.extend([
            "TRUNCATE activity_participants",
            "TRUNCATE activities CASCADE",
        ]);
    }
    for statement in refused {
        match store.pool().execute(statement).await {
            Ok(_) => panic!("the database accepted: {statement}"),
            Err(error) => assert!(
                error.to_string().contains("immutable"),
                "{statement} failed for another reason: {error}"
            ),
        }
    }
    assert_eq!(store.activities(&acme.tenant).await.unwrap(), before);
    // Participants may still be added: a Bcc only the sender's copy carries.
    let activity_id = before[0].id;
    store
        .pool()
        .execute(
            sqlx::query(
                "INSERT INTO activity_participants (tenant_id, activity_id, address, role, kind)
                 VALUES ('acme', $1, 'zed@acme.com', 'bcc', 'internal')",
            )
            .bind(activity_id),
        )
        .await
        .unwrap();
}

/// Runs `statement`, which the database must refuse as a change of captured activity.
async fn assert_refused(store: &Store, statement: &str) {
    match store.pool().execute(AssertSqlSafe(statement)).await {
        Ok(_) => panic!("the database accepted: {statement}"),
        Err(error) => assert!(
            error.to_string().contains("immutable"),
            "{statement} failed for another reason: {error}"
        ),
    }
}

/// The one change the database permits on a captured activity: lowering the time of an
/// activity timed by a receipt (no Date header). Raising it, changing a time from a Date
/// header, or changing anything else (alone or along with a permitted lowering) is
/// refused.
async fn database_permits_only_lowering_a_receipt_time(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let page = acme.page(vec![
        acme.sighting(OUTBOUND, "m1", &["SENT"]),
        acme.received(DATELESS, "m6", &["INBOX"], 1_752_000_000_000),
    ]);
    store
        .commit_page(&acme.tenant, acme.ann_link, &page, None)
        .await
        .unwrap();
    let flags: Vec<(String, i64)> =
        sqlx::query("SELECT dedupe_key, time_from_receipt FROM activities ORDER BY dedupe_key")
            .fetch_all(store.pool())
            .await
            .unwrap()
            .into_iter()
            .map(|row| (row.try_get(0).unwrap(), row.try_get(1).unwrap()))
            .collect();
    assert_eq!(
        flags,
        [
            ("mid:1@acme.com".to_owned(), 0),
            ("mid:6@globex.co.uk".to_owned(), 1)
        ]
    );
    let before = store.activities(&acme.tenant).await.unwrap();
    let dated = "dedupe_key = 'mid:1@acme.com'";
    let undated = "dedupe_key = 'mid:6@globex.co.uk'";
    let refused = [
        // A time from a Date header never changes, nor becomes a receipt time.
        format!("UPDATE activities SET time_ms = time_ms - 1 WHERE {dated}"),
        format!("UPDATE activities SET time_ms = time_ms + 1 WHERE {dated}"),
        format!("UPDATE activities SET time_from_receipt = 1 WHERE {dated}"),
        format!("UPDATE activities SET time_from_receipt = 1, time_ms = time_ms - 1 WHERE {dated}"),
        // A receipt time is never raised, kept by an update, or cleared.
        format!("UPDATE activities SET time_ms = time_ms + 1 WHERE {undated}"),
        format!("UPDATE activities SET time_ms = time_ms WHERE {undated}"),
        format!("UPDATE activities SET time_ms = NULL WHERE {undated}"),
        format!("UPDATE activities SET time_from_receipt = 0 WHERE {undated}"),
        // No other field changes, alone or with a permitted lowering.
        format!("UPDATE activities SET subject = 'changed' WHERE {undated}"),
        format!("UPDATE activities SET subject = 'changed', time_ms = time_ms - 1 WHERE {undated}"),
        format!(
            "UPDATE activities SET direction = 'outbound', time_ms = time_ms - 1 WHERE {undated}"
        ),
        format!("UPDATE activities SET thread_key = NULL, time_ms = time_ms - 1 WHERE {undated}"),
        format!(
            "UPDATE activities SET dedupe_key = 'mid:other', time_ms = time_ms - 1 WHERE {undated}"
        ),
        format!("UPDATE activities SET is_reply = 1, time_ms = time_ms - 1 WHERE {undated}"),
        format!("UPDATE activities SET captured_ms = 0, time_ms = time_ms - 1 WHERE {undated}"),
        format!(
            "UPDATE activities SET time_from_receipt = 0, time_ms = time_ms - 1 WHERE {undated}"
        ),
        format!("UPDATE activities SET id = id + 100, time_ms = time_ms - 1 WHERE {undated}"),
        format!("DELETE FROM activities WHERE {undated}"),
    ];
    for statement in &refused {
        assert_refused(&store, statement).await;
    }
    assert_eq!(store.activities(&acme.tenant).await.unwrap(), before);

    store
        .pool()
        .execute(AssertSqlSafe(format!(
            "UPDATE activities SET time_ms = time_ms - 1000 WHERE {undated}"
        )))
        .await
        .unwrap();
    let after = store.activities(&acme.tenant).await.unwrap();
    let times = |activities: &[tributary_store::ActivityView]| -> Vec<Option<i64>> {
        activities.iter().map(|a| a.time_ms).collect()
    };
    assert_eq!(
        times(&after),
        [before[0].time_ms, Some(1_752_000_000_000 - 1000)]
    );
}

async fn connection_credentials_are_sealed_per_tenant(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let key = MasterKey::generate();
    let credentials = SecretBytes::new(b"{\"private_key\":\"secret\"}".to_vec());
    let policy = json!({"privacy": "subject"});
    store
        .save_connection(
            &acme.tenant,
            ConnectionKind::Google,
            "admin@acme.com",
            &credentials,
            &policy,
            &key,
        )
        .await
        .unwrap();
    let stored: Vec<u8> = store
        .pool()
        .fetch_one("SELECT credentials_ciphertext FROM connections")
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert!(
        !stored
            .windows(b"secret".len())
            .any(|window| window == b"secret"),
        "credentials are stored in the clear"
    );
    let loaded = store
        .connection_credentials(&acme.tenant, ConnectionKind::Google, &key)
        .await
        .unwrap();
    assert_eq!(loaded, credentials);
    let wrong_key = store
        .connection_credentials(&acme.tenant, ConnectionKind::Google, &MasterKey::generate())
        .await;
    assert!(matches!(wrong_key, Err(StoreError::Secret(_))));
    // A ciphertext moved to another tenant's row does not decrypt there.
    let other = Acme::create(&store, "other").await;
    store
        .pool()
        .execute(
            "INSERT INTO connections
                 (tenant_id, kind, admin_email, credentials_ciphertext, credentials_nonce, policy, created_ms)
             SELECT 'other', kind, admin_email, credentials_ciphertext, credentials_nonce, policy, created_ms
             FROM connections WHERE tenant_id = 'acme'",
        )
        .await
        .unwrap();
    let moved = store
        .connection_credentials(&other.tenant, ConnectionKind::Google, &key)
        .await;
    assert!(matches!(moved, Err(StoreError::Secret(_))));
}
