//! Mailbox links: the users page's data (status, the provider's message, a fix hint,
//! the last summary, counts captured against the provider's), one link's progress
//! (how far its backfill is, who runs it, its recent runs), and the bulk actions.

use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::link_push::{PushView, TenantPush};
use crate::AppState;
use crate::auth::{AdminCaller, ApiCaller};
use crate::error::ApiError;
use crate::progress::{Backfill, QuotaRates, RunState};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashSet;
use tributary_core::{Audience, FailureCause};
use tributary_store::{
    LabelReconciliation, LinkId, LinkProgress, LinkStatus, LinkView, RunningLink, TenantId,
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
    let push = TenantPush::load(&state, &caller.tenant).await?;
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
        links.push(link_json(&link, &counts, audience, &push.of(&link)));
    }
    Ok(Json(json!({ "links": links })))
}

/// `GET /links/{id}`: the link as the list shows it, with what it is doing now:
/// `progress` (messages captured so far; a backfill's listed and captured counts
/// against the provider's total, with an estimate of the time left at the quota; the
/// job running it and whether its worker still lives) and its recent `runs`.
pub async fn show(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store();
    let link = LinkId(id);
    let not_found = || ApiError::not_found(format!("link {id}"));
    let view = store
        .link(&caller.tenant, link)
        .await?
        .ok_or_else(not_found)?;
    // A member's token sees its own mailbox only.
    if !caller.is_admin() && view.member != caller.user.email {
        return Err(ApiError::forbidden());
    }
    let now_ms = now_ms();
    let progress = store
        .link_progress(&caller.tenant, link, now_ms)
        .await?
        .ok_or_else(not_found)?;
    let counts = store.label_reconciliation(&caller.tenant, link).await?;
    let audience = if caller.is_admin() {
        Audience::Admin
    } else {
        Audience::Member
    };
    let rates = QuotaRates::of(&state.runtime.config().engine.pacing);
    let push = TenantPush::load(&state, &caller.tenant).await?;
    let mut body = link_json(&view, &counts, audience, &push.of(&view));
    body["progress"] = progress_json(&view, &progress, &rates);
    body["runs"] = progress
        .runs
        .iter()
        .map(|run| {
            json!({
                "started_ms": run.started_ms,
                "ended_ms": run.ended_ms,
                "status": run.status,
                "provider_message": run.message,
            })
        })
        .collect();
    Ok(Json(body))
}

/// The `progress` object of [`show`].
fn progress_json(view: &LinkView, progress: &LinkProgress, rates: &QuotaRates) -> Value {
    let backfill = Backfill::of_link(&progress.cursors).map(|backfill| {
        json!({
            "listed": backfill.listed,
            "captured": backfill.captured,
            "provider_total": backfill.provider_total,
            "done": backfill.done,
            "updated_ms": backfill.updated_ms,
            "estimated_seconds_left": rates.seconds_left(view.provider, &backfill),
        })
    });
    json!({
        "captured": progress.captured,
        "state": RunState::of(view, progress.running.as_ref()).as_str(),
        "started_ms": progress.started_ms,
        "backfill": backfill,
        "worker": progress.running.as_ref().map(worker_json),
    })
}

fn worker_json(run: &RunningLink) -> Value {
    let stopped = run.worker_stopped_ms.is_some();
    json!({
        "id": run.worker,
        "lease_expires_ms": run.lease_expires_ms,
        "stopped": stopped,
        "last_heartbeat_ms": run.worker_stopped_ms,
        "taken_over_after_ms": stopped.then_some(run.lease_expires_ms),
    })
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
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

/// The cause of a link's failure, from the cause code and message it keeps; `None`
/// for a link that is not in an error status (the engine's reading, kept in one place).
pub(crate) fn link_cause(link: &LinkView) -> Option<FailureCause> {
    tributary_sync::runtime::resume::link_cause(link)
}

/// What the viewer can do about a link's failure: the admin's fix, or the member's part.
pub(crate) fn link_hint(link: &LinkView, audience: Audience) -> Option<&'static str> {
    link_cause(link).map(|cause| cause.hint(audience))
}

pub(crate) fn link_json(
    link: &LinkView,
    counts: &[LabelReconciliation],
    audience: Audience,
    push: &PushView,
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
        "push": push.json(),
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
