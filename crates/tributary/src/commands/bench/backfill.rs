//! Rows 2 and 3: a full backfill of a generated organization from the emulator over
//! loopback HTTP, first with quotas enforced (and time-scaled so the run lasts about
//! `target_seconds`), then with quotas off so the engine itself is the bottleneck.
//!
//! The quota-bound maximum: a Gmail budget is a token bucket holding one quota minute's
//! units (full at the start) refilled at that many units per quota minute, so a user who
//! needs `U` units cannot finish before `(U − burst) / rate`; the same holds for the
//! project with its own budget. The organization cannot be backfilled faster than the
//! largest of those times.

use super::emulated::{
    ACTOR, EMULATOR_THREAD, Emulated, Workers, sqlite_store, temp_dir, wait_until_synced,
};
use super::process::{Process, threads_cpu_seconds};
use super::report::Row;
use super::verify;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tributary_core::CapturePolicy;
use tributary_emulator::org::{DEFAULT_NOW_MS, OrgConfig};
use tributary_emulator::server::counters::CountersSnapshot;
use tributary_emulator::server::quota::{GmailMethod, QuotaConfig};
use tributary_store::{MasterKey, TenantId};
use tributary_sync::{EngineConfig, PacingConfig, Runtime, WorkerConfig};

const MILLIS_PER_DAY: i64 = 86_400_000;
/// Google's project budget is 80 times the per-user one; the bench keeps the ratio.
const PROJECT_TO_USER_BUDGET: u32 = 80;
/// The biggest mailbox needs about this many quota minutes' worth of units, so the
/// starting burst (one minute's budget) is a small part of the run.
const QUOTA_MINUTES_OF_WORK: f64 = 5.0;
/// A batch of 100 gets costs 500 units; a smaller budget would shrink the batches.
const MIN_USER_BUDGET: u32 = 500;

pub struct Sizes {
    pub users: usize,
    pub messages_per_user: usize,
    pub target_seconds: f64,
}

pub async fn run(emulator_threads: &Handle, sizes: &Sizes) -> Vec<Row> {
    let variant = format!(
        "{} users, ~{} messages each",
        sizes.users, sizes.messages_per_user
    );
    let org = OrgConfig {
        seed: 11,
        users: sizes.users,
        messages_per_user: sizes.messages_per_user,
        now_ms: DEFAULT_NOW_MS,
    };
    let emulated = match Emulated::start(emulator_threads, org, QuotaConfig::unlimited()).await {
        Ok(emulated) => emulated,
        Err(error) => {
            return vec![
                Row::new(2, "Against the quota", variant.clone()).failed(&error),
                Row::new(3, "Unthrottled", variant).failed(&error),
            ];
        }
    };
    let plan = QuotaPlan::for_org(&emulated, sizes.target_seconds);
    let quota_row = Row::new(2, "Against the quota", plan.describe(&variant));
    let quota_row = match against_quota(&emulated, &plan).await {
        Ok(measured) => measured.into_row(quota_row, &plan),
        Err(error) => quota_row.failed(&error),
    };
    let free_row = Row::new(
        3,
        "Unthrottled",
        format!("{variant}, quotas and pacing off"),
    );
    let free_row = match unthrottled(&emulated).await {
        Ok(row) => row.into_row(free_row),
        Err(error) => free_row.failed(&error),
    };
    if let Err(error) = emulated.shutdown().await {
        eprintln!("warning: {error:#}");
    }
    vec![quota_row, free_row]
}

/// The budgets and time scale the emulator enforces and the engine paces against.
pub struct QuotaPlan {
    pub user_units_per_minute: u32,
    pub project_units_per_minute: u32,
    pub minute_seconds: f64,
}

