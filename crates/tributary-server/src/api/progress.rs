//! `GET /progress`: the whole organization's backfill, for an admin watching a large
//! capture: its mailboxes by state, the messages listed and captured over every
//! backfill, and the time left at the quota (see [`crate::progress`]).

use super::links::now_ms;
use crate::AppState;
use crate::auth::AdminCaller;
use crate::error::ApiError;
use crate::progress::{OrgProgress, QuotaRates, TenantProgress};
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

pub async fn organization(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
) -> Result<Json<Value>, ApiError> {
    let store = state.store();
    let rates = QuotaRates::of(&state.runtime.config().engine.pacing);
    let links = store.links(&caller.tenant).await?;
    let progress = TenantProgress::load(store, &caller.tenant, rates, now_ms()).await?;
    Ok(Json(org_json(&progress.organization(&links), &rates)))
}

fn org_json(org: &OrgProgress, rates: &QuotaRates) -> Value {
    json!({
        "mailboxes": {
            "total": org.mailboxes,
            "backfilled": org.backfilled,
            "backfilling": org.backfilling,
            "not_started": org.not_started,
            "error": org.error,
            "worker_stopped": org.worker_stopped,
        },
        "messages": {
            "listed": org.listed,
            "captured": org.captured,
            "provider_total": org.provider_total,
            "expected_total": org.expected_total,
        },
        "estimated_seconds_left": org.estimated_seconds_left,
        "estimated_mailboxes": org.estimated_mailboxes,
        "budget": {
            "user_units_per_minute": rates.user_units_per_minute,
            "project_units_per_minute": rates.project_units_per_minute,
        },
    })
}
