//! Tributary's sync engine (see `docs/sync.md`): User Delegation Sync turns the
//! directory into members and mailbox links ([`delegation`]); each Gmail link is synced
//! in full, then incrementally from history ([`gmail_sync`]), paced and retried
//! ([`pacing`]); the [`engine`] runs links and records their status, and the
//! [`scheduler`]'s workers run it from the store's job queue.

pub mod delegation;
pub mod engine;
mod error;
pub mod gmail_sync;
mod mailbox_labels;
pub mod pacing;
pub mod runtime;
pub mod scheduler;

pub use delegation::{
    DelegationError, DelegationOutcome, DelegationReport, MailboxLink, MatchedMember, SkipReason,
    SkippedAccount, UnlinkedMember, rebuild_links, sync_users,
};
pub use engine::{EngineConfig, EngineError, LinkOutcome, SyncEngine};
pub use error::SyncError;
pub use gmail_sync::{
    FULL_SYNC_STREAM, GmailLinkSync, HISTORY_STREAM, LABELS_STREAM, LinkRun, SyncMode, SyncSummary,
};
pub use mailbox_labels::{LabelChoice, MailboxLabel, MailboxLabelKind, label_choices};
pub use pacing::{Pacer, PacingConfig, PacingStats};
pub use runtime::{
    ConnectionCheck, DELEGATION_SYNC_JOB, DOMAIN_WIDE_DELEGATION_URL, GoogleSetup, Runtime,
    RuntimeConfig, RuntimeError,
};
pub use scheduler::{JobOutcome, SYNC_LINK_JOB, Worker, WorkerConfig, WorkerError};