impl QuotaPlan {
    /// Budgets such that the biggest mailbox needs [`QUOTA_MINUTES_OF_WORK`] quota
    /// minutes, and a quota minute short enough for the run to last `target_seconds`.
    pub(super) fn for_org(emulated: &Emulated, target_seconds: f64) -> Self {
        let biggest = estimated_units_per_user(emulated)
            .into_iter()
            .max()
            .unwrap_or(0);
        let per_user =
            ((biggest as f64 / QUOTA_MINUTES_OF_WORK).ceil() as u32).max(MIN_USER_BUDGET);
        let minutes_after_burst = biggest as f64 / f64::from(per_user) - 1.0;
        QuotaPlan {
            user_units_per_minute: per_user,
            project_units_per_minute: per_user * PROJECT_TO_USER_BUDGET,
            minute_seconds: target_seconds / minutes_after_burst.max(1.0),
        }
    }

    pub(super) fn describe(&self, variant: &str) -> String {
        format!(
            "{variant}, {} units/user and {} units/project per quota minute of {:.2} s",
            self.user_units_per_minute, self.project_units_per_minute, self.minute_seconds
        )
    }

    pub(super) fn emulator_quota(&self) -> QuotaConfig {
        QuotaConfig {
            enabled: true,
            per_user_units_per_minute: self.user_units_per_minute,
            per_project_units_per_minute: self.project_units_per_minute,
            time_scale: 60.0 / self.minute_seconds,
            ..QuotaConfig::default()
        }
    }

    fn pacing(&self) -> PacingConfig {
        PacingConfig {
            user_units_per_minute: self.user_units_per_minute,
            project_units_per_minute: self.project_units_per_minute,
            minute: Duration::from_secs_f64(self.minute_seconds),
            ..PacingConfig::default()
        }
    }

    /// The shortest possible run for the units each user was charged.
    pub(super) fn bound_seconds(&self, units_per_user: &[u64]) -> f64 {
        let after_burst = |units: u64, budget: u32| (units as f64 - f64::from(budget)).max(0.0);
        let user_rate = f64::from(self.user_units_per_minute) / self.minute_seconds;
        let project_rate = f64::from(self.project_units_per_minute) / self.minute_seconds;
        let user = units_per_user
            .iter()
            .map(|&u| after_burst(u, self.user_units_per_minute) / user_rate)
            .fold(0.0, f64::max);
        let total: u64 = units_per_user.iter().sum();
        let project = after_burst(total, self.project_units_per_minute) / project_rate;
        user.max(project)
    }
}

/// What a full sync of each synced mailbox will cost: a profile, a `labels.get` and
/// at least one list page per label, and 5 units per message in INBOX or SENT within the
/// backfill window (plus the day of slack the engine lists).
fn estimated_units_per_user(emulated: &Emulated) -> Vec<u64> {
    let window_days = i64::from(CapturePolicy::default().backfill_days) + 1;
    let since = emulated.now_ms - window_days * MILLIS_PER_DAY;
    let org = emulated.running.state.org();
    let synced = org
        .users
        .iter()
        .filter(|u| !u.suspended && !u.archived && u.is_mailbox_setup && !u.deleted);
    synced
        .filter_map(|user| org.mailboxes.get(&user.primary_email.to_ascii_lowercase()))
        .map(|mailbox| {
            let listed = |label: &str| {
                mailbox
                    .messages
                    .values()
                    .filter(|m| m.internal_date_ms >= since && m.label_ids.contains(label))
                    .count() as u64
            };
            let (inbox, sent) = (listed("INBOX"), listed("SENT"));
            let messages = mailbox
                .messages
                .values()
                .filter(|m| {
                    m.internal_date_ms >= since
                        && (m.label_ids.contains("INBOX") || m.label_ids.contains("SENT"))
                })
                .count() as u64;
            let pages = inbox.div_ceil(500).max(1) + sent.div_ceil(500).max(1);
            1 + 2 + 5 * pages + 5 * messages
        })
        .collect()
}

struct QuotaRun {
    seconds: f64,
    engine_rebuilds: i64,
    counters: CountersSnapshot,
    refusals: tributary_emulator::server::quota::RefusalTotals,
    activities: i64,
    check: verify::CaptureCheck,
    mailboxes: usize,
}

