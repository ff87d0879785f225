//! Microsoft's failures mapped onto the provider-neutral taxonomy
//! ([`tributary_core::ProviderError`]), keeping Microsoft's own code and message.
//!
//! Two error shapes exist: the identity platform's flat
//! `{"error","error_description":"AADSTSnnnn: …","error_codes":[n]}` and Graph's envelope
//! `{"error":{"code","message","innerError":{…}}}`. Both tables are below, one row per
//! cause, and each row is tested.

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::Deserialize;
use std::time::Duration;
use tributary_core::{ProviderDetail, ProviderError};

/// Which Graph call failed: a 404 means different things to different calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GraphCall {
    /// A call on one mailbox item (a folder, a message): `ErrorItemNotFound` means it is
    /// gone, which the caller reports as `Ok(None)`.
    EntityGet,
    /// Anything else: a 404 is the user or the mailbox missing, or unexpected.
    Other,
}

/// What a Graph answer that was not a success comes to; `Gone` is a single item that
/// no longer exists.
pub(crate) use tributary_http::ApiFailure;

#[derive(Debug, Deserialize)]
struct Envelope {
    error: EnvelopeError,
}

#[derive(Debug, Deserialize)]
struct EnvelopeError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// How a Graph error code is classified, case-insensitively (Graph's casing varies:
/// `SyncStateNotFound`, `syncStateNotFound`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GraphClass {
    Unauthorized,
    /// The user named in the path does not exist (any more).
    UserGone,
    ItemGone,
    CursorGone,
    Transient,
}

/// Graph's codes, most specific first. A code not listed falls back on its HTTP status.
const GRAPH_CODES: &[(&str, GraphClass)] = &[
    // 403: the app lacks the directory role (User.Read.All).
    ("Authorization_RequestDenied", GraphClass::Unauthorized),
    // 403: the app lacks the mail role, or an application access policy (or RBAC for
    // Applications scope) excludes the mailbox ("Access to OData is disabled.").
    ("ErrorAccessDenied", GraphClass::Unauthorized),
    ("AccessDenied", GraphClass::Unauthorized),
    // 404: no Exchange Online mailbox: unlicensed, soft-deleted, on-premises, disabled.
    ("MailboxNotEnabledForRESTAPI", GraphClass::Unauthorized),
    ("MailboxNotSupportedForRESTAPI", GraphClass::Unauthorized),
    // 404: the user in the path is not in the directory (deleted).
    ("Request_ResourceNotFound", GraphClass::UserGone),
    ("ResourceNotFound", GraphClass::UserGone),
    ("ErrorInvalidUser", GraphClass::UserGone),
    // 404: the folder or message is not there.
    ("ErrorItemNotFound", GraphClass::ItemGone),
    // 410 (and resyncRequired): the delta link's state is gone; start a new round.
    ("SyncStateNotFound", GraphClass::CursorGone),
    ("ResyncRequired", GraphClass::CursorGone),
    ("SyncStateInvalid", GraphClass::CursorGone),
    // 424 in a batch: a request that never ran because the one it depends on failed.
    ("FailedDependency", GraphClass::Transient),
    // 429 / 503 families.
    ("ApplicationThrottled", GraphClass::Transient),
    ("TooManyRequests", GraphClass::Transient),
    ("ServiceNotAvailable", GraphClass::Transient),
    ("ErrorServerBusy", GraphClass::Transient),
    ("ErrorTooManyObjectsOpened", GraphClass::Transient),
    ("ErrorTimeoutExpired", GraphClass::Transient),
    ("ErrorInternalServerTransientError", GraphClass::Transient),
    ("generalException", GraphClass::Transient),
];

fn graph_class(code: &str) -> Option<GraphClass> {
    GRAPH_CODES
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(code))
        .map(|(_, class)| *class)
}

