//! Assembles the Microsoft 365 emulator: the tenant from the organization, the app
//! registration with its secret and certificate, consent, TLS, the router (identity,
//! Graph, `$batch`, control) and the files `tributary emulate --provider microsoft`
//! writes. [`start`] runs it in-process (tests, the demo).

use super::access::PermitHolder;
use super::credentials::{self, ClientCertificate, CredentialError};
use super::envelope::{self, RequestIds};
use super::identity::registry::Identity;
use super::state::MicrosoftState;
use super::tenant::Tenant;
use super::tls::{self, TlsError, TlsListener};
use super::{batch, control, counters::Counters, identity, mail, users};
use crate::kit::files::{WriteError, prepare_dir, pretty_json, write_atomically};
use crate::kit::{
    FaultConfig, FaultConfigError, FaultSwitch, ScenarioError, WindowConfig, WindowConfigError,
    WindowLimiter,
};
use crate::org::{Generated, OrgConfig};
use crate::truth::GroundTruth;
use axum::body::Bytes;
use axum::extract::{Extension, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Where the tenant's organization comes from.
#[derive(Debug, Clone)]
pub enum TenantSource {
    Generate(OrgConfig),
    Generated(Box<Generated>),
}

#[derive(Debug, Clone)]
pub struct MicrosoftConfig {
    /// Port 0 picks a free port.
    pub listen: SocketAddr,
    pub organization: TenantSource,
    /// Seeds the tenant's and app's ids and the certificate credential's key.
    pub seed: u64,
    /// Admin consent granted at start (the service principal exists with Tributary's roles).
    pub consent: bool,
    /// How long access tokens live (`expires_in` is one second less).
    pub token_lifetime: Duration,
    pub throttling: WindowConfig,
    pub faults: FaultConfig,
    /// Applied at start, after `throttling` and `faults` (whose parts it replaces).
    pub scenario: Option<control::Scenario>,
    /// Where to write `ca.pem`, `app.json` (and the certificate files),
    /// `ground-truth.json` and `emulator.json`.
    pub out_dir: Option<PathBuf>,
}

impl Default for MicrosoftConfig {
    fn default() -> Self {
        MicrosoftConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            organization: TenantSource::Generate(OrgConfig::default()),
            seed: 1,
            consent: true,
            token_lifetime: Duration::from_secs(3600),
            throttling: WindowConfig::default(),
            faults: FaultConfig::default(),
            scenario: None,
            out_dir: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MicrosoftStartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Credential(#[from] CredentialError),
    #[error("invalid throttling settings: {0}")]
    Throttling(#[from] WindowConfigError),
    #[error("invalid fault settings: {0}")]
    Faults(#[from] FaultConfigError),
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("the organization has no active administrator")]
    NoAdmin,
    #[error("the organization generator failed: {0}")]
    Generator(String),
    #[error("the server stopped with an error: {0}")]
    Serve(std::io::Error),
}

/// What `app.json` says: the app registration's credentials.
#[derive(Debug, Clone, Serialize)]
pub struct AppFile {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// Path of the certificate credential's certificate (PEM).
    pub certificate_pem: Option<PathBuf>,
    /// Path of its private key (PKCS #8 PEM).
    pub private_key_pem: Option<PathBuf>,
    /// Hex, upper case (what the portal shows; msal's `thumbprint`).
    pub thumbprint_sha1: String,
    pub thumbprint_sha256: String,
}

/// What `emulator.json` says.
#[derive(Debug, Clone, Serialize)]
pub struct MicrosoftInfo {
    pub provider: &'static str,
    /// The https root.
    pub base_url: String,
    /// `<base_url>/<tenant_id>`: msal's authority.
    pub authority: String,
    pub tenant_id: String,
    pub token_endpoint: String,
    /// `<base_url>/v1.0`.
    pub graph_url: String,
    pub ca_cert: Option<PathBuf>,
    pub control_url: String,
    pub admin_email: String,
    pub domains: Vec<String>,
    pub client_id: String,
    pub app_file: Option<PathBuf>,
    pub ground_truth_file: Option<PathBuf>,
    pub users: usize,
    pub seed: u64,
}

/// A running Microsoft emulator.
pub struct RunningMicrosoft {
    pub base_url: String,
    pub local_addr: SocketAddr,
    pub state: Arc<MicrosoftState>,
    pub info: MicrosoftInfo,
    pub app: AppFile,
    pub certificate: ClientCertificate,
    /// The CA clients must trust.
    pub ca_pem: String,
    /// The folder-keyed ground truth, when the organization was generated.
    pub truth: Option<GroundTruth>,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<()>>,
}

impl RunningMicrosoft {
    pub async fn shutdown(mut self) -> Result<(), MicrosoftStartError> {
        if let Some(signal) = self.shutdown.take() {
            let _ = signal.send(());
        }
        self.wait().await
    }

    pub async fn wait(self) -> Result<(), MicrosoftStartError> {
        match self.server.await {
            Ok(result) => result.map_err(MicrosoftStartError::Serve),
            Err(join) => Err(MicrosoftStartError::Serve(std::io::Error::other(join))),
        }
    }
}

fn base_url_for(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    format!("https://{}", SocketAddr::new(ip, addr.port()))
}

async fn generate(source: TenantSource) -> Result<Generated, MicrosoftStartError> {
    match source {
        TenantSource::Generated(generated) => Ok(*generated),
        TenantSource::Generate(config) => {
            tokio::task::spawn_blocking(move || crate::org::generate(&config))
                .await
                .map_err(|e| MicrosoftStartError::Generator(e.to_string()))
        }
    }
}

/// Starts the emulator and returns once it accepts connections.
pub async fn start(config: MicrosoftConfig) -> Result<RunningMicrosoft, MicrosoftStartError> {
    config.throttling.validate()?;
    config.faults.validate()?;
    let bind_error = |source| MicrosoftStartError::Bind {
        addr: config.listen,
        source,
    };
    let tcp = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(bind_error)?;
    let local_addr = tcp.local_addr().map_err(bind_error)?;
    let base_url = base_url_for(local_addr);

    let generated = generate(config.organization.clone()).await?;
    let seed = config.seed;
    let tenant = {
        let org = generated.org.clone();
        tokio::task::spawn_blocking(move || Tenant::from_organization(&org, seed))
            .await
            .map_err(|e| MicrosoftStartError::Generator(e.to_string()))?
    };
    let client_id = credentials::app_client_id(&tenant.tenant_id, seed);
    let certificate = {
        let client_id = client_id.clone();
        tokio::task::spawn_blocking(move || credentials::client_certificate(seed, &client_id))
            .await
            .map_err(|e| MicrosoftStartError::Generator(e.to_string()))??
    };
    let registration = credentials::tributary_app(&tenant.tenant_id, seed, &certificate);
    let mut identity = Identity::default();
    let client_secret = registration.secrets[0].value.clone();
    identity.apps.push(registration);
    if config.consent {
        identity.consent(&client_id);
    }
    let material = tls::generate()?;
    let admin_email = generated
        .org
        .users
        .iter()
        .find(|u| u.is_admin && !u.suspended && !u.deleted)
        .map(|u| u.primary_email.clone())
        .ok_or(MicrosoftStartError::NoAdmin)?;
    let truth = super::truth::folder_truth(&generated.truth);

    let tenant_id = tenant.tenant_id.clone();
    let mut info = MicrosoftInfo {
        provider: "microsoft",
        authority: format!("{base_url}/{tenant_id}"),
        token_endpoint: format!("{base_url}/{tenant_id}/oauth2/v2.0/token"),
        graph_url: format!("{base_url}/v1.0"),
        control_url: format!("{base_url}/control"),
        base_url: base_url.clone(),
        tenant_id: tenant_id.clone(),
        ca_cert: None,
        admin_email,
        domains: tenant.domains.clone(),
        client_id: client_id.clone(),
        app_file: None,
        ground_truth_file: None,
        users: tenant.users.iter().filter(|u| !u.deleted).count(),
        seed,
    };
    let mut app = AppFile {
        tenant_id,
        client_id,
        client_secret,
        certificate_pem: None,
        private_key_pem: None,
        thumbprint_sha1: certificate.thumbprint_sha1.clone(),
        thumbprint_sha256: certificate.thumbprint_sha256.clone(),
    };
    if let Some(dir) = &config.out_dir {
        write_outputs(
            dir,
            &material.ca_pem,
            &certificate,
            &truth,
            &mut app,
            &mut info,
        )?;
    }

    let calendars = crate::org::meetings::MeetingStore::generate(&generated.org);
    let state = Arc::new(MicrosoftState {
        base_url: base_url.clone(),
        tenant: RwLock::new(tenant),
        identity: RwLock::new(identity),
        throttling: WindowLimiter::new(config.throttling),
        faults: FaultSwitch::new(config.faults),
        counters: Counters::default(),
        token_lifetime: config.token_lifetime,
        calendars: crate::org::meetings::SharedMeetings::new(calendars),
        subscriptions: super::subscriptions::Subscriptions::default(),
    });
    // Before the server runs, so no request sees the settings without the scenario.
    if let Some(scenario) = &config.scenario {
        scenario.apply(&state)?;
    }
    super::subscriptions::start(&state);
    let (shutdown, stopped) = oneshot::channel::<()>();
    let service = tower::util::MapRequest::new(
        router(Arc::clone(&state)),
        collapse_slashes as fn(Request) -> Request,
    );
    let listener = TlsListener::new(tcp, &material);
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            axum::ServiceExt::<Request>::into_make_service(service),
        )
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .await
    });
    tracing::info!(%base_url, "Microsoft emulator listening");
    Ok(RunningMicrosoft {
        base_url,
        local_addr,
        state,
        info,
        app,
        certificate,
        ca_pem: material.ca_pem,
        truth: Some(truth),
        shutdown: Some(shutdown),
        server,
    })
}

fn write_outputs(
    dir: &Path,
    ca_pem: &str,
    certificate: &ClientCertificate,
    truth: &GroundTruth,
    app: &mut AppFile,
    info: &mut MicrosoftInfo,
) -> Result<(), WriteError> {
    let dir = prepare_dir(dir)?;
    let ca_path = dir.join("ca.pem");
    write_atomically(&ca_path, ca_pem.as_bytes(), false)?;
    let certificate_path = dir.join("app-certificate.pem");
    write_atomically(
        &certificate_path,
        certificate.certificate_pem.as_bytes(),
        false,
    )?;
    let key_path = dir.join("app-key.pem");
    write_atomically(&key_path, certificate.private_key_pem.as_bytes(), true)?;
    app.certificate_pem = Some(certificate_path);
    app.private_key_pem = Some(key_path);
    let app_path = dir.join("app.json");
    write_atomically(&app_path, &pretty_json(app), true)?;
    let truth_path = dir.join("ground-truth.json");
    write_atomically(&truth_path, &pretty_json(truth), false)?;
    info.ca_cert = Some(ca_path);
    info.app_file = Some(app_path);
    info.ground_truth_file = Some(truth_path);
    write_atomically(&dir.join("emulator.json"), &pretty_json(info), false)
}

/// msal builds `{authority}/v2.0/…` from an authority with a trailing slash (`/t//v2.0`):
/// runs of slashes in the path count as one.
fn collapse_slashes(mut request: Request) -> Request {
    let path = request.uri().path();
    if !path.contains("//") {
        return request;
    }
    let mut collapsed = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && collapsed.ends_with('/')) {
            collapsed.push(c);
        }
    }
    let rebuilt = match request.uri().query() {
        Some(query) => format!("{collapsed}?{query}"),
        None => collapsed,
    };
    if let Ok(uri) = rebuilt.parse::<Uri>() {
        *request.uri_mut() = uri;
    }
    request
}

