//! App-only access tokens: the OAuth 2.0 client credentials grant with a client secret or
//! a signed client assertion, cached per (tenant, scope) until shortly before expiry.

use crate::credentials::{AppCredentials, CertificateCredential, ClientCredential};
use crate::error::{PROVIDER, token_failure};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Url;
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tributary_core::{ProviderDetail, ProviderError};
use tributary_http::{MintedToken, TokenCache};

/// Re-exported from tributary-http, so callers keep naming them from this crate.
pub use tributary_http::{AccessToken, DEFAULT_REFRESH_MARGIN};

const CLIENT_CREDENTIALS: &str = "client_credentials";
const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// msal's assertion lifetime.
const ASSERTION_LIFETIME_SECS: u64 = 600;

/// Gets and caches app-only tokens for one tenant's app registration, one per scope.
pub struct TokenProvider {
    app: AppCredentials,
    http: reqwest::Client,
    /// The tenant's token endpoint under the operator's authority host; also the
    /// assertion's audience.
    token_url: Url,
    /// By scope, trimmed.
    cache: TokenCache<String>,
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

impl TokenProvider {
    pub(crate) fn new(app: AppCredentials, http: reqwest::Client, token_url: Url) -> Self {
        TokenProvider {
            app,
            http,
            token_url,
            cache: TokenCache::new(DEFAULT_REFRESH_MARGIN),
        }
    }

    /// Refresh tokens this long before they expire (default 5 minutes); for tokens
    /// living less than twice the margin, half their lifetime is used instead.
    pub(crate) fn with_refresh_margin(mut self, margin: Duration) -> Self {
        self.cache = TokenCache::new(margin);
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
        let scope = scope.trim();
        self.cache
            .get_or_mint(&scope.to_string(), || self.request(scope))
            .await
    }

    /// Forgets `token` (Graph refused it) so the next call gets a new one. A token that
    /// has already been replaced is left alone.
    pub async fn invalidate(&self, scope: &str, token: &AccessToken) {
        self.cache
            .invalidate(&scope.trim().to_string(), token)
            .await;
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

    async fn request(&self, scope: &str) -> Result<MintedToken, ProviderError> {
        let form = self.form(scope)?;
        // Debug-formatted: the tenant was typed by a customer and the error holds
        // Microsoft's words; neither may start a log line of its own.
        tributary_http::request_token(&self.http, &self.token_url, form, PROVIDER, token_failure)
            .await
            .inspect(|token| {
                tracing::debug!(tenant = ?self.app.tenant, lifetime = ?token.lifetime, "token issued");
            })
            .inspect_err(|error| {
                tracing::warn!(tenant = ?self.app.tenant, error = ?error.to_string(), "token request failed");
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
