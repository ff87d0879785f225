//! Per-method quota units, per-user and per-project budgets per (time-scaled) minute, and
//! a per-user concurrency cap, answering as Gmail does when a budget is spent.
//! Owned by the quota/faults/control work; the request handlers only call `admit`.
//!
//! Each budget is a token bucket (the kit's [`TokenBucket`]) holding at most one quota minute's units and refilling
//! continuously at that many units per quota minute. A client paced at exactly the
//! budget's rate is never refused (it spends ~100% of the budget), a client that was idle
//! may burst one minute's budget, and over any interval of `T` real seconds at most
//! `capacity + rate × T` units are admitted. A sliding window would give the same
//! long-run rate but needs a log of every charge; the bucket is O(1) per request.

use super::error::ApiError;
use crate::kit::bucket::TokenBucket;
use crate::kit::{Permit, Refusal, RefusalKind as NeutralKind};
use axum::http::StatusCode;
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The Gmail methods the emulator charges for, with Google's published unit costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum GmailMethod {
    GetProfile,
    LabelsList,
    LabelsGet,
    MessagesList,
    MessagesGet,
    HistoryList,
    /// Directory `users.list` (not charged against Gmail budgets).
    DirectoryUsersList,
    /// The OAuth token endpoint's JWT-bearer grant (counted, never charged).
    TokenGrant,
    /// Calendar v3 `calendarList.list` and `events.list` (charged one unit each).
    CalendarListList,
    CalendarEventsList,
    /// `users.watch` and `users.stop` (Gmail push).
    Watch,
    Stop,
    /// Calendar v3 `events.watch` and `channels.stop` (one unit each).
    CalendarEventsWatch,
    CalendarChannelsStop,
}

impl GmailMethod {
    /// Every method, in declaration order (`index` is the position here).
    pub const ALL: [GmailMethod; 14] = [
        GmailMethod::GetProfile,
        GmailMethod::LabelsList,
        GmailMethod::LabelsGet,
        GmailMethod::MessagesList,
        GmailMethod::MessagesGet,
        GmailMethod::HistoryList,
        GmailMethod::DirectoryUsersList,
        GmailMethod::TokenGrant,
        GmailMethod::CalendarListList,
        GmailMethod::CalendarEventsList,
        GmailMethod::Watch,
        GmailMethod::Stop,
        GmailMethod::CalendarEventsWatch,
        GmailMethod::CalendarChannelsStop,
    ];

    pub fn units(self) -> u32 {
        match self {
            GmailMethod::GetProfile
            | GmailMethod::LabelsList
            | GmailMethod::LabelsGet
            | GmailMethod::CalendarListList
            | GmailMethod::CalendarEventsList
            | GmailMethod::CalendarEventsWatch
            | GmailMethod::CalendarChannelsStop => 1,
            GmailMethod::MessagesList | GmailMethod::MessagesGet => 5,
            GmailMethod::HistoryList => 2,
            GmailMethod::Watch => 100,
            GmailMethod::Stop => 50,
            GmailMethod::DirectoryUsersList | GmailMethod::TokenGrant => 0,
        }
    }

    /// The method's name as Google's discovery documents spell it.
    pub fn api_name(self) -> &'static str {
        match self {
            GmailMethod::GetProfile => "users.getProfile",
            GmailMethod::LabelsList => "users.labels.list",
            GmailMethod::LabelsGet => "users.labels.get",
            GmailMethod::MessagesList => "users.messages.list",
            GmailMethod::MessagesGet => "users.messages.get",
            GmailMethod::HistoryList => "users.history.list",
            GmailMethod::DirectoryUsersList => "directory.users.list",
            GmailMethod::TokenGrant => "oauth2.token",
            GmailMethod::CalendarListList => "calendar.calendarList.list",
            GmailMethod::CalendarEventsList => "calendar.events.list",
            GmailMethod::Watch => "users.watch",
            GmailMethod::Stop => "users.stop",
            GmailMethod::CalendarEventsWatch => "calendar.events.watch",
            GmailMethod::CalendarChannelsStop => "calendar.channels.stop",
        }
    }

    /// Position in [`GmailMethod::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The costliest read method's units: a budget below this could never admit it (a
