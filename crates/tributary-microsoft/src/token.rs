//! App-only access tokens: the OAuth 2.0 client credentials grant with a client secret or
//! a signed client assertion, cached per (tenant, scope) until shortly before expiry.

use crate::credentials::{AppCredentials, CertificateCredential, ClientCredential};
use crate::error::{describe_answer, malformed_answer, token_failure, transport_failure};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Url;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use serde::{Deserialize, Deserializer};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tributary_core::{ProviderDetail, ProviderError};

const CLIENT_CREDENTIALS: &str = "client_credentials";
const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// msal's assertion lifetime.
const ASSERTION_LIFETIME_SECS: u64 = 600;
/// Refresh this long before a token expires (msal refuses cache hits under 5 minutes).
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

#[derive(Clone)]
struct CachedToken {
    token: AccessToken,
    refresh_at: Instant,
}

/// One cache entry per scope; its async mutex makes concurrent callers wait for a single
/// token request instead of each making their own.
type Slot = Arc<tokio::sync::Mutex<Option<CachedToken>>>;

/// Gets and caches app-only tokens for one tenant's app registration.
pub struct TokenProvider {
    app: AppCredentials,
    http: reqwest::Client,
    /// The tenant's token endpoint under the operator's authority host; also the
    /// assertion's audience.
    token_url: Url,
    refresh_margin: Duration,
    slots: Mutex<HashMap<String, Slot>>,
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenProvider")
            .field("tenant", &self.app.tenant)
            .field("client_id", &self.app.client_id)
            .field("token_url", &self.token_url.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(deserialize_with = "seconds")]
    expires_in: u64,
}

/// `expires_in` is a number, or a string of one (msal accepts both).
fn seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Seconds {
        Number(u64),
        Text(String),
    }
    match Seconds::deserialize(deserializer)? {
        Seconds::Number(n) => Ok(n),
        Seconds::Text(text) => text.trim().parse().map_err(serde::de::Error::custom),
    }
}

impl TokenProvider {
    pub(crate) fn new(app: AppCredentials, http: reqwest::Client, token_url: Url) -> Self {
        TokenProvider {
            app,
            http,
            token_url,
            refresh_margin: DEFAULT_REFRESH_MARGIN,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Refresh tokens this long before they expire (default 5 minutes); for tokens
    /// living less than twice the margin, half their lifetime is used instead.
    pub(crate) fn with_refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = margin;
        self
    }

    pub fn tenant(&self) -> &str {
        &self.app.tenant
    }

    pub fn client_id(&self) -> &str {
        &self.app.client_id
    }

    /// The token endpoint tokens come from.
    pub fn token_url(&self) -> &Url {
        &self.token_url
    }

    /// A token for `scope`: the cached one while it is fresh, else a new one.
    pub async fn token(&self, scope: &str) -> Result<AccessToken, ProviderError> {
        let slot = self.slot(scope);
        let mut cached = slot.lock().await;
        if let Some(entry) = cached.as_ref()
            && Instant::now() < entry.refresh_at
        {
            return Ok(entry.token.clone());
        }
        let entry = self.request(scope).await?;
        let token = entry.token.clone();
        *cached = Some(entry);
        Ok(token)
    }

    /// Forgets `token` (Graph refused it) so the next call gets a new one. A token that
    /// has already been replaced is left alone.
    pub async fn invalidate(&self, scope: &str, token: &AccessToken) {
        let slot = self.slot(scope);
        let mut cached = slot.lock().await;
        if cached.as_ref().is_some_and(|entry| &entry.token == token) {
            *cached = None;
        }
    }

    fn slot(&self, scope: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(slots.entry(scope.trim().to_string()).or_default())
    }

    fn form(&self, scope: &str) -> Result<String, ProviderError> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("client_id", &self.app.client_id)
            .append_pair("scope", scope)
            .append_pair("grant_type", CLIENT_CREDENTIALS);
        match &self.app.credential {
            // In the body, as msal sends it (HTTP Basic would work too).
            ClientCredential::Secret(secret) => {
                form.append_pair("client_secret", secret.value());
            }
            ClientCredential::Certificate(certificate) => {
                let assertion = self.assertion(certificate)?;
                form.append_pair("client_assertion_type", JWT_BEARER_ASSERTION)
                    .append_pair("client_assertion", &assertion);
            }
        }
        Ok(form.finish())
    }

    async fn request(&self, scope: &str) -> Result<CachedToken, ProviderError> {
        let body = self.form(scope)?;
        let requested_at = Instant::now();
        let response = self
            .http
            .post(self.token_url.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| transport_failure(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(|e| transport_failure(&e))?;
        if !status.is_success() {
            let error = token_failure(status, &headers, &bytes);
            // Debug-formatted: the tenant was typed by a customer and the error holds
            // Microsoft's words; neither may start a log line of its own.
            tracing::warn!(tenant = ?self.app.tenant, error = ?error.to_string(), "token request refused");
            return Err(error);
        }
        let answer: TokenAnswer = serde_json::from_slice(&bytes).map_err(|e| {
            malformed_answer("token", &describe_answer(status, &headers, &bytes), &e)
        })?;
        let lifetime = Duration::from_secs(answer.expires_in);
        let margin = self.refresh_margin.min(lifetime / 2);
        tracing::debug!(tenant = ?self.app.tenant, ?lifetime, "token issued");
        Ok(CachedToken {
            token: AccessToken {
                secret: Arc::from(answer.access_token),
                expires_at: requested_at + lifetime,
            },
            refresh_at: requested_at + lifetime - margin,
        })
    }

    /// The signed client assertion: `aud` = the token endpoint exactly, `iss` = `sub` =
    /// the client id, a fresh `jti`, valid for 10 minutes.
    fn assertion(&self, certificate: &CertificateCredential) -> Result<String, ProviderError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| {
                ProviderError::other(ProviderDetail::new(
                    "the system clock is before 1970; cannot sign a client assertion",
                ))
            })?
            .as_secs();
        let (alg, thumbprint_name, thumbprint) = certificate.header_fields();
        let mut header = serde_json::Map::new();
        header.insert("alg".into(), alg.into());
        header.insert("typ".into(), "JWT".into());
        header.insert(thumbprint_name.into(), thumbprint.into());
        let claims = serde_json::json!({
            "aud": self.token_url.as_str(),
            "iss": self.app.client_id,
            "sub": self.app.client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::Value::Object(header).to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let key = certificate.key().clone();
        let mut rng = rand::thread_rng();
        // Randomized signing blinds the RSA operation against timing attacks.
        let signature = match certificate.algorithm() {
            crate::AssertionAlgorithm::Ps256 => {
                rsa::pss::BlindedSigningKey::<sha2::Sha256>::new(key)
                    .sign_with_rng(&mut rng, signing_input.as_bytes())
                    .to_vec()
            }
            crate::AssertionAlgorithm::Rs256 => rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key)
                .sign_with_rng(&mut rng, signing_input.as_bytes())
                .to_vec(),
        };
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}
