//! Pacing and retries: every Gmail call spends quota units from a per-user and a
//! per-project token bucket before it is sent, and transient failures are retried with
//! exponential backoff and jitter, never sooner than the provider's `retry_after`.
//!
//! The buckets mirror Google's model (a minute's units, refilling continuously), so a
//! client paced at the budget is never refused; refusals that still happen (another
//! client sharing the project, clock drift) are retried.

use rand::Rng;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tributary_core::ProviderError;

/// Gmail's published per-user budget.
pub const GMAIL_USER_UNITS_PER_MINUTE: u32 = 15_000;
/// Gmail's published per-project budget.
pub const GMAIL_PROJECT_UNITS_PER_MINUTE: u32 = 1_200_000;

/// Quota units of the Gmail calls the engine makes.
pub mod units {
    pub const GET_PROFILE: u32 = 1;
    pub const LABELS_LIST: u32 = 1;
    pub const LABELS_GET: u32 = 1;
    pub const MESSAGES_LIST: u32 = 5;
    pub const MESSAGES_GET: u32 = 5;
    pub const HISTORY_LIST: u32 = 2;
    /// The Directory is outside Gmail's budgets.
    pub const DIRECTORY: u32 = 0;
}

/// Budgets and retry settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PacingConfig {
    pub user_units_per_minute: u32,
    pub project_units_per_minute: u32,
    /// How long a quota minute lasts in real time (60 s; shorter against an emulator
    /// whose quota time is scaled).
    pub minute: Duration,
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// How long after it is sent a call may reach the provider. The provider charges a
    /// call when it arrives: a call sent while the provider's bucket is (nearly) full
    /// leaves it full during the transit, and the refill it would have earned is lost
    /// there but not in a bucket charged at sending, which then runs ahead and gets
    /// refused. Such calls are charged the refill of this much time on top; calls
    /// sent below the cap (every call of a sustained sync) are not.
    pub transit_allowance: Duration,
    /// What a rate-limit refusal multiplies the budget the pacer paces at by (the
    /// provider's real budget may be lower than the configured one: an admin lowered the
    /// project's quota, another app shares it).
    pub refusal_cut: f64,
    /// Share of the configured budget won back per quota minute without a refusal, up to
    /// the configured budget itself: additive increase, multiplicative decrease.
    pub recovery_per_minute: f64,
    /// Share of the project's bucket (a quota minute's units) that calls queued behind
    /// it leave in the provider's hands for calls that would lose refill by waiting: a
    /// mailbox paced at its own budget whose bucket is full. Those go ahead of the
    /// queue, this much at a time. 0 queues every call in turn.
    pub priority_reserve: f64,
}

impl Default for PacingConfig {
    fn default() -> Self {
        PacingConfig {
            user_units_per_minute: GMAIL_USER_UNITS_PER_MINUTE,
            project_units_per_minute: GMAIL_PROJECT_UNITS_PER_MINUTE,
            minute: Duration::from_secs(60),
            max_attempts: 6,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(32),
            transit_allowance: Duration::from_millis(250),
            refusal_cut: 0.5,
            recovery_per_minute: 0.01,
            priority_reserve: 0.01,
        }
    }
}

/// What pacing did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacingStats {
    /// Calls that waited for their units.
    pub throttled: u64,
    /// Transient failures retried.
    pub retries: u64,
    /// Rate-limit refusals met (user, project and concurrency).
    pub refusals: u64,
    /// Times a refusal lowered the budget the pacer paces at.
    pub budget_cuts: u64,
}

/// Which limit a rate-limit refusal says was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 403 `userRateLimitExceeded`: the mailbox's budget.
    User,
    /// 403 `rateLimitExceeded` / `quotaExceeded`: the project's budget.
    Project,
    /// 429: too many requests in flight for the user (not a budget).
    Concurrency,
}

impl Refusal {
    /// The refusal `error` is, if it is one.
    pub fn of(error: &ProviderError) -> Option<Refusal> {
        if !error.is_transient() {
            return None;
        }
        match (error.status(), error.reason()) {
            (Some(429), _) => Some(Refusal::Concurrency),
            (Some(403), Some("userRateLimitExceeded")) => Some(Refusal::User),
            (Some(403), Some("rateLimitExceeded" | "quotaExceeded")) => Some(Refusal::Project),
            _ => None,
        }
    }
}

/// A token bucket that may go into debt: a reservation larger than the balance is
/// granted at once and the caller waits until the debt is paid back. So a batch costing
/// more than a full bucket still goes through, at the budget's pace.
#[derive(Debug, Clone)]
struct Bucket {
    /// The configured budget (scale 1).
    base_capacity: f64,
    base_per_second: f64,
    /// The share of it paced at now (learned from refusals, times the project share).
    scale: f64,
    transit: Duration,
    capacity: f64,
    per_second: f64,
    balance: f64,
    updated: Instant,
}

impl Bucket {
    fn new(units_per_minute: u32, config: &PacingConfig, now: Instant) -> Self {
        let capacity = f64::from(units_per_minute.max(1));
        let per_second = capacity / config.minute.as_secs_f64().max(1e-3);
        Bucket {
            base_capacity: capacity,
            base_per_second: per_second,
            scale: 1.0,
            transit: config.transit_allowance,
            capacity,
            per_second,
            balance: capacity,
            updated: now,
        }
    }

    /// Paces at `scale` of the configured budget from `now` on. A lower budget keeps
    /// the same share of the balance (what we believed was left is less, in the same
    /// proportion); a higher one only refills faster.
    fn rescale(&mut self, scale: f64, now: Instant) {
        if (scale - self.scale).abs() < 1e-12 {
            return;
        }
        self.refill(now);
        let ratio = scale / self.scale;
        self.scale = scale;
        self.capacity = self.base_capacity * scale;
        self.per_second = self.base_per_second * scale;
        if ratio < 1.0 && self.balance > 0.0 {
            self.balance *= ratio;
        }
        self.balance = self.balance.min(self.capacity);
    }

    /// The provider refused: its bucket is empty, whatever ours says.
    fn empty(&mut self, now: Instant) {
        self.refill(now);
        self.balance = self.balance.min(0.0);
    }

    fn refill(&mut self, now: Instant) -> Instant {
        let at = now.max(self.updated);
        let elapsed = at.duration_since(self.updated).as_secs_f64();
        self.balance = (self.balance + elapsed * self.per_second).min(self.capacity);
        self.updated = at;
        at
    }

    /// Takes `units` and answers how long after `now` to wait before using them: until
    /// the balance left is `floor` (`NEG_INFINITY`: no wait), the call going out no
    /// sooner than `held` after `now` (another bucket's wait).
    ///
    /// Callers read the clock before they get the lock, so a `now` older than the last
    /// update arrives whenever two tasks race. Time never moves back here: moving
    /// `updated` back would credit the same interval's refill twice, and the provider,
    /// whose bucket saw no such credit, would refuse the request.
    ///
    /// The provider charges a call when it arrives, so while a call waits for another
    /// bucket (the project's) the provider's bucket, if full, earns nothing, and this
    /// one, charged now, would count that refill. It is lost like the transit's (see
    /// [`PacingConfig::transit_allowance`]): a mailbox whose first calls wait behind a
    /// busy project is otherwise a few units ahead of the provider for good, and is
    /// refused at the end of its burst once the project's waits vanish.
    fn reserve(&mut self, units: f64, now: Instant, held: Duration, floor: f64) -> Duration {
        let at = self.refill(now);
        let lost = self.lost_refill(units, now, held, floor);
        self.balance -= units + lost;
        let debt = (floor - (self.balance + lost)).max(0.0);
        let wait = Duration::from_secs_f64(debt / self.per_second);
        (at + wait).duration_since(now)
    }