/// budget below 100 units also refuses `users.watch` for ever, as it would on Google).
const MAX_METHOD_UNITS: u32 = 5;

/// Quota settings, settable at start (flags, scenario file) and at run time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaConfig {
    /// `false` admits everything: no budgets, no concurrency cap.
    pub enabled: bool,
    /// Google's published default: 15,000 units per user per minute.
    pub per_user_units_per_minute: u32,
    /// Google's published default: 1,200,000 units per project per minute.
    pub per_project_units_per_minute: u32,
    /// Requests one user may have in flight at once. Google does not publish the number;
    /// 10 is our choice.
    pub concurrent_requests_per_user: u32,
    /// How many times faster than real time a quota minute passes: a quota minute lasts
    /// `60 / time_scale` real seconds, so budgets refill `time_scale` times faster while
    /// each minute's budget (and the burst) stays the same. 1.0 is real time.
    pub time_scale: f64,
    /// The consumer named in the per-project error message.
    pub project_number: String,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            enabled: true,
            per_user_units_per_minute: 15_000,
            per_project_units_per_minute: 1_200_000,
            concurrent_requests_per_user: 10,
            time_scale: 1.0,
            project_number: "100000000001".to_string(),
        }
    }
}

/// Why a [`QuotaConfig`] was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuotaConfigError {
    #[error("time_scale must be a finite number above 0, got {0}")]
    TimeScale(f64),
    #[error(
        "{field} must be at least {MAX_METHOD_UNITS} (the costliest method's units), got {value}"
    )]
    BudgetTooSmall { field: &'static str, value: u32 },
    #[error("concurrent_requests_per_user must be at least 1")]
    NoConcurrency,
}

impl QuotaConfig {
    /// No limits at all.
    pub fn unlimited() -> Self {
        QuotaConfig {
            enabled: false,
            ..QuotaConfig::default()
        }
    }

    pub fn validate(&self) -> Result<(), QuotaConfigError> {
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return Err(QuotaConfigError::TimeScale(self.time_scale));
        }
        for (field, value) in [
            ("per_user_units_per_minute", self.per_user_units_per_minute),
            (
                "per_project_units_per_minute",
                self.per_project_units_per_minute,
            ),
        ] {
            if value < MAX_METHOD_UNITS {
                return Err(QuotaConfigError::BudgetTooSmall { field, value });
            }
        }
        if self.concurrent_requests_per_user == 0 {
            return Err(QuotaConfigError::NoConcurrency);
        }
        Ok(())
    }

    /// Real seconds one quota minute lasts.
    pub fn minute_seconds(&self) -> f64 {
        60.0 / self.time_scale
    }

    fn refill_per_second(&self, units_per_minute: u32) -> f64 {
        f64::from(units_per_minute) * self.time_scale / 60.0
    }
}

/// The configured budgets in real-time terms, so a benchmark can compute the
/// quota-bound maximum: over `T` real seconds a user can spend at most
/// `per_user_burst_units + per_user_units_per_second × T` units.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetSnapshot {
    pub enabled: bool,
    pub time_scale: f64,
    /// Real seconds one quota minute lasts.
    pub minute_seconds: f64,
    pub concurrent_requests_per_user: u32,
    pub per_user_units_per_minute: u32,
    /// Sustained rate, in units per real second.
    pub per_user_units_per_second: f64,
    /// Units an idle user may spend at once (one quota minute's budget).
    pub per_user_burst_units: u32,
    pub per_project_units_per_minute: u32,
    pub per_project_units_per_second: f64,
    pub per_project_burst_units: u32,
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    /// 429 `rateLimitExceeded`: too many requests in flight for the user.
    Concurrency,
    /// 403 `userRateLimitExceeded`: the user's budget is spent.
    UserRate,
    /// 403 `rateLimitExceeded`: the project's budget is spent.
    ProjectRate,
}

impl RefusalKind {
    /// Recognises the limiter's own answers (e.g. to classify an error a handler got).
    pub fn of(error: &ApiError) -> Option<RefusalKind> {
        match (error.status.as_u16(), error.reason) {
            (429, "rateLimitExceeded") => Some(RefusalKind::Concurrency),
            (403, "userRateLimitExceeded") => Some(RefusalKind::UserRate),
            (403, "rateLimitExceeded") => Some(RefusalKind::ProjectRate),
            _ => None,
        }
    }
}

