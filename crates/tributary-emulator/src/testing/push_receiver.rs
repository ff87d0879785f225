//! A push receiver: an HTTP endpoint on loopback that the emulators deliver push
//! notifications to (Pub/Sub push envelopes, Graph change and lifecycle notifications,
//! Calendar web-hooks). It answers Graph's validation handshake as Tributary's server
//! does, acknowledges every notification (or fails the next few on request) and hands
//! each one to the test.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// Long enough for a notification that is on its way; a missing one fails the test.
const PATIENCE: Duration = Duration::from_secs(20);
/// How long "nothing more arrives" is watched for (the emulators look every 20 ms).
const QUIET: Duration = Duration::from_millis(1500);
/// What a validation request gets back when the receiver is told not to echo.
const NOT_THE_TOKEN: &str = "hello";

/// One notification the receiver got (validation handshakes are answered, not recorded).
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The request's path, without its query.
    pub path: String,
    pub headers: HeaderMap,
    /// The body as sent (Calendar's notifications have none).
    pub raw_body: Bytes,
    /// The body as JSON; `Null` when it is empty or not JSON.
    pub body: Value,
}

impl Delivery {
    /// The value of header `name`, when present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

struct Switches {
    delivered: mpsc::UnboundedSender<Delivery>,
    /// Notifications still to answer 500 before acknowledging again.
    fail_next: AtomicU32,
    /// Whether validation requests get their token back.
    echo: AtomicBool,
}

/// A running receiver. It serves until the test's runtime stops, also once dropped
/// (it then acknowledges without recording).
pub struct PushReceiver {
    url: String,
    switches: Arc<Switches>,
    delivered: mpsc::UnboundedReceiver<Delivery>,
}

impl PushReceiver {
    /// Binds a loopback port and serves on it.
    pub async fn start() -> PushReceiver {
        let (sender, delivered) = mpsc::unbounded_channel();
        let switches = Arc::new(Switches {
            delivered: sender,
            fail_next: AtomicU32::new(0),
            echo: AtomicBool::new(true),
        });
        let app = Router::new()
            .fallback(receive)
            .with_state(Arc::clone(&switches));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the push receiver binds");
        let url = format!("http://{}", listener.local_addr().expect("a bound address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        PushReceiver {
            url,
            switches,
            delivered,
        }
    }

    /// `http://127.0.0.1:<port>`, to which any path may be appended.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Answers the next `count` notifications with 500 (they are still recorded).
    pub fn fail_next(&self, count: u32) {
        self.switches.fail_next.store(count, Ordering::SeqCst);
    }

    /// Whether validation requests get their token back (on at start); when off they
    /// get another text, so Graph's handshake fails.
    pub fn echo_validation(&self, echo: bool) {
        self.switches.echo.store(echo, Ordering::SeqCst);
    }

    /// The next notification; panics when none arrives in time.
    pub async fn next(&mut self) -> Delivery {
        tokio::time::timeout(PATIENCE, self.delivered.recv())
            .await
            .expect("a notification arrives")
            .expect("the receiver runs")
    }

    /// Panics when a notification arrives within a while.
    pub async fn nothing_more(&mut self) {
        if let Ok(Some(extra)) = tokio::time::timeout(QUIET, self.delivered.recv()).await {
            panic!("unexpected notification: {extra:?}");
        }
    }
}

async fn receive(
    State(switches): State<Arc<Switches>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(token) = validation_token(&uri) {
        let answer = if switches.echo.load(Ordering::SeqCst) {
            token
        } else {
            NOT_THE_TOKEN.to_owned()
        };
        return ([(header::CONTENT_TYPE, "text/plain")], answer).into_response();
    }
    let delivery = Delivery {
        path: uri.path().to_owned(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw_body: body,
    };
    // The test may have dropped the receiver's handle; the emulator is still answered.
    let _ = switches.delivered.send(delivery);
    let fail = switches
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if fail {
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    } else {
        StatusCode::ACCEPTED.into_response()
    }
}

/// Graph's `validationToken` query parameter, decoded.
fn validation_token(uri: &Uri) -> Option<String> {
    form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(name, _)| name == "validationToken")
        .map(|(_, token)| token.into_owned())
}