async fn against_quota(emulated: &Emulated, plan: &QuotaPlan) -> anyhow::Result<QuotaRun> {
    let state = &emulated.running.state;
    state.quotas.set_config(plan.emulator_quota())?;
    state.quotas.reset_refusals();
    state.counters.reset();
    let engine = EngineConfig {
        pacing: plan.pacing(),
        ..EngineConfig::default()
    };
    let synced = full_backfill(
        emulated,
        engine,
        Duration::from_secs_f64(plan.minute_seconds * 40.0 + 120.0),
    )
    .await?;
    Ok(QuotaRun {
        seconds: synced.seconds,
        engine_rebuilds: synced.engine_rebuilds,
        counters: state.counters.snapshot(),
        refusals: state.quotas.refusals(),
        activities: synced.activities,
        check: synced.check,
        mailboxes: synced.mailboxes,
    })
}

impl QuotaRun {
    fn into_row(self, mut row: Row, plan: &QuotaPlan) -> Row {
        let units: Vec<u64> = self
            .counters
            .users
            .values()
            .map(|u| u.total.units)
            .collect();
        let total_units: u64 = units.iter().sum();
        let fetched = messages_fetched(&self.counters);
        let bound = plan.bound_seconds(&units);
        let achieved = fetched / self.seconds;
        let maximum = if bound > 0.0 {
            fetched / bound
        } else {
            f64::INFINITY
        };
        row.number("messages_per_second", "messages/s achieved", achieved, 1);
        row.number(
            "quota_bound_messages_per_second",
            "quota-bound maximum, messages/s",
            maximum,
            1,
        );
        row.number("ratio", "achieved / quota-bound", achieved / maximum, 3);
        row.number(
            "seconds",
            "seconds (capture on → every mailbox idle)",
            self.seconds,
            1,
        );
        row.number("quota_bound_seconds", "quota-bound seconds", bound, 1);
        row.number("messages_fetched", "messages fetched", fetched, 0);
        row.number(
            "activities",
            "activities captured",
            self.activities as f64,
            0,
        );
        row.number(
            "units_per_message",
            "quota units per message fetched",
            total_units as f64 / fetched,
            3,
        );
        row.number(
            "rate_limited",
            "rate-limit answers",
            self.counters.total.rate_limited as f64,
            0,
        );
        row.text(
            "refusals",
            "refusals by kind (user / project / concurrency)",
            format!(
                "{} / {} / {}",
                self.refusals.user_rate, self.refusals.project_rate, self.refusals.concurrency
            ),
        );
        row.flag(
            "equals_ground_truth",
            "store equals the ground truth",
            self.check.equal,
        );
        row.number(
            "config_changes",
            "tenant config changes during the run (each rebuilds the engine and its pacer)",
            self.engine_rebuilds as f64,
            0,
        );
        row.note(format!(
            "{} mailboxes synced at once (one worker each). The bound counts the units each \
             user was charged minus the starting burst (one quota minute), at the budget's \
             refill rate; 5 units per message is the floor (one metadata get).",
            self.mailboxes
        ));
        if !self.check.equal {
            row.note(format!(
                "{} differences from the ground truth, e.g. {}",
                self.check.differences,
                self.check.examples.join("; ")
            ));
        }
        row
    }
}

pub(super) fn messages_fetched(counters: &CountersSnapshot) -> f64 {
    counters
        .methods
        .get(GmailMethod::MessagesGet.api_name())
        .map_or(0.0, |m| (m.requests - m.rate_limited) as f64)
}

struct FreeRun {
    seconds: f64,
    fetched: f64,
    engine_cpu: f64,
    emulator_cpu: f64,
    check: verify::CaptureCheck,
    mailboxes: usize,
}

