//! Everything a request handler can see: the organization, the auth registry, quotas,
//! faults, counters. Shared as `Arc<EmulatorState>`.

use super::auth::AuthRegistry;
use super::counters::Counters;
use super::faults::FaultSwitch;
use super::quota::QuotaLimiter;
use crate::model::Organization;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub struct EmulatorState {
    /// The public root URL clients use as `api_endpoint`, e.g. `http://127.0.0.1:8085`.
    pub base_url: String,
    pub org: RwLock<Organization>,
    /// Service accounts, keys, delegation grants and issued tokens.
    pub auth: AuthRegistry,
    pub quotas: QuotaLimiter,
    pub faults: FaultSwitch,
    pub counters: Counters,
    /// Every user's primary calendar (Calendar v3).
    pub calendars: crate::org::meetings::SharedMeetings,
    /// Gmail watches, Pub/Sub topics and push subscriptions, push deliveries.
    pub push: super::push::PushState,
}

impl EmulatorState {
    /// Reads the organization. A panicking writer cannot leave it half-changed in a way
    /// readers care about, so a poisoned lock is still read.
    pub fn org(&self) -> RwLockReadGuard<'_, Organization> {
        self.org.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the organization (control API, live mail).
    pub fn org_mut(&self) -> RwLockWriteGuard<'_, Organization> {
        self.org.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The emulator's token endpoint (`token_uri` of its key files).
    pub fn token_uri(&self) -> &str {
        self.auth.token_uri()
    }
}
