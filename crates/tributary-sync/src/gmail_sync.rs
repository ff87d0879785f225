//! One Gmail mailbox link: full sync (backfill of the synced labels) and incremental
//! sync (history since the stored cursor), committed page by page to the store.
//!
//! This is the only module that speaks Gmail; the rest of the engine sees
//! [`ProviderError`]s and [`SyncSummary`]s.

use crate::error::SyncError;
use crate::pacing::{Pacer, units};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;
use tributary_core::{Extractor, HeaderField, ProviderError};
use tributary_google::{
    GmailClient, HistoryChange, HistoryChangeKind, HistoryQuery, MAX_BATCH_PARTS, MessageListQuery,
    MessageMeta,
};
use tributary_store::{
    CapturePage, CapturedSighting, CursorAdvance, LinkId, PageSummary, Store, TenantId,
};

/// The cursor stream holding the mailbox's history id once a full sync has completed.
pub const HISTORY_STREAM: &str = "gmail.history";
/// The cursor stream holding a full sync's progress, so a crash resumes where it was.
pub const FULL_SYNC_STREAM: &str = "gmail.full_sync";

const MILLIS_PER_DAY: i64 = 86_400_000;
/// Gmail's page-size maximum for `messages.list` and `history.list`.
const MAX_PAGE_SIZE: u32 = 500;

/// How a run went about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    Full,
    Incremental,
    /// A full sync because the history cursor was gone.
    Resync,
}

/// What one run did.
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
    /// Messages outside the synced labels or the backfill window.
    pub not_seen: u64,
    /// Messages gone between listing and fetching.
    pub gone: u64,
}

impl SyncSummary {
    fn new(mode: SyncMode) -> Self {
        SyncSummary {
            mode,
            fetched: 0,
            added: 0,
            already_known: 0,
            excluded: 0,
            not_seen: 0,
            gone: 0,
        }
    }

    fn add_page(&mut self, page: PageSummary) {
        self.added += page.added;
        self.already_known += page.already_known;
        self.excluded += page.excluded;
    }
}

/// Where a full sync is: the history id taken before listing, the label being listed
/// and the next page of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FullSyncProgress {
    history_id: u64,
    label: usize,
    page_token: Option<String>,
    done: bool,
}

/// Syncs one mailbox link.
#[derive(Debug, Clone)]
pub struct GmailLinkSync {
    pub gmail: GmailClient,
    pub store: Store,
    pub tenant: TenantId,
    pub link: LinkId,
    /// The mailbox's address, as sightings record it.
    pub mailbox: String,
    pub extractor: Arc<Extractor>,
    pub pacer: Arc<Pacer>,
    /// The instant the backfill window ends at, Unix milliseconds.
    pub now_ms: i64,
    /// Messages per list page (and per committed page), at most 500.
    pub page_size: u32,
}

impl GmailLinkSync {
    /// Incremental when a history cursor exists, else a full sync (resuming an
    /// interrupted one); a gone history cursor falls back to a full resync (resuming one
    /// begun after that cursor).
    pub async fn run(&self) -> Result<SyncSummary, SyncError> {
        let Some(cursor) = self.stored_cursor(HISTORY_STREAM).await? else {
            return self.full_sync(SyncMode::Full).await;
        };
        let start = cursor.parse().map_err(|_| SyncError::BadCursor {
            stream: HISTORY_STREAM,
            value: cursor.clone(),
        })?;
        match self.incremental_sync(start).await {
            Err(SyncError::Provider(ProviderError::CursorGone(detail))) => {
                tracing::info!(mailbox = %self.mailbox, %detail, "history gone; full resync");
                self.full_sync_resuming(SyncMode::Resync, Some(start)).await
            }
            outcome => outcome,
        }
    }

    /// Lists every synced label within the backfill window and captures what it finds.
    /// The history id is read before listing, so mail arriving meanwhile is caught by the
    /// next incremental sync; it is committed with the last page. A `Full` sync resumes
    /// an unfinished one; a `Resync` starts afresh.
    pub async fn full_sync(&self, mode: SyncMode) -> Result<SyncSummary, SyncError> {
        self.full_sync_resuming(mode, None).await
    }

