//! The Google Workspace emulator: OAuth token endpoint, Directory, Gmail (and batch), quotas, faults,
//! and the control API. Start it with [`app::start`]; see `docs/emulator.md`.

pub mod app;
pub mod auth;
pub mod batch;
pub mod calendar;
pub mod call;
pub mod control;
pub mod counters;
pub mod directory;
pub mod error;
pub mod faults;
pub mod gmail;
pub mod keyfile;
pub mod mime;
pub mod multipart;
pub mod push;
pub mod quota;
pub mod state;

pub use app::{EmulatorConfig, EmulatorInfo, OrgSource, RunningEmulator, StartError, start};
