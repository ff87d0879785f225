//! Meetings from calendars: captured ones (contact points, latest first) and upcoming
//! ones (soonest first), filtered by contact, company or member and cursor-paged in the
//! store's SQL. An admin's token sees the tenant's; a member's token only the meetings
//! that member took part in, whatever the policy's `member_visibility` (a meeting is a
//! private appointment in someone's calendar, not a message the organization shares).
//! A private event has no title.

use super::extract::ApiQuery;
use super::page_size;
use super::reads::{MAX_CURSOR_LEN, check_lengths, decode_cursor, encode_cursor, invalid_cursor};
use crate::AppState;
use crate::auth::ApiCaller;
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use tributary_store::{MAX_MEETINGS_READ, MeetingCursor, MeetingFilter, MeetingPage, MeetingView};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeetingQuery {
    /// A member's address (primary or alias): meetings that member took part in.
    member: Option<String>,
    /// A participant's address.
    contact: Option<String>,
    /// A participant's company domain.
    company: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

/// The store's filter for `query` as `caller` may see it; `None` when it can match
/// nothing (an unknown member, or a member's token of no member of the tenant).
async fn filter_of(
    state: &AppState,
    caller: &ApiCaller,
    query: &MeetingQuery,
) -> Result<Option<MeetingFilter>, ApiError> {
    check_lengths(
        &[
            ("member", &query.member),
            ("contact", &query.contact),
            ("company", &query.company),
        ],
        &query.cursor,
    )?;
    let store = state.store();
    let viewer = if caller.is_admin() {
        None
    } else {
        match store
            .member_by_address(&caller.tenant, &caller.user.email)
            .await?
        {
            Some(member) => Some(member.id),
            None => return Ok(None),
        }
    };
    let member = match &query.member {
        None => None,
        Some(address) => match store.member_by_address(&caller.tenant, address).await? {
            Some(member) => Some(member.id),
            None => return Ok(None),
        },
    };
    Ok(Some(MeetingFilter {
        contact: query.contact.clone(),
        company: query.company.clone(),
        member,
        viewer,
    }))
}

/// The page size asked for, within what one store read returns.
fn limit_of(query: &MeetingQuery) -> Result<u32, ApiError> {
    let limit = page_size(query.limit)?.min(MAX_MEETINGS_READ as usize);
    Ok(u32::try_from(limit).unwrap_or(MAX_MEETINGS_READ))
}

fn parse_cursor(cursor: Option<&str>) -> Result<Option<MeetingCursor>, ApiError> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    if cursor.len() > MAX_CURSOR_LEN {
        return Err(invalid_cursor());
    }
    let text = decode_cursor(cursor)?;
    let (start, key) = text.split_once(':').ok_or_else(invalid_cursor)?;
    Ok(Some(MeetingCursor {
        start_ms: start.parse().map_err(|_| invalid_cursor())?,
        key: key.to_owned(),
    }))
}

/// `GET /meetings`: captured meetings, latest first.
pub async fn list(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiQuery(query): ApiQuery<MeetingQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = limit_of(&query)?;
    let after = parse_cursor(query.cursor.as_deref())?;
    let Some(filter) = filter_of(&state, &caller, &query).await? else {
        return Ok(Json(empty()));
    };
    let page = state
        .store()
        .meetings_page(&caller.tenant, &filter, after.as_ref(), limit)
        .await?;
    Ok(Json(page_json(&state, &caller, &page).await?))
}

/// `GET /meetings/upcoming`: meetings not ended yet, soonest first.
pub async fn upcoming(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiQuery(query): ApiQuery<MeetingQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = limit_of(&query)?;
    let after = parse_cursor(query.cursor.as_deref())?;
    let Some(filter) = filter_of(&state, &caller, &query).await? else {
        return Ok(Json(empty()));
    };
    let page = state
        .store()
        .upcoming_page(&caller.tenant, &filter, now_ms(), after.as_ref(), limit)
        .await?;
    Ok(Json(page_json(&state, &caller, &page).await?))
}

fn empty() -> Value {
    json!({ "meetings": [], "next_cursor": null })
}

async fn page_json(
    state: &AppState,
    caller: &ApiCaller,
    page: &MeetingPage,
) -> Result<Value, ApiError> {
    let addresses: Vec<&str> = page
        .meetings
        .iter()
        .flat_map(|m| m.participants.iter().map(|p| p.address.as_str()))
        .collect();
    let names = state
        .store()
        .display_names(&caller.tenant, &addresses)
        .await?;
    let meetings: Vec<Value> = page
        .meetings
        .iter()
        .map(|meeting| meeting_json(meeting, |address| names.get(address).cloned()))
        .collect();
    let next = page
        .next
        .as_ref()
        .map(|c| encode_cursor(&format!("{}:{}", c.start_ms, c.key)));
    Ok(json!({ "meetings": meetings, "next_cursor": next }))
}

/// One meeting as the API gives it; `name_of` finds a participant's display name.
pub(crate) fn meeting_json(
    meeting: &MeetingView,
    name_of: impl Fn(&str) -> Option<String>,
) -> Value {
    let participants: Vec<Value> = meeting
        .participants
        .iter()
        .map(|p| {
            json!({
                "address": p.address,
                "display_name": p.name.clone().or_else(|| name_of(&p.address)),
                "organizer": p.organizer,
                "response": p.response.as_str(),
                "kind": p.kind,
                "took_part": p.took_part,
            })
        })
        .collect();
    json!({
        "key": meeting.key,
        "start_ms": meeting.start_ms,
        "end_ms": meeting.end_ms,
        "all_day": meeting.all_day,
        "direction": meeting.direction,
        // The store keeps no title of a private event; never show one regardless.
        "title": if meeting.private { None } else { meeting.title.clone() },
        "private": meeting.private,
        "large": meeting.large,
        "participants": participants,
        "calendars": meeting.calendars,
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
