//! The engine: runs link syncs for one tenant's connection, a few at a time, and
//! records each outcome on the link (status, the provider's message, summary, audit).
//! It knows no provider: the [`Connector`] syncs a link through its neutral
//! [`LinkContext`].

use crate::calendar;
use crate::connector::Connector;
use crate::error::SyncError;
use crate::link::{LinkContext, link_policy};
use crate::pacing::{Pacer, PacingConfig, PacingStats};
use crate::push::lifecycle::{self, PushRun, PushSettings};
use crate::push::{PushLink, PushStream};
use crate::source::{LinkRun, SyncSummary};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tributary_core::{CalendarSync, Extractor, LinkErrorStatus};
use tributary_store::{
    LinkFailure, LinkId, LinkStatus, MemberRole, SYSTEM_ACTOR, Store, StoreError, TenantId,
};

#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    pub pacing: PacingConfig,
    /// Messages per list page and per committed page.
    pub page_size: u32,
    /// Links synced at once.
    pub concurrency: usize,
    /// The instant backfill windows end at; `None` is the clock. (An emulated
    /// organization has its own "now".)
    pub reference_now_ms: Option<i64>,
    /// When a link in `linkage_error` is tried again.
    pub linkage_retry: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            pacing: PacingConfig::default(),
            page_size: 500,
            concurrency: 4,
            reference_now_ms: None,
            linkage_retry: Duration::from_secs(300),
        }
    }
}

/// How one link's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOutcome {
    Synced {
        link: LinkId,
        summary: SyncSummary,
    },
    Failed {
        link: LinkId,
        status: LinkErrorStatus,
        message: String,
    },
}