    /// The refill a call of `units` (sent when the balance left is `floor`, and no
    /// sooner than `held` after `now`) loses while the provider's bucket is full: until
    /// it is sent, and during its transit. The balance must be refilled to `now`.
    fn lost_refill(&self, units: f64, now: Instant, held: Duration, floor: f64) -> f64 {
        let ready = units + floor;
        let own = Duration::from_secs_f64((ready - self.balance).max(0.0) / self.per_second);
        let after = self.updated.duration_since(now) + own;
        let held_longer = held.saturating_sub(after);
        // The balance when the call goes out on this bucket's account: now, or once it
        // holds the units; the provider's is capped meanwhile.
        let at_sending = self.balance.max(ready).min(self.capacity);
        let refill = self.per_second * (self.transit + held_longer).as_secs_f64();
        (at_sending + refill - self.capacity).max(0.0)
    }

    /// Whether a call of `units` sent `held` after `now` loses more refill than one sent
    /// at once: the bucket is full, or will be before then.
    fn loses_by_waiting(&mut self, units: f64, now: Instant, held: Duration) -> bool {
        self.refill(now);
        self.lost_refill(units, now, held, 0.0) > self.lost_refill(units, now, Duration::ZERO, 0.0)
    }
}

/// The project's bucket, and the calls let ahead of its queue.
///
/// While the project budget binds, calls queue behind it. A call of a mailbox paced at
/// its own budget and whose bucket is full loses that mailbox's refill for as long as
/// it waits (the provider's bucket cannot grow past full), so that mailbox's backfill
/// ends later by as much; the others lose nothing by waiting. Queued calls therefore
/// leave [`PacingConfig::priority_reserve`] of the bucket in the provider's hands, and
/// such a call goes at once, taking from it, until the calls queued before it have
/// gone (each went out with the reserve still in hand, so the provider's bucket holds
/// what went ahead of them too).
#[derive(Debug)]
struct ProjectPacing {
    bucket: Bucket,
    reserve: f64,
    /// Units let ahead of the queue, each until the calls queued when it went are out.
    ahead: Vec<(Instant, f64)>,
}

impl ProjectPacing {
    /// Takes `units` for a call and answers how long after `now` to wait; `losing`
    /// answers whether the call loses refill if held that long.
    fn reserve(
        &mut self,
        units: f64,
        now: Instant,
        losing: impl FnOnce(Duration) -> bool,
    ) -> Duration {
        let floor = self.bucket.capacity * self.reserve;
        let queued = self
            .bucket
            .clone()
            .reserve(units, now, Duration::ZERO, floor);
        if queued.is_zero() {
            return self.bucket.reserve(units, now, Duration::ZERO, floor);
        }
        self.ahead.retain(|(until, _)| *until > now);
        let ahead: f64 = self.ahead.iter().map(|(_, units)| units).sum();
        if ahead + units > floor || !losing(queued) {
            return self.bucket.reserve(units, now, Duration::ZERO, floor);
        }
        self.ahead.push((now + queued, units));
        self.bucket
            .reserve(units, now, Duration::ZERO, f64::NEG_INFINITY)
    }
}

/// A share of the configured budget learned from refusals: halved (by default) on a
/// refusal, won back slowly while none comes, never above the configured budget.
#[derive(Debug)]
struct Learned {
    scale: f64,
    updated: Instant,
    last_cut: Option<Instant>,
}

/// The learned share never falls below this: a budget of zero would stop the sync.
const MIN_SCALE: f64 = 0.01;

/// A refusal of at most this share of a batch's parts, with no refusal of the same
/// mailbox just before, is the provider's bucket a fraction of a unit behind ours (a
/// slow transit; see [`PacingConfig::transit_allowance`]): only the last part finds it
/// short. It resynchronizes the buckets and cuts nothing. A budget really lower than
/// ours refuses a good part of a batch, or refuses again right after the resync.
const MINOR_REFUSED_SHARE: f64 = 0.1;

impl Learned {
    fn new(now: Instant) -> Self {
        Learned {
            scale: 1.0,
            updated: now,
            last_cut: None,
        }
    }

    fn current(&mut self, now: Instant, per_second: f64) -> f64 {
        let at = now.max(self.updated);
        let elapsed = at.duration_since(self.updated).as_secs_f64();
        self.scale = (self.scale + elapsed * per_second).min(1.0);
        self.updated = at;
        self.scale
    }

    /// Cuts the share by `factor`, or, given a `measured` share, to that measure (by
    /// `factor²` at most: a measure is of one burst, and another app spending the same
    /// budget meanwhile makes it read low). A measure is what the provider admitted, so
    /// the real budget is at least that: halving below it would pace a mailbox refused
    /// once at the very end of its burst (a slow transit) at half its real budget for
    /// good. No cut when it was cut
    /// at or after `since` (the refusal belongs to an overrun already answered).
    /// Answers whether it cut; at the floor already, it does not (nothing to answer:
    /// emptying every bucket again would only slow the others).
    fn cut(
        &mut self,
        now: Instant,
        since: Instant,
        (factor, measured): (f64, Option<f64>),
        per_second: f64,
    ) -> bool {
        if self.last_cut.is_some_and(|cut| cut >= since) {
            return false;
        }
        let current = self.current(now, per_second);
        let halved = current * factor;
        let scale = measured.map_or(halved, |measured| {
            current.min(measured.max(halved * factor))
        });
        let before = self.scale;
        self.scale = scale.clamp(MIN_SCALE, 1.0);
        if self.scale >= before {
            return false;
        }
        self.last_cut = Some(now);
        true
    }
}

/// One mailbox's pacing: its bucket, and what refusals taught about its own budget.
/// Google's per-user budget is per mailbox, and so is what lowers it in practice
/// (another app reading the same mailbox), so one mailbox's refusals never slow another.
#[derive(Debug)]
struct UserPacing {
    bucket: Bucket,
    learned: Learned,
    /// When its last call's units were granted: a refusal of that call's parts (a
    /// batch) is judged against it.
    last_paced: Instant,
    last_refusal: Option<Instant>,
    /// Since when the provider's bucket was full (the mailbox new to this pacer, or
    /// idle a whole quota minute), and the units paced since, at the configured budget:
    /// a refusal within it measures the real budget (see [`UserPacing::measured`]).
    burst: Option<(Instant, f64)>,
    /// The units of its last call.
    last_units: f64,
    /// The units its running job still has to spend, as far as known (0: unknown, or
    /// nothing left): its weight when the project budget is divided.
    remaining: f64,
}

impl UserPacing {
    fn new(config: &PacingConfig, now: Instant) -> Self {
        UserPacing {
            bucket: Bucket::new(config.user_units_per_minute, config, now),
            learned: Learned::new(now),
            last_paced: now,
            last_refusal: None,
            burst: Some((now, 0.0)),
            last_units: 0.0,
            remaining: 0.0,
        }
    }

    /// Whether the project budget is divided for it: a known amount of work left and
    /// paced within the last quota minute (a job that died stops counting).
    fn allotted(&self, now: Instant, minute: Duration) -> bool {
        self.remaining > 0.0 && now.saturating_duration_since(self.last_paced) < minute
    }

    /// Records a call of `units` paced at `now`.
    fn paced(&mut self, units: f64, now: Instant, minute: Duration) {
        if now.saturating_duration_since(self.last_paced) >= minute {
            // Idle a whole quota minute: the provider's bucket is full again.
            self.burst = Some((now, 0.0));
        }
        if let Some((_, spent)) = &mut self.burst {
            *spent += units;
        }
        self.last_units = units;
        self.last_paced = now.max(self.last_paced);
    }

