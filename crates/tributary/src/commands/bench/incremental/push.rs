//! Row 4 with push (issue 16), through the product: `tributary serve --push
//! --public-url http://127.0.0.1:PORT` spawned from this binary at default settings
//! (poll 300 s, safety poll on push 1 h, worker idle sleep 1 s), the emulator of one
//! provider delivering its change notifications to that loopback URL. New mail is
//! delivered into the emulator one message at a time, a random 0.3–1 s apart, round the
//! mailboxes, and each is timed from its delivery until the REST API's activity query
//! (the same store read `GET /api/v1/activities` runs) returns it. Then the provider
//! calls an idle mailbox costs: one idle sync counted at the emulator, times the syncs an
//! hour brings polled or on push, plus the channel renewals push adds.

use super::super::emulated::{ACTOR, external_senders, fail_if_stopped, sqlite_store, temp_dir};
use super::super::workers::{StoreLocation, Target, WorkerProcess};
use crate::commands::demo::emulators::{DemoProvider, Emulators};
use crate::commands::demo::live::is_captured;
use crate::commands::demo::progress::Progress;
use anyhow::Context;
use rand::Rng;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tributary_emulator::org::OrgConfig;
use tributary_emulator::server::app::now_ms;
use tributary_store::{
    ConnectionKind, LinkId, LinkStatus, LinkView, MasterKey, PushMode, Store, TenantId,
};
use tributary_sync::WorkerConfig;
use tributary_sync::push::lifecycle::renew_due_ms;

/// Users of the generated organization (a few are suspended or have no mailbox).
const ORG_USERS: usize = 8;
/// Seconds between two deliveries, drawn uniformly.
pub const SPACING_SECONDS: std::ops::Range<f64> = 0.3..1.0;
/// How often a delivered message is looked for (the figures' resolution).
const CHECK_EVERY: Duration = Duration::from_millis(20);
/// A message not readable by then counts as missed, not as a slow figure.
const GIVE_UP: Duration = Duration::from_secs(30);
/// Setup: the organization backfilled and every mailbox on push.
const SETUP_LIMIT: Duration = Duration::from_secs(180);
/// After setup and after the deliveries: the notifications the channels' opening sends
/// (Gmail's first notification, a Calendar channel's `sync`) and their syncs are over.
const SETTLE: Duration = Duration::from_secs(2);
/// Required by the process spawner; a tenant connected to Microsoft only never calls it.
const GOOGLE_UNUSED: &str = "https://www.googleapis.com";

/// What one provider's push run measured.
pub struct PushRun {
    pub provider: DemoProvider,
    pub mailboxes: usize,
    /// Messages to deliver, and delivered so far.
    pub wanted: usize,
    pub delivered: usize,
    /// Delivery → readable through the API, seconds, of the messages captured.
    pub latencies: Vec<f64>,
    /// Delivery → the first provider call for its mailbox after it (the sync the
    /// notification brought forward starts), seconds.
    pub to_sync: Vec<f64>,
    /// Notifications the emulator delivered and Tributary acknowledged.
    pub notifications: u64,
    /// Provider calls one sync of an idle mailbox (no new mail) makes, mail and calendar.
    pub calls_per_idle_sync: f64,
    /// Channel renewals' calls per mailbox per hour, from the channels' lifetimes.
    pub renewal_calls_per_hour: f64,
    pub channels_per_mailbox: f64,
}

impl PushRun {
    fn new(provider: DemoProvider, mailboxes: usize, deliveries: usize) -> Self {
        PushRun {
            provider,
            mailboxes,
            wanted: deliveries,
            delivered: 0,
            latencies: Vec::with_capacity(deliveries),
            to_sync: Vec::with_capacity(deliveries),
            notifications: 0,
            calls_per_idle_sync: f64::NAN,
            renewal_calls_per_hour: f64::NAN,
            channels_per_mailbox: f64::NAN,
        }
    }

    pub fn missed(&self) -> usize {
        self.delivered - self.latencies.len()
    }
}

/// Starts `provider`'s emulator with a generated organization, connects a tenant as its
/// admin would, runs `tributary serve --push` on it and times `deliveries` messages.
pub async fn measure(
    emulator_threads: &Handle,
    provider: DemoProvider,
    deliveries: usize,
) -> anyhow::Result<PushRun> {
    let dir = temp_dir("tributary-bench-push-")?;
    // Live mail is dated at the organization's "now", the instant the spawned process's
    // backfill window ends at (`--reference-now-ms`), so the sync sees it.
    let org = OrgConfig {
        seed: 23,
        users: ORG_USERS,
        messages_per_user: 40,
        now_ms: now_ms(),
    };
    let org_now = org.now_ms;
    let files = dir.path().to_owned();
    let emulators = emulator_threads
        .spawn(async move { Emulators::start(provider, org, &files).await })
        .await
        .context("the emulator's start-up panicked")??;
    let measured = measure_on(&emulators, provider, dir.path(), deliveries, org_now).await;
    emulators.shutdown().await?;
    measured
}

