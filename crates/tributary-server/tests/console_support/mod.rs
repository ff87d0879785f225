//! Test support for the console: an emulated Google organization, a store, the server
//! with a worker beside it on loopback, a real SMTP listener, and a browser-like client
//! that keeps its session cookie and reads CSRF tokens out of forms.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tributary_emulator::microsoft::RunningMicrosoft;
use tributary_emulator::org::OrgConfig;
use tributary_emulator::server::{EmulatorConfig, OrgSource, RunningEmulator, start};
use tributary_google::GoogleEndpoints;
use tributary_server::{AppState, ServerConfig, SmtpConfig};
use tributary_store::{MasterKey, MemberRole, Store, TenantId};
use tributary_sync::runtime::MicrosoftSettings;
use tributary_sync::{EngineConfig, PacingConfig, Runtime, RuntimeConfig, Worker, WorkerConfig};

pub const PASSWORD: &str = "correct horse battery staple";
pub const TENANT: &str = "acme";

/// One mail the SMTP listener accepted.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

/// A real SMTP server on loopback (plain SMTP, no auth), speaking enough of RFC 5321
/// for a client to hand over mail: greeting, EHLO/HELO, MAIL, RCPT, DATA with dot
/// unstuffing, RSET, NOOP, QUIT.
pub struct SmtpListener {
    pub port: u16,
    received: Arc<Mutex<Vec<ReceivedMail>>>,
    arrived: Arc<Notify>,
}

impl SmtpListener {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let arrived = Arc::new(Notify::new());
        let (store, notify) = (Arc::clone(&received), Arc::clone(&arrived));
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (store, notify) = (Arc::clone(&store), Arc::clone(&notify));
                tokio::spawn(async move {
                    let _ = smtp_session(socket, store, notify).await;
                });
            }
        });
        SmtpListener {
            port,
            received,
            arrived,
        }
    }

    pub fn config(&self) -> SmtpConfig {
        SmtpConfig {
            host: "127.0.0.1".to_owned(),
            port: self.port,
            from: "tributary@console.test".to_owned(),
            username: None,
            password: None,
            plaintext: true,
        }
    }

    pub fn received(&self) -> Vec<ReceivedMail> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until at least `count` mails arrived (or the time is up).
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            let mails = self.received();
            if mails.len() >= count {
                return mails;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.received();
            }
        }
    }
}

async fn smtp_session(
    socket: tokio::net::TcpStream,
    store: Arc<Mutex<Vec<ReceivedMail>>>,
    notify: Arc<Notify>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 smtp.test ESMTP ready\r\n").await?;
    let mut mail = ReceivedMail {
        from: String::new(),
        to: Vec::new(),
        data: String::new(),
    };
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-smtp.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            "HELO" | "NOOP" => b"250 OK\r\n",
            "MAIL" => {
                mail.from = angle_address(&command);
                b"250 OK\r\n"
            }
            "RCPT" => {
                mail.to.push(angle_address(&command));
                b"250 OK\r\n"
            }
            "RSET" => {
                mail = ReceivedMail {
                    from: String::new(),
                    to: Vec::new(),
                    data: String::new(),
                };
                b"250 OK\r\n"
            }
            "DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                mail.data = read_data(&mut lines).await?;
                store.lock().unwrap().push(mail.clone());
                notify.notify_waiters();
                b"250 OK queued\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 Command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

async fn read_data(
    lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<String> {
    let mut data = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(data);
        }
        let text = line.trim_end_matches(['\r', '\n']);
        if text == "." {
            return Ok(data);
        }
        data.push_str(text.strip_prefix('.').unwrap_or(text));
        data.push('\n');
    }
}

fn angle_address(command: &str) -> String {
    command
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(address, _)| address.to_owned())
        .unwrap_or_default()
}

/// An emulated organization of `users` users, `messages` messages each.
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

/// The first active directory user with a mailbox who is not `except`.
pub fn some_mailbox_user(emulator: &RunningEmulator, except: &str) -> String {
    let org = emulator.state.org();
    org.users
        .iter()
        .find(|u| {
            !u.suspended
                && !u.archived
                && !u.deleted
                && u.is_mailbox_setup
                && !u.primary_email.eq_ignore_ascii_case(except)
        })
        .expect("the organization has an ordinary user")
        .primary_email
        .to_lowercase()
}

