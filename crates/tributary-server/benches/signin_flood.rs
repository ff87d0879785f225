//! Another tenant's API read latency, alone and under a sign-in flood (issue #11,
//! finding 3): password hashing must not slow every other request.
//!
//! The server runs in-process on 127.0.0.1:0 in a runtime of its own (two worker
//! threads, as `tributary serve` has on this two-core machine); the clients run in
//! another. One client reads `GET /api/v1/links` of tenant `globex` sequentially and
//! times each read; meanwhile 8 senders post wrong passwords to `/signin` as fast as
//! the server answers. Scenarios:
//!
//! - `alone`: the reads only.
//! - `flood, one address`: the 8 senders post from 127.0.0.1 for an account of
//!   tenant `acme` (what the finding measured).
//! - `flood, rotating addresses`: each sender moves to a fresh loopback address
//!   (127.x.y.z) every 20 attempts and names a different unknown account each attempt,
//!   the worst case for the throttle (a password spray from many machines): every
//!   attempt costs a hash.
//!
//! `cargo bench -p tributary-server --bench signin_flood`
//! (or `cargo test -p tributary-server --bench signin_flood` for the dev profile, whose
//! dependencies, argon2 among them, are optimised too).
//!
//! Environment: `TRIBUTARY_BENCH_READS` (reads per scenario, default 400).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tributary_server::{AppState, ServerConfig};
use tributary_store::testing::TestDatabase;
use tributary_store::{MasterKey, MemberRole, TenantId};
use tributary_sync::{Runtime, RuntimeConfig};

const SENDERS: usize = 8;
const ATTEMPTS_PER_ADDRESS: usize = 20;
const PASSWORD: &str = "correct horse battery staple";
const ACME_ADMIN: &str = "admin@acme.test";

fn reads_per_scenario() -> usize {
    std::env::var("TRIBUTARY_BENCH_READS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(400)
}

/// The server on its own runtime; what the clients need to reach it.
struct Server {
    url: String,
    token: String,
    _database: TestDatabase,
    _runtime: tokio::runtime::Runtime,
}

fn start_server() -> Server {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the server runtime");
    let (url, token, database) = runtime.block_on(async {
        let database = TestDatabase::sqlite().await;
        let store = database.store.clone();
        let (acme, globex) = (TenantId::new("acme"), TenantId::new("globex"));
        store.create_tenant(&acme, "Acme").await.unwrap();
        store.create_tenant(&globex, "Globex").await.unwrap();
        let account = |tenant: TenantId, email: &'static str| {
            let store = store.clone();
            async move {
                tributary_server::auth::create_user(
                    &store,
                    &tenant,
                    email,
                    MemberRole::Admin,
                    PASSWORD,
                    "bench",
                )
                .await
                .unwrap()
            }
        };
        account(acme.clone(), ACME_ADMIN).await;
        let reader = account(globex.clone(), "admin@globex.test").await;
        let token = store
            .create_api_token(&globex, reader, "bench", "bench")
            .await
            .unwrap()
            .secret;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let runtime = Runtime::new(store, MasterKey::generate(), RuntimeConfig::default());
        let config = ServerConfig {
            public_url: url.clone(),
            ..ServerConfig::default()
        };
        tokio::spawn(tributary_server::serve(
            listener,
            AppState::new(runtime, config),
            std::future::pending(),
        ));
        (url, token, database)
    });
    Server {
        url,
        token,
        _database: database,
        _runtime: runtime,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flood {
    None,
    OneAddress,
    RotatingAddresses,
}

impl Flood {
    fn label(self) -> &'static str {
        match self {
            Flood::None => "alone",
            Flood::OneAddress => "flood, one address",
            Flood::RotatingAddresses => "flood, rotating addresses",
        }
    }
}

/// What one scenario measured.
struct Figures {
    median: Duration,
    p95: Duration,
    attempts: u64,
    throttled: u64,
    elapsed: Duration,
}

/// Answers to the flood's attempts: all of them, and how many were 429.
#[derive(Default)]
struct Counters {
    attempts: AtomicU64,
    throttled: AtomicU64,
}

fn client(address: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(address)
        .build()
        .expect("a client")
}

/// The `n`th loopback address a rotating sender uses (never 127.0.0.1).
fn loopback(sender: usize, n: usize) -> IpAddr {
    let index = (sender << 16) + n + 1;
    IpAddr::V4(Ipv4Addr::new(
        127,
        1 + (index >> 16) as u8,
        (index >> 8) as u8,
        index as u8,
    ))
}

/// Posts wrong passwords until `stop`. The sign-in form's double-submit check only
/// compares the cookie with the field, so any pair of equal values passes it.
async fn send_wrong_passwords(
    base: String,
    sender: usize,
    flood: Flood,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) {
    let mut round = 0;
    while !stop.load(Ordering::Relaxed) {
        let http = match flood {
            Flood::OneAddress => client(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            _ => client(loopback(sender, round)),
        };
        for attempt in 0..ATTEMPTS_PER_ADDRESS {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let email = match flood {
                Flood::OneAddress => ACME_ADMIN.to_owned(),
                _ => format!("nobody{sender}-{round}-{attempt}@acme.test"),
            };
            let body = format!(
                "email={}&password=wrong-password-{attempt}&csrf=bench",
                email.replace('@', "%40")
            );
            let sent = http
                .post(format!("{base}/signin"))
                .header(reqwest::header::COOKIE, "tributary_signin=bench")
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body)
                .send()
                .await;
            counters.attempts.fetch_add(1, Ordering::Relaxed);
            if let Ok(response) = sent {
                if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
                    counters.throttled.fetch_add(1, Ordering::Relaxed);
                }
                let _ = response.bytes().await;
            }
        }
        round += 1;
    }
}

