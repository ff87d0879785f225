//! What every provider connector (`tributary-google`, `tributary-microsoft`, later IMAP's
//! HTTP parts) does the same way when it talks HTTP, so the security rules of
//! docs/security.md are written once:
//! - the client follows no redirect: a redirect would send the request, credentials
//!   included, wherever the answer says ([`client_builder`], [`redirect_refused`]);
//! - an answer that is not the provider's own error format is described by status,
//!   content type and length, never quoted ([`describe_answer`], [`not_an_error_answer`],
//!   [`malformed_answer`]);
//! - a failure to get an answer at all says its whole cause on one line
//!   ([`transport_failure`]);
//! - a JSON answer is decoded, or its failure classified by the provider's table, the
//!   same way ([`decode_answer`], [`ApiFailure`]);
//! - bearer tokens are cached per key until shortly before they expire, minted once
//!   however many callers wait, and dropped when an API refuses them ([`TokenCache`]),
//!   and requested from a token endpoint the same way ([`request_token`]);
//! - an API call carries a bearer token and is sent once more with a new one when the
//!   API refuses it ([`send_authorized`]).

mod authorized;
mod token_cache;
mod token_request;

pub use authorized::{Answer, send_authorized};
pub use token_cache::{
    AccessToken, DEFAULT_REFRESH_MARGIN, MAX_TOKEN_LIFETIME, MintedToken, TokenCache,
};
pub use token_request::request_token;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde::de::DeserializeOwned;
use tributary_core::{ProviderDetail, ProviderError};

/// A client builder that never follows a redirect; the connector adds its timeouts,
/// user agent and roots.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none())
}

