//! Injectable faults: random 5xx `backendError`, added latency. (The per-mailbox
//! "Mail service not enabled" fault lives on the mailbox itself: `Mailbox::mail_enabled`.)

use super::error::ApiError;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Fault settings, settable at start (flags, scenario file) and at run time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Chance (0 to 1) that a request is answered 500 `backendError` instead.
    pub backend_error_probability: f64,
    /// Chance (0 to 1) that a token request is answered 500 `internal_failure`
    /// (a transient failure google-auth retries). Separate from API faults so that
    /// injecting API errors does not also break token minting.
    pub token_error_probability: f64,
    /// Added to every request before it is answered.
    pub latency_ms: u64,
    /// A uniformly drawn extra 0..=jitter milliseconds on top of `latency_ms`.
    pub latency_jitter_ms: u64,
    /// Makes the sequence of decisions reproducible. Which request gets which decision
    /// still depends on the order requests arrive in.
    pub seed: Option<u64>,
}

impl FaultConfig {
    pub fn validate(&self) -> Result<(), FaultConfigError> {
        for (name, p) in [
            ("backend_error_probability", self.backend_error_probability),
            ("token_error_probability", self.token_error_probability),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(FaultConfigError::Probability(name, p));
            }
        }
        Ok(())
    }
}

/// Why a [`FaultConfig`] was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultConfigError {
    #[error("{0} must be between 0 and 1, got {1}")]
    Probability(&'static str, f64),
}

/// What the fault switch decided for one request.
#[derive(Debug, Default)]
pub struct FaultDecision {
    /// Sleep this long before answering.
    pub latency: Option<Duration>,
    /// Answer with this error instead of the real answer.
    pub error: Option<ApiError>,
}

/// How many faults were injected since start (or the last reset).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FaultTotals {
    pub backend_errors: u64,
    pub token_errors: u64,
    pub delayed_requests: u64,
}

#[derive(Debug)]
struct SwitchState {
    config: FaultConfig,
    rng: ChaCha8Rng,
}

#[derive(Debug)]
pub struct FaultSwitch {
    state: Mutex<SwitchState>,
    backend_errors: AtomicU64,
    token_errors: AtomicU64,
    delayed_requests: AtomicU64,
}

impl Default for FaultSwitch {
    fn default() -> Self {
        FaultSwitch::new(FaultConfig::default())
    }
}

fn rng_for(config: &FaultConfig) -> ChaCha8Rng {
    match config.seed {
        Some(seed) => ChaCha8Rng::seed_from_u64(seed),
        None => ChaCha8Rng::from_entropy(),
    }
}

