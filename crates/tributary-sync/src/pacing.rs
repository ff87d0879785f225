//! Pacing and retries: every Gmail call spends quota units from a per-user and a
//! per-project token bucket before it is sent, and transient failures are retried with
//! exponential backoff and jitter, never sooner than the provider's `retry_after`.
//!
//! The buckets mirror Google's model (a minute's units, refilling continuously), so a
//! client paced at the budget is never refused; refusals that still happen (another
//! client sharing the project, clock drift) are retried.

use rand::Rng;
use std::cell::RefCell;
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
        }
    }
}

impl PacingConfig {
    /// Refusals met within this long after a cut are the same overrun, not a new one.
    fn cut_cooldown(&self) -> Duration {
        self.minute / 4
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
#[derive(Debug)]
struct Bucket {
    /// The configured budget (scale 1).
    base_capacity: f64,
    base_per_second: f64,
    /// The share of it paced at now (learned from refusals, times the project share).
    scale: f64,
    transit: Duration,
    capacity: f64,
    per_second: f64,
    /// The refill of [`PacingConfig::transit_allowance`].
    transit_units: f64,
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
            transit_units: per_second * config.transit_allowance.as_secs_f64(),
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
        self.transit_units = self.per_second * self.transit.as_secs_f64();
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

    /// Takes `units` and answers how long after `now` to wait before using them.
    ///
    /// Callers read the clock before they get the lock, so a `now` older than the last
    /// update arrives whenever two tasks race. Time never moves back here: moving
    /// `updated` back would credit the same interval's refill twice, and the provider,
    /// whose bucket saw no such credit, would refuse the request.
    fn reserve(&mut self, units: f64, now: Instant) -> Duration {
        let at = self.refill(now);
        // The balance when the call goes out: now, or once the debt is paid.
        let at_sending = self.balance.max(units).min(self.capacity);
        let lost_in_transit = (at_sending + self.transit_units - self.capacity).max(0.0);
        self.balance -= units + lost_in_transit;
        let debt = (-(self.balance + lost_in_transit)).max(0.0);
        let wait = Duration::from_secs_f64(debt / self.per_second);
        (at + wait).duration_since(now)
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

thread_local! {
    /// The user of the last call [`Pacer::call`] answered on this thread. A caller
    /// retrying the failed parts of a call that succeeded (a batch) calls
    /// [`Pacer::wait_before_retry`] right after it, without yielding in between, so this
    /// names the mailbox whose budget the refused parts met.
    /// With it, when that call was paced.
    static LAST_CALL: RefCell<Option<(String, Instant)>> = const { RefCell::new(None) };
}

/// The learned share never falls below this: a budget of zero would stop the sync.
const MIN_SCALE: f64 = 0.01;

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

    /// Cuts the share, unless it was cut at or after `since` (the refusal belongs to an
    /// overrun already answered). Answers whether it cut.
    fn cut(&mut self, now: Instant, since: Instant, factor: f64, per_second: f64) -> bool {
        if self.last_cut.is_some_and(|cut| cut >= since) {
            return false;
        }
        let scale = self.current(now, per_second);
        self.scale = (scale * factor).clamp(MIN_SCALE, 1.0);
        self.last_cut = Some(now);
        true
    }
}

/// What the pacer learned and was told about its budgets.
#[derive(Debug)]
struct Budgets {
    user: Learned,
    project: Learned,
    /// This process's share of the project budget (1 / live workers).
    project_share: f64,
}

/// One project's pacing: shared by every link of a connection.
///
/// Pacing adapts to the provider's real budget: a rate-limit refusal (403
/// `userRateLimitExceeded`, 403 `rateLimitExceeded`) empties the bucket concerned (the
/// provider's is empty) and cuts the budget paced at by [`PacingConfig::refusal_cut`];
/// [`PacingConfig::recovery_per_minute`] of it comes back per quota minute without
/// refusals. The per-user share is learned for the whole connection (an admin lowers
/// every user's quota at once), so one mailbox's refusal spares the others theirs.
#[derive(Debug)]
pub struct Pacer {
    config: PacingConfig,
    project: Mutex<Bucket>,
    users: Mutex<HashMap<String, Bucket>>,
    budgets: Mutex<Budgets>,
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
        Pacer {
            config,
            project: Mutex::new(project),
            users: Mutex::new(HashMap::new()),
            budgets: Mutex::new(Budgets {
                user: Learned::new(now),
                project: Learned::new(now),
                project_share: share,
            }),
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
        lock(&self.budgets).project_share = share.clamp(MIN_SCALE, 1.0);
    }

    /// The per-user budget paced at now, in units per quota minute: the configured one
    /// times what refusals taught. A batch sized by it fits the real budget.
    pub fn user_units_per_minute(&self) -> u32 {
        let (user, _) = self.scales(Instant::now());
        // Truncation is meant: a budget is whole units.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let units = (f64::from(self.config.user_units_per_minute) * user) as u32;
        units.max(1)
    }

    /// The shares of the configured (user, project) budgets paced at now.
    fn scales(&self, now: Instant) -> (f64, f64) {
        let per_second = self.recovery_per_second();
        let mut budgets = lock(&self.budgets);
        let user = budgets.user.current(now, per_second);
        let project = budgets.project.current(now, per_second) * budgets.project_share;
        (user, project)
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
        let (user_scale, project_scale) = self.scales(now);
        let project_wait = {
            let mut project = lock(&self.project);
            project.rescale(project_scale, now);
            project.reserve(units, now)
        };
        let mut users = lock(&self.users);
        let bucket = users
            .entry(user.to_ascii_lowercase())
            .or_insert_with(|| Bucket::new(self.config.user_units_per_minute, &self.config, now));
        bucket.rescale(user_scale, now);
        bucket.reserve(units, now).max(project_wait)
    }

    /// Learns from `error` if it is a rate-limit refusal for `user`'s call: the bucket
    /// concerned is emptied and its budget cut, once per overrun (refusals within a
    /// quarter of a quota minute of the last cut are the same overrun). Answers the
    /// refusal, if it was one.
    pub fn record_refusal(&self, user: &str, error: &ProviderError) -> Option<Refusal> {
        let now = Instant::now();
        let since = now.checked_sub(self.config.cut_cooldown()).unwrap_or(now);
        self.learn(user, error, now, since)
    }

    /// `since`: when the refused call was paced; a cut after it already answered it.
    fn learn(
        &self,
        user: &str,
        error: &ProviderError,
        now: Instant,
        since: Instant,
    ) -> Option<Refusal> {
        let refusal = Refusal::of(error)?;
        self.learn_refusal(Some(&user.to_ascii_lowercase()), refusal, now, since);
        Some(refusal)
    }

    /// A refusal empties the provider's bucket it names, so ours too. A cut empties
    /// every bucket of the budget cut: what we believed was left in them was reckoned
    /// at a budget now known to be too high (the cost is at most one idle burst each).
    fn learn_refusal(&self, user: Option<&str>, refusal: Refusal, now: Instant, since: Instant) {
        self.refusals.fetch_add(1, Ordering::Relaxed);
        let per_second = self.recovery_per_second();
        let factor = self.config.refusal_cut;
        let cut = match refusal {
            Refusal::User => {
                let cut = lock(&self.budgets).user.cut(now, since, factor, per_second);
                let mut users = lock(&self.users);
                if cut {
                    users.values_mut().for_each(|bucket| bucket.empty(now));
                } else if let Some(bucket) = user.and_then(|user| users.get_mut(user)) {
                    bucket.empty(now);
                }
                cut
            }
            Refusal::Project => {
                lock(&self.project).empty(now);
                lock(&self.budgets)
                    .project
                    .cut(now, since, factor, per_second)
            }
            Refusal::Concurrency => false,
        };
        if cut {
            self.budget_cuts.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(?refusal, "rate limit refused a call: pacing lower");
        }
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
                    self.learn(user, &error, Instant::now(), paced);
                    self.sleep_before_retry(attempt, error.retry_after()).await;
                    attempt += 1;
                }
                Err(error) => {
                    self.learn(user, &error, Instant::now(), paced);
                    return Err(error);
                }
                outcome => {
                    let answered = (user.to_ascii_lowercase(), paced);
                    LAST_CALL.with(|last| *last.borrow_mut() = Some(answered));
                    return outcome;
                }
            }
        }
    }

