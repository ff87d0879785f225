//! One Gmail mailbox link: full sync (backfill of the link's labels), backfill of labels
//! enabled later, and incremental sync (history since the stored cursor), committed page
//! by page to the store, each ending with a reconciliation of what the provider listed
//! against what the store accounts for (see `docs/sync.md`).
//!
//! This is the only module that speaks Gmail; the rest of the engine sees
//! [`ProviderError`]s and [`SyncSummary`]s.

use crate::engine::clock_ms;
use crate::error::SyncError;
use crate::pacing::{Pacer, units};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use tributary_core::{CapturePolicy, Extractor, HeaderField, ProviderError};
use tributary_google::{
    GmailClient, HistoryChange, HistoryChangeKind, HistoryQuery, MAX_BATCH_PARTS, MessageListQuery,
    MessageMeta,
};
use tributary_store::{
    CapturePage, CapturedSighting, CursorAdvance, LabelReconciliation, LinkId, PageSummary, Store,
    TenantId,
};

/// The cursor stream holding the mailbox's history id once a full sync has completed.
pub const HISTORY_STREAM: &str = "gmail.history";
/// The cursor stream holding a full sync's progress, so a crash resumes where it was.
pub const FULL_SYNC_STREAM: &str = "gmail.full_sync";
/// The cursor stream holding the labels backfilled (listed in the window, captured and
/// reconciled without a gap), and the progress of a later label's backfill.
pub const LABELS_STREAM: &str = "gmail.labels";

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
    /// Labels whose backfill completed in this run without a gap.
    #[serde(default)]
    pub labels_backfilled: u64,
    /// Listed or history-named messages that none of the counts explains, summed over
    /// labels (a message in two labels counts twice). Not zero: the run is a
    /// `linkage_error`.
    #[serde(default)]
    pub unaccounted: u64,
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
            labels_backfilled: 0,
            unaccounted: 0,
        }
    }

    fn add_page(&mut self, page: PageSummary) {
        self.added += page.added;
        self.already_known += page.already_known;
        self.excluded += page.excluded;
    }

    /// Adds the counts of a later part of the run, whose mode the run takes.
    fn absorb(&mut self, later: &SyncSummary) {
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
/// label, e.g. "INBOX: 3 of 120 messages listed were not captured"). A run with gaps
/// must not leave the link healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRun {
    pub summary: SyncSummary,
    pub gaps: Vec<String>,
}

impl LinkRun {
    fn new(summary: SyncSummary) -> Self {
        LinkRun {
            summary,
            gaps: Vec::new(),
        }
    }

    fn absorb(&mut self, later: LinkRun) {
        self.summary.absorb(&later.summary);
        self.gaps.extend(later.gaps);
    }
}

/// What became of one listed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The extraction captured it: the store must now hold it as a sighting.
    Captured,
    Excluded,
    NotSeen,
    Gone,
}

/// One fetched message: its outcome and the link's labels it carries (the link's
/// spelling).
#[derive(Debug, Clone)]
struct Fetched {
    outcome: Outcome,
    labels: Vec<String>,
}

/// One label's counts while it is backfilled, committed with every page so that a
/// resumed backfill reconciles the whole label.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct LabelTally {
    provider_total: Option<u64>,
    /// The mailbox has no such label.
    #[serde(default)]
    missing: bool,
    listed: u64,
    captured: u64,
    excluded: u64,
    not_seen: u64,
    gone: u64,
}

impl LabelTally {
    /// Counts one listed message; `None` is a message nothing accounts for.
    fn count(&mut self, outcome: Option<Outcome>) {
        self.listed += 1;
        match outcome {
            Some(Outcome::Captured) => self.captured += 1,
            Some(Outcome::Excluded) => self.excluded += 1,
            Some(Outcome::NotSeen) => self.not_seen += 1,
            Some(Outcome::Gone) => self.gone += 1,
            None => {}
        }
    }

    fn row(&self, label: &str, at_ms: i64) -> LabelReconciliation {
        LabelReconciliation {
            label: label.to_owned(),
            provider_total: self.provider_total,
            listed: self.listed,
            captured: self.captured,
            excluded: self.excluded,
            not_seen: self.not_seen,
            gone: self.gone,
            at_ms,
        }
    }
}

