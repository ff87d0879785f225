//! The request both OAuth 2.0 grants end in (Google's JWT bearer, Microsoft's client
//! credentials): a form POSTed to the operator's token endpoint, answered with
//! `{"access_token","expires_in"}`. What goes in the form and what a refusal means are
//! the provider's.

use crate::token_cache::MintedToken;
use crate::{describe_answer, exchange, malformed_answer};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Deserializer};
use std::time::Duration;
use tributary_core::ProviderError;

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(deserialize_with = "seconds")]
    expires_in: u64,
}

/// `expires_in` is a number, or a string of one (msal accepts both).
fn seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Seconds {
        Number(u64),
        Text(String),
    }
    match Seconds::deserialize(deserializer)? {
        Seconds::Number(n) => Ok(n),
        Seconds::Text(text) => text.trim().parse().map_err(serde::de::Error::custom),
    }
}

/// POSTs `form` (already URL-encoded) to `token_url` through `http`, which must not
/// follow redirects. A failure answer is classified by `refused`, `provider`'s table of
/// token errors.
pub async fn request_token(
    http: &reqwest::Client,
    token_url: &Url,
    form: String,
    provider: &str,
    refused: impl FnOnce(StatusCode, &HeaderMap, &[u8]) -> ProviderError,
) -> Result<MintedToken, ProviderError> {
    let request = http
        .post(token_url.clone())
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(ACCEPT, "application/json")
        .body(form);
    let (status, headers, body) = exchange(request).await?;
    if !status.is_success() {
        return Err(refused(status, &headers, &body));
    }
    read_token_answer(provider, status, &headers, &body)
}

/// The token in a success answer; an answer without one is described, never quoted.
fn read_token_answer(
    provider: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<MintedToken, ProviderError> {
    let answer: TokenAnswer = serde_json::from_slice(body).map_err(|e| {
        malformed_answer(
            provider,
            "token",
            &describe_answer(status, headers, body),
            &e,
        )
    })?;
    Ok(MintedToken {
        secret: answer.access_token,
        lifetime: Duration::from_secs(answer.expires_in),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn read(body: &str) -> Result<MintedToken, ProviderError> {
        read_token_answer(
            "Microsoft",
            StatusCode::OK,
            &HeaderMap::new(),
            body.as_bytes(),
        )
    }

    #[test]
    fn lifetimes_are_numbers_or_strings_of_one() {
        let number = read(r#"{"access_token":"t1","expires_in":3599,"token_type":"Bearer"}"#);
        assert_eq!(number.unwrap().lifetime, Duration::from_secs(3599));
        let text = read(r#"{"access_token":"t2","expires_in":" 3600 "}"#).unwrap();
        assert_eq!(text.lifetime, Duration::from_secs(3600));
        assert_eq!(text.secret, "t2");
    }

    #[test]
    fn answers_without_a_token_are_described_never_quoted() {
        let error = read(r#"{"access_token":"MARKER","expires_in":"soon"}"#).unwrap_err();
        assert!(!error.message().contains("MARKER"), "{error}");
        assert!(!error.message().contains("soon"), "{error}");
        assert!(
            error.message().contains("JSON of an unexpected shape"),
            "{error}"
        );
        assert!(error.message().contains("Microsoft (token)"), "{error}");
        let error = read(r#"{"expires_in":3600}"#).unwrap_err();
        assert!(error.message().contains("unexpected shape"), "{error}");
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
        let html = read_token_answer("Google", StatusCode::OK, &headers, b"<html>MARKER");
        assert_eq!(
            html.unwrap_err().message(),
            "unexpected answer from Google (token): HTTP 200 OK, text/html, 12 bytes: not JSON (line 1, column 1)"
        );
    }
}
