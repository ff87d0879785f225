//! Per-key request windows with a concurrency cap, time-scalable: a window of
//! `requests_per_window` requests over `window_seconds` is a token bucket of that
//! capacity refilled continuously, and `time_scale` makes a window pass that many times
//! faster than real time. The token bucket and the concurrency permit are the parts
//! Google's quota limiter is built from too. Refusals are neutral ([`Refusal`]); Graph renders them as 429
//! `ApplicationThrottled` with `Retry-After`.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The limits of one key (for Graph: one app and one mailbox).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WindowConfig {
    /// `false` admits everything.
    pub enabled: bool,
    pub requests_per_window: u32,
    /// Length of the window in (scaled) seconds.
    pub window_seconds: f64,
    /// Requests one key may have in flight at once.
    pub concurrency: u32,
    /// How many times faster than real time a window passes (1.0 is real time).
    pub time_scale: f64,
}

impl Default for WindowConfig {
    /// Outlook's published per app and mailbox limits: 10,000 requests per 10 minutes,
    /// 4 concurrent requests.
    fn default() -> Self {
        WindowConfig {
            enabled: true,
            requests_per_window: 10_000,
            window_seconds: 600.0,
            concurrency: 4,
            time_scale: 1.0,
        }
    }
}

/// Why a [`WindowConfig`] was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WindowConfigError {
    #[error("time_scale must be a finite number above 0, got {0}")]
    TimeScale(f64),
    #[error("window_seconds must be a finite number above 0, got {0}")]
    Window(f64),
    #[error("requests_per_window and concurrency must be at least 1")]
    Zero,
}

impl WindowConfig {
    pub fn validate(&self) -> Result<(), WindowConfigError> {
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return Err(WindowConfigError::TimeScale(self.time_scale));
        }
        if !(self.window_seconds.is_finite() && self.window_seconds > 0.0) {
            return Err(WindowConfigError::Window(self.window_seconds));
        }
        if self.requests_per_window == 0 || self.concurrency == 0 {
            return Err(WindowConfigError::Zero);
        }
        Ok(())
    }

    /// Requests earned back per real second.
    fn refill_per_second(&self) -> f64 {
        f64::from(self.requests_per_window) * self.time_scale / self.window_seconds
    }
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    /// Too many requests in flight for the key.
    Concurrency,
    /// The key's window is spent.
    Window,
    /// A budget shared by every key is spent (Gmail's per-project quota; Graph's global
    /// per-app limit, not emulated).
    Shared,
}

impl RefusalKind {
    pub const ALL: [RefusalKind; 3] = [
        RefusalKind::Concurrency,
        RefusalKind::Window,
        RefusalKind::Shared,
    ];

    /// The kind's name in counters (`concurrency`, `window`, `shared`).
    pub fn name(self) -> &'static str {
        match self {
            RefusalKind::Concurrency => "concurrency",
            RefusalKind::Window => "window",
            RefusalKind::Shared => "shared",
        }
    }
}

/// A neutral refusal: which limit, and when trying again may succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub retry_after: Duration,
}

impl Refusal {
    /// Whole seconds for a `Retry-After` header: at least 1, rounded up.
    pub fn retry_after_seconds(&self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }
}

/// Held while a request runs; dropping it frees the key's concurrency slot.
#[derive(Debug)]
pub struct Permit {
    slot: Option<Arc<AtomicU32>>,
}

impl Permit {
    /// A permit that holds no slot (limits off, or a call outside them).
    pub fn unlimited() -> Self {
        Permit { slot: None }
    }

    /// Takes one of the slots counted by `in_flight` until the permit is dropped (the
    /// caller has checked the cap under its lock).
    pub fn hold(in_flight: &Arc<AtomicU32>) -> Self {
        in_flight.fetch_add(1, Ordering::AcqRel);
        Permit {
            slot: Some(Arc::clone(in_flight)),
        }
    }
}

