//! The API's errors: `{"error": {"code": "stable_snake_code", "message": "…"}}` with the
//! HTTP status that fits. Codes are a contract with API clients; messages are for people.
//! Server-side failures are logged here and answered with a generic message, so nothing
//! internal (SQL, secrets) reaches a response.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tributary_core::LinkErrorStatus;
use tributary_store::{AccountError, StoreError};
use tributary_sync::RuntimeError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The request field at fault, when one is (`private_key` of a key file, `email`).
    pub field: Option<String>,
    /// Google's refusal behind a `provider_error`: the taxonomy status and Google's own
    /// message, answered with a hint of what to do.
    pub provider: Option<(LinkErrorStatus, String)>,
    /// Seconds before the caller may try again, sent as `Retry-After` (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            provider: None,
            retry_after: None,
        }
    }

    /// The same error, its message prefixed with what was being done.
    pub fn while_doing(mut self, what: &str) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this needs an admin's API token; a member's token reads only its own links and labels",
        )
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 429 `too_many_attempts`: too many failed authentications from this address; the
    /// caller may try again after `retry_after_secs` (also sent as `Retry-After`).
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after_secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                format!(
                    "too many failed authentication attempts from this address; try again in {retry_after_secs} s"
                ),
            )
        }
    }

    /// A failure on our side: logged in full, answered without detail.
    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        // Debug-formatted, so that text a client or Google put into the error cannot
        // start a log line of its own.
        tracing::error!(error = ?error.to_string(), "API request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed to handle the request; the error is in its log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::json!({ "code": self.code, "message": self.message });
        if let Some(field) = self.field {
            error["field"] = serde_json::Value::String(field);
        }
        if let Some((status, message)) = self.provider {
            error["status"] = serde_json::json!(status);
            error["provider_message"] = serde_json::Value::String(message);
            error["hint"] = serde_json::Value::String(status.fix_hint().to_owned());
        }
        let mut response =
            (self.status, Json(serde_json::json!({ "error": error }))).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<RuntimeError> for ApiError {
    fn from(error: RuntimeError) -> Self {
        match error {
            RuntimeError::KeyFile(key) => {
                let api = ApiError::unprocessable("invalid_key_file", key.to_string());
                match key.field() {
                    Some(field) => api.with_field(field),
                    None => api,
                }
            }
            RuntimeError::AdminEmail(_) => {
                ApiError::unprocessable("invalid_admin_email", error.to_string())
                    .with_field("admin_email")
            }
            RuntimeError::Policy(_) => ApiError::unprocessable("invalid_policy", error.to_string()),
            RuntimeError::NotConnected => ApiError::conflict("not_connected", error.to_string()),
            RuntimeError::UnknownLink(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_link", error.to_string())
            }
            RuntimeError::Provider {
                status,
                ref message,
            } => {
                let provider = Some((status, message.clone()));
                ApiError {
                    provider,
                    ..ApiError::new(StatusCode::BAD_GATEWAY, "provider_error", error.to_string())
                }
            }
            RuntimeError::Directory(_) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "directory_error",
                error.to_string(),
            ),
            RuntimeError::Store(store) => store.into(),
            other => ApiError::internal(&other),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::UnknownLink { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_link", error.to_string())
            }
            StoreError::UnknownMember { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_member", error.to_string())
            }
            StoreError::InvalidLabel { .. } => {
                ApiError::unprocessable("invalid_label", error.to_string())
            }
            StoreError::NoConnection { .. } => {
                ApiError::conflict("not_connected", error.to_string())
            }
            other => ApiError::internal(&other),
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::EmailTaken(_) => ApiError::conflict("email_taken", error.to_string()),
            AccountError::InvalidEmail(_) => {
                ApiError::unprocessable("invalid_email", error.to_string()).with_field("email")
            }
            AccountError::EmptyTokenName => {
                ApiError::unprocessable("invalid_token_name", error.to_string()).with_field("name")
            }
            AccountError::UnknownUser { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_user", error.to_string())
            }
            AccountError::UnknownToken { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_token", error.to_string())
            }
            AccountError::LastAdmin { .. } => ApiError::conflict("last_admin", error.to_string()),
            AccountError::Disabled { .. } => {
                ApiError::conflict("account_disabled", error.to_string())
            }
            AccountError::UnknownTenant(_) => ApiError::internal(&error),
            AccountError::Store(store) => store.into(),
        }
    }
}
