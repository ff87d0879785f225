//! Who is calling: bearer API tokens for `/api/v1`, and the password hashing every
//! sign-in path shares. The store keeps only hashes; argon2 lives here so the store
//! needs no password algorithm (it stores the PHC string it is given).

use crate::AppState;
use crate::error::ApiError;
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use tributary_store::{
    AccountError, ApiTokenId, MemberId, MemberRole, Store, TenantId, UserId, UserView,
};

/// Shortest password accepted for a console account.
pub const MIN_PASSWORD_CHARS: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is shorter than {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error(transparent)]
    Account(#[from] AccountError),
}

/// An argon2id PHC string (random salt, the crate's recommended parameters).
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| PasswordError::Hash(error.to_string()))
}

/// Whether `password` matches the PHC string `stored` (argon2 compares in constant
/// time); an unparsable hash never matches.
pub fn verify_password(password: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Creates a console account with a hashed password.
pub async fn create_user(
    store: &Store,
    tenant: &TenantId,
    email: &str,
    role: MemberRole,
    password: &str,
    actor: &str,
) -> Result<UserId, PasswordError> {
    let hash = hash_password(password)?;
    Ok(store.create_user(tenant, email, role, &hash, actor).await?)
}

/// The account `email` signs in as when `password` is right. Unknown addresses cost a
/// hash too, so timing does not tell which addresses have accounts.
pub async fn authenticate(
    store: &Store,
    email: &str,
    password: &str,
) -> Result<Option<UserView>, tributary_store::StoreError> {
    let Some(credentials) = store.user_credentials(email).await? else {
        let _ = verify_password(password, DUMMY_HASH);
        return Ok(None);
    };
    Ok(verify_password(password, &credentials.password_hash).then_some(credentials.user))
}

/// A valid PHC string no password is known for, to spend equal time on misses.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$J9ovGUzOJlNNzxLhvD4rrDHhqi6Rw1/1O0XOHIuW2rc";

/// The caller of an API request: a live token, its account and tenant.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub tenant: TenantId,
    pub user: UserView,
    pub token: ApiTokenId,
    /// How the audit trail names this caller (never the secret).
    pub actor: String,
}

impl ApiCaller {
    pub fn is_admin(&self) -> bool {
        self.user.role == MemberRole::Admin
    }

    /// Refuses callers that are not admins with 403.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }

    /// The member a member-role caller is, by its account's email.
    pub async fn own_member(&self, store: &Store) -> Result<Option<MemberId>, ApiError> {
        Ok(store.member_of_user(&self.user).await?)
    }
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let secret = bearer_token(parts)?;
        let Some(auth) = state.store().api_token_by_secret(secret).await? else {
            return Err(ApiError::unauthorized(
                "the API token is unknown or revoked: ask an admin for a new one",
            ));
        };
        Ok(ApiCaller {
            actor: format!("{} (API token {})", auth.user.email, auth.token.prefix),
            tenant: auth.user.tenant.clone(),
            user: auth.user,
            token: auth.token.id,
        })
    }
}

/// An admin's API caller: members are refused with 403 before the body is read, so a
/// member learns nothing from how a body would have been validated.
#[derive(Debug, Clone)]
pub struct AdminCaller(pub ApiCaller);

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = ApiCaller::from_request_parts(parts, state).await?;
        caller.require_admin()?;
        Ok(AdminCaller(caller))
    }
}

fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthorized("send an API token as `Authorization: Bearer <token>`")
    })?;
    let value = header
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?;
    let (scheme, token) = value.split_once(' ').ok_or_else(|| {
        ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthorized(
            "the Authorization header must be `Bearer <token>`",
        ));
    }
    Ok(token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterz", &hash));
        assert!(!verify_password("correct horse battery", "not a hash"));
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(matches!(
            hash_password("short"),
            Err(PasswordError::TooShort)
        ));
    }

    #[test]
    fn the_dummy_hash_parses_so_misses_cost_a_hash() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!verify_password("anything at all", DUMMY_HASH));
    }
}
