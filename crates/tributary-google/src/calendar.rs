//! The Calendar API v3, read-only, for one impersonated user's primary calendar:
//! `events.list` with `singleEvents=true` (a series expanded into its occurrences), a
//! full listing over a time window in pages ending with a `nextSyncToken`, then the
//! changes since that token. Events become core [`Occurrence`]s; cancelled items (which
//! Google may send as stubs carrying only their id) are reported by id.
//!
//! The calendar has its own scope: a key whose Domain-Wide Delegation entry lacks it
//! still reads mail, and the calendar alone fails `unauthorized` with the fix.

use crate::api::{Api, decode_answer, join, required};
use crate::error::ApiCall;
use crate::scopes;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::Deserialize;
use std::sync::Arc;
use tributary_core::{
    Attendee, EmailAddress, EventType, Occurrence, ProviderDetail, ProviderError, Response,
};

const CALENDAR_SCOPES: &[&str] = &[scopes::CALENDAR_READONLY];

/// Google's maximum for `maxResults` on `events.list`.
pub const MAX_EVENTS_PAGE: u32 = 2_500;

/// The Calendar API of one user, as that user (domain-wide delegation).
#[derive(Debug, Clone)]
pub struct CalendarClient {
    api: Arc<Api>,
    user: String,
}

/// Which events `events.list` should return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventsQuery {
    /// Occurrences ending after `time_min_ms` and starting before `time_max_ms` (Unix ms).
    Window { time_min_ms: i64, time_max_ms: i64 },
    /// What changed since a listing's `nextSyncToken`, cancelled items included.
    Changes { sync_token: String },
}

/// One page of `events.list`, mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsPage {
    pub occurrences: Vec<CalendarOccurrence>,
    /// Ids of cancelled items (an occurrence, a whole event): Google may give nothing
    /// else about them.
    pub cancelled: Vec<String>,
    /// Events that cannot be read as an occurrence, as "id: why".
    pub unreadable: Vec<String>,
    /// Present on every page but the last.
    pub next_page_token: Option<String>,
    /// Present on the last page only.
    pub next_sync_token: Option<String>,
}