    /// The share of the configured budget the provider really allows, measured by a
    /// refusal met while spending from a full bucket: the provider accepted what was
    /// paced since, less the refused part of the last call, which its full bucket
    /// (one minute's units) and the refill meanwhile paid for. `None` outside such a
    /// burst, or while paced below the configured budget (the count would be of that).
    fn measured(&self, now: Instant, share: Option<f64>, config: &PacingConfig) -> Option<f64> {
        let (since, spent) = self.burst?;
        // Paced below its own budget (learned, or an allotment of the project's):
        // what it spent does not measure the provider's budget.
        if self.learned.scale < 1.0 || self.bucket.scale < 1.0 || spent <= 0.0 {
            return None;
        }
        let accepted = (spent - self.last_units * share.unwrap_or(1.0)).max(0.0);
        let minutes = now.saturating_duration_since(since).as_secs_f64()
            / config.minute.as_secs_f64().max(1e-3);
        let capacity = accepted / (1.0 + minutes);
        Some(capacity / f64::from(config.user_units_per_minute.max(1)))
    }

    /// A refusal of a call paced at `paced`, `share` of its parts refused (`None`: a
    /// single call). Empties the bucket (the provider's is empty); cuts the learned
    /// share when the refusal shows a lower budget: a good part of a batch refused, or
    /// a call paced after the last refusal (buckets in step) refused within a quota
    /// minute of it. Answers whether it cut.
    fn refused(
        &mut self,
        now: Instant,
        paced: Instant,
        share: Option<f64>,
        config: &PacingConfig,
        per_second: f64,
    ) -> bool {
        let resynced = self
            .last_refusal
            .is_some_and(|at| at <= paced && paced.duration_since(at) < config.minute);
        let major = share.is_some_and(|share| share > MINOR_REFUSED_SHARE);
        let measured = self.measured(now, share, config);
        let cut = (resynced || major)
            && self
                .learned
                .cut(now, paced, (config.refusal_cut, measured), per_second);
        self.bucket.empty(now);
        self.last_refusal = Some(now);
        // Emptied: what is paced from now on is no longer a burst from a full bucket.
        self.burst = None;
        cut
    }
}

/// A ceiling over every mailbox's learned budget, for a per-user budget lowered for
/// the whole connection (an admin lowered the project's per-user quota): cut when
/// several mailboxes' budgets were cut within a quota minute, at least
/// [`CEILING_QUORUM`] of those paced in it. One mailbox refused again and again
/// (another app reading it) never reaches it.
#[derive(Debug)]
struct UserCeiling {
    learned: Learned,
    /// The mailboxes whose own budget was cut, and when, within the last quota minute.
    cuts: Vec<(String, Instant)>,
}

/// The share of the mailboxes paced within a quota minute whose budgets must have been
/// cut in it for the ceiling to come down too (and two mailboxes at least).
const CEILING_QUORUM: f64 = 0.25;

impl UserCeiling {
    /// Records `user`'s cut at `now` (of a call paced at `paced`), `active` mailboxes
    /// being paced; answers whether the ceiling came down.
    fn mailbox_cut(
        &mut self,
        user: &str,
        (now, paced): (Instant, Instant),
        active: usize,
        config: &PacingConfig,
        per_second: f64,
    ) -> bool {
        self.cuts
            .retain(|(_, at)| now.saturating_duration_since(*at) < config.minute);
        if !self.cuts.iter().any(|(cut, _)| cut == user) {
            self.cuts.push((user.to_owned(), now));
        }
        let cut = self.cuts.len();
        // Counts of mailboxes: far below f64's exact integers.
        #[allow(clippy::cast_precision_loss)]
        let quorum = cut >= 2 && cut as f64 >= CEILING_QUORUM * active as f64;
        quorum
            && self
                .learned
                .cut(now, paced, (config.refusal_cut, None), per_second)
    }
}

/// How the project budget is divided while it binds: among the mailboxes whose
/// remaining work is known, in proportion to that work, each up to its own per-user
/// budget. Equal shares would leave the biggest mailboxes below their own budget and
/// their backfills finishing last, long after the others; shares by remaining work
/// make the mailboxes finish together, or at their own per-user bound.
#[derive(Debug, Default)]
struct Allotment {
    /// Units per second granted per unit of remaining work; `None`: the project budget
    /// covers every mailbox's own budget, nothing to divide.
    level: Option<f64>,
    computed: Option<Instant>,
}

/// How often the division is worked out again (in quota minutes): remaining work
/// changes page by page, and the pacer is called for every request.
const ALLOTMENT_REFRESH: f64 = 0.01;

/// The water level dividing `budget` units per second among `demands` (a mailbox's own
/// budget per second, its remaining work): each gets `min(own, level × work)`, and
/// together they get `budget`. `None` when their own budgets fit in it.
fn water_level(demands: &mut [(f64, f64)], budget: f64) -> Option<f64> {
    let own: f64 = demands.iter().map(|(own, _)| own).sum();
    if own <= budget {
        return None;
    }
    // The mailboxes with the most work per unit of own budget reach their own budget
    // first: take them out (at their own budget) until the level holds for the rest.
    demands.sort_by(|a, b| (a.0 / a.1).total_cmp(&(b.0 / b.1)));
    let mut budget_left = budget;
    let mut work_left: f64 = demands.iter().map(|(_, work)| work).sum();
    for &(own, work) in demands.iter() {
        let level = budget_left / work_left;
        if own > level * work {
            return Some(level);
        }
        budget_left -= own;
        work_left -= work;
    }
    None
}

/// What the pacer learned and was told about the project budget.
#[derive(Debug)]
struct ProjectBudget {
    learned: Learned,
    /// This process's share of the project budget (1 / live workers).
    share: f64,
}

/// How much of a call a refusal concerned: `refused` of the `sent` parts of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusedParts {
    pub refused: usize,
    pub sent: usize,
}

impl RefusedParts {
    /// The share of the parts refused, none when a single part was: the provider's
    /// bucket a fraction of a unit behind ours (a slow transit) refuses the last part
    /// only, whatever the batch's size.
    fn significant_share(self) -> f64 {
        if self.refused <= 1 {
            return 0.0;
        }
        // Counts of a batch's parts (at most 100): exact in f64.
        #[allow(clippy::cast_precision_loss)]
        let share = self.refused as f64 / self.sent.max(1) as f64;
        share
    }
}

/// One project's pacing: shared by every link of a connection.
///
/// Pacing adapts to the provider's real budgets: a rate-limit refusal (403
/// `userRateLimitExceeded`, 403 `rateLimitExceeded`) empties the bucket concerned (the
/// provider's is empty) and, when it shows the budget is lower than the one paced at,
/// cuts that budget by [`PacingConfig::refusal_cut`];
/// [`PacingConfig::recovery_per_minute`] of it comes back per quota minute without
/// refusals. The per-user budget is learned per mailbox (a refused mailbox never slows
/// the others), under a ceiling for every mailbox that comes down only when many are
/// cut at once (the per-user quota itself is lower); the project's budget is learned
/// for the whole connection.
///
/// While the project budget binds, a call whose mailbox would lose refill by waiting
/// goes ahead of the project's queue, within [`PacingConfig::priority_reserve`]; the
/// others wait their turn.
#[derive(Debug)]
pub struct Pacer {
    config: PacingConfig,
    /// Locked after `users`, never before.
    project: Mutex<ProjectPacing>,
    users: Mutex<HashMap<String, UserPacing>>,
    budget: Mutex<ProjectBudget>,
    ceiling: Mutex<UserCeiling>,
    /// Locked after `users`, never before.
    allotment: Mutex<Allotment>,
    throttled: AtomicU64,
    retries: AtomicU64,
    refusals: AtomicU64,
    budget_cuts: AtomicU64,
}

impl Pacer {
    pub fn new(config: PacingConfig) -> Self {
        Pacer::with_project_share(config, 1.0)
    }