async fn scenario(server: &Server, flood: Flood, reads: usize) -> Figures {
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let senders: Vec<_> = (0..SENDERS)
        .filter(|_| flood != Flood::None)
        .map(|sender| {
            tokio::spawn(send_wrong_passwords(
                server.url.clone(),
                sender,
                flood,
                Arc::clone(&stop),
                Arc::clone(&counters),
            ))
        })
        .collect();
    if flood != Flood::None {
        // Let the flood reach its steady state first.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let attempts_before = counters.attempts.load(Ordering::Relaxed);
    let throttled_before = counters.throttled.load(Ordering::Relaxed);
    let reader = client(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(reads);
    for _ in 0..reads {
        let sent = Instant::now();
        let response = reader
            .get(format!("{}/api/v1/links", server.url))
            .bearer_auth(&server.token)
            .send()
            .await
            .expect("the read is answered");
        assert!(response.status().is_success(), "{}", response.status());
        let _ = response.bytes().await;
        latencies.push(sent.elapsed());
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        let _ = sender.await;
    }
    latencies.sort();
    Figures {
        median: latencies[latencies.len() / 2],
        p95: latencies[latencies.len() * 95 / 100],
        attempts: counters.attempts.load(Ordering::Relaxed) - attempts_before,
        throttled: counters.throttled.load(Ordering::Relaxed) - throttled_before,
        elapsed,
    }
}

fn millis(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1000.0)
}

fn main() {
    let reads = reads_per_scenario();
    let server = start_server();
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the client runtime");
    println!("another tenant's API read (GET /api/v1/links), {reads} reads per scenario");
    println!(
        "| scenario | median ms | p95 ms | sign-in attempts/s | of which 429 |\n| --- | ---: | ---: | ---: | ---: |"
    );
    for flood in [Flood::None, Flood::OneAddress, Flood::RotatingAddresses] {
        let figures = clients.block_on(scenario(&server, flood, reads));
        let rate = figures.attempts as f64 / figures.elapsed.as_secs_f64();
        println!(
            "| {} | {} | {} | {:.0} | {} |",
            flood.label(),
            millis(figures.median),
            millis(figures.p95),
            rate,
            figures.throttled,
        );
    }
}
