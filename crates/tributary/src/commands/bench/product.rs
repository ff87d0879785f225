//! Row 7, through the product: the organization backfilled by the real scheduler in
//! `tributary serve` (SQLite) and in two `tributary worker` processes (PostgreSQL),
//! spawned from this binary, with the emulator enforcing time-scaled budgets; the same
//! with the real per-user budget a quarter of the one the processes pace at; and the
//! memory and database connections of one worker process as its concurrency grows.

use super::backfill::{QuotaPlan, messages_fetched};
use super::emulated::{ACTOR, Emulated, external_senders, sqlite_store, temp_dir};
use super::postgres::TempDatabase;
use super::process::Process;
use super::report::Row;
use super::verify;
use super::workers::{StoreLocation, Target, WorkerProcess};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tributary_emulator::org::{DEFAULT_NOW_MS, LiveMessage, NamedAddress, OrgConfig, deliver_live};
use tributary_emulator::server::quota::QuotaConfig;
use tributary_store::{LinkId, LinkStatus, LinkView, MasterKey, Store, TenantId};
use tributary_sync::{EngineConfig, Runtime, WorkerConfig};

const ROW: u8 = 7;
const NAME: &str = "Through the product";
const POSTGRES_PORT: u16 = 5432;
/// The quarter-budget variant needs a real budget of two batches at least.
const MIN_REAL_USER_BUDGET: u32 = 1_000;

pub struct Sizes {
    pub users: usize,
    pub messages_per_user: usize,
    pub target_seconds: f64,
    /// Concurrencies the memory and connections of one worker are measured at.
    pub concurrencies: Vec<usize>,
    /// Messages delivered to backfilled mailboxes during a backfill (latency variant).
    pub deliveries: usize,
}

/// How the organization is synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deployment {
    /// `tributary serve` on SQLite (its scheduler in the same process).
    Serve,
    /// `count` `tributary worker` processes on PostgreSQL.
    Workers(usize),
}

/// One run's settings.
struct Setting {
    deployment: Deployment,
    /// `None`: quotas off and the published budgets paced at.
    plan: Option<QuotaPlan>,
    /// The per-user budget the processes pace at, times the emulator's.
    assumed_factor: u32,
    concurrency: Option<usize>,
    /// Mail delivered to backfilled mailboxes while the others backfill (then the poll
    /// is [`LATENCY_POLL`] and the store is not compared with the ground truth, which
    /// knows no live mail).
    deliveries: usize,
}

/// The poll interval of the latency variant.
const LATENCY_POLL: Duration = Duration::from_secs(5);

pub async fn run(emulator_threads: &Handle, sizes: &Sizes, postgres_url: &str) -> Vec<Row> {
    let variant = format!(
        "{} users, ~{} messages each",
        sizes.users, sizes.messages_per_user
    );
    let org = OrgConfig {
        seed: 29,
        users: sizes.users,
        messages_per_user: sizes.messages_per_user,
        now_ms: DEFAULT_NOW_MS,
    };
    let emulated = match Emulated::start(emulator_threads, org, QuotaConfig::unlimited()).await {
        Ok(emulated) => emulated,
        Err(error) => return vec![Row::new(ROW, NAME, variant).failed(&error)],
    };
    let plan = || QuotaPlan::for_org(&emulated, sizes.target_seconds);
    let mut settings = vec![
        Setting {
            deployment: Deployment::Serve,
            plan: Some(plan()),
            assumed_factor: 1,
            concurrency: None,
            deliveries: 0,
        },
        Setting {
            deployment: Deployment::Workers(2),
            plan: Some(plan()),
            assumed_factor: 1,
            concurrency: None,
            deliveries: 0,
        },
        Setting {
            deployment: Deployment::Serve,
            plan: Some(QuotaPlan {
                user_units_per_minute: plan().user_units_per_minute.max(MIN_REAL_USER_BUDGET),
                ..plan()
            }),
            assumed_factor: 4,
            concurrency: None,
            deliveries: 0,
        },
    ];
    settings.extend(sizes.concurrencies.iter().map(|&n| Setting {
        deployment: Deployment::Workers(1),
        plan: None,
        assumed_factor: 1,
        concurrency: Some(n),
        deliveries: 0,
    }));
    // Last: the live mail it delivers stays in the emulator, unknown to the ground truth.
    settings.push(Setting {
        deployment: Deployment::Serve,
        plan: Some(plan()),
        assumed_factor: 1,
        concurrency: None,
        deliveries: sizes.deliveries,
    });
    let mut rows = Vec::new();
    for setting in &settings {
        let row = Row::new(ROW, NAME, describe(setting, &variant));
        let row = match measure(&emulated, setting, postgres_url).await {
            Ok(Some(run)) => run.into_row(row, setting),
            Ok(None) => row.skipped("PostgreSQL not reachable"),
            Err(error) => row.failed(&error),
        };
        rows.push(row);
    }
    if let Err(error) = emulated.shutdown().await {
        eprintln!("warning: {error:#}");
    }
    rows
}

