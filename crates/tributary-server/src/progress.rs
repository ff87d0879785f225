//! How far backfills are, read once for the API (`/links/{id}`, `/progress`) and the
//! console's Users page: a link's backfill from its provider's full-sync progress cursor
//! (`<provider>.full_sync`, whose `counts` and `done` fields every provider stores in the
//! engine's neutral shape, see `tributary_sync::link::ContainerTally`), whether the job
//! running it still has a live worker, the time left at the quota the engine paces at,
//! and the whole organization's progress.

use serde::Deserialize;
use std::collections::HashMap;
use std::time::Duration;
use tributary_store::{
    ConnectionKind, LinkId, LinkStatus, LinkView, RunningLink, Store, StoreError, StoredCursor,
    TenantId,
};
use tributary_sync::PacingConfig;
use tributary_sync::link::ContainerTally;
use tributary_sync::pacing::units;

/// The stream suffix of every provider's backfill progress cursor.
const FULL_SYNC_SUFFIX: &str = ".full_sync";

/// A backfill's counts so far, summed over its containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backfill {
    pub listed: u64,
    pub captured: u64,
    /// What the provider counts in the containers, known only when it gave a count for
    /// every one (Gmail's label totals are all time: larger than what the window lists).
    pub provider_total: Option<u64>,
    pub done: bool,
    /// When the backfill last committed a page.
    pub updated_ms: i64,
}

impl Backfill {
    /// The backfill among a link's cursors; `None` when the link never began one.
    pub fn of_link(cursors: &[StoredCursor]) -> Option<Self> {
        cursors
            .iter()
            .find(|c| c.stream.ends_with(FULL_SYNC_SUFFIX))
            .and_then(Self::from_cursor)
    }

    /// A full-sync cursor's neutral part; `None` when it does not parse.
    fn from_cursor(cursor: &StoredCursor) -> Option<Self> {
        #[derive(Deserialize)]
        struct Progress {
            #[serde(default)]
            counts: Vec<ContainerTally>,
            #[serde(default)]
            done: bool,
        }
        let progress: Progress = serde_json::from_str(&cursor.value).ok()?;
        let mut sum = Backfill {
            listed: 0,
            captured: 0,
            provider_total: Some(0),
            done: progress.done,
            updated_ms: cursor.updated_ms,
        };
        for tally in &progress.counts {
            sum.listed += tally.listed;
            sum.captured += tally.captured;
            sum.provider_total = sum
                .provider_total
                .zip(tally.provider_total)
                .map(|(a, b)| a + b);
        }
        Some(sum)
    }

    /// Messages the provider counts that the backfill has not listed yet; `None` when
    /// done or the total is unknown.
    pub fn left(&self) -> Option<u64> {
        if self.done {
            return None;
        }
        self.provider_total
            .map(|total| total.saturating_sub(self.listed))
    }
}

/// The budgets the engine paces at, from its [`PacingConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaRates {
    pub user_units_per_minute: u32,
    pub project_units_per_minute: u32,
    /// A quota minute in real time (shorter against an emulator with scaled time).
    pub minute: Duration,
}

impl QuotaRates {
    pub fn of(pacing: &PacingConfig) -> Self {
        QuotaRates {
            user_units_per_minute: pacing.user_units_per_minute,
            project_units_per_minute: pacing.project_units_per_minute,
            minute: pacing.minute,
        }
    }

    /// Units the `left` messages of a `provider`'s mailbox cost (Gmail: one metadata get
    /// each); `None` for providers whose cost per message the engine does not count in
    /// these units.
    fn units(provider: ConnectionKind, left: u64) -> Option<u64> {
        (provider == ConnectionKind::Google)
            .then(|| left.saturating_mul(u64::from(units::MESSAGES_GET)))
    }

    /// Seconds `units` take at `per_minute`, rounded up; `None` for a zero budget.
    fn seconds(&self, units: u64, per_minute: u32) -> Option<u64> {
        if per_minute == 0 {
            return None;
        }
        let millis = u128::from(units) * self.minute.as_millis();
        let seconds = millis.div_ceil(u128::from(per_minute) * 1000);
        Some(u64::try_from(seconds).unwrap_or(u64::MAX))
    }

    /// The time a mailbox's unfinished backfill takes at the per-user budget: the
    /// floor the quota sets. `None` when done or unknown.
    pub fn seconds_left(&self, provider: ConnectionKind, backfill: &Backfill) -> Option<u64> {
        let units = Self::units(provider, backfill.left()?)?;
        self.seconds(units, self.user_units_per_minute)
    }
}

