//! What `serve`, `worker`, `migrate` and `admin` share: where the store is, the master
//! key, where Google and Microsoft 365 are, and the runtime built from them. Settings come from flags, then
//! `TRIBUTARY_*` environment variables, then a TOML config file (`--config`), then
//! defaults.

use anyhow::Context;
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tributary_google::GoogleEndpoints;
use tributary_microsoft::{MICROSOFT_AUTHORITY_HOST, MICROSOFT_GRAPH_BASE, MicrosoftEndpoints};
use tributary_store::{MASTER_KEY_ENV, MasterKey, Store};
use tributary_sync::{
    EngineConfig, MicrosoftSettings, PacingConfig, Runtime, RuntimeConfig, WorkerConfig,
};

/// Where the data lives.
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// Directory of the embedded SQLite database and the generated master key file.
    #[arg(long, env = "TRIBUTARY_DATA_DIR", default_value = "tributary-data")]
    pub data_dir: PathBuf,
    /// A postgres:// URL: use PostgreSQL (needed for several workers) instead of the
    /// embedded SQLite file in the data directory.
    #[arg(long, env = "TRIBUTARY_DATABASE_URL")]
    pub database_url: Option<String>,
    /// File with the base64 master key that encrypts credentials at rest (created with
    /// mode 0600 when missing; default: master.key in the data directory). The
    /// TRIBUTARY_MASTER_KEY variable, when set, is the key itself and wins.
    #[arg(long, env = "TRIBUTARY_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
}

impl StoreArgs {
    /// Opens the store, applying pending migrations.
    pub async fn open(&self) -> anyhow::Result<Store> {
        match &self.database_url {
            Some(url) => Store::open(url).await.with_context(|| {
                format!(
                    "cannot open the database {}: check that PostgreSQL is running and the \
                     URL (--database-url / TRIBUTARY_DATABASE_URL) is right",
                    redact_url(url)
                )
            }),
            None => Store::open_in_data_dir(&self.data_dir)
                .await
                .with_context(|| {
                    format!(
                        "cannot open the database in {}: check that the directory is writable \
                     (--data-dir / TRIBUTARY_DATA_DIR)",
                        self.data_dir.display()
                    )
                }),
        }
    }

    /// Where the store is, for messages (passwords removed).
    pub fn describe(&self) -> String {
        match &self.database_url {
            Some(url) => redact_url(url),
            None => self
                .data_dir
                .join(tributary_store::DATABASE_FILE)
                .display()
                .to_string(),
        }
    }

