//! The API's errors: `{"error": {"code": "stable_snake_code", "message": "…"}}` with the
//! HTTP status that fits. Codes are a contract with API clients; messages are for people.
//! Server-side failures are logged here and answered with a generic message, so nothing
//! internal (SQL, secrets) reaches a response.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tributary_core::{Audience, FailureCause, FailureSite, HintProvider, LinkErrorStatus};
use tributary_store::{AccountError, StoreError};
use tributary_sync::RuntimeError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The request field at fault, when one is (`private_key` of a key file, `email`).
    pub field: Option<String>,
    /// The provider's refusal behind a `provider_error`: the taxonomy status and the
    /// provider's own message, answered with its cause and the hint for that cause.
    pub provider: Option<(LinkErrorStatus, String)>,
    /// Where that refusal was met: the directory (Rebuild, the default) or a mailbox.
    pub refusal_site: FailureSite,
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
            refusal_site: FailureSite::Directory,
            retry_after: None,
        }
    }

    /// The same error, its refusal (if any) met reading a member's mailbox rather than
    /// the directory: Google's "Invalid email or User ID" then names the member, not
    /// the directory admin.
    pub fn at_mailbox(mut self) -> Self {
        self.refusal_site = FailureSite::Mailbox;
        self
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
            let cause = refusal_cause(status, &message, self.refusal_site);
            error["status"] = serde_json::json!(status);
            error["cause"] = serde_json::json!(cause);
            error["hint"] = serde_json::Value::String(cause.hint(Audience::Admin).to_owned());
            error["provider_message"] = serde_json::Value::String(message);
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

/// The cause of a provider's refusal met at `site`. The runtime hands over the
/// provider's words without its code, so the cause is read from them: Microsoft's token
/// errors open with their `AADSTS` code; Google's distinctive words name its causes.
fn refusal_cause(status: LinkErrorStatus, message: &str, site: FailureSite) -> FailureCause {
    let aadsts = message
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find(|word| word.starts_with("AADSTS"));
    let provider = match aadsts {
        Some(_) => HintProvider::Microsoft,
        None => HintProvider::Google,
    };
    FailureCause::classify(provider, site, status, aadsts, message)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(status: LinkErrorStatus, message: &str) -> serde_json::Value {
        let error = ApiError::from(RuntimeError::Provider {
            status,
            message: message.to_owned(),
        });
        let response = error.into_response();
        let body = futures_body(response);
        body["error"].clone()
    }

    fn futures_body(response: Response) -> serde_json::Value {
        let bytes = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// Each refusal gets its cause's hint, not its status's: a non-administrator, a
    /// deleted key and a missing delegation are all told apart.
    #[test]
    fn provider_errors_carry_the_hint_for_their_cause() {
        use LinkErrorStatus::*;
        let cases = [
            (
                Unauthorized,
                "Not Authorized to access this resource/api",
                FailureCause::AdminNotAdministrator,
            ),
            (
                AuthenticationError,
                "Invalid email or User ID",
                FailureCause::AdminNotInWorkspace,
            ),
            (
                AuthenticationError,
                "Invalid JWT Signature.",
                FailureCause::KeyRejected,
            ),
            (
                Unauthorized,
                "Client is unauthorized to retrieve access tokens using this method.",
                FailureCause::ScopeNotDelegated,
            ),
            (
                AuthenticationError,
                "AADSTS7000222: The provided client secret keys for app 'x' are expired.",
                FailureCause::MsSecretExpired,
            ),
        ];
        for (status, message, cause) in cases {
            let error = refusal(status, message);
            assert_eq!(error["cause"], serde_json::json!(cause), "{message}");
            assert_eq!(error["hint"], cause.hint(Audience::Admin), "{message}");
            assert_eq!(error["provider_message"], message);
            assert_eq!(error["status"], serde_json::json!(status));
        }
        assert_ne!(
            refusal(Unauthorized, "Not Authorized to access this resource/api")["hint"],
            Unauthorized.fix_hint()
        );
    }

    #[test]
    fn a_mailbox_read_names_the_member_not_the_admin() {
        let error = ApiError::from(RuntimeError::Provider {
            status: LinkErrorStatus::AuthenticationError,
            message: "Invalid email or User ID".to_owned(),
        })
        .at_mailbox();
        let body = futures_body(error.into_response());
        assert_eq!(
            body["error"]["cause"],
            serde_json::json!(FailureCause::UserGone)
        );
    }
}