    /// A full sync; a `Resync` replacing the gone history cursor `stale` resumes an
    /// unfinished resync that began after it.
    async fn full_sync_resuming(
        &self,
        mode: SyncMode,
        stale: Option<u64>,
    ) -> Result<SyncSummary, SyncError> {
        let mut summary = SyncSummary::new(mode);
        let mut progress = match self.resumable_progress(mode, stale).await? {
            Some(progress) => progress,
            None => self.start_full_sync().await?,
        };
        let labels = &self.extractor.policy.synced_labels;
        let query = self.backfill_query();
        // Messages carrying several synced labels are fetched once per run.
        let mut listed = HashSet::new();
        while progress.label < labels.len() {
            let list_query = MessageListQuery {
                label_ids: vec![labels[progress.label].clone()],
                query: Some(query.clone()),
                page_token: progress.page_token.clone(),
                max_results: Some(self.page_size.clamp(1, MAX_PAGE_SIZE)),
                include_spam_trash: false,
            };
            let page = self
                .pacer
                .call(self.gmail.user(), units::MESSAGES_LIST, || {
                    self.gmail.list_messages(&list_query)
                })
                .await?;
            let ids: Vec<String> = page
                .messages
                .into_iter()
                .map(|m| m.id)
                .filter(|id| listed.insert(id.clone()))
                .collect();
            let sightings = self.fetch_sightings(&ids, &mut summary).await?;
            match page.next_page_token {
                Some(token) => progress.page_token = Some(token),
                None => {
                    progress.label += 1;
                    progress.page_token = None;
                }
            }
            let cursor = if progress.label == labels.len() {
                history_cursor(progress.history_id)
            } else {
                progress_cursor(&progress)
            };
            self.commit(sightings, Some(&cursor), &mut summary).await?;
        }
        if labels.is_empty() {
            self.commit(
                Vec::new(),
                Some(&history_cursor(progress.history_id)),
                &mut summary,
            )
            .await?;
        }
        progress.done = true;
        self.commit(Vec::new(), Some(&progress_cursor(&progress)), &mut summary)
            .await?;
        Ok(summary)
    }

    /// Captures what history shows was added since `start_history_id`: new messages and
    /// messages that gained a synced label. [`ProviderError::CursorGone`] when Gmail no
    /// longer has that history.
    pub async fn incremental_sync(&self, start_history_id: u64) -> Result<SyncSummary, SyncError> {
        let mut summary = SyncSummary::new(SyncMode::Incremental);
        let (ids, latest) = self.history_since(start_history_id).await?;
        let cursor = history_cursor(latest);
        if ids.is_empty() {
            if latest != start_history_id {
                self.commit(Vec::new(), Some(&cursor), &mut summary).await?;
            }
            return Ok(summary);
        }
        let pages: Vec<&[String]> = ids.chunks(self.page_size.max(1) as usize).collect();
        let last = pages.len() - 1;
        for (index, chunk) in pages.into_iter().enumerate() {
            let sightings = self.fetch_sightings(chunk, &mut summary).await?;
            // Until the last page is in, a crash must replay from the old cursor.
            let advance = (index == last).then_some(&cursor);
            self.commit(sightings, advance, &mut summary).await?;
        }
        Ok(summary)
    }

    /// The ids history names as added to a synced label, once each, and the mailbox's
    /// history id after them.
    async fn history_since(&self, start: u64) -> Result<(Vec<String>, u64), SyncError> {
        let mut ids = Vec::new();
        let mut named = HashSet::new();
        let mut query = HistoryQuery {
            start_history_id: start,
            label_id: None,
            kinds: vec![
                HistoryChangeKind::MessageAdded,
                HistoryChangeKind::LabelsAdded,
            ],
            page_token: None,
            max_results: Some(MAX_PAGE_SIZE),
        };
        loop {
            let page = self
                .pacer
                .call(self.gmail.user(), units::HISTORY_LIST, || {
                    self.gmail.list_history(&query)
                })
                .await?;
            for change in page.records.iter().flat_map(|r| &r.changes) {
                if self.concerns_synced_label(change) && named.insert(change.message.id.clone()) {
                    ids.push(change.message.id.clone());
                }
            }
            match page.next_page_token {
                Some(token) => query.page_token = Some(token),
                None => return Ok((ids, page.history_id)),
            }
        }
    }

