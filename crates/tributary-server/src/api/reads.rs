//! What was captured: activities (filtered, cursor-paged), contacts, companies,
//! relationships and the audit log. Admin only. Every list is filtered and paged in the
//! store's SQL (keyset pages), so a page costs the same however large the tenant is.
//! Cursors are opaque to clients (URL-safe base64 of where the page ended).

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
use tributary_store::{
    ActivityCursor, ActivityFilter, ActivityView, ContactFilter, RelationshipCursor,
    RelationshipFilter,
};

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
        Some(address) => match state
            .store()
            .member_by_address(&caller.tenant, address)
            .await?
        {
            Some(member) => Some(member.id),
            // Nobody of that address took part in anything.
            None => return Ok(Json(json!({ "activities": [], "next_cursor": null }))),
        },
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
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let filter = ContactFilter {
        q: query.q,
        company: query.company,
    };
    let page = state
        .store()
        .contacts_page(
            &caller.tenant,
            &filter,
            after.as_deref(),
            page_size(query.limit),
        )
        .await?;
    let next = page.next.as_deref().map(encode_cursor);
    let contacts: Vec<Value> = page
        .contacts
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
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let page = state
        .store()
        .companies_page(
            &caller.tenant,
            query.q.as_deref(),
            after.as_deref(),
            page_size(query.limit),
        )
        .await?;
    let next = page.next.as_deref().map(encode_cursor);
    let companies: Vec<Value> = page
        .companies
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
    let after = query
        .cursor
        .as_deref()
        .map(parse_relationship_cursor)
        .transpose()?;
    let filter = RelationshipFilter {
        member: query.member,
        contact: query.contact,
    };
    let page = state
        .store()
        .relationships_page(
            &caller.tenant,
            &filter,
            after.as_ref(),
            page_size(query.limit),
        )
        .await?;
    let next = page.next.map(|c| {
        encode_cursor(&format!(
            "{}{RELATIONSHIP_SEPARATOR}{}",
            c.member, c.contact
        ))
    });
    let relationships: Vec<Value> = page
        .relationships
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

/// Between member and contact in a relationship cursor; NUL cannot occur in an address.
const RELATIONSHIP_SEPARATOR: char = '\u{0}';

fn parse_relationship_cursor(cursor: &str) -> Result<RelationshipCursor, ApiError> {
    let text = decode_cursor(cursor)?;
    let (member, contact) = text
        .split_once(RELATIONSHIP_SEPARATOR)
        .ok_or_else(invalid_cursor)?;
    Ok(RelationshipCursor {
        member: member.to_owned(),
        contact: contact.to_owned(),
    })
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
