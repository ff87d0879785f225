//! API tokens: an admin lists, creates (the secret is in the answer, once) and revokes
//! the tenant's tokens.

use super::extract::{ApiJson, ApiPath};
use super::members::role_str;
use crate::AppState;
use crate::auth::AdminCaller;
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tributary_store::{ApiTokenId, ApiTokenView};

fn token_json(token: &ApiTokenView) -> Value {
    json!({
        "id": token.id.0,
        "name": token.name,
        "user": token.user_email,
        "prefix": token.prefix,
        "created_ms": token.created_ms,
        "last_used_ms": token.last_used_ms,
        "revoked_ms": token.revoked_ms,
    })
}

pub async fn list(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
) -> Result<Json<Value>, ApiError> {
    let tokens: Vec<Value> = state
        .store()
        .api_tokens(&caller.tenant)
        .await?
        .iter()
        .map(token_json)
        .collect();
    Ok(Json(json!({ "tokens": tokens })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    name: String,
    /// The account the token acts as (and with whose role); the caller's by default.
    user: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiJson(request): ApiJson<CreateRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let user = match &request.user {
        None => caller.user.clone(),
        Some(email) => state
            .store()
            .user_by_email(&caller.tenant, email)
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "unknown_user",
                    format!("no account {email} in this tenant"),
                )
                .with_field("user")
            })?,
    };
    let created = state
        .store()
        .create_api_token(&caller.tenant, user.id, &request.name, &caller.actor)
        .await?;
    let mut body = token_json(&created.token);
    body["role"] = json!(role_str(user.role));
    body["secret"] = json!(created.secret);
    Ok((StatusCode::CREATED, Json(body)))
}

pub async fn revoke(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    state
        .store()
        .revoke_api_token(&caller.tenant, ApiTokenId(id), &caller.actor)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
