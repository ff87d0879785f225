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
    activities_refuse_every_form_of_rewrite,
    participants_refuse_every_form_of_rewrite,
    triggers_hold_whatever_the_session_role,
    duplicate_inserts_are_still_skipped,
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
                 (tenant_id, kind, admin_email, credentials_ciphertext, credentials_nonce, created_ms)
             SELECT 'other', kind, admin_email, credentials_ciphertext, credentials_nonce, created_ms
             FROM connections WHERE tenant_id = 'acme'",
        )
        .await
        .unwrap();
    let moved = store
        .connection_credentials(&other.tenant, ConnectionKind::Google, &key)
        .await;
    assert!(matches!(moved, Err(StoreError::Secret(_))));
}

/// Every captured row of the guarded tables, all columns, in a stable order: what a
/// refused statement must leave exactly as it was.
async fn captured_rows(store: &Store) -> Vec<String> {
    let activities = "SELECT CAST(id AS TEXT) || '|' || tenant_id || '|' || dedupe_key || '|'
            || COALESCE(thread_key, '-') || '|' || COALESCE(CAST(time_ms AS TEXT), '-') || '|'
            || direction || '|' || COALESCE(subject, '-') || '|' || CAST(is_reply AS TEXT)
            || '|' || CAST(captured_ms AS TEXT) || '|' || CAST(time_from_receipt AS TEXT)
        FROM activities ORDER BY id";
    let participants = "SELECT tenant_id || '|' || CAST(activity_id AS TEXT) || '|' || address
            || '|' || role || '|' || kind || '|' || COALESCE(CAST(member_id AS TEXT), '-')
            || '|' || COALESCE(CAST(contact_id AS TEXT), '-')
        FROM activity_participants ORDER BY activity_id, address, role";
    let mut rows = Vec::new();
    for query in [activities, participants] {
        for row in store.pool().fetch_all(query).await.unwrap() {
            rows.push(row.try_get::<String, _>(0).unwrap());
        }
    }
    rows
}

