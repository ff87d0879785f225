//! Access tokens: the OAuth 2.0 JWT-bearer grant, for impersonated users (domain-wide
//! delegation, `sub` = the user) or for the service account itself (no `sub`: its own
//! Cloud project's APIs, such as Pub/Sub), cached per (subject, scopes) until shortly
//! before expiry.

use crate::api::GOOGLE_TOKEN_URL;
use crate::error::{PROVIDER, token_failure};
use crate::keyfile::ServiceAccountKey;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use serde::Serialize;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tributary_core::{ProviderDetail, ProviderError};
use tributary_http::{MintedToken, TokenCache};

/// Re-exported from tributary-http, so callers keep naming them from this crate.
pub use tributary_http::{AccessToken, DEFAULT_REFRESH_MARGIN};

const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The longest assertion lifetime Google accepts.
const ASSERTION_LIFETIME_SECS: u64 = 3600;

/// Mints and caches access tokens for the users a service account impersonates, and for
/// the service account itself.
pub struct TokenProvider {
    key: Arc<ServiceAccountKey>,
    http: reqwest::Client,
    /// The operator's token endpoint; the key's own `token_uri` is never requested.
    token_url: reqwest::Url,
    cache: TokenCache<CacheKey>,
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenProvider")
            .field("client_email", &self.key.client_email())
            .field("token_url", &self.token_url.as_str())
            .field("refresh_margin", &self.cache.refresh_margin())
            .finish_non_exhaustive()
    }
}

/// Scopes sorted and deduplicated, so the order callers list them in does not matter.
/// No subject: the service account's own token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    subject: Option<String>,
    scopes: String,
}

impl CacheKey {
    fn new(subject: Option<&str>, scopes: &[&str]) -> Self {
        let mut sorted: Vec<&str> = scopes.iter().map(|s| s.trim()).collect();
        sorted.sort_unstable();
        sorted.dedup();
        CacheKey {
            subject: subject.map(|s| s.trim().to_ascii_lowercase()),
            scopes: sorted.join(" "),
        }
    }

    /// Who the token is for, in log lines.
    fn principal(&self) -> &str {
        self.subject
            .as_deref()
            .unwrap_or("(the service account itself)")
    }
}

#[derive(Serialize)]
struct JwtHeader<'a> {
    alg: &'static str,
    typ: &'static str,
    kid: &'a str,
}

#[derive(Serialize)]
struct JwtClaims<'a> {
    iss: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

impl TokenProvider {
    /// Tokens for `key`, minted at `token_url` (the server's configured endpoint) through
    /// `http`, which must not follow redirects.
    pub fn new(
        key: Arc<ServiceAccountKey>,
        http: reqwest::Client,
        token_url: reqwest::Url,
    ) -> Self {
        TokenProvider {
            key,
            http,
            token_url,
            cache: TokenCache::new(DEFAULT_REFRESH_MARGIN),
        }
    }

    /// Refresh tokens this long before they expire (default 5 minutes). For tokens
    /// living less than twice the margin, half their lifetime is used instead, so a
    /// short-lived token is still reused.
    pub fn with_refresh_margin(mut self, margin: Duration) -> Self {
        self.cache = TokenCache::new(margin);
        self
    }

    pub fn key(&self) -> &ServiceAccountKey {
        &self.key
    }

    /// A token for `subject` (the impersonated user's address) with `scopes`: the cached
    /// one while it is fresh, else a new one from the configured token endpoint.
    pub async fn token(
        &self,
        subject: &str,
        scopes: &[&str],
    ) -> Result<AccessToken, ProviderError> {
        self.token_as(Some(subject), scopes).await
    }

    /// The service account's own token (a grant without `sub`), for the APIs of its own
    /// Cloud project such as Pub/Sub: no user is impersonated.
    pub async fn own_token(&self, scopes: &[&str]) -> Result<AccessToken, ProviderError> {
        self.token_as(None, scopes).await
    }

    /// A token for `subject`, or for the service account itself when `None`.
    pub(crate) async fn token_as(
        &self,
        subject: Option<&str>,
        scopes: &[&str],
    ) -> Result<AccessToken, ProviderError> {
        let key = CacheKey::new(subject, scopes);
        self.cache.get_or_mint(&key, || self.mint(&key)).await
    }

    /// Forgets `token` (an API refused it) so the next call mints a new one. A token
    /// that has already been replaced is left alone.
    pub async fn invalidate(&self, subject: &str, scopes: &[&str], token: &AccessToken) {
        self.invalidate_as(Some(subject), scopes, token).await;
    }

    /// [`TokenProvider::invalidate`] for `subject`, or the service account's own token.
    pub(crate) async fn invalidate_as(
        &self,
        subject: Option<&str>,
        scopes: &[&str],
        token: &AccessToken,
    ) {
        let key = CacheKey::new(subject, scopes);
        self.cache.invalidate(&key, token).await;
    }

    async fn mint(&self, key: &CacheKey) -> Result<MintedToken, ProviderError> {
        let assertion = self.assertion(key)?;
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", JWT_BEARER_GRANT)
            .append_pair("assertion", &assertion)
            .finish();
        // Debug-formatted: the subject is an address a tenant entered and the error holds
        // Google's words; neither may start a log line of its own.
        tributary_http::request_token(&self.http, &self.token_url, form, PROVIDER, token_failure)
            .await
            .inspect(|token| {
                tracing::debug!(subject = ?key.principal(), scopes = %key.scopes, lifetime = ?token.lifetime, "token minted");
            })
            .inspect_err(|error| {
                tracing::warn!(subject = ?key.principal(), scopes = %key.scopes, error = ?error.to_string(), "token request failed");
            })
    }

    /// The signed JWT: RS256, `kid` = the key's id, `aud` = Google's token endpoint, the
    /// audience Google requires whatever address the request goes to (the emulator
    /// accepts it too).
    fn assertion(&self, key: &CacheKey) -> Result<String, ProviderError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| clock_error())?
            .as_secs();
        let header = JwtHeader {
            alg: "RS256",
            typ: "JWT",
            kid: self.key.private_key_id(),
        };
        let claims = JwtClaims {
            iss: self.key.client_email(),
            sub: key.subject.as_deref(),
            scope: &key.scopes,
            aud: GOOGLE_TOKEN_URL,
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        };
        let signing_input = format!("{}.{}", encode_json(&header), encode_json(&claims));
        // Randomized signing blinds the RSA operation against timing attacks.
        let signature = self
            .key
            .private_key()
            .signing_key()
            .sign_with_rng(&mut rand::thread_rng(), signing_input.as_bytes());
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        ))
    }
}

fn encode_json(value: &impl Serialize) -> String {
    // Serializing these plain structs cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
}

fn clock_error() -> ProviderError {
    ProviderError::other(ProviderDetail::new(
        "the system clock is before 1970: cannot date the token request",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_keys_ignore_scope_order_duplicates_and_subject_case() {
        let a = CacheKey::new(Some("Bob@Acme.example"), &["b", "a", "b"]);
        let b = CacheKey::new(Some("bob@acme.example"), &["a", "b"]);
        assert_eq!(a, b);
        assert_eq!(a.scopes, "a b");
        assert_ne!(a, CacheKey::new(Some("bob@acme.example"), &["a"]));
        // The service account's own token is not any user's.
        assert_ne!(a, CacheKey::new(None, &["a", "b"]));
    }
}