/// Classifies a non-success Graph answer.
pub(crate) fn graph_failure(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    call: GraphCall,
) -> ApiFailure {
    if status.is_redirection() {
        return ApiFailure::Error(ProviderError::other(redirect_refused(status)));
    }
    let detail = graph_detail(status, headers, body);
    if status == StatusCode::UNAUTHORIZED {
        return ApiFailure::TokenRejected(detail);
    }
    let class = detail.reason.as_deref().and_then(graph_class);
    let error = match class {
        Some(GraphClass::Unauthorized) => ProviderError::unauthorized(detail),
        // The core's taxonomy: a user who does not exist any more is an authentication
        // error, as for Google (the credentials cannot act for that user).
        Some(GraphClass::UserGone) => ProviderError::authentication(detail),
        Some(GraphClass::ItemGone) if call == GraphCall::EntityGet => return ApiFailure::Gone,
        Some(GraphClass::CursorGone) => ProviderError::cursor_gone(detail),
        Some(GraphClass::Transient) => transient(detail, headers),
        Some(GraphClass::ItemGone) | None => by_status(status, detail, headers),
    };
    ApiFailure::Error(error)
}

/// A code not in the table: 410 is still a gone cursor, 403 a refusal, and throttling
/// and server errors are transient whatever their code.
fn by_status(status: StatusCode, detail: ProviderDetail, headers: &HeaderMap) -> ProviderError {
    match status.as_u16() {
        410 => ProviderError::cursor_gone(detail),
        403 => ProviderError::unauthorized(detail),
        code if is_transient_status(code) => transient(detail, headers),
        _ => ProviderError::other(detail),
    }
}

/// Microsoft's code and message from an envelope. A body that is not one is described
/// (status, content type, length), never quoted: whatever answered may not be
/// Microsoft, and its words must not reach the admin, the API or the audit log.
fn graph_detail(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ProviderDetail {
    let detail = match serde_json::from_slice::<Envelope>(body) {
        Ok(Envelope { error }) if !error.code.is_empty() || !error.message.is_empty() => {
            let mut detail = ProviderDetail::new(one_line(&error.message));
            if !error.code.is_empty() {
                detail.reason = Some(error.code);
            }
            detail
        }
        _ => ProviderDetail::new(not_an_error_answer(status, headers, body)),
    };
    detail.with_status(status.as_u16())
}

fn is_transient_status(code: u16) -> bool {
    matches!(code, 408 | 429 | 500..=599)
}

fn transient(detail: ProviderDetail, headers: &HeaderMap) -> ProviderError {
    ProviderError::transient(detail, retry_after(headers, Utc::now()))
}

/// The `Retry-After` header: seconds (Graph writes fractions: `2.128`) or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::from_secs_f64(seconds.min(86_400.0)));
    }
    DateTime::parse_from_rfc2822(value).ok().map(|instant| {
        (instant.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
    })
}

/// Microsoft's descriptions span lines (`AADSTS…\r\nTrace ID: …\r\nCorrelation ID: …`):
/// kept whole (the ids let Microsoft's support find the request) on one line, so the
/// text cannot start a log line of its own.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The identity platform's flat error body.
#[derive(Debug, Deserialize)]
struct TokenErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u64>,
}

/// How an `AADSTS` code is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenClass {
    Authentication,
    Unauthorized,
    Transient,
    Other,
}

/// The identity platform's codes (`error_codes`), most specific first; a code not listed
/// falls back on the `error` string.
const AADSTS_CODES: &[(u64, TokenClass)] = &[
    // Wrong secret; expired secret; neither secret nor assertion.
    (7_000_215, TokenClass::Authentication),
    (7_000_222, TokenClass::Authentication),
    (7_000_218, TokenClass::Authentication),
    // Certificate not registered or bad signature; assertion expired or not yet valid;
    // assertion audience, issuer or subject wrong; assertion malformed.
    (700_027, TokenClass::Authentication),
    (700_024, TokenClass::Authentication),
    (700_021, TokenClass::Authentication),
    (700_023, TokenClass::Authentication),
    (50_027, TokenClass::Authentication),
    // No service principal in the tenant: admin consent never given, or revoked.
    (7_000_229, TokenClass::Authentication),
    // Application not found in the directory (wrong client id, or wrong tenant).
    (700_016, TokenClass::Authentication),
    // Application disabled.
    (7_000_112, TokenClass::Authentication),
    // Tenant not found; `/common` used for app-only.
    (90_002, TokenClass::Authentication),
    (9_001_023, TokenClass::Other),
    // Consent required / declined (65001, 65004): an admin must consent, like 7000229.
    (65_001, TokenClass::Authentication),
    (65_004, TokenClass::Authentication),
    // Scope refused: not Graph's `.default`, or two resources. Our configuration.
    (70_011, TokenClass::Other),
    (700_022, TokenClass::Other),
    // The service is temporarily unavailable.
    (90_033, TokenClass::Transient),
];

