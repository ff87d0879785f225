//! Google's OAuth side as a service account sees it: registered service accounts and
//! their public keys, domain-wide delegation grants, the JWT-bearer token endpoint, and
//! the access tokens it hands out (checked on every API call).
//!
//! The control API changes this state through [`AuthRegistry`]'s public methods.

use super::error::{ApiError, TokenError};
use super::keyfile::{GeneratedKey, ServiceAccountIdentity, ServiceAccountKeyFile};
use crate::model::Organization;
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use rand::RngCore;
use rsa::RsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier;
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// OAuth scope URLs the emulated APIs understand.
pub mod scopes {
    pub const MAIL: &str = "https://mail.google.com/";
    pub const GMAIL_READONLY: &str = "https://www.googleapis.com/auth/gmail.readonly";
    pub const GMAIL_MODIFY: &str = "https://www.googleapis.com/auth/gmail.modify";
    pub const GMAIL_METADATA: &str = "https://www.googleapis.com/auth/gmail.metadata";
    pub const DIRECTORY_USER_READONLY: &str =
        "https://www.googleapis.com/auth/admin.directory.user.readonly";
    pub const DIRECTORY_USER: &str = "https://www.googleapis.com/auth/admin.directory.user";
    pub const CALENDAR_READONLY: &str = "https://www.googleapis.com/auth/calendar.readonly";
    pub const CONTACTS_READONLY: &str = "https://www.googleapis.com/auth/contacts.readonly";
    pub const PEOPLE_DIRECTORY_READONLY: &str =
        "https://www.googleapis.com/auth/directory.readonly";
}

/// The scopes Tributary requests, and so what `emulate` delegates to the generated
/// service account unless `--no-delegation`.
pub const TRIBUTARY_SCOPES: &[&str] = &[
    scopes::GMAIL_READONLY,
    scopes::DIRECTORY_USER_READONLY,
    scopes::CALENDAR_READONLY,
    scopes::CONTACTS_READONLY,
    scopes::PEOPLE_DIRECTORY_READONLY,
];

/// The `aud` values Google's token endpoint accepts besides its own `token_uri`.
const GOOGLE_TOKEN_AUDIENCES: &[&str] = &[
    "https://oauth2.googleapis.com/token",
    "https://www.googleapis.com/oauth2/v4/token",
    "https://accounts.google.com/o/oauth2/token",
];

const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Longest assertion lifetime accepted: Google documents one hour and rejects a little
/// over it.
const MAX_ASSERTION_LIFETIME_SECS: i64 = 3600 + 300;
/// Clock difference tolerated between the client and the emulator.
const CLOCK_SKEW_SECS: i64 = 300;

const SHORT_LIVED: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.";
const UNAUTHORIZED_CLIENT: &str = "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.";

/// What an access token lets its bearer do, worked out once when it is issued.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApiAccess {
    /// Any Gmail scope that allows reading messages.
    pub gmail_read: bool,
    /// The token carries `gmail.metadata`: Gmail then refuses `q` and the `full`/`raw`
    /// formats even when broader scopes are present too, as Google does.
    pub gmail_metadata: bool,
    pub directory_users_read: bool,
}

impl ApiAccess {
    pub fn from_scopes<'a>(scope_list: impl IntoIterator<Item = &'a str>) -> Self {
        let mut access = ApiAccess::default();
        for scope in scope_list {
            match scope {
                scopes::MAIL | scopes::GMAIL_READONLY | scopes::GMAIL_MODIFY => {
                    access.gmail_read = true
                }
                scopes::GMAIL_METADATA => {
                    access.gmail_read = true;
                    access.gmail_metadata = true;
                }
                scopes::DIRECTORY_USER | scopes::DIRECTORY_USER_READONLY => {
                    access.directory_users_read = true
                }
                _ => {}
            }
        }
        access
    }
}