/// Injected faults on Graph calls: maybe a 503; otherwise the answer, then the injected
/// latency while the request still holds its throttling permit (a slow answer occupies
/// the mailbox's concurrency, as on Graph).
async fn inject_faults(
    State(state): State<Arc<MicrosoftState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let decision = state.faults.decide();
    if decision.server_error {
        let ids = request
            .extensions()
            .get::<RequestIds>()
            .cloned()
            .unwrap_or_else(|| RequestIds::from_headers(request.headers()));
        return envelope::server_error().render(&ids);
    }
    let holder = PermitHolder::default();
    request.extensions_mut().insert(holder.clone());
    let response = next.run(request).await;
    if let Some(latency) = decision.latency {
        tokio::time::sleep(latency).await;
    }
    holder.release();
    response
}

/// The Graph routes with their state: what outer requests and batch steps both reach.
fn graph(state: &Arc<MicrosoftState>) -> Router {
    users::routes()
        .merge(mail::routes())
        .merge(super::calendar::routes())
        .merge(super::subscriptions::routes())
        .layer(middleware::from_fn_with_state(
            Arc::clone(state),
            inject_faults,
        ))
        .layer(middleware::from_fn(envelope::stamp))
        .with_state(Arc::clone(state))
}

/// The whole https surface: identity, Graph, `$batch`, control.
pub fn router(state: Arc<MicrosoftState>) -> Router {
    let graph = graph(&state);
    let batch_target = graph.clone();
    let batch_route = post(
        move |Extension(ids): Extension<RequestIds>, headers: HeaderMap, body: Bytes| {
            let api = batch_target.clone();
            async move { batch::handle(api, ids, headers, body).await }
        },
    )
    .layer(middleware::from_fn(envelope::stamp));
    Router::new()
        .merge(identity::routes())
        .nest("/control", control::router())
        .merge(super::calendar::control_routes())
        .merge(super::subscriptions::control::routes())
        .route("/v1.0/$batch", batch_route)
        .with_state(state)
        .merge(graph)
        .fallback(not_found)
}

async fn not_found(uri: Uri) -> Response {
    let path = uri.path();
    if let Some(rest) = path.strip_prefix("/v1.0/") {
        let segment = rest.split('/').next_back().unwrap_or(rest);
        return envelope::not_found_segment(segment).into_response();
    }
    (StatusCode::NOT_FOUND, Json(serde_json::json!({"error": "not_found", "error_description": format!("{path} is not served here")}))).into_response()
}
