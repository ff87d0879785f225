//! Gmail's containers are labels: the [`LABELS_STREAM`] cursor records which of the
//! link's labels were backfilled without a gap, so that a label enabled later (or one
//! whose backfill left a gap) is backfilled on its own before the incremental sync.

use super::full::FullSyncProgress;
use super::{CONTAINER, GmailLink, LABELS_STREAM, contains_label};
use crate::error::SyncError;
use crate::link::{ContainerTally, json_cursor};
use crate::source::{LinkRun, SyncMode, SyncSummary};
use serde::{Deserialize, Serialize};
use tributary_store::CursorAdvance;

/// The [`LABELS_STREAM`] cursor. Its field names are stored: keep them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct LabelState {
    /// Labels listed in the window, captured and reconciled without a gap.
    pub(super) backfilled: Vec<String>,
    /// A backfill of labels enabled later, under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) backfill: Option<FullSyncProgress>,
}

pub(super) fn labels_cursor(state: &LabelState) -> CursorAdvance {
    json_cursor(LABELS_STREAM, state)
}

impl GmailLink<'_> {
    /// Backfills the link's labels that are not backfilled yet (enabled since the last
    /// one, or whose last backfill left a gap), resuming one under way; forgets labels
    /// no longer synced, so that enabling one again backfills it again. Mail that
    /// arrives meanwhile is caught by the incremental sync that follows, from the older
    /// history cursor.
    pub(super) async fn backfill_new_labels(&self) -> Result<LinkRun, SyncError> {
        let mut summary = SyncSummary::new(SyncMode::Incremental);
        let synced = &self.link.policy.synced_labels;
        let state = self.label_state().await?;
        let backfilled: Vec<String> = state
            .backfilled
            .iter()
            .filter(|label| contains_label(synced, label))
            .cloned()
            .collect();
        let pending: Vec<String> = synced
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
                self.link
                    .commit(Vec::new(), Some(&labels_cursor(&pruned)), &mut summary)
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
            .resize(progress.labels.len(), ContainerTally::default());
        let checkpoint = |progress: &FullSyncProgress| {
            labels_cursor(&LabelState {
                backfilled: backfilled.clone(),
                backfill: Some(progress.clone()),
            })
        };
        self.backfill(&mut progress, &mut summary, &checkpoint)
            .await?;
        let (gaps, clean) = self
            .link
            .reconcile_backfill(&progress.labels, &progress.counts, CONTAINER, &mut summary)
            .await?;
        let mut now_backfilled = backfilled.clone();
        now_backfilled.extend(clean);
        let state = LabelState {
            backfilled: now_backfilled,
            backfill: None,
        };
        self.link
            .commit(Vec::new(), Some(&labels_cursor(&state)), &mut summary)
            .await?;
        Ok(LinkRun { summary, gaps })
    }

    /// Un-marks `labels` as backfilled, so that the next run lists them again.
    pub(super) async fn forget_backfilled(
        &self,
        labels: &[String],
        summary: &mut SyncSummary,
    ) -> Result<(), SyncError> {
        let mut state = self.label_state().await?;
        state
            .backfilled
            .retain(|label| !contains_label(labels, label));
        self.link
            .commit(Vec::new(), Some(&labels_cursor(&state)), summary)
            .await
    }

    /// The [`LABELS_STREAM`] cursor; none yet is nothing backfilled (a link whose full
    /// sync predates the stream lists its labels again, which is harmless).
    async fn label_state(&self) -> Result<LabelState, SyncError> {
        Ok(self
            .link
            .json_state(LABELS_STREAM)
            .await?
            .unwrap_or_default())
    }
}

/// The same labels in the same order, case aside.
fn same_labels(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.eq_ignore_ascii_case(y))
}
