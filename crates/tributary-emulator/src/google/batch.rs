//! Google's batch endpoint (`POST /batch/gmail/v1`, `POST /batch`): a `multipart/mixed`
//! body of `application/http` parts, each a whole inner request. Every part goes through
//! the same router as an outer request (auth, quota, faults, counters), one after the
//! other, and the answers come back in order in a `multipart/mixed` response whose parts
//! echo `Content-ID: <response-…>` as google-api-python-client expects.

use super::error::ApiError;
use super::multipart;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use rand::distributions::Alphanumeric;
use tower::ServiceExt;

/// Google refuses batches of more than 100 calls.
pub const MAX_PARTS: usize = 100;

/// One inner request as read from a part.
struct InnerRequest {
    content_id: Option<String>,
    method: Method,
    path_and_query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Answers a batch request by dispatching each part to `api`.
pub async fn handle(api: Router, headers: HeaderMap, body: Bytes) -> Response {
    let boundary = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|ct| multipart::media_type(ct).starts_with("multipart/"))
        .and_then(multipart::boundary);
    let Some(boundary) = boundary else {
        return ApiError::bad_request("Batch requests must be multipart/mixed with a boundary.")
            .into_response();
    };
    let parts = multipart::split(&body, &boundary);
    if parts.is_empty() {
        return ApiError::bad_request("Batch request has no parts.").into_response();
    }
    if parts.len() > MAX_PARTS {
        return ApiError::bad_request(format!(
            "A batch request cannot contain more than {MAX_PARTS} requests."
        ))
        .into_response();
    }
    let outer_authorization = headers.get(header::AUTHORIZATION).cloned();

    let response_boundary = format!("batch_{}", random_token(22));
    let mut out = Vec::new();
    for part in parts {
        let (content_id, response) = match parse_part(part) {
            Ok(inner) => {
                let content_id = inner.content_id.clone();
                (
                    content_id,
                    dispatch(&api, inner, outer_authorization.as_ref()).await,
                )
            }
            Err((content_id, error)) => (content_id, error.into_response()),
        };
        write_part(
            &mut out,
            &response_boundary,
            content_id.as_deref(),
            response,
        )
        .await;
    }
    out.extend_from_slice(format!("--{response_boundary}--\r\n").as_bytes());

    let content_type = format!("multipart/mixed; boundary={response_boundary}");
    let mut response = (StatusCode::OK, out).into_response();
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

fn random_token(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Header fields of a header block, unfolded.
fn header_fields(block: &[u8]) -> Vec<(String, String)> {
    crate::model::parse_header_fields(block)
}

fn parse_part(part: &[u8]) -> Result<InnerRequest, (Option<String>, ApiError)> {
    let (part_head, inner) = multipart::split_head(part);
    let part_headers = header_fields(part_head);
    let content_id = part_headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("Content-ID"))
        .map(|(_, v)| v.clone());
    let malformed = |what: &str| {
        (
            content_id.clone(),
            ApiError::bad_request(format!("Malformed batch part: {what}")),
        )
    };

    let line_end = inner
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| malformed("no request line"))?;
    let request_line = std::str::from_utf8(&inner[..line_end])
        .map_err(|_| malformed("request line is not UTF-8"))?
        .trim();
    let mut words = request_line.split_whitespace();
    let (Some(method), Some(target)) = (words.next(), words.next()) else {
        return Err(malformed("bad request line"));
    };
    let method = Method::from_bytes(method.as_bytes()).map_err(|_| malformed("bad method"))?;
    let (head, body) = multipart::split_head(&inner[line_end + 1..]);
    Ok(InnerRequest {
        content_id,
        method,
        path_and_query: origin_form(target).to_string(),
        headers: header_fields(head),
        body: body.to_vec(),
    })
}

/// `https://host/path?q` → `/path?q`; an origin-form target stays as it is.
fn origin_form(target: &str) -> &str {
    match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    }
}

async fn dispatch(
    api: &Router,
    inner: InnerRequest,
    outer_authorization: Option<&HeaderValue>,
) -> Response {
    let mut request = Request::new(Body::from(inner.body));
    *request.method_mut() = inner.method;
    match inner.path_and_query.parse() {
        Ok(uri) => *request.uri_mut() = uri,
        Err(_) => return ApiError::bad_request("Malformed batch part: bad URL").into_response(),
    }
    let headers = request.headers_mut();
    for (name, value) in &inner.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    if !headers.contains_key(header::AUTHORIZATION)
        && let Some(value) = outer_authorization
    {
        headers.insert(header::AUTHORIZATION, value.clone());
    }
    match api.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

async fn write_part(
    out: &mut Vec<u8>,
    boundary: &str,
    content_id: Option<&str>,
    response: Response,
) {
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    out.extend_from_slice(format!("--{boundary}\r\nContent-Type: application/http\r\n").as_bytes());
    if let Some(id) = content_id {
        let id = id.trim();
        let inner = id
            .strip_prefix('<')
            .and_then(|i| i.strip_suffix('>'))
            .unwrap_or(id);
        out.extend_from_slice(format!("Content-ID: <response-{inner}>\r\n").as_bytes());
    }
    let reason = parts.status.canonical_reason().unwrap_or("Unknown");
    out.extend_from_slice(
        format!("\r\nHTTP/1.1 {} {reason}\r\n", parts.status.as_u16()).as_bytes(),
    );
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_targets_become_origin_form() {
        assert_eq!(
            origin_form("https://gmail.googleapis.com/gmail/v1/users/me/profile?alt=json"),
            "/gmail/v1/users/me/profile?alt=json"
        );
        assert_eq!(
            origin_form("/gmail/v1/users/me/profile"),
            "/gmail/v1/users/me/profile"
        );
    }

    #[test]
    fn a_part_written_by_python_parses() {
        let part = b"Content-Type: application/http\nMIME-Version: 1.0\nContent-Transfer-Encoding: binary\nContent-ID: <abc + 1>\n\nGET /gmail/v1/users/me/messages/1?format=metadata&alt=json HTTP/1.1\nContent-Type: application/json\nMIME-Version: 1.0\naccept: application/json\nauthorization: Bearer t\nHost: 127.0.0.1:1\n\n";
        let inner = parse_part(part).ok().unwrap();
        assert_eq!(inner.content_id.as_deref(), Some("<abc + 1>"));
        assert_eq!(inner.method, Method::GET);
        assert_eq!(
            inner.path_and_query,
            "/gmail/v1/users/me/messages/1?format=metadata&alt=json"
        );
        assert!(
            inner
                .headers
                .iter()
                .any(|(n, v)| n == "authorization" && v == "Bearer t")
        );
        assert!(inner.body.is_empty());
    }
}
