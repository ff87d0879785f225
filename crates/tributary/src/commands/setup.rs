//! What `serve`, `worker`, `migrate` and `admin` share: where the store is, the master
//! key, where Google is, and the runtime built from them. Settings come from flags, then
//! `TRIBUTARY_*` environment variables, then a TOML config file (`--config`), then
//! defaults.

use anyhow::Context;
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tributary_google::GoogleEndpoints;
use tributary_store::{MASTER_KEY_ENV, MasterKey, Store};
use tributary_sync::{EngineConfig, PacingConfig, Runtime, RuntimeConfig, WorkerConfig};

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

/// Opens the store and builds the runtime.
pub async fn open_runtime(store: &StoreArgs, sync: &SyncArgs) -> anyhow::Result<Runtime> {
    let key = store.master_key()?;
    let opened = store.open().await?;
    Ok(Runtime::new(opened, key, sync.runtime_config()))
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
