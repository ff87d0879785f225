//! Tributary domain logic (see ARCHITECTURE.md). Pure: no I/O.
//!
//! The capture model (`docs/capture-model.md`, implementing `docs/capture-contract.md`):
//! a provider-neutral [`MessageRecord`] is parsed ([`parse`]), its participants classified
//! against the tenant ([`tenant`], [`classify`]), automated mail recognized
//! ([`automated`]), companies resolved ([`company`]), keys computed ([`dedupe`]) and the
//! tenant's [`policy`] applied by an [`Extractor`], giving an [`Extraction`]. Captured
//! extractions feed [`relationship`] stats.

pub mod address;
pub mod automated;
pub mod classify;
pub mod company;
pub mod dedupe;
pub mod extract;
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
pub use extract::{Contact, Decision, ExclusionReason, Extraction, Extractor};
pub use message::{HeaderField, MessageRecord};
pub use parse::{ParseProblem, ParsedHeaders, ProblemKind};
pub use policy::{Blocklist, BlocklistError, CapturePolicy, PrivacyMode};
pub use provider::{
    Audience, DirectoryAccount, FailureCause, FailureSite, HintProvider, INCOMPLETE_RUN_CODE,
    LinkErrorStatus, MISSING_LABEL_CODE, ProviderDetail, ProviderError, ProviderErrorKind,
};
pub use relationship::{CompanyRollup, RelationshipBook, RelationshipStats, Touch};
pub use settings::{MAX_BACKFILL_DAYS, PolicyError, PolicySettings};
pub use tenant::{AddressClass, Member, TenantDirectory, TenantError};
