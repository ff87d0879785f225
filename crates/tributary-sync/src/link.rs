//! The neutral half of a link's sync, written once for every provider: commit a page
//! with its cursor in one transaction, read a cursor, decide what became of a fetched
//! message, check the store holds what was captured, and reconcile a container's counts
//! (a Gmail label, a Graph folder, an IMAP mailbox) against what the provider listed.
//! A provider's [`MailSource`](crate::source::MailSource) speaks its protocol and calls
//! these; it never writes to the store another way.

use crate::engine::clock_ms;
use crate::error::SyncError;
use crate::pacing::Pacer;
use crate::source::SyncSummary;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::collections::BTreeMap;
use std::sync::Arc;
use tributary_core::{CapturePolicy, Extractor, MessageRecord};
use tributary_store::{
    CapturePage, CapturedSighting, CursorAdvance, LabelReconciliation, LinkId, Store, TenantId,
};

/// One mailbox link as a run sees it: where to commit, what to capture, how to pace.
#[derive(Debug, Clone)]
pub struct LinkContext {
    pub store: Store,
    pub tenant: TenantId,
    pub link: LinkId,
    /// The mailbox's address, lowercased, as sightings record it.
    pub mailbox: String,
    /// Shared by the tenant's links; its policy's containers are the tenant's.
    pub extractor: Arc<Extractor>,
    /// The link's policy: the tenant's, with the member's extra containers added
    /// ([`link_policy`]). It decides which containers are listed and what is seen.
    pub policy: CapturePolicy,
    pub pacer: Arc<Pacer>,
    /// The instant the backfill window ends at, Unix milliseconds.
    pub now_ms: i64,
    /// Messages per list page and per committed page.
    pub page_size: u32,
}

/// The tenant's policy with `extra` containers (a member's) appended, skipping those
/// already synced (case-insensitively).
pub fn link_policy(tenant: &CapturePolicy, extra: &[String]) -> CapturePolicy {
    let mut policy = tenant.clone();
    for container in extra {
        if !contains_container(&policy.synced_labels, container) {
            policy.synced_labels.push(container.clone());
        }
    }
    policy
}

/// Whether `containers` holds `container`, compared case-insensitively (as Gmail
/// compares label ids, and as folder names are matched).
pub(crate) fn contains_container(containers: &[String], container: &str) -> bool {
    containers.iter().any(|c| c.eq_ignore_ascii_case(container))
}

/// What became of one listed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The extraction captured it: the store must now hold it as a sighting.
    Captured,
    Excluded,
    NotSeen,
    Gone,
}

/// One container's counts while it is backfilled, committed with every page (inside
/// the provider's progress cursor) so that a resumed backfill reconciles the whole
/// container. The field names are stored: keep them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerTally {
    pub provider_total: Option<u64>,
    /// The mailbox has no such container.
    #[serde(default)]
    pub missing: bool,
    pub listed: u64,
    pub captured: u64,
    pub excluded: u64,
    pub not_seen: u64,
    pub gone: u64,
}

impl ContainerTally {
    /// Counts one listed message; `None` is a message nothing accounts for.
    pub fn count(&mut self, outcome: Option<Outcome>) {
        self.listed += 1;
        match outcome {
            Some(Outcome::Captured) => self.captured += 1,
            Some(Outcome::Excluded) => self.excluded += 1,
            Some(Outcome::NotSeen) => self.not_seen += 1,
            Some(Outcome::Gone) => self.gone += 1,
            None => {}
        }
    }