/// An answer described without its content: "HTTP 502 Bad Gateway, text/html, 1234
/// bytes".
pub fn describe_answer(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> String {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(str::trim)
        .filter(|value| !value.is_empty() && value.len() <= 100)
        .unwrap_or("no content type");
    let reason = status.canonical_reason().unwrap_or("");
    format!(
        "HTTP {} {reason}, {content_type}, {} bytes",
        status.as_u16(),
        body.len()
    )
}

/// A failure answer that is not `provider`'s error format, described.
pub fn not_an_error_answer(
    provider: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> String {
    format!(
        "{}: not a {provider} error answer",
        describe_answer(status, headers, body)
    )
}

/// A 3xx: provider APIs never redirect, so it is an error named by its status alone.
pub fn redirect_refused(provider: &str, status: StatusCode) -> ProviderDetail {
    ProviderDetail::new(format!(
        "HTTP {} {}: {provider} answered with a redirect, which Tributary does not follow",
        status.as_u16(),
        status.canonical_reason().unwrap_or("redirect")
    ))
    .with_status(status.as_u16())
}

/// A failure to get an answer at all: timeouts and connection failures are transient,
/// anything else (a request we could not build) is not.
pub fn transport_failure(error: &reqwest::Error) -> ProviderError {
    let detail = ProviderDetail::new(error_chain(error));
    if error.is_timeout() || error.is_connect() || error.is_request() || error.is_body() {
        ProviderError::transient(detail, None)
    } else {
        ProviderError::other(detail)
    }
}

/// Sends `request` and reads the whole answer: status, headers and body.
async fn exchange(
    request: reqwest::RequestBuilder,
) -> Result<(StatusCode, HeaderMap, bytes::Bytes), ProviderError> {
    let response = request.send().await.map_err(|e| transport_failure(&e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(|e| transport_failure(&e))?;
    Ok((status, headers, body))
}

/// The error and its sources on one line: reqwest's own message alone ("error sending
/// request") hides the cause.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A success answer we could not read, `answer` being its [`describe_answer`]. serde's
/// message can quote the answer, so only the kind of problem and where it was are kept.
pub fn malformed_answer(
    provider: &str,
    what: &str,
    answer: &str,
    error: &serde_json::Error,
) -> ProviderError {
    use serde_json::error::Category;
    let problem = match error.classify() {
        Category::Io | Category::Syntax => "not JSON",
        Category::Data => "JSON of an unexpected shape",
        Category::Eof => "cut short",
    };
    unreadable_answer(
        provider,
        what,
        &format!(
            "{answer}: {problem} (line {}, column {})",
            error.line(),
            error.column()
        ),
    )
}

/// A success answer we could not use, for a reason of our own wording.
pub fn unreadable_answer(provider: &str, what: &str, problem: &str) -> ProviderError {
    ProviderError::other(ProviderDetail::new(format!(
        "unexpected answer from {provider} ({what}): {problem}"
    )))
}

/// What an API answer that was not a success comes to, by the provider's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiFailure {
    /// 401: the access token was refused. The caller drops its cached token and retries
    /// once; a second 401 is an authentication error.
    TokenRejected(ProviderDetail),
    /// A single entity that no longer exists, which the caller reports as `Ok(None)`.
    Gone,
    Error(ProviderError),
}

/// A JSON answer from `provider` decoded, or its failure classified by `failure` (called
/// only for a non-success status). `what` names the call in errors.
pub fn decode_answer<T: DeserializeOwned>(
    provider: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
    failure: impl FnOnce() -> ApiFailure,
) -> Result<Option<T>, ProviderError> {
    if status.is_success() {
        return serde_json::from_slice(body).map(Some).map_err(|e| {
            malformed_answer(provider, what, &describe_answer(status, headers, body), &e)
        });
    }
    match failure() {
        ApiFailure::Gone => Ok(None),
        ApiFailure::Error(error) => Err(error),
        // Already refused once with a token fresh from the token endpoint.
        ApiFailure::TokenRejected(detail) => Err(ProviderError::authentication(detail)),
    }
}

/// `Ok(None)` from a call that cannot answer "gone".
pub fn required<T>(provider: &str, value: Option<T>, what: &str) -> Result<T, ProviderError> {
    value.ok_or_else(|| unreadable_answer(provider, what, "not found"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn answers_are_described_never_quoted() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        let body = b"<html>MARKER internal admin page</html>";
        let text = not_an_error_answer("Google", StatusCode::BAD_GATEWAY, &headers, body);
        assert_eq!(
            text,
            "HTTP 502 Bad Gateway, text/html, 39 bytes: not a Google error answer"
        );
        let error = serde_json::from_slice::<serde_json::Value>(body).unwrap_err();
        let unreadable = malformed_answer("Microsoft", "users", &text, &error);
        assert!(!unreadable.message().contains("MARKER"), "{unreadable}");
        assert!(unreadable.message().contains("not JSON"), "{unreadable}");
        assert_eq!(
            describe_answer(StatusCode::BAD_REQUEST, &HeaderMap::new(), b""),
            "HTTP 400 Bad Request, no content type, 0 bytes"
        );
    }

    #[test]
    fn answers_decode_or_fail_as_classified() {
        let ok = |body: &[u8]| {
            decode_answer::<u32>(
                "Google",
                StatusCode::OK,
                &HeaderMap::new(),
                body,
                "n",
                || panic!("a success is not classified"),
            )
        };
        assert_eq!(ok(b"7"), Ok(Some(7)));
        let error = ok(b"\"MARKER\"").unwrap_err();
        assert!(!error.message().contains("MARKER"), "{error}");
        assert!(error.message().contains("Google (n)"), "{error}");
        let failed = |failure: ApiFailure| {
            decode_answer::<u32>(
                "Google",
                StatusCode::NOT_FOUND,
                &HeaderMap::new(),
                b"{}",
                "n",
                || failure,
            )
        };
        assert_eq!(failed(ApiFailure::Gone), Ok(None));
        let gone = ProviderError::cursor_gone(ProviderDetail::new("gone"));
        assert_eq!(failed(ApiFailure::Error(gone.clone())), Err(gone));
        let refused = failed(ApiFailure::TokenRejected(ProviderDetail::new("no"))).unwrap_err();
        assert_eq!(
            refused.kind(),
            tributary_core::ProviderErrorKind::AuthenticationError
        );
        assert_eq!(
            required("Google", None::<u32>, "labels")
                .unwrap_err()
                .message(),
            "unexpected answer from Google (labels): not found"
        );
    }

    #[test]
    fn redirects_are_named_by_their_status() {
        let detail = redirect_refused("Google", StatusCode::TEMPORARY_REDIRECT);
        let error = ProviderError::other(detail);
        assert!(error.message().contains("307"), "{error}");
        assert!(error.message().contains("redirect"), "{error}");
        assert_eq!(error.status(), Some(307));
    }
}
