//! Gmail backfill: a full sync lists every label of the link within the backfill
//! window, page by page, each page committed with the progress cursor
//! ([`FULL_SYNC_STREAM`]) so that a crash resumes where it was; the history id is taken
//! first and committed last, once every label is listed and reconciled.

use super::labels::{LabelState, labels_cursor};
use super::messages::Fetched;
use super::{CONTAINER, FULL_SYNC_STREAM, GmailLink, MAX_PAGE_SIZE, history_cursor};
use crate::error::SyncError;
use crate::link::{ContainerTally, json_cursor};
use crate::pacing::units;
use crate::source::{LinkRun, SyncMode, SyncSummary};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use tributary_google::MessageListQuery;
use tributary_store::{CapturePage, CursorAdvance};

const MILLIS_PER_DAY: i64 = 86_400_000;

/// Where a backfill is: the labels it lists (in order), the label being listed, the
/// next page of it and the counts so far. A full sync also holds the history id taken
/// before listing. Stored as JSON in [`FULL_SYNC_STREAM`] (and in the labels stream for
/// a later label's backfill): the field names are stored, keep them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct FullSyncProgress {
    pub(super) history_id: u64,
    #[serde(default)]
    pub(super) labels: Vec<String>,
    pub(super) label: usize,
    pub(super) page_token: Option<String>,
    #[serde(default)]
    pub(super) counts: Vec<ContainerTally>,
    pub(super) done: bool,
}

impl FullSyncProgress {
    pub(super) fn new(history_id: u64, labels: Vec<String>) -> Self {
        FullSyncProgress {
            history_id,
            counts: vec![ContainerTally::default(); labels.len()],
            labels,
            label: 0,
            page_token: None,
            done: false,
        }
    }
}

/// Messages a backfill still has to list: what is left of the label being listed, and
/// the totals of those after it (`totals`, by label index, read when the run began).
fn remaining_messages(progress: &FullSyncProgress, totals: &[Option<u64>]) -> u64 {
    let current = progress.counts.get(progress.label).map_or(0, |tally| {
        tally
            .provider_total
            .unwrap_or(0)
            .saturating_sub(tally.listed)
    });
    let later: u64 = totals.iter().skip(progress.label + 1).flatten().sum();
    current.saturating_add(later)
}

pub(super) fn progress_cursor(progress: &FullSyncProgress) -> CursorAdvance {
    json_cursor(FULL_SYNC_STREAM, progress)
}