/// How many requests each limit refused since start (or the last reset).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RefusalTotals {
    pub concurrency: u64,
    pub user_rate: u64,
    pub project_rate: u64,
}

/// Held while a request runs; dropping it frees the user's concurrency slot.
pub type QuotaPermit = Permit;

#[derive(Debug)]
struct UserState {
    bucket: TokenBucket,
    in_flight: Arc<AtomicU32>,
}

#[derive(Debug)]
struct LimiterState {
    config: QuotaConfig,
    users: HashMap<String, UserState>,
    project: TokenBucket,
}

/// Quota state shared by all requests.
#[derive(Debug)]
pub struct QuotaLimiter {
    state: Mutex<LimiterState>,
    refused_concurrency: AtomicU64,
    refused_user_rate: AtomicU64,
    refused_project_rate: AtomicU64,
}

impl Default for QuotaLimiter {
    fn default() -> Self {
        QuotaLimiter::new(QuotaConfig::default())
    }
}

impl QuotaLimiter {
    /// A limiter with every budget full. An invalid `config` falls back to the defaults
    /// (validate it first with [`QuotaConfig::validate`] to report the problem).
    pub fn new(config: QuotaConfig) -> Self {
        let config = if config.validate().is_ok() {
            config
        } else {
            QuotaConfig::default()
        };
        let project = TokenBucket::full(config.per_project_units_per_minute, Instant::now());
        QuotaLimiter {
            state: Mutex::new(LimiterState {
                config,
                users: HashMap::new(),
                project,
            }),
            refused_concurrency: AtomicU64::new(0),
            refused_user_rate: AtomicU64::new(0),
            refused_project_rate: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LimiterState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn config(&self) -> QuotaConfig {
        self.lock().config.clone()
    }

    /// Replaces the settings. Every budget starts full again (a fresh quota minute);
    /// requests in flight keep their concurrency slots.
    pub fn set_config(&self, config: QuotaConfig) -> Result<(), QuotaConfigError> {
        config.validate()?;
        let now = Instant::now();
        let mut state = self.lock();
        for user in state.users.values_mut() {
            user.bucket = TokenBucket::full(config.per_user_units_per_minute, now);
        }
        state.project = TokenBucket::full(config.per_project_units_per_minute, now);
        state.config = config;
        Ok(())
    }

    pub fn budget_snapshot(&self) -> BudgetSnapshot {
        let config = self.config();
        BudgetSnapshot {
            enabled: config.enabled,
            time_scale: config.time_scale,
            minute_seconds: config.minute_seconds(),
            concurrent_requests_per_user: config.concurrent_requests_per_user,
            per_user_units_per_minute: config.per_user_units_per_minute,
            per_user_units_per_second: config.refill_per_second(config.per_user_units_per_minute),
            per_user_burst_units: config.per_user_units_per_minute,
            per_project_units_per_minute: config.per_project_units_per_minute,
            per_project_units_per_second: config
                .refill_per_second(config.per_project_units_per_minute),
            per_project_burst_units: config.per_project_units_per_minute,
        }
    }

    pub fn refusals(&self) -> RefusalTotals {
        RefusalTotals {
            concurrency: self.refused_concurrency.load(Ordering::Relaxed),
            user_rate: self.refused_user_rate.load(Ordering::Relaxed),
            project_rate: self.refused_project_rate.load(Ordering::Relaxed),
        }
    }

    pub fn reset_refusals(&self) {
        self.refused_concurrency.store(0, Ordering::Relaxed);
        self.refused_user_rate.store(0, Ordering::Relaxed);
        self.refused_project_rate.store(0, Ordering::Relaxed);
    }

    /// Charges `method` to `user`, or answers the error Gmail would give
    /// (403 `userRateLimitExceeded` / `rateLimitExceeded`, 429 for concurrency).
    /// `user` should be the mailbox's primary address; it is compared case-insensitively.
    pub fn admit(&self, user: &str, method: GmailMethod) -> Result<QuotaPermit, ApiError> {
        self.admit_at(user, method, Instant::now())
    }

    /// [`QuotaLimiter::admit`] at a given instant, so tests can move time without sleeping.
    /// Methods worth 0 units (the Directory) are outside Gmail's limits: always admitted,
    /// holding no concurrency slot. A refused request is not charged.
    pub fn admit_at(
        &self,
        user: &str,
        method: GmailMethod,
        now: Instant,
    ) -> Result<QuotaPermit, ApiError> {
        self.try_admit_at(user, method, now)
            .map_err(|refusal| self.render(&refusal))
    }

    /// Gmail's answer to a neutral refusal: 429 `rateLimitExceeded` for concurrency,
    /// 403 `userRateLimitExceeded` for the user's budget, 403 `rateLimitExceeded` for
    /// the project's.
    pub fn render(&self, refusal: &Refusal) -> ApiError {
        match refusal.kind {
            NeutralKind::Concurrency => too_many_concurrent_requests(),
            NeutralKind::Window => user_rate_limit_exceeded(refusal.retry_after),
            NeutralKind::Shared => {
                project_rate_limit_exceeded(&self.lock().config.project_number, refusal.retry_after)
            }
        }
    }

    /// The limiter's decision as the kit's neutral refusal: the user's budget is the
    /// per-key window, the project's the shared one.
    pub fn try_admit_at(
        &self,
        user: &str,
        method: GmailMethod,
        now: Instant,
    ) -> Result<QuotaPermit, Refusal> {
        let units = method.units();
        let mut guard = self.lock();
        let state = &mut *guard;
        if !state.config.enabled || units == 0 {
            return Ok(Permit::unlimited());
        }
        let config = &state.config;
        let user_state = user_entry(&mut state.users, user, config, now);
        if user_state.in_flight.load(Ordering::Acquire) >= config.concurrent_requests_per_user {
            self.refused_concurrency.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal {
                kind: NeutralKind::Concurrency,
                retry_after: Duration::ZERO,
            });
        }
        let user_rate = config.refill_per_second(config.per_user_units_per_minute);
        user_state
            .bucket
            .refill(now, config.per_user_units_per_minute, user_rate);
        if let Some(wait) = user_state.bucket.shortfall(units, user_rate) {
            self.refused_user_rate.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal {
                kind: NeutralKind::Window,
                retry_after: wait,
            });
        }
        let project_rate = config.refill_per_second(config.per_project_units_per_minute);
        state
            .project
            .refill(now, config.per_project_units_per_minute, project_rate);
        if let Some(wait) = state.project.shortfall(units, project_rate) {
            self.refused_project_rate.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal {
                kind: NeutralKind::Shared,
                retry_after: wait,
            });
        }
        user_state.bucket.take(units);
        state.project.take(units);
        Ok(Permit::hold(&user_state.in_flight))
    }

    /// Requests `user` has in flight (holding a permit) right now.
    pub fn in_flight(&self, user: &str) -> u32 {
        self.lock()
            .users
            .get(normalize(user).as_ref())
            .map_or(0, |u| u.in_flight.load(Ordering::Acquire))
    }
}

