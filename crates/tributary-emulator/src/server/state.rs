//! Everything a request handler can see: the organization, the auth registry, quotas,
//! faults, counters. Shared as `Arc<EmulatorState>`.

use super::counters::Counters;
use super::faults::FaultSwitch;
use super::quota::QuotaLimiter;
use crate::model::Organization;
use std::sync::RwLock;

pub struct EmulatorState {
    /// The public root URL clients use as `api_endpoint`, e.g. `http://127.0.0.1:8085`.
    pub base_url: String,
    pub org: RwLock<Organization>,
    pub quotas: QuotaLimiter,
    pub faults: FaultSwitch,
    pub counters: Counters,
}