/// One access token handed out by the token endpoint.
#[derive(Debug, Clone)]
pub struct AccessGrant {
    /// The impersonated user's primary email, lowercase; `None` for a token the service
    /// account got for itself (no `sub`).
    pub subject: Option<Arc<str>>,
    pub client_id: Arc<str>,
    pub scopes: Arc<[String]>,
    pub access: ApiAccess,
    pub expires_at: Instant,
}

/// A registered service account.
#[derive(Debug, Clone)]
pub struct ServiceAccount {
    pub identity: ServiceAccountIdentity,
    /// Public keys by `private_key_id`.
    pub keys: BTreeMap<String, RsaPublicKey>,
    pub disabled: bool,
}

/// A summary of one service account for the control API.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceAccountSummary {
    pub client_email: String,
    pub client_id: String,
    pub project_id: String,
    pub key_ids: Vec<String>,
    pub disabled: bool,
    /// Scopes delegated to the client id (empty: no delegation).
    pub delegated_scopes: Vec<String>,
    pub api_access_restricted: bool,
}

/// Errors of the control methods.
#[derive(Debug, thiserror::Error)]
pub enum AuthControlError {
    #[error("no service account {0}")]
    UnknownServiceAccount(String),
    #[error("service account {account} has no key {key_id}")]
    UnknownKey { account: String, key_id: String },
    #[error("cannot generate a key: {0}")]
    KeyGeneration(String),
}

#[derive(Debug, Default)]
struct Accounts {
    /// Keyed by client email, lowercase.
    by_email: BTreeMap<String, ServiceAccount>,
    /// Domain-wide delegation: numeric client id → delegated scopes.
    delegation: BTreeMap<String, BTreeSet<String>>,
    /// Client ids whose API access the Workspace admin restricted.
    restricted: BTreeSet<String>,
}

/// Service accounts, delegation grants and issued tokens.
#[derive(Debug)]
pub struct AuthRegistry {
    token_uri: String,
    token_lifetime: Duration,
    accounts: RwLock<Accounts>,
    tokens: RwLock<HashMap<String, AccessGrant>>,
}

impl AuthRegistry {
    /// `token_uri` is the emulator's own token endpoint (accepted as `aud`);
    /// `token_lifetime` is how long issued tokens live.
    pub fn new(token_uri: impl Into<String>, token_lifetime: Duration) -> Self {
        AuthRegistry {
            token_uri: token_uri.into(),
            token_lifetime,
            accounts: RwLock::new(Accounts::default()),
            tokens: RwLock::new(HashMap::new()),
        }
    }

    pub fn token_uri(&self) -> &str {
        &self.token_uri
    }

    pub fn token_lifetime(&self) -> Duration {
        self.token_lifetime
    }

    fn accounts(&self) -> std::sync::RwLockReadGuard<'_, Accounts> {
        self.accounts.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn accounts_mut(&self) -> std::sync::RwLockWriteGuard<'_, Accounts> {
        self.accounts
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a service account (or replaces its identity), keeping existing keys.
    pub fn register_service_account(&self, identity: ServiceAccountIdentity) {
        let mut accounts = self.accounts_mut();
        let email = identity.client_email.to_ascii_lowercase();
        accounts
            .by_email
            .entry(email)
            .and_modify(|a| a.identity = identity.clone())
            .or_insert_with(|| ServiceAccount {
                identity,
                keys: BTreeMap::new(),
                disabled: false,
            });
    }

    /// Registers a public key under `key_id` for a service account.
    pub fn add_public_key(
        &self,
        client_email: &str,
        key_id: &str,
        key: RsaPublicKey,
    ) -> Result<(), AuthControlError> {
        let mut accounts = self.accounts_mut();
        let account = accounts
            .by_email
            .get_mut(&client_email.to_ascii_lowercase())
            .ok_or_else(|| AuthControlError::UnknownServiceAccount(client_email.to_string()))?;
        account.keys.insert(key_id.to_string(), key);
        Ok(())
    }