fn normalize(user: &str) -> Cow<'_, str> {
    if user.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(user.to_ascii_lowercase())
    } else {
        Cow::Borrowed(user)
    }
}

fn user_entry<'a>(
    users: &'a mut HashMap<String, UserState>,
    user: &str,
    config: &QuotaConfig,
    now: Instant,
) -> &'a mut UserState {
    // Look up by reference first so the common case allocates nothing.
    let key = normalize(user);
    if !users.contains_key(key.as_ref()) {
        users.insert(
            key.clone().into_owned(),
            UserState {
                bucket: TokenBucket::full(config.per_user_units_per_minute, now),
                in_flight: Arc::new(AtomicU32::new(0)),
            },
        );
    }
    users
        .get_mut(key.as_ref())
        .expect("user entry was just ensured")
}

/// Whole seconds for `Retry-After`, at least 1: the header has no fractions, and 0 would
/// invite a hot retry loop. The message carries the exact instant (milliseconds).
fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

fn too_many_concurrent_requests() -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rateLimitExceeded",
        "Too many concurrent requests for user",
    )
}

fn user_rate_limit_exceeded(wait: Duration) -> ApiError {
    let retry_at = chrono::Utc::now()
        + chrono::Duration::from_std(wait).unwrap_or_else(|_| chrono::Duration::seconds(60));
    let message = format!(
        "User-rate limit exceeded.  Retry after {}",
        retry_at.to_rfc3339_opts(SecondsFormat::Millis, true)
    );
    ApiError::new(StatusCode::FORBIDDEN, "userRateLimitExceeded", message)
        .with_domain("usageLimits")
        .with_retry_after(retry_after_seconds(wait))
}

