//! Graph message delta, per folder. A full sync starts a round per container within
//! the backfill window and follows it page by page, each page committed with the
//! progress cursor ([`FULL_SYNC_STREAM`]); once every container's round is complete
//! and reconciled, their delta links are committed ([`DELTA_STREAM`]). An incremental
//! sync follows each stored link, committing each page with the link that follows it.

use super::folders::folder_of;
use super::{CONTAINER, DELTA_STREAM, FULL_SYNC_STREAM, GRAPH_REQUEST_UNITS, GraphLink};
use crate::error::SyncError;
use crate::link::{ContainerTally, contains_container, json_cursor};
use crate::source::{LinkRun, SyncMode, SyncSummary};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tributary_microsoft::{DeltaLink, DeltaOptions, DeltaPage};
use tributary_store::CursorAdvance;

const MILLIS_PER_DAY: i64 = 86_400_000;

/// Per container (as the policy spells it), the link to follow next. Stored as JSON in
/// [`DELTA_STREAM`]: the field names are stored, keep them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct DeltaState {
    pub(super) folders: BTreeMap<String, String>,
}

/// Where a full sync is: the containers it lists (in order), the one being listed, the
/// next page of its round, the counts so far and the delta links of the rounds done.
/// Stored as JSON in [`FULL_SYNC_STREAM`]: the field names are stored, keep them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct FullSyncProgress {
    pub(super) containers: Vec<String>,
    pub(super) container: usize,
    pub(super) next: Option<String>,
    pub(super) counts: Vec<ContainerTally>,
    pub(super) delta: BTreeMap<String, String>,
    pub(super) done: bool,
}

impl FullSyncProgress {
    fn new(containers: Vec<String>) -> Self {
        FullSyncProgress {
            counts: vec![ContainerTally::default(); containers.len()],
            containers,
            container: 0,
            next: None,
            delta: BTreeMap::new(),
            done: false,
        }
    }
}

fn progress_cursor(progress: &FullSyncProgress) -> CursorAdvance {
    json_cursor(FULL_SYNC_STREAM, progress)
}

fn delta_cursor(state: &DeltaState) -> CursorAdvance {
    json_cursor(DELTA_STREAM, state)
}

