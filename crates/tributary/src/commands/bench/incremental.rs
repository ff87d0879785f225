//! Row 4: from a message delivered to the emulator until its activity is in the store.
//!
//! With polling, the wait is dominated by the poll interval: a message arrives at a
//! uniformly random point of its mailbox's cycle, so it waits on average half the
//! interval (plus half the worker's idle sleep, how often a worker looks for due jobs),
//! then the incremental sync itself. Waiting for the default interval (300 s) several
//! times would take most of the bench, so the bench measures with a short poll, times
//! the sync itself (from the mailbox's `history.list` call to the stored activity), and
//! derives the default figures from that.

use super::emulated::{ACTOR, Emulated, Workers, sqlite_store, temp_dir, wait_until_synced};
use super::report::Row;
use anyhow::Context;
use rand::Rng;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tributary_emulator::org::{LiveMessage, NamedAddress, OrgConfig, deliver_live};
use tributary_emulator::server::app::now_ms;
use tributary_emulator::server::quota::{GmailMethod, QuotaConfig};
use tributary_store::{MasterKey, Store, TenantId};
use tributary_sync::{EngineConfig, Runtime, WorkerConfig};

const SHORT_POLL: Duration = Duration::from_secs(1);
/// A message not captured by then is a failure, not a slow figure.
const GIVE_UP: Duration = Duration::from_secs(60);

pub struct Sizes {
    pub deliveries: usize,
}

pub async fn run(emulator_threads: &Handle, sizes: &Sizes) -> Row {
    let defaults = WorkerConfig::default();
    let row = Row::new(
        4,
        "Incremental",
        format!(
            "{} deliveries, poll {} s (default {} s), worker idle sleep {} s",
            sizes.deliveries,
            SHORT_POLL.as_secs(),
            defaults.poll_interval.as_secs(),
            defaults.idle_sleep.as_secs_f64()
        ),
    );
    match measure(emulator_threads, sizes).await {
        Ok(latencies) => into_row(row, latencies, &defaults),
        Err(error) => row.failed(&error),
    }
}

async fn measure(emulator_threads: &Handle, sizes: &Sizes) -> anyhow::Result<Vec<Latency>> {
    // Live mail arrives "now": the organization's now must be the clock's.
    let org = OrgConfig {
        seed: 17,
        users: 6,
        messages_per_user: 40,
        now_ms: now_ms(),
    };
    let emulated = Emulated::start(emulator_threads, org, QuotaConfig::default()).await?;
    let dir = temp_dir("tributary-bench-incremental-")?;
    let store = sqlite_store(dir.path()).await?;
    let worker = WorkerConfig {
        poll_interval: SHORT_POLL,
        ..WorkerConfig::default()
    };
    let mut config = emulated.runtime_config(EngineConfig::default(), worker);
    // Live mail is dated by the clock, after the organization's "now": the backfill
    // window must end at the clock too, as in production.
    config.engine.reference_now_ms = None;
    let runtime = Runtime::new(store.clone(), MasterKey::generate(), config);
    let tenant = TenantId::new("bench");
    emulated.connect(&runtime, &tenant).await?;
    let workers = Workers::spawn(&runtime, 2);
    runtime.set_capture_enabled(&tenant, true, ACTOR).await?;
    let latencies = async {
        wait_until_synced(&store, &tenant, Duration::from_secs(120)).await?;
        deliver_and_wait(&emulated, &store, &tenant, sizes.deliveries).await
    }
    .await;
    workers.stop().await?;
    store.close().await;
    emulated.shutdown().await?;
    latencies
}

