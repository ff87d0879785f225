//! Row 1, the pipeline: core's extraction plus `Store::commit_page` over a generated
//! organization's mailboxes held in memory (no HTTP), in pages as the engine commits
//! them, on SQLite and on PostgreSQL.

use super::emulated::{sqlite_store, temp_dir};
use super::postgres::TempDatabase;
use super::report::Row;
use std::time::{Duration, Instant};
use tributary_core::{Extractor, MessageRecord};
use tributary_emulator::model::Organization;
use tributary_emulator::org::{self, DEFAULT_NOW_MS, OrgConfig};
use tributary_store::{
    CapturePage, CapturedSighting, CursorAdvance, LinkId, MemberRole, Store, TenantId,
};
use tributary_testkit::{extractor_for, is_synced, records};

/// The engine's page size (a Gmail list page).
const PAGE: usize = 500;

pub struct Sizes {
    pub users: usize,
    pub messages_per_user: usize,
}

/// One synced mailbox as the engine would see it after its metadata gets.
struct Mailbox {
    address: String,
    aliases: Vec<String>,
    records: Vec<MessageRecord>,
}

pub async fn run(sizes: &Sizes, postgres_url: &str) -> Vec<Row> {
    let organization = org::generate(&OrgConfig {
        seed: 7,
        users: sizes.users,
        messages_per_user: sizes.messages_per_user,
        now_ms: DEFAULT_NOW_MS,
    })
    .org;
    let extractor = extractor_for(&organization);
    let mailboxes = mailboxes(&organization, &extractor);
    let messages: usize = mailboxes.iter().map(|m| m.records.len()).sum();
    let variant = |backend: &str| {
        format!(
            "{backend}, {} mailboxes, {messages} messages, pages of {PAGE}",
            mailboxes.len()
        )
    };

    let sqlite = {
        let row = Row::new(1, "Pipeline", variant("SQLite"));
        match temp_dir("tributary-bench-pipeline-") {
            Ok(dir) => match sqlite_store(dir.path()).await {
                Ok(store) => measure(row, &store, &extractor, &mailboxes).await,
                Err(error) => row.failed(&error),
            },
            Err(error) => row.failed(&error),
        }
    };
    let postgres = {
        let row = Row::new(1, "Pipeline", variant("PostgreSQL"));
        match TempDatabase::create(postgres_url) {
            Err(reason) => row.skipped(reason),
            Ok(database) => match Store::open(&database.url).await {
                Ok(store) => {
                    let row = measure(row, &store, &extractor, &mailboxes).await;
                    store.close().await;
                    drop(database);
                    row
                }
                Err(error) => row.failed(&error.into()),
            },
        }
    };
    vec![sqlite, postgres]
}

async fn measure(mut row: Row, store: &Store, extractor: &Extractor, mailboxes: &[Mailbox]) -> Row {
    match commit_all(store, extractor, mailboxes).await {
        Ok(measured) => {
            let total = measured.extraction + measured.commit;
            let messages = measured.messages as f64;
            row.number(
                "messages_per_second",
                "messages/s (extraction + commit)",
                messages / total.as_secs_f64(),
                0,
            );
            row.number(
                "extraction_messages_per_second",
                "messages/s, extraction alone",
                messages / measured.extraction.as_secs_f64(),
                0,
            );
            row.number(
                "commit_messages_per_second",
                "messages/s, commit alone",
                messages / measured.commit.as_secs_f64(),
                0,
            );
            row.number("seconds", "seconds", total.as_secs_f64(), 2);
            row
        }
        Err(error) => row.failed(&error),
    }
}

struct Measured {
    messages: usize,
    extraction: Duration,
    commit: Duration,
}

async fn commit_all(
    store: &Store,
    extractor: &Extractor,
    mailboxes: &[Mailbox],
) -> anyhow::Result<Measured> {
    let tenant = TenantId::new("bench");
    store.create_tenant(&tenant, "Bench").await?;
    let mut links: Vec<LinkId> = Vec::new();
    for mailbox in mailboxes {
        let aliases: Vec<&str> = mailbox.aliases.iter().map(String::as_str).collect();
        let member = store
            .add_member(&tenant, &mailbox.address, &aliases, MemberRole::Member)
            .await?;
        links.push(
            store
                .link_mailbox(
                    &tenant,
                    member,
                    &mailbox.address,
                    tributary_store::ConnectionKind::Google,
                )
                .await?,
        );
    }
    let mut measured = Measured {
        messages: 0,
        extraction: Duration::ZERO,
        commit: Duration::ZERO,
    };
    for (mailbox, link) in mailboxes.iter().zip(links) {
        for (index, chunk) in mailbox.records.chunks(PAGE).enumerate() {
            let started = Instant::now();
            let sightings = chunk
                .iter()
                .map(|record| CapturedSighting {
                    extraction: extractor.extract(record),
                    provider_message_id: record.provider_message_id.clone().unwrap_or_default(),
                    labels: record.labels.clone(),
                })
                .collect();
            let extracted = Instant::now();
            let cursor = CursorAdvance {
                stream: "bench.pipeline".into(),
                value: index.to_string(),
            };
            store
                .commit_page(&tenant, link, &CapturePage { sightings }, Some(&cursor))
                .await?;
            measured.extraction += extracted - started;
            measured.commit += extracted.elapsed();
            measured.messages += chunk.len();
        }
    }
    Ok(measured)
}

/// The records the engine builds from `messages.get?format=metadata`, for the messages
/// the policy sees (labels and backfill window), as the engine filters them.
fn mailboxes(organization: &Organization, extractor: &Extractor) -> Vec<Mailbox> {
    organization
        .users
        .iter()
        .filter(|u| is_synced(u))
        .filter_map(|user| {
            let address = user.primary_email.to_ascii_lowercase();
            let mailbox = organization.mailboxes.get(&address)?;
            let records = records(mailbox)
                .into_iter()
                .filter(|record| extractor.policy.sees(record, organization.now_ms))
                .collect();
            Some(Mailbox {
                address,
                aliases: user
                    .aliases
                    .iter()
                    .chain(&user.non_editable_aliases)
                    .cloned()
                    .collect(),
                records,
            })
        })
        .collect()
}