    /// Creates a new key for a service account, as "Add key" in Google's console does,
    /// and returns its key file.
    pub fn create_key(
        &self,
        client_email: &str,
    ) -> Result<ServiceAccountKeyFile, AuthControlError> {
        let identity = self
            .service_account(client_email)
            .ok_or_else(|| AuthControlError::UnknownServiceAccount(client_email.to_string()))?
            .identity;
        let key = GeneratedKey::generate(&mut rand::rngs::OsRng)
            .map_err(|e| AuthControlError::KeyGeneration(e.to_string()))?;
        let key_file = key
            .key_file(&identity, &self.token_uri)
            .map_err(|e| AuthControlError::KeyGeneration(e.to_string()))?;
        self.add_public_key(client_email, &key.private_key_id, key.public_key())?;
        Ok(key_file)
    }

    /// Deletes a key: assertions signed with it then fail with `Invalid JWT Signature.`
    /// (tokens already issued stay valid until they expire, as with Google).
    pub fn delete_key(&self, client_email: &str, key_id: &str) -> Result<(), AuthControlError> {
        let mut accounts = self.accounts_mut();
        let account = accounts
            .by_email
            .get_mut(&client_email.to_ascii_lowercase())
            .ok_or_else(|| AuthControlError::UnknownServiceAccount(client_email.to_string()))?;
        account
            .keys
            .remove(key_id)
            .map(|_| ())
            .ok_or_else(|| AuthControlError::UnknownKey {
                account: client_email.to_string(),
                key_id: key_id.to_string(),
            })
    }

    /// Disables (or re-enables) a service account: its assertions get `Robot is disabled.`
    pub fn set_disabled(&self, client_email: &str, disabled: bool) -> Result<(), AuthControlError> {
        let mut accounts = self.accounts_mut();
        let account = accounts
            .by_email
            .get_mut(&client_email.to_ascii_lowercase())
            .ok_or_else(|| AuthControlError::UnknownServiceAccount(client_email.to_string()))?;
        account.disabled = disabled;
        Ok(())
    }

    /// Sets the domain-wide delegation of a numeric client id to exactly these scopes
    /// (an empty set removes the delegation).
    pub fn set_delegation<I, S>(&self, client_id: &str, scope_list: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let scope_set: BTreeSet<String> = scope_list.into_iter().map(Into::into).collect();
        let mut accounts = self.accounts_mut();
        if scope_set.is_empty() {
            accounts.delegation.remove(client_id);
        } else {
            accounts.delegation.insert(client_id.to_string(), scope_set);
        }
    }

    /// Removes the domain-wide delegation of a client id.
    pub fn remove_delegation(&self, client_id: &str) {
        self.accounts_mut().delegation.remove(client_id);
    }

    /// The scopes delegated to a client id, if any.
    pub fn delegation(&self, client_id: &str) -> Option<BTreeSet<String>> {
        self.accounts().delegation.get(client_id).cloned()
    }

    /// Restricts (or unrestricts) the app's API access, as a Workspace admin does under
    /// "API controls": token requests then get `admin_policy_enforced`.
    pub fn set_api_access_restricted(&self, client_id: &str, restricted: bool) {
        let mut accounts = self.accounts_mut();
        if restricted {
            accounts.restricted.insert(client_id.to_string());
        } else {
            accounts.restricted.remove(client_id);
        }
    }

    pub fn service_account(&self, client_email: &str) -> Option<ServiceAccount> {
        self.accounts()
            .by_email
            .get(&client_email.to_ascii_lowercase())
            .cloned()
    }

    /// Every registered service account with its keys, delegation and restrictions.
    pub fn service_accounts(&self) -> Vec<ServiceAccountSummary> {
        let accounts = self.accounts();
        accounts
            .by_email
            .values()
            .map(|a| {
                let client_id = &a.identity.client_id;
                ServiceAccountSummary {
                    client_email: a.identity.client_email.clone(),
                    client_id: client_id.clone(),
                    project_id: a.identity.project_id.clone(),
                    key_ids: a.keys.keys().cloned().collect(),
                    disabled: a.disabled,
                    delegated_scopes: accounts
                        .delegation
                        .get(client_id)
                        .map(|s| s.iter().cloned().collect())
                        .unwrap_or_default(),
                    api_access_restricted: accounts.restricted.contains(client_id),
                }
            })
            .collect()
    }

