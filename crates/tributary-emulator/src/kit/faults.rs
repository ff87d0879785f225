//! Injectable faults shared by the providers: a chance of a server error per request, a
//! chance of a failed token request, and added latency. The decision is neutral; each
//! provider renders the error its own way.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Chance (0 to 1) that an API request is answered with a server error.
    pub server_error_probability: f64,
    /// Chance (0 to 1) that a token request is answered with a server error.
    pub token_error_probability: f64,
    /// Added to every API request before it is answered.
    pub latency_ms: u64,
    /// A uniformly drawn extra 0..=jitter milliseconds on top of `latency_ms`.
    pub latency_jitter_ms: u64,
    /// Makes the sequence of decisions reproducible.
    pub seed: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultConfigError {
    #[error("{0} must be between 0 and 1, got {1}")]
    Probability(&'static str, f64),
}

impl FaultConfig {
    pub fn validate(&self) -> Result<(), FaultConfigError> {
        for (name, p) in [
            ("server_error_probability", self.server_error_probability),
            ("token_error_probability", self.token_error_probability),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(FaultConfigError::Probability(name, p));
            }
        }
        Ok(())
    }
}

/// What the switch decided for one API request.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FaultDecision {
    pub latency: Option<Duration>,
    pub server_error: bool,
}

#[derive(Debug)]
struct SwitchState {
    config: FaultConfig,
    rng: ChaCha8Rng,
}

/// How many faults were injected since start (or the last reset).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FaultTotals {
    pub server_errors: u64,
    pub token_errors: u64,
    pub delayed_requests: u64,
}

#[derive(Debug)]
pub struct FaultSwitch {
    state: Mutex<SwitchState>,
    server_errors: AtomicU64,
    token_errors: AtomicU64,
    delayed_requests: AtomicU64,
}

impl Default for FaultSwitch {
    fn default() -> Self {
        FaultSwitch::new(FaultConfig::default())
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
        let rng = Self::rng(&config);
        FaultSwitch {
            state: Mutex::new(SwitchState { config, rng }),
            server_errors: AtomicU64::new(0),
            token_errors: AtomicU64::new(0),
            delayed_requests: AtomicU64::new(0),
        }
    }

    fn rng(config: &FaultConfig) -> ChaCha8Rng {
        match config.seed {
            Some(seed) => ChaCha8Rng::seed_from_u64(seed),
            None => ChaCha8Rng::from_entropy(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SwitchState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn config(&self) -> FaultConfig {
        self.lock().config.clone()
    }

    pub fn set_config(&self, config: FaultConfig) -> Result<(), FaultConfigError> {
        config.validate()?;
        let mut state = self.lock();
        state.rng = Self::rng(&config);
        state.config = config;
        Ok(())
    }

    /// Latency first, then the error, drawing from the seeded sequence in that order
    /// (and no draw for a jitter of 0), so a seed gives the same decisions as before the
    /// switch was shared.
    pub fn decide(&self) -> FaultDecision {
        let mut state = self.lock();
        let SwitchState { config, rng } = &mut *state;
        let mut decision = FaultDecision::default();
        if config.latency_ms > 0 || config.latency_jitter_ms > 0 {
            let jitter = match config.latency_jitter_ms {
                0 => 0,
                max => rng.gen_range(0..=max),
            };
            decision.latency = Some(Duration::from_millis(config.latency_ms + jitter));
            self.delayed_requests.fetch_add(1, Ordering::Relaxed);
        }
        if config.server_error_probability > 0.0 && rng.gen_bool(config.server_error_probability) {
            decision.server_error = true;
            self.server_errors.fetch_add(1, Ordering::Relaxed);
        }
        decision
    }

    /// Whether this token request fails with a transient server error.
    pub fn decide_token_error(&self) -> bool {
        let mut state = self.lock();
        let SwitchState { config, rng } = &mut *state;
        let fails =
            config.token_error_probability > 0.0 && rng.gen_bool(config.token_error_probability);
        if fails {
            self.token_errors.fetch_add(1, Ordering::Relaxed);
        }
        fails
    }

    pub fn totals(&self) -> FaultTotals {
        FaultTotals {
            server_errors: self.server_errors.load(Ordering::Relaxed),
            token_errors: self.token_errors.load(Ordering::Relaxed),
            delayed_requests: self.delayed_requests.load(Ordering::Relaxed),
        }
    }

    pub fn reset_totals(&self) {
        self.server_errors.store(0, Ordering::Relaxed);
        self.token_errors.store(0, Ordering::Relaxed);
        self.delayed_requests.store(0, Ordering::Relaxed);
    }
}
