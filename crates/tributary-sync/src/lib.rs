//! Tributary's sync engine (see `docs/sync.md`): User Delegation Sync turns the
//! directory into members and mailbox links ([`delegation`]); each link is synced in
//! full, then incrementally, by its provider's [`source::MailSource`] (Gmail:
//! [`providers::gmail`]) through the neutral [`link::LinkContext`], paced and retried
//! ([`pacing`]); the [`connector::Connector`] is the one place that picks the provider;
//! the [`engine`] runs links and records their status, and the [`scheduler`]'s workers
//! run it from the store's job queue.

pub mod calendar;
pub mod connector;
pub mod delegation;
pub mod engine;
mod error;
pub mod link;
mod mailbox_labels;
pub mod pacing;
pub mod providers;
pub mod push;
pub mod runtime;
pub mod scheduler;
pub mod source;

pub use calendar::{
    CalendarEvent, CalendarNext, CalendarPage, CalendarRequest, CalendarRun, CalendarSource,
};
pub use connector::Connector;
pub use delegation::{
    DelegationError, DelegationOutcome, DelegationReport, DirectoryRead, MailboxLink,
    MatchedMember, ProviderDirectory, SkipReason, SkippedAccount, UnlinkedMember, rebuild_links,
    sync_users,
};
pub use engine::{EngineConfig, EngineError, LinkOutcome, SyncEngine};
pub use error::SyncError;
pub use link::LinkContext;
pub use mailbox_labels::{LabelChoice, MailboxLabel, MailboxLabelKind, label_choices};
pub use pacing::{Pacer, PacingConfig, PacingStats, RefusedParts};
pub use providers::gmail::{
    CALENDAR_STREAM, FULL_SYNC_STREAM, GmailSource, HISTORY_STREAM, LABELS_STREAM,
};
pub use providers::graph::GraphSource;
pub use runtime::{
    ConnectionCheck, DELEGATION_SYNC_JOB, DOMAIN_WIDE_DELEGATION_URL, GoogleSetup,
    MicrosoftCredential, MicrosoftSettings, Runtime, RuntimeConfig, RuntimeError,
    microsoft_connector,
};
pub use scheduler::{JobOutcome, SYNC_LINK_JOB, Worker, WorkerConfig, WorkerError};
pub use source::{DirectorySource, LinkRun, MailSource, SyncMode, SyncSummary};
