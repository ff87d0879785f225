//! Scenario files: the settings an emulator starts with, in one format for every
//! provider. A file is read and validated once (`tributary emulate --scenario FILE`),
//! then each provider applies it its own way through [`ScenarioTarget`]:
//!
//! ```json
//! {"quota": {…the provider's limits…}, "faults": {…the provider's faults…},
//!  "time_scale": 60, "mail_disabled": ["erin@acme.example"]}
//! ```
//!
//! `quota` (also spelled `throttling`) and `faults` take the provider's own settings (the
//! fields of its control API's `/quota` or `/throttling` and `/faults`); `time_scale` and
//! `mail_disabled` mean the same for every provider. Reference: `docs/emulator-control.md`.

use super::settings::{LiveSettings, RequestLimits, Settings};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A scenario for a provider whose limits are `Q` and faults `F`. Every part is optional;
/// unknown fields are errors naming the field.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario<Q, F> {
    /// Replaces the request limits in force (absent fields take their defaults); absent,
    /// they are left as they are.
    #[serde(alias = "throttling")]
    pub quota: Option<Q>,
    /// Replaces the fault settings in force, likewise.
    pub faults: Option<F>,
    /// How many times faster than real time the limits' windows pass; set after `quota`,
    /// so it wins over the `time_scale` there.
    pub time_scale: Option<f64>,
    /// Mailboxes whose mail API is off (Gmail: "Mail service not enabled"; Graph:
    /// `MailboxNotEnabledForRESTAPI`), by an address of their user.
    pub mail_disabled: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid scenario file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// `part` is `quota`, `faults` or `time_scale`; `source` the provider's own error.
    #[error("invalid scenario {part}: {source}")]
    Invalid {
        part: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("scenario disables mail for {0}, which is not a user of the organization")]
    UnknownMailbox(String),
}

fn invalid<E: std::error::Error + Send + Sync + 'static>(
    part: &'static str,
) -> impl FnOnce(E) -> ScenarioError {
    move |error| ScenarioError::Invalid {
        part,
        source: Box::new(error),
    }
}

/// A running (or about to run) emulator a scenario applies to.
pub trait ScenarioTarget {
    type Limits: LiveSettings;
    type Faults: LiveSettings;

    fn limits(&self) -> &Self::Limits;
    fn faults(&self) -> &Self::Faults;

    /// Turns the mail API off for every mailbox named, all or nothing: an address that
    /// is nobody's is [`ScenarioError::UnknownMailbox`] and changes nothing.
    fn disable_mail(&self, addresses: &[String]) -> Result<(), ScenarioError>;
}

/// The state as handlers share it.
impl<T: ScenarioTarget> ScenarioTarget for std::sync::Arc<T> {
    type Limits = T::Limits;
    type Faults = T::Faults;

    fn limits(&self) -> &Self::Limits {
        T::limits(self)
    }

    fn faults(&self) -> &Self::Faults {
        T::faults(self)
    }

    fn disable_mail(&self, addresses: &[String]) -> Result<(), ScenarioError> {
        T::disable_mail(self, addresses)
    }
}