fn token_class(error: &str, codes: &[u64], status: StatusCode) -> TokenClass {
    if let Some(class) = codes.iter().find_map(|code| {
        AADSTS_CODES
            .iter()
            .find(|(known, _)| known == code)
            .map(|(_, class)| *class)
    }) {
        return class;
    }
    match error {
        "invalid_client" | "unauthorized_client" | "invalid_grant" => TokenClass::Authentication,
        "consent_required" => TokenClass::Authentication,
        "access_denied" => TokenClass::Unauthorized,
        "temporarily_unavailable" | "server_error" => TokenClass::Transient,
        _ if is_transient_status(status.as_u16()) => TokenClass::Transient,
        _ => TokenClass::Other,
    }
}

/// Classifies a failed token request (HTTP status and body). The detail's reason is the
/// `AADSTS` code when the answer names one (what Microsoft's docs and support index),
/// else the `error` string.
pub(crate) fn token_failure(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ProviderError {
    if status.is_redirection() {
        return ProviderError::other(redirect_refused(status));
    }
    let Ok(parsed) = serde_json::from_slice::<TokenErrorBody>(body) else {
        let detail = ProviderDetail::new(not_an_error_answer(status, headers, body))
            .with_status(status.as_u16());
        return if is_transient_status(status.as_u16()) {
            transient(detail, headers)
        } else {
            ProviderError::other(detail)
        };
    };
    let reason = match parsed.error_codes.first() {
        Some(code) => format!("AADSTS{code}"),
        None => parsed.error.clone(),
    };
    let message = parsed
        .error_description
        .as_deref()
        .map(one_line)
        .unwrap_or_else(|| parsed.error.clone());
    let detail = ProviderDetail::new(message)
        .with_status(status.as_u16())
        .with_reason(reason);
    match token_class(&parsed.error, &parsed.error_codes, status) {
        TokenClass::Authentication => ProviderError::authentication(detail),
        TokenClass::Unauthorized => ProviderError::unauthorized(detail),
        TokenClass::Transient => transient(detail, headers),
        TokenClass::Other => ProviderError::other(detail),
    }
}

/// The provider's name in the descriptions [`tributary_http`] writes.
pub(crate) const PROVIDER: &str = "Microsoft";

pub(crate) use tributary_http::describe_answer;

fn not_an_error_answer(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> String {
    tributary_http::not_an_error_answer(PROVIDER, status, headers, body)
}

pub(crate) fn redirect_refused(status: StatusCode) -> ProviderDetail {
    tributary_http::redirect_refused(PROVIDER, status)
}

/// A success answer we could not read (see [`tributary_http::malformed_answer`]).
pub(crate) fn malformed_answer(
    what: &str,
    answer: &str,
    error: &serde_json::Error,
) -> ProviderError {
    tributary_http::malformed_answer(PROVIDER, what, answer, error)
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
    use tributary_core::ProviderErrorKind::{self, *};

    fn graph(code: u16, graph_code: &str, message: &str, call: GraphCall) -> ApiFailure {
        let body = serde_json::json!({"error": {"code": graph_code, "message": message,
            "innerError": {"date": "2024-03-01T10:00:00", "request-id": "r"}}});
        graph_failure(
            StatusCode::from_u16(code).unwrap(),
            &HeaderMap::new(),
            body.to_string().as_bytes(),
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
    fn graph_errors_map_to_the_taxonomy_case_by_case() {
        let cases = [
            (
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
                Unauthorized,
            ),
            (
                403,
                "ErrorAccessDenied",
                "Access is denied. Check credentials and try again.",
                Unauthorized,
            ),
            (
                403,
                "ErrorAccessDenied",
                "Access to OData is disabled.",
                Unauthorized,
            ),
            (
                404,
                "MailboxNotEnabledForRESTAPI",
                "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
                Unauthorized,
            ),
            (
                404,
                "ResourceNotFound",
                "Resource could not be discovered.",
                AuthenticationError,
            ),
            (
                404,
                "Request_ResourceNotFound",
                "Resource 'x' does not exist",
                AuthenticationError,
            ),
            (
                410,
                "SyncStateNotFound",
                "The sync state generation is not found",
                CursorGone,
            ),
            (410, "syncStateNotFound", "casing varies", CursorGone),
            (410, "somethingNew", "still gone", CursorGone),
            (
                429,
                "ApplicationThrottled",
                "Application is over its MailboxConcurrency limit.",
                Transient,
            ),
            (
                429,
                "TooManyRequests",
                "Please retry again later.",
                Transient,
            ),
            (503, "ServiceNotAvailable", "Service unavailable", Transient),
            (500, "UnknownError", "boom", Transient),
            (424, "FailedDependency", "dependency failed", Transient),
            (504, "GatewayTimeout", "slow", Transient),
            (403, "SomethingForbidden", "no", Unauthorized),
            (400, "ErrorInvalidUrlQueryFilter", "bad filter", Other),
            (404, "ErrorItemNotFound", "not found", Other),
        ];
        for (code, graph_code, message, kind) in cases {
            let failure = graph(code, graph_code, message, GraphCall::Other);
            let ApiFailure::Error(error) = failure else {
                panic!("{graph_code}: {failure:?}");
            };
            assert_eq!(error.kind(), kind, "{code} {graph_code}");
            assert_eq!(error.message(), message, "Microsoft's message is kept");
            assert_eq!(error.reason(), Some(graph_code), "and its code");
            assert_eq!(error.status(), Some(code));
        }
    }

    #[test]
    fn a_missing_item_is_gone_only_for_a_single_item_call() {
        assert_eq!(
            graph(404, "ErrorItemNotFound", "x", GraphCall::EntityGet),
            ApiFailure::Gone
        );
        assert_eq!(
            kind_of(graph(404, "ResourceNotFound", "x", GraphCall::EntityGet)),
            AuthenticationError,
            "a missing user is never a missing item"
        );
    }

    #[test]
    fn rejected_tokens_are_left_to_the_caller_to_refresh() {
        let failure = graph(
            401,
            "InvalidAuthenticationToken",
            "Lifetime validation failed, the token is expired.",
            GraphCall::Other,
        );
        let ApiFailure::TokenRejected(detail) = failure else {
            panic!("{failure:?}");
        };
        assert_eq!(detail.reason.as_deref(), Some("InvalidAuthenticationToken"));
    }

    #[test]
    fn throttling_keeps_retry_after_in_seconds_or_fractions() {
        let body = br#"{"error":{"code":"ApplicationThrottled","message":"over"}}"#;
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("2.128"));
        let ApiFailure::Error(error) = graph_failure(
            StatusCode::TOO_MANY_REQUESTS,
            &headers,
            body,
            GraphCall::Other,
        ) else {
            panic!()
        };
        assert_eq!(error.retry_after(), Some(Duration::from_millis(2128)));
        let now = DateTime::parse_from_rfc3339("2024-03-01T10:00:30Z")
            .unwrap()
            .with_timezone(&Utc);
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Fri, 01 Mar 2024 10:00:33 GMT"),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(3)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers, now), None);
    }

    #[test]
    fn bodies_that_are_not_envelopes_are_described_never_quoted() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        let failure = graph_failure(
            StatusCode::BAD_GATEWAY,
            &headers,
            b"<html>upstream died MARKER</html>",
            GraphCall::Other,
        );
        let ApiFailure::Error(error) = failure else {
            panic!("{failure:?}");
        };
        assert!(error.is_transient());
        assert_eq!(
            error.message(),
            "HTTP 502 Bad Gateway, text/html, 33 bytes: not a Microsoft error answer"
        );
        let token = token_failure(StatusCode::FORBIDDEN, &headers, b"<p>MARKER</p>");
        assert!(!token.message().contains("MARKER"), "{token}");
        assert_eq!(token.status(), Some(403));
    }

    #[test]
    fn redirects_are_errors_named_by_their_status() {
        for code in [301, 302, 303, 307, 308] {
            let status = StatusCode::from_u16(code).unwrap();
            let failure = graph_failure(status, &HeaderMap::new(), b"MARKER", GraphCall::Other);
            let ApiFailure::Error(error) = failure else {
                panic!("{failure:?}");
            };
            assert_eq!(error.kind(), Other);
            assert!(error.message().contains(&code.to_string()), "{error}");
            let token = token_failure(status, &HeaderMap::new(), b"{\"error\": \"MARKER\"}");
            assert!(!token.message().contains("MARKER"), "{token}");
        }
    }

    fn aad(code: u64, error: &str) -> Vec<u8> {
        serde_json::json!({"error": error,
            "error_description": format!("AADSTS{code}: Something happened.\r\nTrace ID: t\r\nCorrelation ID: c\r\nTimestamp: 2024-03-01 10:00:00Z"),
            "error_codes": [code], "timestamp": "2024-03-01 10:00:00Z",
            "trace_id": "t", "correlation_id": "c",
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}")})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn token_errors_map_to_the_taxonomy_case_by_case() {
        let cases = [
            (
                "wrong secret",
                401,
                "invalid_client",
                7_000_215,
                AuthenticationError,
            ),
            (
                "expired secret",
                401,
                "invalid_client",
                7_000_222,
                AuthenticationError,
            ),
            (
                "no credential",
                401,
                "invalid_client",
                7_000_218,
                AuthenticationError,
            ),
            (
                "certificate unknown",
                401,
                "invalid_client",
                700_027,
                AuthenticationError,
            ),
            (
                "assertion expired",
                401,
                "invalid_client",
                700_024,
                AuthenticationError,
            ),
            (
                "consent missing or revoked",
                401,
                "invalid_client",
                7_000_229,
                AuthenticationError,
            ),
            (
                "unknown app",
                400,
                "unauthorized_client",
                700_016,
                AuthenticationError,
            ),
            (
                "app disabled",
                400,
                "unauthorized_client",
                7_000_112,
                AuthenticationError,
            ),
            (
                "unknown tenant",
                400,
                "invalid_request",
                90_002,
                AuthenticationError,
            ),
            (
                "consent declined",
                400,
                "invalid_grant",
                65_004,
                AuthenticationError,
            ),
            ("bad scope", 400, "invalid_scope", 70_011, Other),
            ("/common", 400, "invalid_request", 9_001_023, Other),
            ("outage", 503, "temporarily_unavailable", 90_033, Transient),
            ("new code", 500, "server_error", 1, Transient),
            (
                "new client code",
                401,
                "invalid_client",
                2,
                AuthenticationError,
            ),
        ];
        for (name, status, error, code, kind) in cases {
            let failure = token_failure(
                StatusCode::from_u16(status).unwrap(),
                &HeaderMap::new(),
                &aad(code, error),
            );
            assert_eq!(failure.kind(), kind, "{name}");
            assert_eq!(failure.reason(), Some(format!("AADSTS{code}").as_str()));
            assert_eq!(failure.status(), Some(status));
            assert!(
                failure
                    .message()
                    .starts_with(&format!("AADSTS{code}: Something happened. | Trace ID: t")),
                "{name}: {}",
                failure.message()
            );
            assert!(!failure.message().contains('\n'), "one line");
        }
    }

    #[test]
    fn token_answers_without_a_json_body_are_classified_by_status() {
        let gateway = token_failure(StatusCode::BAD_GATEWAY, &HeaderMap::new(), b"bad gateway");
        assert!(gateway.is_transient());
        let odd = token_failure(StatusCode::BAD_REQUEST, &HeaderMap::new(), b"?");
        assert_eq!(odd.kind(), Other);
        let bare = token_failure(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            br#"{"error":"invalid_client"}"#,
        );
        assert_eq!(bare.kind(), AuthenticationError);
        assert_eq!(bare.reason(), Some("invalid_client"));
    }
}
