//! The authorized request path every provider API call takes: a bearer token, the
//! request, and one more try with a new token when the API refuses the cached one (it
//! may have expired or been revoked early). There are no other retries here: pacing and
//! retrying are the sync engine's job.

use crate::exchange;
use crate::token_cache::AccessToken;
use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, HeaderMap};
use reqwest::{RequestBuilder, StatusCode};
use tributary_core::ProviderError;

/// What the API answered, with the token that was used.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub token: AccessToken,
}

/// Sends the request `build` makes on `http` with the token `token` gives; on 401 hands
/// that token to `refused` (which forgets it) and sends once more with a new one. A
/// second 401 is returned as the answer.
///
/// Plain closures returning futures, not async closures: the connectors' futures must
/// stay `Send` for any lifetime inside the sync engine's spawned tasks, which rustc
/// cannot yet prove through an async closure.
pub async fn send_authorized<TokenFuture, RefusedFuture>(
    http: &reqwest::Client,
    token: impl Fn() -> TokenFuture,
    refused: impl Fn(AccessToken) -> RefusedFuture,
    build: impl Fn(&reqwest::Client) -> RequestBuilder,
) -> Result<Answer, ProviderError>
where
    TokenFuture: Future<Output = Result<AccessToken, ProviderError>>,
    RefusedFuture: Future<Output = ()>,
{
    let mut refreshed = false;
    loop {
        let token = token().await?;
        let request = build(http).header(AUTHORIZATION, format!("Bearer {}", token.secret()));
        let (status, headers, body) = exchange(request).await?;
        if status == StatusCode::UNAUTHORIZED && !refreshed {
            tracing::debug!("the API refused the access token; getting a new one");
            refused(token).await;
            refreshed = true;
            continue;
        }
        return Ok(Answer {
            status,
            headers,
            body,
            token,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client_builder;
    use std::sync::Mutex;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A loopback server answering each connection with the next of `statuses`, and the
    /// `Authorization` header of every request it got.
    async fn server(statuses: Vec<u16>) -> (String, tokio::task::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api", listener.local_addr().unwrap());
        let handle = tokio::spawn(async move {
            let mut seen = Vec::new();
            for status in statuses {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut request = vec![0; 4096];
                let read = stream.read(&mut request).await.unwrap();
                let request = String::from_utf8_lossy(&request[..read]).to_lowercase();
                let authorization = request
                    .lines()
                    .find_map(|line| line.strip_prefix("authorization: "))
                    .unwrap_or("none")
                    .to_string();
                seen.push(authorization);
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                );
                stream.write_all(answer.as_bytes()).await.unwrap();
            }
            seen
        });
        (url, handle)
    }

    /// Hands out `token-1`, `token-2`, … and records the tokens refused.
    struct Tokens {
        minted: Mutex<usize>,
        refused: Mutex<Vec<String>>,
    }

    impl Tokens {
        async fn token(&self) -> Result<AccessToken, ProviderError> {
            let mut minted = self.minted.lock().unwrap();
            *minted += 1;
            Ok(AccessToken::new(format!("token-{minted}"), Instant::now()))
        }

        async fn refuse(&self, token: &AccessToken) {
            self.refused
                .lock()
                .unwrap()
                .push(token.secret().to_string());
        }
    }

    async fn send(statuses: Vec<u16>) -> (Answer, Vec<String>, Vec<String>) {
        let (url, server) = server(statuses).await;
        let tokens = &Tokens {
            minted: Mutex::new(0),
            refused: Mutex::new(Vec::new()),
        };
        let http = client_builder().build().unwrap();
        let answer = send_authorized(
            &http,
            || tokens.token(),
            |token| async move { tokens.refuse(&token).await },
            |http| http.get(&url),
        )
        .await
        .unwrap();
        let refused = tokens.refused.lock().unwrap().clone();
        (answer, refused, server.await.unwrap())
    }

    #[tokio::test]
    async fn a_refused_token_is_dropped_and_the_request_sent_once_more() {
        let (answer, refused, seen) = send(vec![401, 200]).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(&answer.body[..], b"ok");
        assert_eq!(answer.token.secret(), "token-2");
        assert_eq!(refused, ["token-1"]);
        assert_eq!(seen, ["bearer token-1", "bearer token-2"]);
    }

    #[tokio::test]
    async fn a_second_refusal_is_the_answer() {
        let (answer, refused, seen) = send(vec![401, 401]).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(refused, ["token-1"]);
        assert_eq!(seen.len(), 2);
    }

    #[tokio::test]
    async fn other_answers_are_returned_as_they_are() {
        let (answer, refused, seen) = send(vec![403]).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN);
        assert!(refused.is_empty());
        assert_eq!(seen, ["bearer token-1"]);
    }
}