impl GraphLink<'_> {
    /// A delta round from scratch over `container`, within the backfill window (a day
    /// early: [`tributary_core::CapturePolicy::sees`] judges each message exactly).
    async fn start_round(&self, container: &str) -> Result<DeltaPage, SyncError> {
        let days = i64::from(self.link.policy.backfill_days) + 1;
        let start_ms = self.link.now_ms.saturating_sub(days * MILLIS_PER_DAY);
        let options = DeltaOptions {
            page_size: Some(self.page_size()),
            received_since: DateTime::<Utc>::from_timestamp_millis(start_ms.max(0)),
            with_headers: true,
        };
        let folder = folder_of(container);
        self.call(GRAPH_REQUEST_UNITS, || {
            self.mail.delta_start(&folder, &options)
        })
        .await
    }

    async fn follow(&self, link: &str) -> Result<DeltaPage, SyncError> {
        let size = self.page_size();
        self.call(GRAPH_REQUEST_UNITS, || {
            self.mail.delta_follow(link, Some(size))
        })
        .await
    }

    /// Lists every container of the link from scratch (a `Full` sync resumes an
    /// unfinished one; a `Resync` always starts again, as the links it would resume
    /// from may be gone too), reconciles each, then commits the delta links.
    pub(super) async fn full_sync(&self, mode: SyncMode) -> Result<LinkRun, SyncError> {
        let mut summary = SyncSummary::new(mode);
        let resumed = match mode {
            SyncMode::Full => self
                .link
                .json_state::<FullSyncProgress>(FULL_SYNC_STREAM)
                .await?
                .filter(|progress| !progress.done),
            _ => None,
        };
        let mut progress = resumed
            .unwrap_or_else(|| FullSyncProgress::new(self.link.policy.synced_labels.clone()));
        progress
            .counts
            .resize(progress.containers.len(), ContainerTally::default());
        self.backfill(&mut progress, &mut summary).await?;
        let (gaps, _) = self
            .link
            .reconcile_backfill(
                &progress.containers,
                &progress.counts,
                CONTAINER,
                &mut summary,
            )
            .await?;
        let state = DeltaState {
            folders: progress.delta.clone(),
        };
        self.link
            .commit(Vec::new(), Some(&delta_cursor(&state)), &mut summary)
            .await?;
        progress.done = true;
        self.link
            .commit(Vec::new(), Some(&progress_cursor(&progress)), &mut summary)
            .await?;
        Ok(LinkRun { summary, gaps })
    }

    /// Follows each container's round from where `progress` is, committing every page
    /// with the progress that follows it.
    async fn backfill(
        &self,
        progress: &mut FullSyncProgress,
        summary: &mut SyncSummary,
    ) -> Result<(), SyncError> {
        while progress.container < progress.containers.len() {
            let index = progress.container;
            let container = progress.containers[index].clone();
            let page = match progress.next.clone() {
                Some(next) => self.follow(&next).await?,
                None => {
                    progress.counts[index] = self.start_folder(&container).await?;
                    if progress.counts[index].missing {
                        // Debug-formatted: a member names the folder.
                        tracing::warn!(mailbox = ?self.link.mailbox, ?container, "no such folder");
                        progress.container += 1;
                        continue;
                    }
                    self.start_round(&container).await?
                }
            };
            let (sightings, captured) = self
                .capture_page(
                    &container,
                    page.messages,
                    &mut progress.counts[index],
                    summary,
                )
                .await?;
            match page.link {
                DeltaLink::Next(next) => progress.next = Some(next),
                DeltaLink::Delta(delta) => {
                    progress.delta.insert(container, delta);
                    progress.container += 1;
                    progress.next = None;
                }
            }
            self.link
                .commit(sightings, Some(&progress_cursor(progress)), summary)
                .await?;
            if self
                .check_page(captured, &mut progress.counts[index])
                .await?
            {
                self.link
                    .commit(Vec::new(), Some(&progress_cursor(progress)), summary)
                    .await?;
            }
        }
        Ok(())
    }

    /// Follows each container's stored link to the end of its round; a container
    /// synced since the last run starts its round now (within the window).
    pub(super) async fn incremental_sync(
        &self,
        mut state: DeltaState,
    ) -> Result<LinkRun, SyncError> {
        let mut summary = SyncSummary::new(SyncMode::Incremental);
        let synced = self.link.policy.synced_labels.clone();
        state
            .folders
            .retain(|container, _| contains_container(&synced, container));
        let mut tallies = BTreeMap::new();
        let mut gaps = Vec::new();
        for container in synced {
            let mut tally = ContainerTally::default();
            let mut page = match state.folders.get(&container).cloned() {
                Some(link) => self.follow(&link).await?,
                None => {
                    tally = self.start_folder(&container).await?;
                    if tally.missing {
                        gaps.push(format!("{container}: the mailbox has no such {CONTAINER}"));
                        continue;
                    }
                    self.start_round(&container).await?
                }
            };
            loop {
                let (sightings, captured) = self
                    .capture_page(&container, page.messages, &mut tally, &mut summary)
                    .await?;
                state
                    .folders
                    .insert(container.clone(), page.link.as_str().to_owned());
                self.link
                    .commit(sightings, Some(&delta_cursor(&state)), &mut summary)
                    .await?;
                self.check_page(captured, &mut tally).await?;
                match page.link {
                    DeltaLink::Next(next) => page = self.follow(&next).await?,
                    DeltaLink::Delta(_) => break,
                }
            }
            tallies.insert(container, tally);
        }
        let (more, _) = self
            .link
            .reconcile_increment(&tallies, 0, "the delta", &mut summary)
            .await?;
        gaps.extend(more);
        Ok(LinkRun { summary, gaps })
    }
}
