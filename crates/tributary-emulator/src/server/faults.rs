//! Injectable faults: random 5xx `backendError`, added latency. (The per-mailbox
//! "Mail service not enabled" fault lives on the mailbox itself: `Mailbox::mail_enabled`.)

use super::error::ApiError;
use std::time::Duration;

/// What the fault switch decided for one request.
#[derive(Debug, Default)]
pub struct FaultDecision {
    /// Sleep this long before answering.
    pub latency: Option<Duration>,
    /// Answer with this error instead of the real answer.
    pub error: Option<ApiError>,
}

#[derive(Debug, Default)]
pub struct FaultSwitch {}

impl FaultSwitch {
    pub fn decide(&self) -> FaultDecision {
        FaultDecision::default()
    }
}
