//! Who is calling: bearer API tokens for `/api/v1`, and the password hashing every
//! sign-in path shares. The store keeps only hashes; argon2 lives here so the store
//! needs no password algorithm (it stores the PHC string it is given).
//!
//! Hashing and verifying take tens of milliseconds of CPU each, so they never run on
//! the async worker threads (a sign-in flood would stall every other request): they go
//! to tokio's blocking pool, at most [`HASHING_PERMITS`] at a time, so a flood cannot
//! take every blocking thread or every core either; the rest wait their turn.
//!
//! A new password must be at least [`MIN_PASSWORD_CHARS`] long and not easy to guess:
//! the zxcvbn estimator (dictionaries of common passwords, names and words, keyboard
//! patterns, repeats, sequences, dates) must score it [`MIN_PASSWORD_SCORE`] or more
//! out of 4, i.e. more than 10^10 guesses, the level its authors recommend for
//! accounts that matter.

use crate::AppState;
use crate::error::ApiError;
use crate::throttle::{ClientAddress, SignInThrottle, Throttled};
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use std::net::IpAddr;
use tokio::sync::{Semaphore, SemaphorePermit};
use tributary_store::{
    AccountError, ApiTokenId, MemberId, MemberRole, Store, TenantId, UserId, UserView,
};
use zxcvbn::Score;

/// Shortest password accepted for a console account.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Lowest zxcvbn score (0 to 4) accepted for a new password.
pub const MIN_PASSWORD_SCORE: Score = Score::Three;
/// Password hashes computed at once, process-wide (the machine has few cores; other
/// requests keep the rest).
pub const HASHING_PERMITS: usize = 2;

/// What the refusal of a weak password tells the user to do, when the estimator has no
/// more specific suggestion.
const STRONGER: &str = "add more words (four or more unrelated ones make a strong and memorable password), or use a password manager's generated password";

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is shorter than {MIN_PASSWORD_CHARS} characters: {STRONGER}")]
    TooShort,
    /// zxcvbn's warning and suggestions, as sentences.
    #[error("the password is too easy to guess{advice}")]
    TooWeak { advice: String },
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error(transparent)]
    Account(#[from] AccountError),
}

static HASHING: Semaphore = Semaphore::const_new(HASHING_PERMITS);

/// Runs `work` (hashing) on the blocking pool once one of the [`HASHING_PERMITS`] is
/// free. A panic in `work` is resumed here.
async fn off_the_runtime<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let _permit = hashing_permit().await;
    run_blocking(work).await
}

/// One of the [`HASHING_PERMITS`], waited for in turn.
async fn hashing_permit() -> SemaphorePermit<'static> {
    // The semaphore is a static that is never closed.
    HASHING
        .acquire()
        .await
        .expect("the hashing semaphore is never closed")
}

/// `work` on the blocking pool; a panic in it is resumed here.
async fn run_blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

/// Refuses passwords that are short or easy to guess; `context` is what the estimator
/// must not find inside it (the account's email address, say).
pub fn check_password_strength(password: &str, context: &[&str]) -> Result<(), PasswordError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    let mut inputs = vec!["tributary"];
    inputs.extend_from_slice(context);
    let estimate = zxcvbn::zxcvbn(password, &inputs);
    if estimate.score() >= MIN_PASSWORD_SCORE {
        return Ok(());
    }
    Err(PasswordError::TooWeak {
        advice: weak_password_advice(estimate.feedback()),
    })
}

/// ": <warning> <suggestions> " from zxcvbn's feedback, ending with what to do.
fn weak_password_advice(feedback: Option<&zxcvbn::feedback::Feedback>) -> String {
    let mut advice = String::from(":");
    if let Some(feedback) = feedback {
        if let Some(warning) = feedback.warning() {
            advice.push_str(&format!(" {warning}"));
        }
        for suggestion in feedback.suggestions() {
            advice.push_str(&format!(" {suggestion}"));
        }
    }
    advice.push_str(&format!(" To fix it: {STRONGER}."));
    advice
}

/// An argon2id PHC string (random salt, the crate's recommended parameters) of a new
/// password, refused when weak (see [`check_password_strength`]). Runs off the async
/// worker threads.
pub async fn hash_password(password: &str) -> Result<String, PasswordError> {
    hash_new_password(password, &[]).await
}

/// [`hash_password`], also refusing a password that contains `context` (the account's
/// email address, its name).
pub async fn hash_new_password(password: &str, context: &[&str]) -> Result<String, PasswordError> {
    let password = password.to_owned();
    let context: Vec<String> = context.iter().map(|text| (*text).to_owned()).collect();
    off_the_runtime(move || {
        let context: Vec<&str> = context.iter().map(String::as_str).collect();
        check_password_strength(&password, &context)?;
        hash_blocking(&password)
    })
    .await
}

fn hash_blocking(password: &str) -> Result<String, PasswordError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| PasswordError::Hash(error.to_string()))
}

/// Whether `password` matches the PHC string `stored` (argon2 compares in constant
/// time); an unparsable hash never matches. Runs off the async worker threads.
pub async fn verify_password(password: &str, stored: &str) -> bool {
    let (password, stored) = (password.to_owned(), stored.to_owned());
    off_the_runtime(move || verify_blocking(&password, &stored)).await
}

