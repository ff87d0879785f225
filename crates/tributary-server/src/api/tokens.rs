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
use tributary_core::EmailAddress;
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

/// Longest token name: a label for people, shown in lists and the audit log.
pub(crate) const MAX_TOKEN_NAME_LEN: usize = 100;

/// A token name within [`MAX_TOKEN_NAME_LEN`] and without control characters (it is
/// shown in pages and logs).
fn check_name(name: &str) -> Result<(), ApiError> {
    let refuse = |message: String| {
        Err(ApiError::unprocessable("invalid_token_name", message).with_field("name"))
    };
    if name.trim().chars().count() > MAX_TOKEN_NAME_LEN {
        return refuse(format!(
            "the name is longer than {MAX_TOKEN_NAME_LEN} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return refuse("the name holds a control character (a line break, a tab…)".to_owned());
    }
    Ok(())
}

pub async fn create(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiJson(request): ApiJson<CreateRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_name(&request.name)?;
    let user = match &request.user {
        None => caller.user.clone(),
        Some(email) => state
            .store()
            .user_by_email(&caller.tenant, &checked_address(email)?)
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

/// An account's address as typed, checked like every typed address.
fn checked_address(email: &str) -> Result<String, ApiError> {
    EmailAddress::parse_mailbox(email)
        .map(|a| a.as_str().to_owned())
        .map_err(|e| {
            let shown = super::members::shown(email);
            ApiError::unprocessable(
                "invalid_email",
                format!("user: `{shown}` is not an email address: {e}"),
            )
            .with_field("user")
        })
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
