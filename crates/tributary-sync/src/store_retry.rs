//! Committing a page again when PostgreSQL aborted it for a conflict with a concurrent
//! one.
//!
//! Pages of different mailboxes share contacts, companies and relationships, and the
//! store's `commit_page` locks those rows in the order the page names them, so two
//! concurrent commits can deadlock (`40P01`); PostgreSQL then aborts one of them. The
//! transaction was rolled back whole, so committing the same page again is safe. (Within
//! one process the engine's [`crate::WriteGate`] already serializes commits; this covers
//! several workers sharing one database.)

use rand::Rng;
use std::time::Duration;
use tributary_store::{
    CapturePage, CursorAdvance, LinkId, PageSummary, Store, StoreError, TenantId,
};

/// Attempts per page, the first included.
const MAX_ATTEMPTS: u32 = 5;

pub async fn commit_page(
    store: &Store,
    tenant: &TenantId,
    link: LinkId,
    page: &CapturePage,
    cursor: Option<&CursorAdvance>,
) -> Result<PageSummary, StoreError> {
    let mut attempt = 1;
    loop {
        match store.commit_page(tenant, link, page, cursor).await {
            Err(error) if is_conflict(&error) && attempt < MAX_ATTEMPTS => {
                tracing::debug!(%error, attempt, "page commit conflicted; committing again");
                let pause = rand::thread_rng().gen_range(5..=25) * u64::from(attempt);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// A deadlock or serialization failure: the transaction was aborted and may be rerun.
fn is_conflict(error: &StoreError) -> bool {
    let StoreError::Database(sqlx::Error::Database(database)) = error else {
        return false;
    };
    matches!(database.code().as_deref(), Some("40P01" | "40001"))
}
