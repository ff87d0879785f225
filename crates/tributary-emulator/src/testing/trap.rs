//! A trap: a plain HTTP server on loopback that records every request and answers with
//! canned responses chosen by path, so a connector's tests show where it sends (or does
//! not send) its requests and what it repeats of an answer (the SSRF and no-echo tests of
//! every provider connector).

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the trap answers.
#[derive(Debug, Clone)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// One answer: status, headers and body.
impl Canned {
    /// An HTML page, as a captive portal or an internal admin page would answer.
    pub fn html(status: u16, body: &str) -> Self {
        Canned {
            status,
            headers: vec![("Content-Type".into(), "text/html; charset=utf-8".into())],
            body: body.to_owned(),
        }
    }

    /// A JSON body with `status`.
    pub fn json(status: u16, body: &str) -> Self {
        Canned {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_owned(),
        }
    }

    /// A redirect to `location`.
    pub fn redirect(status: u16, location: &str) -> Self {
        Canned {
            status,
            headers: vec![("Location".into(), location.to_owned())],
            body: String::new(),
        }
    }
}

/// A request as the trap saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
}

/// Path fragments and their answers, tried in order.
pub type Routes = Vec<(String, Canned)>;

/// A running trap (it stops with the test's runtime).
pub struct Trap {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Trap {
    /// Answers every request with `answer`.
    pub async fn start(answer: Canned) -> Trap {
        Trap::routed(Vec::new(), answer).await
    }

    /// Answers a path containing a route's key with its answer, else `fallback`.
    pub async fn routed(routes: Routes, fallback: Canned) -> Trap {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the trap binds");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&seen);
        let routes = Arc::new((routes, fallback));
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (recorded, routes) = (Arc::clone(&recorded), Arc::clone(&routes));
                tokio::spawn(async move {
                    let _ = serve(socket, &recorded, &routes.0, &routes.1).await;
                });
            }
        });
        Trap { url, seen }
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn serve(
    mut socket: TcpStream,
    recorded: &Mutex<Vec<Seen>>,
    routes: &Routes,
    fallback: &Canned,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = socket.read(&mut buffer).await?;
        if read == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buffer[..read]);
    }
    // Read the body too, so closing the socket never cuts off a client still sending.
    let head_end = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4;
    let text = String::from_utf8_lossy(&head[..head_end]).into_owned();
    let header = |wanted: &str| {
        text.lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case(wanted))
            .map(|(_, value)| value.trim().to_owned())
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body_read = head.len() - head_end;
    while body_read < length {
        let read = socket.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        body_read += read;
    }
    let mut words = text.split_whitespace();
    let method = words.next().unwrap_or_default().to_owned();
    let path = words.next().unwrap_or_default().to_owned();
    let answer = routes
        .iter()
        .find(|(key, _)| path.contains(key.as_str()))
        .map(|(_, canned)| canned)
        .unwrap_or(fallback);
    recorded.lock().unwrap().push(Seen {
        method,
        path,
        authorization: header("authorization"),
    });
    let mut response = format!("HTTP/1.1 {} Trap\r\n", answer.status);
    for (name, value) in &answer.headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
        answer.body.len(),
        answer.body
    ));
    socket.write_all(response.as_bytes()).await?;
    socket.shutdown().await
}