    /// Makes every issued token expire now: the next API call with one gets 401.
    pub fn expire_all_tokens(&self) {
        let now = Instant::now();
        let mut tokens = self.tokens.write().unwrap_or_else(PoisonError::into_inner);
        for grant in tokens.values_mut() {
            grant.expires_at = now;
        }
    }

    /// Forgets every issued token of one user (its primary email).
    pub fn revoke_tokens_of(&self, subject: &str) {
        let mut tokens = self.tokens.write().unwrap_or_else(PoisonError::into_inner);
        tokens.retain(|_, g| {
            g.subject
                .as_deref()
                .is_none_or(|s| !s.eq_ignore_ascii_case(subject))
        });
    }

    /// The grant behind a bearer token, if it exists and has not expired.
    pub fn lookup(&self, token: &str) -> Option<AccessGrant> {
        let tokens = self.tokens.read().unwrap_or_else(PoisonError::into_inner);
        let grant = tokens.get(token)?;
        (grant.expires_at > Instant::now()).then(|| grant.clone())
    }

    /// Checks an API request's `Authorization: Bearer` header.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<AccessGrant, ApiError> {
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or_else(ApiError::login_required)?;
        let value = value.to_str().map_err(|_| ApiError::auth_error())?;
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(ApiError::auth_error()),
        };
        self.lookup(token).ok_or_else(ApiError::auth_error)
    }

    fn store_token(&self, grant: AccessGrant) -> String {
        let mut bytes = [0u8; 96];
        rand::thread_rng().fill_bytes(&mut bytes);
        let token = format!("ya29.c.{}", URL_SAFE_NO_PAD.encode(bytes));
        let mut tokens = self.tokens.write().unwrap_or_else(PoisonError::into_inner);
        // Drop long-dead tokens now and then so the map does not grow without bound.
        if tokens.len() >= 4096 && tokens.len().is_power_of_two() {
            let horizon = Instant::now();
            tokens.retain(|_, g| g.expires_at > horizon);
        }
        tokens.insert(token.clone(), grant);
        token
    }

    /// The JWT-bearer grant: verifies `assertion` and issues an access token, or answers
    /// exactly as Google's token endpoint would.
    pub fn grant_jwt_bearer(
        &self,
        assertion: &str,
        org: &Organization,
    ) -> Result<TokenResponse, TokenError> {
        let jwt =
            ParsedJwt::parse(assertion).ok_or_else(|| invalid_grant("Invalid JWT: Bad Request"))?;
        let claims = &jwt.claims;
        let issuer = claims
            .get("iss")
            .and_then(Value::as_str)
            .unwrap_or_default();

        let accounts = self.accounts();
        let account = accounts
            .by_email
            .get(&issuer.to_ascii_lowercase())
            .ok_or_else(|| invalid_grant("Invalid JWT: No valid verifier found for issuer."))?;
        if !jwt.signature_verifies(account) {
            return Err(invalid_grant("Invalid JWT Signature."));
        }
        if account.disabled {
            return Err(invalid_grant("Robot is disabled."));
        }
        check_lifetime(claims)?;
        self.check_audience(claims)?;
        let requested = requested_scopes(claims)?;

        let client_id = account.identity.client_id.clone();
        let subject = match claims.get("sub").and_then(Value::as_str) {
            Some(sub) => {
                let primary = resolve_subject(org, sub)?;
                let delegated = accounts.delegation.get(&client_id);
                let all_delegated =
                    delegated.is_some_and(|d| requested.iter().all(|s| d.contains(s)));
                if !all_delegated {
                    return Err(TokenError::new(
                        StatusCode::UNAUTHORIZED,
                        "unauthorized_client",
                        UNAUTHORIZED_CLIENT,
                    ));
                }
                Some(primary)
            }
            None => None,
        };
        if accounts.restricted.contains(&client_id) {
            return Err(TokenError::new(
                StatusCode::BAD_REQUEST,
                "admin_policy_enforced",
                "Access to this app has been restricted by your administrator.",
            ));
        }
        drop(accounts);

        let access = ApiAccess::from_scopes(requested.iter().map(String::as_str));
        let grant = AccessGrant {
            subject: subject.map(Arc::from),
            client_id: Arc::from(client_id),
            scopes: Arc::from(requested),
            access,
            expires_at: Instant::now() + self.token_lifetime,
        };
        let access_token = self.store_token(grant);
        Ok(TokenResponse {
            access_token,
            // Google reports one second less than the lifetime (3599 for an hour).
            expires_in: self.token_lifetime.as_secs().saturating_sub(1),
            token_type: "Bearer",
        })
    }

    fn check_audience(&self, claims: &Value) -> Result<(), TokenError> {
        let accepted = |aud: &str| {
            let aud = aud.trim_end_matches('/');
            aud == self.token_uri.trim_end_matches('/') || GOOGLE_TOKEN_AUDIENCES.contains(&aud)
        };
        let ok = match claims.get("aud") {
            Some(Value::String(aud)) => accepted(aud),
            Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(accepted),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(invalid_grant("Invalid JWT: Failed audience check."))
        }
    }
}

