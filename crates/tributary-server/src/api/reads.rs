//! What was captured: activities (filtered, cursor-paged), contacts, companies,
//! relationships and the audit log. The audit log is for admins; the other lists answer
//! a member's token with what the tenant's policy lets members see (`member_visibility`,
//! see [`tributary_store::ReadScope`]): by default what they took part in. What a member
//! may not see is simply not listed. Every list is filtered and paged in the
//! store's SQL (keyset pages), so a page costs the same however large the tenant is.
//! Cursors are opaque to clients (URL-safe base64 of where the page ended).

use super::extract::ApiQuery;
use super::page_size;
use crate::AppState;
use crate::auth::{AdminCaller, ApiCaller};
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Value, json};
use tributary_core::settings::MemberVisibility;
use tributary_store::{
    ActivityCursor, ActivityFilter, ActivityView, AuditActors, AuditCursor, AuditFilter,
    ContactFilter, ReadScope, RelationshipCursor, RelationshipFilter,
};

/// Longest filter value (an address or a domain).
const MAX_FILTER_LEN: usize = tributary_core::address::MAX_ADDRESS_LEN;

/// Longest cursor taken: two addresses base64-encoded need under 700 characters; the
/// rest is room for captured addresses longer than RFC 5321 allows (headers hold any).
pub(crate) const MAX_CURSOR_LEN: usize = 8_192;

/// Refuses filter values longer than an address and cursors longer than any this API
/// returns, before they reach SQL: the OpenAPI document states the same bounds.
pub(crate) fn check_lengths(
    filters: &[(&str, &Option<String>)],
    cursor: &Option<String>,
) -> Result<(), ApiError> {
    for (name, value) in filters {
        if value
            .as_deref()
            .is_some_and(|v| v.chars().count() > MAX_FILTER_LEN)
        {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("{name} is longer than {MAX_FILTER_LEN} characters"),
            ));
        }
    }
    if cursor.as_deref().is_some_and(|c| c.len() > MAX_CURSOR_LEN) {
        return Err(invalid_cursor());
    }
    Ok(())
}

pub(crate) fn encode_cursor(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

pub(crate) fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(invalid_cursor)
}

pub(crate) fn invalid_cursor() -> ApiError {
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

/// What `caller` may read: an admin the tenant; a member what the policy's
/// `member_visibility` says, and nothing when no member of the tenant has their address.
async fn scope_of(state: &AppState, caller: &ApiCaller) -> Result<ReadScope, ApiError> {
    if caller.is_admin() {
        return Ok(ReadScope::Tenant);
    }
    let Some(member) = state
        .store()
        .member_by_address(&caller.tenant, &caller.user.email)
        .await?
    else {
        return Ok(ReadScope::Nothing);
    };
    Ok(
        match state
            .runtime
            .policy(&caller.tenant)
            .await?
            .member_visibility
        {
            MemberVisibility::Own => ReadScope::Own(member.id),
            MemberVisibility::Organization => ReadScope::Organization(member.id),
        },
    )
}

fn activity_json(activity: &ActivityView) -> Value {
    let participants: Vec<Value> = activity
        .participants
        .iter()
        .map(|p| {
            json!({
                "address": p.address,
                "display_name": p.display_name,
                "role": p.role,
                "kind": p.kind,
                "member": p.member,
            })
        })
        .collect();
    // Sightings come ordered by mailbox, as `captured_by` does: one provider per mailbox.
    let provider_of = |mailbox: &str| {
        activity
            .captured_by
            .iter()
            .find(|c| c.mailbox == mailbox)
            .map(|c| c.provider.clone())
    };
    let sightings: Vec<Value> = activity
        .sightings
        .iter()
        .map(|(mailbox, id, labels)| {
            json!({ "mailbox": mailbox, "provider": provider_of(mailbox), "provider_message_id": id, "labels": labels })
        })
        .collect();
    let captured_by: Vec<Value> = activity
        .captured_by
        .iter()
        .map(|c| json!({ "mailbox": c.mailbox, "provider": c.provider }))
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
        "captured_by": captured_by,
        "withheld": activity.withheld,
    })
}

