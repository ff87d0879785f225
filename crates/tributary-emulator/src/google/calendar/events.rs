//! A meeting as one calendar's `calendar#event`: Google's field names, times in the
//! event's zone with its offset (or `date` for all-day events), the calendar owner
//! marked `self`, and the stubs Google sends for cancelled items.

use crate::org::meetings::{Answer, Attendee, EventType, Meeting, Occurrence, Person, date_string};
use chrono::{DateTime, FixedOffset, SecondsFormat};
use serde_json::{Map, Value, json};

/// One entry of a listing: a single event or a series' master, or one occurrence of a
/// series (an instance with `singleEvents`, else an exception).
#[derive(Debug, Clone, Copy)]
pub enum Item<'m> {
    Whole(&'m Meeting),
    Instance(&'m Meeting, Occurrence),
}

impl<'m> Item<'m> {
    pub fn meeting(&self) -> &'m Meeting {
        match self {
            Item::Whole(m) | Item::Instance(m, _) => m,
        }
    }

    pub fn id(&self) -> String {
        match self {
            Item::Whole(m) => m.id.clone(),
            Item::Instance(m, o) => instance_id(m, o.original_start_ms),
        }
    }

    /// (start, end) in epoch ms: a master spans its whole series.
    pub fn span(&self) -> (i64, i64) {
        match self {
            Item::Whole(m) => m.span(),
            Item::Instance(_, o) => (o.start_ms, o.end_ms),
        }
    }

    pub fn cancelled(&self) -> bool {
        match self {
            Item::Whole(m) => m.cancelled,
            Item::Instance(_, o) => o.cancelled,
        }
    }

    pub fn changed_seq(&self) -> u64 {
        match self {
            Item::Whole(m) if m.recurrence.is_some() => m.changed_seq,
            Item::Whole(m) => m.last_change(),
            Item::Instance(_, o) => o.changed_seq,
        }
    }

    pub fn updated_ms(&self) -> i64 {
        match self {
            Item::Whole(m) => m.updated_ms,
            Item::Instance(_, o) => o.updated_ms,
        }
    }

    pub fn event_type(&self) -> EventType {
        self.meeting().event_type
    }

    /// The event as `calendar` (a member's primary email) sees it.
    pub fn render(&self, calendar: &str, max_attendees: Option<usize>) -> Value {
        let meeting = self.meeting();
        let organizer_view = meeting.organizer.email.eq_ignore_ascii_case(calendar);
        if self.cancelled() && (!organizer_view || matches!(self, Item::Instance(..))) {
            return self.cancelled_stub();
        }
        let (start, end) = self.span_of_occurrence();
        let mut event = Map::new();
        event.insert("kind".into(), json!("calendar#event"));
        event.insert(
            "etag".into(),
            json!(etag(self.changed_seq(), self.updated_ms())),
        );
        event.insert("id".into(), json!(self.id()));
        event.insert(
            "status".into(),
            json!(if self.cancelled() {
                "cancelled"
            } else {
                "confirmed"
            }),
        );
        event.insert(
            "htmlLink".into(),
            json!(format!(
                "https://www.google.com/calendar/event?eid={}",
                self.id()
            )),
        );
        event.insert("created".into(), json!(millis(meeting.created_ms)));
        event.insert("updated".into(), json!(millis(self.updated_ms())));
        event.insert("summary".into(), json!(meeting.summary));
        if !meeting.description.is_empty() {
            event.insert("description".into(), json!(meeting.description));
        }
        if let Some(location) = &meeting.location {
            event.insert("location".into(), json!(location));
        }
        event.insert("creator".into(), person(&meeting.organizer, calendar));
        event.insert("organizer".into(), person(&meeting.organizer, calendar));
        event.insert("start".into(), time(meeting, start));
        event.insert("end".into(), time(meeting, end));
        match self {
            Item::Whole(m) => {
                if let Some(rule) = m.recurrence {
                    event.insert("recurrence".into(), json!([rule.rrule()]));
                }
            }
            Item::Instance(m, o) => {
                event.insert("recurringEventId".into(), json!(m.id));
                event.insert("originalStartTime".into(), time(m, o.original_start_ms));
            }
        }
        event.insert("iCalUID".into(), json!(meeting.ical_uid));
        event.insert("sequence".into(), json!(meeting.sequence));
        insert_attendees(&mut event, meeting, calendar, max_attendees);
        insert_type(&mut event, meeting);
        if meeting.private {
            event.insert("visibility".into(), json!("private"));
        }
        event.insert("reminders".into(), json!({"useDefault": true}));
        Value::Object(event)
    }

    fn span_of_occurrence(&self) -> (i64, i64) {
        match self {
            Item::Whole(m) => (m.start_ms, m.end_ms),
            Item::Instance(_, o) => (o.start_ms, o.end_ms),
        }
    }

    /// What Google guarantees for a cancelled item: its id, and for an occurrence the
    /// series and original start.
    fn cancelled_stub(&self) -> Value {
        let mut stub = json!({
            "kind": "calendar#event",
            "etag": etag(self.changed_seq(), self.updated_ms()),
            "id": self.id(),
            "status": "cancelled",
        });
        if let Item::Instance(m, o) = self {
            stub["recurringEventId"] = json!(m.id);
            stub["originalStartTime"] = time(m, o.original_start_ms);
        }
        stub
    }
}

