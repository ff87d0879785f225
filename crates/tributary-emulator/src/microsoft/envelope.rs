//! Graph's envelope: the JSON content type with OData parameters, `OData-Version`,
//! `request-id` and `client-request-id` on every answer, and the error shape
//! `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`.

use super::ids::random_guid;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub const JSON_CONTENT_TYPE: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// The ids of one request: ours, and the client's (echoed; ours when it sent none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestIds {
    pub request_id: String,
    pub client_request_id: String,
}

impl RequestIds {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let request_id = random_guid();
        let client_request_id = headers
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .unwrap_or_else(|| request_id.clone());
        RequestIds {
            request_id,
            client_request_id,
        }
    }
}

/// Gives every request its ids (an extension handlers read) and stamps them, with
/// `OData-Version`, on the answer.
pub async fn stamp(mut request: Request, next: Next) -> Response {
    let ids = RequestIds::from_headers(request.headers());
    request.extensions_mut().insert(ids.clone());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        ("request-id", ids.request_id.as_str()),
        ("client-request-id", ids.client_request_id.as_str()),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    headers.insert("odata-version", HeaderValue::from_static("4.0"));
    response
}

/// A Graph JSON answer.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = (status, bytes).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    response
}

/// A Graph error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u64>,
    pub www_authenticate: Option<String>,
    /// Where to start over (410 on an expired delta state).
    pub location: Option<String>,
}

impl GraphError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        GraphError {
            status,
            code: code.to_string(),
            message: message.into(),
            retry_after: None,
            www_authenticate: None,
            location: None,
        }
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        GraphError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// Renders with the request's ids inside `innerError`.
    pub fn render(&self, ids: &RequestIds) -> Response {
        let date = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
        let body = json!({"error": {
            "code": self.code,
            "message": self.message,
            "innerError": {
                "date": date,
                "request-id": ids.request_id,
                "client-request-id": ids.client_request_id,
            }
        }});
        let mut response = json_response(self.status, &body);
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(value) = self
            .location
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            headers.insert(header::LOCATION, value);
        }
        if let Some(value) = self
            .www_authenticate
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// The error's ids when a handler has none at hand (never on Graph routes, which all
/// pass through [`stamp`]).
impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let ids = RequestIds::from_headers(&HeaderMap::new());
        self.render(&ids)
    }
}

pub fn not_found_segment(path: &str) -> GraphError {
    GraphError::bad_request(
        "BadRequest",
        format!("Resource not found for the segment '{path}'."),
    )
}

pub fn item_not_found() -> GraphError {
    GraphError::new(
        StatusCode::NOT_FOUND,
        "ErrorItemNotFound",
        "The specified object was not found in the store.",
    )
}

pub fn user_not_found(id: &str) -> GraphError {
    GraphError::new(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

pub fn mailbox_user_not_found() -> GraphError {
    GraphError::new(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        "Resource could not be discovered.",
    )
}

pub fn mailbox_not_enabled() -> GraphError {
    GraphError::new(
        StatusCode::NOT_FOUND,
        "MailboxNotEnabledForRESTAPI",
        "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
    )
}

pub fn access_policy_denied() -> GraphError {
    GraphError::new(
        StatusCode::FORBIDDEN,
        "ErrorAccessDenied",
        "Access to OData is disabled.",
    )
}

pub fn mail_role_missing() -> GraphError {
    GraphError::new(
        StatusCode::FORBIDDEN,
        "ErrorAccessDenied",
        "Access is denied. Check credentials and try again.",
    )
}

pub fn directory_role_missing() -> GraphError {
    GraphError::new(
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
}

pub fn sync_state_not_found(generation: u64, highest: u64) -> GraphError {
    GraphError::new(
        StatusCode::GONE,
        "SyncStateNotFound",
        format!(
            "The sync state generation is not found; generation={generation};[highest={highest}]"
        ),
    )
}

pub fn server_error() -> GraphError {
    let mut error = GraphError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceNotAvailable",
        "The service is temporarily unavailable. Please retry later.",
    );
    error.retry_after = Some(1);
    error
}
