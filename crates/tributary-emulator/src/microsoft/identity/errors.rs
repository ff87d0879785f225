//! The identity platform's error answers: `error`, `error_description` starting
//! `AADSTSnnnn:` with trace and correlation ids and a timestamp, `error_codes`,
//! `timestamp`, `trace_id`, `correlation_id`, `error_uri`.

use super::super::ids::random_guid;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AadError {
    pub status: StatusCode,
    /// The OAuth error: `invalid_client`, `unauthorized_client`, `invalid_request`, ….
    pub error: &'static str,
    pub code: u32,
    /// Without the `AADSTSnnnn: ` prefix.
    pub description: String,
    /// The request's `client-request-id`, echoed as the correlation id.
    pub correlation_id: Option<String>,
}

impl AadError {
    pub fn new(
        status: StatusCode,
        error: &'static str,
        code: u32,
        description: impl Into<String>,
    ) -> Self {
        AadError {
            status,
            error,
            code,
            description: description.into(),
            correlation_id: None,
        }
    }

    pub fn bad_request(error: &'static str, code: u32, description: impl Into<String>) -> Self {
        AadError::new(StatusCode::BAD_REQUEST, error, code, description)
    }

    pub fn invalid_client(code: u32, description: impl Into<String>) -> Self {
        AadError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            code,
            description,
        )
    }

    pub fn with_correlation(mut self, correlation_id: Option<String>) -> Self {
        self.correlation_id = correlation_id;
        self
    }

    pub fn body(&self) -> serde_json::Value {
        let trace_id = random_guid();
        let correlation_id = self.correlation_id.clone().unwrap_or_else(random_guid);
        let timestamp = chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
        let description = format!(
            "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
            self.code, self.description
        );
        json!({
            "error": self.error,
            "error_description": description,
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        })
    }
}

impl IntoResponse for AadError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store, no-cache"),
        );
        response
    }
}

/// `/common`, `/organizations` and `/consumers` are not a tenant.
pub fn common_endpoint() -> AadError {
    AadError::bad_request(
        "invalid_request",
        9_001_023,
        "The grant type is not supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.",
    )
}

pub fn unknown_tenant(tenant: &str) -> AadError {
    AadError::bad_request(
        "invalid_request",
        90_002,
        format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
        ),
    )
}

pub fn missing_parameter(name: &str) -> AadError {
    AadError::bad_request(
        "invalid_request",
        900_144,
        format!("The request body must contain the following parameter: '{name}'."),
    )
}

pub fn unsupported_grant_type(grant_type: &str) -> AadError {
    AadError::bad_request(
        "unsupported_grant_type",
        70_003,
        format!("The app requested an unsupported grant type '{grant_type}'."),
    )
}

pub fn invalid_scope(scope: &str) -> AadError {
    AadError::bad_request(
        "invalid_scope",
        70_011,
        format!(
            "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
        ),
    )
}

pub fn several_resources() -> AadError {
    AadError::bad_request(
        "invalid_scope",
        700_022,
        "The provided value for the input parameter scope is not valid because it contains more than one resource. Scope https://graph.microsoft.com/.default https://outlook.office.com/.default is not valid.",
    )
}

pub fn unknown_app(client_id: &str, tenant_id: &str) -> AadError {
    AadError::bad_request(
        "unauthorized_client",
        700_016,
        format!(
            "Application with identifier '{client_id}' was not found in the directory '{tenant_id}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
        ),
    )
}

pub fn app_disabled(client_id: &str, name: &str) -> AadError {
    AadError::bad_request(
        "unauthorized_client",
        7_000_112,
        format!("Application '{client_id}'({name}) is disabled."),
    )
}

pub fn no_credential() -> AadError {
    AadError::invalid_client(
        7_000_218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    )
}

pub fn wrong_secret(client_id: &str) -> AadError {
    AadError::invalid_client(
        7_000_215,
        format!(
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
        ),
    )
}

pub fn expired_secret(client_id: &str) -> AadError {
    AadError::invalid_client(
        7_000_222,
        format!(
            "The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."
        ),
    )
}

pub fn bad_assertion(reason: &str) -> AadError {
    AadError::invalid_client(
        700_027,
        format!("Client assertion failed signature validation. (Reason - {reason})"),
    )
}

pub fn assertion_time(reason: &str) -> AadError {
    AadError::invalid_client(
        700_024,
        format!("Client assertion is not within its valid time range. {reason}"),
    )
}

pub fn no_service_principal(client_id: &str, tenant_id: &str) -> AadError {
    AadError::invalid_client(
        7_000_229,
        format!(
            "The client application {client_id} is missing service principal in the tenant {tenant_id}. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119"
        ),
    )
}

pub fn temporarily_unavailable() -> AadError {
    AadError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        90_033,
        "A transient error has occurred. Please try again.",
    )
}