async fn unthrottled(emulated: &Emulated) -> anyhow::Result<FreeRun> {
    let state = &emulated.running.state;
    state.quotas.set_config(QuotaConfig::unlimited())?;
    state.counters.reset();
    // Budgets no run can spend: pacing never waits.
    let unlimited = u32::MAX / 2;
    let engine = EngineConfig {
        pacing: PacingConfig {
            user_units_per_minute: unlimited,
            project_units_per_minute: unlimited,
            ..PacingConfig::default()
        },
        ..EngineConfig::default()
    };
    let process_before = Process::This.cpu_seconds().unwrap_or(0.0);
    let emulator_before = threads_cpu_seconds(EMULATOR_THREAD);
    let synced = full_backfill(emulated, engine, Duration::from_secs(600)).await?;
    let process = Process::This.cpu_seconds().unwrap_or(0.0) - process_before;
    let emulator_cpu = threads_cpu_seconds(EMULATOR_THREAD) - emulator_before;
    Ok(FreeRun {
        seconds: synced.seconds,
        fetched: messages_fetched(&state.counters.snapshot()),
        engine_cpu: process - emulator_cpu,
        emulator_cpu,
        check: synced.check,
        mailboxes: synced.mailboxes,
    })
}

impl FreeRun {
    fn into_row(self, mut row: Row) -> Row {
        row.number(
            "messages_per_second",
            "messages/s",
            self.fetched / self.seconds,
            0,
        );
        row.number(
            "cpu_seconds_per_1000_messages",
            "CPU seconds per 1,000 messages (engine + store)",
            self.engine_cpu / self.fetched * 1000.0,
            3,
        );
        row.number(
            "emulator_cpu_seconds_per_1000_messages",
            "CPU seconds per 1,000 messages (emulator, not ours)",
            self.emulator_cpu / self.fetched * 1000.0,
            3,
        );
        row.number("seconds", "seconds", self.seconds, 2);
        row.number("messages_fetched", "messages fetched", self.fetched, 0);
        row.flag(
            "equals_ground_truth",
            "store equals the ground truth",
            self.check.equal,
        );
        row.note(format!(
            "{} mailboxes synced at once. CPU is this process's (from /proc) minus the \
             emulator's threads; the emulator shares the same cores.",
            self.mailboxes
        ));
        if !self.check.equal {
            row.note(format!(
                "{} differences from the ground truth, e.g. {}",
                self.check.differences,
                self.check.examples.join("; ")
            ));
        }
        row
    }
}

struct Synced {
    seconds: f64,
    activities: i64,
    /// Tenant configuration changes during the run: each makes the runtime build a new
    /// engine, with a new pacer whose budgets start full again.
    engine_rebuilds: i64,
    check: verify::CaptureCheck,
    mailboxes: usize,
}

/// A fresh SQLite store and tenant, one worker per mailbox, capture on, and the time
/// until every mailbox has finished its full sync.
async fn full_backfill(
    emulated: &Emulated,
    engine: EngineConfig,
    limit: Duration,
) -> anyhow::Result<Synced> {
    let dir = temp_dir("tributary-bench-backfill-")?;
    let store = sqlite_store(dir.path()).await?;
    let worker = WorkerConfig {
        idle_sleep: Duration::from_millis(100),
        ..WorkerConfig::default()
    };
    let runtime = Runtime::new(
        store.clone(),
        MasterKey::generate(),
        emulated.runtime_config(engine, worker),
    );
    let tenant = TenantId::new("bench");
    emulated.connect(&runtime, &tenant).await?;
    let mailboxes = store.links(&tenant).await?.len();
    let workers = Workers::spawn(&runtime, mailboxes);
    let version_before = store.config_version(&tenant).await?;
    let started = Instant::now();
    runtime.set_capture_enabled(&tenant, true, ACTOR).await?;
    let waited = wait_until_synced(&store, &tenant, limit).await;
    let seconds = started.elapsed().as_secs_f64();
    workers.stop().await?;
    waited?;
    let activities = store.count_activities(&tenant).await?;
    let engine_rebuilds = store.config_version(&tenant).await? - version_before;
    let check = verify::check(&store, &tenant, &emulated.truth).await?;
    store.close().await;
    Ok(Synced {
        seconds,
        activities,
        engine_rebuilds,
        check,
        mailboxes,
    })
}