    fn row(&self, container: &str, at_ms: i64) -> LabelReconciliation {
        LabelReconciliation {
            label: container.to_owned(),
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

/// A cursor advance holding `state` as JSON.
pub fn json_cursor<T: Serialize>(stream: &str, state: &T) -> CursorAdvance {
    CursorAdvance {
        stream: stream.to_owned(),
        // Serializing plain numbers and strings cannot fail.
        value: serde_json::to_string(state).unwrap_or_default(),
    }
}

impl LinkContext {
    /// Commits `sightings` and, in the same transaction, the cursor advance describing
    /// where the run is once they are in; counts what the store made of them.
    pub async fn commit(
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

    /// The stored value of one of the link's cursor streams.
    pub async fn cursor(&self, stream: &str) -> Result<Option<String>, SyncError> {
        Ok(self.store.cursor(&self.tenant, self.link, stream).await?)
    }

    /// A cursor stream holding JSON; an unreadable value is [`SyncError::BadCursor`].
    pub async fn json_state<T: DeserializeOwned>(
        &self,
        stream: &'static str,
    ) -> Result<Option<T>, SyncError> {
        let Some(value) = self.cursor(stream).await? else {
            return Ok(None);
        };
        match serde_json::from_str(&value) {
            Ok(state) => Ok(Some(state)),
            Err(_) => Err(SyncError::BadCursor { stream, value }),
        }
    }

    /// Decides what becomes of one fetched message: not seen by the link's policy
    /// (outside the window or the synced containers), or extracted, captured or
    /// excluded. Counts it as fetched (and not seen); the sighting to commit, if any.
    pub fn capture(
        &self,
        record: &MessageRecord,
        provider_message_id: String,
        labels: Vec<String>,
        summary: &mut SyncSummary,
    ) -> (Outcome, Option<CapturedSighting>) {
        summary.fetched += 1;
        if !self.policy.sees(record, self.now_ms) {
            summary.not_seen += 1;
            return (Outcome::NotSeen, None);
        }
        let extraction = self.extractor.extract(record);
        let outcome = if extraction.is_captured() {
            Outcome::Captured
        } else {
            Outcome::Excluded
        };
        let sighting = CapturedSighting {
            extraction,
            provider_message_id,
            labels,
        };
        (outcome, Some(sighting))
    }

    /// Of `captured` (provider message ids the extraction captured), those the store
    /// does not hold for the link: what a silent loss looks like.
    pub async fn lost_ids(&self, mut captured: Vec<String>) -> Result<Vec<String>, SyncError> {
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
            tracing::error!(mailbox = ?self.mailbox, lost = ?captured, "captured messages missing from the store");
        }
        Ok(captured)
    }

    /// Forgets the reconciliation rows of containers no longer synced: they would
    /// report on mail no longer captured.
    pub async fn retain_reconciliation(&self) -> Result<(), SyncError> {
        self.store
            .retain_label_reconciliation(&self.tenant, self.link, &self.policy.synced_labels)
            .await?;
        Ok(())
    }

    /// Stores one reconciliation row per container of a finished backfill (replacing
    /// the rows of those containers); answers the gaps found and the containers
    /// without one. `noun` names a container in the admin's words ("label", "folder").
    pub async fn reconcile_backfill(
        &self,
        containers: &[String],
        tallies: &[ContainerTally],
        noun: &str,
        summary: &mut SyncSummary,
    ) -> Result<(Vec<String>, Vec<String>), SyncError> {
        let at_ms = clock_ms();
        let mut rows = Vec::new();
        let mut gaps = Vec::new();
        let mut clean = Vec::new();
        for (container, tally) in containers.iter().zip(tallies) {
            if tally.missing {
                gaps.push(format!("{container}: the mailbox has no such {noun}"));
                continue;
            }
            let row = tally.row(container, at_ms);
            let unaccounted = row.unaccounted();
            if unaccounted > 0 {
                summary.unaccounted += unaccounted;
                gaps.push(format!(
                    "{container}: {unaccounted} of {} messages listed were not captured",
                    row.listed
                ));
            } else {
                clean.push(container.clone());
            }
            rows.push(row);
        }
        self.store
            .set_label_reconciliation(&self.tenant, self.link, &rows)
            .await?;
        summary.labels_backfilled += clean.len() as u64;
        Ok((gaps, clean))
    }

    /// Adds an incremental run's counts to the containers' rows. `unplaced` counts the
    /// messages nothing accounts for that no container could be named for. Answers the
    /// gaps and the containers with one (all synced ones when a message was unplaced);
    /// `source` says what named the messages ("history", "the delta").
    pub async fn reconcile_increment(
        &self,
        tallies: &BTreeMap<String, ContainerTally>,
        unplaced: u64,
        source: &str,
        summary: &mut SyncSummary,
    ) -> Result<(Vec<String>, Vec<String>), SyncError> {
        let at_ms = clock_ms();
        let rows: Vec<LabelReconciliation> = tallies
            .iter()
            .map(|(container, tally)| tally.row(container, at_ms))
            .collect();
        self.store
            .add_label_reconciliation(&self.tenant, self.link, &rows)
            .await?;
        let mut gaps = Vec::new();
        let mut unreconciled = Vec::new();
        for row in rows.iter().filter(|row| row.unaccounted() > 0) {
            summary.unaccounted += row.unaccounted();
            gaps.push(format!(
                "{}: {} of {} messages {source} named were not captured",
                row.label,
                row.unaccounted(),
                row.listed
            ));
            unreconciled.push(row.label.clone());
        }
        if unplaced > 0 {
            summary.unaccounted += unplaced;
            gaps.push(format!(
                "{unplaced} messages {source} named were not captured"
            ));
            unreconciled = self.policy.synced_labels.clone();
        }
        Ok((gaps, unreconciled))
    }
}