    fn concerns_synced_label(&self, change: &HistoryChange) -> bool {
        let synced = |labels: &[String]| {
            labels.iter().any(|label| {
                self.extractor
                    .policy
                    .synced_labels
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(label))
            })
        };
        match change.kind {
            // A record without labels is fetched: the message's own labels decide.
            HistoryChangeKind::MessageAdded => {
                change.message.label_ids.is_empty() || synced(&change.message.label_ids)
            }
            HistoryChangeKind::LabelsAdded => synced(&change.changed_label_ids),
            HistoryChangeKind::MessageDeleted | HistoryChangeKind::LabelsRemoved => false,
        }
    }

    /// Fetches the metadata of `ids` and extracts each message the mailbox sees.
    async fn fetch_sightings(
        &self,
        ids: &[String],
        summary: &mut SyncSummary,
    ) -> Result<Vec<CapturedSighting>, SyncError> {
        let mut sightings = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(self.batch_size()) {
            for meta in self.fetch_batch(chunk, summary).await? {
                summary.fetched += 1;
                let record = meta.to_record(&self.mailbox);
                if !self.extractor.policy.sees(&record, self.now_ms) {
                    summary.not_seen += 1;
                    continue;
                }
                sightings.push(CapturedSighting {
                    extraction: self.extractor.extract(&record),
                    provider_message_id: meta.id,
                    labels: meta.label_ids,
                });
            }
        }
        Ok(sightings)
    }

    /// Gets per batch: at most [`MAX_BATCH_PARTS`], and no more than one quota minute of
    /// the user's budget pays for, since Gmail charges the parts one after another and
    /// refuses those the budget no longer covers.
    fn batch_size(&self) -> usize {
        let affordable = self.pacer.config().user_units_per_minute / units::MESSAGES_GET;
        usize::try_from(affordable)
            .unwrap_or(MAX_BATCH_PARTS)
            .clamp(1, MAX_BATCH_PARTS)
    }

    /// One batch of at most [`Self::batch_size`] gets. Parts failing transiently are
    /// sent again (after backoff) until they succeed or the attempts are spent in rounds
    /// that fetched nothing; any other part failure fails the run.
    async fn fetch_batch(
        &self,
        ids: &[String],
        summary: &mut SyncSummary,
    ) -> Result<Vec<MessageMeta>, SyncError> {
        let mut pending = ids.to_vec();
        let mut fetched = Vec::with_capacity(ids.len());
        let mut attempt = 1;
        loop {
            let cost = units::MESSAGES_GET * u32::try_from(pending.len()).unwrap_or(u32::MAX);
            let answers = self
                .pacer
                .call(self.gmail.user(), cost, || {
                    self.gmail.batch_get_metadata(&pending, &HeaderField::ALL)
                })
                .await?;
            let mut failed = Vec::new();
            let mut last_error = None;
            let mut progressed = false;
            for (id, answer) in pending.iter().zip(answers) {
                match answer {
                    Ok(Some(meta)) => {
                        fetched.push(meta);
                        progressed = true;
                    }
                    Ok(None) => {
                        summary.gone += 1;
                        progressed = true;
                    }
                    Err(error) if error.is_transient() => {
                        failed.push(id.clone());
                        last_error = Some(error);
                    }
                    Err(error) => return Err(error.into()),
                }
            }
            let Some(error) = last_error else {
                return Ok(fetched);
            };
            // Only rounds that got nothing count against the attempts: a budget that
            // covers part of a batch is slow, not failing.
            attempt = if progressed { 1 } else { attempt + 1 };
            if attempt > self.pacer.config().max_attempts {
                return Err(error.into());
            }
            self.pacer
                .wait_before_retry(attempt, error.retry_after())
                .await;
            pending = failed;
        }
    }

    async fn commit(
        &self,
        sightings: Vec<CapturedSighting>,
        cursor: Option<&CursorAdvance>,
        summary: &mut SyncSummary,
    ) -> Result<(), SyncError> {
        let page = CapturePage { sightings };
        let committed = self
            .store
            .commit_page(&self.tenant, self.link, &page, cursor)
            .await?;
        summary.add_page(committed);
        Ok(())
    }

    async fn stored_cursor(&self, stream: &str) -> Result<Option<String>, SyncError> {
        Ok(self.store.cursor(&self.tenant, self.link, stream).await?)
    }

    /// An unfinished full sync to pick up. For a resync, only one begun after the gone
    /// cursor `stale` (an older one would miss what happened in between).
    async fn resumable_progress(
        &self,
        mode: SyncMode,
        stale: Option<u64>,
    ) -> Result<Option<FullSyncProgress>, SyncError> {
        if mode == SyncMode::Resync && stale.is_none() {
            return Ok(None);
        }
        let Some(value) = self.stored_cursor(FULL_SYNC_STREAM).await? else {
            return Ok(None);
        };
        let progress: FullSyncProgress =
            serde_json::from_str(&value).map_err(|_| SyncError::BadCursor {
                stream: FULL_SYNC_STREAM,
                value,
            })?;
        let resumable = match (mode, stale) {
            (SyncMode::Resync, Some(stale)) => progress.history_id > stale,
            _ => true,
        };
        Ok((resumable && !progress.done).then_some(progress))
    }

    /// Takes the history id first, and stores it before listing so that a crash during
    /// the first page resumes with it.
    async fn start_full_sync(&self) -> Result<FullSyncProgress, SyncError> {
        let profile = self
            .pacer
            .call(self.gmail.user(), units::GET_PROFILE, || {
                self.gmail.get_profile()
            })
            .await?;
        let progress = FullSyncProgress {
            history_id: profile.history_id,
            label: 0,
            page_token: None,
            done: false,
        };
        self.store
            .commit_page(
                &self.tenant,
                self.link,
                &CapturePage::default(),
                Some(&progress_cursor(&progress)),
            )
            .await?;
        Ok(progress)
    }

    /// `after:` a day before the window starts: Gmail's `after:` is coarse, and
    /// [`tributary_core::CapturePolicy::sees`] judges each message exactly.
    fn backfill_query(&self) -> String {
        let days = i64::from(self.extractor.policy.backfill_days) + 1;
        let start_ms = self.now_ms.saturating_sub(days * MILLIS_PER_DAY);
        format!("after:{}", start_ms.div_euclid(1000).max(0))
    }
}

fn history_cursor(history_id: u64) -> CursorAdvance {
    CursorAdvance {
        stream: HISTORY_STREAM.to_owned(),
        value: history_id.to_string(),
    }
}

fn progress_cursor(progress: &FullSyncProgress) -> CursorAdvance {
    CursorAdvance {
        stream: FULL_SYNC_STREAM.to_owned(),
        // Serializing plain numbers and strings cannot fail.
        value: serde_json::to_string(progress).unwrap_or_default(),
    }
}
