//! The authorized request path every Google API call takes: token, request, and one
//! retry with a fresh token when the API refuses the cached one (it may have expired or
//! been revoked early). There are no other retries here: pacing and retrying are the sync
//! engine's job, and it gets each failure's kind and retry hint to do it.

use crate::error::{ApiCall, PROVIDER, api_failure};
use crate::token::TokenProvider;
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode, Url};
use serde::de::DeserializeOwned;
use tributary_core::ProviderError;

/// Google's OAuth token endpoint: what Google's key files name as `token_uri`, and the
/// audience (`aud`) Google expects in every JWT-bearer assertion.
pub const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";

/// Older token endpoints Google still answers on, found in keys issued years ago.
const GOOGLE_LEGACY_TOKEN_URLS: &[&str] = &[
    "https://www.googleapis.com/oauth2/v4/token",
    "https://accounts.google.com/o/oauth2/token",
];

/// Where the APIs live: the operator's choice for the whole server, never a tenant's.
/// Defaults to Google's; [`GoogleEndpoints::from_base_url`] points every API at one
/// root, as the emulator serves them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleEndpoints {
    /// The OAuth token endpoint tokens are minted at (a key's own `token_uri` is never
    /// used: it is the tenant's to write).
    pub token_url: String,
    /// Gmail API v1 root, up to and including `/gmail/v1`.
    pub gmail_base: String,
    /// Admin SDK Directory v1 root, up to and including `/admin/directory/v1`.
    pub directory_base: String,
    /// Gmail's batch endpoint.
    pub batch_url: String,
    /// Calendar API v3 root, up to and including `/calendar/v3`.
    pub calendar_base: String,
    /// Cloud Pub/Sub's root (its paths start with `/v1`): the Gmail push topic and
    /// subscription are made there.
    pub pubsub_base: String,
}

impl Default for GoogleEndpoints {
    fn default() -> Self {
        GoogleEndpoints {
            token_url: GOOGLE_TOKEN_URL.to_string(),
            gmail_base: "https://gmail.googleapis.com/gmail/v1".to_string(),
            directory_base: "https://admin.googleapis.com/admin/directory/v1".to_string(),
            batch_url: "https://gmail.googleapis.com/batch/gmail/v1".to_string(),
            calendar_base: "https://www.googleapis.com/calendar/v3".to_string(),
            pubsub_base: "https://pubsub.googleapis.com".to_string(),
        }
    }
}

impl GoogleEndpoints {
    /// Every API under one root (`http://127.0.0.1:8085` for the emulator).
    pub fn from_base_url(base_url: &str) -> Self {
        let base = base_url.trim_end_matches('/');
        GoogleEndpoints {
            token_url: format!("{base}/token"),
            gmail_base: format!("{base}/gmail/v1"),
            directory_base: format!("{base}/admin/directory/v1"),
            batch_url: format!("{base}/batch/gmail/v1"),
            calendar_base: format!("{base}/calendar/v3"),
            pubsub_base: base.to_string(),
        }
    }

    /// Whether a key file's `token_uri` names this server's token endpoint (Google's
    /// older token addresses too, when the endpoint is Google's). Anything else would be
    /// the tenant choosing where the server sends requests.
    pub fn accepts_token_uri(&self, token_uri: &str) -> bool {
        let Some(given) = normalized_url(token_uri) else {
            return false;
        };
        let wanted = normalized_url(&self.token_url);
        let google = normalized_url(GOOGLE_TOKEN_URL);
        wanted.as_deref() == Some(given.as_str())
            || (wanted == google
                && GOOGLE_LEGACY_TOKEN_URLS
                    .iter()
                    .any(|legacy| normalized_url(legacy).as_deref() == Some(given.as_str())))
    }
}

/// A URL in WHATWG-normalized form (scheme and host lowercased, default port dropped),
/// without a trailing slash, so equal addresses compare equal however they are written.
fn normalized_url(text: &str) -> Option<String> {
    let url = Url::parse(text.trim()).ok()?;
    Some(url.as_str().trim_end_matches('/').to_owned())
}

/// The endpoints, parsed once.
#[derive(Debug, Clone)]
pub(crate) struct ParsedEndpoints {
    pub token_url: Url,
    pub gmail_base: Url,
    pub directory_base: Url,
    pub batch_url: Url,
    pub calendar_base: Url,
    pub pubsub_base: Url,
}

/// An endpoint that is not an http(s) URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {name} endpoint {value:?} is not an http(s) URL")]
pub struct EndpointError {
    pub name: &'static str,
    pub value: String,
}

impl ParsedEndpoints {
    pub fn parse(endpoints: &GoogleEndpoints) -> Result<Self, EndpointError> {
        let parse = |name: &'static str, value: &str| {
            Url::parse(value)
                .ok()
                .filter(|url| matches!(url.scheme(), "http" | "https") && !url.cannot_be_a_base())
                .ok_or_else(|| EndpointError {
                    name,
                    value: value.to_string(),
                })
        };
        Ok(ParsedEndpoints {
            token_url: parse("token_url", &endpoints.token_url)?,
            gmail_base: parse("gmail_base", &endpoints.gmail_base)?,
            directory_base: parse("directory_base", &endpoints.directory_base)?,
            batch_url: parse("batch_url", &endpoints.batch_url)?,
            calendar_base: parse("calendar_base", &endpoints.calendar_base)?,
            pubsub_base: parse("pubsub_base", &endpoints.pubsub_base)?,
        })
    }
}