/// `<series id>_<original start>`: `20260317T080000Z`, or `20260317` for all-day.
pub fn instance_id(meeting: &Meeting, original_start_ms: i64) -> String {
    let stamp = DateTime::from_timestamp_millis(original_start_ms).unwrap_or_default();
    let suffix = if meeting.all_day {
        stamp.format("%Y%m%d").to_string()
    } else {
        stamp.format("%Y%m%dT%H%M%SZ").to_string()
    };
    format!("{}_{suffix}", meeting.id)
}

pub fn etag(seq: u64, updated_ms: i64) -> String {
    format!(
        "\"{}\"",
        u64::try_from(updated_ms).unwrap_or(0) * 1000 + seq % 1000
    )
}

/// `2026-03-10T08:00:00.000Z`, as Google writes `created` and `updated`.
pub fn millis(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `{"dateTime": "…+09:00", "timeZone": "Asia/Tokyo"}`, or `{"date": "2026-03-10"}`.
fn time(meeting: &Meeting, ms: i64) -> Value {
    if meeting.all_day {
        return json!({"date": date_string(ms)});
    }
    let offset = FixedOffset::east_opt(meeting.zone_offset_minutes() * 60)
        .unwrap_or(FixedOffset::east_opt(0).expect("UTC"));
    let local = DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&offset);
    json!({
        "dateTime": local.to_rfc3339_opts(SecondsFormat::Secs, true),
        "timeZone": meeting.zone_name(),
    })
}

fn person(who: &Person, calendar: &str) -> Value {
    let mut value = json!({"email": who.email});
    if let Some(name) = &who.name {
        value["displayName"] = json!(name);
    }
    if who.email.eq_ignore_ascii_case(calendar) {
        value["self"] = json!(true);
    }
    value
}

fn answer_name(answer: Answer) -> &'static str {
    match answer {
        Answer::NeedsAction => "needsAction",
        Answer::Accepted => "accepted",
        Answer::Tentative => "tentative",
        Answer::Declined => "declined",
    }
}

fn attendee(meeting: &Meeting, attendee: &Attendee, calendar: &str) -> Value {
    let mut value = person(&attendee.person, calendar);
    if attendee
        .person
        .email
        .eq_ignore_ascii_case(&meeting.organizer.email)
    {
        value["organizer"] = json!(true);
    }
    if attendee.resource {
        value["resource"] = json!(true);
    }
    if attendee.optional {
        value["optional"] = json!(true);
    }
    value["responseStatus"] = json!(answer_name(attendee.answer));
    value
}

/// Attendees; with `maxAttendees` exceeded, only the calendar owner and
/// `attendeesOmitted`, as Google does.
fn insert_attendees(
    event: &mut Map<String, Value>,
    meeting: &Meeting,
    calendar: &str,
    max: Option<usize>,
) {
    if meeting.attendees.is_empty() {
        return;
    }
    let omitted = max.is_some_and(|max| meeting.attendees.len() > max);
    let listed: Vec<Value> = meeting
        .attendees
        .iter()
        .filter(|a| !omitted || a.person.email.eq_ignore_ascii_case(calendar))
        .map(|a| attendee(meeting, a, calendar))
        .collect();
    event.insert("attendees".into(), Value::Array(listed));
    if omitted {
        event.insert("attendeesOmitted".into(), json!(true));
    }
}

fn insert_type(event: &mut Map<String, Value>, meeting: &Meeting) {
    let (name, properties) = match meeting.event_type {
        EventType::Default => ("default", None),
        EventType::FocusTime => (
            "focusTime",
            Some((
                "focusTimeProperties",
                json!({"autoDeclineMode": "declineOnlyNewConflictingInvitations", "chatStatus": "doNotDisturb"}),
            )),
        ),
        EventType::OutOfOffice => (
            "outOfOffice",
            Some((
                "outOfOfficeProperties",
                json!({"autoDeclineMode": "declineAllConflictingInvitations"}),
            )),
        ),
        EventType::WorkingLocation => (
            "workingLocation",
            Some((
                "workingLocationProperties",
                json!({"type": "homeOffice", "homeOffice": {}}),
            )),
        ),
    };
    event.insert("eventType".into(), json!(name));
    if let Some((key, value)) = properties {
        event.insert(key.into(), value);
        let transparency = if meeting.event_type == EventType::WorkingLocation {
            "transparent"
        } else {
            "opaque"
        };
        event.insert("transparency".into(), json!(transparency));
    }
}