/// Where a backfill is: the labels it lists (in order), the label being listed, the
/// next page of it and the counts so far. A full sync also holds the history id taken
/// before listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FullSyncProgress {
    history_id: u64,
    #[serde(default)]
    labels: Vec<String>,
    label: usize,
    page_token: Option<String>,
    #[serde(default)]
    counts: Vec<LabelTally>,
    done: bool,
}

impl FullSyncProgress {
    fn new(history_id: u64, labels: Vec<String>) -> Self {
        FullSyncProgress {
            history_id,
            counts: vec![LabelTally::default(); labels.len()],
            labels,
            label: 0,
            page_token: None,
            done: false,
        }
    }
}

/// The [`LABELS_STREAM`] cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct LabelState {
    /// Labels listed in the window, captured and reconciled without a gap.
    backfilled: Vec<String>,
    /// A backfill of labels enabled later, under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backfill: Option<FullSyncProgress>,
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
    /// Shared by the tenant's links; its policy's labels are the tenant's.
    pub extractor: Arc<Extractor>,
    /// The link's policy: the tenant's, with the member's extra labels added
    /// ([`Self::link_policy`]). It decides which labels are listed and what is seen.
    pub policy: CapturePolicy,
    pub pacer: Arc<Pacer>,
    /// The instant the backfill window ends at, Unix milliseconds.
    pub now_ms: i64,
    /// Messages per list page (and per committed page), at most 500.
    pub page_size: u32,
}

impl GmailLinkSync {
    /// The tenant's policy with `extra_labels` (a member's) appended, skipping labels
    /// already synced (case-insensitively).
    pub fn link_policy(tenant: &CapturePolicy, extra_labels: &[String]) -> CapturePolicy {
        let mut policy = tenant.clone();
        for label in extra_labels {
            if !contains_label(&policy.synced_labels, label) {
                policy.synced_labels.push(label.clone());
            }
        }
        policy
    }

    /// Incremental when a history cursor exists (after backfilling the labels enabled
    /// since the last backfill), else a full sync (resuming an interrupted one); a gone
    /// history cursor falls back to a full resync (resuming one begun after that cursor).
    pub async fn run(&self) -> Result<LinkRun, SyncError> {
        // Rows of labels no longer synced would report on mail no longer captured.
        self.store
            .retain_label_reconciliation(&self.tenant, self.link, &self.policy.synced_labels)
            .await?;
        let Some(cursor) = self.stored_cursor(HISTORY_STREAM).await? else {
            return self.full_sync(SyncMode::Full).await;
        };
        let start = cursor.parse().map_err(|_| SyncError::BadCursor {
            stream: HISTORY_STREAM,
            value: cursor.clone(),
        })?;
        let mut run = self.backfill_new_labels().await?;
        match self.incremental_sync(start).await {
            Err(SyncError::Provider(ProviderError::CursorGone(detail))) => {
                tracing::info!(mailbox = %self.mailbox, %detail, "history gone; full resync");
                run.absorb(
                    self.full_sync_resuming(SyncMode::Resync, Some(start))
                        .await?,
                );
            }
            outcome => run.absorb(outcome?),
        }
        Ok(run)
    }

    /// Lists every label of the link within the backfill window and captures what it
    /// finds. The history id is read before listing, so mail arriving meanwhile is
    /// caught by the next incremental sync; it is committed once every label is listed
    /// and reconciled. A `Full` sync resumes an unfinished one; a `Resync` starts afresh.
    pub async fn full_sync(&self, mode: SyncMode) -> Result<LinkRun, SyncError> {
        self.full_sync_resuming(mode, None).await
    }