    /// A pacer spending `share` of the project budget (several workers share it). Below
    /// 1 its project bucket starts empty: the provider's may have been spent by the
    /// others, and this share is new to them.
    pub fn with_project_share(config: PacingConfig, share: f64) -> Self {
        let now = Instant::now();
        let share = share.clamp(MIN_SCALE, 1.0);
        let mut project = Bucket::new(config.project_units_per_minute, &config, now);
        project.rescale(share, now);
        if share < 1.0 {
            project.balance = 0.0;
        }
        let reserve = config.priority_reserve.clamp(0.0, 1.0);
        Pacer {
            config,
            project: Mutex::new(ProjectPacing {
                bucket: project,
                reserve,
                ahead: Vec::new(),
            }),
            users: Mutex::new(HashMap::new()),
            budget: Mutex::new(ProjectBudget {
                learned: Learned::new(now),
                share,
            }),
            ceiling: Mutex::new(UserCeiling {
                learned: Learned::new(now),
                cuts: Vec::new(),
            }),
            allotment: Mutex::new(Allotment::default()),
            throttled: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            refusals: AtomicU64::new(0),
            budget_cuts: AtomicU64::new(0),
        }
    }

    pub fn config(&self) -> &PacingConfig {
        &self.config
    }

    pub fn stats(&self) -> PacingStats {
        PacingStats {
            throttled: self.throttled.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            refusals: self.refusals.load(Ordering::Relaxed),
            budget_cuts: self.budget_cuts.load(Ordering::Relaxed),
        }
    }

    /// Paces at `share` of the project budget from now on (1 / live workers).
    pub fn set_project_share(&self, share: f64) {
        lock(&self.budget).share = share.clamp(MIN_SCALE, 1.0);
    }

    /// The share of the project budget this pacer spends (see
    /// [`Pacer::set_project_share`]).
    #[cfg(test)]
    pub(crate) fn project_share(&self) -> f64 {
        lock(&self.budget).share
    }

    /// `user`'s budget paced at now, in units per quota minute: the configured one
    /// times what that mailbox's refusals taught. A batch sized by it fits the real
    /// budget.
    pub fn user_units_per_minute(&self, user: &str) -> u32 {
        let scale = self.user_scale(user, Instant::now());
        // Truncation is meant: a budget is whole units.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let units = (f64::from(self.config.user_units_per_minute) * scale) as u32;
        units.max(1)
    }

    /// Tells the pacer how many units `user`'s running job still has to spend, as far
    /// as it knows (0: unknown, or done). While the project budget binds, it is divided
    /// among mailboxes by this work (see [`Allotment`]).
    pub fn set_remaining_units(&self, user: &str, units: u64) {
        let now = Instant::now();
        {
            let mut users = lock(&self.users);
            let state = users
                .entry(user.to_ascii_lowercase())
                .or_insert_with(|| UserPacing::new(&self.config, now));
            // Units of one mailbox's work: far below f64's exact integers.
            #[allow(clippy::cast_precision_loss)]
            let units = units as f64;
            state.remaining = units;
        }
        lock(&self.allotment).computed = None;
    }

    /// The budget `user` is paced at now, in units per quota minute: its own (see
    /// [`Pacer::user_units_per_minute`]) or, while the project budget binds, its
    /// allotment of the project's.
    pub fn paced_units_per_minute(&self, user: &str) -> u32 {
        let now = Instant::now();
        let own = self.user_scale(user, now);
        let level = self.allotment_level(now);
        let users = lock(&self.users);
        let scale = users
            .get(&user.to_ascii_lowercase())
            .map_or(own, |state| self.allotted_scale(state, own, level));
        // A budget is whole units; a positive one, far below u32::MAX.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let units = (f64::from(self.config.user_units_per_minute) * scale).round() as u32;
        units.max(1)
    }

    /// The share of the configured per-user budget `state` is paced at, its own being
    /// `own`, under the water `level` of the project's division.
    fn allotted_scale(&self, state: &UserPacing, own: f64, level: Option<f64>) -> f64 {
        match level {
            Some(level) if state.remaining > 0.0 => {
                let per_second = state.bucket.base_per_second.max(1e-9);
                own.min(level * state.remaining / per_second).max(MIN_SCALE)
            }
            _ => own,
        }
    }

    /// The water level of the project's division at `now` (see [`water_level`]),
    /// worked out again when older than [`ALLOTMENT_REFRESH`].
    fn allotment_level(&self, now: Instant) -> Option<f64> {
        {
            let allotment = lock(&self.allotment);
            let refresh = self.config.minute.mul_f64(ALLOTMENT_REFRESH);
            if let Some(at) = allotment.computed
                && now.saturating_duration_since(at) < refresh
            {
                return allotment.level;
            }
        }
        let budget = self.project_per_second(now);
        let ceiling = self.ceiling_scale(now);
        let mut demands: Vec<(f64, f64)> = lock(&self.users)
            .values()
            .filter(|state| state.allotted(now, self.config.minute))
            .map(|state| {
                let own = state.bucket.base_per_second * state.learned.scale.min(ceiling);
                (own.max(1e-9), state.remaining)
            })
            .collect();
        let level = water_level(&mut demands, budget);
        let mut allotment = lock(&self.allotment);
        allotment.level = level;
        allotment.computed = Some(now);
        level
    }

    /// The project budget paced at now, in units per second.
    fn project_per_second(&self, now: Instant) -> f64 {
        let scale = self.project_scale(now);
        lock(&self.project).bucket.base_per_second * scale
    }

    /// The share of the configured per-user budget paced at for `user` at `now`.
    fn user_scale(&self, user: &str, now: Instant) -> f64 {
        let per_second = self.recovery_per_second();
        let ceiling = self.ceiling_scale(now);
        let own = lock(&self.users)
            .get_mut(&user.to_ascii_lowercase())
            .map_or(1.0, |state| state.learned.current(now, per_second));
        own.min(ceiling)
    }

    /// The share of the configured per-user budget no mailbox is paced above.
    fn ceiling_scale(&self, now: Instant) -> f64 {
        let per_second = self.recovery_per_second();
        lock(&self.ceiling).learned.current(now, per_second)
    }

    /// The share of the configured project budget paced at now.
    fn project_scale(&self, now: Instant) -> f64 {
        let per_second = self.recovery_per_second();
        let mut budget = lock(&self.budget);
        budget.learned.current(now, per_second) * budget.share
    }

    fn recovery_per_second(&self) -> f64 {
        self.config.recovery_per_minute.max(0.0) / self.config.minute.as_secs_f64().max(1e-3)
    }

    /// Waits until `user` and the project can spend `units`.
    pub async fn acquire(&self, user: &str, units: u32) {
        if units == 0 {
            return;
        }
        let wait = self.reserve(user, f64::from(units), Instant::now());
        if !wait.is_zero() {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
        }
    }

    fn reserve(&self, user: &str, units: f64, now: Instant) -> Duration {
        let project_scale = self.project_scale(now);
        let per_second = self.recovery_per_second();
        let ceiling = self.ceiling_scale(now);
        let level = self.allotment_level(now);
        let mut users = lock(&self.users);
        let state = users
            .entry(user.to_ascii_lowercase())
            .or_insert_with(|| UserPacing::new(&self.config, now));
        let own = state.learned.current(now, per_second).min(ceiling);
        let scale = self.allotted_scale(state, own, level);
        state.bucket.rescale(scale, now);
        let project_wait = {
            let mut project = lock(&self.project);
            project.bucket.rescale(project_scale, now);
            // A mailbox the division paces below its own budget has refill to spare.
            project.reserve(units, now, |queued| {
                scale >= own && state.bucket.loses_by_waiting(units, now, queued)
            })
        };
        state.paced(units, now, self.config.minute);
        let user_wait = state.bucket.reserve(units, now, project_wait, 0.0);
        tracing::trace!(
            user = ?user,
            units,
            user_wait_ms = user_wait.as_millis(),
            project_wait_ms = project_wait.as_millis(),
            balance = state.bucket.balance,
            scale,
            "paced"
        );
        user_wait.max(project_wait)
    }

