//! Google's failures mapped onto the provider-neutral taxonomy
//! ([`tributary_core::ProviderError`]), keeping Google's own message, status and reason.
//!
//! Two error shapes exist: the OAuth token endpoint's flat
//! `{"error","error_description"}` and the APIs' envelope
//! `{"error":{"code","message","errors":[{"reason",..}],"status"}}`.

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::Deserialize;
use std::time::Duration;
use tributary_core::{ProviderDetail, ProviderError};

/// Which API call failed: a 404 means different things to different calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApiCall {
    /// `history.list`: 404 means the start history id is too old (full resync).
    HistoryList,
    /// A call on one entity (`messages.get`, `labels.get`): 404 means it is gone, which
    /// the caller reports as `Ok(None)`.
    EntityGet,
    /// Anything else: 404 is unexpected.
    Other,
}

/// What an API answer that was not a success comes to; `Gone` is a 404 on a
/// single-entity call.
pub(crate) use tributary_http::ApiFailure;

#[derive(Debug, Deserialize)]
struct Envelope {
    error: EnvelopeError,
}

#[derive(Debug, Deserialize)]
struct EnvelopeError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    errors: Vec<ErrorItem>,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorItem {
    #[serde(default)]
    reason: Option<String>,
}

/// Classifies a non-success API answer.
pub(crate) fn api_failure(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    call: ApiCall,
) -> ApiFailure {
    if status.is_redirection() {
        return ApiFailure::Error(ProviderError::other(redirect_refused(status)));
    }
    let detail = api_detail(status, headers, body);
    let reason = detail.reason.clone().unwrap_or_default();
    match status.as_u16() {
        401 => ApiFailure::TokenRejected(detail),
        404 => match call {
            ApiCall::HistoryList => ApiFailure::Error(ProviderError::cursor_gone(detail)),
            ApiCall::EntityGet => ApiFailure::Gone,
            ApiCall::Other => ApiFailure::Error(ProviderError::other(detail)),
        },
        429 | 408 | 500..=599 => ApiFailure::Error(transient(detail, headers)),
        403 if is_rate_limit(&reason) => ApiFailure::Error(transient(detail, headers)),
        // insufficientPermissions (scope missing from the token), forbidden ("Delegation
        // denied", "Not Authorized to access this resource/api"), accessNotConfigured (the
        // API is off in the Cloud project), domainPolicy: all need an administrator.
        403 => ApiFailure::Error(ProviderError::unauthorized(detail)),
        // "Mail service not enabled" (no Gmail for this user) and "Precondition check
        // failed." (the same seen from a token impersonating nobody).
        400 if reason == "failedPrecondition" => {
            ApiFailure::Error(ProviderError::unauthorized(detail))
        }
        _ => ApiFailure::Error(ProviderError::other(detail)),
    }
}

/// Google's throttling reasons (google-api-python-client retries exactly on these 403s).
fn is_rate_limit(reason: &str) -> bool {
    matches!(
        reason,
        "userRateLimitExceeded" | "rateLimitExceeded" | "quotaExceeded" | "dailyLimitExceeded"
    )
}

