//! Assembles the emulator: the organization, the service account and its delegation,
//! the router, and the files `tributary emulate` writes. [`start`] runs it in-process
//! (tests, the demo); `tributary emulate` runs it until stopped.

use super::auth::{self, AuthRegistry, TRIBUTARY_SCOPES};
use super::call::json_response;
use super::control::{self, Scenario, ScenarioError};
use super::error::{ApiError, TokenError};
use super::faults::{FaultConfig, FaultSwitch};
use super::keyfile::{GeneratedKey, ServiceAccountIdentity, ServiceAccountKeyFile};
use super::quota::{GmailMethod, QuotaConfig, QuotaLimiter};
use super::state::EmulatorState;
use super::{batch, counters::Counters, directory, gmail};
use crate::model::Organization;
use crate::org::{Generated, OrgConfig};
use crate::truth::GroundTruth;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Where the emulated organization comes from.
#[derive(Debug, Clone)]
pub enum OrgSource {
    /// Generate it (and its ground truth) from a seed.
    Generate(OrgConfig),
    /// An organization generated beforehand, with its ground truth.
    Generated(Box<Generated>),
    /// A hand-built organization (tests): no ground truth.
    Ready(Box<Organization>),
}

/// How to run the emulator.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Port 0 picks a free port; the running emulator tells which.
    pub listen: SocketAddr,
    pub organization: OrgSource,
    /// Delegate [`TRIBUTARY_SCOPES`] to the generated service account.
    pub delegation: bool,
    /// How long access tokens live (`expires_in` is one second less).
    pub token_lifetime: Duration,
    /// Seeds the service account's identity and RSA key, so runs are reproducible.
    pub key_seed: u64,
    pub quota: QuotaConfig,
    pub faults: FaultConfig,
    /// Applied after start-up settings (overrides `quota` and `faults`).
    pub scenario: Option<Scenario>,
    /// Where to write `service-account.json`, `ground-truth.json` and `emulator.json`.
    pub out_dir: Option<PathBuf>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            organization: OrgSource::Generate(OrgConfig::default()),
            delegation: true,
            token_lifetime: Duration::from_secs(3600),
            key_seed: 1,
            quota: QuotaConfig::default(),
            faults: FaultConfig::default(),
            scenario: None,
            out_dir: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot create the service-account key: {0}")]
    Key(String),
    #[error("the organization has no active administrator to read the directory as")]
    NoAdmin,
    #[error("invalid quota settings: {0}")]
    Quota(#[from] super::quota::QuotaConfigError),
    #[error("invalid fault settings: {0}")]
    Faults(#[from] super::faults::FaultConfigError),
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the organization generator failed: {0}")]
    Generator(String),
    #[error("the server stopped with an error: {0}")]
    Serve(std::io::Error),
}

/// What `emulator.json` says: everything a client needs to find the emulator.
#[derive(Debug, Clone, Serialize)]
pub struct EmulatorInfo {
    /// The root clients pass as `api_endpoint`: it serves `/gmail/v1/…`,
    /// `/admin/directory/v1/…`, `/batch` and `/batch/gmail/v1`.
    pub base_url: String,
    pub token_uri: String,
    pub control_url: String,
    /// An active administrator to impersonate for the Directory.
    pub admin_email: String,
    pub domains: Vec<String>,
    pub customer_id: String,
    pub client_email: String,
    pub client_id: String,
    /// Scopes delegated to `client_id` at start (empty with `--no-delegation`).
    pub delegated_scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ground_truth_file: Option<PathBuf>,
    pub users: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages_per_user: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// A running emulator. Dropping it leaves the server running until the runtime ends;
/// call [`RunningEmulator::shutdown`] to stop it.
pub struct RunningEmulator {
    pub base_url: String,
    pub local_addr: SocketAddr,
    pub state: Arc<EmulatorState>,
    /// The generated service account's key file (`token_uri` points at the emulator).
    pub key_file: ServiceAccountKeyFile,
    pub info: EmulatorInfo,
    /// The ground truth, when the organization was generated.
    pub truth: Option<GroundTruth>,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<()>>,
}

impl RunningEmulator {
    /// Stops accepting connections, lets requests in flight finish, and waits.
    pub async fn shutdown(mut self) -> Result<(), StartError> {
        if let Some(signal) = self.shutdown.take() {
            let _ = signal.send(());
        }
        self.wait().await
    }

    /// Waits until the server stops (it only stops on [`RunningEmulator::shutdown`] or
    /// an I/O error).
    pub async fn wait(self) -> Result<(), StartError> {
        match self.server.await {
            Ok(result) => result.map_err(StartError::Serve),
            Err(join) => Err(StartError::Serve(std::io::Error::other(join))),
        }
    }
}

/// The service-account key for a seed. Generating a 2048-bit key takes a while, and the
/// result depends only on the seed, so it is remembered for the life of the process.
fn seeded_service_account(seed: u64) -> Result<(ServiceAccountIdentity, GeneratedKey), StartError> {
    static CACHE: OnceLock<Mutex<HashMap<u64, (ServiceAccountIdentity, GeneratedKey)>>> =
        OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(found) = cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&seed)
    {
        return Ok(found.clone());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5345_5256_4943_4541);
    let identity = ServiceAccountIdentity::generate(&mut rng);
    let key = GeneratedKey::generate(&mut rng).map_err(|e| StartError::Key(e.to_string()))?;
    cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(seed, (identity.clone(), key.clone()));
    Ok((identity, key))
}

/// The root URL clients use, from the address the server listens on.
fn base_url_for(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

struct LoadedOrg {
    org: Organization,
    truth: Option<GroundTruth>,
    messages_per_user: Option<usize>,
    seed: Option<u64>,
}

async fn load_organization(source: OrgSource) -> Result<LoadedOrg, StartError> {
    match source {
        OrgSource::Generate(config) => {
            let (messages_per_user, seed) = (config.messages_per_user, config.seed);
            // Generation is CPU-bound: keep it off the async workers.
            let generated = tokio::task::spawn_blocking(move || crate::org::generate(&config))
                .await
                .map_err(|e| StartError::Generator(e.to_string()))?;
            Ok(LoadedOrg {
                org: generated.org,
                truth: Some(generated.truth),
                messages_per_user: Some(messages_per_user),
                seed: Some(seed),
            })
        }
        OrgSource::Generated(generated) => Ok(LoadedOrg {
            org: generated.org,
            truth: Some(generated.truth),
            messages_per_user: None,
            seed: None,
        }),
        OrgSource::Ready(org) => Ok(LoadedOrg {
            org: *org,
            truth: None,
            messages_per_user: None,
            seed: None,
        }),
    }
}

/// Starts the emulator on `config.listen` and returns once it accepts connections.
pub async fn start(config: EmulatorConfig) -> Result<RunningEmulator, StartError> {
    config.quota.validate()?;
    config.faults.validate()?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let base_url = base_url_for(local_addr);
    let token_uri = format!("{base_url}/token");

    let key_seed = config.key_seed;
    let key_task = tokio::task::spawn_blocking(move || seeded_service_account(key_seed));
    let loaded = load_organization(config.organization).await?;
    let (identity, key) = key_task
        .await
        .map_err(|e| StartError::Key(e.to_string()))??;
    let key_file = key
        .key_file(&identity, &token_uri)
        .map_err(|e| StartError::Key(e.to_string()))?;

    let registry = AuthRegistry::new(&token_uri, config.token_lifetime);
    registry.register_service_account(identity.clone());
    registry
        .add_public_key(
            &identity.client_email,
            &key.private_key_id,
            key.public_key(),
        )
        .map_err(|e| StartError::Key(e.to_string()))?;
    if config.delegation {
        registry.set_delegation(&identity.client_id, TRIBUTARY_SCOPES.iter().copied());
    }

    let admin_email = loaded
        .org
        .users
        .iter()
        .find(|u| u.is_admin && !u.suspended && !u.deleted)
        .map(|u| u.primary_email.clone())
        .ok_or(StartError::NoAdmin)?;
    let info = EmulatorInfo {
        base_url: base_url.clone(),
        token_uri: token_uri.clone(),
        control_url: format!("{base_url}/control"),
        admin_email,
        domains: loaded.org.domains.clone(),
        customer_id: loaded.org.customer_id.clone(),
        client_email: identity.client_email.clone(),
        client_id: identity.client_id.clone(),
        delegated_scopes: registry
            .delegation(&identity.client_id)
            .map(|s| s.into_iter().collect())
            .unwrap_or_default(),
        service_account_file: None,
        ground_truth_file: None,
        users: loaded.org.users.iter().filter(|u| !u.deleted).count(),
        messages_per_user: loaded.messages_per_user,
        seed: loaded.seed,
    };

    let calendars = crate::org::meetings::MeetingStore::generate(&loaded.org);
    let state = Arc::new(EmulatorState {
        calendars: crate::org::meetings::SharedMeetings::new(calendars),
        base_url: base_url.clone(),
        org: RwLock::new(loaded.org),
        auth: registry,
        quotas: QuotaLimiter::new(config.quota),
        faults: FaultSwitch::new(config.faults),
        counters: Counters::default(),
        push: super::push::PushState::default(),
    });
    if let Some(scenario) = &config.scenario {
        scenario.apply(&state)?;
    }
    super::push::start(&state);

    let mut info = info;
    if let Some(dir) = &config.out_dir {
        write_outputs(dir, &key_file, loaded.truth.as_ref(), &mut info)?;
    }

    let (shutdown, stopped) = oneshot::channel::<()>();
    let app = router(Arc::clone(&state));
    let listener = listener.tap_io(|tcp| {
        // Small JSON answers on kept-alive connections: do not wait for Nagle.
        let _ = tcp.set_nodelay(true);
    });
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    tracing::info!(%base_url, "emulator listening");
    Ok(RunningEmulator {
        base_url,
        local_addr,
        state,
        key_file,
        info,
        truth: loaded.truth,
        shutdown: Some(shutdown),
        server,
    })
}

/// The Gmail and Directory routes: what outer requests and batch parts both reach.
fn api_routes() -> Router<Arc<EmulatorState>> {
    gmail::routes()
        .merge(directory::routes())
        .merge(super::calendar::routes())
}

/// The whole HTTP surface: token endpoint, APIs, batch, control.
pub fn router(state: Arc<EmulatorState>) -> Router {
    let batch_target = api_routes().with_state(Arc::clone(&state));
    let batch_route = post(move |headers: HeaderMap, body: Bytes| {
        let api = batch_target.clone();
        async move { batch::handle(api, headers, body).await }
    });
    api_routes()
        .route("/token", post(token))
        .route("/oauth2/v4/token", post(token))
        .route("/o/oauth2/token", post(token))
        .route("/batch", batch_route.clone())
        .route("/batch/gmail/v1", batch_route.clone())
        .route("/batch/admin/directory_v1", batch_route)
        .nest("/control", control::router())
        .merge(super::calendar::control::routes())
        .merge(super::push::routes())
        .fallback(not_found)
        .with_state(state)
}

async fn token(
    State(state): State<Arc<EmulatorState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = auth::token_request_params(&headers, &body);
    let subject = auth::assertion_subject(&params);
    state
        .counters
        .record_request(&subject, GmailMethod::TokenGrant, 0);
    if state.faults.decide_token_error() {
        return TokenError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_failure",
            "Backend Error",
        )
        .into_response();
    }
    let result = {
        let org = state.org();
        auth::token_request(&state.auth, &params, &org)
    };
    match result {
        Ok(answer) => {
            let mut response = json_response(StatusCode::OK, &answer);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => error.into_response(),
    }
}

async fn not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "notFound", "Not Found").into_response()
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader never
/// sees a half-written file.
fn write_atomically(path: &Path, bytes: &[u8], private: bool) -> Result<(), StartError> {
    let error = |source| StartError::Write {
        path: path.to_path_buf(),
        source,
    };
    let temporary = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(&temporary).map_err(error)?;
    file.write_all(bytes).map_err(error)?;
    file.sync_all().map_err(error)?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(error)
}

fn to_pretty_json(value: &impl Serialize) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Writes the key file (mode 0600), the ground truth (when there is one) and
/// `emulator.json`, recording their paths in `info`.
fn write_outputs(
    dir: &Path,
    key_file: &ServiceAccountKeyFile,
    truth: Option<&GroundTruth>,
    info: &mut EmulatorInfo,
) -> Result<(), StartError> {
    std::fs::create_dir_all(dir).map_err(|source| StartError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let key_path = dir.join("service-account.json");
    write_atomically(&key_path, &to_pretty_json(key_file), true)?;
    info.service_account_file = Some(key_path);
    if let Some(truth) = truth {
        let truth_path = dir.join("ground-truth.json");
        write_atomically(&truth_path, &to_pretty_json(truth), false)?;
        info.ground_truth_file = Some(truth_path);
    }
    write_atomically(&dir.join("emulator.json"), &to_pretty_json(info), false)
}

/// Parses an RFC 3339 instant into epoch milliseconds (for `--now`).
pub fn parse_rfc3339_ms(value: &str) -> Result<i64, chrono::ParseError> {
    chrono::DateTime::parse_from_rfc3339(value).map(|t| t.timestamp_millis())
}

/// The current time in epoch milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
