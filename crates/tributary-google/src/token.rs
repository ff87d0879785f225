//! Access tokens for impersonated users: the OAuth 2.0 JWT-bearer grant with
//! domain-wide delegation, cached per (subject, scopes) until shortly before expiry.

use crate::api::GOOGLE_TOKEN_URL;
use crate::error::{describe_answer, malformed_answer, token_failure, transport_failure};
use crate::keyfile::ServiceAccountKey;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tributary_core::{ProviderDetail, ProviderError};

const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The longest assertion lifetime Google accepts.
const ASSERTION_LIFETIME_SECS: u64 = 3600;
/// Refresh this long before a token expires (google-auth uses 3 min 45 s).
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// A bearer token. Its value never appears in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    secret: Arc<str>,
    expires_at: Instant,
}

impl AccessToken {
    /// The value for `Authorization: Bearer …`.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A cached token and when to stop handing it out.
#[derive(Clone)]
struct CachedToken {
    token: AccessToken,
    refresh_at: Instant,
}

/// One cache entry per (subject, scope set); its async mutex makes concurrent callers
/// wait for a single refresh instead of each minting their own.
type Slot = Arc<tokio::sync::Mutex<Option<CachedToken>>>;

/// Mints and caches access tokens for the users a service account impersonates.
pub struct TokenProvider {
    key: Arc<ServiceAccountKey>,
    http: reqwest::Client,
    /// The operator's token endpoint; the key's own `token_uri` is never requested.
    token_url: reqwest::Url,
    refresh_margin: Duration,
    slots: Mutex<HashMap<CacheKey, Slot>>,
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenProvider")
            .field("client_email", &self.key.client_email())
            .field("token_url", &self.token_url.as_str())
            .field("refresh_margin", &self.refresh_margin)
            .finish_non_exhaustive()
    }
}

/// Scopes sorted and deduplicated, so the order callers list them in does not matter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    subject: String,
    scopes: String,
}

impl CacheKey {
    fn new(subject: &str, scopes: &[&str]) -> Self {
        let mut sorted: Vec<&str> = scopes.iter().map(|s| s.trim()).collect();
        sorted.sort_unstable();
        sorted.dedup();
        CacheKey {
            subject: subject.trim().to_ascii_lowercase(),
            scopes: sorted.join(" "),
        }
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
    sub: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: u64,
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
            refresh_margin: DEFAULT_REFRESH_MARGIN,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Refresh tokens this long before they expire (default 5 minutes). For tokens
    /// living less than twice the margin, half their lifetime is used instead, so a
    /// short-lived token is still reused.
    pub fn with_refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = margin;
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
        let cache_key = CacheKey::new(subject, scopes);
        let slot = self.slot(&cache_key);
        let mut cached = slot.lock().await;
        if let Some(entry) = cached.as_ref()
            && Instant::now() < entry.refresh_at
        {
            return Ok(entry.token.clone());
        }
        let entry = self.mint(&cache_key).await?;
        let token = entry.token.clone();
        *cached = Some(entry);
        Ok(token)
    }

    /// Forgets `token` (an API refused it) so the next call mints a new one. A token
    /// that has already been replaced is left alone.
    pub async fn invalidate(&self, subject: &str, scopes: &[&str], token: &AccessToken) {
        let slot = self.slot(&CacheKey::new(subject, scopes));
        let mut cached = slot.lock().await;
        if cached.as_ref().is_some_and(|entry| &entry.token == token) {
            *cached = None;
        }
    }

    fn slot(&self, key: &CacheKey) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(slots.entry(key.clone()).or_default())
    }

    async fn mint(&self, key: &CacheKey) -> Result<CachedToken, ProviderError> {
        let assertion = self.assertion(key)?;
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", JWT_BEARER_GRANT)
            .append_pair("assertion", &assertion)
            .finish();
        let requested_at = Instant::now();
        let response = self
            .http
            .post(self.token_url.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| transport_failure(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(|e| transport_failure(&e))?;
        if !status.is_success() {
            let error = token_failure(status, &headers, &bytes);
            // Debug-formatted: the subject is an address a tenant entered and the error
            // holds Google's words; neither may start a log line of its own.
            tracing::warn!(subject = ?key.subject, scopes = %key.scopes, error = ?error.to_string(), "token request refused");
            return Err(error);
        }
        let answer: TokenAnswer = serde_json::from_slice(&bytes).map_err(|e| {
            malformed_answer("token", &describe_answer(status, &headers, &bytes), &e)
        })?;
        let lifetime = Duration::from_secs(answer.expires_in);
        let margin = self.refresh_margin.min(lifetime / 2);
        tracing::debug!(subject = %key.subject, scopes = %key.scopes, ?lifetime, "token minted");
        Ok(CachedToken {
            token: AccessToken {
                secret: Arc::from(answer.access_token),
                expires_at: requested_at + lifetime,
            },
            refresh_at: requested_at + lifetime - margin,
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
            sub: &key.subject,
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
        let a = CacheKey::new("Bob@Acme.example", &["b", "a", "b"]);
        let b = CacheKey::new("bob@acme.example", &["a", "b"]);
        assert_eq!(a, b);
        assert_eq!(a.scopes, "a b");
        assert_ne!(a, CacheKey::new("bob@acme.example", &["a"]));
    }

    #[test]
    fn token_debug_hides_the_secret() {
        let token = AccessToken {
            secret: Arc::from("ya29.secret"),
            expires_at: Instant::now(),
        };
        let printed = format!("{token:?}");
        assert!(!printed.contains("ya29"), "{printed}");
        assert!(printed.contains("[redacted]"));
    }
}