impl<Q: RequestLimits, F: Settings> Scenario<Q, F> {
    /// Reads and validates a scenario file.
    pub fn from_path(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let scenario: Self =
            serde_json::from_str(&text).map_err(|source| ScenarioError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        scenario.validate()?;
        Ok(scenario)
    }

    pub fn validate(&self) -> Result<(), ScenarioError> {
        if let Some(quota) = &self.quota {
            quota.validate().map_err(invalid("quota"))?;
        }
        if let Some(faults) = &self.faults {
            faults.validate().map_err(invalid("faults"))?;
        }
        if let Some(time_scale) = self.time_scale {
            // The provider's own check of a time scale, on its default limits.
            Q::default()
                .with_time_scale(time_scale)
                .validate()
                .map_err(invalid("time_scale"))?;
        }
        Ok(())
    }

    /// The limits to set: `quota`, or the ones in force, with `time_scale` applied.
    fn limits(&self, current: impl FnOnce() -> Q) -> Option<Q> {
        let limits = match (&self.quota, self.time_scale) {
            (None, None) => return None,
            (Some(quota), _) => quota.clone(),
            (None, Some(_)) => current(),
        };
        Some(match self.time_scale {
            Some(time_scale) => limits.with_time_scale(time_scale),
            None => limits,
        })
    }

    /// Applies the scenario: mailboxes first (all or nothing), then limits, then faults.
    pub fn apply<T>(&self, target: &T) -> Result<(), ScenarioError>
    where
        T: ScenarioTarget,
        T::Limits: LiveSettings<Config = Q>,
        T::Faults: LiveSettings<Config = F>,
    {
        self.validate()?;
        if !self.mail_disabled.is_empty() {
            target.disable_mail(&self.mail_disabled)?;
        }
        if let Some(limits) = self.limits(|| target.limits().current()) {
            target.limits().replace(limits).map_err(invalid("quota"))?;
        }
        if let Some(faults) = &self.faults {
            target
                .faults()
                .replace(faults.clone())
                .map_err(invalid("faults"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::{FaultConfig, FaultSwitch, WindowConfig, WindowConfigError, WindowLimiter};
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    type Neutral = Scenario<WindowConfig, FaultConfig>;

    struct Target {
        limits: WindowLimiter,
        faults: FaultSwitch,
        disabled: Mutex<BTreeSet<String>>,
    }

    impl Default for Target {
        fn default() -> Self {
            Target {
                limits: WindowLimiter::new(WindowConfig::default()),
                faults: FaultSwitch::default(),
                disabled: Mutex::default(),
            }
        }
    }

    impl ScenarioTarget for Target {
        type Limits = WindowLimiter;
        type Faults = FaultSwitch;

        fn limits(&self) -> &WindowLimiter {
            &self.limits
        }

        fn faults(&self) -> &FaultSwitch {
            &self.faults
        }

        fn disable_mail(&self, addresses: &[String]) -> Result<(), ScenarioError> {
            if let Some(unknown) = addresses.iter().find(|a| !a.ends_with("@x.example")) {
                return Err(ScenarioError::UnknownMailbox(unknown.clone()));
            }
            self.disabled
                .lock()
                .unwrap()
                .extend(addresses.iter().cloned());
            Ok(())
        }
    }

    #[test]
    fn parts_are_optional_and_throttling_is_another_name_for_quota() {
        let scenario: Neutral = serde_json::from_str(
            r#"{"throttling": {"requests_per_window": 5}, "mail_disabled": ["a@x.example"]}"#,
        )
        .unwrap();
        assert_eq!(scenario.quota.as_ref().unwrap().requests_per_window, 5);
        assert_eq!(scenario.quota.unwrap().concurrency, 4, "defaults fill in");
        assert_eq!(scenario.faults, None);

        let error = serde_json::from_str::<Neutral>(r#"{"latency_ms": 5}"#).unwrap_err();
        assert!(
            error.to_string().contains("unknown field `latency_ms`"),
            "{error}"
        );
    }

    #[test]
    fn a_time_scale_applies_to_the_limits_in_force_or_to_the_file_s() {
        let target = Target::default();
        target
            .limits
            .set_config(WindowConfig {
                concurrency: 9,
                ..WindowConfig::default()
            })
            .unwrap();
        let scenario: Neutral = serde_json::from_str(r#"{"time_scale": 60}"#).unwrap();
        scenario.apply(&target).unwrap();
        let limits = target.limits.config();
        assert_eq!((limits.time_scale, limits.concurrency), (60.0, 9));

        let scenario: Neutral =
            serde_json::from_str(r#"{"quota": {"time_scale": 2}, "time_scale": 30}"#).unwrap();
        scenario.apply(&target).unwrap();
        let limits = target.limits.config();
        assert_eq!((limits.time_scale, limits.concurrency), (30.0, 4));
    }

    #[test]
    fn an_unknown_mailbox_changes_nothing() {
        let target = Target::default();
        let scenario: Neutral = serde_json::from_str(
            r#"{"faults": {"latency_ms": 3}, "mail_disabled": ["a@x.example", "b@elsewhere.example"]}"#,
        )
        .unwrap();
        let error = scenario.apply(&target).unwrap_err();
        assert!(matches!(error, ScenarioError::UnknownMailbox(a) if a == "b@elsewhere.example"));
        assert!(target.disabled.lock().unwrap().is_empty());
        assert_eq!(target.faults.config(), FaultConfig::default());
    }

    #[test]
    fn files_report_their_path_and_invalid_values_their_part() {
        let path = std::env::temp_dir().join(format!("kit-scenario-{}.json", std::process::id()));
        std::fs::write(&path, r#"{"time_scale": 0}"#).unwrap();
        let error = Neutral::from_path(&path).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        let ScenarioError::Invalid { part, source } = &error else {
            panic!("{error}");
        };
        assert_eq!(*part, "time_scale");
        assert!(matches!(
            source.downcast_ref::<WindowConfigError>(),
            Some(WindowConfigError::TimeScale(_))
        ));

        let missing = Neutral::from_path(Path::new("/nonexistent/scenario.json")).unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/scenario.json"));
    }
}
