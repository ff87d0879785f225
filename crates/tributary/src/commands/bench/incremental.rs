//! Row 4: from a message delivered to the emulator until its activity is in the store.
//!
//! With polling, the wait is dominated by the poll interval: a message arrives at a
//! uniformly random point of its mailbox's cycle, so it waits on average half the
//! interval (plus half the worker's idle sleep, how often a worker looks for due jobs),
//! then the incremental sync itself. Waiting for the default interval (300 s) several
//! times would take most of the bench, so the bench measures with a short poll, times
//! the sync itself (from the mailbox's `history.list` call to the stored activity), and
//! derives the default figures from that.
//!
//! With push (issue 16, [`push`]), the wait is the provider's notification, the
//! worker's idle sleep and the sync: measured per provider through `tributary serve
//! --push` at default settings, with the polling figures derived beside them.

mod push;

use super::emulated::{
    ACTOR, Emulated, Workers, external_senders, sqlite_store, temp_dir, wait_until_synced,
};
use super::report::{Row, Status};
use crate::commands::demo::emulators::DemoProvider;
use anyhow::Context;
use push::PushRun;
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
    /// Messages timed with polling; push times three times as many per provider.
    pub deliveries: usize,
}

impl Sizes {
    fn push_deliveries(&self) -> usize {
        self.deliveries * 3
    }
}

/// The providers push is timed at.
const PUSH_PROVIDERS: [DemoProvider; 2] = [DemoProvider::Google, DemoProvider::Microsoft];

pub async fn run(emulator_threads: &Handle, sizes: &Sizes) -> Row {
    let defaults = WorkerConfig::default();
    let row = Row::new(
        4,
        "Incremental",
        format!(
            "{} deliveries, poll {} s (default {} s), worker idle sleep {} s; push: \
             `serve --push` at default settings (safety poll {} s), {} deliveries per \
             provider {:.1}–{:.1} s apart",
            sizes.deliveries,
            SHORT_POLL.as_secs(),
            defaults.poll_interval.as_secs(),
            defaults.idle_sleep.as_secs_f64(),
            defaults.push_poll_interval.as_secs(),
            sizes.push_deliveries(),
            push::SPACING_SECONDS.start,
            push::SPACING_SECONDS.end,
        ),
    );
    let mut row = match measure(emulator_threads, sizes).await {
        Ok(latencies) => into_row(row, latencies, &defaults),
        Err(error) => row.failed(&error),
    };
    for provider in PUSH_PROVIDERS {
        match push::measure(emulator_threads, provider, sizes.push_deliveries()).await {
            Ok(run) => push_figures(&mut row, &run, &defaults),
            Err(error) => {
                let error = error.context(format!("push, {}", provider.name()));
                row.note(format!("FAILED: {error:#}"));
                if !matches!(row.status, Status::Failed(_)) {
                    row = row.failed(&error);
                }
            }
        }
    }
    row.note(
        "Push: `tributary serve --push --public-url http://127.0.0.1:PORT` spawned from \
         this binary at default settings; the emulator delivers its notifications there \
         (Gmail: Pub/Sub push with an OIDC token; Graph: change notifications). Each \
         message is timed from its delivery into the emulator until the REST API's \
         activity query (the same store read `GET /api/v1/activities` runs) returns it, \
         checked every 20 ms. \"delivery → sync starts\" is until the first provider call \
         for that mailbox; the rest is the sync. Polling figures beside them are derived \
         as above from that run's sync time. Calls saved: one sync of an idle mailbox \
         (every link's sync brought forward with no new mail, calls counted by the \
         emulator, mail and calendar) times the syncs an hour brings, polled (3600 / \
         poll) or on push (3600 / safety poll), less the calls renewing the channels \
         (one per renewal, a Google Calendar channel two, renewed a day before it \
         lapses).",
    );
    row
}

