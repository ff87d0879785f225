//! Console accounts: an admin lists the tenant's accounts, creates one (with a given
//! password or a generated one shown once), changes its role or disables it, resets its
//! password (a generated one, shown once) and removes it.
//!
//! An account is a sign-in and its role is what decides access; a member record is a
//! captured mailbox's owner and decides nothing. The store refuses to remove, disable
//! or demote the tenant's last active admin (409 `last_admin`), and ends a disabled
//! account's sessions and tokens in the same transaction. One-time passwords are in the
//! answer only: never logged, never stored but as a hash.

use super::extract::{ApiJson, ApiPath, not_null};
use super::members::role_str;
use crate::AppState;
use crate::auth::{AdminCaller, PasswordError};
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde::Deserialize;
use serde_json::{Value, json};
use tributary_store::{MemberRole, TenantId, UserId, UserView};

/// Characters of a generated one-time password: random letters and digits, far above
/// any strength rule (about 143 bits).
pub const GENERATED_PASSWORD_CHARS: usize = 24;
/// Longest password accepted: hashing cost must not be the caller's to choose.
pub const MAX_PASSWORD_CHARS: usize = 1024;
/// Longest email address (RFC 5321's path limit), as the one address validator has it.
pub const MAX_EMAIL_CHARS: usize = tributary_core::MAX_ADDRESS_LEN;

/// An account role as the API spells it.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RoleName {
    Admin,
    Member,
}

impl From<RoleName> for MemberRole {
    fn from(role: RoleName) -> Self {
        match role {
            RoleName::Admin => MemberRole::Admin,
            RoleName::Member => MemberRole::Member,
        }
    }
}

/// A random password for a one-time answer (the operating system's generator).
pub fn generate_password() -> String {
    rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(GENERATED_PASSWORD_CHARS)
        .map(char::from)
        .collect()
}

pub(crate) fn account_json(account: &UserView) -> Value {
    json!({
        "id": account.id.0,
        "email": account.email,
        "role": role_str(account.role),
        "active": account.active,
        "created_ms": account.created_ms,
        "last_signin_ms": account.last_signin_ms,
    })
}

/// A refused or failed password, as the API answers it.
fn password_error(error: PasswordError) -> ApiError {
    match error {
        PasswordError::TooShort | PasswordError::TooWeak { .. } => {
            ApiError::unprocessable("weak_password", error.to_string()).with_field("password")
        }
        PasswordError::Account(account) => account.into(),
        PasswordError::Hash(_) => ApiError::internal(&error),
    }
}

/// The tenant's account `id`; another tenant's id is 404 like an unknown one.
async fn find_account(state: &AppState, tenant: &TenantId, id: i64) -> Result<UserView, ApiError> {
    state
        .store()
        .user(tenant, UserId(id))
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_user",
                format!("account {id} does not exist in this tenant"),
            )
        })
}

pub async fn list(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
) -> Result<Json<Value>, ApiError> {
    let accounts: Vec<Value> = state
        .store()
        .users(&caller.tenant)
        .await?
        .iter()
        .map(account_json)
        .collect();
    Ok(Json(json!({ "accounts": accounts })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    email: String,
    #[serde(default = "default_role")]
    role: RoleName,
    /// The password; a generated one (in the answer, once) when absent.
    #[serde(default, deserialize_with = "not_null")]
    password: Option<String>,
}

fn default_role() -> RoleName {
    RoleName::Member
}

pub async fn create(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiJson(request): ApiJson<CreateRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if request.email.chars().count() > MAX_EMAIL_CHARS {
        return Err(ApiError::unprocessable(
            "invalid_email",
            format!("the email is longer than {MAX_EMAIL_CHARS} characters"),
        )
        .with_field("email"));
    }
    let generated = request.password.is_none();
    let password = request.password.unwrap_or_else(generate_password);
    check_length(&password)?;
    let id = crate::auth::create_user(
        state.store(),
        &caller.tenant,
        &request.email,
        request.role.into(),
        &password,
        &caller.actor,
    )
    .await
    .map_err(password_error)?;
    let account = find_account(&state, &caller.tenant, id.0).await?;
    let mut body = account_json(&account);
    if generated {
        body["password"] = json!(password);
    }
    Ok((StatusCode::CREATED, Json(body)))
}

fn check_length(password: &str) -> Result<(), ApiError> {
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(ApiError::unprocessable(
            "weak_password",
            format!("the password is longer than {MAX_PASSWORD_CHARS} characters"),
        )
        .with_field("password"));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    #[serde(default, deserialize_with = "not_null")]
    role: Option<RoleName>,
    #[serde(default, deserialize_with = "not_null")]
    active: Option<bool>,
}

/// Changes the role and/or the active flag. Both are applied in the order role, then
/// active, each in its own transaction, each refused alone when it would leave the
/// tenant without an active admin.
pub async fn update(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(request): ApiJson<UpdateRequest>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store();
    let mut account = find_account(&state, &caller.tenant, id).await?;
    if let Some(role) = request.role {
        account = store
            .set_user_role(&caller.tenant, account.id, role.into(), &caller.actor)
            .await?;
    }
    if let Some(active) = request.active {
        account = store
            .set_user_active(&caller.tenant, account.id, active, &caller.actor)
            .await?;
    }
    Ok(Json(account_json(&account)))
}

/// A new generated password for the account, in this answer only; its sessions end.
pub async fn reset_password(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    let account = find_account(&state, &caller.tenant, id).await?;
    let password = generate_password();
    let hash = crate::auth::hash_new_password(&password, &[&account.email])
        .await
        .map_err(password_error)?;
    let account = state
        .store()
        .reset_user_password(&caller.tenant, account.id, &hash, true, &caller.actor)
        .await?;
    let mut body = account_json(&account);
    body["password"] = json!(password);
    Ok(Json(body))
}

pub async fn remove(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    state
        .store()
        .remove_user(&caller.tenant, UserId(id), &caller.actor)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_random_and_pass_the_strength_rules() {
        let (a, b) = (generate_password(), generate_password());
        assert_eq!(a.chars().count(), GENERATED_PASSWORD_CHARS);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        crate::auth::check_password_strength(&a, &["ada@acme.test"]).unwrap();
    }
}