/// Google's message, status and reason from an envelope. A body that is not one is
/// described (status, content type, length), never quoted: whatever answered may not be
/// Google, and its words must not reach the admin, the API or the audit log.
fn api_detail(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ProviderDetail {
    let detail = match serde_json::from_slice::<Envelope>(body) {
        Ok(Envelope { error }) => {
            let reason = error
                .errors
                .into_iter()
                .find_map(|item| item.reason)
                .or(error.status);
            let mut detail = ProviderDetail::new(error.message);
            detail.reason = reason;
            detail
        }
        Err(_) => ProviderDetail::new(not_an_error_answer(status, headers, body)),
    };
    detail.with_status(status.as_u16())
}

fn transient(detail: ProviderDetail, headers: &HeaderMap) -> ProviderError {
    let retry_after = retry_after(headers, &detail.message, Utc::now());
    ProviderError::transient(detail, retry_after)
}

/// When to retry, from the `Retry-After` header (seconds or an HTTP date) and from the
/// instant Gmail writes into its per-user rate-limit message ("Retry after
/// 2024-03-01T10:00:31.250Z"). The message is exact where the header is rounded up to
/// whole seconds, but it depends on our clock agreeing with Google's: the header, when
/// present, caps it.
pub(crate) fn retry_after(
    headers: &HeaderMap,
    message: &str,
    now: DateTime<Utc>,
) -> Option<Duration> {
    let from_header = headers
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| parse_retry_after_header(value, now));
    let from_message = retry_instant_in_message(message).map(|instant| until(instant, now));
    match (from_header, from_message) {
        (Some(header), Some(message)) => Some(header.min(message)),
        (header, message) => header.or(message),
    }
}

fn parse_retry_after_header(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    DateTime::parse_from_rfc2822(value)
        .ok()
        .map(|instant| until(instant.with_timezone(&Utc), now))
}

fn retry_instant_in_message(message: &str) -> Option<DateTime<Utc>> {
    const MARKER: &str = "Retry after ";
    let start = message.find(MARKER)? + MARKER.len();
    let instant = message[start..].split_whitespace().next()?;
    DateTime::parse_from_rfc3339(instant)
        .ok()
        .map(|instant| instant.with_timezone(&Utc))
}

fn until(instant: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (instant - now).to_std().unwrap_or(Duration::ZERO)
}

/// The token endpoint's flat error body.
#[derive(Debug, Deserialize)]
struct TokenErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Classifies a failed token request (HTTP status and body).
///
/// - `invalid_grant` (bad signature / deleted key, unknown issuer, disabled service
///   account, unknown or deleted user, clock skew, wrong audience), `invalid_client`,
///   `disabled_client` → authentication error.
/// - `unauthorized_client` (no delegation, or a requested scope not delegated),
///   `admin_policy_enforced`, `access_denied` → unauthorized.
/// - `invalid_scope` → unauthorized too: a scope Google does not accept cannot work until
///   the requested scopes change, so the link should stop rather than retry.
/// - `internal_failure`, `server_error`, `temporarily_unavailable`, 5xx, 408, 429 →
///   transient.
/// - Anything else (`invalid_request`, `unsupported_grant_type`: our bugs) → other.
pub(crate) fn token_failure(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ProviderError {
    if status.is_redirection() {
        return ProviderError::other(redirect_refused(status));
    }
    let parsed = serde_json::from_slice::<TokenErrorBody>(body).ok();
    let Some(TokenErrorBody {
        error,
        error_description,
    }) = parsed
    else {
        let detail = ProviderDetail::new(not_an_error_answer(status, headers, body))
            .with_status(status.as_u16());
        return if is_transient_status(status) {
            transient(detail, headers)
        } else {
            ProviderError::other(detail)
        };
    };
    let detail = ProviderDetail::new(error_description.unwrap_or_else(|| error.clone()))
        .with_status(status.as_u16())
        .with_reason(error.clone());
    match error.as_str() {
        "invalid_grant" | "invalid_client" | "disabled_client" => {
            ProviderError::authentication(detail)
        }
        "unauthorized_client" | "admin_policy_enforced" | "access_denied" | "invalid_scope" => {
            ProviderError::unauthorized(detail)
        }
        "internal_failure" | "server_error" | "temporarily_unavailable" => {
            transient(detail, headers)
        }
        _ if is_transient_status(status) => transient(detail, headers),
        _ => ProviderError::other(detail),
    }
}

fn is_transient_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500..=599)
}

/// The provider's name in the descriptions [`tributary_http`] writes.
pub(crate) const PROVIDER: &str = "Google";