/// One occurrence with Google's id for this calendar's copy of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarOccurrence {
    pub event_id: String,
    pub occurrence: Occurrence,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventsAnswer {
    #[serde(default)]
    items: Vec<EventItem>,
    next_page_token: Option<String>,
    next_sync_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventItem {
    id: String,
    status: Option<String>,
    summary: Option<String>,
    #[serde(rename = "iCalUID")]
    ical_uid: Option<String>,
    start: Option<EventTime>,
    end: Option<EventTime>,
    original_start_time: Option<EventTime>,
    event_type: Option<String>,
    visibility: Option<String>,
    organizer: Option<Person>,
    #[serde(default)]
    attendees: Vec<Person>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventTime {
    date_time: Option<String>,
    date: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Person {
    email: Option<String>,
    display_name: Option<String>,
    response_status: Option<String>,
    #[serde(default)]
    resource: bool,
}

/// A web-hook channel on a calendar's events, as `events.watch` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CalendarChannel {
    pub id: String,
    /// Google's id of the watched resource; `channels.stop` needs it with the id.
    pub resource_id: String,
    /// When the channel lapses, Unix milliseconds (channels do not renew: open another).
    #[serde(rename = "expiration", deserialize_with = "epoch_ms")]
    pub expiration_ms: i64,
}

impl CalendarChannel {
    /// The channel as Tributary stores it (see [`channel_key`]).
    pub fn key(&self) -> String {
        channel_key(&self.id, &self.resource_id)
    }
}

/// A channel named by its id and Google's resource id, `"{id} {resource id}"`: stopping
/// it needs both, and every notification carries both (`X-Goog-Channel-ID`,
/// `X-Goog-Resource-ID`). A channel id never holds a space.
pub fn channel_key(channel_id: &str, resource_id: &str) -> String {
    format!("{channel_id} {resource_id}")
}

/// The (channel id, resource id) of a [`channel_key`].
pub fn split_channel_key(key: &str) -> Option<(&str, &str)> {
    key.split_once(' ')
        .filter(|(id, resource)| !id.is_empty() && !resource.is_empty())
}

/// Google writes the expiration as a string of epoch milliseconds; accept a number too.
fn epoch_ms<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Ms {
        Text(String),
        Number(i64),
    }
    match Ms::deserialize(deserializer)? {
        Ms::Number(n) => Ok(n),
        Ms::Text(text) => text.trim().parse().map_err(serde::de::Error::custom),
    }
}

impl CalendarClient {
    pub(crate) fn new(api: Arc<Api>, user: &str) -> Self {
        CalendarClient {
            api,
            user: user.to_string(),
        }
    }

    /// The impersonated user, whose primary calendar this reads.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// One page of `events.list` on the user's primary calendar. An expired sync token
    /// (410 `fullSyncRequired`) is [`ProviderError::CursorGone`]; a calendar scope that
    /// is not delegated is `unauthorized` with Google's message and the fix.
    pub async fn events_page(
        &self,
        query: &EventsQuery,
        page_token: Option<&str>,
        max_results: u32,
    ) -> Result<EventsPage, ProviderError> {
        let url = self.events_url(query, page_token, max_results);
        let answer = self
            .api
            .get_json::<EventsAnswer>(&self.user, CALENDAR_SCOPES, url, ApiCall::Other, "events")
            .await
            .map_err(calendar_error)?;
        let answer = required(answer, "events")?;
        Ok(self.map_page(answer))
    }

    /// `events.watch` on the user's primary calendar: Google calls `address` (a
    /// `web_hook`) with `X-Goog-Channel-ID: channel_id` and `X-Goog-Channel-Token:
    /// token` after each change to its events, until the answer's expiration.
    pub async fn watch_events(
        &self,
        channel_id: &str,
        address: &str,
        token: &str,
    ) -> Result<CalendarChannel, ProviderError> {
        let url = join(
            &self.api.endpoints.calendar_base,
            &["calendars", "primary", "events", "watch"],
        );
        let body = serde_json::json!({
            "id": channel_id, "type": "web_hook", "address": address, "token": token,
        });
        let answer = self
            .api
            .send(&self.user, CALENDAR_SCOPES, |http| {
                http.post(url.clone()).json(&body)
            })
            .await
            .map_err(calendar_error)?;
        let channel = decode_answer(
            answer.status,
            &answer.headers,
            &answer.body,
            ApiCall::Other,
            "events.watch",
        )
        .map_err(calendar_error)?;
        required(channel, "events.watch")
    }

    /// `channels.stop`: no more notifications on the channel. One Google no longer has
    /// (404: stopped or lapsed already) is stopped.
    pub async fn stop_channel(
        &self,
        channel_id: &str,
        resource_id: &str,
    ) -> Result<(), ProviderError> {
        let url = join(&self.api.endpoints.calendar_base, &["channels", "stop"]);
        let body = serde_json::json!({ "id": channel_id, "resourceId": resource_id });
        let answer = self
            .api
            .send(&self.user, CALENDAR_SCOPES, |http| {
                http.post(url.clone()).json(&body)
            })
            .await
            .map_err(calendar_error)?;
        if answer.status.is_success() {
            return Ok(());
        }
        decode_answer::<serde_json::Value>(
            answer.status,
            &answer.headers,
            &answer.body,
            ApiCall::EntityGet,
            "channels.stop",
        )
        .map(drop)
        .map_err(calendar_error)
    }

    fn events_url(
        &self,
        query: &EventsQuery,
        page_token: Option<&str>,
        max_results: u32,
    ) -> reqwest::Url {
        let mut url = join(
            &self.api.endpoints.calendar_base,
            &["calendars", "primary", "events"],
        );
        {
            let mut pairs = url.query_pairs_mut();
            pairs.append_pair("singleEvents", "true");
            pairs.append_pair(
                "maxResults",
                &max_results.clamp(1, MAX_EVENTS_PAGE).to_string(),
            );
            match query {
                EventsQuery::Window {
                    time_min_ms,
                    time_max_ms,
                } => {
                    pairs.append_pair("timeMin", &rfc3339(*time_min_ms));
                    pairs.append_pair("timeMax", &rfc3339(*time_max_ms));
                }
                EventsQuery::Changes { sync_token } => {
                    pairs.append_pair("syncToken", sync_token);
                }
            }
            if let Some(token) = page_token {
                pairs.append_pair("pageToken", token);
            }
        }
        url
    }

    fn map_page(&self, answer: EventsAnswer) -> EventsPage {
        let mut page = EventsPage {
            occurrences: Vec::new(),
            cancelled: Vec::new(),
            unreadable: Vec::new(),
            next_page_token: answer.next_page_token,
            next_sync_token: answer.next_sync_token,
        };
        for item in answer.items {
            if item.status.as_deref() == Some("cancelled") {
                page.cancelled.push(item.id);
                continue;
            }
            match occurrence(&item, &self.user) {
                Ok(occurrence) => page.occurrences.push(CalendarOccurrence {
                    event_id: item.id,
                    occurrence,
                }),
                Err(why) => page.unreadable.push(format!("{}: {why}", item.id)),
            }
        }
        page
    }
}

/// A calendar failure with the fix an administrator needs when the calendar alone is
/// refused: the scope missing from the delegation (`unauthorized_client` at the token
/// endpoint, `insufficientPermissions` / `forbidden` from the API), or the API off in
/// the Cloud project. A 410 is the sync token gone.
fn calendar_error(error: ProviderError) -> ProviderError {
    if error.status() == Some(410) {
        return ProviderError::cursor_gone(error.detail().clone());
    }
    let ProviderError::Unauthorized(detail) = &error else {
        return error;
    };
    let fix = if detail.reason.as_deref() == Some("accessNotConfigured") {
        "enable the Google Calendar API in the service account's Cloud project".to_owned()
    } else {
        format!(
            "add the calendar scope {} to the Domain-Wide Delegation entry of the service \
             account's client ID (Admin console › Security › API controls)",
            scopes::CALENDAR_READONLY
        )
    };
    ProviderError::unauthorized(ProviderDetail {
        message: format!("{} — to capture meetings, {fix}", detail.message),
        ..detail.clone()
    })
}

/// The core occurrence of a (not cancelled) event read from `owner`'s calendar.
fn occurrence(item: &EventItem, owner: &str) -> Result<Occurrence, String> {
    let ical_uid = item
        .ical_uid
        .clone()
        .ok_or_else(|| "no iCalUID".to_owned())?;
    let start = item.start.as_ref().ok_or_else(|| "no start".to_owned())?;
    let end = item.end.as_ref().ok_or_else(|| "no end".to_owned())?;
    let (start_ms, all_day) = instant(start)?;
    let (end_ms, _) = instant(end)?;
    let original_start_ms = item
        .original_start_time
        .as_ref()
        .map(|t| instant(t).map(|(ms, _)| ms))
        .transpose()?;
    let calendar_owner =
        EmailAddress::parse(owner).map_err(|e| format!("calendar owner {owner:?}: {e}"))?;
    Ok(Occurrence {
        ical_uid,
        original_start_ms,
        start_ms,
        end_ms,
        all_day,
        cancelled: false,
        event_type: event_type(item.event_type.as_deref()),
        shows_as_out_of_office: false,
        organizer: item.organizer.as_ref().and_then(attendee),
        attendees: item.attendees.iter().filter_map(attendee).collect(),
        private: matches!(item.visibility.as_deref(), Some("private" | "confidential")),
        title: item.summary.clone(),
        calendar_owner,
    })
}

/// Unix ms of a `dateTime` (with its offset) or of a `date` (midnight UTC), and whether
/// it was a date.
fn instant(time: &EventTime) -> Result<(i64, bool), String> {
    if let Some(text) = &time.date_time {
        let parsed = DateTime::parse_from_rfc3339(text)
            .map_err(|e| format!("unreadable dateTime {text:?}: {e}"))?;
        return Ok((parsed.timestamp_millis(), false));
    }
    if let Some(text) = &time.date {
        let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|e| format!("unreadable date {text:?}: {e}"))?;
        let midnight = date.and_hms_opt(0, 0, 0).ok_or("unreadable date")?;
        return Ok((midnight.and_utc().timestamp_millis(), true));
    }
    Err("a time with neither dateTime nor date".to_owned())
}

