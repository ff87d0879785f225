//! One user's primary calendar through Graph (`Calendars.Read`): `calendarView/delta`
//! over a window, and each event as a provider-neutral [`Occurrence`].
//!
//! A round starts with the window (`startDateTime`/`endDateTime`), follows
//! `@odata.nextLink` page by page and ends with an `@odata.deltaLink`; following that
//! link later reports what changed in the same window. Both links are opaque and are only
//! ever followed under the configured Graph root. Graph accepts no `$select` or
//! `$filter` here: every property comes, and `calendarView` has already expanded series
//! into their occurrences and exceptions.
//!
//! Every request asks for UTC times (`Prefer: outlook.timezone="UTC"`): Graph then
//! writes each `dateTime` in UTC without an offset, which is the only zone read here
//! (no Windows time-zone table is needed), and immutable ids, so an event keeps its id.

use crate::api::{Api, required};
use crate::error::{GraphCall, unreadable_answer};
use crate::mail::DeltaLink;
use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use reqwest::Url;
use serde::Deserialize;
use std::sync::Arc;
use tributary_core::meeting::{Attendee, EventType, Occurrence, Response};
use tributary_core::{EmailAddress, ProviderDetail, ProviderError};

/// The call's name in error messages and Graph's counters.
const DELTA: &str = "calendarView.delta";
/// Outlook item ids that survive moves; the same preference mail uses.
const IMMUTABLE_IDS: &str = "IdType=\"ImmutableId\"";
/// Times in UTC (Graph's default is the zone each event was created in).
const UTC_TIMES: &str = "outlook.timezone=\"UTC\"";
/// Largest page asked for: input stays bounded whatever the caller passes.
pub const MAX_CALENDAR_PAGE: u32 = 1_000;
/// Longest window a round may cover. Graph documents no limit; five years bounds the
/// listing (the emulator refuses longer windows).
pub const MAX_WINDOW_DAYS: i64 = 1_825;
const DAY_MS: i64 = 86_400_000;

/// The fix for a calendar the app may not read: the permission to grant.
pub const CALENDAR_PERMISSION_FIX: &str = "add the Calendars.Read application permission \
     under App registrations > Tributary > API permissions and grant admin consent, then \
     press Retry on the Users page";

/// A calendar refusal with the fix in it. Graph answers a missing `Calendars.Read` with
/// the same `ErrorAccessDenied` as a missing mail permission, so only the call that
/// failed can name the permission: Microsoft's message is kept verbatim and the fix
/// follows it (as the Google calendar does), because the calendar's status keeps only a
/// message and a code. An application access policy ("Access to OData is disabled.") is
/// fixed in Exchange, not with a permission, and keeps its own hint.
fn calendar_error(error: ProviderError) -> ProviderError {
    let ProviderError::Unauthorized(detail) = &error else {
        return error;
    };
    let denied = detail
        .reason
        .as_deref()
        .is_some_and(|r| r.eq_ignore_ascii_case("ErrorAccessDenied"));
    if !denied || detail.message.contains("OData") {
        return error;
    }
    ProviderError::unauthorized(ProviderDetail {
        message: format!(
            "{} — to capture meetings, {CALENDAR_PERMISSION_FIX}",
            detail.message
        ),
        ..detail.clone()
    })
}

/// A calendar window that cannot be asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("the calendar window must end after it starts")]
    Empty,
    #[error("the calendar window spans more than {MAX_WINDOW_DAYS} days")]
    TooLong,
}

/// The span of time a delta round lists: occurrences overlapping `[start, end)`, in
/// whole seconds as Graph's examples write them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalendarWindow {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl CalendarWindow {
    /// The window, widened to whole seconds (the start down, the end up) so nothing
    /// asked for is left out.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, WindowError> {
        let (start, end) = (whole_second(start, false), whole_second(end, true));
        if end <= start {
            return Err(WindowError::Empty);
        }
        if (end - start).num_milliseconds() > MAX_WINDOW_DAYS * DAY_MS {
            return Err(WindowError::TooLong);
        }
        Ok(CalendarWindow { start, end })
    }

    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }
}