fn not_an_error_answer(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> String {
    tributary_http::not_an_error_answer(PROVIDER, status, headers, body)
}

fn redirect_refused(status: StatusCode) -> ProviderDetail {
    tributary_http::redirect_refused(PROVIDER, status)
}

/// A success answer we could not use, for a reason of our own wording.
pub(crate) fn unreadable_answer(what: &str, problem: &str) -> ProviderError {
    tributary_http::unreadable_answer(PROVIDER, what, problem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::CONTENT_TYPE;
    use reqwest::header::HeaderValue;
    use tributary_core::ProviderErrorKind;

    fn envelope(code: u16, reason: &str, message: &str) -> Vec<u8> {
        serde_json::json!({"error": {"code": code, "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
            "status": "X"}})
        .to_string()
        .into_bytes()
    }

    fn classify(code: u16, reason: &str, message: &str, call: ApiCall) -> ApiFailure {
        let status = StatusCode::from_u16(code).unwrap();
        api_failure(
            status,
            &HeaderMap::new(),
            &envelope(code, reason, message),
            call,
        )
    }

    fn kind_of(failure: ApiFailure) -> ProviderErrorKind {
        match failure {
            ApiFailure::Error(error) => error.kind(),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn envelope_errors_map_to_the_taxonomy() {
        use ProviderErrorKind::*;
        let cases = [
            (403, "insufficientPermissions", Unauthorized),
            (403, "forbidden", Unauthorized),
            (403, "accessNotConfigured", Unauthorized),
            (400, "failedPrecondition", Unauthorized),
            (403, "userRateLimitExceeded", Transient),
            (403, "rateLimitExceeded", Transient),
            (429, "rateLimitExceeded", Transient),
            (500, "backendError", Transient),
            (503, "backendError", Transient),
            (400, "invalidArgument", Other),
            (404, "notFound", Other),
        ];
        for (code, reason, kind) in cases {
            let failure = classify(code, reason, "m", ApiCall::Other);
            assert_eq!(kind_of(failure), kind, "{code} {reason}");
        }
    }

    #[test]
    fn not_found_depends_on_the_call() {
        let message = "Requested entity was not found.";
        let history = classify(404, "notFound", message, ApiCall::HistoryList);
        let ApiFailure::Error(ProviderError::CursorGone(detail)) = history else {
            panic!("{history:?}");
        };
        assert_eq!(detail.message, message);
        assert_eq!(detail.status, Some(404));
        assert_eq!(detail.reason.as_deref(), Some("notFound"));
        assert_eq!(
            classify(404, "notFound", message, ApiCall::EntityGet),
            ApiFailure::Gone
        );
    }

    #[test]
    fn rejected_tokens_are_left_to_the_caller_to_refresh() {
        let failure = classify(401, "authError", "Invalid Credentials", ApiCall::Other);
        let ApiFailure::TokenRejected(detail) = failure else {
            panic!("{failure:?}");
        };
        assert_eq!(detail.message, "Invalid Credentials");
    }

    #[test]
    fn bodies_that_are_not_envelopes_are_described_never_quoted() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        let failure = api_failure(
            StatusCode::BAD_GATEWAY,
            &headers,
            b"<html>upstream died MARKER</html>",
            ApiCall::Other,
        );
        let ApiFailure::Error(error) = failure else {
            panic!("{failure:?}");
        };
        assert!(error.is_transient());
        assert_eq!(
            error.message(),
            "HTTP 502 Bad Gateway, text/html, 33 bytes: not a Google error answer"
        );
        let empty = api_failure(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            b"",
            ApiCall::Other,
        );
        let ApiFailure::Error(error) = empty else {
            panic!("{empty:?}");
        };
        assert_eq!(
            error.message(),
            "HTTP 400 Bad Request, no content type, 0 bytes: not a Google error answer"
        );
        let token = token_failure(StatusCode::FORBIDDEN, &headers, b"<p>MARKER</p>");
        assert!(!token.message().contains("MARKER"), "{token}");
        assert_eq!(token.status(), Some(403));
    }

    #[test]
    fn redirects_are_errors_named_by_their_status() {
        for code in [301, 302, 303, 307, 308] {
            let status = StatusCode::from_u16(code).unwrap();
            let failure = api_failure(status, &HeaderMap::new(), b"MARKER", ApiCall::Other);
            let ApiFailure::Error(error) = failure else {
                panic!("{failure:?}");
            };
            assert_eq!(error.kind(), ProviderErrorKind::Other);
            assert!(error.message().contains(&code.to_string()), "{error}");
            assert!(error.message().contains("redirect"), "{error}");
            let token = token_failure(status, &HeaderMap::new(), b"{\"error\": \"MARKER\"}");
            assert!(token.message().contains(&code.to_string()), "{token}");
            assert!(!token.message().contains("MARKER"), "{token}");
        }
    }

    #[test]
    fn retry_after_takes_the_message_instant_capped_by_the_header() {
        let now = DateTime::parse_from_rfc3339("2024-03-01T10:00:30Z")
            .unwrap()
            .with_timezone(&Utc);
        let message = "User-rate limit exceeded.  Retry after 2024-03-01T10:00:31.250Z";
        let mut headers = HeaderMap::new();
        assert_eq!(
            retry_after(&headers, message, now),
            Some(Duration::from_millis(1250))
        );
        headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(
            retry_after(&headers, message, now),
            Some(Duration::from_millis(1250))
        );
        // Our clock behind Google's would make the message's wait too long.
        headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        assert_eq!(
            retry_after(&headers, message, now),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            retry_after(&headers, "Quota exceeded", now),
            Some(Duration::from_secs(1))
        );
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Fri, 01 Mar 2024 10:00:33 GMT"),
        );
        assert_eq!(
            retry_after(&headers, "x", now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(retry_after(&HeaderMap::new(), "Backend Error", now), None);
    }

    #[test]
    fn token_errors_map_to_the_taxonomy_keeping_the_description() {
        use ProviderErrorKind::*;
        let cases = [
            (
                400,
                "invalid_grant",
                "Invalid JWT Signature.",
                AuthenticationError,
            ),
            (
                400,
                "invalid_grant",
                "Robot is disabled.",
                AuthenticationError,
            ),
            (
                400,
                "invalid_grant",
                "Invalid email or User ID",
                AuthenticationError,
            ),
            (
                400,
                "invalid_grant",
                "The account has been deleted",
                AuthenticationError,
            ),
            (
                401,
                "unauthorized_client",
                "Client is unauthorized",
                Unauthorized,
            ),
            (400, "admin_policy_enforced", "restricted", Unauthorized),
            (400, "invalid_scope", "Invalid OAuth scope", Unauthorized),
            (500, "internal_failure", "Backend Error", Transient),
            (400, "invalid_request", "Missing assertion", Other),
            (503, "something_new", "x", Transient),
        ];
        for (code, error, description, kind) in cases {
            let body = serde_json::json!({"error": error, "error_description": description});
            let failure = token_failure(
                StatusCode::from_u16(code).unwrap(),
                &HeaderMap::new(),
                body.to_string().as_bytes(),
            );
            assert_eq!(failure.kind(), kind, "{error} {description}");
            assert_eq!(failure.message(), description);
            assert_eq!(failure.reason(), Some(error));
            assert_eq!(failure.status(), Some(code));
        }
    }

    #[test]
    fn token_answers_without_a_json_body_are_classified_by_status() {
        let gateway = token_failure(StatusCode::BAD_GATEWAY, &HeaderMap::new(), b"bad gateway");
        assert!(gateway.is_transient());
        let odd = token_failure(StatusCode::BAD_REQUEST, &HeaderMap::new(), b"?");
        assert_eq!(odd.kind(), ProviderErrorKind::Other);
    }
}