/// A person with a readable address; one without (Google omits it for some groups)
/// cannot be a participant.
fn attendee(person: &Person) -> Option<Attendee> {
    let address = EmailAddress::parse(person.email.as_deref()?).ok()?;
    Some(Attendee {
        address,
        name: person.display_name.clone().filter(|n| !n.trim().is_empty()),
        response: match person.response_status.as_deref() {
            Some("accepted") => Response::Accepted,
            Some("tentative") => Response::Tentative,
            Some("declined") => Response::Declined,
            _ => Response::NeedsAction,
        },
        resource: person.resource,
    })
}

fn event_type(name: Option<&str>) -> EventType {
    match name {
        Some("focusTime") => EventType::FocusTime,
        Some("outOfOffice") => EventType::OutOfOffice,
        Some("workingLocation") => EventType::WorkingLocation,
        _ => EventType::Default,
    }
}

fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_keys_split_back_and_answers_parse() {
        let channel: CalendarChannel = serde_json::from_str(
            r#"{"kind":"api#channel","id":"c-1","resourceId":"ret08u3rv24htgh289g","expiration":"1765000000000"}"#,
        )
        .unwrap();
        assert_eq!(channel.expiration_ms, 1_765_000_000_000);
        assert_eq!(
            split_channel_key(&channel.key()),
            Some(("c-1", "ret08u3rv24htgh289g"))
        );
        assert_eq!(split_channel_key("c-1"), None);
        assert_eq!(split_channel_key(" r"), None);
    }

    fn time(date_time: Option<&str>, date: Option<&str>) -> EventTime {
        EventTime {
            date_time: date_time.map(str::to_owned),
            date: date.map(str::to_owned),
        }
    }

    #[test]
    fn times_with_offsets_and_dates_are_utc_instants() {
        let tokyo = instant(&time(Some("2026-03-10T18:00:00+09:00"), None)).unwrap();
        assert_eq!(
            tokyo,
            (
                DateTime::parse_from_rfc3339("2026-03-10T09:00:00Z")
                    .unwrap()
                    .timestamp_millis(),
                false
            )
        );
        let day = instant(&time(None, Some("2026-03-10"))).unwrap();
        assert_eq!(day.0, tokyo.0 - 9 * 3_600_000);
        assert!(day.1);
        assert!(instant(&time(None, None)).is_err());
        assert!(instant(&time(Some("tomorrow"), None)).is_err());
    }

    #[test]
    fn a_missing_calendar_scope_names_the_fix_and_keeps_googles_words() {
        let refused = ProviderError::unauthorized(
            ProviderDetail::new("Client is unauthorized to retrieve access tokens")
                .with_status(401)
                .with_reason("unauthorized_client"),
        );
        let mapped = calendar_error(refused);
        assert_eq!(
            mapped.kind(),
            tributary_core::ProviderErrorKind::Unauthorized
        );
        assert!(mapped.message().starts_with("Client is unauthorized"));
        assert!(mapped.message().contains("Domain-Wide Delegation"));
        assert!(mapped.message().contains(scopes::CALENDAR_READONLY));
        assert_eq!(mapped.reason(), Some("unauthorized_client"));
    }

    #[test]
    fn a_gone_sync_token_is_a_gone_cursor() {
        let gone = ProviderError::other(
            ProviderDetail::new("Sync token is no longer valid, a full sync is required.")
                .with_status(410)
                .with_reason("fullSyncRequired"),
        );
        assert_eq!(
            calendar_error(gone).kind(),
            tributary_core::ProviderErrorKind::CursorGone
        );
    }
}
