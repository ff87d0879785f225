//! Everything a Microsoft handler can see, shared as `Arc<MicrosoftState>`.

use super::counters::Counters;
use super::identity::registry::Identity;
use super::tenant::Tenant;
use crate::kit::{FaultSwitch, WindowLimiter};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

pub struct MicrosoftState {
    /// The https root, e.g. `https://127.0.0.1:8443`.
    pub base_url: String,
    pub tenant: RwLock<Tenant>,
    pub identity: RwLock<Identity>,
    /// Outlook's per app and mailbox windows and concurrency.
    pub throttling: WindowLimiter,
    pub faults: FaultSwitch,
    pub counters: Counters,
    pub token_lifetime: Duration,
    /// Every user's primary calendar (`calendarView/delta`).
    pub calendars: crate::org::meetings::SharedMeetings,
    /// Graph change-notification subscriptions and their deliveries.
    pub subscriptions: super::subscriptions::Subscriptions,
}

impl MicrosoftState {
    /// A panicking writer cannot leave the tenant half-changed in a way readers care
    /// about, so a poisoned lock is still used.
    pub fn tenant(&self) -> RwLockReadGuard<'_, Tenant> {
        self.tenant.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn tenant_mut(&self) -> RwLockWriteGuard<'_, Tenant> {
        self.tenant.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn identity(&self) -> RwLockReadGuard<'_, Identity> {
        self.identity.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn identity_mut(&self) -> RwLockWriteGuard<'_, Identity> {
        self.identity
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// `https://host:port/v1.0`.
    pub fn graph_url(&self) -> String {
        format!("{}/v1.0", self.base_url)
    }
}