impl FaultSwitch {
    /// A switch with `config`; an invalid one injects nothing (validate it first with
    /// [`FaultConfig::validate`] to report the problem).
    pub fn new(config: FaultConfig) -> Self {
        let config = if config.validate().is_ok() {
            config
        } else {
            FaultConfig::default()
        };
        FaultSwitch {
            state: Mutex::new(SwitchState {
                rng: rng_for(&config),
                config,
            }),
            backend_errors: AtomicU64::new(0),
            token_errors: AtomicU64::new(0),
            delayed_requests: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SwitchState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn config(&self) -> FaultConfig {
        self.lock().config.clone()
    }

    /// Replaces the settings; a seed restarts the decision sequence from it.
    pub fn set_config(&self, config: FaultConfig) -> Result<(), FaultConfigError> {
        config.validate()?;
        let mut state = self.lock();
        state.rng = rng_for(&config);
        state.config = config;
        Ok(())
    }

    pub fn decide(&self) -> FaultDecision {
        let mut guard = self.lock();
        let SwitchState { config, rng } = &mut *guard;
        let mut decision = FaultDecision::default();
        if config.latency_ms > 0 || config.latency_jitter_ms > 0 {
            let jitter = match config.latency_jitter_ms {
                0 => 0,
                max => rng.gen_range(0..=max),
            };
            decision.latency = Some(Duration::from_millis(config.latency_ms + jitter));
            self.delayed_requests.fetch_add(1, Ordering::Relaxed);
        }
        if config.backend_error_probability > 0.0 && rng.gen_bool(config.backend_error_probability)
        {
            decision.error = Some(ApiError::backend_error());
            self.backend_errors.fetch_add(1, Ordering::Relaxed);
        }
        decision
    }

    /// Whether this token request fails with a transient 500 `internal_failure`.
    pub fn decide_token_error(&self) -> bool {
        let mut guard = self.lock();
        let SwitchState { config, rng } = &mut *guard;
        let fails =
            config.token_error_probability > 0.0 && rng.gen_bool(config.token_error_probability);
        if fails {
            self.token_errors.fetch_add(1, Ordering::Relaxed);
        }
        fails
    }

    pub fn totals(&self) -> FaultTotals {
        FaultTotals {
            backend_errors: self.backend_errors.load(Ordering::Relaxed),
            token_errors: self.token_errors.load(Ordering::Relaxed),
            delayed_requests: self.delayed_requests.load(Ordering::Relaxed),
        }
    }

    pub fn reset_totals(&self) {
        self.backend_errors.store(0, Ordering::Relaxed);
        self.token_errors.store(0, Ordering::Relaxed);
        self.delayed_requests.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn switch(probability: f64, seed: Option<u64>) -> FaultSwitch {
        FaultSwitch::new(FaultConfig {
            backend_error_probability: probability,
            seed,
            ..FaultConfig::default()
        })
    }

    #[test]
    fn default_injects_nothing() {
        let faults = FaultSwitch::default();
        for _ in 0..1_000 {
            let decision = faults.decide();
            assert!(decision.error.is_none() && decision.latency.is_none());
        }
        assert_eq!(faults.totals(), FaultTotals::default());
    }

    #[test]
    fn probability_one_always_fails_with_backend_error() {
        let faults = switch(1.0, None);
        for _ in 0..100 {
            let error = faults.decide().error.expect("an injected error");
            assert_eq!(error.status, StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(error.reason, "backendError");
            assert_eq!(error.message, "Backend Error");
        }
        assert_eq!(faults.totals().backend_errors, 100);
    }

    #[test]
    fn a_seed_makes_decisions_reproducible() {
        let pattern = |faults: &FaultSwitch| -> Vec<bool> {
            (0..200).map(|_| faults.decide().error.is_some()).collect()
        };
        let first = pattern(&switch(0.3, Some(7)));
        assert_eq!(first, pattern(&switch(0.3, Some(7))));
        assert_ne!(first, pattern(&switch(0.3, Some(8))));
        let failures = first.iter().filter(|f| **f).count();
        assert!((20..=100).contains(&failures), "{failures} of 200 at p=0.3");
    }

    #[test]
    fn latency_stays_within_jitter() {
        let faults = FaultSwitch::new(FaultConfig {
            latency_ms: 20,
            latency_jitter_ms: 5,
            seed: Some(1),
            ..FaultConfig::default()
        });
        let delays: Vec<Duration> = (0..200).map(|_| faults.decide().latency.unwrap()).collect();
        assert!(delays.iter().all(|d| (20..=25).contains(&d.as_millis())));
        assert!(delays.iter().any(|d| *d != delays[0]), "jitter varies");
        assert_eq!(faults.totals().delayed_requests, 200);
    }

    #[test]
    fn set_config_rejects_a_bad_probability_and_applies_a_good_one() {
        let faults = FaultSwitch::default();
        assert_eq!(
            faults.set_config(FaultConfig {
                backend_error_probability: 1.5,
                ..FaultConfig::default()
            }),
            Err(FaultConfigError::Probability(
                "backend_error_probability",
                1.5
            ))
        );
        faults
            .set_config(FaultConfig {
                backend_error_probability: 1.0,
                ..FaultConfig::default()
            })
            .unwrap();
        assert!(faults.decide().error.is_some());
    }
}
