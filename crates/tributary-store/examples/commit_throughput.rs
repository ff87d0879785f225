//! Measures `commit_page` throughput: 2,000 outbound messages to 200 contacts at 40
//! companies, in pages of 100, on a fresh SQLite file and (when reachable) PostgreSQL.
//!
//! `cargo run -p tributary-store --example commit_throughput [POSTGRES_URL]`

use sqlx::{AssertSqlSafe, Connection};
use std::time::Instant;
use tributary_core::{CapturePolicy, Extractor, FreeMailList, MessageRecord, TenantDirectory};
use tributary_store::{CapturePage, CapturedSighting, CursorAdvance, MemberRole, Store, TenantId};

const MESSAGES: usize = 2_000;
const PAGE: usize = 100;

fn pages() -> Vec<CapturePage> {
    let mut directory = TenantDirectory::new();
    directory.add_domain("acme.com").unwrap();
    directory.add_member("ann@acme.com", []).unwrap();
    directory.add_member("carl@acme.com", []).unwrap();
    let extractor = Extractor::new(directory, FreeMailList::default(), CapturePolicy::default());
    let sightings: Vec<_> = (0..MESSAGES)
        .map(|i| {
            let raw = format!(
                "From: ann@acme.com\nTo: person{}@company{}.example\nCc: carl@acme.com\n\
                 Subject: Message {i}\nMessage-ID: <{i}@acme.com>\n\
                 Date: Tue, 01 Jul 2025 {:02}:{:02}:00 +0000\n",
                i % 200,
                i % 40,
                (i / 60) % 24,
                i % 60
            );
            CapturedSighting {
                extraction: extractor.extract(&MessageRecord::from_rfc5322(raw.as_bytes())),
                provider_message_id: format!("p{i}"),
                labels: vec!["SENT".into()],
            }
        })
        .collect();
    sightings
        .chunks(PAGE)
        .map(|chunk| CapturePage {
            sightings: chunk.to_vec(),
        })
        .collect()
}

async fn measure(label: &str, store: &Store) {
    let tenant = TenantId::new("acme");
    store.create_tenant(&tenant, "Acme").await.unwrap();
    let ann = store
        .add_member(&tenant, "ann@acme.com", &[], MemberRole::Member)
        .await
        .unwrap();
    store
        .add_member(&tenant, "carl@acme.com", &[], MemberRole::Member)
        .await
        .unwrap();
    let link = store
        .link_mailbox(&tenant, ann, "ann@acme.com")
        .await
        .unwrap();
    let pages = pages();
    let started = Instant::now();
    for (index, page) in pages.iter().enumerate() {
        let cursor = CursorAdvance {
            stream: "SENT".into(),
            value: index.to_string(),
        };
        store
            .commit_page(&tenant, link, page, Some(&cursor))
            .await
            .unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "{label}: {MESSAGES} messages in {elapsed:.2?} = {:.0} messages/s",
        MESSAGES as f64 / elapsed.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open_in_data_dir(dir.path()).await.unwrap();
    measure("sqlite", &sqlite).await;
    sqlite.close().await;

    let admin_url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await else {
        println!("postgres: not reachable at {admin_url}");
        return;
    };
    let name = format!("tributary_throughput_{}", std::process::id());
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let url = format!("{}/{name}", &admin_url[..admin_url.rfind('/').unwrap()]);
    let postgres = Store::open(&url).await.unwrap();
    measure("postgres", &postgres).await;
    postgres.close().await;
    sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
        .execute(&mut admin)
        .await
        .unwrap();
}