    /// Learns from `error` if it is a rate-limit refusal of `user`'s last call (or of
    /// `parts` of it, a batch): the bucket concerned is emptied, and its budget cut when
    /// the refusal shows the budget is lower (see [`Pacer`]). Answers the refusal, if
    /// it was one.
    pub fn record_refusal(
        &self,
        user: &str,
        error: &ProviderError,
        parts: Option<RefusedParts>,
    ) -> Option<Refusal> {
        let now = Instant::now();
        let user = user.to_ascii_lowercase();
        let paced = lock(&self.users)
            .get(&user)
            .map_or(now, |state| state.last_paced);
        self.learn(
            &user,
            error,
            now,
            paced,
            parts.map(RefusedParts::significant_share),
        )
    }

    /// `paced`: when the refused call's units were granted; a cut after it already
    /// answered it. `share`: of its parts refused (`None`: a single call).
    fn learn(
        &self,
        user: &str,
        error: &ProviderError,
        now: Instant,
        paced: Instant,
        share: Option<f64>,
    ) -> Option<Refusal> {
        let refusal = Refusal::of(error)?;
        self.refusals.fetch_add(1, Ordering::Relaxed);
        let per_second = self.recovery_per_second();
        let cut = match refusal {
            Refusal::User => self.learn_user_refusal(&user.to_ascii_lowercase(), now, paced, share),
            Refusal::Project => {
                lock(&self.project).bucket.empty(now);
                lock(&self.budget).learned.cut(
                    now,
                    paced,
                    (self.config.refusal_cut, None),
                    per_second,
                )
            }
            Refusal::Concurrency => false,
        };
        tracing::debug!(user = ?user, ?refusal, ?share, cut, "rate-limit refusal");
        if cut {
            self.budget_cuts.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(?refusal, "rate limit refused a call: pacing lower");
        }
        Some(refusal)
    }

    /// A refusal of `user`'s budget: that mailbox learns from it, and when several
    /// mailboxes' budgets were cut the ceiling over all of them comes down too, which
    /// empties every mailbox's bucket (what we believed was left in them was reckoned
    /// at a budget now known to be too high). Answers whether a budget was cut.
    fn learn_user_refusal(
        &self,
        user: &str,
        now: Instant,
        paced: Instant,
        share: Option<f64>,
    ) -> bool {
        let per_second = self.recovery_per_second();
        let (cut, active) = {
            let mut users = lock(&self.users);
            let cut = users
                .entry(user.to_owned())
                .or_insert_with(|| UserPacing::new(&self.config, now))
                .refused(now, paced, share, &self.config, per_second);
            let active = users
                .values()
                .filter(|state| {
                    now.saturating_duration_since(state.last_paced) < self.config.minute
                })
                .count();
            (cut, active)
        };
        if !cut {
            return false;
        }
        let lowered =
            lock(&self.ceiling).mailbox_cut(user, (now, paced), active, &self.config, per_second);
        if lowered {
            self.budget_cuts.fetch_add(1, Ordering::Relaxed);
            let mut users = lock(&self.users);
            users.values_mut().for_each(|state| state.bucket.empty(now));
        }
        true
    }

    /// Runs `call` for `user` after spending `units`, retrying transient failures up to
    /// the configured attempts; a rate-limit refusal teaches the pacer the real budget.
    pub async fn call<T, F, Fut>(
        &self,
        user: &str,
        units: u32,
        mut call: F,
    ) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let mut attempt = 1;
        loop {
            let paced = Instant::now();
            self.acquire(user, units).await;
            match call().await {
                Err(error) if error.is_transient() && attempt < self.config.max_attempts => {
                    self.learn(user, &error, Instant::now(), paced, None);
                    self.sleep_before_retry(attempt, error.retry_after()).await;
                    attempt += 1;
                }
                Err(error) => {
                    self.learn(user, &error, Instant::now(), paced, None);
                    return Err(error);
                }
                outcome => return outcome,
            }
        }
    }

    /// Sleeps before retry number `attempt` (1 for the first retry) of the `parts` of
    /// `user`'s last call that failed, the last with `error`, learning from it if it
    /// was a rate-limit refusal.
    pub async fn wait_before_retry_after(
        &self,
        user: &str,
        attempt: u32,
        error: &ProviderError,
        parts: RefusedParts,
    ) {
        self.record_refusal(user, error, Some(parts));
        self.sleep_before_retry(attempt, error.retry_after()).await;
    }

    async fn sleep_before_retry(&self, attempt: u32, retry_after: Option<Duration>) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(self.backoff(attempt, retry_after)).await;
    }

    /// Exponential backoff with "equal jitter" (half fixed, half random), so a burst of
    /// refused callers spreads out; never shorter than the provider's hint.
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let doubling = 2u32.saturating_pow(attempt.saturating_sub(1));
        let ceiling = self
            .config
            .initial_backoff
            .saturating_mul(doubling)
            .min(self.config.max_backoff);
        let half = ceiling / 2;
        let jitter = rand::thread_rng().gen_range(0.0..=1.0);
        let delay = half + half.mul_f64(jitter);
        delay.max(retry_after.unwrap_or_default())
    }
}

