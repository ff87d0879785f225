//! A local emulator of the cloud APIs Tributary reads: Google Workspace (OAuth token,
//! Directory, Gmail) and Microsoft 365 (identity platform, Graph). Both serve the same
//! synthetic organization generated from a seed (`org`) with the ground truth a correct
//! capture of it must produce (`truth`). What both providers share (time-scaled request
//! windows and the neutral refusal they produce) lives in `kit`; `google` and `microsoft`
//! never import each other. See `docs/emulator.md`.

pub mod google;
pub mod kit;
pub mod microsoft;
pub mod model;
pub mod org;
pub mod truth;

/// The Google emulator under its historical name: callers use `tributary_emulator::server::…`.
pub use google as server;

#[cfg(feature = "testing")]
pub mod testing;
