//! The tenant's own settings (admin only): whether *Rebuild* connects new users
//! automatically. Like the policy, they belong to the tenant and can be set before
//! any connection exists; every change is audited.

use super::extract::ApiJson;
use crate::AppState;
use crate::auth::AdminCaller;
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

/// What `GET` answers and `PUT` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSettingsBody {
    /// Rebuild starts the users it newly matches (default); off, their links are
    /// created unlinked, to be started one by one.
    connect_new_users: bool,
}

pub async fn get(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
) -> Result<Json<TenantSettingsBody>, ApiError> {
    let connect_new_users = state.runtime.auto_connect(&caller.tenant).await?;
    Ok(Json(TenantSettingsBody { connect_new_users }))
}

pub async fn put(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiJson(body): ApiJson<TenantSettingsBody>,
) -> Result<Json<TenantSettingsBody>, ApiError> {
    state
        .runtime
        .set_auto_connect(&caller.tenant, body.connect_new_users, &caller.actor)
        .await?;
    get(State(state), AdminCaller(caller)).await
}