/// Figure names and labels of one provider's push run (the table wants them static).
struct PushNames {
    captured: [&'static str; 2],
    mean: [&'static str; 2],
    p95: [&'static str; 2],
    max: [&'static str; 2],
    to_sync: [&'static str; 2],
    polling_mean: [&'static str; 2],
    polling_worst: [&'static str; 2],
    notifications: [&'static str; 2],
    idle_sync_calls: [&'static str; 2],
    saved: [&'static str; 2],
}

const GOOGLE_NAMES: PushNames = PushNames {
    captured: ["push_google_captured", "push, Google: captured / delivered"],
    mean: [
        "push_google_mean_seconds",
        "push, Google: delivery → readable, mean, s",
    ],
    p95: [
        "push_google_p95_seconds",
        "push, Google: delivery → readable, p95, s",
    ],
    max: [
        "push_google_max_seconds",
        "push, Google: delivery → readable, max, s",
    ],
    to_sync: [
        "push_google_to_sync_seconds",
        "push, Google: delivery → sync starts, mean, s",
    ],
    polling_mean: [
        "push_google_polling_mean_seconds",
        "Google polled at the default instead: expected mean, s (derived)",
    ],
    polling_worst: [
        "push_google_polling_worst_seconds",
        "Google polled at the default instead: worst, s (derived)",
    ],
    notifications: [
        "push_google_notifications",
        "push, Google: notifications acknowledged",
    ],
    idle_sync_calls: [
        "push_google_idle_sync_calls",
        "Google: provider calls per sync of an idle mailbox",
    ],
    saved: [
        "push_google_calls_saved_per_mailbox_hour",
        "Google: provider calls saved per idle mailbox per hour by push",
    ],
};

const MICROSOFT_NAMES: PushNames = PushNames {
    captured: [
        "push_microsoft_captured",
        "push, Microsoft: captured / delivered",
    ],
    mean: [
        "push_microsoft_mean_seconds",
        "push, Microsoft: delivery → readable, mean, s",
    ],
    p95: [
        "push_microsoft_p95_seconds",
        "push, Microsoft: delivery → readable, p95, s",
    ],
    max: [
        "push_microsoft_max_seconds",
        "push, Microsoft: delivery → readable, max, s",
    ],
    to_sync: [
        "push_microsoft_to_sync_seconds",
        "push, Microsoft: delivery → sync starts, mean, s",
    ],
    polling_mean: [
        "push_microsoft_polling_mean_seconds",
        "Microsoft polled at the default instead: expected mean, s (derived)",
    ],
    polling_worst: [
        "push_microsoft_polling_worst_seconds",
        "Microsoft polled at the default instead: worst, s (derived)",
    ],
    notifications: [
        "push_microsoft_notifications",
        "push, Microsoft: notifications acknowledged",
    ],
    idle_sync_calls: [
        "push_microsoft_idle_sync_calls",
        "Microsoft: provider calls per sync of an idle mailbox",
    ],
    saved: [
        "push_microsoft_calls_saved_per_mailbox_hour",
        "Microsoft: provider calls saved per idle mailbox per hour by push",
    ],
};

fn push_figures(row: &mut Row, run: &PushRun, defaults: &WorkerConfig) {
    let names = match run.provider {
        DemoProvider::Microsoft => &MICROSOFT_NAMES,
        DemoProvider::Google | DemoProvider::Mixed => &GOOGLE_NAMES,
    };
    let mut sorted = run.latencies.clone();
    sorted.sort_by(f64::total_cmp);
    let mean = mean_of(&sorted);
    let to_sync = mean_of(&run.to_sync);
    row.text(
        names.captured[0],
        names.captured[1],
        format!(
            "{} / {} ({} mailboxes)",
            sorted.len(),
            run.delivered,
            run.mailboxes
        ),
    );
    row.number(names.mean[0], names.mean[1], mean, 2);
    row.number(names.p95[0], names.p95[1], percentile(&sorted, 0.95), 2);
    row.number(
        names.max[0],
        names.max[1],
        sorted.last().copied().unwrap_or(f64::NAN),
        2,
    );
    row.number(names.to_sync[0], names.to_sync[1], to_sync, 2);
    let sync = mean - to_sync;
    let poll = defaults.poll_interval.as_secs_f64();
    let idle = defaults.idle_sleep.as_secs_f64();
    row.number(
        names.polling_mean[0],
        names.polling_mean[1],
        poll / 2.0 + idle / 2.0 + sync,
        1,
    );
    row.number(
        names.polling_worst[0],
        names.polling_worst[1],
        poll + idle + sync,
        1,
    );
    row.number(
        names.notifications[0],
        names.notifications[1],
        run.notifications as f64,
        0,
    );
    row.number(
        names.idle_sync_calls[0],
        names.idle_sync_calls[1],
        run.calls_per_idle_sync,
        1,
    );
    let safety = defaults.push_poll_interval.max(defaults.poll_interval);
    let polled = run.calls_per_idle_sync * 3600.0 / poll;
    let pushed =
        run.calls_per_idle_sync * 3600.0 / safety.as_secs_f64() + run.renewal_calls_per_hour;
    row.number(names.saved[0], names.saved[1], polled - pushed, 1);
    row.note(format!(
        "Push, {}: per idle mailbox an hour, {polled:.1} calls polled every {poll:.0} s \
         against {pushed:.2} on push ({:.1} per safety poll every {} s, {:.3} renewing \
         {:.0} channels); {} missed (not readable within 30 s).",
        run.provider.name(),
        run.calls_per_idle_sync,
        safety.as_secs(),
        run.renewal_calls_per_hour,
        run.channels_per_mailbox,
        run.missed()
    ));
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn mean_of(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.iter().sum::<f64>() / values.len() as f64
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
    let senders = external_senders(&emulated.truth);
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
    let id = format!("bench-latency-{number}-{now}@tributary.bench");
    bench_message(from, to, &format!("Bench latency #{number}"), &id, now)
}

/// A plain message from `from` to `to`, as the latency rows deliver it.
fn bench_message(
    from: &str,
    to: &str,
    subject: &str,
    message_id: &str,
    date_ms: i64,
) -> LiveMessage {
    let address = |address: &str| NamedAddress {
        name: None,
        address: address.to_owned(),
    };
    LiveMessage {
        from: address(from),
        to: vec![address(to)],
        cc: Vec::new(),
        bcc: Vec::new(),
        subject: Some(subject.to_owned()),
        date_ms,
        message_id: Some(message_id.to_owned()),
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
         poll) or push (`--push`, measured below).",
    );
    row
}
