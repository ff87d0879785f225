//! Pipeline throughput (issue #7): core's extraction plus `commit_page`, from a generated
//! organization's mailboxes held in memory (no HTTP), in pages of 500, on a fresh SQLite
//! file and on PostgreSQL (skipped with a message when unreachable). Only extraction and
//! `commit_page` are timed; afterwards the relationship rows are checked against
//! `Store::rebuild_relationships` (untimed, and slow on large organizations).
//!
//! `cargo bench -p tributary-store --bench pipeline`
//!
//! Environment: `TRIBUTARY_BENCH_USERS` (default 25), `TRIBUTARY_BENCH_MESSAGES_PER_USER`
//! (default 400), `TRIBUTARY_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), `TRIBUTARY_BENCH_BACKEND` (`sqlite` or
//! `postgres`: run only that one; both by default).

use sqlx::{AssertSqlSafe, Connection};
use std::time::{Duration, Instant};
use tributary_core::MessageRecord;
use tributary_emulator::model::Organization;
use tributary_emulator::org::{self, OrgConfig};
use tributary_store::{
    CapturePage, CapturedSighting, CursorAdvance, LinkId, MemberRole, RelationshipView, Store,
    TenantId,
};
use tributary_testkit::{extractor_for, is_synced, records};

const PAGE: usize = 500;
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// One synced mailbox: its address, its owner's addresses and its messages.
struct Source {
    mailbox: String,
    aliases: Vec<String>,
    records: Vec<MessageRecord>,
}

fn sources(org: &Organization) -> Vec<Source> {
    org.users
        .iter()
        .filter(|u| is_synced(u))
        .map(|user| {
            let mailbox = user.primary_email.to_ascii_lowercase();
            Source {
                records: records(&org.mailboxes[&mailbox]),
                aliases: user
                    .aliases
                    .iter()
                    .chain(&user.non_editable_aliases)
                    .cloned()
                    .collect(),
                mailbox,
            }
        })
        .collect()
}

struct Measured {
    messages: usize,
    extraction: Duration,
    commit: Duration,
}

async fn run(store: &Store, org: &Organization, sources: &[Source]) -> Measured {
    let tenant = TenantId::new("bench");
    store.create_tenant(&tenant, "Bench").await.unwrap();
    let mut links: Vec<LinkId> = Vec::new();
    for source in sources {
        let aliases: Vec<&str> = source.aliases.iter().map(String::as_str).collect();
        let member = store
            .add_member(&tenant, &source.mailbox, &aliases, MemberRole::Member)
            .await
            .unwrap();
        links.push(
            store
                .link_mailbox(
                    &tenant,
                    member,
                    &source.mailbox,
                    tributary_store::ConnectionKind::Google,
                )
                .await
                .unwrap(),
        );
    }
    let extractor = extractor_for(org);
    let mut measured = Measured {
        messages: 0,
        extraction: Duration::ZERO,
        commit: Duration::ZERO,
    };
    for (source, link) in sources.iter().zip(links) {
        for (index, chunk) in source.records.chunks(PAGE).enumerate() {
            let started = Instant::now();
            let page = CapturePage {
                sightings: chunk
                    .iter()
                    .filter(|record| extractor.policy.sees(record, org.now_ms))
                    .map(|record| CapturedSighting {
                        extraction: extractor.extract(record),
                        provider_message_id: record.provider_message_id.clone().unwrap(),
                        labels: record.labels.clone(),
                    })
                    .collect(),
            };
            let extracted = Instant::now();
            let cursor = CursorAdvance {
                stream: "full".into(),
                value: index.to_string(),
            };
            let committed = page.sightings.len();
            store
                .commit_page(&tenant, link, &page, Some(&cursor))
                .await
                .unwrap();
            measured.extraction += extracted - started;
            measured.commit += extracted.elapsed();
            // Only the copies the policy lets through are extracted and committed; counting
            // the others too made this rate look twice the engine's.
            measured.messages += committed;
        }
    }
    let activities = store.count_activities(&tenant).await.unwrap();
    let relationships = store.relationships(&tenant).await.unwrap();
    println!(
        "  stored {activities} activities, {} relationships",
        relationships.len()
    );
    check_against_rebuild(store, &tenant, &relationships).await;
    measured
}

/// A fast pipeline that stores the wrong relationships is no result: the rows kept
/// page by page must equal a rebuild from every stored activity.
async fn check_against_rebuild(store: &Store, tenant: &TenantId, kept: &[RelationshipView]) {
    store.rebuild_relationships(tenant).await.unwrap();
    let rebuilt = store.relationships(tenant).await.unwrap();
    assert_eq!(
        kept.len(),
        rebuilt.len(),
        "relationship rows differ from a rebuild"
    );
    for (kept, rebuilt) in kept.iter().zip(&rebuilt) {
        let close =
            (kept.score_at_last - rebuilt.score_at_last).abs() <= 1e-12 * rebuilt.score_at_last;
        assert!(
            close && same_counts(kept, rebuilt),
            "kept {kept:?} but a rebuild gives {rebuilt:?}"
        );
    }
}

fn same_counts(a: &RelationshipView, b: &RelationshipView) -> bool {
    (&a.member, &a.contact, a.first_ms, a.last_ms) == (&b.member, &b.contact, b.first_ms, b.last_ms)
        && (a.sent, a.received, a.total) == (b.sent, b.received, b.total)
}

fn report(label: &str, measured: &Measured) {
    let total = measured.extraction + measured.commit;
    let rate = |d: Duration| measured.messages as f64 / d.as_secs_f64();
    println!(
        "{label}: {} messages in {total:.2?} = {:.0} messages/s \
         (extraction {:.2?} = {:.0}/s, commit_page {:.2?} = {:.0}/s)",
        measured.messages,
        rate(total),
        measured.extraction,
        rate(measured.extraction),
        measured.commit,
        rate(measured.commit),
    );
}

async fn sqlite(org: &Organization, sources: &[Source]) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in_data_dir(dir.path()).await.unwrap();
    let measured = run(&store, org, sources).await;
    store.close().await;
    report("sqlite", &measured);
}

async fn postgres(org: &Organization, sources: &[Source]) {
    let admin_url = std::env::var("TRIBUTARY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await else {
        println!("postgres: skipped, not reachable at {admin_url}");
        return;
    };
    let name = format!("tributary_bench_{}", std::process::id());
    // The name is built here from digits and underscores.
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let base = &admin_url[..admin_url.rfind('/').unwrap()];
    let store = Store::open(&format!("{base}/{name}")).await.unwrap();
    let measured = run(&store, org, sources).await;
    store.close().await;
    sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
        .execute(&mut admin)
        .await
        .unwrap();
    report("postgres", &measured);
}

fn main() {
    let config = OrgConfig {
        users: env_number("TRIBUTARY_BENCH_USERS", 25),
        messages_per_user: env_number("TRIBUTARY_BENCH_MESSAGES_PER_USER", 400),
        ..OrgConfig::default()
    };
    let generated = org::generate(&config);
    let sources = sources(&generated.org);
    println!(
        "organization: {} users, {} synced mailboxes, {} message copies, pages of {PAGE}",
        config.users,
        sources.len(),
        sources.iter().map(|s| s.records.len()).sum::<usize>()
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let only = std::env::var("TRIBUTARY_BENCH_BACKEND").ok();
    let runs = |backend: &str| only.as_deref().is_none_or(|only| only == backend);
    runtime.block_on(async {
        if runs("sqlite") {
            sqlite(&generated.org, &sources).await;
        }
        if runs("postgres") {
            postgres(&generated.org, &sources).await;
        }
    });
}