/// The buckets hold plain numbers, so a panic elsewhere cannot leave them inconsistent.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_core::ProviderDetail;
    use tributary_emulator::server::quota::{GmailMethod, QuotaConfig, QuotaLimiter};

    fn config(units_per_minute: u32) -> PacingConfig {
        PacingConfig {
            user_units_per_minute: units_per_minute,
            project_units_per_minute: GMAIL_PROJECT_UNITS_PER_MINUTE,
            minute: Duration::from_secs(60),
            max_attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
            transit_allowance: Duration::ZERO,
            refusal_cut: 0.5,
            recovery_per_minute: 0.01,
            priority_reserve: 0.0,
        }
    }

    #[test]
    fn a_full_bucket_bursts_then_paces_at_the_budget() {
        let pacer = Pacer::new(config(600));
        let start = Instant::now();
        assert_eq!(pacer.reserve("a@x.example", 600.0, start), Duration::ZERO);
        // 600 units per minute is 10 per second: 5 more units wait half a second.
        let wait = pacer.reserve("a@x.example", 5.0, start);
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        // Another user has its own bucket.
        assert_eq!(pacer.reserve("b@x.example", 5.0, start), Duration::ZERO);
        // After 10 s the debt is paid and 95 units are back.
        let later = start + Duration::from_secs(10);
        assert_eq!(pacer.reserve("a@x.example", 95.0, later), Duration::ZERO);
    }

    #[test]
    fn a_stale_clock_reading_never_credits_a_refill_twice() {
        let pacer = Pacer::new(config(600));
        let start = Instant::now();
        let second = start + Duration::from_secs(1);
        // At 1 s: the full bucket's 600 units (refill capped) are spent.
        assert_eq!(pacer.reserve("a@x.example", 600.0, second), Duration::ZERO);
        // A task that read the clock at 0 s but got the lock later: its 5 units are
        // ready half a second after 1 s, so 1.5 s after its own reading.
        let stale = pacer.reserve("a@x.example", 5.0, start);
        assert!((stale.as_secs_f64() - 1.5).abs() < 1e-6, "{stale:?}");
        // The next reader at 1 s owes those 5 plus its own 10: 1.5 s at 10 units/s.
        let next = pacer.reserve("a@x.example", 10.0, second);
        assert!((next.as_secs_f64() - 1.5).abs() < 1e-6, "{next:?}");
    }

    #[test]
    fn a_call_sent_at_a_full_bucket_pays_for_its_transit() {
        let pacer = Pacer::new(PacingConfig {
            transit_allowance: Duration::from_secs(1),
            ..config(600)
        });
        let start = Instant::now();
        // 10 units per second. The first call leaves a full bucket: the provider's stays
        // full (earning nothing) while it travels, so its second of refill is forfeit.
        assert_eq!(pacer.reserve("a@x.example", 100.0, start), Duration::ZERO);
        // 600 - 100 - 10 = 490 left: 495 units wait half a second.
        let wait = pacer.reserve("a@x.example", 495.0, start);
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        // Calls sent below the cap pay nothing extra: the pace is the whole budget's.
        let later = start + Duration::from_secs(10);
        assert_eq!(pacer.reserve("a@x.example", 95.0, later), Duration::ZERO);
        let wait = pacer.reserve("a@x.example", 10.0, later);
        assert!((wait.as_secs_f64() - 1.0).abs() < 1e-6, "{wait:?}");
    }

    /// Sends `user`'s calls of `parts` Gmail gets each, one after another (each
    /// answered `answer` after it is sent), as the pacer paces them, until `units` are
    /// spent; the emulator's limiter is the provider. Answers the parts it refused and
    /// when the first and the last call went out.
    fn run_against_the_emulator(
        pacer: &Pacer,
        provider: &QuotaLimiter,
        (user, units, parts): (&str, u32, u32),
        (start, answer): (Instant, Duration),
    ) -> (u32, Instant, Instant) {
        let cost = parts * units::MESSAGES_GET;
        let (mut now, mut refused, mut spent, mut first) = (start, 0, 0, None);
        while spent < units {
            let sent = now + pacer.reserve(user, f64::from(cost), now);
            first.get_or_insert(sent);
            for _ in 0..parts {
                if provider
                    .admit_at(user, GmailMethod::MessagesGet, sent)
                    .is_err()
                {
                    refused += 1;
                }
            }
            spent += cost;
            now = sent + answer;
        }
        (refused, first.unwrap_or(start), now - answer)
    }

    #[test]
    fn a_mailbox_held_behind_the_project_bucket_stays_within_the_providers_bucket() {
        // 600 units a minute for the mailbox (10 a second), paced at exactly the
        // provider's budget, as the mailbox at the top of the project's division is.
        let pacing = PacingConfig {
            project_units_per_minute: 60_000,
            ..config(600)
        };
        let provider = QuotaLimiter::new(QuotaConfig {
            per_user_units_per_minute: 600,
            per_project_units_per_minute: 60_000,
            ..QuotaConfig::default()
        });
        let pacer = Pacer::new(pacing);
        let start = Instant::now();
        // A hundred other mailboxes' bursts spent the project's bucket and a second
        // more: this mailbox's first call waits a second behind them, while the
        // provider's bucket for it stays full and earns nothing.
        let others = (0..100).map(|i| pacer.reserve(&format!("m{i}@x.example"), 610.0, start));
        let held = others.max().unwrap_or_default();
        assert!(close_to(held, 1.0), "{held:?}");
        let (refused, first, last) = run_against_the_emulator(
            &pacer,
            &provider,
            ("big@x.example", 2_000, 5),
            (start, Duration::from_millis(10)),
        );
        assert_eq!(refused, 0, "parts refused by the provider's bucket");
        assert!(close_to(first - start, 1.025), "{:?}", first - start);
        // Not paced below the budget either: the 1,400 units beyond the burst at 10 a
        // second from the first call on.
        let took = (last - first).as_secs_f64();
        assert!((139.99..140.1).contains(&took), "{took} s");
    }

    #[test]
    fn a_full_mailbox_at_its_own_budget_goes_ahead_of_the_project_queue_within_the_reserve() {
        // 100 units a second for the project, 10 for each mailbox; a hundredth of the
        // project's bucket (60 units) is left to calls that lose refill by waiting.
        let pacer = Pacer::new(PacingConfig {
            project_units_per_minute: 6_000,
            priority_reserve: 0.01,
            ..config(600)
        });
        let start = Instant::now();
        let mut calls = Vec::new();
        let mut call = |user: &str, units: f64, now: Instant| {
            let wait = pacer.reserve(user, units, now);
            calls.push((now + wait, user.to_owned(), units));
            wait
        };
        // Twenty mailboxes' bursts spend the project's bucket but the reserve; the last
        // one waits for the reserve and 100 units more (1.6 s).
        for i in 0..20 {
            call(&format!("m{i}@x.example"), 305.0, start);
        }
        let later = start + Duration::from_millis(100);
        // A mailbox whose bucket is full would lose its refill while queued: it goes
        // at once. Its next call, from a bucket no longer full, loses nothing waiting.
        assert_eq!(call("big@x.example", 25.0, later), Duration::ZERO);
        let queued = call("big@x.example", 25.0, later);
        assert!(close_to(queued, 2.0), "{queued:?}");
        // Another full mailbox's call does not fit in what is left of the reserve.
        let next = call("late@x.example", 50.0, later);
        assert!(close_to(next, 2.5), "{next:?}");
        // Sent as paced, nothing is refused: the calls let ahead took only the reserve
        // the queued ones had left in the provider's bucket.
        let provider = QuotaLimiter::new(QuotaConfig {
            per_user_units_per_minute: 600,
            per_project_units_per_minute: 6_000,
            ..QuotaConfig::default()
        });
        calls.sort_by_key(|(sent, _, _)| *sent);
        assert!(close_to(calls[calls.len() - 3].0 - start, 1.6));
        for (sent, user, units) in &calls {
            // Units of a few calls: whole and small.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let parts = (*units / 5.0) as usize;
            for _ in 0..parts {
                let admitted = provider.admit_at(user, GmailMethod::MessagesGet, *sent);
                assert!(admitted.is_ok(), "{user} refused {:?}", *sent - start);
            }
        }
    }

    #[test]
    fn a_mailbox_the_division_holds_below_its_budget_waits_its_turn() {
        let pacer = Pacer::new(PacingConfig {
            project_units_per_minute: 6_000,
            priority_reserve: 0.01,
            ..config(600)
        });
        // Twenty mailboxes with a thousand units of work each share the project's 100
        // units a second with one that has ten: that one is paced far below its own
        // budget, so its full bucket loses nothing while it waits.
        for i in 0..20 {
            pacer.set_remaining_units(&format!("w{i}@x.example"), 1_000);
        }
        pacer.set_remaining_units("small@x.example", 10);
        assert!(pacer.paced_units_per_minute("small@x.example") < 60);
        let start = Instant::now();
        for i in 0..20 {
            pacer.reserve(&format!("m{i}@x.example"), 305.0, start);
        }
        // Queued behind the others' bursts: the reserve and 91 units, 1.51 s.
        let later = start + Duration::from_millis(100);
        let wait = pacer.reserve("small@x.example", 1.0, later);
        assert!(close_to(wait, 1.51), "{wait:?}");
    }

    #[test]
    fn the_project_budget_binds_across_users() {
        let mut config = config(1_000);
        config.project_units_per_minute = 60;
        let pacer = Pacer::new(config);
        let start = Instant::now();
        assert_eq!(pacer.reserve("a@x.example", 60.0, start), Duration::ZERO);
        let wait = pacer.reserve("b@x.example", 1.0, start);
        assert!((wait.as_secs_f64() - 1.0).abs() < 1e-6, "{wait:?}");
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_the_hint() {
        let pacer = Pacer::new(config(600));
        for attempt in 1..10 {
            let delay = pacer.backoff(attempt, None);
            assert!(delay <= Duration::from_millis(4), "{attempt}: {delay:?}");
        }
        let hinted = pacer.backoff(1, Some(Duration::from_secs(2)));
        assert_eq!(hinted, Duration::from_secs(2));
    }

    fn refused(status: u16, reason: &str) -> ProviderError {
        ProviderError::transient(
            ProviderDetail::new("Rate limit exceeded.")
                .with_status(status)
                .with_reason(reason),
            None,
        )
    }

    /// Within a millisecond: a pacer reads the clock when it is built.
    fn close_to(actual: Duration, seconds: f64) -> bool {
        (actual.as_secs_f64() - seconds).abs() < 1e-3
    }

    #[test]
    fn refusals_are_told_apart_by_status_and_reason() {
        let kind = |status, reason| Refusal::of(&refused(status, reason));
        assert_eq!(kind(403, "userRateLimitExceeded"), Some(Refusal::User));
        assert_eq!(kind(403, "rateLimitExceeded"), Some(Refusal::Project));
        assert_eq!(kind(429, "rateLimitExceeded"), Some(Refusal::Concurrency));
        assert_eq!(kind(503, "backendError"), None);
        let denied = ProviderError::unauthorized(ProviderDetail::new("Delegation denied"));
        assert_eq!(Refusal::of(&denied), None);
    }

    /// Half of a batch's parts refused: the budget is lower than the one paced at.
    const MAJOR: Option<f64> = Some(0.5);
    /// The last of 50 parts refused.
    const LAST_PART: Option<f64> = Some(0.02);

    #[test]
    fn a_refusal_empties_the_mailboxs_bucket_and_cuts_its_budget_once_per_overrun() {
        let pacer = Pacer::new(config(600));
        let start = Instant::now();
        assert_eq!(pacer.reserve("a@x.example", 100.0, start), Duration::ZERO);
        assert_eq!(pacer.reserve("a@x.example", 500.0, start), Duration::ZERO);
        let refusal = refused(403, "userRateLimitExceeded");
        assert_eq!(
            pacer.learn("a@x.example", &refusal, start, start, MAJOR),
            Some(Refusal::User)
        );
        // In the burst from a full bucket the provider admitted 350 of the 600 units:
        // empty, and paced at 350 units a minute (a halving would be below what it
        // admitted), 5 units every 6/7 s.
        let measured = 350.0 / 600.0;
        assert!(close_to(
            pacer.reserve("a@x.example", 5.0, start),
            6.0 / 7.0
        ));
        assert!((349..=350).contains(&pacer.user_units_per_minute("A@x.example")));
        // Another mailbox keeps its whole budget and its pace.
        assert_eq!(pacer.reserve("b@x.example", 600.0, start), Duration::ZERO);
        assert!(close_to(pacer.reserve("b@x.example", 5.0, start), 0.5));
        assert_eq!(pacer.user_units_per_minute("b@x.example"), 600);
        // A call paced before that cut was refused in the same overrun: no second cut.
        let later = start + Duration::from_millis(1);
        pacer.learn("a@x.example", &refusal, later, start, MAJOR);
        assert_eq!(pacer.stats().budget_cuts, 1);
        assert_eq!(pacer.stats().refusals, 2);
        // A call paced after it means the budget is lower still.
        pacer.learn("a@x.example", &refusal, later, later, MAJOR);
        assert_eq!(pacer.stats().budget_cuts, 2);
        let halved = measured / 2.0;
        assert!((pacer.user_scale("a@x.example", later) - halved).abs() < 1e-6);
        assert!((pacer.user_scale("b@x.example", later) - 1.0).abs() < 1e-9);
        // A backend error teaches nothing.
        assert_eq!(
            pacer.learn(
                "a@x.example",
                &refused(503, "backendError"),
                later,
                later,
                None
            ),
            None
        );
        assert_eq!(pacer.stats().refusals, 3);
    }

    #[test]
    fn the_water_level_gives_the_most_work_its_own_budget_and_shares_the_rest() {
        // 16 units a second for three mailboxes of 10 each: the one with ten times the
        // work gets its own 10, the two others share the 6 left by their work.
        let mut demands = [(10.0, 100.0), (10.0, 1_000.0), (10.0, 100.0)];
        let level = water_level(&mut demands, 16.0).unwrap();
        assert!((level * 100.0 - 3.0).abs() < 1e-9, "{level}");
        // Equal work: equal shares.
        let mut even = [(10.0, 100.0), (10.0, 100.0)];
        let level = water_level(&mut even, 16.0).unwrap();
        assert!((level * 100.0 - 8.0).abs() < 1e-9, "{level}");
        // Their own budgets fit in the project's: nothing to divide.
        assert_eq!(water_level(&mut [(10.0, 100.0), (5.0, 1.0)], 16.0), None);
    }

    #[test]
    fn a_binding_project_budget_is_divided_by_remaining_work() {
        // 1,000 units a minute for the project, 600 for each of three mailboxes: the
        // one with ten times the others' work is paced at its own 600, the two others
        // at 200 each (equal shares would give each 333, and the big one would finish
        // last, long after the others).
        let pacer = Pacer::new(PacingConfig {
            project_units_per_minute: 1_000,
            ..config(600)
        });
        pacer.set_remaining_units("big@x.example", 10_000);
        pacer.set_remaining_units("a@x.example", 1_000);
        pacer.set_remaining_units("b@x.example", 1_000);
        assert_eq!(pacer.paced_units_per_minute("big@x.example"), 600);
        assert_eq!(pacer.paced_units_per_minute("a@x.example"), 200);
        assert_eq!(pacer.paced_units_per_minute("b@x.example"), 200);
        // The buckets pace at it: the big mailbox spends its 600 at once, a small one
        // holds 200 and then gets 10 units every 3 s.
        let start = Instant::now();
        assert_eq!(pacer.reserve("big@x.example", 600.0, start), Duration::ZERO);
        assert_eq!(pacer.reserve("a@x.example", 200.0, start), Duration::ZERO);
        assert!(close_to(pacer.reserve("a@x.example", 10.0, start), 3.0));
        // A mailbox done (or whose work is unknown) leaves the division: the big one
        // and `b` share the budget by their work, and `a` is paced at its own budget.
        pacer.set_remaining_units("a@x.example", 0);
        assert_eq!(pacer.paced_units_per_minute("a@x.example"), 600);
        assert_eq!(pacer.paced_units_per_minute("big@x.example"), 600);
        assert_eq!(pacer.paced_units_per_minute("b@x.example"), 400);
    }

    #[test]
    fn a_project_budget_covering_every_mailbox_divides_nothing() {
        let pacer = Pacer::new(config(600));
        pacer.set_remaining_units("big@x.example", 10_000);
        pacer.set_remaining_units("a@x.example", 10);
        assert_eq!(pacer.paced_units_per_minute("a@x.example"), 600);
        assert_eq!(pacer.paced_units_per_minute("big@x.example"), 600);
    }

    #[test]
    fn a_refused_last_part_resynchronizes_and_a_refusal_right_after_cuts() {
        let pacer = Pacer::new(config(600));
        let start = Instant::now();
        let refusal = refused(403, "userRateLimitExceeded");
        assert_eq!(pacer.reserve("a@x.example", 600.0, start), Duration::ZERO);
        // The provider's bucket was a fraction of a unit behind ours: the buckets are
        // put in step (empty), the budget stays.
        pacer.learn("a@x.example", &refusal, start, start, LAST_PART);
        assert_eq!(pacer.stats().budget_cuts, 0);
        assert!(close_to(pacer.reserve("a@x.example", 5.0, start), 0.5));
        // A single call refused once is the same: no cut.
        let second = start + Duration::from_secs(1);
        pacer.learn("b@x.example", &refusal, second, second, None);
        assert_eq!(pacer.stats().budget_cuts, 0);
        // In step, paced at our budget and refused again within a quota minute: the
        // budget is lower than ours.
        let paced = start + Duration::from_secs(2);
        pacer.learn("a@x.example", &refusal, paced, paced, LAST_PART);
        assert_eq!(pacer.stats().budget_cuts, 1);
        assert!((pacer.user_scale("a@x.example", paced) - 0.5).abs() < 1e-6);
        // A refusal a long while after the last one is a new, isolated one.
        let much_later = paced + Duration::from_secs(600);
        pacer.learn("b@x.example", &refusal, much_later, much_later, None);
        assert_eq!(pacer.stats().budget_cuts, 1);
    }

    #[test]
    fn a_refusal_in_a_burst_from_a_full_bucket_measures_the_real_budget() {
        // Paced at 4,000 units a minute where the provider allows 1,000: its full
        // bucket paid for 1,000 units, and a quarter of a minute's refill another 250.
        let pacer = Pacer::new(config(4_000));
        let start = Instant::now();
        for _ in 0..3 {
            pacer.reserve("a@x.example", 500.0, start);
        }
        let refused_at = start + Duration::from_secs(15);
        let half = Some(0.5);
        pacer.learn(
            "a@x.example",
            &refused(403, "userRateLimitExceeded"),
            refused_at,
            start,
            half,
        );
        // 1,500 paced, 250 of them refused: 1,250 over 1.25 minutes of budget.
        let scale = pacer.user_scale("a@x.example", refused_at);
        assert!((scale - 0.25).abs() < 1e-3, "{scale}");
        assert_eq!(pacer.stats().budget_cuts, 1);
    }

    #[test]
    fn many_mailboxes_cut_at_once_lower_the_ceiling_over_all() {
        let pacer = Pacer::new(config(600));
        let start = Instant::now();
        let refusal = refused(403, "userRateLimitExceeded");
        for user in ["a@x.example", "b@x.example", "c@x.example", "d@x.example"] {
            assert_eq!(pacer.reserve(user, 600.0, start), Duration::ZERO);
        }
        // One mailbox cut again and again: the others keep their budget.
        pacer.learn("a@x.example", &refusal, start, start, MAJOR);
        let later = start + Duration::from_millis(10);
        pacer.learn("a@x.example", &refusal, later, later, MAJOR);
        assert!((pacer.user_scale("a@x.example", later) - 0.25).abs() < 1e-6);
        assert!((pacer.ceiling_scale(later) - 1.0).abs() < 1e-9);
        // A second of four mailboxes within the quota minute: every mailbox is paced at
        // half at most, from an empty bucket.
        pacer.learn("b@x.example", &refusal, later, start, MAJOR);
        assert!((pacer.ceiling_scale(later) - 0.5).abs() < 1e-6);
        assert_eq!(pacer.user_units_per_minute("d@x.example"), 300);
        assert!(close_to(pacer.reserve("d@x.example", 5.0, later), 1.0));
        // Its own lower budget still holds for the first.
        assert!((pacer.user_scale("a@x.example", later) - 0.25).abs() < 1e-6);
    }

    #[test]
    fn the_budget_recovers_slowly_and_never_beyond_the_configured_one() {
        let pacer = Pacer::new(config(600));
        let start = Instant::now();
        let refusal = refused(403, "userRateLimitExceeded");
        pacer.reserve("a@x.example", 10.0, start);
        // Not in a burst from a full bucket (it was refused before): nothing measured.
        pacer.learn("a@x.example", &refusal, start, start, None);
        pacer.learn("a@x.example", &refusal, start, start, MAJOR);
        // 1% of the configured budget a quota minute: 10 minutes give back 10%.
        let user = pacer.user_scale("a@x.example", start + Duration::from_secs(600));
        assert!((user - 0.6).abs() < 1e-6, "{user}");
        let project = pacer.project_scale(start + Duration::from_secs(600));
        assert!((project - 1.0).abs() < 1e-6, "{project}");
        let user = pacer.user_scale("a@x.example", start + Duration::from_secs(6_000));
        assert!((user - 1.0).abs() < 1e-9, "{user}");
    }

    #[test]
    fn a_project_refusal_cuts_the_project_budget_only() {
        let mut config = config(1_000);
        config.project_units_per_minute = 600;
        let pacer = Pacer::new(config);
        let start = Instant::now();
        pacer.learn(
            "a@x.example",
            &refused(403, "rateLimitExceeded"),
            start,
            start,
            None,
        );
        let user = pacer.user_scale("a@x.example", start);
        let project = pacer.project_scale(start);
        assert!((user - 1.0).abs() < 1e-9 && (project - 0.5).abs() < 1e-9);
        assert!(close_to(pacer.reserve("b@x.example", 5.0, start), 1.0));
    }

    #[test]
    fn a_share_of_the_project_budget_starts_empty_and_paces_at_the_share() {
        let mut config = config(1_000);
        config.project_units_per_minute = 60;
        let pacer = Pacer::with_project_share(config, 0.5);
        let start = Instant::now();
        // Half of one unit a second; nothing in hand: the others may have spent it.
        assert!(close_to(pacer.reserve("a@x.example", 1.0, start), 2.0));
        // Alone again: the whole budget's pace.
        pacer.set_project_share(1.0);
        let wait = pacer.reserve("a@x.example", 1.0, start);
        assert!(close_to(wait, 2.0), "{wait:?}");
    }

    #[tokio::test]
    async fn refused_parts_of_a_batch_are_a_refusal_of_its_user() {
        let pacer = Pacer::new(config(600));
        let answered: Result<(), ProviderError> =
            pacer.call("a@x.example", 5, || async { Ok(()) }).await;
        answered.unwrap();
        // Half the parts of the answer (a batch) were refused: the caller waits as
        // Google says, and the pacer paces that mailbox lower.
        let refusal = ProviderError::transient(
            ProviderDetail::new("User-rate limit exceeded.")
                .with_status(403)
                .with_reason("userRateLimitExceeded"),
            Some(Duration::from_millis(1)),
        );
        let parts = RefusedParts {
            refused: 25,
            sent: 50,
        };
        pacer
            .wait_before_retry_after("a@x.example", 1, &refusal, parts)
            .await;
        assert_eq!(pacer.stats().budget_cuts, 1);
        assert_eq!(pacer.stats().retries, 1);
        // Its bucket is empty, paced at 5 units a second: 5 units wait about a second
        // (less the few milliseconds since the cut).
        let wait = pacer.reserve("a@x.example", 5.0, Instant::now());
        assert!(wait > Duration::from_millis(900), "{wait:?}");
        assert_eq!(
            pacer.reserve("b@x.example", 5.0, Instant::now()),
            Duration::ZERO
        );
        // One part of five refused (the last, a fraction of a unit short) only puts
        // that mailbox's bucket in step with the provider's.
        let last_part = RefusedParts {
            refused: 1,
            sent: 5,
        };
        pacer
            .wait_before_retry_after("b@x.example", 1, &refusal, last_part)
            .await;
        assert_eq!(pacer.stats().budget_cuts, 1);
        assert_eq!(pacer.user_units_per_minute("b@x.example"), 600);
        // Failed parts that were no refusal (a server error) teach nothing.
        let failed = ProviderError::transient(ProviderDetail::new("Backend Error"), None);
        pacer
            .wait_before_retry_after("a@x.example", 1, &failed, parts)
            .await;
        assert_eq!(pacer.stats().budget_cuts, 1);
    }

    #[tokio::test]
    async fn retries_transient_failures_only_up_to_the_limit() {
        let pacer = Pacer::new(config(15_000));
        let mut calls = 0;
        let outcome: Result<(), ProviderError> = pacer
            .call("a@x.example", 5, || {
                calls += 1;
                async {
                    Err(ProviderError::transient(
                        ProviderDetail::new("Backend Error"),
                        None,
                    ))
                }
            })
            .await;
        assert!(outcome.unwrap_err().is_transient());
        assert_eq!(calls, 3);
        assert_eq!(pacer.stats().retries, 2);

        let mut calls = 0;
        let outcome: Result<(), ProviderError> = pacer
            .call("a@x.example", 5, || {
                calls += 1;
                async {
                    Err(ProviderError::unauthorized(ProviderDetail::new(
                        "Delegation denied",
                    )))
                }
            })
            .await;
        assert!(!outcome.unwrap_err().is_transient());
        assert_eq!(calls, 1);
    }
}