fn verify_blocking(password: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Creates a console account with a hashed password (refused when weak).
pub async fn create_user(
    store: &Store,
    tenant: &TenantId,
    email: &str,
    role: MemberRole,
    password: &str,
    actor: &str,
) -> Result<UserId, PasswordError> {
    let hash = hash_new_password(password, &[email]).await?;
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
        let _ = verify_password(password, DUMMY_HASH).await;
        return Ok(None);
    };
    let matches = verify_password(password, &credentials.password_hash).await;
    Ok(matches.then_some(credentials.user))
}

/// What a console sign-in attempt came to.
#[derive(Debug, Clone)]
pub enum SignIn {
    /// The password is right: the account.
    Accepted(UserView),
    /// Wrong password or no such account (counted as a failure).
    Refused,
    /// Refused unchecked: too many failures for the account or the address.
    Throttled(Throttled),
}

/// [`authenticate`] under the sign-in throttle: refused unchecked while the account
/// (`email`) or the client `address` has no failures left, and counted when wrong.
///
/// The throttle is asked again once the hashing permit is held: attempts sent side by
/// side all pass the first look before any has failed, but they queue for the permits,
/// and those still queued when the budget runs out are refused without a check. A
/// parallel burst gets at most the budget plus the other permit holders.
pub async fn sign_in(
    store: &Store,
    throttle: &SignInThrottle,
    email: &str,
    password: &str,
    address: IpAddr,
) -> Result<SignIn, tributary_store::StoreError> {
    if let Err(throttled) = throttle.check(Some(email), address) {
        return Ok(SignIn::Throttled(throttled));
    }
    let credentials = store.user_credentials(email).await?;
    // Unknown addresses cost a hash too, so timing does not tell which have accounts.
    let stored = credentials
        .as_ref()
        .map_or(DUMMY_HASH, |found| found.password_hash.as_str())
        .to_owned();
    let _permit = hashing_permit().await;
    if let Err(throttled) = throttle.check(Some(email), address) {
        return Ok(SignIn::Throttled(throttled));
    }
    let password = password.to_owned();
    let matches = run_blocking(move || verify_blocking(&password, &stored)).await;
    match credentials {
        Some(found) if matches => Ok(SignIn::Accepted(found.user)),
        _ => {
            // Counted while the permit is held, so the next in the queue sees it.
            throttle.record_failure(Some(email), address);
            Ok(SignIn::Refused)
        }
    }
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

    /// A token is checked only while the client's address has failures left (see
    /// [`crate::throttle`]): 429 with `Retry-After` otherwise, even for a right token.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let secret = bearer_token(parts)?;
        let ClientAddress(address) = ClientAddress::of(parts);
        if let Err(throttled) = state.throttle.check(None, address) {
            return Err(ApiError::too_many_requests(throttled.retry_after_secs()));
        }
        let Some(auth) = state.store().api_token_by_secret(secret).await? else {
            state.throttle.record_failure(None, address);
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

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hash = hash_password("correct horse battery staple").await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery staple", &hash).await);
        assert!(!verify_password("correct horse battery stapler", &hash).await);
        assert!(!verify_password("correct horse battery staple", "not a hash").await);
    }

    #[tokio::test]
    async fn short_passwords_are_refused() {
        assert!(matches!(
            hash_password("short").await,
            Err(PasswordError::TooShort)
        ));
    }

    #[test]
    fn easy_passwords_are_refused_with_what_to_do() {
        for weak in [
            "            ",
            "aaaaaaaaaaaa",
            "password1234",
            "qwertyuiop12",
        ] {
            let refused = check_password_strength(weak, &[]).unwrap_err();
            let message = refused.to_string();
            assert!(matches!(refused, PasswordError::TooWeak { .. }), "{weak:?}");
            assert!(message.contains("add more words"), "{weak:?}: {message}");
        }
        let repeated = check_password_strength("aaaaaaaaaaaa", &[]).unwrap_err();
        assert!(repeated.to_string().contains("Repeats like"), "{repeated}");
    }

    #[test]
    fn the_account_address_does_not_make_a_password() {
        let email = "ada.lovelace@acme.test";
        assert!(check_password_strength("ada.lovelace@acme.test", &[email]).is_err());
        assert!(check_password_strength("tributarytributary", &[]).is_err());
    }

    #[test]
    fn strong_passwords_pass() {
        for strong in [
            "correct horse battery staple",
            "a long enough password",
            "Kx7#mQ2!vR9p",
            "violet tractor umbrella seventeen",
        ] {
            assert!(check_password_strength(strong, &[]).is_ok(), "{strong}");
        }
    }

    #[tokio::test]
    async fn the_dummy_hash_parses_so_misses_cost_a_hash() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!verify_password("anything at all", DUMMY_HASH).await);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn hashing_leaves_the_async_thread_free() {
        // On a single-threaded runtime, a ticker keeps ticking while a hash is computed
        // only if the hash runs elsewhere.
        let ticks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&ticks);
        let ticker = tokio::spawn(async move {
            loop {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        });
        let before = ticks.load(std::sync::atomic::Ordering::Relaxed);
        let _ = verify_password("anything at all", DUMMY_HASH).await;
        let after = ticks.load(std::sync::atomic::Ordering::Relaxed);
        ticker.abort();
        assert!(after > before, "the ticker never ran during the hash");
    }
}
