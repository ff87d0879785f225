//! Fetching Gmail messages' metadata in batches, paced and retried part by part, and
//! handing each to the neutral capture.

use super::GmailLink;
use crate::error::SyncError;
use crate::link::Outcome;
use crate::pacing::{RefusedParts, units};
use crate::source::SyncSummary;
use std::collections::HashMap;
use tributary_core::HeaderField;
use tributary_google::{MAX_BATCH_PARTS, MessageMeta};
use tributary_store::CapturedSighting;

/// A batch costs at most this share (one over) of a quota minute's per-user units.
const BATCHES_PER_MINUTE: u32 = 20;

/// One fetched message: its outcome and the link's labels it carries (the link's
/// spelling).
#[derive(Debug, Clone)]
pub(super) struct Fetched {
    pub(super) outcome: Outcome,
    pub(super) labels: Vec<String>,
}

impl GmailLink<'_> {
    /// Fetches the metadata of `ids`, records what became of each in `known`, and
    /// extracts each message the mailbox sees.
    pub(super) async fn fetch_sightings(
        &self,
        ids: &[String],
        known: &mut HashMap<String, Fetched>,
        summary: &mut SyncSummary,
    ) -> Result<Vec<CapturedSighting>, SyncError> {
        let mut sightings = Vec::with_capacity(ids.len());
        let mut rest = ids;
        while !rest.is_empty() {
            // Sized again for each batch: a refusal may have lowered the budget.
            let (chunk, after) = rest.split_at(self.batch_size().min(rest.len()));
            rest = after;
            let (metas, gone) = self.fetch_batch(chunk, summary).await?;
            for id in gone {
                let fetched = Fetched {
                    outcome: Outcome::Gone,
                    labels: Vec::new(),
                };
                known.insert(id, fetched);
            }
            for meta in metas {
                let record = meta.to_record(&self.link.mailbox);
                let labels = self.synced_labels_of(&meta.label_ids);
                let (outcome, sighting) =
                    self.link
                        .capture(&record, meta.id.clone(), meta.label_ids, summary);
                known.insert(meta.id, Fetched { outcome, labels });
                sightings.extend(sighting);
            }
        }
        Ok(sightings)
    }

    /// Of `ids`, those the extraction captured but the store does not hold for the
    /// link.
    pub(super) async fn lost_ids(
        &self,
        ids: &[String],
        known: &HashMap<String, Fetched>,
    ) -> Result<Vec<String>, SyncError> {
        let captured: Vec<String> = ids
            .iter()
            .filter(|id| {
                known
                    .get(*id)
                    .is_some_and(|f| f.outcome == Outcome::Captured)
            })
            .cloned()
            .collect();
        self.link.lost_ids(captured).await
    }

    /// Gets per batch: at most [`MAX_BATCH_PARTS`], and no more than a twentieth of what
    /// the user's budget pays for in a quota minute, as the pacer now paces this
    /// mailbox (lowered by its refusals). Gmail charges the parts one after another and
    /// refuses those the budget no longer covers, so when the real budget is lower
    /// than the one paced at, the batch that finds it out loses its parts beyond it:
    /// a small batch bounds that loss (Gmail's published 15,000 units still allow the
    /// full 100 parts). A batch costing the whole bucket would also go out with the
    /// provider's bucket full and pay for its transit every time (see
    /// `PacingConfig::transit_allowance`).
    fn batch_size(&self) -> usize {
        let budget = self.link.pacer.user_units_per_minute(self.gmail.user());
        let affordable = budget / (BATCHES_PER_MINUTE * units::MESSAGES_GET);
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
        let pacer = &self.link.pacer;
        let mut pending = ids.to_vec();
        let mut fetched = Vec::with_capacity(ids.len());
        let mut gone = Vec::new();
        let mut attempt = 1;
        loop {
            let cost = units::MESSAGES_GET * u32::try_from(pending.len()).unwrap_or(u32::MAX);
            let answers = pacer
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
            let parts = RefusedParts {
                refused: failed.len(),
                sent: pending.len(),
            };
            // Only rounds that got nothing count against the attempts: a budget that
            // covers part of a batch is slow, not failing.
            attempt = if progressed { 1 } else { attempt + 1 };
            if attempt > pacer.config().max_attempts {
                return Err(error.into());
            }
            pacer
                .wait_before_retry_after(self.gmail.user(), attempt, &error, parts)
                .await;
            pending = failed;
        }
    }
}
