//! Tributary domain logic (see ARCHITECTURE.md). Pure: no I/O.
//!
//! The capture model (`docs/capture-model.md`, implementing `docs/capture-contract.md`):
//! a provider-neutral [`MessageRecord`] is parsed ([`parse`]), its participants classified
//! against the tenant ([`tenant`], [`classify`]), automated mail recognized
//! ([`automated`]), companies resolved ([`company`]), keys computed ([`dedupe`]) and the
//! tenant's [`policy`] applied by an [`Extractor`], giving an [`Extraction`]. Captured
//! extractions feed [`relationship`] stats. Calendar occurrences become [`meeting`]s
//! (contact points once ended, upcoming before) under the same directory and policy.

pub mod address;
pub mod automated;
pub mod classify;
pub mod company;
pub mod dedupe;
pub mod display_name;
pub mod extract;
pub mod meeting;
pub mod message;
pub mod parse;
pub mod policy;
pub mod provider;
pub mod relationship;
pub mod settings;
pub mod tenant;

pub use address::{AddressError, EmailAddress, MAX_ADDRESS_LEN};
pub use automated::AutomatedReason;
pub use classify::{Direction, Participant, Role};
pub use company::FreeMailList;
pub use dedupe::{DedupeKey, ThreadKey};
pub use display_name::{ChosenName, NameCandidate, choose_display_name, company_display_name};
pub use extract::{Contact, Decision, ExclusionReason, Extraction, Extractor};
pub use meeting::{
    Attendee, EventType, Meeting, MeetingExclusion, MeetingKey, MeetingParticipant, MeetingStatus,
    Occurrence, OccurrenceError, Response,
};
pub use message::{HeaderField, MessageRecord};
pub use parse::{ParseProblem, ParsedHeaders, ProblemKind};
pub use policy::{
    Blocklist, BlocklistError, CalendarSync, CapturePolicy, MeetingPolicy, PrivacyMode,
};
pub use provider::{
    Audience, DirectoryAccount, FailureCause, FailureSite, HintProvider, INCOMPLETE_RUN_CODE,
    LinkErrorStatus, MISSING_LABEL_CODE, ProviderDetail, ProviderError, ProviderErrorKind,
};
pub use relationship::{CompanyRollup, RelationshipBook, RelationshipStats, Touch};
pub use settings::{MAX_BACKFILL_DAYS, MeetingSettings, PolicyError, PolicySettings};
pub use tenant::{AddressClass, Member, TenantDirectory, TenantError};