fn describe(setting: &Setting, variant: &str) -> String {
    let deployment = match setting.deployment {
        Deployment::Serve => "`serve`, SQLite".to_owned(),
        Deployment::Workers(1) => "1 `worker` process, PostgreSQL".to_owned(),
        Deployment::Workers(n) => format!("{n} `worker` processes, PostgreSQL"),
    };
    let concurrency = setting.concurrency.map_or_else(
        || "default concurrency".to_owned(),
        |n| format!("concurrency {n}"),
    );
    let quota = match &setting.plan {
        Some(plan) if setting.assumed_factor > 1 => format!(
            "{}; paced at {}× the real per-user budget",
            plan.describe(""),
            setting.assumed_factor
        ),
        Some(plan) => plan.describe(""),
        None => ", quotas off".to_owned(),
    };
    let latency = if setting.deliveries > 0 {
        format!(
            "; {} messages delivered to backfilled mailboxes during the backfill, poll {} s",
            setting.deliveries,
            LATENCY_POLL.as_secs()
        )
    } else {
        String::new()
    };
    format!("{deployment}, {concurrency}, {variant}{quota}{latency}")
}

struct ProductRun {
    seconds: f64,
    fetched: f64,
    bound_seconds: Option<f64>,
    requests: u64,
    rate_limited: u64,
    refusals: tributary_emulator::server::quota::RefusalTotals,
    peak_rss_mib: Vec<f64>,
    peak_connections: Option<usize>,
    /// `None` when live mail was delivered (the ground truth knows none).
    check: Option<verify::CaptureCheck>,
    mailboxes: usize,
    latencies: Vec<f64>,
    /// The mailbox that finished last, when quotas were on.
    last: Option<LastMailbox>,
}

/// Where the run's tail comes from: the mailbox that finished last, when, and the
/// soonest its own per-user budget allowed.
struct LastMailbox {
    finished_seconds: f64,
    own_bound_seconds: f64,
    /// Mailboxes that finished after the organization's quota bound.
    late: usize,
}

/// A fresh store, the tenant connected in this process, capture on, then the processes
/// until every link has synced once. `None` when PostgreSQL is needed and missing.
async fn measure(
    emulated: &Emulated,
    setting: &Setting,
    postgres_url: &str,
) -> anyhow::Result<Option<ProductRun>> {
    let dir = temp_dir("tributary-bench-product-")?;
    let database = match setting.deployment {
        Deployment::Serve => None,
        Deployment::Workers(_) => match TempDatabase::create(postgres_url) {
            Ok(database) => Some(database),
            Err(_) => return Ok(None),
        },
    };
    let (store, location) = match &database {
        Some(database) => (
            Store::open(&database.url).await?,
            StoreLocation::Url(database.url.clone()),
        ),
        None => (
            sqlite_store(dir.path()).await?,
            StoreLocation::DataDir(dir.path().to_owned()),
        ),
    };
    let key = MasterKey::generate();
    let runtime = Runtime::new(
        store.clone(),
        key.clone(),
        emulated.runtime_config(EngineConfig::default(), WorkerConfig::default()),
    );
    let tenant = TenantId::new("bench");
    emulated.connect(&runtime, &tenant).await?;
    let mailboxes = store.links(&tenant).await?.len();
    let state = &emulated.running.state;
    match &setting.plan {
        Some(plan) => state.quotas.set_config(plan.emulator_quota())?,
        None => state.quotas.set_config(QuotaConfig::unlimited())?,
    }
    state.quotas.reset_refusals();
    state.counters.reset();
    runtime.set_capture_enabled(&tenant, true, ACTOR).await?;
    let started = Instant::now();
    let started_ms = tributary_emulator::server::app::now_ms();
    let mut processes = spawn(emulated, setting, &location, &key)?;
    let mut deliveries = Deliveries::new(emulated, setting.deliveries)?;
    let watched = watch(
        &store,
        &tenant,
        &mut processes,
        database.is_some(),
        &mut deliveries,
    )
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let peak_rss_mib = processes
        .iter()
        .map(|p| Process::Child(p.pid()).peak_rss_bytes().unwrap_or(0) as f64 / 1_048_576.0)
        .collect();
    drop(processes);
    let peak_connections = watched?;
    let counters = state.counters.snapshot();
    let units: Vec<u64> = counters.users.values().map(|u| u.total.units).collect();
    let bound_seconds = setting.plan.as_ref().map(|plan| plan.bound_seconds(&units));
    let last = match (&setting.plan, bound_seconds) {
        (Some(plan), Some(bound)) => {
            let links = store.links(&tenant).await?;
            last_mailbox(plan, bound, &links, &counters, started_ms)
        }
        _ => None,
    };
    let check = if setting.deliveries == 0 {
        Some(verify::check(&store, &tenant, &emulated.truth).await?)
    } else {
        None
    };
    store.close().await;
    drop(database);
    Ok(Some(ProductRun {
        seconds,
        fetched: messages_fetched(&counters),
        bound_seconds,
        requests: counters.total.requests,
        rate_limited: counters.total.rate_limited,
        refusals: state.quotas.refusals(),
        peak_rss_mib,
        peak_connections,
        check,
        mailboxes,
        latencies: deliveries.latencies,
        last,
    }))
}

