//! The authorized request path every Graph call takes: token, request, and one retry
//! with a new token when Graph refuses the cached one (it may have expired or been
//! revoked early). There are no other retries here: pacing and retrying are the sync
//! engine's job, and it gets each failure's kind and `Retry-After` to do it.

use crate::endpoints::{GRAPH_DEFAULT_SCOPE, ParsedEndpoints};
use crate::error::{GraphCall, PROVIDER, graph_failure};
use crate::token::TokenProvider;
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode, Url};
use serde::de::DeserializeOwned;
use tributary_core::{ProviderDetail, ProviderError};

/// What Graph answered, with the token that was used.
pub(crate) use tributary_http::Answer;

/// The shared HTTP side of the connector.
#[derive(Debug)]
pub(crate) struct Api {
    pub http: reqwest::Client,
    pub tokens: TokenProvider,
    pub endpoints: ParsedEndpoints,
}

impl Api {
    /// Sends the request built by `build` with a Graph token; on 401 drops that token
    /// and sends once more with a new one.
    pub async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Answer, ProviderError> {
        tributary_http::send_authorized(
            &self.http,
            || self.tokens.token(GRAPH_DEFAULT_SCOPE),
            |token| async move { self.tokens.invalidate(GRAPH_DEFAULT_SCOPE, &token).await },
            build,
        )
        .await
    }

    /// A GET answered with JSON, with extra request headers (`Prefer`). `Ok(None)` when
    /// a single-item call finds the item gone.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        url: Url,
        headers: &[(&'static str, String)],
        call: GraphCall,
        what: &str,
    ) -> Result<Option<T>, ProviderError> {
        let answer = self
            .send(|http| {
                let mut request = http.get(url.clone());
                for (name, value) in headers {
                    request = request.header(*name, value.as_str());
                }
                request
            })
            .await?;
        decode_answer(answer.status, &answer.headers, &answer.body, call, what)
    }

    /// A link Graph handed out (next or delta link), checked to be under the Graph
    /// root before the token goes there.
    pub fn graph_link(&self, link: &str, what: &str) -> Result<Url, ProviderError> {
        Url::parse(link)
            .ok()
            .filter(|url| self.endpoints.is_graph_link(url))
            .ok_or_else(|| {
                ProviderError::other(ProviderDetail::new(format!(
                    "the {what} link is not under the configured Graph endpoint; it is not followed"
                )))
            })
    }
}

/// A JSON answer decoded, or its failure classified. Also used for batch items.
pub(crate) fn decode_answer<T: DeserializeOwned>(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    call: GraphCall,
    what: &str,
) -> Result<Option<T>, ProviderError> {
    tributary_http::decode_answer(PROVIDER, status, headers, body, what, || {
        graph_failure(status, headers, body, call)
    })
}

/// `Ok(None)` from a call that cannot answer "gone".
pub(crate) fn required<T>(value: Option<T>, what: &str) -> Result<T, ProviderError> {
    tributary_http::required(PROVIDER, value, what)
}
