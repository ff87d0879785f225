//! Tributary's store: the SQL schema, migrations and repositories, on SQLite (the
//! embedded default, a file in the data directory) or PostgreSQL (scale-out).
//!
//! One code path serves both backends through sqlx's `Any` driver; SQL is written with
//! `$N` placeholders, which SQLite accepts too. Migrations live in `migrations/sqlite`
//! and `migrations/postgres` and run on [`Store::open`].
//!
//! Captured activity is immutable but for two changes: no function here deletes it or
//! updates it, except to lower the time of an activity timed by a receipt (no Date
//! header) when an earlier copy arrives, and to let a member added later claim the
//! participant rows its addresses were captured with as `internal`; triggers on both
//! backends refuse anything else (see `docs/store.md`, "Immutability"). [`Store::commit_page`] writes one
//! page of captured messages and the cursor advance in a single transaction, so a crash
//! never loses or doubles anything.

mod accounts;
mod api_reads;
mod audit_reads;
mod budget;
mod capture;
mod error;
mod files;
mod first_run;
mod jobs;
mod labels;
mod links;
mod meetings;
mod members;
mod membership;
mod progress;
mod push;
mod read;
mod relationship;
mod secrets;
mod settings;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod tx;

pub use accounts::{
    API_TOKEN_PREFIX, AccountError, ApiTokenAuth, ApiTokenId, ApiTokenView, NewApiToken,
    NewSession, SessionView, UserCredentials, UserId, UserView, token_hash,
};
pub use api_reads::{
    ActivityCursor, ActivityFilter, ActivityPage, CompanyPage, ContactFilter, ContactPage,
    RelationshipCursor, RelationshipFilter, RelationshipPage,
};
pub use audit_reads::{AuditActors, AuditCursor, AuditEntry, AuditFilter, AuditPage};
pub use budget::{HeldLeases, LiveWorkers, RunningLink};
pub use capture::{CapturePage, CapturedSighting, CursorAdvance, PageSummary};
pub use error::StoreError;
pub use files::create_private_dir;
pub use first_run::Installation;
pub use jobs::{HeldJob, JobId, LeaseScope, LeasedJob};
pub use labels::{LabelReconciliation, label_key};
pub use links::{
    AuditEvent, LinkFailure, LinkStatus, LinkView, SYSTEM_ACTOR, summary_found_nothing,
};
pub use meetings::{
    CalendarCounts, CalendarSighting, CalendarState, CalendarSummary, MAX_MEETINGS_READ,
    MeetingCursor, MeetingFilter, MeetingPage, MeetingParticipantView, MeetingView, MeetingsOf,
};
pub use progress::{LinkProgress, LinkRunRecord, MAX_RECENT_RUNS, StoredCursor};
pub use push::{LinkPush, PushChannelRecord, PushMode, secret_hash, secret_matches};
pub use read::{
    ActivityView, CapturedBy, CompanyRank, CompanyRanking, CompanyView, ContactView, Found,
    MemberStrength, ParticipantView, ReadScope, RelationshipView, TimelineCursor, TimelineOf,
    TimelinePage, address_matches,
};
pub use relationship::MeetingTie;
pub use secrets::{MASTER_KEY_ENV, MASTER_KEY_FILE, MasterKey, Sealed, SecretBytes, SecretError};
pub use settings::{ConnectionView, TenantSettings};
pub use store::{
    Backend, ConnectionKind, DATABASE_FILE, LinkId, MemberId, MemberRole, MemberView, Store,
    TenantId,
};