/// The mailbox whose first sync ended last (`last_success_ms`, from `started_ms`), with
/// the soonest its own per-user budget allowed for the units it was charged.
fn last_mailbox(
    plan: &QuotaPlan,
    bound_seconds: f64,
    links: &[LinkView],
    counters: &tributary_emulator::server::counters::CountersSnapshot,
    started_ms: i64,
) -> Option<LastMailbox> {
    let finished = |link: &LinkView| {
        link.last_success_ms
            .map(|ms| (ms - started_ms) as f64 / 1000.0)
    };
    let late = links
        .iter()
        .filter_map(finished)
        .filter(|s| *s > bound_seconds)
        .count();
    let last = links
        .iter()
        .filter_map(|link| Some((link, finished(link)?)))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    let units = counters
        .users
        .get(&last.0.mailbox.to_ascii_lowercase())
        .map_or(0, |user| user.total.units);
    Some(LastMailbox {
        finished_seconds: last.1,
        own_bound_seconds: plan.bound_seconds(&[units]),
        late,
    })
}

fn spawn(
    emulated: &Emulated,
    setting: &Setting,
    location: &StoreLocation,
    key: &MasterKey,
) -> anyhow::Result<Vec<WorkerProcess>> {
    let mut extra: Vec<String> = vec!["--lease-seconds".into(), "10".into()];
    if let Some(concurrency) = setting.concurrency {
        extra.extend(["--sync-concurrency".into(), concurrency.to_string()]);
    }
    if let Some(plan) = &setting.plan {
        let minute_ms = (plan.minute_seconds * 1000.0).round() as u64;
        extra.extend([
            "--user-units-per-minute".into(),
            (plan.user_units_per_minute * setting.assumed_factor).to_string(),
            "--project-units-per-minute".into(),
            plan.project_units_per_minute.to_string(),
            "--quota-minute-ms".into(),
            minute_ms.to_string(),
        ]);
    }
    let target = Target {
        google_api_url: &emulated.running.base_url,
        reference_now_ms: emulated.now_ms,
    };
    let poll = if setting.deliveries > 0 {
        LATENCY_POLL.as_secs()
    } else {
        WorkerConfig::default().poll_interval.as_secs()
    };
    match setting.deployment {
        Deployment::Serve => {
            extra.extend(["--listen".into(), "127.0.0.1:0".into()]);
            let serve = WorkerProcess::spawn_command(
                "serve",
                location,
                key,
                &target,
                "bench-serve",
                poll,
                &extra,
            )?;
            Ok(vec![serve])
        }
        Deployment::Workers(count) => (0..count)
            .map(|index| {
                WorkerProcess::spawn_command(
                    "worker",
                    location,
                    key,
                    &target,
                    &format!("bench-product-{index}"),
                    poll,
                    &extra,
                )
            })
            .collect(),
    }
}