    /// A full sync; a `Resync` replacing the gone history cursor `stale` resumes an
    /// unfinished resync that began after it.
    async fn full_sync_resuming(
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
            progress.labels = self.policy.synced_labels.clone();
        }
        progress
            .counts
            .resize(progress.labels.len(), LabelTally::default());
        self.backfill(&mut progress, &mut summary, &progress_cursor)
            .await?;
        let (gaps, clean) = self.reconcile(&progress, &mut summary).await?;
        let state = LabelState {
            backfilled: clean,
            backfill: None,
        };
        // Labels first: a crash before the history cursor resumes this tail only.
        self.commit(Vec::new(), Some(&labels_cursor(&state)), &mut summary)
            .await?;
        self.commit(
            Vec::new(),
            Some(&history_cursor(progress.history_id)),
            &mut summary,
        )
        .await?;
        progress.done = true;
        self.commit(Vec::new(), Some(&progress_cursor(&progress)), &mut summary)
            .await?;
        Ok(LinkRun { summary, gaps })
    }

    /// Backfills the link's labels that are not backfilled yet (enabled since the last
    /// one, or whose last backfill left a gap), resuming one under way; forgets labels
    /// no longer synced, so that enabling one again backfills it again. Mail that
    /// arrives meanwhile is caught by the incremental sync that follows, from the older
    /// history cursor.
    async fn backfill_new_labels(&self) -> Result<LinkRun, SyncError> {
        let mut summary = SyncSummary::new(SyncMode::Incremental);
        let state = self.label_state().await?;
        let backfilled: Vec<String> = state
            .backfilled
            .iter()
            .filter(|label| contains_label(&self.policy.synced_labels, label))
            .cloned()
            .collect();
        let pending: Vec<String> = self
            .policy
            .synced_labels
            .iter()
            .filter(|label| !contains_label(&backfilled, label))
            .cloned()
            .collect();
        if pending.is_empty() {
            if backfilled != state.backfilled || state.backfill.is_some() {
                let pruned = LabelState {
                    backfilled,
                    backfill: None,
                };
                self.commit(Vec::new(), Some(&labels_cursor(&pruned)), &mut summary)
                    .await?;
            }
            return Ok(LinkRun::new(summary));
        }
        let mut progress = match state.backfill {
            Some(progress) if !progress.done && same_labels(&progress.labels, &pending) => progress,
            _ => FullSyncProgress::new(0, pending),
        };
        progress
            .counts
            .resize(progress.labels.len(), LabelTally::default());
        let checkpoint = |progress: &FullSyncProgress| {
            labels_cursor(&LabelState {
                backfilled: backfilled.clone(),
                backfill: Some(progress.clone()),
            })
        };
        self.backfill(&mut progress, &mut summary, &checkpoint)
            .await?;
        let (gaps, clean) = self.reconcile(&progress, &mut summary).await?;
        let mut now_backfilled = backfilled.clone();
        now_backfilled.extend(clean);
        let state = LabelState {
            backfilled: now_backfilled,
            backfill: None,
        };
        self.commit(Vec::new(), Some(&labels_cursor(&state)), &mut summary)
            .await?;
        Ok(LinkRun { summary, gaps })
    }

    /// Lists `progress`'s labels from where it is, page by page: each page's messages
    /// are fetched, captured and committed with `checkpoint(progress)`, then checked
    /// against the store.
    async fn backfill(
        &self,
        progress: &mut FullSyncProgress,
        summary: &mut SyncSummary,
        checkpoint: &(dyn Fn(&FullSyncProgress) -> CursorAdvance + Sync),
    ) -> Result<(), SyncError> {
        let query = self.backfill_query();
        // Messages carrying several of the labels are fetched once per run.
        let mut known: HashMap<String, Fetched> = HashMap::new();
        while progress.label < progress.labels.len() {
            let index = progress.label;
            let label = progress.labels[index].clone();
            if progress.page_token.is_none() {
                progress.counts[index] = self.start_label(&label).await?;
                if progress.counts[index].missing {
                    tracing::warn!(mailbox = %self.mailbox, %label, "no such label");
                    progress.label += 1;
                    continue;
                }
            }
            let list_query = MessageListQuery {
                label_ids: vec![label],
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
            self.commit(sightings, Some(&checkpoint(progress)), summary)
                .await?;
            let lost = self.lost_ids(&ids, &known).await?;
            if !lost.is_empty() {
                let tally = &mut progress.counts[index];
                tally.captured = tally.captured.saturating_sub(lost.len() as u64);
                self.commit(Vec::new(), Some(&checkpoint(progress)), summary)
                    .await?;
            }
        }
        Ok(())
    }

    /// A label's counts before its first page: the provider's total, or `missing`.
    async fn start_label(&self, label: &str) -> Result<LabelTally, SyncError> {
        let found = self
            .pacer
            .call(self.gmail.user(), units::LABELS_GET, || {
                self.gmail.get_label(label)
            })
            .await?;
        Ok(LabelTally {
            missing: found.is_none(),
            provider_total: found.and_then(|l| l.messages_total),
            ..LabelTally::default()
        })
    }

    /// Stores one reconciliation row per label of a finished backfill; answers the
    /// gaps found and the labels without one.
    async fn reconcile(
        &self,
        progress: &FullSyncProgress,
        summary: &mut SyncSummary,
    ) -> Result<(Vec<String>, Vec<String>), SyncError> {
        let at_ms = clock_ms();
        let mut rows = Vec::new();
        let mut gaps = Vec::new();
        let mut clean = Vec::new();
        for (label, tally) in progress.labels.iter().zip(&progress.counts) {
            if tally.missing {
                gaps.push(format!("{label}: the mailbox has no such label"));
                continue;
            }
            let row = tally.row(label, at_ms);
            let unaccounted = row.unaccounted();
            if unaccounted > 0 {
                summary.unaccounted += unaccounted;
                gaps.push(format!(
                    "{label}: {unaccounted} of {} messages listed were not captured",
                    row.listed
                ));
            } else {
                clean.push(label.clone());
            }
            rows.push(row);
        }
        self.store
            .set_label_reconciliation(&self.tenant, self.link, &rows)
            .await?;
        summary.labels_backfilled += clean.len() as u64;
        Ok((gaps, clean))
    }

    /// Of `ids`, those the extraction captured but the store does not hold for the
    /// link: what a silent loss looks like.
    async fn lost_ids(
        &self,
        ids: &[String],
        known: &HashMap<String, Fetched>,
    ) -> Result<Vec<String>, SyncError> {
        let mut captured: Vec<String> = ids
            .iter()
            .filter(|id| {
                known
                    .get(*id)
                    .is_some_and(|f| f.outcome == Outcome::Captured)
            })
            .cloned()
            .collect();
        captured.sort();
        captured.dedup();
        if captured.is_empty() {
            return Ok(captured);
        }
        let held = self
            .store
            .sighted_message_ids(&self.tenant, self.link, &captured)
            .await?;
        captured.retain(|id| !held.contains(id));
        if !captured.is_empty() {
            tracing::error!(mailbox = %self.mailbox, lost = ?captured, "captured messages missing from the store");
        }
        Ok(captured)
    }

    /// Captures what history shows was added since `start_history_id`: new messages and
    /// messages that gained a synced label, then reconciles them per label (added to
    /// the labels' rows). [`ProviderError::CursorGone`] when Gmail no longer has that
    /// history. A gap un-marks the labels concerned as backfilled, so the next run
    /// lists them again.
    pub async fn incremental_sync(&self, start_history_id: u64) -> Result<LinkRun, SyncError> {
        let mut summary = SyncSummary::new(SyncMode::Incremental);
        let (ids, named, latest) = self.history_since(start_history_id).await?;
        let cursor = history_cursor(latest);
        if ids.is_empty() {
            if latest != start_history_id {
                self.commit(Vec::new(), Some(&cursor), &mut summary).await?;
            }
            return Ok(LinkRun::new(summary));
        }
        let mut known = HashMap::new();
        let mut lost = HashSet::new();
        let pages: Vec<&[String]> = ids.chunks(self.page_size.max(1) as usize).collect();
        let last = pages.len() - 1;
        for (index, chunk) in pages.into_iter().enumerate() {
            let sightings = self
                .fetch_sightings(chunk, &mut known, &mut summary)
                .await?;
            // Until the last page is in, a crash must replay from the old cursor.
            let advance = (index == last).then_some(&cursor);
            self.commit(sightings, advance, &mut summary).await?;
            lost.extend(self.lost_ids(chunk, &known).await?);
        }
        let gaps = self
            .reconcile_history(&ids, &named, &known, &lost, &mut summary)
            .await?;
        Ok(LinkRun { summary, gaps })
    }

    /// Adds an incremental run's counts to the labels' rows: each message history named
    /// counts under the link's labels it carries (history's labels when it could not be
    /// fetched). Answers the gaps, after un-marking their labels as backfilled.
    async fn reconcile_history(
        &self,
        ids: &[String],
        named: &HashMap<String, Vec<String>>,
        known: &HashMap<String, Fetched>,
        lost: &HashSet<String>,
        summary: &mut SyncSummary,
    ) -> Result<Vec<String>, SyncError> {
        let mut tallies: BTreeMap<String, LabelTally> = BTreeMap::new();
        let mut unlabelled_gaps = 0u64;
        for id in ids {
            let fetched = known.get(id);
            let outcome = fetched
                .map(|f| f.outcome)
                .filter(|outcome| !(*outcome == Outcome::Captured && lost.contains(id)));
            let labels: &[String] = match fetched {
                Some(f) if !f.labels.is_empty() => &f.labels,
                _ => named.get(id).map_or(&[], Vec::as_slice),
            };
            if labels.is_empty() {
                unlabelled_gaps += u64::from(outcome.is_none());
                continue;
            }
            for label in labels {
                tallies.entry(label.clone()).or_default().count(outcome);
            }
        }
        let at_ms = clock_ms();
        let rows: Vec<LabelReconciliation> = tallies
            .iter()
            .map(|(label, tally)| tally.row(label, at_ms))
            .collect();
        self.store
            .add_label_reconciliation(&self.tenant, self.link, &rows)
            .await?;
        let mut gaps = Vec::new();
        let mut unreconciled = Vec::new();
        for row in rows.iter().filter(|row| row.unaccounted() > 0) {
            summary.unaccounted += row.unaccounted();
            gaps.push(format!(
                "{}: {} of {} messages history named were not captured",
                row.label,
                row.unaccounted(),
                row.listed
            ));
            unreconciled.push(row.label.clone());
        }
        if unlabelled_gaps > 0 {
            summary.unaccounted += unlabelled_gaps;
            gaps.push(format!(
                "{unlabelled_gaps} messages history named were not captured"
            ));
            unreconciled = self.policy.synced_labels.clone();
        }
        if !unreconciled.is_empty() {
            let mut state = self.label_state().await?;
            state
                .backfilled
                .retain(|label| !contains_label(&unreconciled, label));
            self.commit(Vec::new(), Some(&labels_cursor(&state)), summary)
                .await?;
        }
        Ok(gaps)
    }

    /// The ids history names as added to a synced label, once each, the link's labels
    /// it named for each, and the mailbox's history id after them.
    async fn history_since(
        &self,
        start: u64,
    ) -> Result<(Vec<String>, HashMap<String, Vec<String>>, u64), SyncError> {
        let mut ids = Vec::new();
        let mut named: HashMap<String, Vec<String>> = HashMap::new();
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
                if !self.concerns_synced_label(change) {
                    continue;
                }
                let id = &change.message.id;
                let labels = match named.get_mut(id) {
                    Some(labels) => labels,
                    None => {
                        ids.push(id.clone());
                        named.entry(id.clone()).or_default()
                    }
                };
                let changed = match change.kind {
                    HistoryChangeKind::LabelsAdded => &change.changed_label_ids,
                    _ => &change.message.label_ids,
                };
                for label in self.synced_labels_of(changed) {
                    if !contains_label(labels, &label) {
                        labels.push(label);
                    }
                }
            }
            match page.next_page_token {
                Some(token) => query.page_token = Some(token),
                None => return Ok((ids, named, page.history_id)),
            }
        }
    }

    fn concerns_synced_label(&self, change: &HistoryChange) -> bool {
        let synced = |labels: &[String]| !self.synced_labels_of(labels).is_empty();
        match change.kind {
            // A record without labels is fetched: the message's own labels decide.
            HistoryChangeKind::MessageAdded => {
                change.message.label_ids.is_empty() || synced(&change.message.label_ids)
            }
            HistoryChangeKind::LabelsAdded => synced(&change.changed_label_ids),
            HistoryChangeKind::MessageDeleted | HistoryChangeKind::LabelsRemoved => false,
        }
    }

    /// The link's labels among `labels`, spelled as the link's policy spells them.
    fn synced_labels_of(&self, labels: &[String]) -> Vec<String> {
        self.policy
            .synced_labels
            .iter()
            .filter(|synced| contains_label(labels, synced))
            .cloned()
            .collect()
    }

    /// Fetches the metadata of `ids`, records what became of each in `known`, and
    /// extracts each message the mailbox sees.
    async fn fetch_sightings(
        &self,
        ids: &[String],
        known: &mut HashMap<String, Fetched>,
        summary: &mut SyncSummary,
    ) -> Result<Vec<CapturedSighting>, SyncError> {
        let mut sightings = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(self.batch_size()) {
            let (metas, gone) = self.fetch_batch(chunk, summary).await?;
            for id in gone {
                let fetched = Fetched {
                    outcome: Outcome::Gone,
                    labels: Vec::new(),
                };
                known.insert(id, fetched);
            }
            for meta in metas {
                summary.fetched += 1;
                let record = meta.to_record(&self.mailbox);
                let labels = self.synced_labels_of(&meta.label_ids);
                if !self.policy.sees(&record, self.now_ms) {
                    summary.not_seen += 1;
                    let fetched = Fetched {
                        outcome: Outcome::NotSeen,
                        labels,
                    };
                    known.insert(meta.id, fetched);
                    continue;
                }
                let extraction = self.extractor.extract(&record);
                let outcome = if extraction.is_captured() {
                    Outcome::Captured
                } else {
                    Outcome::Excluded
                };
                known.insert(meta.id.clone(), Fetched { outcome, labels });
                sightings.push(CapturedSighting {
                    extraction,
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
        // Half a user-minute's units at most: a batch costing the whole bucket would go
        // out with the provider's bucket full and pay for its transit every time (see
        // `PacingConfig::transit_allowance`).
        let affordable = self.pacer.config().user_units_per_minute / (2 * units::MESSAGES_GET);
        usize::try_from(affordable)
            .unwrap_or(MAX_BATCH_PARTS)
            .clamp(1, MAX_BATCH_PARTS)
    }

    /// One batch of at most [`Self::batch_size`] gets: the messages, and the ids gone
    /// since they were listed. Parts failing transiently are sent again (after backoff)
    /// until they succeed or the attempts are spent in rounds that fetched nothing; any
    /// other part failure fails the run.
    async fn fetch_batch(
        &self,
        ids: &[String],
        summary: &mut SyncSummary,
    ) -> Result<(Vec<MessageMeta>, Vec<String>), SyncError> {
        let mut pending = ids.to_vec();
        let mut fetched = Vec::with_capacity(ids.len());
        let mut gone = Vec::new();
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
                        gone.push(id.clone());
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
                return Ok((fetched, gone));
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

    /// The [`LABELS_STREAM`] cursor; none yet is nothing backfilled (a link whose full
    /// sync predates the stream lists its labels again, which is harmless).
    async fn label_state(&self) -> Result<LabelState, SyncError> {
        let Some(value) = self.stored_cursor(LABELS_STREAM).await? else {
            return Ok(LabelState::default());
        };
        serde_json::from_str(&value).map_err(|_| SyncError::BadCursor {
            stream: LABELS_STREAM,
            value,
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
        let progress = FullSyncProgress::new(profile.history_id, self.policy.synced_labels.clone());
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
        let days = i64::from(self.policy.backfill_days) + 1;
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

fn labels_cursor(state: &LabelState) -> CursorAdvance {
    CursorAdvance {
        stream: LABELS_STREAM.to_owned(),
        // Serializing plain numbers and strings cannot fail.
        value: serde_json::to_string(state).unwrap_or_default(),
    }
}

/// Whether `labels` holds `label`, compared as Gmail compares label ids here:
/// case-insensitively.
fn contains_label(labels: &[String], label: &str) -> bool {
    labels.iter().any(|l| l.eq_ignore_ascii_case(label))
}

/// The same labels in the same order, case aside.
fn same_labels(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.eq_ignore_ascii_case(y))
}
