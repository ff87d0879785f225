//! Microsoft 365 (Graph) behind the contract: one mailbox link's folders synced by
//! per-folder message delta, committed page by page through the neutral
//! [`LinkContext`], each run ending with a reconciliation of what the delta listed
//! against what the store accounts for, per folder (see `docs/sync.md`, "Microsoft
//! 365"). The directory source lists the organization's users with every SMTP address.
//!
//! Cursors: [`DELTA_STREAM`] holds, per container, the link to follow next (a delta
//! link once a round is complete, a next link in the middle of one); [`FULL_SYNC_STREAM`]
//! holds a full sync's progress so that a crash resumes where it was. Both are opaque
//! to the store and committed with the page they describe.
//!
//! Pacing: every Graph request spends [`GRAPH_REQUEST_UNITS`] of the connection's
//! [`Pacer`](crate::pacing::Pacer) per mailbox, so Graph's 10,000 requests per ten
//! minutes per mailbox fit the per-user budget; a link's requests run one at a time and
//! header batches in four lanes, so a mailbox never sees more than Outlook's four
//! concurrent requests ([`MAILBOX_CONCURRENCY`]); transient failures (429 and 5xx) are
//! retried by the pacer after Graph's `Retry-After`.

mod calendar;
mod delta;
mod directory;
mod folders;
mod push;

use crate::error::SyncError;
use crate::link::{ContainerTally, LinkContext, Outcome};
use crate::source::{LinkRun, MailSource, SyncMode, SyncSummary};
use std::future::Future;
use tributary_core::{HeaderField, ProviderError};
use tributary_microsoft::{GraphMessage, MAILBOX_CONCURRENCY, MailClient, MicrosoftConnector};
use tributary_store::{CapturedSighting, ConnectionKind};

pub use calendar::CALENDAR_STREAM;

/// The cursor stream holding, per container, the delta (or next) link to follow.
pub const DELTA_STREAM: &str = "graph.mail.delta";
/// The cursor stream holding a full sync's progress, so a crash resumes where it was.
pub const FULL_SYNC_STREAM: &str = "graph.full_sync";

/// What one Graph request costs in the pacer's units. The pacer's per-user budget is
/// Gmail's (15,000 units a minute); Graph allows a mailbox 10,000 requests per ten
/// minutes, i.e. 1,000 a minute: 15 units a request keeps a mailbox within it.
pub const GRAPH_REQUEST_UNITS: u32 = 15;

/// Graph's `odata.maxpagesize` ceiling for message delta.
const MAX_PAGE_SIZE: u32 = 1000;

/// A container in the admin's words, for the gaps a reconciliation reports.
const CONTAINER: &str = "folder";

// A link's requests are sequential and header batches run in this many lanes.
const _: () = assert!(MAILBOX_CONCURRENCY <= 4);

/// Microsoft 365 as a mail and directory source: the tenant's app-only connector
/// (client credentials), reading each mailbox by its address.
#[derive(Debug, Clone)]
pub struct GraphSource {
    connector: MicrosoftConnector,
}

impl GraphSource {
    pub fn new(connector: MicrosoftConnector) -> Self {
        GraphSource { connector }
    }

    pub fn connector(&self) -> &MicrosoftConnector {
        &self.connector
    }
}

impl MailSource for GraphSource {
    fn kind(&self) -> ConnectionKind {
        ConnectionKind::Microsoft
    }

    fn cursor_streams(&self) -> &'static [&'static str] {
        &[DELTA_STREAM, FULL_SYNC_STREAM]
    }

    async fn sync(&self, link: &LinkContext) -> Result<LinkRun, SyncError> {
        let run = GraphLink {
            mail: self.connector.mailbox(&link.mailbox),
            link,
        };
        run.run().await
    }
}

/// One run of one mailbox link.
struct GraphLink<'a> {
    mail: MailClient,
    link: &'a LinkContext,
}