impl GmailLink<'_> {
    /// Lists every label of the link within the backfill window and captures what it
    /// finds. The history id is read before listing, so mail arriving meanwhile is
    /// caught by the next incremental sync; it is committed once every label is listed
    /// and reconciled. A `Full` sync resumes an unfinished one; a `Resync` replacing
    /// the gone history cursor `stale` resumes only an unfinished resync that began
    /// after it.
    pub(super) async fn full_sync(
        &self,
        mode: SyncMode,
        stale: Option<u64>,
    ) -> Result<LinkRun, SyncError> {
        let mut summary = SyncSummary::new(mode);
        let mut progress = match self.resumable_progress(mode, stale).await? {
            Some(progress) => progress,
            None => self.start_full_sync().await?,
        };
        if progress.labels.is_empty() {
            // Progress written before labels were recorded: the policy's, in order.
            progress.labels = self.link.policy.synced_labels.clone();
        }
        progress
            .counts
            .resize(progress.labels.len(), ContainerTally::default());
        self.backfill(&mut progress, &mut summary, &progress_cursor)
            .await?;
        let (gaps, clean) = self
            .link
            .reconcile_backfill(&progress.labels, &progress.counts, CONTAINER, &mut summary)
            .await?;
        let state = LabelState {
            backfilled: clean,
            backfill: None,
        };
        // Labels first: a crash before the history cursor resumes this tail only.
        self.link
            .commit(Vec::new(), Some(&labels_cursor(&state)), &mut summary)
            .await?;
        self.link
            .commit(
                Vec::new(),
                Some(&history_cursor(progress.history_id)),
                &mut summary,
            )
            .await?;
        progress.done = true;
        self.link
            .commit(Vec::new(), Some(&progress_cursor(&progress)), &mut summary)
            .await?;
        Ok(LinkRun { summary, gaps })
    }

    /// Lists `progress`'s labels from where it is, page by page: each page's messages
    /// are fetched, captured and committed with `checkpoint(progress)`, then checked
    /// against the store.
    pub(super) async fn backfill(
        &self,
        progress: &mut FullSyncProgress,
        summary: &mut SyncSummary,
        checkpoint: &(dyn Fn(&FullSyncProgress) -> CursorAdvance + Sync),
    ) -> Result<(), SyncError> {
        let query = self.backfill_query();
        // Messages carrying several of the labels are fetched once per run.
        let mut known: HashMap<String, Fetched> = HashMap::new();
        // The totals of the labels not started, read once per run (a unit each), so
        // that the pacer knows the work left from the start.
        let mut totals = vec![None; progress.labels.len()];
        for (index, label) in progress.labels.iter().enumerate().skip(progress.label + 1) {
            totals[index] = self.start_label(label).await?.provider_total;
        }
        while progress.label < progress.labels.len() {
            let index = progress.label;
            let label = progress.labels[index].clone();
            if progress.page_token.is_none() {
                progress.counts[index] = self.start_label(&label).await?;
                if progress.counts[index].missing {
                    // Debug-formatted: a member names its labels, so a name may hold a line
                    // break that would otherwise forge a log line.
                    tracing::warn!(mailbox = ?self.link.mailbox, ?label, "no such label");
                    progress.label += 1;
                    continue;
                }
            }
            self.expect_work(progress, &totals);
            let list_query = MessageListQuery {
                label_ids: vec![label],
                query: Some(query.clone()),
                page_token: progress.page_token.clone(),
                max_results: Some(self.link.page_size.clamp(1, MAX_PAGE_SIZE)),
                include_spam_trash: false,
            };
            let page = self
                .link
                .pacer
                .call(self.gmail.user(), units::MESSAGES_LIST, || {
                    self.gmail.list_messages(&list_query)
                })
                .await?;
            let ids: Vec<String> = page.messages.into_iter().map(|m| m.id).collect();
            let fresh: Vec<String> = ids
                .iter()
                .filter(|id| !known.contains_key(*id))
                .cloned()
                .collect();
            let sightings = self.fetch_sightings(&fresh, &mut known, summary).await?;
            for id in &ids {
                progress.counts[index].count(known.get(id).map(|f| f.outcome));
            }
            match page.next_page_token {
                Some(token) => progress.page_token = Some(token),
                None => {
                    progress.label += 1;
                    progress.page_token = None;
                }
            }
            self.link
                .commit(sightings, Some(&checkpoint(progress)), summary)
                .await?;
            let lost = self.lost_ids(&ids, &known).await?;
            if !lost.is_empty() {
                let tally = &mut progress.counts[index];
                tally.captured = tally.captured.saturating_sub(lost.len() as u64);
                self.link
                    .commit(Vec::new(), Some(&checkpoint(progress)), summary)
                    .await?;
            }
        }
        self.link.pacer.set_remaining_units(self.gmail.user(), 0);
        Ok(())
    }

    /// Tells the pacer the units this backfill still has to spend, so that a binding
    /// project budget goes to the mailboxes with the most work left.
    fn expect_work(&self, progress: &FullSyncProgress, totals: &[Option<u64>]) {
        let units =
            remaining_messages(progress, totals).saturating_mul(u64::from(units::MESSAGES_GET));
        self.link
            .pacer
            .set_remaining_units(self.gmail.user(), units);
    }

    /// A label's counts before its first page: the provider's total, or `missing`.
    async fn start_label(&self, label: &str) -> Result<ContainerTally, SyncError> {
        let found = self
            .link
            .pacer
            .call(self.gmail.user(), units::LABELS_GET, || {
                self.gmail.get_label(label)
            })
            .await?;
        Ok(ContainerTally {
            missing: found.is_none(),
            provider_total: found.and_then(|l| l.messages_total),
            ..ContainerTally::default()
        })
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
        let Some(progress) = self
            .link
            .json_state::<FullSyncProgress>(FULL_SYNC_STREAM)
            .await?
        else {
            return Ok(None);
        };
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
            .link
            .pacer
            .call(self.gmail.user(), units::GET_PROFILE, || {
                self.gmail.get_profile()
            })
            .await?;
        let progress =
            FullSyncProgress::new(profile.history_id, self.link.policy.synced_labels.clone());
        self.link
            .store
            .commit_page(
                &self.link.tenant,
                self.link.link,
                &CapturePage::default(),
                Some(&progress_cursor(&progress)),
            )
            .await?;
        Ok(progress)
    }

    /// `after:` a day before the window starts: Gmail's `after:` is coarse, and
    /// [`tributary_core::CapturePolicy::sees`] judges each message exactly.
    fn backfill_query(&self) -> String {
        let days = i64::from(self.link.policy.backfill_days) + 1;
        let start_ms = self.link.now_ms.saturating_sub(days * MILLIS_PER_DAY);
        format!("after:{}", start_ms.div_euclid(1000).max(0))
    }
}
