//! JSON batching: `POST /v1.0/$batch {"requests":[{"id","method","url","headers","body",
//! "dependsOn"}]}`, at most 20 steps, relative urls without the version. Steps whose
//! dependencies are done run together (so they meet the mailbox concurrency limit as on
//! Graph); a step whose dependency failed answers 424. Answers
//! `{"responses":[{"id","status","headers","body"}]}`.

use super::envelope::{GraphError, RequestIds, json_response};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use tower::ServiceExt;

pub const MAX_STEPS: usize = 20;

#[derive(Debug, Clone, Deserialize)]
struct Step {
    id: String,
    method: String,
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default, rename = "dependsOn")]
    depends_on: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Payload {
    requests: Vec<Step>,
}

fn malformed(message: &str) -> GraphError {
    GraphError::bad_request("BadRequest", message)
}

fn parse(body: &[u8]) -> Result<Vec<Step>, GraphError> {
    let payload: Payload =
        serde_json::from_slice(body).map_err(|_| malformed("Invalid batch payload format."))?;
    if payload.requests.len() > MAX_STEPS {
        return Err(malformed(
            "Number of batch request steps exceeds the maximum of 20.",
        ));
    }
    let ids: BTreeSet<&str> = payload.requests.iter().map(|s| s.id.as_str()).collect();
    if ids.len() != payload.requests.len() {
        return Err(malformed("Batch request contains duplicate ids."));
    }
    for step in &payload.requests {
        if step
            .depends_on
            .iter()
            .any(|d| !ids.contains(d.as_str()) || d == &step.id)
        {
            return Err(malformed(
                "Batch request dependsOn names an unknown request.",
            ));
        }
        if !step.url.starts_with('/') && step.url.contains("://") {
            return Err(malformed("Batch request url must be relative."));
        }
    }
    Ok(payload.requests)
}

fn build_request(step: &Step, outer: &HeaderMap) -> Option<Request<Body>> {
    let method = Method::from_bytes(step.method.to_ascii_uppercase().as_bytes()).ok()?;
    let path = if step.url.starts_with('/') {
        step.url.clone()
    } else {
        format!("/{}", step.url)
    };
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("/v1.0{path}"));
    for name in [header::AUTHORIZATION.as_str(), "client-request-id"] {
        if let Some(value) = outer.get(name) {
            builder = builder.header(name, value);
        }
    }
    for (name, value) in &step.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let body = match &step.body {
        Some(value) => Body::from(serde_json::to_vec(value).ok()?),
        None => Body::empty(),
    };
    builder.body(body).ok()
}

async fn run_step(api: Router, step: Step, outer: HeaderMap) -> (String, Value, u16) {
    let Some(request) = build_request(&step, &outer) else {
        let body = json!({"error": {"code": "BadRequest", "message": "Invalid request in batch."}});
        return (
            step.id.clone(),
            json!({"id": step.id, "status": 400, "body": body}),
            400,
        );
    };
    let response = match api.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status().as_u16();
    let mut headers = Map::new();
    for name in [
        header::CONTENT_TYPE.as_str(),
        "retry-after",
        "location",
        "preference-applied",
    ] {
        if let Some(value) = response.headers().get(name).and_then(|v| v.to_str().ok()) {
            let key = if name == "content-type" {
                "Content-Type"
            } else if name == "retry-after" {
                "Retry-After"
            } else {
                name
            };
            headers.insert(key.to_string(), json!(value));
        }
    }
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let mut answer = json!({"id": step.id, "status": status, "headers": headers});
    if !body.is_null() {
        answer["body"] = body;
    }
    (step.id, answer, status)
}

fn failed_dependency(step: &Step) -> Value {
    json!({"id": step.id, "status": 424, "headers": {"Content-Type": "application/json"}, "body": {"error": {
        "code": "FailedDependency",
        "message": "The request could not be processed because a request it depends on failed."
    }}})
}

/// Runs the batch against `api` (the Graph routes with their state).
pub async fn handle(api: Router, ids: RequestIds, headers: HeaderMap, body: Bytes) -> Response {
    let steps = match parse(&body) {
        Ok(steps) => steps,
        Err(error) => return error.render(&ids),
    };
    let mut statuses: BTreeMap<String, u16> = BTreeMap::new();
    let mut responses = Vec::new();
    let mut pending = steps;
    while !pending.is_empty() {
        let (ready, waiting): (Vec<Step>, Vec<Step>) = pending
            .into_iter()
            .partition(|s| s.depends_on.iter().all(|d| statuses.contains_key(d)));
        pending = waiting;
        if ready.is_empty() {
            // A dependency cycle: nothing can run.
            responses.extend(pending.iter().map(failed_dependency));
            break;
        }
        let mut set = tokio::task::JoinSet::new();
        for step in ready {
            if step
                .depends_on
                .iter()
                .any(|d| statuses.get(d).is_some_and(|s| *s >= 400))
            {
                statuses.insert(step.id.clone(), 424);
                responses.push(failed_dependency(&step));
                continue;
            }
            set.spawn(run_step(api.clone(), step, headers.clone()));
        }
        while let Some(done) = set.join_next().await {
            if let Ok((id, answer, status)) = done {
                statuses.insert(id, status);
                responses.push(answer);
            }
        }
    }
    let mut response = json_response(StatusCode::OK, &json!({"responses": responses}));
    response
        .headers_mut()
        .insert("odata-version", HeaderValue::from_static("4.0"));
    response
}
