//! Google Calendar behind the calendar contract: `events.list` on the member's primary
//! calendar, a page per call. A continuation carries the query with Google's page
//! token, since a later page must repeat the first page's window or sync token; the
//! cursor of a completed listing is Google's `nextSyncToken` as given.

use super::GmailSource;
use crate::calendar::{CalendarEvent, CalendarNext, CalendarPage, CalendarRequest, CalendarSource};
use crate::error::SyncError;
use crate::link::LinkContext;
use serde::{Deserialize, Serialize};
use tributary_core::{ProviderDetail, ProviderError};
use tributary_google::calendar::MAX_EVENTS_PAGE;
use tributary_google::{EventsPage, EventsQuery};

/// The calendar's cursor stream.
pub const CALENDAR_STREAM: &str = "google.calendar";

/// What one `events.list` costs in the pacer's units (Google charges a calendar call
/// one unit against the user's and the project's budgets).
const EVENTS_LIST_UNITS: u32 = 1;

/// A listing's next page: the query every page repeats, and Google's page token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Continuation {
    query: StoredQuery,
    page_token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StoredQuery {
    Window { time_min_ms: i64, time_max_ms: i64 },
    Changes { sync_token: String },
}

impl From<&StoredQuery> for EventsQuery {
    fn from(query: &StoredQuery) -> Self {
        match query {
            StoredQuery::Window {
                time_min_ms,
                time_max_ms,
            } => EventsQuery::Window {
                time_min_ms: *time_min_ms,
                time_max_ms: *time_max_ms,
            },
            StoredQuery::Changes { sync_token } => EventsQuery::Changes {
                sync_token: sync_token.clone(),
            },
        }
    }
}

impl CalendarSource for GmailSource {
    fn calendar_stream(&self) -> &'static str {
        CALENDAR_STREAM
    }

    async fn calendar_page(
        &self,
        link: &LinkContext,
        request: &CalendarRequest,
    ) -> Result<CalendarPage, SyncError> {
        let (query, page_token) = match request {
            CalendarRequest::Full { start_ms, end_ms } => (
                StoredQuery::Window {
                    time_min_ms: *start_ms,
                    time_max_ms: *end_ms,
                },
                None,
            ),
            CalendarRequest::Changes { cursor } => (
                StoredQuery::Changes {
                    sync_token: cursor.clone(),
                },
                None,
            ),
            CalendarRequest::Continue { continuation } => {
                let next = read_continuation(continuation)?;
                (next.query, Some(next.page_token))
            }
        };
        let calendar = self.connector().calendar(&link.mailbox);
        let events_query = EventsQuery::from(&query);
        let max_results = link.page_size.min(MAX_EVENTS_PAGE);
        let page = link
            .pacer
            .call(&link.mailbox, EVENTS_LIST_UNITS, || {
                calendar.events_page(&events_query, page_token.as_deref(), max_results)
            })
            .await?;
        contract_page(page, query)
    }
}

/// A continuation this source wrote; anything else is a cursor that cannot be followed.
fn read_continuation(text: &str) -> Result<Continuation, SyncError> {
    serde_json::from_str(text).map_err(|_| {
        ProviderError::cursor_gone(ProviderDetail::new(
            "the stored calendar page position is unreadable; listing again",
        ))
        .into()
    })
}

fn contract_page(page: EventsPage, query: StoredQuery) -> Result<CalendarPage, SyncError> {
    let next = match (page.next_page_token, page.next_sync_token) {
        (Some(page_token), _) => {
            let continuation = Continuation { query, page_token };
            // Serializing plain strings and numbers cannot fail.
            CalendarNext::More(serde_json::to_string(&continuation).unwrap_or_default())
        }
        (None, Some(sync_token)) => CalendarNext::Done(sync_token),
        (None, None) => {
            return Err(ProviderError::other(ProviderDetail::new(
                "Google's last page of events carried no nextSyncToken",
            ))
            .into());
        }
    };
    Ok(CalendarPage {
        events: page
            .occurrences
            .into_iter()
            .map(|o| CalendarEvent {
                provider_event_id: o.event_id,
                occurrence: o.occurrence,
            })
            .collect(),
        removed: page.cancelled,
        skipped: page.unreadable,
        next,
    })
}
