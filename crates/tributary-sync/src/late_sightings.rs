//! Sightings that join an activity another mailbox captured.
//!
//! Capture decides on the union of a message's sightings, but the engine extracts each
//! sighting alone. A recipient's copy of a message whose only external participant is a
//! Bcc (which only the sender's copy carries) looks internal on its own and is excluded,
//! yet the contract counts that mailbox among the activity's mailboxes. So a sighting
//! excluded only as internal is attached when its activity exists, and otherwise held
//! until the end of the engine's run, when the other mailboxes have been synced (or,
//! under a [`crate::Worker`], for a while: until every link has had its turn).
//!
//! The store skips excluded sightings and has no lookup by dedupe key yet; the one query
//! here stands in for it (see the report of issue 4).

use sqlx::Row;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tributary_core::{Decision, ExclusionReason};
use tributary_store::{CapturedSighting, LinkId, Store, StoreError, TenantId};

/// A sighting waiting for its activity since `since`.
#[derive(Debug, Clone)]
pub struct HeldSighting {
    pub since: Instant,
    pub link: LinkId,
    pub sighting: CapturedSighting,
}

/// Sightings waiting for their activity, shared by the runs of one engine.
#[derive(Debug, Clone, Default)]
pub struct LateSightings(Arc<Mutex<Vec<HeldSighting>>>);

impl LateSightings {
    pub fn hold(&self, link: LinkId, sighting: CapturedSighting) {
        self.hold_again(HeldSighting {
            since: Instant::now(),
            link,
            sighting,
        });
    }

    pub fn hold_again(&self, held: HeldSighting) {
        lock(&self.0).push(held);
    }

    pub fn take(&self) -> Vec<HeldSighting> {
        std::mem::take(&mut *lock(&self.0))
    }

    pub fn len(&self) -> usize {
        lock(&self.0).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether this sighting is excluded only because, on its own, it has no external
/// participant.
pub fn looks_internal_alone(sighting: &CapturedSighting) -> bool {
    sighting.extraction.decision
        == (Decision::Excluded {
            reason: ExclusionReason::Internal,
        })
}

/// Marks a sighting to be stored as a sighting of its (existing) activity.
pub fn attach(mut sighting: CapturedSighting) -> CapturedSighting {
    sighting.extraction.decision = Decision::Captured;
    sighting
}

pub async fn activity_exists(
    store: &Store,
    tenant: &TenantId,
    dedupe_key: &str,
) -> Result<bool, StoreError> {
    let row =
        sqlx::query("SELECT COUNT(*) FROM activities WHERE tenant_id = $1 AND dedupe_key = $2")
            .bind(tenant.as_str())
            .bind(dedupe_key)
            .fetch_one(store.pool())
            .await?;
    Ok(row.try_get::<i64, _>(0)? > 0)
}