/// `instant` on a whole second: down, or `up`.
fn whole_second(instant: DateTime<Utc>, up: bool) -> DateTime<Utc> {
    let floor = instant.timestamp().saturating_mul(1_000);
    let ms = if up && floor < instant.timestamp_millis() {
        floor.saturating_add(1_000)
    } else {
        floor
    };
    DateTime::from_timestamp_millis(ms).unwrap_or(instant)
}

/// One event of a page: Graph's id for this copy (per mailbox and occurrence) and the
/// occurrence it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarEvent {
    pub id: String,
    pub occurrence: Occurrence,
}

/// One page of a calendar delta round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarPage {
    /// Events in the window, new or changed (a cancelled one has `cancelled` set).
    /// Replays are normal.
    pub events: Vec<CalendarEvent>,
    /// Ids of events deleted, cancelled or moved out of the window (`@removed`); Graph
    /// also reports changes outside the window this way, so an unknown id is no error.
    pub removed: Vec<String>,
    /// Events that cannot become an occurrence (a time that is not UTC, a field of the
    /// wrong type): the rest of the page is still good.
    pub skipped: Vec<SkippedEvent>,
    pub link: DeltaLink,
}

/// An event left out of a page, and why (in our words: Graph's text is not quoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedEvent {
    pub id: String,
    pub problem: &'static str,
}

/// Graph for one user's primary calendar.
#[derive(Debug, Clone)]
pub struct CalendarClient {
    api: Arc<Api>,
    user: String,
    owner: EmailAddress,
}

#[derive(Debug, Deserialize)]
struct DeltaAnswer {
    #[serde(default)]
    value: Vec<serde_json::Value>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    delta_link: Option<String>,
}

impl CalendarClient {
    pub(crate) fn new(api: Arc<Api>, user: &str, owner: EmailAddress) -> Self {
        CalendarClient {
            api,
            user: user.to_string(),
            owner,
        }
    }

    /// The calendar's user (id or principal name).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The address the occurrences are attributed to.
    pub fn owner(&self) -> &EmailAddress {
        &self.owner
    }

    /// Starts a round over `window`; `page_size` is `Prefer: odata.maxpagesize`
    /// (Graph's default is 10), capped at [`MAX_CALENDAR_PAGE`].
    pub async fn delta_start(
        &self,
        window: &CalendarWindow,
        page_size: Option<u32>,
    ) -> Result<CalendarPage, ProviderError> {
        let mut url = self
            .api
            .endpoints
            .graph(&["users", &self.user, "calendarView", "delta"]);
        url.query_pairs_mut()
            .append_pair("startDateTime", &graph_instant(window.start))
            .append_pair("endDateTime", &graph_instant(window.end));
        self.page(url, page_size).await
    }

    /// Follows a next link (the rest of a round) or a stored delta link (what changed
    /// since, in the round's window). A delta link whose state Graph no longer keeps is
    /// [`ProviderError::CursorGone`]: start a new round with [`Self::delta_start`].
    pub async fn delta_follow(
        &self,
        link: &str,
        page_size: Option<u32>,
    ) -> Result<CalendarPage, ProviderError> {
        let url = self.api.graph_link(link, "calendar delta")?;
        if !is_calendar_delta(&url) {
            // A mail folder's link (or any other Graph link) stored in the wrong place:
            // never sent, and gone like an expired one, so a new round heals it.
            return Err(ProviderError::cursor_gone(ProviderDetail::new(
                "the stored link is not a calendarView delta link; a new round starts",
            )));
        }
        self.page(url, page_size).await
    }

