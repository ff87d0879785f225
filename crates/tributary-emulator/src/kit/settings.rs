//! Settings an emulator takes at start (flags, scenario file) and changes while it runs
//! (control API): request limits and faults. Each provider has its own setting types
//! (its own field names); these traits are what the kit's control handlers and scenario
//! files need from them.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A settings type: JSON in and out, with its own validation.
pub trait Settings: Serialize + DeserializeOwned + Clone + Default + Send + Sync + 'static {
    type Error: std::error::Error + Send + Sync + 'static;

    fn validate(&self) -> Result<(), Self::Error>;
}

/// Request limits that time can be scaled on (Google's quota, Graph's throttling), so a
/// scenario can speed either provider's windows up the same way.
pub trait RequestLimits: Settings {
    /// The same limits with `time_scale` replaced.
    fn with_time_scale(self, time_scale: f64) -> Self;
}

/// Settings held by a running emulator: read and replaced atomically.
pub trait LiveSettings: Send + Sync + 'static {
    type Config: Settings;

    fn current(&self) -> Self::Config;

    /// Validates and replaces the settings in force.
    fn replace(&self, config: Self::Config) -> Result<(), <Self::Config as Settings>::Error>;
}

impl Settings for super::WindowConfig {
    type Error = super::WindowConfigError;

    fn validate(&self) -> Result<(), Self::Error> {
        super::WindowConfig::validate(self)
    }
}

impl RequestLimits for super::WindowConfig {
    fn with_time_scale(self, time_scale: f64) -> Self {
        super::WindowConfig { time_scale, ..self }
    }
}

impl LiveSettings for super::WindowLimiter {
    type Config = super::WindowConfig;

    fn current(&self) -> Self::Config {
        self.config()
    }

    fn replace(&self, config: Self::Config) -> Result<(), super::WindowConfigError> {
        self.set_config(config)
    }
}

impl Settings for super::FaultConfig {
    type Error = super::FaultConfigError;

    fn validate(&self) -> Result<(), Self::Error> {
        super::FaultConfig::validate(self)
    }
}

impl LiveSettings for super::FaultSwitch {
    type Config = super::FaultConfig;

    fn current(&self) -> Self::Config {
        self.config()
    }

    fn replace(&self, config: Self::Config) -> Result<(), super::FaultConfigError> {
        self.set_config(config)
    }
}
