//! Google's batch framing: a `multipart/mixed` request whose parts are whole HTTP
//! requests, answered by a `multipart/mixed` response whose parts are whole HTTP
//! responses, matched to the requests by `Content-ID` (`<id>` → `<response-id>`).

use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

/// Google refuses batches of more than 100 calls.
pub const MAX_BATCH_PARTS: usize = 100;

const MAX_HEADERS: usize = 64;

/// One inner request: an id unique within the batch and the path with its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchPart {
    pub content_id: String,
    pub path_and_query: String,
}

/// One inner response.
#[derive(Debug, Clone)]
pub(crate) struct PartAnswer {
    /// The request's `Content-ID` this answers, when the part named one.
    pub content_id: Option<String>,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// A random boundary that cannot occur in what the parts carry.
pub(crate) fn new_boundary() -> String {
    let token: u128 = rand::thread_rng().r#gen();
    format!("batch_{token:032x}")
}

/// The multipart body of a batch of GET requests.
pub(crate) fn request_body(boundary: &str, parts: &[BatchPart]) -> Vec<u8> {
    let mut body = String::new();
    for part in parts {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <{}>\r\n\r\nGET {} HTTP/1.1\r\n\r\n",
            part.content_id, part.path_and_query
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    body.into_bytes()
}

/// Why a batch response could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BatchParseError {
    #[error("the batch answer is not multipart/mixed with a boundary (content type {0:?})")]
    ContentType(String),
    #[error("batch answer part {index} is malformed: {problem}")]
    Part { index: usize, problem: String },
}

/// The boundary of a `multipart/mixed` content type.
pub(crate) fn boundary_of(content_type: &str) -> Result<String, BatchParseError> {
    let bad = || BatchParseError::ContentType(content_type.to_string());
    let mime: mime::Mime = content_type.parse().map_err(|_| bad())?;
    if mime.type_() != mime::MULTIPART || mime.subtype() != "mixed" {
        return Err(bad());
    }
    mime.get_param(mime::BOUNDARY)
        .map(|b| b.as_str().to_string())
        .filter(|b| !b.is_empty())
        .ok_or_else(bad)
}

/// Splits a multipart body into its parts' bytes (headers and content), per RFC 2046:
/// a delimiter is `--boundary` at the start of a line; `--boundary--` closes.
fn split_parts<'a>(body: &'a [u8], boundary: &str) -> Vec<&'a [u8]> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut starts = Vec::new();
    let mut at = 0;
    while let Some(found) = find(&body[at..], delimiter) {
        let position = at + found;
        let line_start = position == 0 || body[position - 1] == b'\n';
        if line_start {
            starts.push(position);
        }
        at = position + delimiter.len();
    }
    let mut parts = Vec::new();
    for (n, &start) in starts.iter().enumerate() {
        let after = start + delimiter.len();
        if body[after..].starts_with(b"--") {
            break;
        }
        let end = starts.get(n + 1).copied().unwrap_or(body.len());
        let part = skip_line(&body[after..end]);
        parts.push(trim_trailing_newline(part));
    }
    parts
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// What follows the end of the first line (the rest of the delimiter line).
fn skip_line(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|&b| b == b'\n') {
        Some(end) => &bytes[end + 1..],
        None => &[],
    }
}

/// The line break before a delimiter belongs to the delimiter.
fn trim_trailing_newline(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    bytes.strip_suffix(b"\r").unwrap_or(bytes)
}

/// The parts of a batch answer, in the order they came.
pub(crate) fn parse_response(
    content_type: &str,
    body: &[u8],
) -> Result<Vec<PartAnswer>, BatchParseError> {
    let boundary = boundary_of(content_type)?;
    split_parts(body, &boundary)
        .into_iter()
        .enumerate()
        .map(|(index, part)| {
            parse_part(part).map_err(|problem| BatchParseError::Part { index, problem })
        })
        .collect()
}

fn parse_part(part: &[u8]) -> Result<PartAnswer, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let (consumed, part_headers) = match httparse::parse_headers(part, &mut headers) {
        Ok(httparse::Status::Complete(found)) => found,
        Ok(httparse::Status::Partial) => return Err("its headers never end".to_string()),
        Err(e) => return Err(format!("bad part headers: {e}")),
    };
    let content_id = part_headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("Content-ID"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .map(|value| value.trim().trim_start_matches('<').trim_end_matches('>'))
        .map(|value| value.strip_prefix("response-").unwrap_or(value).to_string());
    let (status, headers, body) = parse_inner_response(&part[consumed..])?;
    Ok(PartAnswer {
        content_id,
        status,
        headers,
        body,
    })
}