/// Waits until every link has synced once and is idle, failing at once when a process
/// dies; answers the most PostgreSQL connections the processes held at once.
async fn watch(
    store: &Store,
    tenant: &TenantId,
    processes: &mut [WorkerProcess],
    postgres: bool,
    deliveries: &mut Deliveries<'_>,
) -> anyhow::Result<Option<usize>> {
    let started = Instant::now();
    let mut peak = None;
    loop {
        for process in processes.iter_mut() {
            process.ensure_running()?;
        }
        if postgres {
            let open: usize = processes
                .iter()
                .filter_map(|p| Process::Child(p.pid()).tcp_connections_to(POSTGRES_PORT))
                .sum();
            peak = Some(peak.unwrap_or(0).max(open));
        }
        let links = store.links(tenant).await?;
        if let Some(stuck) = links.iter().find(|l| {
            matches!(
                l.status,
                LinkStatus::AuthenticationError | LinkStatus::Unauthorized
            )
        }) {
            anyhow::bail!("link {} stopped: {:?}", stuck.mailbox, stuck.status);
        }
        deliveries.step(store, tenant, &links).await?;
        let synced = links
            .iter()
            .all(|l| l.status == LinkStatus::Idle && l.last_summary.is_some());
        if synced && deliveries.done() {
            return Ok(peak);
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1_200),
            "the processes did not finish within 20 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl ProductRun {
    fn into_row(self, mut row: Row, setting: &Setting) -> Row {
        let achieved = self.fetched / self.seconds;
        row.number("messages_per_second", "messages/s achieved", achieved, 1);
        if let Some(bound) = self.bound_seconds.filter(|b| *b > 0.0) {
            let maximum = self.fetched / bound;
            row.number(
                "quota_bound_messages_per_second",
                "quota-bound maximum, messages/s",
                maximum,
                1,
            );
            row.number("ratio", "achieved / quota-bound", achieved / maximum, 3);
            row.number("quota_bound_seconds", "quota-bound seconds", bound, 1);
        }
        row.number(
            "seconds",
            "seconds (capture on → every mailbox idle)",
            self.seconds,
            1,
        );
        if let Some(last) = &self.last {
            row.number(
                "last_mailbox_seconds",
                "last mailbox done after, s",
                last.finished_seconds,
                1,
            );
            row.number(
                "last_mailbox_own_bound_seconds",
                "last mailbox: its own per-user bound, s",
                last.own_bound_seconds,
                1,
            );
            row.number(
                "late_mailboxes",
                "mailboxes done after the quota bound",
                last.late as f64,
                0,
            );
        }
        row.number("messages_fetched", "messages fetched", self.fetched, 0);
        row.number(
            "requests",
            "requests (batch parts count one each)",
            self.requests as f64,
            0,
        );
        row.number(
            "rate_limited",
            "rate-limit answers",
            self.rate_limited as f64,
            0,
        );
        row.number(
            "refused_share",
            "rate-limit answers / requests",
            self.rate_limited as f64 / (self.requests.max(1)) as f64,
            4,
        );
        row.text(
            "refusals",
            "refusals by kind (user / project / concurrency)",
            format!(
                "{} / {} / {}",
                self.refusals.user_rate, self.refusals.project_rate, self.refusals.concurrency
            ),
        );
        row.text(
            "peak_rss_mib",
            "peak RSS per process, MiB (VmHWM)",
            self.peak_rss_mib
                .iter()
                .map(|m| format!("{m:.1}"))
                .collect::<Vec<_>>()
                .join(" / "),
        );
        if let Some(connections) = self.peak_connections {
            row.number(
                "peak_db_connections",
                "most PostgreSQL connections open at once (all processes)",
                connections as f64,
                0,
            );
        }
        if !self.latencies.is_empty() {
            let mut sorted = self.latencies.clone();
            sorted.sort_by(f64::total_cmp);
            let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
            row.number(
                "delivered_during_backfill",
                "messages delivered to backfilled mailboxes during the backfill",
                sorted.len() as f64,
                0,
            );
            row.number(
                "latency_mean_seconds",
                "delivery → stored, mean, s",
                mean,
                2,
            );
            row.number(
                "latency_max_seconds",
                "delivery → stored, max, s",
                sorted.last().copied().unwrap_or(f64::NAN),
                2,
            );
        }
        if let Some(check) = &self.check {
            row.flag(
                "equals_ground_truth",
                "store equals the ground truth",
                check.equal,
            );
        }
        let processes = match setting.deployment {
            Deployment::Serve => "`tributary serve`".to_owned(),
            Deployment::Workers(n) => format!("{n} `tributary worker`"),
        };
        let pacing = if setting.plan.is_some() {
            ", pacing with budgets given by the hidden flags --user-units-per-minute, \
             --project-units-per-minute and --quota-minute-ms"
        } else {
            ""
        };
        row.note(format!(
            "{} mailboxes; {processes} spawned from this binary{pacing}.",
            self.mailboxes
        ));
        if let Some(check) = self.check.as_ref().filter(|c| !c.equal) {
            row.note(format!(
                "{} differences from the ground truth, e.g. {}",
                check.differences,
                check.examples.join("; ")
            ));
        }
        if !self.latencies.is_empty() {
            row.note(
                "Latency: a message is delivered into a mailbox whose backfill is done while \
                 others still backfill, and timed until the store holds its sighting. Not \
                 compared with the ground truth (it knows no live mail).",
            );
        }
        row
    }
}

/// Live mail delivered, one message at a time, into a backfilled mailbox while other
/// mailboxes still backfill.
struct Deliveries<'a> {
    emulated: &'a Emulated,
    wanted: usize,
    senders: Vec<String>,
    /// The message waited for: its recipient's link, Gmail id, and when it was delivered.
    pending: Option<(LinkId, String, Instant)>,
    latencies: Vec<f64>,
    /// Gives up waiting for a delivery after this (then it counts as this long).
    give_up: Duration,
}

