//! Request extractors whose rejections are API errors (JSON, stable codes), and the
//! body limit: bodies are read up to `ServerConfig::max_body_bytes`, larger ones get 413
//! before anything changes.

use crate::AppState;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A JSON body (`Content-Type: application/json`) that is a JSON object: every request
/// body of the API is one. Anything else (an array, a string, a number) is refused with
/// 400 `not_an_object` before it is read into `T`, because serde reads an array into a
/// struct field by field, so `[]` would be a struct of defaults (`PUT /policy []` reset
/// the policy).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        require_content_type(&request, &["application/json"])?;
        let bytes = read_body(request, state.config.max_body_bytes).await?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|error| {
            ApiError::bad_request(
                "malformed_json",
                format!("the body is not valid JSON: {error}"),
            )
        })?;
        if !value.is_object() {
            return Err(ApiError::bad_request(
                "not_an_object",
                format!(
                    "the body must be a JSON object (`{{…}}`), not {}",
                    json_kind(&value)
                ),
            ));
        }
        serde_json::from_value(value).map(ApiJson).map_err(|error| {
            ApiError::unprocessable(
                "invalid_body",
                format!("the JSON body does not fit: {error}"),
            )
        })
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A UTF-8 text body of one of the CSV types.
pub struct CsvBody(pub String);

impl FromRequest<AppState> for CsvBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        require_content_type(&request, &["text/csv", "text/plain"])?;
        let bytes = read_body(request, state.config.max_body_bytes).await?;
        String::from_utf8(bytes.to_vec())
            .map(CsvBody)
            .map_err(|_| ApiError::bad_request("malformed_csv", "the CSV body is not UTF-8 text"))
    }
}

fn require_content_type(request: &Request, accepted: &[&str]) -> Result<(), ApiError> {
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if accepted.iter().any(|a| essence.eq_ignore_ascii_case(a)) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!("send the body as {}", accepted.join(" or ")),
    ))
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the body is larger than the server's limit of {limit} bytes"),
    )
}

/// The body, or 413 when it passes `limit` bytes. An oversized body is still read (and
/// dropped) up to [`drain_cap`], because a client that is cut off mid-upload never sees
/// the 413; beyond that the connection is simply closed.
async fn read_body(request: Request, limit: usize) -> Result<Bytes, ApiError> {
    let cap = drain_cap(limit);
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > cap as u64) {
        return Err(too_large(limit));
    }
    let mut body = request.into_body();
    let mut kept = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| {
            ApiError::bad_request("unreadable_body", "the request body could not be read")
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(data.len());
        if total > cap {
            break;
        }
        if total <= limit {
            kept.extend_from_slice(&data);
        }
    }
    if total > limit {
        return Err(too_large(limit));
    }
    Ok(Bytes::from(kept))
}

/// How much of an oversized body is read before giving up on it.
fn drain_cap(limit: usize) -> usize {
    limit.saturating_mul(8).saturating_add(1024 * 1024)
}

/// Query parameters.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|error| ApiError::bad_request("invalid_query", error.body_text()))
    }
}

/// Path parameters; ids that do not parse name nothing, so they are 404.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(|error| ApiError::not_found(error.body_text()))
    }
}

/// For an optional body field whose schema has no `null`: absent is `None`, and an
/// explicit `null` is refused like any other value of the wrong type (serde alone would
/// read it as absent, accepting what the OpenAPI document forbids). Use with
/// `#[serde(default, deserialize_with = "not_null")]`.
pub(crate) fn not_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}