/// The token endpoint's success body. `expires_in` is an integer: some clients fail on
/// a string.
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub expires_in: u64,
    pub token_type: &'static str,
}

fn invalid_grant(description: &str) -> TokenError {
    TokenError::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

/// A JWT split into its parts; the signature is checked separately.
struct ParsedJwt {
    header: Value,
    claims: Value,
    signing_input: String,
    signature: Vec<u8>,
}

impl ParsedJwt {
    fn parse(assertion: &str) -> Option<Self> {
        let mut parts = assertion.trim().split('.');
        let (header, claims, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        Some(ParsedJwt {
            header: serde_json::from_slice(&decode_segment(header)?).ok()?,
            claims: serde_json::from_slice(&decode_segment(claims)?).ok()?,
            signing_input: format!("{header}.{claims}"),
            signature: decode_segment(signature)?,
        })
    }

    /// RS256 against the key named by `kid`, or any of the issuer's keys without one.
    fn signature_verifies(&self, account: &ServiceAccount) -> bool {
        if self.header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return false;
        }
        let Ok(signature) = Signature::try_from(self.signature.as_slice()) else {
            return false;
        };
        let verifies = |key: &RsaPublicKey| {
            VerifyingKey::<Sha256>::new(key.clone())
                .verify(self.signing_input.as_bytes(), &signature)
                .is_ok()
        };
        match self.header.get("kid").and_then(Value::as_str) {
            Some(kid) => account.keys.get(kid).is_some_and(verifies),
            None => account.keys.values().any(verifies),
        }
    }
}

/// Decodes one JWT segment leniently: padding or not, URL-safe or standard alphabet.
/// The user a JWT-bearer assertion asks a token for (`sub`, else `iss`), read without
/// verifying anything: only for counting requests.
pub(crate) fn assertion_subject(params: &HashMap<String, String>) -> String {
    let claims = params
        .get("assertion")
        .and_then(|jwt| jwt.split('.').nth(1))
        .and_then(decode_segment)
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok());
    let claim = |name: &str| {
        claims
            .as_ref()
            .and_then(|c| c.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_ascii_lowercase)
    };
    claim("sub")
        .or_else(|| claim("iss"))
        .unwrap_or_else(|| "(no subject)".to_string())
}

fn decode_segment(segment: &str) -> Option<Vec<u8>> {
    let trimmed = segment.trim_end_matches('=');
    URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| STANDARD_NO_PAD.decode(trimmed))
        .ok()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn claim_seconds(claims: &Value, name: &str) -> Option<i64> {
    let value = claims.get(name)?;
    value.as_i64().or_else(|| value.as_f64().map(|f| f as i64))
}