impl<'a> Deliveries<'a> {
    fn new(emulated: &'a Emulated, wanted: usize) -> anyhow::Result<Self> {
        let senders = external_senders(&emulated.truth);
        anyhow::ensure!(
            wanted == 0 || !senders.is_empty(),
            "the generated organization has no external contact"
        );
        Ok(Deliveries {
            emulated,
            wanted,
            senders,
            pending: None,
            latencies: Vec::new(),
            give_up: LATENCY_POLL * 12,
        })
    }

    /// Nothing waited for: every delivery made, or none can be made any more (every
    /// mailbox is backfilled, so "during the backfill" is over).
    fn done(&self) -> bool {
        self.pending.is_none()
    }

    /// Checks the pending delivery, or delivers the next one while some mailboxes are
    /// backfilled and others are not.
    async fn step(
        &mut self,
        store: &Store,
        tenant: &TenantId,
        links: &[LinkView],
    ) -> anyhow::Result<()> {
        if let Some((link, id, delivered)) = &self.pending {
            let stored = store
                .sighted_message_ids(tenant, *link, std::slice::from_ref(id))
                .await?;
            if !stored.is_empty() || delivered.elapsed() > self.give_up {
                self.latencies.push(delivered.elapsed().as_secs_f64());
                self.pending = None;
            }
            return Ok(());
        }
        if self.latencies.len() >= self.wanted {
            return Ok(());
        }
        let backfilled: Vec<&LinkView> =
            links.iter().filter(|l| l.last_summary.is_some()).collect();
        if backfilled.is_empty() || backfilled.len() == links.len() {
            return Ok(());
        }
        let number = self.latencies.len();
        let link = backfilled[number % backfilled.len()];
        let message = LiveMessage {
            from: NamedAddress {
                name: None,
                address: self.senders[number % self.senders.len()].clone(),
            },
            to: vec![NamedAddress {
                name: None,
                address: link.mailbox.clone(),
            }],
            cc: Vec::new(),
            bcc: Vec::new(),
            subject: Some(format!("Bench latency during backfill #{number}")),
            date_ms: self.emulated.now_ms,
            message_id: Some(format!("bench-backfill-latency-{number}@tributary.bench")),
            in_reply_to: None,
            references: Vec::new(),
            body: "Sent by tributary bench while other mailboxes backfill.".to_owned(),
        };
        let copies = deliver_live(
            &mut self.emulated.running.state.org_mut(),
            &message,
            self.emulated.now_ms,
        );
        let copy = copies
            .into_iter()
            .find(|c| c.mailbox.eq_ignore_ascii_case(&link.mailbox))
            .ok_or_else(|| anyhow::anyhow!("no copy delivered to {}", link.mailbox))?;
        self.pending = Some((link.id, copy.message_id, Instant::now()));
        Ok(())
    }
}
