//! What was captured: activities (filtered, cursor-paged), contacts, companies,
//! relationships and the audit log. Admin only. Cursors are opaque to clients
//! (URL-safe base64 of where the page ended).

use super::extract::ApiQuery;
use super::page_size;
use crate::AppState;
use crate::auth::AdminCaller;
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Value, json};
use tributary_store::{ActivityCursor, ActivityFilter, ActivityView};

fn encode_cursor(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(invalid_cursor)
}

fn invalid_cursor() -> ApiError {
    ApiError::bad_request(
        "invalid_cursor",
        "the cursor is not one this API returned: pass next_cursor back unchanged",
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityQuery {
    /// A member's address (primary or alias).
    member: Option<String>,
    contact: Option<String>,
    company: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
    cursor: Option<String>,
    limit: Option<usize>,
}

fn activity_json(activity: &ActivityView) -> Value {
    let participants: Vec<Value> = activity
        .participants
        .iter()
        .map(|p| json!({ "address": p.address, "role": p.role, "kind": p.kind }))
        .collect();
    let sightings: Vec<Value> = activity
        .sightings
        .iter()
        .map(|(mailbox, id, labels)| {
            json!({ "mailbox": mailbox, "provider_message_id": id, "labels": labels })
        })
        .collect();
    json!({
        "id": activity.id,
        "dedupe_key": activity.dedupe_key,
        "thread_key": activity.thread_key,
        "time_ms": activity.time_ms,
        "direction": activity.direction,
        "subject": activity.subject,
        "participants": participants,
        "sightings": sightings,
    })
}

pub async fn activities(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiQuery(query): ApiQuery<ActivityQuery>,
) -> Result<Json<Value>, ApiError> {
    let after = query
        .cursor
        .as_deref()
        .map(parse_activity_cursor)
        .transpose()?;
    let member = match &query.member {
        None => None,
        Some(address) => {
            let address = address.trim().to_lowercase();
            let found = state
                .store()
                .members(&caller.tenant)
                .await?
                .into_iter()
                .find(|m| m.email == address || m.aliases.contains(&address));
            match found {
                Some(member) => Some(member.id),
                // Nobody of that address took part in anything.
                None => return Ok(Json(json!({ "activities": [], "next_cursor": null }))),
            }
        }
    };
    let filter = ActivityFilter {
        member,
        contact: query.contact,
        company: query.company,
        since_ms: query.since,
        until_ms: query.until,
    };
    let page = state
        .store()
        .activities_page(&caller.tenant, &filter, after, page_size(query.limit))
        .await?;
    let activities: Vec<Value> = page.activities.iter().map(activity_json).collect();
    let next = page
        .next
        .map(|c| encode_cursor(&format!("{}:{}", c.time_ms, c.id)));
    Ok(Json(
        json!({ "activities": activities, "next_cursor": next }),
    ))
}

fn parse_activity_cursor(cursor: &str) -> Result<ActivityCursor, ApiError> {
    let text = decode_cursor(cursor)?;
    let (time, id) = text.split_once(':').ok_or_else(invalid_cursor)?;
    Ok(ActivityCursor {
        time_ms: time.parse().map_err(|_| invalid_cursor())?,
        id: id.parse().map_err(|_| invalid_cursor())?,
    })
}

/// Keyset paging over a list sorted by `key`: the items after `cursor`, at most `limit`,
/// and the cursor of the next page.
fn page_by_key<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> String,
    cursor: Option<&str>,
    limit: usize,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let after = cursor.map(decode_cursor).transpose()?;
    // SQL collations differ between backends; the cursor compares as Rust does.
    items.sort_by_cached_key(|item| key(item));
    let mut page: Vec<T> = items
        .into_iter()
        .filter(|item| after.as_ref().is_none_or(|a| key(item) > *a))
        .take(limit + 1)
        .collect();
    let next = if page.len() > limit {
        page.truncate(limit);
        page.last().map(|last| encode_cursor(&key(last)))
    } else {
        None
    };
    Ok((page, next))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactQuery {
    /// Part of the address or of the company domain.
    q: Option<String>,
    company: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

pub async fn contacts(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiQuery(query): ApiQuery<ContactQuery>,
) -> Result<Json<Value>, ApiError> {
    let needle = query.q.as_deref().map(str::to_lowercase);
    let company = query.company.as_deref().map(str::to_lowercase);
    let contacts: Vec<_> = state
        .store()
        .contacts(&caller.tenant)
        .await?
        .into_iter()
        .filter(|c| company.is_none() || c.company == company)
        .filter(|c| {
            needle.as_ref().is_none_or(|n| {
                c.address.contains(n.as_str())
                    || c.company.as_ref().is_some_and(|d| d.contains(n.as_str()))
            })
        })
        .collect();
    let (page, next) = page_by_key(
        contacts,
        |c| c.address.clone(),
        query.cursor.as_deref(),
        page_size(query.limit),
    )?;
    let contacts: Vec<Value> = page
        .iter()
        .map(|c| json!({ "address": c.address, "company": c.company }))
        .collect();
    Ok(Json(json!({ "contacts": contacts, "next_cursor": next })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompanyQuery {
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

pub async fn companies(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiQuery(query): ApiQuery<CompanyQuery>,
) -> Result<Json<Value>, ApiError> {
    let needle = query.q.as_deref().map(str::to_lowercase);
    let companies: Vec<_> = state
        .store()
        .companies(&caller.tenant)
        .await?
        .into_iter()
        .filter(|c| {
            needle
                .as_ref()
                .is_none_or(|n| c.domain.contains(n.as_str()))
        })
        .collect();
    let (page, next) = page_by_key(
        companies,
        |c| c.domain.clone(),
        query.cursor.as_deref(),
        page_size(query.limit),
    )?;
    let companies: Vec<Value> = page
        .iter()
        .map(|c| json!({ "domain": c.domain, "contacts": c.contacts }))
        .collect();
    Ok(Json(json!({ "companies": companies, "next_cursor": next })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelationshipQuery {
    member: Option<String>,
    contact: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

pub async fn relationships(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiQuery(query): ApiQuery<RelationshipQuery>,
) -> Result<Json<Value>, ApiError> {
    let member = query.member.as_deref().map(str::to_lowercase);
    let contact = query.contact.as_deref().map(str::to_lowercase);
    let relationships: Vec<_> = state
        .store()
        .relationships(&caller.tenant)
        .await?
        .into_iter()
        .filter(|r| member.as_ref().is_none_or(|m| r.member == *m))
        .filter(|r| contact.as_ref().is_none_or(|c| r.contact == *c))
        .collect();
    // Member then contact, as the store sorts; NUL cannot occur in an address.
    let (page, next) = page_by_key(
        relationships,
        |r| format!("{}\u{0}{}", r.member, r.contact),
        query.cursor.as_deref(),
        page_size(query.limit),
    )?;
    let relationships: Vec<Value> = page
        .iter()
        .map(|r| {
            json!({
                "member": r.member,
                "contact": r.contact,
                "first_ms": r.first_ms,
                "last_ms": r.last_ms,
                "sent": r.sent,
                "received": r.received,
                "total": r.total,
                "score_at_last": r.score_at_last,
            })
        })
        .collect();
    Ok(Json(
        json!({ "relationships": relationships, "next_cursor": next }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    limit: Option<usize>,
}

pub async fn audit(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = i64::try_from(page_size(query.limit)).unwrap_or(i64::MAX);
    let events: Vec<Value> = state
        .store()
        .audit_events(&caller.tenant, limit)
        .await?
        .into_iter()
        .map(|e| {
            json!({
                "at_ms": e.at_ms,
                "actor": e.actor,
                "action": e.action,
                "subject": e.subject,
                "detail": e.detail,
            })
        })
        .collect();
    Ok(Json(json!({ "events": events })))
}
