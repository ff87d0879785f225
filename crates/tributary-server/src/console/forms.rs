//! Posted forms: read within the body limit, and refused unless they carry the
//! session's CSRF token. Handlers never see a form that failed the check.

use super::error::PageError;
use super::session::Viewer;
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;

/// The CSRF field's name in every form.
pub const CSRF_FIELD: &str = "csrf";

/// A URL-encoded form posted by a signed-in user, its CSRF token checked.
#[derive(Debug)]
pub struct SignedForm {
    pub viewer: Viewer,
    pub fields: Fields,
}

/// A multipart form (the key upload) posted by a signed-in user, its CSRF token
/// checked before any other part is looked at.
#[derive(Debug)]
pub struct SignedUpload {
    pub viewer: Viewer,
    pub fields: Fields,
    /// File parts: (field name, content).
    pub files: Vec<(String, Bytes)>,
}

/// A form's text fields in the order posted (a name may repeat: checkboxes).
#[derive(Debug, Default, Clone)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// True for a ticked checkbox.
    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    fn csrf_matches(&self, viewer: &Viewer) -> bool {
        self.get(CSRF_FIELD)
            .is_some_and(|token| constant_time_eq(token.as_bytes(), viewer.csrf.as_bytes()))
    }
}

/// Compares without an early exit, so timing does not tell how much of a guess was
/// right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() || a.is_empty() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

async fn body_bytes(body: Body, limit: usize) -> Result<Bytes, PageError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| PageError::TooLarge(limit))
}

pub(super) fn parse_urlencoded(bytes: &[u8]) -> Fields {
    Fields(
        form_urlencoded::parse(bytes)
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect(),
    )
}

impl FromRequest<AppState> for SignedForm {
    type Rejection = axum::response::Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        let (mut parts, body) = request.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, state).await?;
        let bytes = body_bytes(body, state.config.max_body_bytes)
            .await
            .map_err(IntoResponse::into_response)?;
        let fields = parse_urlencoded(&bytes);
        if !fields.csrf_matches(&viewer) {
            return Err(PageError::Csrf.into_response());
        }
        Ok(SignedForm { viewer, fields })
    }
}

impl FromRequest<AppState> for SignedUpload {
    type Rejection = axum::response::Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        let (mut parts, body) = request.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, state).await?;
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let boundary = multer::parse_boundary(content_type).map_err(|_| {
            PageError::BadRequest("the upload is not a multipart form".to_owned()).into_response()
        })?;
        let bytes = body_bytes(body, state.config.max_body_bytes)
            .await
            .map_err(IntoResponse::into_response)?;
        let (fields, files) = parse_multipart(bytes, boundary)
            .await
            .map_err(IntoResponse::into_response)?;
        if !fields.csrf_matches(&viewer) {
            return Err(PageError::Csrf.into_response());
        }
        Ok(SignedUpload {
            viewer,
            fields,
            files,
        })
    }
}

async fn parse_multipart(
    bytes: Bytes,
    boundary: String,
) -> Result<(Fields, Vec<(String, Bytes)>), PageError> {
    let malformed = |_| PageError::BadRequest("the multipart form is malformed".to_owned());
    let mut multipart = multer::Multipart::new(Body::from(bytes).into_data_stream(), boundary);
    let mut fields = Vec::new();
    let mut files = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or_default().to_owned();
        let is_file = field.file_name().is_some();
        let content = field.bytes().await.map_err(malformed)?;
        if is_file {
            files.push((name, content));
        } else {
            let text = String::from_utf8(content.to_vec()).map_err(|_| {
                PageError::BadRequest(format!("the field `{name}` is not UTF-8 text"))
            })?;
            fields.push((name, text));
        }
    }
    Ok((Fields(fields), files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_by_content_and_refuse_empty() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b""));
    }

    #[test]
    fn repeated_checkboxes_are_all_kept() {
        let fields = parse_urlencoded(b"link=1&link=7&action=start&csrf=x");
        assert_eq!(fields.all("link").collect::<Vec<_>>(), ["1", "7"]);
        assert_eq!(fields.get("action"), Some("start"));
        assert!(!fields.checked("missing"));
    }
}
