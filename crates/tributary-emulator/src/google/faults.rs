//! Injectable faults: random 5xx `backendError`, added latency. The decisions are the
//! kit's shared switch ([`crate::kit::FaultSwitch`]); this module keeps Google's settings
//! names and renders an injected error as Gmail's 500 `backendError`. (The per-mailbox
//! "Mail service not enabled" fault lives on the mailbox itself: `Mailbox::mail_enabled`.)

use super::error::ApiError;
use crate::kit;
use serde::{Deserialize, Serialize};
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

impl FaultConfig {
    fn to_kit(&self) -> kit::FaultConfig {
        kit::FaultConfig {
            server_error_probability: self.backend_error_probability,
            token_error_probability: self.token_error_probability,
            latency_ms: self.latency_ms,
            latency_jitter_ms: self.latency_jitter_ms,
            seed: self.seed,
        }
    }

    fn from_kit(config: kit::FaultConfig) -> Self {
        FaultConfig {
            backend_error_probability: config.server_error_probability,
            token_error_probability: config.token_error_probability,
            latency_ms: config.latency_ms,
            latency_jitter_ms: config.latency_jitter_ms,
            seed: config.seed,
        }
    }
}

#[derive(Debug, Default)]
pub struct FaultSwitch {
    inner: kit::FaultSwitch,
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
            inner: kit::FaultSwitch::new(config.to_kit()),
        }
    }

    pub fn config(&self) -> FaultConfig {
        FaultConfig::from_kit(self.inner.config())
    }

    /// Replaces the settings; a seed restarts the decision sequence from it.
    pub fn set_config(&self, config: FaultConfig) -> Result<(), FaultConfigError> {
        config.validate()?;
        // Validated with Google's names above, so the kit accepts it.
        let _ = self.inner.set_config(config.to_kit());
        Ok(())
    }

    pub fn decide(&self) -> FaultDecision {
        let decision = self.inner.decide();
        FaultDecision {
            latency: decision.latency,
            error: decision.server_error.then(ApiError::backend_error),
        }
    }

    /// Whether this token request fails with a transient 500 `internal_failure`.
    pub fn decide_token_error(&self) -> bool {
        self.inner.decide_token_error()
    }

    pub fn totals(&self) -> FaultTotals {
        let totals = self.inner.totals();
        FaultTotals {
            backend_errors: totals.server_errors,
            token_errors: totals.token_errors,
            delayed_requests: totals.delayed_requests,
        }
    }

    pub fn reset_totals(&self) {
        self.inner.reset_totals();
    }
}

/// Google's fault settings as the kit's live settings (control API, scenario files).
impl kit::Settings for FaultConfig {
    type Error = FaultConfigError;

    fn validate(&self) -> Result<(), FaultConfigError> {
        FaultConfig::validate(self)
    }
}

impl kit::LiveSettings for FaultSwitch {
    type Config = FaultConfig;

    fn current(&self) -> FaultConfig {
        self.config()
    }

    fn replace(&self, config: FaultConfig) -> Result<(), FaultConfigError> {
        self.set_config(config)
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