pub async fn activities(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiQuery(query): ApiQuery<ActivityQuery>,
) -> Result<Json<Value>, ApiError> {
    check_lengths(
        &[
            ("member", &query.member),
            ("contact", &query.contact),
            ("company", &query.company),
        ],
        &query.cursor,
    )?;
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
    let scope = scope_of(&state, &caller).await?;
    let page = state
        .store()
        .activities_page_scoped(
            &caller.tenant,
            &filter,
            after,
            page_size(query.limit)?,
            scope,
        )
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
    caller: ApiCaller,
    ApiQuery(query): ApiQuery<ContactQuery>,
) -> Result<Json<Value>, ApiError> {
    check_lengths(
        &[("q", &query.q), ("company", &query.company)],
        &query.cursor,
    )?;
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let filter = ContactFilter {
        q: query.q,
        company: query.company,
    };
    let scope = scope_of(&state, &caller).await?;
    let page = state
        .store()
        .contacts_page_scoped(
            &caller.tenant,
            &filter,
            after.as_deref(),
            page_size(query.limit)?,
            scope,
        )
        .await?;
    let next = page.next.as_deref().map(encode_cursor);
    let contacts: Vec<Value> = page
        .contacts
        .iter()
        .map(|c| json!({ "address": c.address, "display_name": c.display_name, "company": c.company }))
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
    caller: ApiCaller,
    ApiQuery(query): ApiQuery<CompanyQuery>,
) -> Result<Json<Value>, ApiError> {
    check_lengths(&[("q", &query.q)], &query.cursor)?;
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let scope = scope_of(&state, &caller).await?;
    let page = state
        .store()
        .companies_page_scoped(
            &caller.tenant,
            query.q.as_deref(),
            after.as_deref(),
            page_size(query.limit)?,
            scope,
        )
        .await?;
    let next = page.next.as_deref().map(encode_cursor);
    let companies: Vec<Value> = page
        .companies
        .iter()
        .map(|c| json!({ "domain": c.domain, "display_name": c.display_name(), "contacts": c.contacts }))
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
    caller: ApiCaller,
    ApiQuery(query): ApiQuery<RelationshipQuery>,
) -> Result<Json<Value>, ApiError> {
    check_lengths(
        &[("member", &query.member), ("contact", &query.contact)],
        &query.cursor,
    )?;
    let after = query
        .cursor
        .as_deref()
        .map(parse_relationship_cursor)
        .transpose()?;
    let filter = RelationshipFilter {
        member: query.member,
        contact: query.contact,
    };
    let scope = scope_of(&state, &caller).await?;
    let page = state
        .store()
        .relationships_page_scoped(
            &caller.tenant,
            &filter,
            after.as_ref(),
            page_size(query.limit)?,
            scope,
        )
        .await?;
    let next = page.next.map(|c| {
        encode_cursor(&format!(
            "{}{RELATIONSHIP_SEPARATOR}{}",
            c.member, c.contact
        ))
    });
    let addresses: Vec<&str> = page
        .relationships
        .iter()
        .flat_map(|r| [r.member.as_str(), r.contact.as_str()])
        .collect();
    let names = state
        .store()
        .display_names(&caller.tenant, &addresses)
        .await?;
    let pairs: Vec<(String, String)> = page
        .relationships
        .iter()
        .map(|r| (r.member.clone(), r.contact.clone()))
        .collect();
    let ties = state.store().meeting_ties(&caller.tenant, &pairs).await?;
    let relationships: Vec<Value> = page
        .relationships
        .iter()
        .map(|r| {
            // Meetings attended together count apart from mail and join its score.
            let tie = ties.get(&(r.member.clone(), r.contact.clone()));
            let (first_ms, last_ms, score) = tie
                .map_or((r.first_ms, r.last_ms, r.score_at_last), |tie| {
                    tie.combined_with(r)
                });
            json!({
                "member": r.member,
                "member_display_name": names.get(&r.member),
                "contact": r.contact,
                "contact_display_name": names.get(&r.contact),
                "first_ms": first_ms,
                "last_ms": last_ms,
                "sent": r.sent,
                "received": r.received,
                "total": r.total,
                "meetings": tie.map_or(0, |t| t.meetings),
                "score_at_last": score,
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
    /// `people` (default: every actor but the sync engine), `system` or `all`.
    who: Option<String>,
    actor: Option<String>,
    /// An action code, or a family ending in a dot (`account.`).
    action: Option<String>,
    /// Part of the event's subject.
    target: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

/// The audit log, newest first, paged with a cursor through all of its history.
pub async fn audit(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = page_size(query.limit)?;
    check_lengths(
        &[
            ("actor", &query.actor),
            ("action", &query.action),
            ("target", &query.target),
        ],
        &query.cursor,
    )?;
    let actors = match query.who.as_deref() {
        None => AuditActors::People,
        Some(name) => AuditActors::from_name(name).ok_or_else(|| {
            ApiError::bad_request("invalid_query", "who must be people, system or all")
        })?,
    };
    let filter = AuditFilter {
        actors,
        actor: query.actor,
        action: query.action,
        target: query.target,
    };
    let after = query
        .cursor
        .as_deref()
        .map(parse_audit_cursor)
        .transpose()?;
    let page = state
        .store()
        .audit_page(&caller.tenant, &filter, after, limit)
        .await?;
    let events: Vec<Value> = page
        .entries
        .iter()
        .map(|entry| {
            let e = &entry.event;
            json!({
                "id": entry.id,
                "at_ms": e.at_ms,
                "actor": e.actor,
                "action": e.action,
                "subject": e.subject,
                "text": crate::console::audit_sentence(e),
                "detail": e.detail,
            })
        })
        .collect();
    let next = page
        .next
        .map(|c| encode_cursor(&format!("{}.{}", c.at_ms, c.id)));
    Ok(Json(json!({ "events": events, "next_cursor": next })))
}

fn parse_audit_cursor(cursor: &str) -> Result<AuditCursor, ApiError> {
    let text = decode_cursor(cursor)?;
    let (at, id) = text.split_once('.').ok_or_else(invalid_cursor)?;
    Ok(AuditCursor {
        at_ms: at.parse().map_err(|_| invalid_cursor())?,
        id: id.parse().map_err(|_| invalid_cursor())?,
    })
}