/// What the admin needs to know about a link's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// A worker with a live heartbeat holds its job.
    Running,
    /// The worker holding its job stopped renewing its heartbeat: the run is over, and
    /// another worker takes the job over when the lease expires.
    WorkerStopped,
    /// `syncing` per its status, but no live lease: the job is about to be taken over.
    Waiting,
    NotRunning,
}

impl RunState {
    pub fn of(view: &LinkView, running: Option<&RunningLink>) -> Self {
        match running {
            Some(run) if run.worker_stopped_ms.is_some() => RunState::WorkerStopped,
            Some(_) => RunState::Running,
            None if view.status == LinkStatus::Syncing => RunState::Waiting,
            None => RunState::NotRunning,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::WorkerStopped => "worker_stopped",
            RunState::Waiting => "waiting",
            RunState::NotRunning => "not_running",
        }
    }
}

/// Where a mailbox's backfill stands, for the organization's count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackfillState {
    Done,
    Backfilling,
    /// No page committed yet.
    NotStarted,
    /// Unfinished, and the link is in an error status (it waits for a retry or a fix).
    Error,
}

impl BackfillState {
    pub fn of(view: &LinkView, backfill: Option<&Backfill>) -> Self {
        let failed = matches!(
            view.status,
            LinkStatus::AuthenticationError | LinkStatus::Unauthorized | LinkStatus::LinkageError
        );
        match backfill {
            Some(backfill) if backfill.done => BackfillState::Done,
            _ if failed => BackfillState::Error,
            Some(_) => BackfillState::Backfilling,
            None => BackfillState::NotStarted,
        }
    }
}

/// The whole organization's backfill: its linked mailboxes (unlinked ones left out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgProgress {
    pub mailboxes: usize,
    pub backfilled: usize,
    pub backfilling: usize,
    pub not_started: usize,
    pub error: usize,
    /// Mailboxes whose job is held by a worker that stopped.
    pub worker_stopped: usize,
    /// Summed over every backfill begun.
    pub listed: u64,
    pub captured: u64,
    /// The provider's counts summed; `None` when one backfill's is unknown.
    pub provider_total: Option<u64>,
    /// What the backfills begun will have listed: done ones what they listed, the
    /// others the provider's count; `None` when an unfinished one's is unknown.
    pub expected_total: Option<u64>,
    /// The longest of each backfilling mailbox's time at the per-user budget and all
    /// their units left at the project budget; `None` when none can be estimated.
    pub estimated_seconds_left: Option<u64>,
    /// The backfilling mailboxes the estimate covers.
    pub estimated_mailboxes: usize,
}

impl OrgProgress {
    /// Mailboxes whose backfill is not done.
    pub fn unfinished(&self) -> usize {
        self.backfilling + self.not_started + self.error
    }
}

/// A tenant's backfills and running jobs, read in two queries.
#[derive(Debug, Clone)]
pub struct TenantProgress {
    backfills: HashMap<LinkId, Backfill>,
    running: HashMap<LinkId, RunningLink>,
    pub rates: QuotaRates,
}

impl TenantProgress {
    pub async fn load(
        store: &Store,
        tenant: &TenantId,
        rates: QuotaRates,
        now_ms: i64,
    ) -> Result<Self, StoreError> {
        let mut backfills = HashMap::new();
        for (link, cursor) in store.cursors_ending_with(tenant, FULL_SYNC_SUFFIX).await? {
            if let Some(backfill) = Backfill::from_cursor(&cursor) {
                backfills.entry(link).or_insert(backfill);
            }
        }
        let running = store
            .running_links(tenant, now_ms)
            .await?
            .into_iter()
            .map(|run| (run.link, run))
            .collect();
        Ok(TenantProgress {
            backfills,
            running,
            rates,
        })
    }

    pub fn backfill(&self, link: LinkId) -> Option<&Backfill> {
        self.backfills.get(&link)
    }

    pub fn running(&self, link: LinkId) -> Option<&RunningLink> {
        self.running.get(&link)
    }