async fn measure_on(
    emulators: &Emulators,
    provider: DemoProvider,
    dir: &Path,
    deliveries: usize,
    org_now: i64,
) -> anyhow::Result<PushRun> {
    let store = sqlite_store(dir).await?;
    let key = MasterKey::generate();
    // This process only connects the tenant and brings syncs forward: the spawned
    // `serve` syncs, opens the channels and receives the notifications.
    let runtime = emulators.runtime(store.clone(), key.clone(), None);
    let tenant = TenantId::new("bench");
    store.create_tenant(&tenant, "Bench").await?;
    emulators
        .connect(&runtime, &tenant, ACTOR, &Progress::quiet())
        .await?;
    runtime.rebuild(&tenant, ACTOR).await?;
    runtime.set_capture_enabled(&tenant, true, ACTOR).await?;
    let mut serve = spawn_serve(emulators, dir, &key, org_now)?;
    let measured = async {
        let links = wait_on_push(&store, &tenant, &mut serve).await?;
        tokio::time::sleep(SETTLE).await;
        let mut run = PushRun::new(provider, links.len(), deliveries);
        deliver_and_time(
            emulators, &store, &tenant, &links, &mut serve, org_now, &mut run,
        )
        .await?;
        run.notifications = emulators.usage().iter().map(|u| u.push_notifications).sum();
        tokio::time::sleep(SETTLE).await;
        run.calls_per_idle_sync =
            calls_per_idle_sync(emulators, &runtime, &store, &tenant, &links, &mut serve).await?;
        let (renewals, channels) = renewal_calls_per_hour(&store, &tenant, &links).await?;
        run.renewal_calls_per_hour = renewals;
        run.channels_per_mailbox = channels;
        Ok(run)
    }
    .await;
    drop(serve);
    store.close().await;
    measured
}

/// `tributary serve` on the store in `dir`, at default settings, with push delivered to
/// its own loopback address.
fn spawn_serve(
    emulators: &Emulators,
    dir: &Path,
    key: &MasterKey,
    org_now: i64,
) -> anyhow::Result<WorkerProcess> {
    let port = free_port()?;
    let mut extra: Vec<String> = vec![
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--push".into(),
        "--public-url".into(),
        format!("http://127.0.0.1:{port}"),
    ];
    extra.extend(emulators.process_flags(dir)?);
    let target = Target {
        google_api_url: emulators.google_api_url().unwrap_or(GOOGLE_UNUSED),
        reference_now_ms: org_now,
    };
    WorkerProcess::spawn_command(
        "serve",
        &StoreLocation::DataDir(dir.to_owned()),
        key,
        &target,
        "bench-push",
        WorkerConfig::default().poll_interval.as_secs(),
        &extra,
    )
}

/// A loopback port free now (the process binds it a moment later).
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .context("cannot find a free loopback port for `serve`")?;
    Ok(listener.local_addr()?.port())
}

