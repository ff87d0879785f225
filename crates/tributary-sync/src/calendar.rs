//! A link's calendar stream, written once for every provider (docs/sync.md, "Meetings").
//!
//! A provider answers one page at a time ([`CalendarSource`]); this module drives the
//! listing: a full listing over the policy's window, then the changes since its
//! cursor; a gone cursor lists again (the store dedupes meetings by key, so nothing is
//! captured twice); the window is opened again once a day so the horizon moves with
//! time. Every page is judged by core's `Extractor::meeting` and committed with the
//! cursor that describes where the stream is after it, so a crash resumes from the last
//! committed page. Each run ends by capturing the upcoming meetings that have ended
//! (`Store::promote_ended_meetings`): a provider reports no change when time passes.

use crate::connector::Connector;
use crate::error::SyncError;
use crate::link::LinkContext;
use crate::source::SyncMode;
use serde::{Deserialize, Serialize};
use std::future::Future;
use tributary_core::{MeetingPolicy, Occurrence, ProviderError};
use tributary_store::{CalendarSighting, CalendarSummary};

/// How long a listing's window serves before it is opened again at the run's "now". A
/// meeting entering the horizon without changing is not in any provider's changes, and
/// Graph's delta only follows the window it started with: a window at most a day old
/// keeps upcoming meetings at most a day late at the far end of the horizon.
pub const WINDOW_RESTART_MS: i64 = 86_400_000;

/// Most pages one run reads: a provider that never ends its listing must not keep a
/// link's job forever (the next run resumes from the committed page).
pub const MAX_CALENDAR_PAGES_PER_RUN: u32 = 10_000;

/// One link's calendar, whatever the provider: one page per call; the listing, the
/// cursor and the window are this module's.
pub trait CalendarSource {
    /// The cursor stream: `<provider>.calendar` (`google.calendar`, `graph.calendar`).
    fn calendar_stream(&self) -> &'static str;

    /// One page of `link.mailbox`'s primary calendar, series expanded into occurrences
    /// whose `calendar_owner` is the mailbox. An expired continuation or cursor is
    /// [`ProviderError::CursorGone`]; a calendar permission the connection lacks is a
    /// `ProviderError` whose link status is `unauthorized`, with the provider's words and
    /// the fix. Calls are paced through `link.pacer`.
    fn calendar_page(
        &self,
        link: &LinkContext,
        request: &CalendarRequest,
    ) -> impl Future<Output = Result<CalendarPage, SyncError>> + Send;
}

/// What page to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalendarRequest {
    /// The first page of a full listing of occurrences in `[start_ms, end_ms)` (Unix ms).
    Full { start_ms: i64, end_ms: i64 },
    /// The page after one that answered [`CalendarNext::More`] with `continuation`.
    Continue { continuation: String },
    /// The first page of the changes since a listing's [`CalendarNext::Done`] cursor.
    Changes { cursor: String },
}

/// One occurrence with the provider's id of this calendar's copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarEvent {
    pub provider_event_id: String,
    pub occurrence: Occurrence,
}

/// Where a listing goes after a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalendarNext {
    /// More pages: ask for [`CalendarRequest::Continue`] with this.
    More(String),
    /// The listing is complete: the cursor for [`CalendarRequest::Changes`].
    Done(String),
}

/// One page of a calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarPage {
    pub events: Vec<CalendarEvent>,
    /// Events reported deleted or cancelled by id alone (Graph `@removed`, Google's
    /// cancelled stubs).
    pub removed: Vec<String>,
    /// Events that cannot be read as an occurrence, as "id: why".
    pub skipped: Vec<String>,
    pub next: CalendarNext,
}

/// What one calendar run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarRun {
    pub mode: SyncMode,
    /// Pages read.
    pub pages: u64,
    /// What the committed pages changed.
    pub committed: CalendarSummary,
    /// Upcoming meetings removed because the provider deleted or cancelled them.
    pub removed: u64,
    /// Upcoming meetings captured because they ended.
    pub promoted: u64,
    /// Events the provider gave that could not be judged, as "id: why": not healthy.
    pub gaps: Vec<String>,
}

/// The window a listing covers and why it is being read, stored (as JSON) as the link's
/// calendar cursor around the provider's opaque strings. The field names are stored:
/// keep them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StreamState {
    stream: String,
    window_start_ms: i64,
    window_end_ms: i64,
    /// The instant ("now") the window was opened at.
    opened_ms: i64,
    position: Position,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Position {
    /// In the middle of a listing (full or changes).
    Listing {
        continuation: String,
        mode: SyncMode,
    },
    /// A completed listing: changes are read from here.
    Synced { cursor: String },
}

