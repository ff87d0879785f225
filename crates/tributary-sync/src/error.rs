//! Why a sync run failed.

use tributary_core::{LinkErrorStatus, ProviderError};
use tributary_store::StoreError;

/// A failed sync run: the provider refused (classified by the core taxonomy, which gives
/// the link status the admin sees) or the store failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("stored cursor {stream} is unreadable: {value:?}")]
    BadCursor { stream: &'static str, value: String },
}

impl SyncError {
    /// The link status this failure leaves the link in. A store failure is ours, not the
    /// provider's: it is retried like any linkage error.
    pub fn link_status(&self) -> LinkErrorStatus {
        match self {
            SyncError::Provider(error) => error.link_status(),
            SyncError::Store(_) | SyncError::BadCursor { .. } => LinkErrorStatus::LinkageError,
        }
    }

    /// What the admin is shown: the provider's own words when it refused.
    pub fn message(&self) -> String {
        match self {
            SyncError::Provider(error) => error.message().to_owned(),
            other => other.to_string(),
        }
    }
}
