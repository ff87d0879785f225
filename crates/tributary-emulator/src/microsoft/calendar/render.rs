//! A meeting occurrence as one mailbox's Graph `event`: times in UTC
//! (`2026-03-10T09:00:00.0000000`, the default `outlook.timezone`), `type`
//! singleInstance/occurrence/exception with `seriesMasterId` and `originalStart`,
//! attendees with their `type` and `status`, `sensitivity`, `showAs`.

use crate::org::meetings::{Answer, EventType, Meeting, Occurrence, rfc3339};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use chrono::{DateTime, SecondsFormat};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The id of a meeting (`None`: the series master) or one occurrence in one mailbox:
/// Exchange ids differ per mailbox and per occurrence.
pub fn event_id(calendar: &str, meeting: &Meeting, occurrence: Option<&Occurrence>) -> String {
    let occurrence = occurrence
        .filter(|_| meeting.recurrence.is_some())
        .map_or(String::new(), |o| o.original_start_ms.to_string());
    let digest = Sha256::digest(format!("{calendar}|{}|{occurrence}", meeting.id).as_bytes());
    format!("AAMkA{}", URL_SAFE.encode(&digest[..30]))
}

/// `2026-03-10T09:00:00.0000000` in UTC.
fn graph_time(ms: i64) -> Value {
    let stamp = DateTime::from_timestamp_millis(ms).unwrap_or_default();
    json!({"dateTime": format!("{}.{:03}0000", stamp.format("%Y-%m-%dT%H:%M:%S"), ms.rem_euclid(1000)), "timeZone": "UTC"})
}

fn response_name(answer: Answer) -> &'static str {
    match answer {
        Answer::NeedsAction => "none",
        Answer::Accepted => "accepted",
        Answer::Tentative => "tentativelyAccepted",
        Answer::Declined => "declined",
    }
}

fn address(email: &str, name: Option<&str>) -> Value {
    json!({"emailAddress": {"name": name.unwrap_or(email), "address": email}})
}

pub fn event_json(calendar: &str, meeting: &Meeting, occurrence: &Occurrence) -> Value {
    let organizer_view = meeting.organizer.email.eq_ignore_ascii_case(calendar);
    let own_answer = meeting
        .attendee(calendar)
        .map_or(Answer::Accepted, |a| a.answer);
    let kind = match (meeting.recurrence.is_some(), occurrence.exception) {
        (false, _) => "singleInstance",
        (true, false) => "occurrence",
        (true, true) => "exception",
    };
    let show_as = match (meeting.event_type, own_answer) {
        (EventType::OutOfOffice, _) => "oof",
        (_, Answer::Declined) => "free",
        (_, Answer::Tentative) => "tentative",
        _ => "busy",
    };
    let attendees: Vec<Value> = meeting
        .attendees
        .iter()
        .filter(|a| {
            !a.person
                .email
                .eq_ignore_ascii_case(&meeting.organizer.email)
        })
        .map(|a| {
            let mut value = address(&a.person.email, a.person.name.as_deref());
            value["type"] = json!(if a.resource {
                "resource"
            } else if a.optional {
                "optional"
            } else {
                "required"
            });
            value["status"] =
                json!({"response": response_name(a.answer), "time": "0001-01-01T00:00:00Z"});
            value
        })
        .collect();
    let id = event_id(calendar, meeting, Some(occurrence));
    let mut event = json!({
        "@odata.type": "#microsoft.graph.event",
        "@odata.etag": format!("W/\"{}\"", occurrence.changed_seq),
        "id": id,
        "createdDateTime": millis(meeting.created_ms),
        "lastModifiedDateTime": millis(occurrence.updated_ms),
        "changeKey": occurrence.changed_seq.to_string(),
        "iCalUId": meeting.ical_uid,
        "uid": meeting.ical_uid,
        "subject": meeting.summary,
        "bodyPreview": meeting.description,
        "importance": "normal",
        "sensitivity": if meeting.private { "private" } else { "normal" },
        "isAllDay": meeting.all_day,
        "isCancelled": occurrence.cancelled,
        "isOrganizer": organizer_view,
        "responseRequested": true,
        "showAs": show_as,
        "type": kind,
        "seriesMasterId": Value::Null,
        "start": graph_time(occurrence.start_ms),
        "end": graph_time(occurrence.end_ms),
        "originalStartTimeZone": meeting.zone_name(),
        "originalEndTimeZone": meeting.zone_name(),
        "location": {"displayName": meeting.location.clone().unwrap_or_default()},
        "organizer": address(&meeting.organizer.email, meeting.organizer.name.as_deref()),
        "attendees": attendees,
        "responseStatus": {
            "response": if organizer_view { "organizer" } else { response_name(own_answer) },
            "time": "0001-01-01T00:00:00Z",
        },
    });
    if meeting.recurrence.is_some() {
        event["seriesMasterId"] = json!(event_id(calendar, meeting, None));
        event["originalStart"] = json!(rfc3339(occurrence.original_start_ms));
    }
    event
}

fn millis(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}