/// A token bucket: at most a capacity of units, refilled continuously at a rate. Both
/// providers' limits are made of these (Gmail's per-user and per-project budgets in
/// units, Graph's per app and mailbox windows in requests).
#[derive(Debug, Clone)]
pub struct TokenBucket {
    units: f64,
    refreshed: Instant,
}

/// A request paced exactly at the refill rate must not be refused for a rounding error.
const EPSILON: f64 = 1e-6;

impl TokenBucket {
    pub fn full(capacity: u32, now: Instant) -> Self {
        TokenBucket {
            units: f64::from(capacity),
            refreshed: now,
        }
    }

    /// Full again, keeping the instant of the last refill.
    pub fn fill(&mut self, capacity: u32) {
        self.units = f64::from(capacity);
    }

    /// Adds what was earned since the last refill, up to `capacity`.
    pub fn refill(&mut self, now: Instant, capacity: u32, per_second: f64) {
        if now > self.refreshed {
            let earned = now.duration_since(self.refreshed).as_secs_f64() * per_second;
            self.units = (self.units + earned).min(f64::from(capacity));
            self.refreshed = now;
        }
    }

    /// `None` if `units` are there now, else how long until they will be.
    pub fn shortfall(&self, units: u32, per_second: f64) -> Option<Duration> {
        let missing = f64::from(units) - self.units;
        (missing > EPSILON).then(|| Duration::from_secs_f64(missing / per_second))
    }