    /// The organization's progress over `links` (the tenant's).
    pub fn organization(&self, links: &[LinkView]) -> OrgProgress {
        let mut org = OrgProgress {
            provider_total: Some(0),
            expected_total: Some(0),
            ..OrgProgress::default()
        };
        let (mut longest, mut units_left) = (None::<u64>, 0u64);
        for link in links.iter().filter(|l| l.status != LinkStatus::Unlinked) {
            org.mailboxes += 1;
            let backfill = self.backfill(link.id);
            if self
                .running(link.id)
                .is_some_and(|run| run.worker_stopped_ms.is_some())
            {
                org.worker_stopped += 1;
            }
            let state = BackfillState::of(link, backfill);
            match state {
                BackfillState::Done => org.backfilled += 1,
                BackfillState::Backfilling => org.backfilling += 1,
                BackfillState::NotStarted => org.not_started += 1,
                BackfillState::Error => org.error += 1,
            }
            let Some(backfill) = backfill else {
                continue;
            };
            org.listed += backfill.listed;
            org.captured += backfill.captured;
            org.provider_total = org.provider_total.zip(backfill.provider_total).map(sum);
            let expected = if backfill.done {
                Some(backfill.listed)
            } else {
                backfill.provider_total
            };
            org.expected_total = org.expected_total.zip(expected).map(sum);
            if state != BackfillState::Backfilling {
                continue;
            }
            let left = backfill.left();
            let Some(units) = left.and_then(|left| QuotaRates::units(link.provider, left)) else {
                continue;
            };
            if let Some(seconds) = self.rates.seconds_left(link.provider, backfill) {
                org.estimated_mailboxes += 1;
                units_left = units_left.saturating_add(units);
                longest = longest.max(Some(seconds));
            }
        }
        let project = self
            .rates
            .seconds(units_left, self.rates.project_units_per_minute);
        org.estimated_seconds_left = longest.map(|user| project.map_or(user, |p| user.max(p)));
        org
    }
}