    /// Sleeps before retry number `attempt` (1 for the first retry) of a call `error`
    /// failed for `user`, learning from it if it was a rate-limit refusal.
    pub async fn wait_before_retry_after(&self, user: &str, attempt: u32, error: &ProviderError) {
        self.record_refusal(user, error);
        self.sleep_before_retry(attempt, error.retry_after()).await;
    }

    /// Sleeps before retry number `attempt` (1 for the first retry). Without the error
    /// the refusal cannot be told from a server error for sure; a provider's retry time
    /// comes with throttling only (Google's "Retry after" in the message, `Retry-After`
    /// on a 429), so such a retry cuts the per-user budget like a refusal
    /// ([`Pacer::wait_before_retry_after`] is exact).
    pub async fn wait_before_retry(&self, attempt: u32, retry_after: Option<Duration>) {
        let last = LAST_CALL.with(|last| last.borrow_mut().take());
        if retry_after.is_some() {
            let now = Instant::now();
            let since = match &last {
                Some((_, paced)) => *paced,
                None => now.checked_sub(self.config.cut_cooldown()).unwrap_or(now),
            };
            let user = last.as_ref().map(|(user, _)| user.as_str());
            self.learn_refusal(user, Refusal::User, now, since);
        }
        self.sleep_before_retry(attempt, retry_after).await;
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

    #[test]
    fn a_refusal_empties_the_buckets_and_halves_the_budget_once_per_overrun() {
        let pacer = Pacer::new(config(600));
        let start = Instant::now();
        assert_eq!(pacer.reserve("a@x.example", 100.0, start), Duration::ZERO);
        let refusal = refused(403, "userRateLimitExceeded");
        assert_eq!(
            pacer.learn("a@x.example", &refusal, start, start),
            Some(Refusal::User)
        );
        // Empty, and paced at 5 units a second instead of 10.
        assert!(close_to(pacer.reserve("a@x.example", 5.0, start), 1.0));
        // A mailbox not paced yet has its whole (halved) minute, like Google's.
        assert_eq!(pacer.reserve("b@x.example", 300.0, start), Duration::ZERO);
        assert!(close_to(pacer.reserve("b@x.example", 5.0, start), 1.0));
        // A call paced before that cut was refused in the same overrun: no second cut.
        let later = start + Duration::from_millis(1);
        pacer.learn("b@x.example", &refusal, later, start);
        assert_eq!(pacer.stats().budget_cuts, 1);
        assert_eq!(pacer.stats().refusals, 2);
        // A call paced after it means the budget is lower still.
        pacer.learn("b@x.example", &refusal, later, later);
        assert_eq!(pacer.stats().budget_cuts, 2);
        assert!((pacer.scales(later).0 - 0.25).abs() < 1e-6);
        // A backend error teaches nothing.
        assert_eq!(
            pacer.learn("a@x.example", &refused(503, "backendError"), later, later),
            None
        );
        assert_eq!(pacer.stats().refusals, 3);
    }

    #[test]
    fn the_budget_recovers_slowly_and_never_beyond_the_configured_one() {
        let pacer = Pacer::new(config(600));
        let start = Instant::now();
        pacer.learn(
            "a@x.example",
            &refused(403, "userRateLimitExceeded"),
            start,
            start,
        );
        // 1% of the configured budget a quota minute: 10 minutes give back 10%.
        let (user, project) = pacer.scales(start + Duration::from_secs(600));
        assert!((user - 0.6).abs() < 1e-6, "{user}");
        assert!((project - 1.0).abs() < 1e-6, "{project}");
        let (user, _) = pacer.scales(start + Duration::from_secs(6_000));
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
        );
        let (user, project) = pacer.scales(start);
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
    async fn a_retry_with_the_providers_hint_after_a_call_is_a_refusal_of_its_user() {
        let pacer = Pacer::new(config(600));
        let answered: Result<(), ProviderError> =
            pacer.call("a@x.example", 5, || async { Ok(()) }).await;
        answered.unwrap();
        // Parts of the answer (a batch) were refused: the caller waits as Google says.
        pacer
            .wait_before_retry(1, Some(Duration::from_millis(1)))
            .await;
        assert_eq!(pacer.stats().budget_cuts, 1);
        // Its bucket is empty, paced at 5 units a second: 5 units wait about a second
        // (less the few milliseconds since the cut).
        let wait = pacer.reserve("a@x.example", 5.0, Instant::now());
        assert!(wait > Duration::from_millis(900), "{wait:?}");
        // Without the hint it is a server error: no cut.
        pacer.wait_before_retry(1, None).await;
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