fn project_rate_limit_exceeded(project_number: &str, wait: Duration) -> ApiError {
    let message = format!(
        "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service \
         'gmail.googleapis.com' for consumer 'project_number:{project_number}'."
    );
    ApiError::new(StatusCode::FORBIDDEN, "rateLimitExceeded", message)
        .with_domain("usageLimits")
        .with_retry_after(retry_after_seconds(wait))
}

/// Google's quota as the kit's live request limits (control API, scenario files).
impl crate::kit::Settings for QuotaConfig {
    type Error = QuotaConfigError;

    fn validate(&self) -> Result<(), QuotaConfigError> {
        QuotaConfig::validate(self)
    }
}

impl crate::kit::RequestLimits for QuotaConfig {
    fn with_time_scale(self, time_scale: f64) -> Self {
        QuotaConfig { time_scale, ..self }
    }
}

impl crate::kit::LiveSettings for QuotaLimiter {
    type Config = QuotaConfig;

    fn current(&self) -> QuotaConfig {
        self.config()
    }

    fn replace(&self, config: QuotaConfig) -> Result<(), QuotaConfigError> {
        self.set_config(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(per_user: u32, per_project: u32, concurrency: u32, time_scale: f64) -> QuotaConfig {
        QuotaConfig {
            per_user_units_per_minute: per_user,
            per_project_units_per_minute: per_project,
            concurrent_requests_per_user: concurrency,
            time_scale,
            ..QuotaConfig::default()
        }
    }

    /// Admits and immediately releases, so only the budget matters.
    fn spend(limiter: &QuotaLimiter, user: &str, method: GmailMethod, now: Instant) -> bool {
        limiter.admit_at(user, method, now).is_ok()
    }

    #[test]
    fn refusals_are_neutral_and_rendered_as_gmail_s() {
        let limiter = QuotaLimiter::new(config(10, 1_000, 10, 1.0));
        let now = Instant::now();
        let method = GmailMethod::MessagesGet;
        let _ = limiter.try_admit_at("a@x.example", method, now).unwrap();
        let _ = limiter.try_admit_at("a@x.example", method, now).unwrap();
        let refusal = limiter
            .try_admit_at("a@x.example", method, now)
            .unwrap_err();
        assert_eq!(refusal.kind, NeutralKind::Window);
        let error = limiter.render(&refusal);
        assert_eq!(
            (error.status.as_u16(), error.reason),
            (403, "userRateLimitExceeded")
        );
        let shared = Refusal {
            kind: NeutralKind::Shared,
            retry_after: Duration::from_secs(2),
        };
        assert_eq!(limiter.render(&shared).reason, "rateLimitExceeded");
    }

    #[test]
    fn spent_user_budget_answers_user_rate_limit_with_retry_after() {
        let limiter = QuotaLimiter::new(config(10, 1_000, 10, 1.0));
        let now = Instant::now();
        assert!(spend(
            &limiter,
            "a@x.example",
            GmailMethod::MessagesGet,
            now
        ));
        assert!(spend(
            &limiter,
            "a@x.example",
            GmailMethod::MessagesGet,
            now
        ));
        let error = limiter
            .admit_at("a@x.example", GmailMethod::MessagesGet, now)
            .unwrap_err();
        assert_eq!(error.status, StatusCode::FORBIDDEN);
        assert_eq!(error.reason, "userRateLimitExceeded");
        assert_eq!(error.domain, "usageLimits");
        assert!(
            error
                .message
                .starts_with("User-rate limit exceeded.  Retry after 20")
        );
        assert!(error.message.ends_with('Z'));
        // 5 units at 10 units/minute take 30 s to earn back.
        assert_eq!(error.retry_after, Some(30));
        assert_eq!(RefusalKind::of(&error), Some(RefusalKind::UserRate));
        assert_eq!(limiter.refusals().user_rate, 1);
    }

    #[test]
    fn budget_refills_in_scaled_time() {
        // time_scale 60: a quota minute lasts one real second.
        let limiter = QuotaLimiter::new(config(10, 1_000, 10, 60.0));
        let start = Instant::now();
        assert!(spend(
            &limiter,
            "a@x.example",
            GmailMethod::MessagesGet,
            start
        ));
        assert!(spend(
            &limiter,
            "a@x.example",
            GmailMethod::MessagesGet,
            start
        ));
        let refused = limiter
            .admit_at("a@x.example", GmailMethod::MessagesGet, start)
            .unwrap_err();
        assert_eq!(refused.retry_after, Some(1));
        // Half a real second earns 5 units at 10 units per (one-second) minute.
        let later = start + Duration::from_millis(500);
        assert!(spend(
            &limiter,
            "a@x.example",
            GmailMethod::MessagesGet,
            later
        ));
        assert!(!spend(
            &limiter,
            "a@x.example",
            GmailMethod::MessagesGet,
            later
        ));
    }

    #[test]
    fn a_client_paced_at_the_budget_rate_is_never_refused() {
        // 300 units per minute = 5 units per second: one messages.get per second.
        let limiter = QuotaLimiter::new(config(300, 1_000_000, 10, 1.0));
        let start = Instant::now();
        let mut admitted_units = 0;
        for second in 0..600u64 {
            let now = start + Duration::from_secs(second);
            // Drain the initial burst first, then keep to the rate.
            let calls = if second == 0 { 60 } else { 1 };
            for _ in 0..calls {
                assert!(spend(
                    &limiter,
                    "a@x.example",
                    GmailMethod::MessagesGet,
                    now
                ));
                admitted_units += 5;
            }
        }
        // The burst (one minute's budget) plus the refill of the 599 seconds after it.
        assert_eq!(admitted_units, 300 + 599 * 5);
        assert!(!spend(
            &limiter,
            "a@x.example",
            GmailMethod::MessagesGet,
            start + Duration::from_secs(599)
        ));
    }

    #[test]
    fn refused_requests_are_not_charged() {
        let limiter = QuotaLimiter::new(config(10, 1_000, 10, 1.0));
        let now = Instant::now();
        assert!(spend(
            &limiter,
            "a@x.example",
            GmailMethod::MessagesGet,
            now
        ));
        assert!(spend(
            &limiter,
            "a@x.example",
            GmailMethod::MessagesGet,
            now
        ));
        for _ in 0..100 {
            assert!(!spend(
                &limiter,
                "a@x.example",
                GmailMethod::MessagesGet,
                now
            ));
        }
        // 30 s later exactly one 5-unit call is affordable: the refusals cost nothing.
        let later = now + Duration::from_secs(30);
        assert!(spend(
            &limiter,
            "a@x.example",
            GmailMethod::MessagesGet,
            later
        ));
    }

    #[test]
    fn project_budget_is_shared_across_users() {
        let limiter = QuotaLimiter::new(config(100, 12, 10, 1.0));
        let now = Instant::now();
        assert!(spend(
            &limiter,
            "a@x.example",
            GmailMethod::MessagesGet,
            now
        ));
        assert!(spend(
            &limiter,
            "b@x.example",
            GmailMethod::MessagesGet,
            now
        ));
        let error = limiter
            .admit_at("c@x.example", GmailMethod::MessagesGet, now)
            .unwrap_err();
        assert_eq!(error.status, StatusCode::FORBIDDEN);
        assert_eq!(error.reason, "rateLimitExceeded");
        assert_eq!(error.domain, "usageLimits");
        assert_eq!(
            error.message,
            "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of \
             service 'gmail.googleapis.com' for consumer 'project_number:100000000001'."
        );
        // The project refusal did not charge c's own budget: 2 units still fit.
        assert!(spend(
            &limiter,
            "c@x.example",
            GmailMethod::HistoryList,
            now
        ));
        assert_eq!(limiter.refusals().project_rate, 1);
    }

    #[test]
    fn concurrency_cap_answers_429_and_frees_slots_on_drop() {
        let limiter = QuotaLimiter::new(config(1_000, 1_000, 2, 1.0));
        let now = Instant::now();
        let first = limiter
            .admit_at("A@x.example", GmailMethod::GetProfile, now)
            .unwrap();
        let _second = limiter
            .admit_at("a@x.example", GmailMethod::GetProfile, now)
            .unwrap();
        let error = limiter
            .admit_at("a@x.example", GmailMethod::GetProfile, now)
            .unwrap_err();
        assert_eq!(error.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(error.reason, "rateLimitExceeded");
        assert_eq!(error.message, "Too many concurrent requests for user");
        assert_eq!(error.status_text(), "RESOURCE_EXHAUSTED");
        // Another user is unaffected.
        assert!(spend(&limiter, "b@x.example", GmailMethod::GetProfile, now));
        drop(first);
        assert_eq!(limiter.in_flight("a@x.example"), 1);
        assert!(
            limiter
                .admit_at("a@x.example", GmailMethod::GetProfile, now)
                .is_ok()
        );
        assert_eq!(limiter.refusals().concurrency, 1);
    }

    #[test]
    fn directory_calls_are_never_limited() {
        let limiter = QuotaLimiter::new(config(5, 5, 1, 1.0));
        let now = Instant::now();
        let _held = limiter
            .admit_at("admin@x.example", GmailMethod::MessagesGet, now)
            .unwrap();
        for _ in 0..10 {
            assert!(
                limiter
                    .admit_at("admin@x.example", GmailMethod::DirectoryUsersList, now)
                    .is_ok()
            );
        }
    }

    #[test]
    fn disabled_quota_admits_everything() {
        let limiter = QuotaLimiter::new(QuotaConfig {
            per_user_units_per_minute: 5,
            concurrent_requests_per_user: 1,
            ..QuotaConfig::unlimited()
        });
        let now = Instant::now();
        let permits: Vec<_> = (0..50)
            .map(|_| limiter.admit_at("a@x.example", GmailMethod::MessagesGet, now))
            .collect();
        assert!(permits.iter().all(Result::is_ok));
    }

    #[test]
    fn set_config_validates_and_starts_a_fresh_minute() {
        let limiter = QuotaLimiter::new(config(10, 1_000, 10, 1.0));
        let now = Instant::now();
        assert!(spend(
            &limiter,
            "a@x.example",
            GmailMethod::MessagesGet,
            now
        ));
        assert!(spend(
            &limiter,
            "a@x.example",
            GmailMethod::MessagesGet,
            now
        ));
        assert_eq!(
            limiter.set_config(config(10, 1_000, 10, 0.0)),
            Err(QuotaConfigError::TimeScale(0.0))
        );
        assert!(matches!(
            limiter.set_config(config(4, 1_000, 10, 1.0)),
            Err(QuotaConfigError::BudgetTooSmall { .. })
        ));
        limiter.set_config(config(20, 1_000, 10, 1.0)).unwrap();
        let after = Instant::now();
        for _ in 0..4 {
            assert!(spend(
                &limiter,
                "a@x.example",
                GmailMethod::MessagesGet,
                after
            ));
        }
        assert!(!spend(
            &limiter,
            "a@x.example",
            GmailMethod::MessagesGet,
            after
        ));
    }

    #[test]
    fn budget_snapshot_reports_real_time_rates() {
        let limiter = QuotaLimiter::new(config(15_000, 1_200_000, 10, 60.0));
        let budget = limiter.budget_snapshot();
        assert_eq!(budget.minute_seconds, 1.0);
        assert_eq!(budget.per_user_units_per_second, 15_000.0);
        assert_eq!(budget.per_project_units_per_second, 1_200_000.0);
        assert_eq!(budget.per_user_burst_units, 15_000);
    }

    #[test]
    fn config_deserializes_with_defaults_and_names_unknown_fields() {
        let partial: QuotaConfig = serde_json::from_str(r#"{"time_scale": 60}"#).unwrap();
        assert_eq!(partial.time_scale, 60.0);
        assert_eq!(partial.per_user_units_per_minute, 15_000);
        let error = serde_json::from_str::<QuotaConfig>(r#"{"per_user_units": 5}"#).unwrap_err();
        assert!(error.to_string().contains("per_user_units"));
    }
}