/// A tenant with one activity timed by its Date header (`mid:1@acme.com`: Ann to Bob and
/// Dana, Carl on Cc) and one timed by a receipt (`mid:6@globex.co.uk`); its id of the
/// first.
async fn captured_pair(store: &Store) -> i64 {
    let acme = Acme::create(store, "acme").await;
    let page = acme.page(vec![
        acme.sighting(OUTBOUND, "m1", &["SENT"]),
        acme.received(DATELESS, "m6", &["INBOX"], 1_752_000_000_000),
    ]);
    store
        .commit_page(&acme.tenant, acme.ann_link, &page, None)
        .await
        .unwrap();
    store
        .pool()
        .fetch_one("SELECT id FROM activities WHERE dedupe_key = 'mid:1@acme.com'")
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

/// Runs each statement, which the database must refuse as a change of captured activity,
/// and checks that every captured row is as it was.
async fn assert_all_refused_and_unchanged(store: &Store, statements: &[String]) {
    let before = captured_rows(store).await;
    assert!(!before.is_empty());
    // Every statement is tried, so a failure lists each form that got through.
    let mut failures = Vec::new();
    for statement in statements {
        match store
            .pool()
            .execute(AssertSqlSafe(statement.as_str()))
            .await
        {
            Ok(_) => failures.push(format!("accepted: {statement}")),
            Err(error) if !error.to_string().contains("immutable") => {
                failures.push(format!("failed for another reason ({error}): {statement}"));
            }
            Err(_) => {}
        }
        if captured_rows(store).await != before {
            failures.push(format!("rows changed by: {statement}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Activity columns, for statements that copy a row with one value swapped.
const ACTIVITY_COLUMNS: &str = "id, tenant_id, dedupe_key, thread_key, time_ms, direction, \
     subject, is_reply, captured_ms, time_from_receipt";

/// An activity is rewritten by no statement form: REPLACE and INSERT OR REPLACE (SQLite
/// deletes the old row without firing delete triggers unless `recursive_triggers` is on),
/// UPSERT, UPDATE, DELETE, MERGE and TRUNCATE (PostgreSQL), not even to the one permitted
/// value (a lower receipt time) by a form other than UPDATE.
async fn activities_refuse_every_form_of_rewrite(store: Store) {
    let id = captured_pair(&store).await;
    let dated = "dedupe_key = 'mid:1@acme.com'";
    let undated = "dedupe_key = 'mid:6@globex.co.uk'";
    let copy_with = |values: &str, filter: &str| {
        format!("{ACTIVITY_COLUMNS}) SELECT {values} FROM activities WHERE {filter}")
    };
    let forged_subject = copy_with(
        "id, tenant_id, dedupe_key, thread_key, time_ms, direction, 'forged', is_reply, \
         captured_ms, time_from_receipt",
        dated,
    );
    let lowered_receipt = copy_with(
        "id, tenant_id, dedupe_key, thread_key, time_ms - 1000, direction, subject, is_reply, \
         captured_ms, time_from_receipt",
        undated,
    );
    let upsert = "INSERT INTO activities (tenant_id, dedupe_key, direction, is_reply, captured_ms)
         VALUES ('acme', 'mid:1@acme.com', 'inbound', 0, 0)";
    let mut statements = vec![
        format!("{upsert} ON CONFLICT (tenant_id, dedupe_key) DO UPDATE SET subject = 'forged'"),
        format!(
            "{upsert} ON CONFLICT (tenant_id, dedupe_key) DO UPDATE SET direction = excluded.direction"
        ),
        format!(
            "INSERT INTO activities (id, tenant_id, dedupe_key, direction, is_reply, captured_ms)
             VALUES ({id}, 'acme', 'mid:forged', 'inbound', 0, 0)
             ON CONFLICT (id) DO UPDATE SET dedupe_key = excluded.dedupe_key"
        ),
        format!("UPDATE activities SET subject = 'forged' WHERE {dated}"),
        format!("DELETE FROM activities WHERE {dated}"),
        "DELETE FROM activities".to_owned(),
    ];
    match store.backend() {
        Backend::Sqlite => statements.extend([
            format!("REPLACE INTO activities ({forged_subject}"),
            format!("INSERT OR REPLACE INTO activities ({forged_subject}"),
            format!("REPLACE INTO activities ({lowered_receipt}"),
            // A new row over the old dedupe key, and over the old id.
            "INSERT OR REPLACE INTO activities (tenant_id, dedupe_key, direction, is_reply, captured_ms)
             VALUES ('acme', 'mid:1@acme.com', 'inbound', 0, 0)"
                .to_owned(),
            format!(
                "REPLACE INTO activities (id, tenant_id, dedupe_key, direction, is_reply, captured_ms)
                 VALUES ({id}, 'acme', 'mid:forged', 'inbound', 0, 0)"
            ),
            format!("{upsert} ON CONFLICT DO UPDATE SET subject = 'forged'"),
            format!("UPDATE OR REPLACE activities SET subject = 'forged' WHERE {dated}"),
        ]),
        Backend::Postgres => statements.extend([
            "TRUNCATE activities CASCADE".to_owned(),
            // TRUNCATE of the tenants cascades to activities.
            "TRUNCATE tenants CASCADE".to_owned(),
            format!(
                "MERGE INTO activities a USING (SELECT {id} AS id) s ON a.id = s.id
                 WHEN MATCHED THEN UPDATE SET subject = 'forged'"
            ),
            format!(
                "MERGE INTO activities a USING (SELECT {id} AS id) s ON a.id = s.id
                 WHEN MATCHED THEN DELETE"
            ),
        ]),
    }
    assert_all_refused_and_unchanged(&store, &statements).await;
}

/// A participant row is rewritten by no statement form either; in particular REPLACE
/// cannot turn a member into an `internal` or `external` participant, nor swap the
/// address of a row by its rowid (SQLite).
async fn participants_refuse_every_form_of_rewrite(store: Store) {
    let id = captured_pair(&store).await;
    let carl = format!("activity_id = {id} AND address = 'carl@acme.com' AND role = 'cc'");
    let columns = "tenant_id, activity_id, address, role, kind, member_id, contact_id";
    let upsert = format!(
        "INSERT INTO activity_participants ({columns})
         VALUES ('acme', {id}, 'carl@acme.com', 'cc', 'internal', NULL, NULL)"
    );
    let conflict = "ON CONFLICT (tenant_id, activity_id, address, role)";
    let mut statements = vec![
        format!("{upsert} {conflict} DO UPDATE SET kind = excluded.kind, member_id = NULL"),
        format!("{upsert} {conflict} DO UPDATE SET role = 'bcc'"),
        format!(
            "UPDATE activity_participants SET kind = 'internal', member_id = NULL WHERE {carl}"
        ),
        format!("DELETE FROM activity_participants WHERE {carl}"),
        "DELETE FROM activity_participants".to_owned(),
    ];
    match store.backend() {
        Backend::Sqlite => statements.extend([
            format!(
                "REPLACE INTO activity_participants ({columns}) \
                 SELECT tenant_id, activity_id, address, role, 'internal', NULL, contact_id \
                 FROM activity_participants WHERE {carl}"
            ),
            format!(
                "INSERT OR REPLACE INTO activity_participants ({columns}) \
                 SELECT tenant_id, activity_id, address, role, 'external', NULL, contact_id \
                 FROM activity_participants WHERE {carl}"
            ),
            // Carl's row again, its member taken away.
            upsert
                .replacen("INSERT", "REPLACE", 1)
                .replace("'internal'", "'member'"),
            // Over an existing rowid: the row is replaced by one of another address.
            format!(
                "INSERT OR REPLACE INTO activity_participants (rowid, {columns}) \
                 SELECT rowid, tenant_id, activity_id, 'mallory@evil.example', role, 'external', \
                 NULL, NULL FROM activity_participants WHERE {carl}"
            ),
            format!("{upsert} ON CONFLICT DO UPDATE SET member_id = NULL"),
            format!("UPDATE OR REPLACE activity_participants SET role = 'to' WHERE {carl}"),
        ]),
        Backend::Postgres => statements.extend([
            "TRUNCATE activity_participants".to_owned(),
            format!(
                "MERGE INTO activity_participants p USING (SELECT {id} AS id) s
                 ON p.activity_id = s.id AND p.role = 'cc'
                 WHEN MATCHED THEN UPDATE SET kind = 'internal', member_id = NULL"
            ),
            format!(
                "MERGE INTO activity_participants p USING (SELECT {id} AS id) s
                 ON p.activity_id = s.id WHEN MATCHED THEN DELETE"
            ),
        ]),
    }
    assert_all_refused_and_unchanged(&store, &statements).await;
    // A REPLACE that replaces nothing is an insert: a participant can still be added.
    let added = format!(
        "INSERT INTO activity_participants ({columns})
         VALUES ('acme', {id}, 'zed@acme.com', 'bcc', 'internal', NULL, NULL)"
    );
    let added = match store.backend() {
        Backend::Sqlite => added.replacen("INSERT", "REPLACE", 1),
        Backend::Postgres => added,
    };
    store.pool().execute(AssertSqlSafe(added)).await.unwrap();
}

/// The triggers are no session setting: PostgreSQL's `session_replication_role =
/// replica` (which skips ordinary triggers, e.g. for a logical-replication apply) does
/// not turn them off, and on SQLite every pooled connection runs with
/// `recursive_triggers` on, which makes a REPLACE fire the delete triggers.
async fn triggers_hold_whatever_the_session_role(store: Store) {
    let id = captured_pair(&store).await;
    if store.backend() == Backend::Sqlite {
        // Every connection of the pool (held at once, so all are opened), not only the
        // first one.
        let mut connections = Vec::new();
        for _ in 0..4 {
            connections.push(store.pool().acquire().await.unwrap());
        }
        for connection in &mut connections {
            let on: i64 = (&mut **connection)
                .fetch_one("PRAGMA recursive_triggers")
                .await
                .unwrap()
                .try_get(0)
                .unwrap();
            assert_eq!(on, 1, "a pooled connection runs without recursive_triggers");
        }
        return;
    }
    let before = captured_rows(&store).await;
    let statements = [
        format!("UPDATE activities SET subject = 'forged' WHERE id = {id}"),
        format!("DELETE FROM activities WHERE id = {id}"),
        "TRUNCATE activities CASCADE".to_owned(),
        format!("UPDATE activity_participants SET member_id = NULL WHERE activity_id = {id}"),
        format!("DELETE FROM activity_participants WHERE activity_id = {id}"),
        "TRUNCATE activity_participants".to_owned(),
    ];
    for statement in &statements {
        let mut tx = store.pool().begin().await.unwrap();
        (&mut *tx)
            .execute("SET LOCAL session_replication_role = replica")
            .await
            .unwrap();
        match (&mut *tx).execute(AssertSqlSafe(statement.as_str())).await {
            Ok(_) => panic!("the database accepted as a replica: {statement}"),
            Err(error) => assert!(
                error.to_string().contains("immutable"),
                "{statement} failed for another reason: {error}"
            ),
        }
        tx.rollback().await.unwrap();
        assert_eq!(captured_rows(&store).await, before, "after {statement}");
    }
}

/// What the capture path relies on still works: an insert of an existing key that
/// skips it (`ON CONFLICT DO NOTHING`, SQLite's `INSERT OR IGNORE`) succeeds and changes
/// nothing.
async fn duplicate_inserts_are_still_skipped(store: Store) {
    let id = captured_pair(&store).await;
    let before = captured_rows(&store).await;
    let mut statements = vec![
        "INSERT INTO activities (tenant_id, dedupe_key, direction, is_reply, captured_ms)
         VALUES ('acme', 'mid:1@acme.com', 'inbound', 0, 0)
         ON CONFLICT (tenant_id, dedupe_key) DO NOTHING"
            .to_owned(),
        format!(
            "INSERT INTO activity_participants (tenant_id, activity_id, address, role, kind)
             VALUES ('acme', {id}, 'carl@acme.com', 'cc', 'internal')
             ON CONFLICT (tenant_id, activity_id, address, role) DO NOTHING"
        ),
    ];
    if store.backend() == Backend::Sqlite {
        statements.extend([
            "INSERT OR IGNORE INTO activities (tenant_id, dedupe_key, direction, is_reply, captured_ms)
             VALUES ('acme', 'mid:1@acme.com', 'inbound', 0, 0)"
                .to_owned(),
            format!(
                "INSERT OR IGNORE INTO activity_participants (tenant_id, activity_id, address, role, kind)
                 VALUES ('acme', {id}, 'carl@acme.com', 'cc', 'internal')"
            ),
        ]);
    }
    for statement in &statements {
        store
            .pool()
            .execute(AssertSqlSafe(statement.as_str()))
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
        assert_eq!(captured_rows(&store).await, before, "after {statement}");
    }
}
