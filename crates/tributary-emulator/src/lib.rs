//! A local emulator of the Google Workspace APIs Tributary uses: a synthetic organization
//! generated from a seed (`org`), the ground truth a correct capture of it must produce
//! (`truth`), and an HTTP server speaking Google's OAuth token, Directory and Gmail
//! protocols with quotas and injectable faults (`server`). See `docs/emulator.md`.

pub mod model;
pub mod org;
pub mod server;
pub mod truth;

#[cfg(feature = "testing")]
pub mod testing;
