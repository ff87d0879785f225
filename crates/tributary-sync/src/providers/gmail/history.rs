//! Gmail's incremental stream: what `history.list` names as added to a synced label
//! since the [`HISTORY_STREAM`](super::HISTORY_STREAM) cursor, captured page by page,
//! the cursor advancing with the last page only.

use super::messages::Fetched;
use super::{GmailLink, MAX_PAGE_SIZE, contains_label, history_cursor};
use crate::error::SyncError;
use crate::link::{ContainerTally, Outcome};
use crate::pacing::units;
use crate::source::{LinkRun, SyncMode, SyncSummary};
use std::collections::{BTreeMap, HashMap, HashSet};
use tributary_google::{HistoryChange, HistoryChangeKind, HistoryQuery};

/// What named the messages, in the gaps a reconciliation reports.
const SOURCE: &str = "history";

impl GmailLink<'_> {
    /// Captures what history shows was added since `start_history_id`: new messages and
    /// messages that gained a synced label, then reconciles them per label (added to
    /// the labels' rows). [`ProviderError::CursorGone`] when Gmail no longer has that
    /// history. A gap un-marks the labels concerned as backfilled, so the next run
    /// lists them again.
    ///
    /// [`ProviderError::CursorGone`]: tributary_core::ProviderError::CursorGone
    pub(super) async fn incremental_sync(
        &self,
        start_history_id: u64,
    ) -> Result<LinkRun, SyncError> {
        let mut summary = SyncSummary::new(SyncMode::Incremental);
        let (ids, named, latest) = self.history_since(start_history_id).await?;
        let cursor = history_cursor(latest);
        if ids.is_empty() {
            if latest != start_history_id {
                self.link
                    .commit(Vec::new(), Some(&cursor), &mut summary)
                    .await?;
            }
            return Ok(LinkRun::new(summary));
        }
        let mut known = HashMap::new();
        let mut lost = HashSet::new();
        let pages: Vec<&[String]> = ids.chunks(self.link.page_size.max(1) as usize).collect();
        let last = pages.len() - 1;
        for (index, chunk) in pages.into_iter().enumerate() {
            let sightings = self
                .fetch_sightings(chunk, &mut known, &mut summary)
                .await?;
            // Until the last page is in, a crash must replay from the old cursor.
            let advance = (index == last).then_some(&cursor);
            self.link.commit(sightings, advance, &mut summary).await?;
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
        let mut tallies: BTreeMap<String, ContainerTally> = BTreeMap::new();
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
        let (gaps, unreconciled) = self
            .link
            .reconcile_increment(&tallies, unlabelled_gaps, SOURCE, summary)
            .await?;
        if !unreconciled.is_empty() {
            self.forget_backfilled(&unreconciled, summary).await?;
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
                .link
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
}