    pub fn take(&mut self, units: u32) {
        self.units -= f64::from(units);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(slot) = &self.slot {
            slot.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[derive(Debug)]
struct KeyState {
    window: TokenBucket,
    in_flight: Arc<AtomicU32>,
}

#[derive(Debug)]
struct LimiterState {
    config: WindowConfig,
    keys: HashMap<String, KeyState>,
}

/// Windows and concurrency per key, shared by all requests.
#[derive(Debug)]
pub struct WindowLimiter {
    state: Mutex<LimiterState>,
}

/// How long a concurrency refusal asks the client to wait (Graph sends a short delay).
const CONCURRENCY_RETRY: Duration = Duration::from_secs(1);

impl WindowLimiter {
    /// Every window starts full. An invalid `config` falls back to the defaults.
    pub fn new(config: WindowConfig) -> Self {
        let config = if config.validate().is_ok() {
            config
        } else {
            WindowConfig::default()
        };
        WindowLimiter {
            state: Mutex::new(LimiterState {
                config,
                keys: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LimiterState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn config(&self) -> WindowConfig {
        self.lock().config.clone()
    }

    /// Replaces the limits and refills every window (in-flight counts are kept).
    pub fn set_config(&self, config: WindowConfig) -> Result<(), WindowConfigError> {
        config.validate()?;
        let mut state = self.lock();
        for key in state.keys.values_mut() {
            key.window.fill(config.requests_per_window);
        }
        state.config = config;
        Ok(())
    }

    /// Admits one request of `key` now.
    pub fn admit(&self, key: &str) -> Result<Permit, Refusal> {
        self.admit_at(key, Instant::now())
    }

    /// Admits one request of `key` at `now` (tests pass their own instants).
    pub fn admit_at(&self, key: &str, now: Instant) -> Result<Permit, Refusal> {
        let mut state = self.lock();
        let config = state.config.clone();
        if !config.enabled {
            return Ok(Permit::unlimited());
        }
        let entry = state
            .keys
            .entry(key.to_string())
            .or_insert_with(|| KeyState {
                window: TokenBucket::full(config.requests_per_window, now),
                in_flight: Arc::new(AtomicU32::new(0)),
            });
        let rate = config.refill_per_second();
        entry.window.refill(now, config.requests_per_window, rate);
        if entry.in_flight.load(Ordering::Acquire) >= config.concurrency {
            return Err(Refusal {
                kind: RefusalKind::Concurrency,
                retry_after: CONCURRENCY_RETRY,
            });
        }
        if let Some(wait) = entry.window.shortfall(1, rate) {
            return Err(Refusal {
                kind: RefusalKind::Window,
                retry_after: wait,
            });
        }
        entry.window.take(1);
        Ok(Permit::hold(&entry.in_flight))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refills_continuously_up_to_its_capacity() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::full(10, t0);
        bucket.take(10);
        assert_eq!(bucket.shortfall(5, 2.0), Some(Duration::from_millis(2500)));
        bucket.refill(t0 + Duration::from_secs(2), 10, 2.0);
        assert_eq!(bucket.shortfall(4, 2.0), None);
        assert!(bucket.shortfall(5, 2.0).is_some());
        bucket.refill(t0 + Duration::from_secs(3600), 10, 2.0);
        assert!(
            bucket.shortfall(11, 2.0).is_some(),
            "capped at the capacity"
        );
        bucket.take(10);
        bucket.fill(10);
        assert_eq!(bucket.shortfall(10, 2.0), None);
    }

    #[test]
    fn a_permit_holds_its_slot_until_dropped() {
        let in_flight = Arc::new(AtomicU32::new(0));
        let permit = Permit::hold(&in_flight);
        assert_eq!(in_flight.load(Ordering::Acquire), 1);
        drop(permit);
        assert_eq!(in_flight.load(Ordering::Acquire), 0);
        drop(Permit::unlimited());
    }

    fn config(
        requests: u32,
        window_seconds: f64,
        concurrency: u32,
        time_scale: f64,
    ) -> WindowConfig {
        WindowConfig {
            enabled: true,
            requests_per_window: requests,
            window_seconds,
            concurrency,
            time_scale,
        }
    }

    #[test]
    fn a_spent_window_refuses_until_it_refills_and_keys_are_apart() {
        let limiter = WindowLimiter::new(config(3, 600.0, 10, 1.0));
        let start = Instant::now();
        for _ in 0..3 {
            drop(limiter.admit_at("app/a", start).expect("within the window"));
        }
        let refusal = limiter.admit_at("app/a", start).expect_err("window spent");
        assert_eq!(refusal.kind, RefusalKind::Window);
        // One request comes back every 200 s.
        assert_eq!(refusal.retry_after_seconds(), 200);
        assert!(
            limiter.admit_at("app/b", start).is_ok(),
            "other mailboxes unaffected"
        );
        let later = start + Duration::from_secs(200);
        assert!(limiter.admit_at("app/a", later).is_ok());
    }

    #[test]
    fn time_scale_makes_the_window_pass_faster() {
        let limiter = WindowLimiter::new(config(2, 600.0, 10, 100.0));
        let start = Instant::now();
        let _ = limiter.admit_at("k", start);
        let _ = limiter.admit_at("k", start);
        let refusal = limiter.admit_at("k", start).expect_err("spent");
        assert_eq!(refusal.retry_after, Duration::from_secs(3));
        assert!(
            limiter
                .admit_at("k", start + Duration::from_secs(3))
                .is_ok()
        );
    }

    #[test]
    fn concurrency_is_capped_while_permits_are_held() {
        let limiter = WindowLimiter::new(config(100, 600.0, 4, 1.0));
        let now = Instant::now();
        let held: Vec<Permit> = (0..4)
            .map(|_| limiter.admit_at("k", now).unwrap())
            .collect();
        let refusal = limiter.admit_at("k", now).expect_err("fifth in flight");
        assert_eq!(refusal.kind, RefusalKind::Concurrency);
        drop(held);
        assert!(limiter.admit_at("k", now).is_ok());
    }

    #[test]
    fn a_disabled_limiter_admits_everything() {
        let limiter = WindowLimiter::new(WindowConfig {
            enabled: false,
            ..config(1, 600.0, 1, 1.0)
        });
        let now = Instant::now();
        let _held: Vec<Permit> = (0..10)
            .map(|_| limiter.admit_at("k", now).unwrap())
            .collect();
    }
}