async fn deliver_and_wait(
    emulated: &Emulated,
    store: &Store,
    tenant: &TenantId,
    deliveries: usize,
) -> anyhow::Result<Vec<Latency>> {
    let senders: Vec<String> = emulated
        .truth
        .contacts
        .iter()
        .filter(|c| c.company.is_some())
        .map(|c| c.address.clone())
        .collect();
    let members: Vec<String> = emulated
        .truth
        .members
        .iter()
        .map(|m| m.primary.clone())
        .collect();
    anyhow::ensure!(
        !senders.is_empty() && !members.is_empty(),
        "the generated organization has no external contact or no member"
    );
    let mut latencies = Vec::with_capacity(deliveries);
    for number in 0..deliveries {
        // A random point of the poll cycle, as real mail arrives.
        let jitter = rand::thread_rng().gen_range(0.0..SHORT_POLL.as_secs_f64());
        tokio::time::sleep(Duration::from_secs_f64(jitter)).await;
        let before = store.count_activities(tenant).await?;
        let message = live_message(
            &senders[number % senders.len()],
            &members[number % members.len()],
            number,
        );
        let recipient = members[number % members.len()].to_lowercase();
        let polls_before = history_lists(emulated, &recipient);
        deliver_live(&mut emulated.running.state.org_mut(), &message, now_ms());
        let delivered = Instant::now();
        let mut polled = None;
        loop {
            if polled.is_none() && history_lists(emulated, &recipient) > polls_before {
                polled = Some(Instant::now());
            }
            if store.count_activities(tenant).await? > before {
                latencies.push(Latency {
                    total: delivered.elapsed(),
                    after_poll: polled.map(|p| p.elapsed()),
                });
                break;
            }
            if delivered.elapsed() > GIVE_UP {
                return Err(anyhow::anyhow!("message #{number}"))
                    .context(format!("not captured within {GIVE_UP:?}"));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    Ok(latencies)
}

/// How long one delivered message took to be captured: in all, and from the poll that
/// found it (its mailbox's `history.list` call) on.
struct Latency {
    total: Duration,
    after_poll: Option<Duration>,
}

/// `history.list` calls made for `mailbox` so far (the emulator counts them per user).
fn history_lists(emulated: &Emulated, mailbox: &str) -> u64 {
    let counters = emulated.running.state.counters.snapshot();
    counters
        .users
        .iter()
        .find(|(user, _)| user.eq_ignore_ascii_case(mailbox))
        .and_then(|(_, counts)| counts.methods.get(GmailMethod::HistoryList.api_name()))
        .map_or(0, |m| m.requests)
}

fn live_message(from: &str, to: &str, number: usize) -> LiveMessage {
    let now = now_ms();
    LiveMessage {
        from: NamedAddress {
            name: None,
            address: from.to_owned(),
        },
        to: vec![NamedAddress {
            name: None,
            address: to.to_owned(),
        }],
        cc: Vec::new(),
        bcc: Vec::new(),
        subject: Some(format!("Bench latency #{number}")),
        date_ms: now,
        message_id: Some(format!("bench-latency-{number}-{now}@tributary.bench")),
        in_reply_to: None,
        references: Vec::new(),
        body: "Sent by tributary bench to time incremental capture.".to_owned(),
    }
}

fn into_row(mut row: Row, latencies: Vec<Latency>, defaults: &WorkerConfig) -> Row {
    let mut totals: Vec<f64> = latencies.iter().map(|l| l.total.as_secs_f64()).collect();
    totals.sort_by(f64::total_cmp);
    let mean = totals.iter().sum::<f64>() / totals.len().max(1) as f64;
    let median = totals.get(totals.len() / 2).copied().unwrap_or(f64::NAN);
    let max = totals.last().copied().unwrap_or(f64::NAN);
    // From the poll that found the message until it is stored: history, metadata get,
    // extraction, commit. Independent of the poll interval.
    let after_poll: Vec<f64> = latencies
        .iter()
        .filter_map(|l| l.after_poll.map(|d| d.as_secs_f64()))
        .collect();
    let sync = after_poll.iter().sum::<f64>() / after_poll.len().max(1) as f64;
    let idle = defaults.idle_sleep.as_secs_f64();
    row.number(
        "short_poll_mean_seconds",
        "poll 1 s: mean latency, s",
        mean,
        2,
    );
    row.number(
        "short_poll_median_seconds",
        "poll 1 s: median latency, s",
        median,
        2,
    );
    row.number("short_poll_max_seconds", "poll 1 s: max latency, s", max, 2);
    row.number(
        "sync_seconds",
        "from the poll that finds it to stored (mean), s",
        sync,
        3,
    );
    let default_poll = defaults.poll_interval.as_secs_f64();
    row.number(
        "default_mean_seconds",
        "default settings: expected mean latency, s (derived)",
        default_poll / 2.0 + idle / 2.0 + sync,
        1,
    );
    row.number(
        "default_worst_seconds",
        "default settings: worst latency, s (derived)",
        default_poll + idle + sync,
        1,
    );
    row.note(
        "Latency is until the activity is in the store (the API reads the same rows). \
         With the default poll of 300 s the wait for the next poll dominates; the default \
         figures are derived from the measured ones, not waited for. Lower latency needs a \
         shorter poll (`--poll-seconds`, costing one history.list, 2 units, per mailbox per \
         poll) or push notifications (Gmail watch + Pub/Sub), which Tributary does not use yet.",
    );
    row
}