impl LinkOutcome {
    pub fn link(&self) -> LinkId {
        match self {
            LinkOutcome::Synced { link, .. } | LinkOutcome::Failed { link, .. } => *link,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("a link sync task died: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Syncs the links of one tenant's connection. Cheap to clone; clones share pacing.
#[derive(Debug, Clone)]
pub struct SyncEngine {
    store: Store,
    connector: Connector,
    tenant: TenantId,
    extractor: Arc<Extractor>,
    pacer: Arc<Pacer>,
    config: Arc<EngineConfig>,
    /// Where providers deliver push; `None`: the links are only polled.
    push: Option<Arc<PushSettings>>,
}

impl SyncEngine {
    pub fn new(
        store: Store,
        connector: impl Into<Connector>,
        tenant: TenantId,
        extractor: Extractor,
        config: EngineConfig,
    ) -> Self {
        SyncEngine {
            store,
            connector: connector.into(),
            tenant,
            extractor: Arc::new(extractor),
            pacer: Arc::new(Pacer::new(config.pacing.clone())),
            config: Arc::new(config),
            push: None,
        }
    }

    /// The same engine keeping push channels (docs/push.md) after each successful sync
    /// of a link, delivering as `push` says; `None` turns push off.
    pub fn with_push(mut self, push: Option<PushSettings>) -> Self {
        self.push = push.map(Arc::new);
        self
    }

    pub fn push(&self) -> Option<&PushSettings> {
        self.push.as_deref()
    }

    /// The same engine spending from `pacer`'s budgets: engines rebuilt for a changed
    /// configuration keep what the quota has already been charged.
    pub fn sharing_pacer(mut self, pacer: Arc<Pacer>) -> Self {
        self.pacer = pacer;
        self
    }

    pub fn pacing_stats(&self) -> PacingStats {
        self.pacer.stats()
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn connector(&self) -> &Connector {
        &self.connector
    }

    /// Syncs every link of this engine's provider that may run: not unlinked, not
    /// waiting for an admin.
    pub async fn sync_all(&self) -> Result<Vec<LinkOutcome>, EngineError> {
        let links = self.store.links(&self.tenant).await?;
        let provider = self.connector.kind();
        let runnable: Vec<(LinkId, String)> = links
            .into_iter()
            .filter(|link| link.provider == provider && may_run(link.status))
            .map(|link| (link.id, link.mailbox))
            .collect();
        self.sync_links(runnable).await
    }

    /// Syncs the given links, [`EngineConfig::concurrency`] at a time, in link order.
    pub async fn sync_links(
        &self,
        links: Vec<(LinkId, String)>,
    ) -> Result<Vec<LinkOutcome>, EngineError> {
        let permits = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let mut tasks = JoinSet::new();
        for (link, mailbox) in links {
            let engine = self.clone();
            let permits = Arc::clone(&permits);
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                engine.sync_link(link, &mailbox).await
            });
        }
        let mut outcomes = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            outcomes.push(joined??);
        }
        outcomes.sort_by_key(LinkOutcome::link);
        Ok(outcomes)
    }

    /// Runs one link and records the outcome on it. Only a store failure while
    /// recording is an error; a provider failure is an outcome.
    pub async fn sync_link(&self, link: LinkId, mailbox: &str) -> Result<LinkOutcome, StoreError> {
        self.sync_link_retrying_in(link, mailbox, self.config.linkage_retry)
            .await
    }

    /// [`Self::sync_link`], a `linkage_error` being retried in `linkage_retry` (a
    /// scheduler backs off by the link's failures).
    pub async fn sync_link_retrying_in(
        &self,
        link: LinkId,
        mailbox: &str,
        linkage_retry: Duration,
    ) -> Result<LinkOutcome, StoreError> {
        Ok(self.run_link(link, mailbox, linkage_retry).await?.0)
    }

    /// [`Self::sync_link_retrying_in`], answering also what the push lifecycle step left
    /// the link in (`None`: push is off, or the run failed and the step did not run).
    pub async fn run_link(
        &self,
        link: LinkId,
        mailbox: &str,
        linkage_retry: Duration,
    ) -> Result<(LinkOutcome, Option<PushRun>), StoreError> {
        // Read per run: an admin may change a member's labels at any time.
        let extra_labels = self.store.link_labels(&self.tenant, link).await?;
        self.store
            .set_link_status(&self.tenant, link, LinkStatus::Syncing, SYSTEM_ACTOR)
            .await?;
        let context = LinkContext {
            store: self.store.clone(),
            tenant: self.tenant.clone(),
            link,
            mailbox: mailbox.to_lowercase(),
            policy: link_policy(&self.extractor.policy, &extra_labels),
            extractor: Arc::clone(&self.extractor),
            pacer: Arc::clone(&self.pacer),
            now_ms: self.config.reference_now_ms.unwrap_or_else(clock_ms),
            page_size: self.config.page_size,
        };
        let outcome = match self.connector.sync(&context).await {
            Ok(LinkRun { summary, gaps }) if gaps.is_empty() => {
                self.record_success(link, summary).await
            }
            Ok(LinkRun { gaps, .. }) => self.record_gaps(link, mailbox, &gaps, linkage_retry).await,
            Err(error) => {
                self.record_failure(link, mailbox, &error, linkage_retry)
                    .await
            }
        }?;
        // The calendar runs in the mail's job, after it: one lease per link, one token
        // cache, no second schedule to keep. Rejected credentials fail both alike.
        let credentials_rejected = matches!(
            outcome,
            LinkOutcome::Failed {
                status: LinkErrorStatus::AuthenticationError,
                ..
            }
        );
        if !credentials_rejected {
            self.sync_calendar(&context).await?;
        }
        let push = match outcome {
            LinkOutcome::Synced { .. } => self.keep_push_channels(&context).await?,
            LinkOutcome::Failed { .. } => None,
        };
        Ok((outcome, push))
    }

    /// After a successful sync, when push is configured: the link's channels opened or
    /// renewed (see [`lifecycle::maintain_channels`]). A channel the provider refuses
    /// leaves the link on polling with its reason; the sync still succeeded.
    async fn keep_push_channels(
        &self,
        context: &LinkContext,
    ) -> Result<Option<PushRun>, StoreError> {
        let Some(settings) = &self.push else {
            return Ok(None);
        };
        // Channels live in real time, whatever instant the backfill window ends at.
        let now_ms = clock_ms();
        let offered = self.connector.push_streams();
        if offered.is_empty() {
            let kind = self.connector.kind();
            return lifecycle::record_no_push(
                &self.store,
                &self.tenant,
                context.link,
                kind,
                now_ms,
            )
            .await
            .map(Some);
        }
        let mut streams = Vec::with_capacity(offered.len());
        for &stream in offered {
            // A calendar whose meetings are not captured needs no channel.
            if stream != PushStream::Calendar || self.captures_calendar_of(context).await? {
                streams.push(stream);
            }
        }
        let link = PushLink {
            tenant: self.tenant.clone(),
            link: context.link,
            mailbox: context.mailbox.clone(),
            pacer: Arc::clone(&self.pacer),
        };
        let target = settings.target(&self.tenant);
        lifecycle::maintain_channels(
            &self.store,
            &self.connector,
            &link,
            &target,
            &streams,
            now_ms,
        )
        .await
        .map(Some)
    }

    /// Runs the link's calendar stream when the policy captures this member's meetings.
    /// Its outcome is the calendar's own status: a calendar that fails alone (its scope
    /// not delegated) leaves mail's status as the mail run left it.
    async fn sync_calendar(&self, context: &LinkContext) -> Result<(), StoreError> {
        let Some(stream) = self.connector.calendar_stream() else {
            return Ok(());
        };
        if !self.captures_calendar_of(context).await? {
            return Ok(());
        }
        let (tenant, link) = (&self.tenant, context.link);
        self.store
            .set_calendar_status(tenant, link, LinkStatus::Syncing, None, None)
            .await?;
        match calendar::sync_calendar(&self.connector, stream, context).await {
            Ok(run) if run.gaps.is_empty() => {
                tracing::debug!(mailbox = ?context.mailbox, ?run, "calendar synced");
                self.store
                    .set_calendar_status(tenant, link, LinkStatus::Idle, None, None)
                    .await
            }
            Ok(run) => {
                let message = calendar_gaps_message(&run.gaps);
                tracing::warn!(mailbox = ?context.mailbox, ?message, "calendar run left a gap");
                self.store
                    .set_calendar_status(
                        tenant,
                        link,
                        LinkStatus::LinkageError,
                        Some(&message),
                        Some(tributary_core::INCOMPLETE_RUN_CODE),
                    )
                    .await
            }
            Err(error) => {
                let status = error.link_status();
                tracing::warn!(mailbox = ?context.mailbox, %status, error = ?error.to_string(), "calendar sync failed");
                self.store
                    .set_calendar_status(
                        tenant,
                        link,
                        status.into(),
                        Some(&error.message()),
                        failure_reason(&error),
                    )
                    .await
            }
        }
    }

    /// Whether meetings are captured from this link's calendar: the policy's switch and
    /// its "Calendar sync" permission (everyone, administrators only, nobody).
    async fn captures_calendar_of(&self, context: &LinkContext) -> Result<bool, StoreError> {
        let meetings = &context.policy.meetings;
        if !meetings.capture {
            return Ok(false);
        }
        Ok(match meetings.calendar_sync {
            CalendarSync::Everyone => true,
            CalendarSync::Nobody => false,
            CalendarSync::Admins => self
                .store
                .member_by_address(&self.tenant, &context.mailbox)
                .await?
                .is_some_and(|member| member.role == MemberRole::Admin),
        })
    }

    async fn record_success(
        &self,
        link: LinkId,
        summary: SyncSummary,
    ) -> Result<LinkOutcome, StoreError> {
        let at_ms = clock_ms();
        let mut json = serde_json::to_value(summary)?;
        json["at_ms"] = at_ms.into();
        self.store
            .record_link_success(&self.tenant, link, &json, at_ms)
            .await?;
        Ok(LinkOutcome::Synced { link, summary })
    }

    /// A run that completed but could not account for every message the provider
    /// listed: not healthy. A `linkage_error`, retried like one; the next run lists the
    /// labels concerned again.
    async fn record_gaps(
        &self,
        link: LinkId,
        mailbox: &str,
        gaps: &[String],
        linkage_retry: Duration,
    ) -> Result<LinkOutcome, StoreError> {
        let status = LinkErrorStatus::LinkageError;
        let message = gaps.join("; ");
        // Fields are Debug-formatted (escaped): label names and Google's words are
        // not ours, and must not be able to forge log lines.
        tracing::warn!(?mailbox, ?message, "link sync left a gap");
        let next_attempt =
            clock_ms().saturating_add(i64::try_from(linkage_retry.as_millis()).unwrap_or(i64::MAX));
        // A label the mailbox lacks has its own fix (the labels), other gaps only retry.
        let reason = if gaps
            .iter()
            .any(|gap| gap.contains("the mailbox has no such"))
        {
            tributary_core::MISSING_LABEL_CODE
        } else {
            tributary_core::INCOMPLETE_RUN_CODE
        };
        let failure = LinkFailure {
            status,
            message: &message,
            reason: Some(reason),
        };
        self.store
            .record_link_failure_with_reason(&self.tenant, link, failure, Some(next_attempt))
            .await?;
        Ok(LinkOutcome::Failed {
            link,
            status,
            message,
        })
    }

    async fn record_failure(
        &self,
        link: LinkId,
        mailbox: &str,
        error: &SyncError,
        linkage_retry: Duration,
    ) -> Result<LinkOutcome, StoreError> {
        let status = error.link_status();
        let message = error.message();
        tracing::warn!(?mailbox, %status, error = ?error.to_string(), "link sync failed");
        // Errors an admin must fix are not retried on a timer.
        let next_attempt = (!status.needs_admin()).then(|| {
            clock_ms().saturating_add(i64::try_from(linkage_retry.as_millis()).unwrap_or(i64::MAX))
        });
        let failure = LinkFailure {
            status,
            message: &message,
            reason: failure_reason(error),
        };
        self.store
            .record_link_failure_with_reason(&self.tenant, link, failure, next_attempt)
            .await?;
        Ok(LinkOutcome::Failed {
            link,
            status,
            message,
        })
    }
}

/// Most unreadable events named in a calendar status; the rest are counted.
const MAX_GAPS_SHOWN: usize = 5;

/// The calendar status message for events that could not be judged.
fn calendar_gaps_message(gaps: &[String]) -> String {
    let shown: Vec<&str> = gaps
        .iter()
        .take(MAX_GAPS_SHOWN)
        .map(String::as_str)
        .collect();
    let more = gaps.len().saturating_sub(MAX_GAPS_SHOWN);
    let tail = if more > 0 {
        format!(" (and {more} more)")
    } else {
        String::new()
    };
    format!(
        "{} calendar events could not be read: {}{tail}",
        gaps.len(),
        shown.join("; ")
    )
}

/// The cause code kept with a failure, for the hint of its cause: the provider's reason,
/// else the kind for a transient failure (timeouts and resets carry no code).
fn failure_reason(error: &SyncError) -> Option<&str> {
    match error {
        SyncError::Provider(error) => error.reason().or_else(|| {
            (error.kind() == tributary_core::ProviderErrorKind::Transient).then_some("transient")
        }),
        _ => None,
    }
}

pub(crate) fn may_run(status: LinkStatus) -> bool {
    !matches!(
        status,
        LinkStatus::Unlinked | LinkStatus::AuthenticationError | LinkStatus::Unauthorized
    )
}

pub(crate) fn clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