fn parse_inner_response(bytes: &[u8]) -> Result<(StatusCode, HeaderMap, Vec<u8>), String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let consumed = match response.parse(bytes) {
        Ok(httparse::Status::Complete(consumed)) => consumed,
        Ok(httparse::Status::Partial) => return Err("the inner response is cut short".to_string()),
        Err(e) => return Err(format!("bad inner response: {e}")),
    };
    let status = response
        .code
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or("the inner response has no status")?;
    let mut header_map = HeaderMap::new();
    let mut content_length = None;
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("Content-Length") {
            content_length = std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok());
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(header.name.as_bytes()),
            HeaderValue::from_bytes(header.value),
        ) {
            header_map.append(name, value);
        }
    }
    let body = &bytes[consumed..];
    let body = match content_length {
        Some(length) if length <= body.len() => &body[..length],
        _ => body,
    };
    Ok((status, header_map, body.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_framed_as_google_expects() {
        let parts = [
            BatchPart {
                content_id: "b+0".to_string(),
                path_and_query: "/gmail/v1/users/me/messages/1?format=metadata".to_string(),
            },
            BatchPart {
                content_id: "b+1".to_string(),
                path_and_query: "/gmail/v1/users/me/messages/2?format=metadata".to_string(),
            },
        ];
        let body = String::from_utf8(request_body("XX", &parts)).unwrap();
        assert_eq!(
            body,
            "--XX\r\nContent-Type: application/http\r\nContent-ID: <b+0>\r\n\r\n\
             GET /gmail/v1/users/me/messages/1?format=metadata HTTP/1.1\r\n\r\n\
             --XX\r\nContent-Type: application/http\r\nContent-ID: <b+1>\r\n\r\n\
             GET /gmail/v1/users/me/messages/2?format=metadata HTTP/1.1\r\n\r\n--XX--\r\n"
        );
    }

    #[test]
    fn responses_are_split_and_matched_by_content_id() {
        let body = "--batch_X\r\nContent-Type: application/http\r\nContent-ID: <response-b+1>\r\n\r\n\
            HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=UTF-8\r\nContent-Length: 11\r\n\r\n\
            {\"id\":\"2\"}\n\r\n\
            --batch_X\r\nContent-Type: application/http\r\nContent-ID: <response-b+0>\r\n\r\n\
            HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\r\n{\"error\":{}}\r\n\
            --batch_X--\r\n";
        let parts = parse_response("multipart/mixed; boundary=batch_X", body.as_bytes()).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].content_id.as_deref(), Some("b+1"));
        assert_eq!(parts[0].status, StatusCode::OK);
        assert_eq!(parts[0].body, b"{\"id\":\"2\"}\n");
        assert_eq!(parts[1].content_id.as_deref(), Some("b+0"));
        assert_eq!(parts[1].status, StatusCode::NOT_FOUND);
        assert_eq!(parts[1].body, b"{\"error\":{}}");
    }

    #[test]
    fn bare_line_feeds_a_preamble_and_quoted_boundaries_are_accepted() {
        let body = "preamble\n--b\nContent-Type: application/http\n\nHTTP/1.1 500 Internal Server Error\n\n{}\n--b--\n";
        let parts = parse_response("multipart/mixed; boundary=\"b\"", body.as_bytes()).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].content_id, None);
        assert_eq!(parts[0].status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(parts[0].body, b"{}");
    }

    #[test]
    fn a_boundary_inside_a_line_is_content() {
        let body = "--b\r\n\r\nHTTP/1.1 200 OK\r\n\r\nx --b y\r\n--b--";
        let parts = parse_response("multipart/mixed; boundary=b", body.as_bytes()).unwrap();
        assert_eq!(parts[0].body, b"x --b y");
    }

    #[test]
    fn unreadable_answers_say_why() {
        assert!(matches!(
            parse_response("application/json", b"{}"),
            Err(BatchParseError::ContentType(_))
        ));
        let error = parse_response(
            "multipart/mixed; boundary=b",
            b"--b\r\n\r\nnot http\r\n--b--",
        )
        .unwrap_err();
        assert!(
            matches!(error, BatchParseError::Part { index: 0, .. }),
            "{error}"
        );
    }
}
