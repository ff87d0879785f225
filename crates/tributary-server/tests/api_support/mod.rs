//! Test support for the REST API: an emulated organization, a store on SQLite or
//! PostgreSQL, the server on loopback, two tenants with admin and member accounts and
//! their API tokens, and a JSON client that keeps every response body it saw (so a test
//! can check no secret ever left the server).

#![allow(dead_code)] // each test uses a different part of this module

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tributary_emulator::org::OrgConfig;
use tributary_emulator::server::{EmulatorConfig, OrgSource, RunningEmulator, start};
use tributary_google::GoogleEndpoints;
use tributary_server::{AppState, ServerConfig, SmtpConfig};
use tributary_store::{MasterKey, MemberRole, Store, TenantId};
use tributary_sync::{EngineConfig, PacingConfig, Runtime, RuntimeConfig, Worker};

pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Stores on fresh SQLite files or PostgreSQL databases (the store's test support).
pub use tributary_store::Backend;
pub use tributary_store::testing::TestDatabase as TestStore;

/// An emulated organization of `users` users with `messages` messages each.
pub async fn emulator(users: usize, messages: usize) -> RunningEmulator {
    start(EmulatorConfig {
        organization: OrgSource::Generate(OrgConfig {
            users,
            messages_per_user: messages,
            ..OrgConfig::default()
        }),
        ..EmulatorConfig::default()
    })
    .await
    .expect("the emulator starts")
}

/// The first active directory user with a mailbox other than the admin.
pub fn ordinary_user(emulator: &RunningEmulator) -> String {
    let admin = emulator.info.admin_email.to_lowercase();
    let org = emulator.state.org();
    org.users
        .iter()
        .map(|u| (u, u.primary_email.to_lowercase()))
        .find(|(u, email)| {
            !u.suspended && !u.archived && !u.deleted && u.is_mailbox_setup && *email != admin
        })
        .expect("an ordinary user")
        .1
}

pub fn key_file(emulator: &RunningEmulator) -> Value {
    serde_json::to_value(&emulator.key_file).unwrap()
}

fn runtime_config(emulator: &RunningEmulator) -> RuntimeConfig {
    RuntimeConfig {
        endpoints: GoogleEndpoints::from_base_url(&emulator.base_url),
        engine: EngineConfig {
            pacing: PacingConfig {
                max_attempts: 6,
                initial_backoff: Duration::from_millis(5),
                max_backoff: Duration::from_millis(200),
                ..PacingConfig::default()
            },
            reference_now_ms: Some(emulator.state.org().now_ms),
            ..EngineConfig::default()
        },
        ..RuntimeConfig::default()
    }
}

/// Mails a sink accepted: (recipients, text).
pub type Mails = Arc<Mutex<Vec<(Vec<String>, String)>>>;

/// A minimal SMTP sink on loopback: accepts every message and keeps its recipients and
/// text, so tests see the notice that capture is on arrive.
pub struct SmtpSink {
    pub port: u16,
    pub mails: Mails,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&mails);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let kept = Arc::clone(&kept);
                tokio::spawn(async move {
                    let _ = smtp_session(socket, kept).await;
                });
            }
        });
        SmtpSink { port, mails }
    }

    pub fn config(&self) -> SmtpConfig {
        SmtpConfig {
            host: "127.0.0.1".to_owned(),
            port: self.port,
            from: "tributary@api.test".to_owned(),
            username: None,
            password: None,
            plaintext: true,
        }
    }
}

async fn smtp_session(socket: tokio::net::TcpStream, mails: Mails) -> std::io::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink ready\r\n").await?;
    let mut recipients = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => write.write_all(b"250-sink\r\n250 8BITMIME\r\n").await?,
            "RCPT" => {
                let address = line.split(['<', '>']).nth(1).unwrap_or("").to_owned();
                recipients.push(address);
                write.write_all(b"250 OK\r\n").await?;
            }
            "DATA" => {
                write.write_all(b"354 go on\r\n").await?;
                let mut text = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 || line.trim_end() == "." {
                        break;
                    }
                    text.push_str(&line);
                }
                mails
                    .lock()
                    .unwrap()
                    .push((std::mem::take(&mut recipients), text));
                write.write_all(b"250 queued\r\n").await?;
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => write.write_all(b"250 OK\r\n").await?,
        }
    }
}

/// The server over a store, with tenants `acme` (an admin and `member_email` as a
/// member) and `globex` (an admin), each with an API token.
pub struct Server {
    pub url: String,
    pub runtime: Runtime,
    pub acme: TenantId,
    pub globex: TenantId,
    pub admin: Api,
    pub member: Api,
    pub other_tenant: Api,
    pub anonymous: Api,
    shutdown: watch::Sender<bool>,
    store: Option<TestStore>,
}

pub const ACME_ADMIN: &str = "root@acme-admin.test";
pub const GLOBEX_ADMIN: &str = "root@globex-admin.test";
pub const PASSWORD: &str = "a long enough password";

impl Server {
    pub async fn start(
        store: TestStore,
        emulator: Option<&RunningEmulator>,
        member_email: &str,
    ) -> Self {
        Self::start_with(store, emulator, member_email, None).await
    }