/// Waits until every link has synced once and is on push; a link left on polling fails
/// the run with the provider's reason.
async fn wait_on_push(
    store: &Store,
    tenant: &TenantId,
    serve: &mut WorkerProcess,
) -> anyhow::Result<Vec<LinkView>> {
    let started = Instant::now();
    loop {
        serve.ensure_running()?;
        let links = store.links(tenant).await?;
        fail_if_stopped(&links)?;
        let modes: HashMap<LinkId, (PushMode, Option<String>)> = store
            .link_push_modes(tenant)
            .await?
            .into_iter()
            .map(|m| (m.link, (m.mode, m.reason)))
            .collect();
        let synced = !links.is_empty()
            && links
                .iter()
                .all(|l| l.status == LinkStatus::Idle && l.last_summary.is_some());
        if synced {
            let polling = links
                .iter()
                .filter_map(|l| match modes.get(&l.id) {
                    Some((PushMode::Polling, reason)) => Some((l, reason)),
                    _ => None,
                })
                .collect::<Vec<_>>();
            if let Some((link, reason)) = polling.first() {
                anyhow::bail!(
                    "{} of {} mailboxes stayed on polling, e.g. {}: {}",
                    polling.len(),
                    links.len(),
                    link.mailbox,
                    reason.as_deref().unwrap_or("no reason recorded")
                );
            }
            if links.iter().all(|l| modes.contains_key(&l.id)) {
                return Ok(links);
            }
        }
        if started.elapsed() > SETUP_LIMIT {
            let on_push = modes.values().filter(|(m, _)| *m == PushMode::Push).count();
            anyhow::bail!(
                "after {SETUP_LIMIT:?}, {on_push} of {} mailboxes on push (synced: {synced}); \
                 is push wired into `serve --push`?",
                links.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A message delivered and not yet readable.
struct Pending {
    mailbox: String,
    from: String,
    message_id: String,
    delivered: Instant,
    /// The mailbox's provider calls counted before the delivery.
    requests_before: u64,
    sync_started: Option<Duration>,
}

/// Delivers the messages `run` wants a random 0.3–1 s apart, round the mailboxes, each
/// from an external contact, and times each until the API's query returns it.
async fn deliver_and_time(
    emulators: &Emulators,
    store: &Store,
    tenant: &TenantId,
    links: &[LinkView],
    serve: &mut WorkerProcess,
    org_now: i64,
    run: &mut PushRun,
) -> anyhow::Result<()> {
    let wanted = run.wanted;
    let senders = external_senders(&emulators.truth);
    anyhow::ensure!(
        !senders.is_empty(),
        "the generated organization has no external contact"
    );
    let mail = emulators.live_mail();
    let mut pending: Vec<Pending> = Vec::new();
    let mut next_delivery = Instant::now();
    loop {
        serve.ensure_running()?;
        if run.delivered < wanted && Instant::now() >= next_delivery {
            let number = run.delivered;
            let mailbox = links[number % links.len()].mailbox.clone();
            let from = senders[number % senders.len()].clone();
            let message_id = format!("bench-push-{number}-{}@tributary.bench", now_ms());
            let subject = format!("Bench push latency #{number}");
            let message = super::bench_message(&from, &mailbox, &subject, &message_id, org_now);
            let requests_before = emulators.mailbox_requests(&mailbox);
            mail.deliver(&message, org_now);
            pending.push(Pending {
                mailbox,
                from,
                message_id,
                delivered: Instant::now(),
                requests_before,
                sync_started: None,
            });
            run.delivered += 1;
            let gap = rand::thread_rng().gen_range(SPACING_SECONDS);
            next_delivery = Instant::now() + Duration::from_secs_f64(gap);
        }
        let mut waiting = Vec::with_capacity(pending.len());
        for mut message in pending {
            if message.sync_started.is_none()
                && emulators.mailbox_requests(&message.mailbox) > message.requests_before
            {
                message.sync_started = Some(message.delivered.elapsed());
            }
            let readable =
                is_captured(store, tenant, &message.from, &message.message_id, org_now).await?;
            if readable {
                run.latencies
                    .push(message.delivered.elapsed().as_secs_f64());
                run.to_sync
                    .extend(message.sync_started.map(|d| d.as_secs_f64()));
            } else if message.delivered.elapsed() <= GIVE_UP {
                waiting.push(message);
            }
        }
        pending = waiting;
        if run.delivered == wanted && pending.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(CHECK_EVERY).await;
    }
}

/// Brings every link's sync forward with no new mail and counts the provider calls the
/// emulator answered meanwhile, per link: what one poll of an idle mailbox costs.
async fn calls_per_idle_sync(
    emulators: &Emulators,
    runtime: &tributary_sync::Runtime,
    store: &Store,
    tenant: &TenantId,
    links: &[LinkView],
    serve: &mut WorkerProcess,
) -> anyhow::Result<f64> {
    let synced_before = last_successes(store, tenant).await?;
    let before = total_requests(emulators);
    for link in links {
        runtime.sync_link_now(tenant, link.id).await?;
    }
    let started = Instant::now();
    loop {
        serve.ensure_running()?;
        let now = last_successes(store, tenant).await?;
        let done = links.iter().all(|l| {
            now.get(&l.id).copied().flatten() > synced_before.get(&l.id).copied().flatten()
        });
        if done {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the idle syncs brought forward did not run within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The calendar and the push step run after the mail's success is recorded.
    tokio::time::sleep(SETTLE).await;
    Ok((total_requests(emulators) - before) as f64 / links.len().max(1) as f64)
}

async fn last_successes(
    store: &Store,
    tenant: &TenantId,
) -> anyhow::Result<HashMap<LinkId, Option<i64>>> {
    Ok(store
        .links(tenant)
        .await?
        .into_iter()
        .map(|l| (l.id, l.last_success_ms))
        .collect())
}

fn total_requests(emulators: &Emulators) -> u64 {
    emulators.usage().iter().map(|u| u.requests).sum()
}

/// Provider calls per mailbox per hour that keeping the channels costs: each channel is
/// renewed when [`renew_due_ms`] says (a day before it lapses), one call each (Gmail
/// `users.watch`, Graph `PATCH /subscriptions/{id}`; a Calendar channel, which cannot be
/// renewed, is replaced: `events.watch` then `channels.stop`, two). Answers that and the
/// channels per mailbox.
async fn renewal_calls_per_hour(
    store: &Store,
    tenant: &TenantId,
    links: &[LinkView],
) -> anyhow::Result<(f64, f64)> {
    let mut calls_per_hour = 0.0;
    let mut channels = 0usize;
    for link in links {
        for channel in store.push_channels(tenant, link.id).await? {
            channels += 1;
            let period_hours = (renew_due_ms(&channel) - channel.renewed_ms) as f64 / 3_600_000.0;
            let calls = if link.provider == ConnectionKind::Google && channel.stream == "calendar" {
                2.0
            } else {
                1.0
            };
            if period_hours > 0.0 {
                calls_per_hour += calls / period_hours;
            }
        }
    }
    let mailboxes = links.len().max(1) as f64;
    Ok((calls_per_hour / mailboxes, channels as f64 / mailboxes))
}
