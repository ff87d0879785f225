//! What every provider connector (`tributary-google`, `tributary-microsoft`, later IMAP's
//! HTTP parts) does the same way when it talks HTTP, so the security rules of
//! docs/security.md are written once:
//! - the client follows no redirect: a redirect would send the request, credentials
//!   included, wherever the answer says ([`client_builder`], [`redirect_refused`]);
//! - an answer that is not the provider's own error format is described by status,
//!   content type and length, never quoted ([`describe_answer`], [`not_an_error_answer`],
//!   [`malformed_answer`]);
//! - a failure to get an answer at all says its whole cause on one line
//!   ([`transport_failure`]).

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
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
    fn redirects_are_named_by_their_status() {
        let detail = redirect_refused("Google", StatusCode::TEMPORARY_REDIRECT);
        let error = ProviderError::other(detail);
        assert!(error.message().contains("307"), "{error}");
        assert!(error.message().contains("redirect"), "{error}");
        assert_eq!(error.status(), Some(307));
    }
}
