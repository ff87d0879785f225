//! Google's error bodies: the API envelope (`{"error":{"code",..,"errors":[..],"status"}}`)
//! and the OAuth token endpoint's flat form (`{"error","error_description"}`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error in Google's API envelope, as Gmail and the Directory answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub reason: &'static str,
    pub domain: &'static str,
    pub message: String,
    /// Seconds, sent as `Retry-After` when set.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            reason,
            domain: "global",
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn with_domain(mut self, domain: &'static str) -> Self {
        self.domain = domain;
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Google's textual status for the HTTP code (`"status"` in the envelope).
    pub fn status_text(&self) -> &'static str {
        match self.status.as_u16() {
            400 => match self.reason {
                "failedPrecondition" => "FAILED_PRECONDITION",
                _ => "INVALID_ARGUMENT",
            },
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            429 => "RESOURCE_EXHAUSTED",
            503 => "UNAVAILABLE",
            _ => "INTERNAL",
        }
    }

    pub fn body(&self) -> serde_json::Value {
        json!({
            "error": {
                "code": self.status.as_u16(),
                "message": self.message,
                "errors": [{
                    "message": self.message,
                    "domain": self.domain,
                    "reason": self.reason,
                }],
                "status": self.status_text(),
            }
        })
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "notFound",
            "Requested entity was not found.",
        )
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalidArgument", message)
    }

    /// No `Authorization` header at all.
    pub fn login_required() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "required", "Login Required.")
    }

    /// 403 `forbidden`: "Delegation denied for …", "Not Authorized to access this
    /// resource/api", the `gmail.metadata` restrictions.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 400 `failedPrecondition` `Precondition check failed.`: Gmail called with a token
    /// that impersonates nobody.
    pub fn precondition_failed() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "failedPrecondition",
            "Precondition check failed.",
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "badRequest", message)
    }

    pub fn auth_error() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "authError", "Invalid Credentials")
    }

    pub fn insufficient_permissions() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "insufficientPermissions",
            "Request had insufficient authentication scopes.",
        )
    }

    pub fn mail_service_not_enabled() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "failedPrecondition",
            "Mail service not enabled",
        )
    }

    pub fn backend_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "backendError",
            "Backend Error",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = super::call::json_response(self.status, &self.body());
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"https://accounts.google.com/\""),
            );
        }
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// An error of the OAuth token endpoint: a flat `{"error","error_description"}` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
}

impl TokenError {
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        TokenError {
            status,
            error,
            description: description.into(),
        }
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "error_description": self.description});
        let mut response = super::call::json_response(self.status, &body);
        // Token answers must never be cached (RFC 6749 section 5.1).
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}
