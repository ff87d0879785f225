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
}

/// A token bucket that may go into debt: a reservation larger than the balance is
/// granted at once and the caller waits until the debt is paid back. So a batch costing
/// more than a full bucket still goes through, at the budget's pace.
#[derive(Debug)]
struct Bucket {
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
        Bucket {
            capacity,
            per_second: capacity / config.minute.as_secs_f64().max(1e-3),
            transit_units: 0.0,
            balance: capacity,
            updated: now,
        }
        .with_transit(config.transit_allowance)
    }

    fn with_transit(mut self, transit: Duration) -> Self {
        self.transit_units = self.per_second * transit.as_secs_f64();
        self
    }

    /// Takes `units` and answers how long after `now` to wait before using them.
    ///
    /// Callers read the clock before they get the lock, so a `now` older than the last
    /// update arrives whenever two tasks race. Time never moves back here: moving
    /// `updated` back would credit the same interval's refill twice, and the provider,
    /// whose bucket saw no such credit, would refuse the request.
    fn reserve(&mut self, units: f64, now: Instant) -> Duration {
        let at = now.max(self.updated);
        let elapsed = at.duration_since(self.updated).as_secs_f64();
        self.balance = (self.balance + elapsed * self.per_second).min(self.capacity);
        self.updated = at;
        // The balance when the call goes out: now, or once the debt is paid.
        let at_sending = self.balance.max(units).min(self.capacity);
        let lost_in_transit = (at_sending + self.transit_units - self.capacity).max(0.0);
        self.balance -= units + lost_in_transit;
        let debt = (-(self.balance + lost_in_transit)).max(0.0);
        let wait = Duration::from_secs_f64(debt / self.per_second);
        (at + wait).duration_since(now)
    }
}

/// One project's pacing: shared by every link of a connection.
#[derive(Debug)]
pub struct Pacer {
    config: PacingConfig,
    project: Mutex<Bucket>,
    users: Mutex<HashMap<String, Bucket>>,
    throttled: AtomicU64,
    retries: AtomicU64,
}

impl Pacer {
    pub fn new(config: PacingConfig) -> Self {
        let project = Bucket::new(config.project_units_per_minute, &config, Instant::now());
        Pacer {
            config,
            project: Mutex::new(project),
            users: Mutex::new(HashMap::new()),
            throttled: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        }
    }

    pub fn config(&self) -> &PacingConfig {
        &self.config
    }

    pub fn stats(&self) -> PacingStats {
        PacingStats {
            throttled: self.throttled.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
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
        let project_wait = lock(&self.project).reserve(units, now);
        let mut users = lock(&self.users);
        let bucket = users
            .entry(user.to_ascii_lowercase())
            .or_insert_with(|| Bucket::new(self.config.user_units_per_minute, &self.config, now));
        bucket.reserve(units, now).max(project_wait)
    }

    /// Runs `call` for `user` after spending `units`, retrying transient failures up to
    /// the configured attempts.
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
            self.acquire(user, units).await;
            match call().await {
                Err(error) if error.is_transient() && attempt < self.config.max_attempts => {
                    self.wait_before_retry(attempt, error.retry_after()).await;
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    /// Sleeps before retry number `attempt` (1 for the first retry).
    pub async fn wait_before_retry(&self, attempt: u32, retry_after: Option<Duration>) {
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