/// `base` with `segments` appended, each percent-encoded as one path segment.
pub(crate) fn join(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// What the API answered, with the token that was used.
pub(crate) use tributary_http::Answer;

/// The shared HTTP side of the connector.
#[derive(Debug)]
pub(crate) struct Api {
    pub http: reqwest::Client,
    pub tokens: TokenProvider,
    pub endpoints: ParsedEndpoints,
    /// The endpoint Gmail push's topic and subscription were last made for
    /// ([`crate::PubSubClient::ensure_gmail_push`]).
    pub gmail_push_ready: tokio::sync::Mutex<Option<String>>,
}

impl Api {
    /// Sends the request built by `build` with a token for (`subject`, `scopes`); on 401
    /// drops that token and sends once more with a new one.
    pub async fn send(
        &self,
        subject: &str,
        scopes: &[&str],
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Answer, ProviderError> {
        self.send_as(Some(subject), scopes, build).await
    }

    /// [`Api::send`] as `subject`, or as the service account itself when `None`.
    pub async fn send_as(
        &self,
        subject: Option<&str>,
        scopes: &[&str],
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Answer, ProviderError> {
        tributary_http::send_authorized(
            &self.http,
            || self.tokens.token_as(subject, scopes),
            |token| async move { self.tokens.invalidate_as(subject, scopes, &token).await },
            build,
        )
        .await
    }

    /// A GET answered with JSON. `Ok(None)` when a single-entity call finds the entity
    /// gone (404).
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        subject: &str,
        scopes: &[&str],
        url: Url,
        call: ApiCall,
        what: &str,
    ) -> Result<Option<T>, ProviderError> {
        let answer = self
            .send(subject, scopes, |http| http.get(url.clone()))
            .await?;
        decode_answer(answer.status, &answer.headers, &answer.body, call, what)
    }
}

/// A JSON answer decoded, or its failure classified. Also used for batch parts.
pub(crate) fn decode_answer<T: DeserializeOwned>(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    call: ApiCall,
    what: &str,
) -> Result<Option<T>, ProviderError> {
    tributary_http::decode_answer(PROVIDER, status, headers, body, what, || {
        api_failure(status, headers, body, call)
    })
}

/// `Ok(None)` from a call that cannot answer "gone".
pub(crate) fn required<T>(value: Option<T>, what: &str) -> Result<T, ProviderError> {
    tributary_http::required(PROVIDER, value, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_derive_from_one_root() {
        let endpoints = GoogleEndpoints::from_base_url("http://127.0.0.1:9/");
        assert_eq!(endpoints.gmail_base, "http://127.0.0.1:9/gmail/v1");
        assert_eq!(endpoints.batch_url, "http://127.0.0.1:9/batch/gmail/v1");
        assert_eq!(endpoints.token_url, "http://127.0.0.1:9/token");
        assert_eq!(endpoints.pubsub_base, "http://127.0.0.1:9");
        assert!(ParsedEndpoints::parse(&endpoints).is_ok());
        assert!(ParsedEndpoints::parse(&GoogleEndpoints::default()).is_ok());
    }

    #[test]
    fn only_the_configured_token_endpoint_is_accepted_from_a_key() {
        let google = GoogleEndpoints::default();
        assert!(google.accepts_token_uri("https://oauth2.googleapis.com/token"));
        assert!(google.accepts_token_uri("https://oauth2.googleapis.com/token/"));
        assert!(google.accepts_token_uri("HTTPS://OAuth2.googleapis.com:443/token"));
        assert!(google.accepts_token_uri("https://accounts.google.com/o/oauth2/token"));
        assert!(!google.accepts_token_uri("http://oauth2.googleapis.com/token"));
        assert!(!google.accepts_token_uri("https://oauth2.googleapis.com.evil.test/token"));
        assert!(!google.accepts_token_uri("http://127.0.0.1:9/token"));
        let emulator = GoogleEndpoints::from_base_url("http://127.0.0.1:9");
        assert!(emulator.accepts_token_uri("http://127.0.0.1:9/token"));
        assert!(!emulator.accepts_token_uri("https://oauth2.googleapis.com/token"));
        assert!(!emulator.accepts_token_uri("http://127.0.0.1:10/token"));
    }

    #[test]
    fn bad_endpoints_are_named() {
        let endpoints = GoogleEndpoints {
            directory_base: "admin.googleapis.com".to_string(),
            ..GoogleEndpoints::default()
        };
        let error = ParsedEndpoints::parse(&endpoints).unwrap_err();
        assert_eq!(error.name, "directory_base");
    }

    #[test]
    fn joined_segments_are_escaped() {
        let base = Url::parse("https://gmail.googleapis.com/gmail/v1").unwrap();
        let url = join(&base, &["users", "me", "labels", "Label 1/x"]);
        assert_eq!(
            url.as_str(),
            "https://gmail.googleapis.com/gmail/v1/users/me/labels/Label%201%2Fx"
        );
        let slash = Url::parse("http://h/gmail/v1/").unwrap();
        assert_eq!(join(&slash, &["users"]).as_str(), "http://h/gmail/v1/users");
    }
}
