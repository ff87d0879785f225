//! The contract a provider implements, and what a run reports. No provider is named
//! here: a provider's mail source syncs one mailbox link through the neutral
//! [`LinkContext`], and its directory source lists the organization's accounts. The
//! closed [`Connector`](crate::connector::Connector) enum picks the provider.

use crate::error::SyncError;
use crate::link::LinkContext;
use crate::pacing::Pacer;
use serde::{Deserialize, Serialize};
use std::future::Future;
use tributary_core::DirectoryAccount;
use tributary_store::{ConnectionKind, PageSummary};

/// One mailbox's mail, whatever the provider.
///
/// A source keeps its progress in cursor streams named `<provider>.<stream>` (for
/// Gmail `gmail.history`, `gmail.full_sync`, `gmail.labels`): opaque to the store and
/// the engine, committed with the page they describe through [`LinkContext::commit`],
/// so that a crash resumes from the last committed page and never captures twice.
pub trait MailSource {
    /// The provider, as links and connections record it.
    fn kind(&self) -> ConnectionKind;

    /// The cursor streams the source keeps for a link.
    fn cursor_streams(&self) -> &'static [&'static str];

    /// Syncs `link`'s mailbox: a full sync (backfill of the link's containers within
    /// the policy's window) when no incremental cursor exists, an incremental one when
    /// it does, and a full resync when the provider says the cursor is gone. Each run
    /// ends by reconciling what the provider listed against what the store holds; the
    /// gaps it finds come back in the [`LinkRun`].
    fn sync(&self, link: &LinkContext) -> impl Future<Output = Result<LinkRun, SyncError>> + Send;
}

/// The organization's accounts, as the connection's admin sees them.
pub trait DirectorySource {
    fn accounts(
        &self,
        admin_email: &str,
        pacer: &Pacer,
    ) -> impl Future<Output = Result<Vec<DirectoryAccount>, SyncError>> + Send;
}

/// How a run went about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    Full,
    Incremental,
    /// A full sync because the incremental cursor was gone.
    Resync,
}

/// What one run did (stored as the link's last summary, shown in the console).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSummary {
    pub mode: SyncMode,
    /// Messages whose metadata was fetched.
    pub fetched: u64,
    /// New activities.
    pub added: u64,
    /// Sightings of activities known already (another mailbox, an earlier run).
    pub already_known: u64,
    /// Sightings the policy excludes (automated, internal, blocklisted).
    pub excluded: u64,
    /// Messages outside the synced containers or the backfill window.
    pub not_seen: u64,
    /// Messages gone between listing and fetching.
    pub gone: u64,
    /// Containers (Gmail labels, folders) whose backfill completed in this run without
    /// a gap. The stored name is Gmail's, as summaries have always been written.
    #[serde(default)]
    pub labels_backfilled: u64,
    /// Listed or cursor-named messages that none of the counts explains, summed over
    /// containers (a message in two labels counts twice). Not zero: the run is a
    /// `linkage_error`.
    #[serde(default)]
    pub unaccounted: u64,
}

impl SyncSummary {
    pub fn new(mode: SyncMode) -> Self {
        SyncSummary {
            mode,
            fetched: 0,
            added: 0,
            already_known: 0,
            excluded: 0,
            not_seen: 0,
            gone: 0,
            labels_backfilled: 0,
            unaccounted: 0,
        }
    }

    pub(crate) fn add_page(&mut self, page: PageSummary) {
        self.added += page.added;
        self.already_known += page.already_known;
        self.excluded += page.excluded;
    }

    /// Adds the counts of a later part of the run, whose mode the run takes.
    pub(crate) fn absorb(&mut self, later: &SyncSummary) {
        self.mode = later.mode;
        self.fetched += later.fetched;
        self.added += later.added;
        self.already_known += later.already_known;
        self.excluded += later.excluded;
        self.not_seen += later.not_seen;
        self.gone += later.gone;
        self.labels_backfilled += later.labels_backfilled;
        self.unaccounted += later.unaccounted;
    }
}

/// A completed run: what it did, and the gaps its reconciliation found (one line per
/// container, e.g. "INBOX: 3 of 120 messages listed were not captured"). A run with
/// gaps must not leave the link healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRun {
    pub summary: SyncSummary,
    pub gaps: Vec<String>,
}

impl LinkRun {
    pub fn new(summary: SyncSummary) -> Self {
        LinkRun {
            summary,
            gaps: Vec::new(),
        }
    }

    pub(crate) fn absorb(&mut self, later: LinkRun) {
        self.summary.absorb(&later.summary);
        self.gaps.extend(later.gaps);
    }
}