fn sum((a, b): (u64, u64)) -> u64 {
    a.saturating_add(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOGLE: ConnectionKind = ConnectionKind::Google;

    fn rates(user: u32, project: u32) -> QuotaRates {
        QuotaRates {
            user_units_per_minute: user,
            project_units_per_minute: project,
            minute: Duration::from_secs(60),
        }
    }

    fn cursor(value: serde_json::Value) -> StoredCursor {
        StoredCursor {
            stream: "gmail.full_sync".into(),
            value: value.to_string(),
            updated_ms: 42,
        }
    }

    fn tally(total: Option<u64>, listed: u64, captured: u64) -> serde_json::Value {
        serde_json::json!({ "provider_total": total, "listed": listed, "captured": captured,
            "excluded": 0, "not_seen": 0, "gone": 0 })
    }

    fn link(id: i64, status: LinkStatus, provider: ConnectionKind) -> LinkView {
        LinkView {
            id: LinkId(id),
            member: format!("m{id}@acme.test"),
            mailbox: format!("m{id}@acme.test"),
            status,
            provider_message: None,
            status_reason: None,
            last_success_ms: None,
            last_summary: None,
            next_attempt_ms: None,
            attempts: 0,
            provider,
            provider_reason: None,
        }
    }

    fn backfill(listed: u64, total: Option<u64>, done: bool) -> Backfill {
        Backfill {
            listed,
            captured: listed,
            provider_total: total,
            done,
            updated_ms: 0,
        }
    }

    #[test]
    fn a_backfill_sums_its_containers_and_knows_a_total_only_when_each_has_one() {
        let cursors = [
            StoredCursor {
                stream: "gmail.history".into(),
                value: "{}".into(),
                updated_ms: 1,
            },
            cursor(serde_json::json!({ "done": false, "label": 1,
                "counts": [tally(Some(500), 100, 90), tally(Some(300), 20, 20)] })),
        ];
        let read = Backfill::of_link(&cursors).unwrap();
        assert_eq!(
            read,
            Backfill {
                listed: 120,
                captured: 110,
                provider_total: Some(800),
                done: false,
                updated_ms: 42
            }
        );
        assert_eq!(read.left(), Some(680));
        let unknown =
            cursor(serde_json::json!({ "counts": [tally(Some(5), 1, 1), tally(None, 1, 1)] }));
        assert_eq!(Backfill::of_link(&[unknown]).unwrap().provider_total, None);
        assert!(Backfill::of_link(&[cursor(serde_json::json!("not an object"))]).is_none());
        assert!(Backfill::of_link(&[]).is_none());
    }

    #[test]
    fn the_time_left_is_the_messages_units_at_the_per_user_budget() {
        // 680 messages × 5 units at 15,000 units a minute: 13.6 s, rounded up.
        let rates = rates(15_000, 1_200_000);
        let running = backfill(120, Some(800), false);
        assert_eq!(rates.seconds_left(GOOGLE, &running), Some(14));
        // A scaled quota minute shortens it.
        let fast = QuotaRates {
            minute: Duration::from_secs(6),
            ..rates
        };
        assert_eq!(fast.seconds_left(GOOGLE, &running), Some(2));
        assert_eq!(
            rates.seconds_left(GOOGLE, &backfill(800, Some(800), true)),
            None
        );
        assert_eq!(rates.seconds_left(GOOGLE, &backfill(1, None, false)), None);
        assert_eq!(
            rates.seconds_left(ConnectionKind::Microsoft, &running),
            None
        );
        let zero = QuotaRates {
            user_units_per_minute: 0,
            ..rates
        };
        assert_eq!(zero.seconds_left(GOOGLE, &running), None);
    }

    fn tenant(rates: QuotaRates, backfills: &[(i64, Backfill)]) -> TenantProgress {
        TenantProgress {
            backfills: backfills.iter().map(|(id, b)| (LinkId(*id), *b)).collect(),
            running: HashMap::new(),
            rates,
        }
    }

    #[test]
    fn the_organization_counts_mailboxes_by_state_and_sums_messages() {
        let links = [
            link(1, LinkStatus::Idle, GOOGLE),
            link(2, LinkStatus::Syncing, GOOGLE),
            link(3, LinkStatus::Pending, GOOGLE),
            link(4, LinkStatus::LinkageError, GOOGLE),
            link(5, LinkStatus::Unlinked, GOOGLE),
            // A failure after a finished backfill leaves it finished.
            link(6, LinkStatus::Unauthorized, GOOGLE),
        ];
        let progress = tenant(
            rates(15_000, 1_200_000),
            &[
                (1, backfill(1_000, Some(4_000), true)),
                (2, backfill(100, Some(700), false)),
                (4, backfill(50, Some(60), false)),
                (5, backfill(9, Some(9), false)),
                (6, backfill(10, Some(10), true)),
            ],
        );
        let org = progress.organization(&links);
        assert_eq!(
            (
                org.mailboxes,
                org.backfilled,
                org.backfilling,
                org.not_started,
                org.error
            ),
            (5, 2, 1, 1, 1)
        );
        assert_eq!(org.unfinished(), 3);
        assert_eq!((org.listed, org.captured), (1_160, 1_160));
        assert_eq!(org.provider_total, Some(4_770));
        // Done backfills count what they listed, unfinished ones the provider's count.
        assert_eq!(org.expected_total, Some(1_000 + 700 + 60 + 10));
        // Only the backfilling mailbox: 600 × 5 units at 15,000 a minute = 12 s.
        assert_eq!(org.estimated_seconds_left, Some(12));
        assert_eq!(org.estimated_mailboxes, 1);
    }

    #[test]
    fn the_organization_estimate_is_bounded_by_the_project_budget_too() {
        // 100 mailboxes with 1,000 messages left each: 5,000 units, 20 s each at the
        // per-user budget; 500,000 units together at 1,000,000 a minute: 30 s.
        let links: Vec<LinkView> = (1..=100)
            .map(|id| link(id, LinkStatus::Syncing, GOOGLE))
            .collect();
        let backfills: Vec<(i64, Backfill)> = (1..=100)
            .map(|id| (id, backfill(0, Some(1_000), false)))
            .collect();
        let org = tenant(rates(15_000, 1_000_000), &backfills).organization(&links);
        assert_eq!(org.estimated_seconds_left, Some(30));
        assert_eq!(org.estimated_mailboxes, 100);
        // A budget the project term does not reach: the slowest mailbox sets it.
        let org = tenant(rates(15_000, 100_000_000), &backfills).organization(&links);
        assert_eq!(org.estimated_seconds_left, Some(20));
        // Nothing to estimate: unknown totals, other providers, nothing running.
        let unknown = tenant(rates(15_000, 1), &[(1, backfill(0, None, false))]);
        let org = unknown.organization(&links[..1]);
        assert_eq!(
            (org.estimated_seconds_left, org.expected_total),
            (None, None)
        );
        let microsoft = [link(1, LinkStatus::Syncing, ConnectionKind::Microsoft)];
        let org =
            tenant(rates(15_000, 1), &[(1, backfill(0, Some(9), false))]).organization(&microsoft);
        assert_eq!((org.backfilling, org.estimated_seconds_left), (1, None));
    }
}