impl GraphLink<'_> {
    /// Incremental when delta links exist, else a full sync (resuming an interrupted
    /// one); a delta (or next) link Graph no longer keeps (410) falls back to a full
    /// resync from scratch: the store dedupes what was captured already.
    async fn run(&self) -> Result<LinkRun, SyncError> {
        self.link.retain_reconciliation().await?;
        let outcome = match self
            .link
            .json_state::<delta::DeltaState>(DELTA_STREAM)
            .await?
        {
            None => self.full_sync(SyncMode::Full).await,
            Some(state) => self.incremental_sync(state).await,
        };
        match outcome {
            Err(SyncError::Provider(ProviderError::CursorGone(detail))) => {
                tracing::info!(mailbox = ?self.link.mailbox, ?detail, "delta gone; full resync");
                self.full_sync(SyncMode::Resync).await
            }
            outcome => outcome,
        }
    }

    /// Runs one Graph request for this mailbox, paced and retried.
    async fn call<T, F, Fut>(&self, units: u32, call: F) -> Result<T, SyncError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        Ok(self.link.pacer.call(self.mail.user(), units, call).await?)
    }

    fn page_size(&self) -> u32 {
        self.link.page_size.clamp(1, MAX_PAGE_SIZE)
    }

    /// Captures one delta page's messages as sightings of `container`, counting each in
    /// `tally`; answers the sightings and the ids the extraction captured. Messages
    /// that came without their Internet headers get them by `$batch` first (the
    /// automated-mail rules read them).
    async fn capture_page(
        &self,
        container: &str,
        mut messages: Vec<GraphMessage>,
        tally: &mut ContainerTally,
        summary: &mut SyncSummary,
    ) -> Result<(Vec<CapturedSighting>, Vec<String>), SyncError> {
        let gone = self.fill_headers(&mut messages).await?;
        let mut sightings = Vec::with_capacity(messages.len());
        let mut captured = Vec::new();
        for (index, message) in messages.into_iter().enumerate() {
            if gone.contains(&index) {
                summary.fetched += 1;
                summary.gone += 1;
                tally.count(Some(Outcome::Gone));
                continue;
            }
            let mut record = message.to_record(&self.link.mailbox);
            if lacks_date_header(&message) {
                // Graph's sentDateTime is then this copy's receipt time: a Date made
                // of it would differ between mailboxes and split one message's
                // dedupe key (a message without Message-ID is keyed by its Date).
                record.headers.retain(|h| h.field != HeaderField::Date);
            }
            // The folder the delta came from is the container, spelled as the policy
            // spells it (`INBOX`, not the folder's id): the policy judges by it.
            record.labels = vec![container.to_owned()];
            let (outcome, sighting) =
                self.link
                    .capture(&record, message.id.clone(), record.labels.clone(), summary);
            tally.count(Some(outcome));
            if outcome == Outcome::Captured {
                captured.push(message.id);
            }
            sightings.extend(sighting);
        }
        Ok((sightings, captured))
    }

    /// Fetches the Internet headers of the messages that came without them; answers
    /// the indexes of messages gone meanwhile. A part of a batch that failed is asked
    /// for again on its own, paced and retried.
    async fn fill_headers(&self, messages: &mut [GraphMessage]) -> Result<Vec<usize>, SyncError> {
        let missing: Vec<usize> = (0..messages.len())
            .filter(|&i| !messages[i].has_internet_headers())
            .collect();
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = missing.iter().map(|&i| messages[i].id.clone()).collect();
        let units =
            GRAPH_REQUEST_UNITS.saturating_mul(u32::try_from(ids.len()).unwrap_or(u32::MAX));
        let answers = self
            .call(units, || self.mail.batch_get_headers(&ids))
            .await?;
        let mut gone = Vec::new();
        for ((index, id), answer) in missing.into_iter().zip(&ids).zip(answers) {
            let headers = match answer {
                Ok(headers) => headers,
                Err(_) => {
                    self.call(GRAPH_REQUEST_UNITS, || self.mail.get_message_headers(id))
                        .await?
                }
            };
            match headers {
                Some(headers) => messages[index].internet_message_headers = Some(headers),
                None => gone.push(index),
            }
        }
        Ok(gone)
    }

    /// Checks the store holds what a page captured; a loss is taken off `tally` so the
    /// reconciliation reports it.
    async fn check_page(
        &self,
        captured: Vec<String>,
        tally: &mut ContainerTally,
    ) -> Result<bool, SyncError> {
        let lost = self.link.lost_ids(captured).await?;
        tally.captured = tally.captured.saturating_sub(lost.len() as u64);
        Ok(!lost.is_empty())
    }
}

/// Whether the message's own Internet headers are known and carry no `Date` (a Sent
/// Items copy has none at all, and is judged by Graph's properties).
fn lacks_date_header(message: &GraphMessage) -> bool {
    message
        .internet_message_headers
        .as_ref()
        .is_some_and(|headers| {
            !headers.is_empty() && !headers.iter().any(|h| h.name.eq_ignore_ascii_case("date"))
        })
}