    async fn page(&self, url: Url, page_size: Option<u32>) -> Result<CalendarPage, ProviderError> {
        let answer: DeltaAnswer = required(
            self.api
                .get_json(url, &prefer(page_size), GraphCall::Other, DELTA)
                .await
                .map_err(calendar_error)?,
            DELTA,
        )?;
        let mut page = CalendarPage {
            events: Vec::new(),
            removed: Vec::new(),
            skipped: Vec::new(),
            link: page_link(answer.next_link, answer.delta_link)?,
        };
        for item in answer.value {
            if item.get("@removed").is_some() {
                if let Some(id) = item.get("id").and_then(|v| v.as_str()) {
                    page.removed.push(id.to_string());
                }
                continue;
            }
            match self.event(item)? {
                Ok(Some(event)) => page.events.push(event),
                Ok(None) => {}
                Err(skipped) => page.skipped.push(skipped),
            }
        }
        Ok(page)
    }

    /// One item of `value`: an occurrence, nothing (a series master), or skipped. An
    /// item without even an id fails the page: nothing could name what was lost.
    fn event(
        &self,
        item: serde_json::Value,
    ) -> Result<Result<Option<CalendarEvent>, SkippedEvent>, ProviderError> {
        let Some(id) = item.get("id").and_then(|v| v.as_str()).map(str::to_owned) else {
            return Err(unreadable_answer(DELTA, "an event without an id"));
        };
        let skipped = |problem| SkippedEvent {
            id: id.clone(),
            problem,
        };
        // serde's message would quote the answer; only the kind of problem is kept.
        let Ok(event) = serde_json::from_value::<EventJson>(item) else {
            return Ok(Err(skipped("an event of an unexpected shape")));
        };
        Ok(event.into_event(&self.owner).map_err(skipped))
    }
}

fn prefer(page_size: Option<u32>) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        ("prefer", IMMUTABLE_IDS.to_string()),
        ("prefer", UTC_TIMES.to_string()),
    ];
    if let Some(size) = page_size {
        let size = size.clamp(1, MAX_CALENDAR_PAGE);
        headers.push(("prefer", format!("odata.maxpagesize={size}")));
    }
    headers
}