/// The window of a listing opened at `now_ms`: the policy's backfill and horizon.
fn window_at(policy: &MeetingPolicy, now_ms: i64) -> (i64, i64) {
    (
        policy.window_start_ms(now_ms),
        policy.horizon_end_ms(now_ms),
    )
}

impl StreamState {
    fn opened(stream: &str, policy: &MeetingPolicy, now_ms: i64, position: Position) -> Self {
        let (window_start_ms, window_end_ms) = window_at(policy, now_ms);
        StreamState {
            stream: stream.to_owned(),
            window_start_ms,
            window_end_ms,
            opened_ms: now_ms,
            position,
        }
    }

    /// Whether the window must be opened again: a day old, from another "now" in the
    /// past (a clock moved back), or no longer the policy's.
    fn is_stale(&self, policy: &MeetingPolicy, now_ms: i64) -> bool {
        let age = now_ms.saturating_sub(self.opened_ms);
        !(0..WINDOW_RESTART_MS).contains(&age)
            || window_at(policy, self.opened_ms) != (self.window_start_ms, self.window_end_ms)
    }
}

/// Runs `link`'s calendar stream through `connector` (see the module's comment).
pub(crate) async fn sync_calendar(
    connector: &Connector,
    stream: &'static str,
    link: &LinkContext,
) -> Result<CalendarRun, SyncError> {
    let stored = link.store.calendar_state(&link.tenant, link.link).await?;
    let state = stored
        .cursor
        .as_deref()
        .and_then(|value| readable_state(stream, value, link));
    let policy = &link.policy.meetings;
    let mut run = CalendarRun {
        mode: SyncMode::Full,
        pages: 0,
        committed: CalendarSummary::default(),
        removed: 0,
        promoted: 0,
        gaps: Vec::new(),
    };
    let (mut state, request) = match state {
        Some(state) if !state.is_stale(policy, link.now_ms) => resume(state),
        // A first run, an unreadable or stale cursor: list the window from its start.
        _ => open_listing(stream, policy, link.now_ms, SyncMode::Full),
    };
    run.mode = mode_of(&state);
    let outcome = read_pages(connector, link, &mut state, request, &mut run).await;
    match outcome {
        Err(SyncError::Provider(ProviderError::CursorGone(detail))) => {
            tracing::info!(mailbox = ?link.mailbox, ?detail, "calendar cursor gone; listing again");
            link.store
                .clear_calendar_cursor(&link.tenant, link.link)
                .await?;
            let (mut state, request) = open_listing(stream, policy, link.now_ms, SyncMode::Resync);
            run.mode = SyncMode::Resync;
            read_pages(connector, link, &mut state, request, &mut run).await?;
        }
        other => other?,
    }
    run.promoted = link
        .store
        .promote_ended_meetings(&link.tenant, link.now_ms)
        .await?;
    Ok(run)
}

/// The stored state, if it is this stream's and readable. Another provider's (a link
/// moved between providers) or an unreadable one is dropped: listing again is safe.
fn readable_state(stream: &str, value: &str, link: &LinkContext) -> Option<StreamState> {
    match serde_json::from_str::<StreamState>(value) {
        Ok(state) if state.stream == stream => Some(state),
        Ok(state) => {
            tracing::info!(mailbox = ?link.mailbox, other = ?state.stream, "calendar cursor of another provider; listing again");
            None
        }
        Err(error) => {
            tracing::warn!(mailbox = ?link.mailbox, error = ?error.to_string(), "unreadable calendar cursor; listing again");
            None
        }
    }
}

fn open_listing(
    stream: &str,
    policy: &MeetingPolicy,
    now_ms: i64,
    mode: SyncMode,
) -> (StreamState, CalendarRequest) {
    let (start_ms, end_ms) = window_at(policy, now_ms);
    let state = StreamState::opened(
        stream,
        policy,
        now_ms,
        Position::Listing {
            continuation: String::new(),
            mode,
        },
    );
    (state, CalendarRequest::Full { start_ms, end_ms })
}

/// Where a stored state goes on: the page after the last committed one, or the changes.
fn resume(state: StreamState) -> (StreamState, CalendarRequest) {
    let request = match &state.position {
        Position::Listing { continuation, .. } if continuation.is_empty() => {
            CalendarRequest::Full {
                start_ms: state.window_start_ms,
                end_ms: state.window_end_ms,
            }
        }
        Position::Listing { continuation, .. } => CalendarRequest::Continue {
            continuation: continuation.clone(),
        },
        Position::Synced { cursor } => CalendarRequest::Changes {
            cursor: cursor.clone(),
        },
    };
    (state, request)
}

fn mode_of(state: &StreamState) -> SyncMode {
    match &state.position {
        Position::Listing { mode, .. } => *mode,
        Position::Synced { .. } => SyncMode::Incremental,
    }
}

