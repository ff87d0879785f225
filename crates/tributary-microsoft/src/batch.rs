//! Graph's JSON batching: `POST /$batch {"requests":[{"id","method","url",…}]}`, at most
//! [`MAX_BATCH_REQUESTS`] GETs with relative urls, answered by
//! `{"responses":[{"id","status","headers","body"}]}` in any order.

use crate::api::Api;
use crate::error::{describe_answer, malformed_answer, unreadable_answer};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tributary_core::{ProviderDetail, ProviderError};

/// Graph refuses batches of more than 20 requests.
pub const MAX_BATCH_REQUESTS: usize = 20;

/// One GET of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchRequest {
    /// Unique within the batch.
    pub id: String,
    pub method: &'static str,
    /// Relative to the Graph root, without the version: `/users/{id}/messages/{id}?…`.
    pub url: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Requests that must succeed before this one runs (Graph answers 424 otherwise).
    #[serde(rename = "dependsOn", skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

impl BatchRequest {
    pub fn get(id: impl Into<String>, url: impl Into<String>) -> Self {
        BatchRequest {
            id: id.into(),
            method: "GET",
            url: url.into(),
            headers: BTreeMap::new(),
            depends_on: Vec::new(),
        }
    }
}

/// One answer of a batch: an HTTP answer of its own, classified like any other.
#[derive(Debug, Clone)]
pub struct BatchResponse {
    pub id: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body as JSON bytes (Graph inlines JSON bodies in the batch answer).
    pub body: Vec<u8>,
}

#[derive(Serialize)]
struct Payload<'a> {
    requests: &'a [BatchRequest],
}

#[derive(Deserialize)]
struct AnswerJson {
    #[serde(default)]
    responses: Vec<ResponseJson>,
}

#[derive(Deserialize)]
struct ResponseJson {
    id: String,
    status: u16,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<serde_json::Value>,
}

impl From<ResponseJson> for Option<BatchResponse> {
    fn from(json: ResponseJson) -> Self {
        let status = StatusCode::from_u16(json.status).ok()?;
        let mut headers = HeaderMap::new();
        for (name, value) in json.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                headers.append(name, value);
            }
        }
        let body = json
            .body
            .map(|b| serde_json::to_vec(&b).unwrap_or_default())
            .unwrap_or_default();
        Some(BatchResponse {
            id: json.id,
            status,
            headers,
            body,
        })
    }
}

/// Sends one batch; the answers come back in the order of `requests` (`None` where the
/// batch answer had none for a request). A failure of the whole batch (refused token,
/// throttling, a malformed batch) is the outer error.
pub(crate) async fn send(
    api: &Api,
    requests: &[BatchRequest],
) -> Result<Vec<Option<BatchResponse>>, ProviderError> {
    if requests.len() > MAX_BATCH_REQUESTS {
        return Err(ProviderError::other(ProviderDetail::new(format!(
            "a Graph batch holds at most {MAX_BATCH_REQUESTS} requests, not {}",
            requests.len()
        ))));
    }
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    let body = serde_json::to_vec(&Payload { requests })
        .map_err(|e| ProviderError::other(ProviderDetail::new(e.to_string())))?;
    let url = api.endpoints.graph(&["$batch"]);
    let answer = api
        .send(|http| {
            http.post(url.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone())
        })
        .await?;
    if !answer.status.is_success() {
        return Err(crate::api::decode_answer::<serde_json::Value>(
            answer.status,
            &answer.headers,
            &answer.body,
            crate::error::GraphCall::Other,
            "$batch",
        )
        .err()
        .unwrap_or_else(|| unreadable_answer("$batch", "no responses")));
    }
    let parsed: AnswerJson = serde_json::from_slice(&answer.body).map_err(|e| {
        malformed_answer(
            "$batch",
            &describe_answer(answer.status, &answer.headers, &answer.body),
            &e,
        )
    })?;
    let mut slots: Vec<Option<BatchResponse>> = (0..requests.len()).map(|_| None).collect();
    for response in parsed.responses {
        let Some(response) = Option::<BatchResponse>::from(response) else {
            continue;
        };
        if let Some(index) = requests.iter().position(|r| r.id == response.id)
            && slots[index].is_none()
        {
            slots[index] = Some(response);
        }
    }
    Ok(slots)
}

/// The path and query of `url` relative to the Graph root (what a batch request names).
pub(crate) fn relative_url(graph_base: &reqwest::Url, url: &reqwest::Url) -> String {
    let prefix = graph_base.path().trim_end_matches('/');
    let path = url.path().strip_prefix(prefix).unwrap_or(url.path());
    match url.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_serialize_as_graph_expects() {
        let mut request = BatchRequest::get("2", "/users/u/messages/m?$select=id");
        request.depends_on.push("1".into());
        request
            .headers
            .insert("Prefer".into(), "IdType=\"ImmutableId\"".into());
        let json = serde_json::to_value(Payload {
            requests: &[BatchRequest::get("1", "/users"), request],
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"requests": [
                {"id": "1", "method": "GET", "url": "/users"},
                {"id": "2", "method": "GET", "url": "/users/u/messages/m?$select=id",
                 "headers": {"Prefer": "IdType=\"ImmutableId\""}, "dependsOn": ["1"]}]})
        );
    }

    #[test]
    fn urls_are_made_relative_to_the_graph_root() {
        let base = reqwest::Url::parse("https://h:1/v1.0").unwrap();
        let url = reqwest::Url::parse("https://h:1/v1.0/users/a%40b/messages?$top=1").unwrap();
        assert_eq!(relative_url(&base, &url), "/users/a%40b/messages?$top=1");
    }

    #[test]
    fn answers_parse_with_inline_json_bodies() {
        let json: AnswerJson = serde_json::from_str(
            r#"{"responses": [{"id": "b", "status": 429, "headers": {"Retry-After": "3"},
                "body": {"error": {"code": "ApplicationThrottled", "message": "m"}}},
               {"id": "a", "status": 200, "body": {"id": "x"}}]}"#,
        )
        .unwrap();
        let answers: Vec<BatchResponse> = json
            .responses
            .into_iter()
            .filter_map(Option::<BatchResponse>::from)
            .collect();
        assert_eq!(answers[0].headers["retry-after"], "3");
        assert_eq!(answers[1].body, br#"{"id":"x"}"#);
    }
}
