//! Serializes the store writes of one process's engines.
//!
//! Two store behaviours make concurrent page commits unsafe today:
//! - SQLite: the store's transactions begin with a read and then write (deferred); in
//!   WAL mode SQLite refuses such an upgrade at once with `SQLITE_BUSY` ("database is
//!   locked") when another connection committed in between, without waiting for the busy
//!   timeout.
//! - PostgreSQL: concurrent commits touching the same contacts deadlock (`40P01`, see
//!   `store_retry`), and each recomputes the relationships it touched from what it can
//!   see under READ COMMITTED, so two commits adding activities to one (member, contact)
//!   pair can each miss the other's and the last one writes counts one short.
//!
//! Until the store serializes those itself, link syncs fetch concurrently and take turns
//! to commit here. Several processes sharing one database are not covered.

use std::sync::Arc;
use tokio::sync::{Mutex, MutexGuard};
use tributary_store::Store;

#[derive(Debug, Clone, Default)]
pub struct WriteGate(Arc<Mutex<()>>);

impl WriteGate {
    /// A gate for the writes to `store` (one per store per process).
    pub fn for_store(_store: &Store) -> Self {
        WriteGate::default()
    }

    /// Held while writing.
    pub async fn enter(&self) -> MutexGuard<'_, ()> {
        self.0.lock().await
    }
}
