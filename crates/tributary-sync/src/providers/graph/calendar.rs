//! Microsoft 365 calendars behind the calendar contract: Graph `calendarView/delta` on
//! the member's primary calendar, a page per call (docs/microsoft-connector.md,
//! "Calendar"). Graph's links carry the window and the round, so a continuation is the
//! `@odata.nextLink` and the cursor of a completed listing the `@odata.deltaLink`, both
//! as given; the connector follows them only under the configured Graph root.

use super::{GRAPH_REQUEST_UNITS, GraphSource};
use crate::calendar::{CalendarEvent, CalendarNext, CalendarPage, CalendarRequest, CalendarSource};
use crate::error::SyncError;
use crate::link::LinkContext;
use chrono::{DateTime, Utc};
use tributary_core::{EmailAddress, ProviderDetail, ProviderError};
use tributary_microsoft::calendar::{MAX_CALENDAR_PAGE, MAX_WINDOW_DAYS};
use tributary_microsoft::{CalendarWindow, DeltaLink};

/// The calendar's cursor stream.
pub const CALENDAR_STREAM: &str = "graph.calendar";

const DAY_MS: i64 = 86_400_000;

impl CalendarSource for GraphSource {
    fn calendar_stream(&self) -> &'static str {
        CALENDAR_STREAM
    }

    async fn calendar_page(
        &self,
        link: &LinkContext,
        request: &CalendarRequest,
    ) -> Result<CalendarPage, SyncError> {
        let calendar = self
            .connector()
            .calendar(&link.mailbox, owner(&link.mailbox)?);
        let page_size = Some(link.page_size.clamp(1, MAX_CALENDAR_PAGE));
        let page = match request {
            CalendarRequest::Full { start_ms, end_ms } => {
                let window = window(*start_ms, *end_ms)?;
                paced(link, || calendar.delta_start(&window, page_size)).await?
            }
            CalendarRequest::Continue {
                continuation: link_text,
            }
            | CalendarRequest::Changes { cursor: link_text } => {
                paced(link, || calendar.delta_follow(link_text, page_size)).await?
            }
        };
        Ok(contract_page(page))
    }
}

/// One Graph request for this calendar, paced and retried like the mailbox's own (the
/// calendar shares the mailbox's Outlook budget).
async fn paced<T, F, Fut>(link: &LinkContext, call: F) -> Result<T, SyncError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    Ok(link
        .pacer
        .call(&link.mailbox, GRAPH_REQUEST_UNITS, call)
        .await?)
}

/// The link's mailbox as the occurrences' owner.
fn owner(mailbox: &str) -> Result<EmailAddress, SyncError> {
    EmailAddress::parse(mailbox).map_err(|e| {
        ProviderError::other(ProviderDetail::new(format!(
            "the mailbox address cannot own a calendar: {e}"
        )))
        .into()
    })
}

/// The engine's window as Graph takes it. Graph's calendar view is bounded (five years
/// here, as the emulator): a longer meeting backfill keeps its most recent part, the end
/// (the horizon) always included.
fn window(start_ms: i64, end_ms: i64) -> Result<CalendarWindow, SyncError> {
    let start_ms = start_ms.max(end_ms.saturating_sub(MAX_WINDOW_DAYS * DAY_MS));
    let instant = |ms| DateTime::<Utc>::from_timestamp_millis(ms);
    let refused = |problem: String| ProviderError::other(ProviderDetail::new(problem)).into();
    let (Some(start), Some(end)) = (instant(start_ms), instant(end_ms)) else {
        return Err(refused("the calendar window is out of range".into()));
    };
    CalendarWindow::new(start, end).map_err(|e| refused(e.to_string()))
}

fn contract_page(page: tributary_microsoft::CalendarPage) -> CalendarPage {
    CalendarPage {
        events: page
            .events
            .into_iter()
            .map(|event| CalendarEvent {
                provider_event_id: event.id,
                occurrence: event.occurrence,
            })
            .collect(),
        removed: page.removed,
        skipped: page
            .skipped
            .into_iter()
            .map(|s| format!("{}: {}", s.id, s.problem))
            .collect(),
        next: match page.link {
            DeltaLink::Next(next) => CalendarNext::More(next),
            DeltaLink::Delta(delta) => CalendarNext::Done(delta),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_longer_than_graph_s_keeps_its_recent_end() {
        let end = 1_800_000_000_000;
        let long = window(end - 3_650 * DAY_MS, end).unwrap();
        assert_eq!(long.end().timestamp_millis(), end);
        assert_eq!(
            long.start().timestamp_millis(),
            end - MAX_WINDOW_DAYS * DAY_MS
        );
        let short = window(end - 210 * DAY_MS, end).unwrap();
        assert_eq!(short.start().timestamp_millis(), end - 210 * DAY_MS);
        let empty = window(end, end).unwrap_err();
        assert!(
            empty.to_string().contains("must end after it starts"),
            "{empty}"
        );
    }

    #[test]
    fn links_map_to_the_contract_s_continuation_and_cursor() {
        let page = |link| tributary_microsoft::CalendarPage {
            events: Vec::new(),
            removed: vec!["AAMkA".into()],
            skipped: vec![tributary_microsoft::SkippedEvent {
                id: "AAMkB".into(),
                problem: "an event of an unexpected shape",
            }],
            link,
        };
        let more = contract_page(page(DeltaLink::Next("https://g/next".into())));
        assert_eq!(more.next, CalendarNext::More("https://g/next".into()));
        assert_eq!(more.removed, ["AAMkA"]);
        assert_eq!(more.skipped, ["AAMkB: an event of an unexpected shape"]);
        let done = contract_page(page(DeltaLink::Delta("https://g/delta".into())));
        assert_eq!(done.next, CalendarNext::Done("https://g/delta".into()));
    }
}