fn check_lifetime(claims: &Value) -> Result<(), TokenError> {
    let (Some(iat), Some(exp)) = (claim_seconds(claims, "iat"), claim_seconds(claims, "exp"))
    else {
        return Err(invalid_grant(SHORT_LIVED));
    };
    let now = unix_now();
    let too_long = exp - iat > MAX_ASSERTION_LIFETIME_SECS;
    let inverted = exp < iat;
    let expired = exp < now - CLOCK_SKEW_SECS;
    let from_future = iat > now + CLOCK_SKEW_SECS;
    if too_long || inverted || expired || from_future {
        return Err(invalid_grant(SHORT_LIVED));
    }
    Ok(())
}

/// A scope Google would recognize: its OAuth scope URLs and the OpenID shorthands.
fn is_google_scope(scope: &str) -> bool {
    if matches!(scope, "openid" | "email" | "profile") || scope == scopes::MAIL {
        return true;
    }
    scope
        .strip_prefix("https://www.googleapis.com/auth/")
        .is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        })
}

fn requested_scopes(claims: &Value) -> Result<Vec<String>, TokenError> {
    let invalid_scope = || {
        TokenError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.",
        )
    };
    let scope = claims
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let requested: Vec<String> = scope.split_whitespace().map(str::to_string).collect();
    if requested.is_empty() || !requested.iter().all(|s| is_google_scope(s)) {
        return Err(invalid_scope());
    }
    Ok(requested)
}

/// The impersonated user's primary email (lowercase), from its primary address or
/// numeric id. Aliases are not accepted, nor are suspended users (decision: Google's
/// exact answer for a suspended subject is unverified; see docs/emulator.md).
fn resolve_subject(org: &Organization, sub: &str) -> Result<String, TokenError> {
    let user = org
        .users
        .iter()
        .find(|u| u.primary_email.eq_ignore_ascii_case(sub) || u.id == sub);
    match user {
        Some(u) if u.deleted => Err(invalid_grant("The account has been deleted")),
        Some(u) if !u.suspended => Ok(u.primary_email.to_ascii_lowercase()),
        _ => Err(invalid_grant("Invalid email or User ID")),
    }
}

/// The token request's parameters, from a form (what clients send) or a JSON body.
pub(crate) fn token_request_params(headers: &HeaderMap, body: &[u8]) -> HashMap<String, String> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    if is_json {
        let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        return value
            .as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
    }
    form_urlencoded::parse(body).into_owned().collect()
}

/// Dispatches a token request on its `grant_type`.
pub(crate) fn token_request(
    registry: &AuthRegistry,
    params: &HashMap<String, String>,
    org: &Organization,
) -> Result<TokenResponse, TokenError> {
    let grant_type = params.get("grant_type").ok_or_else(|| {
        TokenError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required parameter is missing: grant_type",
        )
    })?;
    if grant_type != JWT_BEARER_GRANT {
        return Err(TokenError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!("Invalid grant_type: {grant_type}"),
        ));
    }
    let assertion = params.get("assertion").ok_or_else(|| {
        TokenError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: assertion",
        )
    })?;
    registry.grant_jwt_bearer(assertion, org)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_decode_with_or_without_padding_in_either_alphabet() {
        assert_eq!(decode_segment("_-8").unwrap(), vec![0xff, 0xef]);
        assert_eq!(decode_segment("/+8=").unwrap(), vec![0xff, 0xef]);
    }

    #[test]
    fn google_scopes_are_recognized() {
        assert!(is_google_scope(scopes::GMAIL_READONLY));
        assert!(is_google_scope(scopes::MAIL));
        assert!(!is_google_scope("https://example.com/auth/gmail"));
        assert!(!is_google_scope("https://www.googleapis.com/auth/"));
    }

    #[test]
    fn metadata_scope_restricts_even_with_broader_scopes() {
        let access = ApiAccess::from_scopes([scopes::GMAIL_READONLY, scopes::GMAIL_METADATA]);
        assert!(access.gmail_read && access.gmail_metadata);
        assert!(!access.directory_users_read);
    }
}