/// Which database a console runs on.
pub use tributary_store::Backend;
use tributary_store::testing::TestDatabase;

pub const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

/// The server, its runtime and worker, on loopback.
pub struct Console {
    pub url: String,
    pub runtime: Runtime,
    pub tenant: TenantId,
    shutdown: watch::Sender<bool>,
    /// Dropped with the console: its directory, or its PostgreSQL database.
    _database: TestDatabase,
}

impl Console {
    /// Starts the server (and a worker) over a SQLite store in a temporary directory,
    /// reading Google at `emulator`, mailing through `smtp`; creates tenant [`TENANT`].
    pub async fn start(emulator: &RunningEmulator, smtp: Option<SmtpConfig>) -> Self {
        Self::start_with(Backend::Sqlite, emulator, smtp)
            .await
            .expect("SQLite is always there")
    }

    /// [`Self::start`] on `backend`; `None` when PostgreSQL is not reachable.
    pub async fn start_with(
        backend: Backend,
        emulator: &RunningEmulator,
        smtp: Option<SmtpConfig>,
    ) -> Option<Self> {
        let database = TestDatabase::open(backend).await?;
        let config = runtime_config(emulator);
        Some(Self::start_on(database, config, MicrosoftSettings::default(), smtp).await)
    }

    /// [`Self::start`] on SQLite reaching Microsoft 365 at the Microsoft emulator
    /// (trusting its CA), with that organization's "now".
    pub async fn start_microsoft(microsoft: &RunningMicrosoft, smtp: Option<SmtpConfig>) -> Self {
        let database = TestDatabase::open(Backend::Sqlite)
            .await
            .expect("SQLite is always there");
        let mut config = quick_config(microsoft.state.tenant().now_ms);
        config.endpoints = GoogleEndpoints::default();
        let settings = MicrosoftSettings::at(&microsoft.base_url, vec![microsoft.ca_pem.clone()]);
        Self::start_on(database, config, settings, smtp).await
    }

    async fn start_on(
        database: TestDatabase,
        config: RuntimeConfig,
        microsoft: MicrosoftSettings,
        smtp: Option<SmtpConfig>,
    ) -> Self {
        let store = database.store.clone();
        let tenant = TenantId::new(TENANT);
        store.create_tenant(&tenant, "Acme").await.unwrap();
        let runtime = Runtime::with_microsoft(store, MasterKey::generate(), config, microsoft);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let config = ServerConfig {
            public_url: url.clone(),
            smtp,
            max_body_bytes: 256 * 1024,
            ..ServerConfig::default()
        };
        let (shutdown, stop) = watch::channel(false);
        let state = AppState::new(runtime.clone(), config);
        let mut server_stop = stop.clone();
        tokio::spawn(tributary_server::serve(listener, state, async move {
            let _ = server_stop.wait_for(|stop| *stop).await;
        }));
        let worker = Worker::for_runtime(runtime.clone());
        let mut worker_stop = stop;
        tokio::spawn(async move {
            worker
                .run(async move {
                    let _ = worker_stop.wait_for(|stop| *stop).await;
                })
                .await
        });
        Console {
            url,
            runtime,
            tenant,
            shutdown,
            _database: database,
        }
    }

    pub fn store(&self) -> &Store {
        self.runtime.store()
    }

    /// A console account in `tenant`.
    pub async fn add_user(&self, tenant: &TenantId, email: &str, role: MemberRole) {
        let hash = tributary_server::auth::hash_password(PASSWORD)
            .await
            .unwrap();
        self.store()
            .create_user(tenant, email, role, &hash, "test")
            .await
            .unwrap();
    }

    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
    }
}

impl Drop for Console {
    /// Stops the server and worker; the test database goes when `_database` is dropped.
    fn drop(&mut self) {
        self.stop();
    }
}

/// Google at the emulator, the emulated organization's "now", and quick retries and
/// polls so a test sees syncs finish in seconds.
fn runtime_config(emulator: &RunningEmulator) -> RuntimeConfig {
    RuntimeConfig {
        endpoints: GoogleEndpoints::from_base_url(&emulator.base_url),
        ..quick_config(emulator.state.org().now_ms)
    }
}