    pub async fn start_with(
        store: TestStore,
        emulator: Option<&RunningEmulator>,
        member_email: &str,
        smtp: Option<SmtpConfig>,
    ) -> Self {
        let runtime_config = emulator.map(runtime_config).unwrap_or_default();
        let runtime = Runtime::new(store.store.clone(), MasterKey::generate(), runtime_config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let config = ServerConfig {
            public_url: url.clone(),
            max_body_bytes: MAX_BODY_BYTES,
            smtp,
            ..ServerConfig::default()
        };
        let (shutdown, mut stop) = watch::channel(false);
        tokio::spawn(tributary_server::serve(
            listener,
            AppState::new(runtime.clone(), config),
            async move {
                let _ = stop.wait_for(|stop| *stop).await;
            },
        ));
        let db = runtime.store();
        let acme = TenantId::new("acme");
        let globex = TenantId::new("globex");
        db.create_tenant(&acme, "Acme").await.unwrap();
        db.create_tenant(&globex, "Globex").await.unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let token = |tenant: TenantId, email: &'static str, role| {
            let (db, url, seen) = (db.clone(), url.clone(), Arc::clone(&seen));
            async move {
                let user = tributary_server::auth::create_user(
                    &db, &tenant, email, role, PASSWORD, "test",
                )
                .await
                .unwrap();
                let created = db
                    .create_api_token(&tenant, user, "tests", "test")
                    .await
                    .unwrap();
                Api::new(&url, Some(created.secret), seen)
            }
        };
        let admin = token(acme.clone(), ACME_ADMIN, MemberRole::Admin).await;
        let other_tenant = token(globex.clone(), GLOBEX_ADMIN, MemberRole::Admin).await;
        let member_email: &'static str = Box::leak(member_email.to_owned().into_boxed_str());
        let member = token(acme.clone(), member_email, MemberRole::Member).await;
        Server {
            anonymous: Api::new(&url, None, Arc::clone(&seen)),
            url,
            runtime,
            acme,
            globex,
            admin,
            member,
            other_tenant,
            shutdown,
            store: Some(store),
        }
    }

    pub fn store(&self) -> &Store {
        self.runtime.store()
    }

    /// Connects `emulated`'s key as acme's admin, links the directory's mailboxes, turns
    /// capture on and runs the jobs: every link synced once.
    pub async fn connect_and_sync(&self, emulated: &RunningEmulator) {
        let body = serde_json::json!({
            "key_file": key_file(emulated),
            "admin_email": emulated.info.admin_email,
        });
        self.admin.post("/connection", &body).await.expect(200);
        self.admin
            .post_empty("/delegation/rebuild")
            .await
            .expect(200);
        let capture = serde_json::json!({ "enabled": true });
        self.admin.put("/capture", &capture).await.expect(200);
        self.run_jobs().await;
    }

    /// Runs sync jobs until none is due (a worker's loop, stepped by the test).
    pub async fn run_jobs(&self) {
        let worker = Worker::for_runtime(self.runtime.clone());
        for _ in 0..500 {
            if worker.run_once().await.expect("the job runs").is_none() {
                return;
            }
        }
        panic!("jobs kept coming after 500 runs");
    }

    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(store) = self.store.take() {
            store.close().await;
        }
    }
}

/// A response as tests look at it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// The stable error code of an error reply.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected reply: {}",
            self.text
        );
        self.body
    }

    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected reply: {}",
            self.text
        );
        assert_eq!(self.code(), code, "unexpected error: {}", self.text);
        assert!(
            !self.body["error"]["message"]
                .as_str()
                .unwrap_or("")
                .is_empty(),
            "an error says what is wrong: {}",
            self.text
        );
    }
}

/// A JSON client of `/api/v1` with one token.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    pub token: Option<String>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Api {
    fn new(url: &str, token: Option<String>, seen: Arc<Mutex<Vec<String>>>) -> Self {
        Api {
            http: reqwest::Client::new(),
            base: format!("{url}/api/v1"),
            token,
            seen,
        }
    }

    pub fn with_token(&self, token: &str) -> Api {
        Api {
            token: Some(token.to_owned()),
            ..self.clone()
        }
    }

    /// Every response body any client of this server received.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some((content_type, bytes)) = body {
            request = request.header(CONTENT_TYPE, content_type).body(bytes);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let text = response.text().await.unwrap();
        self.seen.lock().unwrap().push(text.clone());
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, body, text }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    pub async fn post_empty(&self, path: &str) -> Reply {
        self.send(reqwest::Method::POST, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.json(reqwest::Method::POST, path, body).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.json(reqwest::Method::PUT, path, body).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.json(reqwest::Method::PATCH, path, body).await
    }

    pub async fn json(&self, method: reqwest::Method, path: &str, body: &Value) -> Reply {
        let bytes = serde_json::to_vec(body).unwrap();
        self.send(method, path, Some(("application/json", bytes)))
            .await
    }

    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Reply {
        self.send(method, path, Some((content_type, body.to_vec())))
            .await
    }
}
