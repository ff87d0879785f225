//! Mailbox links: the users page's data (status, the provider's message, a fix hint,
//! the last summary, counts captured against the provider's), and the bulk actions.

use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::AppState;
use crate::auth::{AdminCaller, ApiCaller};
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashSet;
use tributary_core::{Audience, FailureCause, FailureSite, HintProvider, LinkErrorStatus};
use tributary_store::{
    ConnectionKind, LabelReconciliation, LinkId, LinkStatus, LinkView, TenantId,
};
use tributary_sync::runtime::MAX_LINKS_PER_ACTION;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = query.status.as_deref().map(parse_status).transpose()?;
    let mut links = Vec::new();
    for link in state.store().links(&caller.tenant).await? {
        if status.is_some_and(|s| s != link.status) {
            continue;
        }
        // A member's token sees its own mailbox only.
        if !caller.is_admin() && link.member != caller.user.email {
            continue;
        }
        let counts = state
            .store()
            .label_reconciliation(&caller.tenant, link.id)
            .await?;
        let audience = if caller.is_admin() {
            Audience::Admin
        } else {
            Audience::Member
        };
        links.push(link_json(&link, &counts, audience));
    }
    Ok(Json(json!({ "links": links })))
}

fn parse_status(name: &str) -> Result<LinkStatus, ApiError> {
    LinkStatus::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = LinkStatus::ALL.iter().map(|s| s.as_str()).collect();
        ApiError::bad_request(
            "invalid_status",
            format!("status `{name}` is not one of {}", known.join(", ")),
        )
    })
}

fn error_status(status: LinkStatus) -> Option<LinkErrorStatus> {
    match status {
        LinkStatus::AuthenticationError => Some(LinkErrorStatus::AuthenticationError),
        LinkStatus::Unauthorized => Some(LinkErrorStatus::Unauthorized),
        LinkStatus::LinkageError => Some(LinkErrorStatus::LinkageError),
        _ => None,
    }
}

/// The cause of a link's failure, from the cause code and message it keeps; `None`
/// for a link that is not in an error status.
pub(crate) fn link_cause(link: &LinkView) -> Option<FailureCause> {
    let status = error_status(link.status)?;
    let provider = match link.provider {
        ConnectionKind::Google => HintProvider::Google,
        ConnectionKind::Microsoft => HintProvider::Microsoft,
        ConnectionKind::Imap => HintProvider::Imap,
    };
    Some(FailureCause::classify(
        provider,
        FailureSite::Mailbox,
        status,
        link.status_reason.as_deref(),
        link.provider_message.as_deref().unwrap_or(""),
    ))
}

/// What the viewer can do about a link's failure: the admin's fix, or the member's part.
pub(crate) fn link_hint(link: &LinkView, audience: Audience) -> Option<&'static str> {
    link_cause(link).map(|cause| cause.hint(audience))
}

pub(crate) fn link_json(
    link: &LinkView,
    counts: &[LabelReconciliation],
    audience: Audience,
) -> Value {
    let labels: Vec<Value> = counts
        .iter()
        .map(|c| {
            json!({
                "label": c.label,
                "provider_total": c.provider_total,
                "listed": c.listed,
                "captured": c.captured,
                "excluded": c.excluded,
                "not_seen": c.not_seen,
                "gone": c.gone,
                "unaccounted": c.unaccounted(),
                "at_ms": c.at_ms,
            })
        })
        .collect();
    json!({
        "id": link.id.0,
        "member": link.member,
        "mailbox": link.mailbox,
        "status": link.status.as_str(),
        "provider_message": link.provider_message,
        "cause": link_cause(link),
        "fix_hint": link_hint(link, audience),
        "last_success_ms": link.last_success_ms,
        "last_summary": link.last_summary,
        "next_attempt_ms": link.next_attempt_ms,
        "attempts": link.attempts,
        "counts": {
            "listed": counts.iter().map(|c| c.listed).sum::<u64>(),
            "captured": counts.iter().map(|c| c.captured).sum::<u64>(),
            "labels": labels,
        },
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinksRequest {
    links: Vec<i64>,
}

/// `ids` without repeats (a link named twice is acted on and counted once); a list
/// longer than [`MAX_LINKS_PER_ACTION`], repeats included, is refused before anything
/// is looked up.
fn distinct_links(ids: &[i64]) -> Result<Vec<LinkId>, ApiError> {
    if ids.len() > MAX_LINKS_PER_ACTION {
        return Err(ApiError::bad_request(
            "too_many_links",
            format!(
                "at most {MAX_LINKS_PER_ACTION} links per request, not {}: send them in batches",
                ids.len()
            ),
        )
        .with_field("links"));
    }
    let mut seen = HashSet::new();
    Ok(ids
        .iter()
        .copied()
        .filter(|id| seen.insert(*id))
        .map(LinkId)
        .collect())
}

#[derive(Clone, Copy)]
enum Action {
    Start,
    Unlink,
    Retry,
}

async fn act(
    state: &AppState,
    caller: &ApiCaller,
    ids: &[i64],
    action: Action,
) -> Result<Json<Value>, ApiError> {
    if ids.is_empty() {
        return Err(
            ApiError::unprocessable("invalid_body", "links is empty: list link ids")
                .with_field("links"),
        );
    }
    let links = distinct_links(ids)?;
    let runtime = &state.runtime;
    let tenant: &TenantId = &caller.tenant;
    let changed = match action {
        Action::Start => runtime.start_links(tenant, &links, &caller.actor).await?,
        Action::Unlink => runtime.unlink_links(tenant, &links, &caller.actor).await?,
        Action::Retry => runtime.retry_links(tenant, &links, &caller.actor).await?,
    };
    Ok(Json(
        json!({ "requested": links.len(), "changed": changed }),
    ))
}

pub async fn start_many(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiJson(request): ApiJson<LinksRequest>,
) -> Result<Json<Value>, ApiError> {
    act(&state, &caller, &request.links, Action::Start).await
}

pub async fn unlink_many(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiJson(request): ApiJson<LinksRequest>,
) -> Result<Json<Value>, ApiError> {
    act(&state, &caller, &request.links, Action::Unlink).await
}

pub async fn retry_many(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiJson(request): ApiJson<LinksRequest>,
) -> Result<Json<Value>, ApiError> {
    act(&state, &caller, &request.links, Action::Retry).await
}

pub async fn start_one(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    act(&state, &caller, &[id], Action::Start).await
}

pub async fn unlink_one(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    act(&state, &caller, &[id], Action::Unlink).await
}

pub async fn retry_one(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    act(&state, &caller, &[id], Action::Retry).await
}
