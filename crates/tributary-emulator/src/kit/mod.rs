//! What every provider's emulator shares: token buckets, and request windows with a
//! concurrency cap built from them, that
//! refuse with a neutral [`Refusal`] (each provider renders it its own way), injectable
//! faults, request counters, the control API's plumbing (errors, JSON bodies, live
//! settings handlers), scenario files, output-file helpers, and push delivery (retries and
//! faults for notifications to loopback endpoints). Nothing here knows a
//! provider's wire format, and nothing here imports `crate::google` or
//! `crate::microsoft`.

pub mod bucket;
pub mod control;
pub mod counters;
pub mod faults;
pub mod files;
pub mod push;
pub mod scenario;
pub mod settings;

pub use bucket::{
    Permit, Refusal, RefusalKind, TokenBucket, WindowConfig, WindowConfigError, WindowLimiter,
};
pub use faults::{FaultConfig, FaultConfigError, FaultDecision, FaultSwitch, FaultTotals};
pub use push::{Outbox, Outgoing, PushConfig, PushConfigError, PushTotals, loopback_endpoint};
pub use scenario::{Scenario, ScenarioError, ScenarioTarget};
pub use settings::{LiveSettings, RequestLimits, Settings};