/// Quick retries and polls, and the emulated organization's "now".
fn quick_config(now_ms: i64) -> RuntimeConfig {
    RuntimeConfig {
        engine: EngineConfig {
            pacing: PacingConfig {
                max_attempts: 6,
                initial_backoff: Duration::from_millis(5),
                max_backoff: Duration::from_millis(200),
                ..PacingConfig::default()
            },
            reference_now_ms: Some(now_ms),
            ..EngineConfig::default()
        },
        worker: WorkerConfig {
            idle_sleep: Duration::from_millis(100),
            ..WorkerConfig::default()
        },
        ..RuntimeConfig::default()
    }
}

/// A browser-like client: follows no redirects (tests look at them), keeps the
/// session cookie, and finds each form's CSRF token in the page it came from.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

/// A response as the tests look at it.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    /// The value of the first `name="csrf"` field.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("no CSRF field in:\n{}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }
}

impl Browser {
    pub fn new(base: &str) -> Self {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.trim_end_matches('/').to_owned(),
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, response: reqwest::Response) -> Page {
        for value in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(k, _)| k != name);
            if !value.is_empty() && !text.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        let headers = response.headers().clone();
        Page {
            status,
            location,
            headers,
            body: response.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.finish(response).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .unwrap();
        self.finish(response).await
    }

    /// A multipart post: text fields and one file.
    pub async fn post_multipart(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        file: (&str, &[u8]),
    ) -> Page {
        let boundary = "----console-test-boundary";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                    .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"key.json\"\r\nContent-Type: application/json\r\n\r\n",
                file.0
            )
            .as_bytes(),
        );
        body.extend_from_slice(file.1);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        self.finish(response).await
    }

    /// The page a form's 303 answer leads to (Post/Redirect/Get), as a browser would
    /// open it; any other answer as it is.
    pub async fn follow(&mut self, answer: Page) -> Page {
        match (answer.status, answer.location.clone()) {
            (303, Some(location)) => self.get(&location).await,
            _ => answer,
        }
    }

    /// Posts a form and opens the page its answer redirects to.
    pub async fn submit(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let answer = self.post(path, form).await;
        self.follow(answer).await
    }

    /// Posts a multipart form and opens the page its answer redirects to.
    pub async fn submit_multipart(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        file: (&str, &[u8]),
    ) -> Page {
        let answer = self.post_multipart(path, fields, file).await;
        self.follow(answer).await
    }

    /// Signs in as `email`; panics unless the console accepts it.
    pub async fn sign_in(&mut self, email: &str) {
        let form = self.get("/signin").await;
        let csrf = form.csrf();
        let signed = self
            .post(
                "/signin",
                &[("email", email), ("password", PASSWORD), ("csrf", &csrf)],
            )
            .await;
        assert_eq!(signed.status, 303, "sign-in refused: {}", signed.body);
    }

    /// Connects `emulated`'s key through the setup page, links the directory's
    /// mailboxes and turns capture on, as an admin does; returns the form token used.
    pub async fn connect_google(&mut self, emulated: &RunningEmulator) -> String {
        let csrf = self.get("/setup").await.csrf();
        let key = serde_json::to_vec(&emulated.key_file).unwrap();
        self.post_multipart(
            "/setup/key",
            &[("csrf", &csrf), ("admin_email", &emulated.info.admin_email)],
            ("key_file", &key),
        )
        .await;
        self.post("/users/rebuild", &[("csrf", &csrf)]).await;
        self.post("/setup/capture", &[("csrf", &csrf), ("enabled", "on")])
            .await;
        csrf
    }
}

/// `text` as Maud escapes it on a page (hints name menu paths with `>` and `&`).
pub fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Waits (30 s at most) until the tenant has links and `done` holds for them.
pub async fn wait_for_links(
    console: &Console,
    done: impl Fn(&[tributary_store::LinkView]) -> bool,
) -> Vec<tributary_store::LinkView> {
    for _ in 0..300 {
        let links = console.store().links(&console.tenant).await.unwrap();
        if !links.is_empty() && done(&links) {
            return links;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "links did not reach the expected statuses: {:?}",
        console.store().links(&console.tenant).await.unwrap()
    );
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