    pub fn master_key(&self) -> anyhow::Result<MasterKey> {
        let from_env = std::env::var(MASTER_KEY_ENV)
            .ok()
            .filter(|k| !k.trim().is_empty());
        if let Some(text) = from_env {
            return MasterKey::from_base64(&text)
                .with_context(|| format!("{MASTER_KEY_ENV} is not a base64 AES-256 key"));
        }
        let path = match &self.master_key_file {
            Some(path) => path.clone(),
            None => self.data_dir.join(tributary_store::MASTER_KEY_FILE),
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tributary_store::create_private_dir(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        MasterKey::load_or_create_file(&path)
            .with_context(|| format!("cannot read or create the master key {}", path.display()))
    }
}

/// Where Google is and how often mailboxes are polled.
#[derive(Args, Debug, Clone)]
pub struct SyncArgs {
    /// Root URL serving the Gmail, Directory and batch APIs (default: Google's). Point it
    /// at `tributary emulate`'s base URL to run against the emulator.
    #[arg(long, env = "TRIBUTARY_GOOGLE_API_URL")]
    pub google_api_url: Option<String>,
    #[command(flatten)]
    pub microsoft: MicrosoftArgs,
    /// Seconds between incremental syncs of a mailbox.
    #[arg(long, env = "TRIBUTARY_POLL_SECONDS", default_value_t = 300)]
    pub poll_seconds: u64,
    /// Jobs (mailbox syncs) one process runs at once; a quarter of them stay free for
    /// incremental syncs of new mail while backfills run. The default, 80, is Gmail's
    /// project budget (1,200,000 units/min) over its per-user one (15,000): one process
    /// backfilling 80 mailboxes at their own budgets spends the whole project's.
    #[arg(long, env = "TRIBUTARY_SYNC_CONCURRENCY", default_value_t = tributary_sync::scheduler::DEFAULT_CONCURRENCY)]
    pub sync_concurrency: usize,
    /// The instant backfill windows end at (Unix ms), for emulated organizations
    /// generated with a fixed `--now`; default: the clock.
    #[arg(long, env = "TRIBUTARY_REFERENCE_NOW_MS", hide = true)]
    pub reference_now_ms: Option<i64>,
    /// Names this process's job leases (default: worker-PID).
    #[arg(long, env = "TRIBUTARY_WORKER_ID")]
    pub worker_id: Option<String>,
    /// Seconds a job stays leased to a worker that stopped renewing it (it renews every
    /// third of this while alive): how soon another worker takes over from a dead one.
    #[arg(long, env = "TRIBUTARY_LEASE_SECONDS", default_value_t = 60)]
    pub lease_seconds: u64,
    /// The per-user budget paced at, in units per quota minute (default: Gmail's
    /// published 15,000). For emulated, time-scaled quotas (`tributary bench`).
    #[arg(long, env = "TRIBUTARY_USER_UNITS_PER_MINUTE", hide = true)]
    pub user_units_per_minute: Option<u32>,
    /// The per-project budget paced at (default: Gmail's published 1,200,000).
    #[arg(long, env = "TRIBUTARY_PROJECT_UNITS_PER_MINUTE", hide = true)]
    pub project_units_per_minute: Option<u32>,
    /// How long a quota minute lasts, in real milliseconds (default 60,000): an
    /// emulator's time-scaled quota.
    #[arg(long, env = "TRIBUTARY_QUOTA_MINUTE_MS", hide = true)]
    pub quota_minute_ms: Option<u64>,
    /// Messages (and calendar events) per list page and per committed page (default
    /// 500): small pages make many commits, for crash tests that must stop a worker
    /// mid-sync.
    #[arg(long, env = "TRIBUTARY_PAGE_SIZE", hide = true)]
    pub page_size: Option<u32>,
}

impl SyncArgs {
    pub fn runtime_config(&self) -> RuntimeConfig {
        let defaults = RuntimeConfig::default();
        let endpoints = self
            .google_api_url
            .as_deref()
            .map_or_else(GoogleEndpoints::default, GoogleEndpoints::from_base_url);
        let worker_defaults = WorkerConfig::default();
        let engine_defaults = EngineConfig::default();
        let published = engine_defaults.pacing.clone();
        let pacing = PacingConfig {
            user_units_per_minute: self
                .user_units_per_minute
                .unwrap_or(published.user_units_per_minute)
                .max(1),
            project_units_per_minute: self
                .project_units_per_minute
                .unwrap_or(published.project_units_per_minute)
                .max(1),
            minute: self
                .quota_minute_ms
                .map_or(published.minute, |ms| Duration::from_millis(ms.max(1))),
            ..published
        };
        RuntimeConfig {
            endpoints,
            engine: EngineConfig {
                pacing,
                concurrency: self.sync_concurrency.max(1),
                reference_now_ms: self.reference_now_ms,
                page_size: self
                    .page_size
                    .map_or(engine_defaults.page_size, |n| n.max(1)),
                ..engine_defaults
            },
            worker: WorkerConfig {
                worker_id: self.worker_id.clone().unwrap_or(worker_defaults.worker_id),
                poll_interval: Duration::from_secs(self.poll_seconds.max(1)),
                lease: Duration::from_secs(self.lease_seconds.max(1)),
                concurrency: self.sync_concurrency.max(1),
                ..worker_defaults
            },
            ..defaults
        }
    }
}

/// Where Microsoft 365 is: the operator's choice for every tenant (a tenant only gives
/// its directory id, client id and credential).
#[derive(Args, Debug, Clone)]
pub struct MicrosoftArgs {
    /// Root URL of the Microsoft identity platform, where tokens and admin consent are
    /// asked for (https). Point it at `tributary emulate --provider microsoft`'s base URL
    /// to run against the emulator.
    #[arg(long, env = "TRIBUTARY_MICROSOFT_LOGIN_URL", default_value = MICROSOFT_AUTHORITY_HOST)]
    pub microsoft_login_url: String,
    /// Microsoft Graph's root up to and including /v1.0 (https); the emulator's is its
    /// base URL followed by /v1.0.
    #[arg(long, env = "TRIBUTARY_MICROSOFT_GRAPH_URL", default_value = MICROSOFT_GRAPH_BASE)]
    pub microsoft_graph_url: String,
    /// A PEM file of CA certificates to trust for Microsoft besides the system's: the
    /// emulator's ca.pem, or a TLS-inspecting proxy's CA.
    #[arg(long, env = "TRIBUTARY_MICROSOFT_CA_FILE")]
    pub microsoft_ca_file: Option<PathBuf>,
}

/// Microsoft settings that cannot work, named by flag.
#[derive(Debug, thiserror::Error)]
pub enum MicrosoftSettingsError {
    #[error("{flag} {value:?} is not an https:// URL with a host (and no query or fragment)")]
    NotHttps { flag: &'static str, value: String },
    #[error("cannot read the CA file {} (--microsoft-ca-file)", .path.display())]
    UnreadableCa {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the CA file {} (--microsoft-ca-file) holds no PEM certificate \
         (-----BEGIN CERTIFICATE-----)", .path.display()
    )]
    NotPem { path: PathBuf },
}

/// The PEM label of a certificate block.
const PEM_CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----";

impl MicrosoftArgs {
    /// The runtime's Microsoft settings, refused with the flag named when one cannot
    /// work: tokens and client secrets only ever travel over TLS.
    pub fn settings(&self) -> Result<MicrosoftSettings, MicrosoftSettingsError> {
        let authority_host = https_root("--microsoft-login-url", &self.microsoft_login_url)?;
        let graph_base = https_root("--microsoft-graph-url", &self.microsoft_graph_url)?;
        let extra_root_certificates = match &self.microsoft_ca_file {
            Some(path) => vec![read_ca_file(path)?],
            None => Vec::new(),
        };
        Ok(MicrosoftSettings {
            endpoints: MicrosoftEndpoints {
                authority_host,
                graph_base,
            },
            extra_root_certificates,
        })
    }
}

/// `value` without a trailing slash, if it is an https URL with a host.
fn https_root(flag: &'static str, value: &str) -> Result<String, MicrosoftSettingsError> {
    let trimmed = value.trim().trim_end_matches('/');
    let host = trimmed
        .strip_prefix("https://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    let usable = !host.is_empty()
        && !host.contains('@')
        && !trimmed.contains(['?', '#'])
        && !trimmed.chars().any(char::is_whitespace);
    if usable {
        Ok(trimmed.to_owned())
    } else {
        Err(MicrosoftSettingsError::NotHttps {
            flag,
            value: value.to_owned(),
        })
    }
}

fn read_ca_file(path: &Path) -> Result<String, MicrosoftSettingsError> {
    let pem =
        std::fs::read_to_string(path).map_err(|source| MicrosoftSettingsError::UnreadableCa {
            path: path.to_owned(),
            source,
        })?;
    if pem.contains(PEM_CERTIFICATE) {
        Ok(pem)
    } else {
        Err(MicrosoftSettingsError::NotPem {
            path: path.to_owned(),
        })
    }
}

/// Opens the store and builds the runtime. Settings are checked before the store is
/// opened, so a wrong flag changes nothing.
pub async fn open_runtime(store: &StoreArgs, sync: &SyncArgs) -> anyhow::Result<Runtime> {
    let microsoft = sync.microsoft.settings()?;
    let key = store.master_key()?;
    let opened = store.open().await?;
    Ok(Runtime::with_microsoft(
        opened,
        key,
        sync.runtime_config(),
        microsoft,
    ))
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Reads a TOML config file into `TRIBUTARY_*` variables that are not set already, so
/// flags and the environment win over the file. Keys are the long flag names
/// (`data_dir` or `data-dir`).
pub fn apply_config_file(path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", path.display()))?;
    for (key, value) in table {
        let variable = format!("TRIBUTARY_{}", key.replace('-', "_").to_uppercase());
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => anyhow::bail!(
                "{}: `{key}` must be a string, number or boolean, not {}",
                path.display(),
                other.type_str()
            ),
        };
        if std::env::var_os(&variable).is_none() {
            // SAFETY: called once at start-up, before any thread is spawned.
            unsafe { std::env::set_var(&variable, text) };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn microsoft(login: &str, graph: &str, ca: Option<&Path>) -> MicrosoftArgs {
        MicrosoftArgs {
            microsoft_login_url: login.to_owned(),
            microsoft_graph_url: graph.to_owned(),
            microsoft_ca_file: ca.map(Path::to_owned),
        }
    }

    #[test]
    fn microsoft_defaults_are_microsofts_global_cloud() {
        let settings = microsoft(MICROSOFT_AUTHORITY_HOST, MICROSOFT_GRAPH_BASE, None)
            .settings()
            .unwrap();
        assert_eq!(settings.endpoints, MicrosoftEndpoints::default());
        assert!(settings.extra_root_certificates.is_empty());
        let emulator = microsoft(
            "https://127.0.0.1:8443/",
            "https://127.0.0.1:8443/v1.0",
            None,
        )
        .settings()
        .unwrap();
        assert_eq!(
            emulator.endpoints,
            MicrosoftEndpoints::from_base_url("https://127.0.0.1:8443")
        );
    }

    #[test]
    fn microsoft_endpoints_must_be_https_and_are_named() {
        for (login, graph, flag) in [
            (
                "http://127.0.0.1:8443",
                MICROSOFT_GRAPH_BASE,
                "--microsoft-login-url",
            ),
            (
                MICROSOFT_AUTHORITY_HOST,
                "graph.microsoft.com/v1.0",
                "--microsoft-graph-url",
            ),
            ("https://", MICROSOFT_GRAPH_BASE, "--microsoft-login-url"),
            (
                MICROSOFT_AUTHORITY_HOST,
                "https://graph.microsoft.com/v1.0?x=1",
                "--microsoft-graph-url",
            ),
        ] {
            let error = microsoft(login, graph, None).settings().unwrap_err();
            assert!(
                matches!(&error, MicrosoftSettingsError::NotHttps { flag: named, .. } if *named == flag),
                "{login} {graph}: {error}"
            );
            assert!(error.to_string().contains(flag), "{error}");
        }
    }

    #[test]
    fn a_microsoft_ca_file_must_be_readable_pem() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let error = microsoft(
            MICROSOFT_AUTHORITY_HOST,
            MICROSOFT_GRAPH_BASE,
            Some(&missing),
        )
        .settings()
        .unwrap_err();
        assert!(
            matches!(error, MicrosoftSettingsError::UnreadableCa { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("missing.pem"), "{error}");
        let not_pem = dir.path().join("ca.der");
        std::fs::write(&not_pem, "not a certificate").unwrap();
        let error = microsoft(
            MICROSOFT_AUTHORITY_HOST,
            MICROSOFT_GRAPH_BASE,
            Some(&not_pem),
        )
        .settings()
        .unwrap_err();
        assert!(
            matches!(error, MicrosoftSettingsError::NotPem { .. }),
            "{error}"
        );
        let pem = dir.path().join("ca.pem");
        let text = format!("{PEM_CERTIFICATE}\nMIIB\n-----END CERTIFICATE-----\n");
        std::fs::write(&pem, &text).unwrap();
        let settings = microsoft(MICROSOFT_AUTHORITY_HOST, MICROSOFT_GRAPH_BASE, Some(&pem))
            .settings()
            .unwrap();
        assert_eq!(settings.extra_root_certificates, [text]);
    }

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/t"),
            "postgres://app:***@db:5432/t"
        );
        assert_eq!(redact_url("postgres://app@db/t"), "postgres://app@db/t");
        assert_eq!(redact_url("/var/lib/x.db"), "/var/lib/x.db");
    }
}