/// Reads and commits pages from `request` until the listing is done.
async fn read_pages(
    connector: &Connector,
    link: &LinkContext,
    state: &mut StreamState,
    mut request: CalendarRequest,
    run: &mut CalendarRun,
) -> Result<(), SyncError> {
    let mode = mode_of(state);
    if matches!(request, CalendarRequest::Full { .. }) {
        // A full listing states the whole calendar: what it no longer holds must not
        // stay upcoming (deleted while no cursor followed it).
        link.store
            .clear_upcoming_meetings(&link.tenant, link.link)
            .await?;
    }
    for _ in 0..MAX_CALENDAR_PAGES_PER_RUN {
        let page = connector.calendar_page(link, &request).await?;
        run.pages += 1;
        let done = matches!(page.next, CalendarNext::Done(_));
        state.position = match page.next.clone() {
            CalendarNext::More(continuation) => Position::Listing { continuation, mode },
            CalendarNext::Done(cursor) => Position::Synced { cursor },
        };
        commit_page(link, state, page, run).await?;
        if done {
            return Ok(());
        }
        if let Position::Listing { continuation, .. } = &state.position {
            request = CalendarRequest::Continue {
                continuation: continuation.clone(),
            };
        }
    }
    tracing::warn!(mailbox = ?link.mailbox, "calendar listing not done after the run's page limit");
    Ok(())
}

/// Judges a page and commits it with the state after it. Deletions go first: applied
/// twice after a crash they remove nothing more.
async fn commit_page(
    link: &LinkContext,
    state: &StreamState,
    page: CalendarPage,
    run: &mut CalendarRun,
) -> Result<(), SyncError> {
    for event_id in &page.removed {
        let removed = link
            .store
            .remove_upcoming_meeting(&link.tenant, link.link, event_id)
            .await?;
        run.removed += u64::from(removed);
    }
    let mut sightings = Vec::with_capacity(page.events.len());
    for event in page.events {
        match link.extractor.meeting(&event.occurrence, link.now_ms) {
            Ok(meeting) => sightings.push(CalendarSighting {
                meeting,
                provider_event_id: event.provider_event_id,
            }),
            Err(why) => run.gaps.push(format!("{}: {why}", event.provider_event_id)),
        }
    }
    run.gaps.extend(page.skipped);
    // Serializing plain numbers and strings cannot fail.
    let cursor = serde_json::to_string(state).unwrap_or_default();
    let committed = link
        .store
        .commit_calendar_page(&link.tenant, link.link, &sightings, Some(&cursor))
        .await?;
    run.committed.captured += committed.captured;
    run.committed.already_known += committed.already_known;
    run.committed.upcoming += committed.upcoming;
    run.committed.excluded += committed.excluded;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn synced(opened_ms: i64, policy: &MeetingPolicy) -> StreamState {
        StreamState::opened(
            "google.calendar",
            policy,
            opened_ms,
            Position::Synced { cursor: "t".into() },
        )
    }

    #[test]
    fn a_window_serves_a_day_then_opens_again() {
        let policy = MeetingPolicy::default();
        let state = synced(100 * DAY, &policy);
        assert!(!state.is_stale(&policy, 100 * DAY));
        assert!(!state.is_stale(&policy, 101 * DAY - 1));
        assert!(state.is_stale(&policy, 101 * DAY));
        assert!(state.is_stale(&policy, 100 * DAY - 1), "a clock moved back");
    }

    #[test]
    fn a_changed_policy_window_opens_the_window_again() {
        let policy = MeetingPolicy::default();
        let state = synced(100 * DAY, &policy);
        let wider = MeetingPolicy {
            horizon_days: policy.horizon_days + 1,
            ..policy
        };
        assert!(state.is_stale(&wider, 100 * DAY));
    }

    #[test]
    fn a_stored_state_resumes_where_it_was() {
        let policy = MeetingPolicy::default();
        let (state, request) = resume(synced(DAY, &policy));
        assert_eq!(request, CalendarRequest::Changes { cursor: "t".into() });
        assert_eq!(mode_of(&state), SyncMode::Incremental);
        let listing = StreamState {
            position: Position::Listing {
                continuation: "p2".into(),
                mode: SyncMode::Resync,
            },
            ..state
        };
        let json = serde_json::to_string(&listing).unwrap();
        let back: StreamState = serde_json::from_str(&json).unwrap();
        let (back, request) = resume(back);
        assert_eq!(
            request,
            CalendarRequest::Continue {
                continuation: "p2".into()
            }
        );
        assert_eq!(mode_of(&back), SyncMode::Resync);
    }
}
