//! Gmail behind the contract: one mailbox link's full sync (backfill of the link's
//! labels), backfill of labels enabled later, and incremental sync (history since the
//! stored cursor), committed page by page through the neutral [`LinkContext`], each
//! ending with a reconciliation of what Gmail listed against what the store accounts
//! for (see `docs/sync.md`). The directory source reads Google's Directory API.
//!
//! This is the only module that speaks Gmail; the rest of the engine sees
//! [`ProviderError`]s and
//! [`SyncSummary`](crate::source::SyncSummary)s.

mod calendar;
mod directory;
mod full;
mod history;
mod labels;
mod messages;
mod push;

pub use calendar::CALENDAR_STREAM;

use crate::error::SyncError;
use crate::link::{LinkContext, contains_container};
use crate::source::{LinkRun, MailSource, SyncMode};
use tributary_core::ProviderError;
use tributary_google::{GmailClient, GoogleConnector};
use tributary_store::{ConnectionKind, CursorAdvance};

/// The cursor stream holding the mailbox's history id once a full sync has completed.
pub const HISTORY_STREAM: &str = "gmail.history";
/// The cursor stream holding a full sync's progress, so a crash resumes where it was.
pub const FULL_SYNC_STREAM: &str = "gmail.full_sync";
/// The cursor stream holding the labels backfilled (listed in the window, captured and
/// reconciled without a gap), and the progress of a later label's backfill.
pub const LABELS_STREAM: &str = "gmail.labels";

/// Gmail's page-size maximum for `messages.list` and `history.list`.
const MAX_PAGE_SIZE: u32 = 500;

/// A container in the admin's words, for the gaps a reconciliation reports.
const CONTAINER: &str = "label";

/// Google Workspace as a mail and directory source: the tenant's service-account
/// connector, impersonating each mailbox (and the admin for the directory).
#[derive(Debug, Clone)]
pub struct GmailSource {
    connector: GoogleConnector,
}

impl GmailSource {
    pub fn new(connector: GoogleConnector) -> Self {
        GmailSource { connector }
    }

    pub fn connector(&self) -> &GoogleConnector {
        &self.connector
    }
}

impl MailSource for GmailSource {
    fn kind(&self) -> ConnectionKind {
        ConnectionKind::Google
    }

    fn cursor_streams(&self) -> &'static [&'static str] {
        &[HISTORY_STREAM, FULL_SYNC_STREAM, LABELS_STREAM]
    }

    async fn sync(&self, link: &LinkContext) -> Result<LinkRun, SyncError> {
        let run = GmailLink {
            gmail: self.connector.gmail(&link.mailbox),
            link,
        };
        run.run().await
    }
}

/// One run of one mailbox link.
struct GmailLink<'a> {
    gmail: GmailClient,
    link: &'a LinkContext,
}

impl GmailLink<'_> {
    /// Incremental when a history cursor exists (after backfilling the labels enabled
    /// since the last backfill), else a full sync (resuming an interrupted one); a gone
    /// history cursor falls back to a full resync (resuming one begun after that cursor).
    async fn run(&self) -> Result<LinkRun, SyncError> {
        self.link.retain_reconciliation().await?;
        let Some(cursor) = self.link.cursor(HISTORY_STREAM).await? else {
            return self.full_sync(SyncMode::Full, None).await;
        };
        let start = cursor.parse().map_err(|_| SyncError::BadCursor {
            stream: HISTORY_STREAM,
            value: cursor.clone(),
        })?;
        let mut run = self.backfill_new_labels().await?;
        match self.incremental_sync(start).await {
            Err(SyncError::Provider(ProviderError::CursorGone(detail))) => {
                tracing::info!(mailbox = ?self.link.mailbox, ?detail, "history gone; full resync");
                run.absorb(self.full_sync(SyncMode::Resync, Some(start)).await?);
            }
            outcome => run.absorb(outcome?),
        }
        Ok(run)
    }

    /// The link's labels among `labels`, spelled as the link's policy spells them.
    fn synced_labels_of(&self, labels: &[String]) -> Vec<String> {
        self.link
            .policy
            .synced_labels
            .iter()
            .filter(|synced| contains_label(labels, synced))
            .cloned()
            .collect()
    }
}

fn history_cursor(history_id: u64) -> CursorAdvance {
    CursorAdvance {
        stream: HISTORY_STREAM.to_owned(),
        value: history_id.to_string(),
    }
}

/// Whether `labels` holds `label`, compared as Gmail compares label ids here:
/// case-insensitively.
fn contains_label(labels: &[String], label: &str) -> bool {
    contains_container(labels, label)
}