/// `2026-03-10T09:00:00Z`: the window bounds as Graph documents them.
fn graph_instant(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn is_calendar_delta(url: &Url) -> bool {
    let path = url.path().trim_end_matches('/').to_ascii_lowercase();
    path.ends_with("/calendarview/delta") || path.ends_with("/calendarview/delta()")
}

fn page_link(next: Option<String>, delta: Option<String>) -> Result<DeltaLink, ProviderError> {
    match (next, delta) {
        (Some(next), _) if !next.is_empty() => Ok(DeltaLink::Next(next)),
        (_, Some(delta)) if !delta.is_empty() => Ok(DeltaLink::Delta(delta)),
        _ => Err(unreadable_answer(
            DELTA,
            "neither a next link nor a delta link",
        )),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recipient {
    email_address: Option<AddressJson>,
}

#[derive(Debug, Clone, Deserialize)]
struct AddressJson {
    name: Option<String>,
    address: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Status {
    response: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AttendeeJson {
    email_address: Option<AddressJson>,
    #[serde(rename = "type")]
    kind: Option<String>,
    status: Option<Status>,
}

/// `{"dateTime": "2026-03-10T09:00:00.0000000", "timeZone": "UTC"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphTime {
    date_time: String,
    time_zone: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventJson {
    id: String,
    #[serde(rename = "iCalUId")]
    ical_uid: Option<String>,
    /// The series' UID, the same for every occurrence (Graph's beta documents it; the
    /// emulator gives it).
    uid: Option<String>,
    subject: Option<String>,
    start: Option<GraphTime>,
    end: Option<GraphTime>,
    #[serde(default)]
    is_all_day: bool,
    #[serde(default)]
    is_cancelled: bool,
    #[serde(rename = "type")]
    kind: Option<String>,
    /// `DateTimeOffset`, UTC with `Z`.
    original_start: Option<String>,
    show_as: Option<String>,
    sensitivity: Option<String>,
    organizer: Option<Recipient>,
    #[serde(default)]
    attendees: Option<Vec<AttendeeJson>>,
}

impl EventJson {
    /// The occurrence this event is, or `None` for a series master (calendarView lists
    /// its occurrences instead; a master is not one).
    fn into_event(self, owner: &EmailAddress) -> Result<Option<CalendarEvent>, &'static str> {
        let kind = self.kind.as_deref().unwrap_or("singleInstance");
        if kind.eq_ignore_ascii_case("seriesMaster") {
            return Ok(None);
        }
        const BAD_TIME: &str = "an event time that is not a UTC date-time";
        let all_day = self.is_all_day;
        let time = |t: Option<&GraphTime>| t.and_then(|t| event_time_ms(t, all_day));
        let start_ms = time(self.start.as_ref()).ok_or(BAD_TIME)?;
        let end_ms = time(self.end.as_ref()).ok_or(BAD_TIME)?;
        let original_start_ms = match self.original_start.as_deref() {
            // A single event's identity is its start; so is an unmoved occurrence's
            // when Graph leaves `originalStart` out.
            _ if kind.eq_ignore_ascii_case("singleInstance") => None,
            Some(text) => Some(original_start_ms(text, all_day).ok_or(BAD_TIME)?),
            None => Some(start_ms),
        };
        let occurrence = Occurrence {
            ical_uid: series_uid(self.uid, self.ical_uid),
            original_start_ms,
            start_ms,
            end_ms,
            all_day,
            cancelled: self.is_cancelled,
            // Outlook has no focus-time or working-location events; out of office is
            // `showAs: oof`, which core weighs with the attendees.
            event_type: EventType::Default,
            shows_as_out_of_office: self
                .show_as
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("oof")),
            organizer: self.organizer.and_then(|o| organizer(o.email_address)),
            attendees: self
                .attendees
                .unwrap_or_default()
                .into_iter()
                .filter_map(attendee)
                .collect(),
            private: self.sensitivity.as_deref().is_some_and(is_private),
            title: self.subject,
            calendar_owner: owner.clone(),
        };
        Ok(Some(CalendarEvent {
            id: self.id,
            occurrence,
        }))
    }
}

/// The UID that identifies the meeting with Google's `iCalUID`: Graph documents
/// `iCalUId` as "different for each occurrence in a recurring series", while `uid` is
/// the same for the series and all its occurrences (the RFC 5545 UID every invitation
/// carries). Either way (UID, original start) is one occurrence across calendars; only
/// `uid` makes it the same key as the Google copy of the series.
fn series_uid(uid: Option<String>, ical_uid: Option<String>) -> String {
    uid.filter(|u| !u.trim().is_empty())
        .or(ical_uid)
        .unwrap_or_default()
}

fn is_private(sensitivity: &str) -> bool {
    sensitivity.eq_ignore_ascii_case("private") || sensitivity.eq_ignore_ascii_case("confidential")
}

/// An address Graph gave, if it is one: a distribution list or a contact without an
/// address cannot take part, and is left out rather than failing the page.
fn address(json: Option<AddressJson>) -> Option<(EmailAddress, Option<String>)> {
    let json = json?;
    let address = EmailAddress::parse(json.address.as_deref()?).ok()?;
    let name = json
        .name
        .filter(|n| !n.trim().is_empty() && !n.trim().eq_ignore_ascii_case(address.as_str()));
    Some((address, name))
}

fn organizer(json: Option<AddressJson>) -> Option<Attendee> {
    let (address, name) = address(json)?;
    Some(Attendee {
        address,
        name,
        response: Response::Accepted,
        resource: false,
    })
}

fn attendee(json: AttendeeJson) -> Option<Attendee> {
    let (address, name) = address(json.email_address)?;
    let resource = json
        .kind
        .as_deref()
        .is_some_and(|k| k.eq_ignore_ascii_case("resource"));
    let response = json
        .status
        .and_then(|s| s.response)
        .map_or(Response::NeedsAction, |r| response(&r));
    Some(Attendee {
        address,
        name,
        response,
        resource,
    })
}

/// Graph's `responseType`: `none` and `notResponded` are no answer yet; `organizer`
/// is the organizer's own entry, who takes part.
fn response(graph: &str) -> Response {
    match graph.to_ascii_lowercase().as_str() {
        "accepted" | "organizer" => Response::Accepted,
        "tentativelyaccepted" => Response::Tentative,
        "declined" => Response::Declined,
        _ => Response::NeedsAction,
    }
}

/// A `dateTimeTimeZone` in Unix ms. All-day events float (they are dates, not
/// instants): their date at midnight UTC, whatever zone Graph names. Any other time
/// must be in UTC, as every request asks.
fn event_time_ms(time: &GraphTime, all_day: bool) -> Option<i64> {
    let local = parse_local(&time.date_time)?;
    if all_day {
        return Some(midnight_utc(local.date()));
    }
    let zone = time.time_zone.as_deref().map(str::trim).unwrap_or("UTC");
    let utc = zone.is_empty() || zone.eq_ignore_ascii_case("UTC") || zone == "Etc/UTC";
    utc.then(|| local.and_utc().timestamp_millis())
}

/// `2026-03-10T09:00:00.0000000` (seven fraction digits), or with an offset.
fn parse_local(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .or_else(|| {
            DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.naive_utc())
        })
}

fn midnight_utc(date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp_millis())
}

/// `originalStart`, an instant. For an all-day occurrence it is the local midnight of
/// its date in the series' zone, which core identifies by the date at midnight UTC
/// (as Google's all-day `originalStartTime.date`): the nearest midnight UTC, right for
/// every zone from UTC−12 to UTC+11:59.
fn original_start_ms(text: &str, all_day: bool) -> Option<i64> {
    let instant = DateTime::parse_from_rfc3339(text.trim())
        .ok()?
        .timestamp_millis();
    if !all_day {
        return Some(instant);
    }
    Some((instant + DAY_MS / 2).div_euclid(DAY_MS) * DAY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn owner() -> EmailAddress {
        EmailAddress::parse("ann@acme.example").unwrap()
    }

    fn event(json: serde_json::Value) -> Option<CalendarEvent> {
        serde_json::from_value::<EventJson>(json)
            .unwrap()
            .into_event(&owner())
            .unwrap()
    }

    fn base() -> serde_json::Value {
        json!({
            "id": "AAMkA1", "iCalUId": "040000008200E0",
            "subject": "Quarterly review",
            "start": {"dateTime": "2026-03-10T09:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2026-03-10T09:30:00.0000000", "timeZone": "UTC"},
            "isAllDay": false, "isCancelled": false, "type": "singleInstance",
            "showAs": "busy", "sensitivity": "normal",
            "organizer": {"emailAddress": {"name": "Ann", "address": "Ann@Acme.example"}},
            "attendees": [
                {"type": "required", "status": {"response": "accepted"},
                 "emailAddress": {"name": "Pat", "address": "pat@partner.example"}},
                {"type": "optional", "status": {"response": "tentativelyAccepted"},
                 "emailAddress": {"name": "q@partner.example", "address": "q@partner.example"}},
                {"type": "required", "status": {"response": "notResponded"},
                 "emailAddress": {"address": "r@partner.example"}},
                {"type": "required", "status": {"response": "declined"},
                 "emailAddress": {"address": "s@partner.example"}},
                {"type": "resource", "status": {"response": "none"},
                 "emailAddress": {"name": "Room 1", "address": "room1@acme.example"}},
                {"type": "required", "status": {"response": "accepted"},
                 "emailAddress": {"name": "All staff"}}
            ]
        })
    }

    #[test]
    fn a_single_event_becomes_an_occurrence_with_its_people() {
        let event = event(base()).unwrap();
        assert_eq!(event.id, "AAMkA1");
        let o = event.occurrence;
        assert_eq!(o.ical_uid, "040000008200E0");
        assert_eq!(o.original_start_ms, None, "a single event is its start");
        assert_eq!(o.start_ms, 1_773_133_200_000);
        assert_eq!(o.end_ms, 1_773_135_000_000);
        assert!(!o.all_day && !o.cancelled && !o.private && !o.shows_as_out_of_office);
        assert_eq!(o.event_type, EventType::Default);
        assert_eq!(o.title.as_deref(), Some("Quarterly review"));
        assert_eq!(o.calendar_owner, owner());
        let organizer = o.organizer.unwrap();
        assert_eq!(organizer.address.as_str(), "ann@acme.example");
        assert_eq!(organizer.name.as_deref(), Some("Ann"));
        let people: Vec<_> = o
            .attendees
            .iter()
            .map(|a| {
                (
                    a.address.as_str(),
                    a.name.as_deref(),
                    a.response,
                    a.resource,
                )
            })
            .collect();
        assert_eq!(
            people,
            [
                (
                    "pat@partner.example",
                    Some("Pat"),
                    Response::Accepted,
                    false
                ),
                ("q@partner.example", None, Response::Tentative, false),
                ("r@partner.example", None, Response::NeedsAction, false),
                ("s@partner.example", None, Response::Declined, false),
                (
                    "room1@acme.example",
                    Some("Room 1"),
                    Response::NeedsAction,
                    true
                ),
            ],
            "an entry without an address is left out"
        );
    }

    #[test]
    fn occurrences_and_exceptions_keep_their_original_start() {
        let mut moved = base();
        moved["type"] = json!("exception");
        moved["start"]["dateTime"] = json!("2026-03-11T09:00:00.0000000");
        moved["end"]["dateTime"] = json!("2026-03-11T09:30:00.0000000");
        moved["originalStart"] = json!("2026-03-10T09:00:00Z");
        let o = event(moved).unwrap().occurrence;
        assert_eq!(o.original_start_ms, Some(1_773_133_200_000));
        assert_eq!(o.start_ms, 1_773_133_200_000 + DAY_MS);

        let mut plain = base();
        plain["type"] = json!("occurrence");
        let o = event(plain).unwrap().occurrence;
        assert_eq!(o.original_start_ms, Some(o.start_ms), "unmoved: its start");

        let mut with_uid = base();
        with_uid["type"] = json!("occurrence");
        with_uid["iCalUId"] = json!("per-occurrence-1");
        with_uid["uid"] = json!("series-uid");
        let o = event(with_uid).unwrap().occurrence;
        assert_eq!(o.ical_uid, "series-uid", "the series' UID wins");

        let mut master = base();
        master["type"] = json!("seriesMaster");
        assert_eq!(event(master), None, "a master is not an occurrence");
    }

    #[test]
    fn all_day_events_are_dates_at_midnight_utc() {
        let mut day = base();
        day["isAllDay"] = json!(true);
        day["type"] = json!("occurrence");
        day["start"] =
            json!({"dateTime": "2026-03-10T00:00:00.0000000", "timeZone": "Tokyo Standard Time"});
        day["end"] =
            json!({"dateTime": "2026-03-11T00:00:00.0000000", "timeZone": "Tokyo Standard Time"});
        // Tokyo's midnight of March 10 is 15:00 UTC the day before.
        day["originalStart"] = json!("2026-03-09T15:00:00Z");
        let o = event(day.clone()).unwrap().occurrence;
        assert!(o.all_day);
        assert_eq!(o.start_ms, 1_773_100_800_000);
        assert_eq!(o.end_ms, 1_773_100_800_000 + DAY_MS);
        assert_eq!(o.original_start_ms, Some(1_773_100_800_000));
        // Phoenix's midnight is 07:00 UTC the same day.
        day["originalStart"] = json!("2026-03-10T07:00:00Z");
        let o = event(day).unwrap().occurrence;
        assert_eq!(o.original_start_ms, Some(1_773_100_800_000));
    }

    #[test]
    fn flags_out_of_office_cancelled_and_private() {
        for (sensitivity, private) in [
            ("private", true),
            ("confidential", true),
            ("personal", false),
            ("normal", false),
        ] {
            let mut e = base();
            e["sensitivity"] = json!(sensitivity);
            assert_eq!(
                event(e).unwrap().occurrence.private,
                private,
                "{sensitivity}"
            );
        }
        let mut e = base();
        e["showAs"] = json!("oof");
        e["isCancelled"] = json!(true);
        let o = event(e).unwrap().occurrence;
        assert!(o.shows_as_out_of_office && o.cancelled);
    }

    #[test]
    fn times_outside_utc_are_refused_not_misread() {
        let mut e = base();
        e["start"]["timeZone"] = json!("Pacific Standard Time");
        let problem = serde_json::from_value::<EventJson>(e)
            .unwrap()
            .into_event(&owner())
            .unwrap_err();
        assert!(problem.contains("UTC"), "{problem}");
        let mut e = base();
        e["end"]["dateTime"] = json!("tomorrow");
        assert!(
            serde_json::from_value::<EventJson>(e)
                .unwrap()
                .into_event(&owner())
                .is_err()
        );
    }

    #[test]
    fn windows_are_bounded() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let start = t("2026-01-01T00:00:00Z");
        assert_eq!(CalendarWindow::new(start, start), Err(WindowError::Empty));
        assert_eq!(
            CalendarWindow::new(start, t("2031-01-01T00:00:00Z")),
            Err(WindowError::TooLong)
        );
        let window = CalendarWindow::new(start, t("2026-07-01T00:00:00Z")).unwrap();
        assert_eq!(graph_instant(window.start()), "2026-01-01T00:00:00Z");
        let odd = CalendarWindow::new(t("2026-01-01T00:00:00.900Z"), t("2026-01-01T00:00:01.001Z"))
            .unwrap();
        assert_eq!(graph_instant(odd.start()), "2026-01-01T00:00:00Z", "down");
        assert_eq!(graph_instant(odd.end()), "2026-01-01T00:00:02Z", "up");
        assert!(CalendarWindow::new(start, t("2026-01-01T00:00:00.001Z")).is_ok());
    }

    #[test]
    fn only_calendar_delta_links_are_followed() {
        let ok = |s: &str| is_calendar_delta(&Url::parse(s).unwrap());
        assert!(ok(
            "https://graph.microsoft.com/v1.0/users/u/calendarView/delta?$deltatoken=x"
        ));
        assert!(ok(
            "https://graph.microsoft.com/v1.0/users/u/calendarView/delta()?$skiptoken=y"
        ));
        assert!(!ok(
            "https://graph.microsoft.com/v1.0/users/u/mailFolders/inbox/messages/delta?$deltatoken=x"
        ));
    }

    #[test]
    fn page_sizes_stay_within_graph_s_bounds() {
        let size = |n| {
            prefer(Some(n))
                .into_iter()
                .find(|(_, v)| v.starts_with("odata.maxpagesize"))
                .unwrap()
                .1
        };
        assert_eq!(size(0), "odata.maxpagesize=1");
        assert_eq!(size(50), "odata.maxpagesize=50");
        assert_eq!(size(u32::MAX), "odata.maxpagesize=1000");
        assert!(prefer(None).iter().any(|(_, v)| v == UTC_TIMES));
    }

    #[test]
    fn a_missing_calendar_permission_names_calendars_read() {
        let denied = |message: &str| {
            ProviderError::unauthorized(
                ProviderDetail::new(message)
                    .with_status(403)
                    .with_reason("ErrorAccessDenied"),
            )
        };
        let role = calendar_error(denied("Access is denied. Check credentials and try again."));
        assert_eq!(role.kind(), tributary_core::ProviderErrorKind::Unauthorized);
        assert_eq!(role.reason(), Some("ErrorAccessDenied"));
        assert_eq!(role.status(), Some(403));
        assert!(
            role.message()
                .starts_with("Access is denied. Check credentials and try again. — "),
            "{role}"
        );
        assert!(role.message().contains("Calendars.Read"), "{role}");
        let policy = denied("Access to OData is disabled.");
        assert_eq!(
            calendar_error(policy.clone()),
            policy,
            "an access policy is fixed in Exchange, not with a permission"
        );
        let gone = ProviderError::cursor_gone(ProviderDetail::new("gone"));
        assert_eq!(calendar_error(gone.clone()), gone);
    }
}
