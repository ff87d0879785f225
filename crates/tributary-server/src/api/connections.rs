//! Disconnecting a provider: admin only. The connection's sealed credentials are
//! deleted and its links unlinked (capture of that provider stops); what it captured
//! stays. Audited by the store. Each provider's `DELETE` sits on the same path as its
//! setup (`/connection` for Google, `/microsoft/connection`).

use crate::AppState;
use crate::auth::AdminCaller;
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use tributary_store::ConnectionKind;
use tributary_sync::RuntimeError;

pub async fn disconnect_google(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
) -> Result<Json<Value>, ApiError> {
    disconnect(&state, &caller, ConnectionKind::Google).await
}

pub async fn disconnect_microsoft(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
) -> Result<Json<Value>, ApiError> {
    disconnect(&state, &caller, ConnectionKind::Microsoft).await
}

/// `{"provider", "unlinked"}`: the provider disconnected and how many of its links
/// were unlinked; 404 when it was not connected.
async fn disconnect(
    state: &AppState,
    caller: &crate::auth::ApiCaller,
    kind: ConnectionKind,
) -> Result<Json<Value>, ApiError> {
    match state
        .runtime
        .disconnect(&caller.tenant, kind, &caller.actor)
        .await
    {
        Ok(unlinked) => Ok(Json(
            json!({ "provider": kind.as_str(), "unlinked": unlinked }),
        )),
        Err(RuntimeError::NotConnected) => Err(ApiError::not_found(format!(
            "no {} connection to disconnect",
            kind.as_str()
        ))),
        Err(other) => Err(other.into()),
    }
}
