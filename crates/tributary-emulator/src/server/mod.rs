//! The HTTP server: OAuth token endpoint, Directory, Gmail (and batch), quotas, faults,
//! and the control API.

pub mod counters;
pub mod error;
pub mod faults;
pub mod quota;
pub mod state;
