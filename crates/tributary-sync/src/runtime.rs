//! The runtime: everything an administrator's action or a worker needs, built from
//! what the store holds. It connects a tenant to Google (validating and sealing the
//! key), tests the connection, turns capture on and off, saves the policy, runs User
//! Delegation Sync on demand (*Rebuild*) or on a timer, starts, unlinks and retries
//! links, and hands workers a [`SyncEngine`] per tenant, rebuilt when the tenant's
//! configuration changes.

mod microsoft;
mod microsoft_setup;
mod new_users;
pub mod resume;

pub use microsoft::{MicrosoftCredential, MicrosoftSettings, microsoft_connector};
pub use microsoft_setup::{
    ConsentOutcome, ConsentRecord, CredentialView, MICROSOFT_PERMISSIONS, MicrosoftPermission,
    MicrosoftSetup,
};

use crate::connector::Connector;
use crate::delegation::{DelegationReport, ProviderDirectory, rebuild_links};
use crate::engine::{EngineConfig, SyncEngine, clock_ms, may_run};
use crate::error::SyncError;
use crate::pacing::Pacer;
use crate::push::lifecycle::{self as push_lifecycle, UNLINKED_REASON};
use crate::push::{PushLink, PushSettings};
use crate::scheduler::{SYNC_LINK_JOB, WorkerConfig};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tributary_core::{
    EmailAddress, Extractor, LinkErrorStatus, PolicyError, PolicySettings, ProviderError,
    TenantDirectory, TenantError,
};
use tributary_google::{
    ConnectorError, ConnectorOptions, GoogleConnector, GoogleEndpoints, KeyFileError,
    ServiceAccountInfo, ServiceAccountKey, scopes,
};
use tributary_store::{
    AuditEvent, ConnectionKind, ConnectionView, LinkId, LinkStatus, LinkView, MasterKey,
    PushChannelRecord, PushMode, SecretBytes, Store, StoreError, TenantId,
};

/// The job kind that re-reads a tenant's directory (new users linked automatically).
pub const DELEGATION_SYNC_JOB: &str = "delegation_sync";

/// Most links one Start, Unlink or Retry may name: each is a write and an audit row.
pub const MAX_LINKS_PER_ACTION: usize = 1_000;

/// Most channels one sweep for unlinked links reads (it runs after every *Rebuild*).
const MAX_CHANNELS_SWEPT: u32 = 100_000;

/// Most extra labels a member may sync: each costs Gmail calls on every run.
pub const MAX_MEMBER_LABELS: usize = 50;

/// Longest label a member may name: Gmail's own limit for a label name.
pub const MAX_LABEL_LEN: usize = 225;

/// Why a member's label choice is refused (nothing is saved).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error("at most {MAX_MEMBER_LABELS} extra labels, not {0}")]
    TooMany(usize),
    #[error("a label is longer than {MAX_LABEL_LEN} characters (Gmail's limit for a label name)")]
    TooLong,
    #[error("the mailbox has no label {}; its labels are: {}", .unknown.join(", "), .existing.join(", "))]
    Unknown {
        unknown: Vec<String>,
        /// The labels the member may pick, as `name (id)` or the id of a system label.
        existing: Vec<String>,
    },
    #[error(
        "the mailbox's labels could not be read ({reason}), so only Gmail's system labels \
         (STARRED, IMPORTANT, CATEGORY_…) can be added now; not saved: {}", .unknown.join(", ")
    )]
    Unverifiable {
        unknown: Vec<String>,
        reason: String,
    },
}

/// Where Google's page for domain-wide delegation is.
pub const DOMAIN_WIDE_DELEGATION_URL: &str = "https://admin.google.com/ac/owl/domainwidedelegation";

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where the Google APIs are (the emulator's root in tests and the demo).
    pub endpoints: GoogleEndpoints,
    pub engine: EngineConfig,
    pub worker: WorkerConfig,
    /// How often User Delegation Sync re-reads each connected directory.
    pub delegation_interval: Duration,
    /// Push (docs/push.md): where providers deliver change notifications, set when the
    /// server has a public URL for them (`--push --public-url`). `None`: every link is
    /// polled and no channel is opened.
    pub push: Option<PushSettings>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            endpoints: GoogleEndpoints::default(),
            engine: EngineConfig::default(),
            worker: WorkerConfig::default(),
            delegation_interval: Duration::from_secs(3600),
            push: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("the key file is not usable: {0}")]
    KeyFile(#[from] KeyFileError),
    #[error("the Workspace admin address `{0}` is not an email address")]
    AdminEmail(String),
    #[error(
        "the Workspace admin address `{address}` is not on the organization's domains ({}): give an administrator of this Google Workspace",
        .domains.join(", ")
    )]
    AdminDomain {
        address: String,
        domains: Vec<String>,
    },
    /// A new key failed *Test connection* while a key was stored: the stored one stays.
    #[error(
        "the new key failed the connection test, so the working key was kept; Google said: {}",
        .check.message
    )]
    KeyNotReplaced { check: Box<ConnectionCheck> },
    #[error("the policy is not valid: {0}")]
    Policy(#[from] PolicyError),
    #[error("the stored policy is unreadable: {0}")]
    StoredPolicy(serde_json::Error),
    #[error("no Google Workspace connection yet: upload a service-account key first")]
    NotConnected,
    #[error("mailbox link {0} does not exist in this tenant")]
    UnknownLink(i64),
    #[error("Google refused ({status}): {message}")]
    Provider {
        status: LinkErrorStatus,
        message: String,
    },
    #[error("the directory lists an unusable address: {0}")]
    Directory(#[from] TenantError),
    #[error("cannot set up the Google connector: {0}")]
    Connector(#[from] ConnectorError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("labels not saved: {0}")]
    Labels(#[from] LabelError),
    /// A Microsoft 365 connection's field is wrong: nothing was stored.
    #[error("{field} is not usable: {reason}")]
    MicrosoftField { field: &'static str, reason: String },
    #[error("cannot set up the Microsoft connector: {0}")]
    MicrosoftConnector(#[from] tributary_microsoft::ConnectorError),
}

impl From<SyncError> for RuntimeError {
    fn from(error: SyncError) -> Self {
        match error {
            SyncError::Store(store) => RuntimeError::Store(store),
            other => RuntimeError::Provider {
                status: other.link_status(),
                message: other.message(),
            },
        }
    }
}

impl From<ProviderError> for RuntimeError {
    fn from(error: ProviderError) -> Self {
        RuntimeError::Provider {
            status: error.link_status(),
            message: error.message().to_owned(),
        }
    }
}

/// What the setup page shows once a key is uploaded: what to paste into Google's
/// Domain-Wide Delegation page. Never the private key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GoogleSetup {
    pub client_id: String,
    pub client_email: String,
    pub project_id: Option<String>,
    pub private_key_id: String,
    pub admin_email: String,
    /// The scopes to delegate (any order).
    pub scopes: Vec<String>,
    /// The same, comma-separated, as the delegation form takes them.
    pub scopes_csv: String,
    pub delegation_url: String,
    pub capture_enabled: bool,
}

/// The result of *Test connection*.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConnectionCheck {
    pub ok: bool,
    /// The taxonomy status when Google refused.
    pub status: Option<LinkErrorStatus>,
    /// Google's own words, or what succeeded.
    pub message: String,
    /// What to do about a failure.
    pub hint: Option<&'static str>,
    /// Directory accounts seen on the first page, when the directory answered.
    pub accounts_seen: Option<usize>,
}

/// What a key upload may do to the key already stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeyReplacement {
    /// Test the new key first (a token for the admin, a directory read) and keep the
    /// stored key when the test fails: an unrelated key must not break a working tenant.
    #[default]
    IfItWorks,
    /// Replace even when the new key fails the test: the admin says the stored key is
    /// already dead.
    Anyway,
}

/// One tenant's engines (one per connected provider, in the order connected) as last
/// built, with the configuration version they reflect.
#[derive(Debug, Clone)]
struct CachedEngine {
    version: i64,
    engines: Vec<SyncEngine>,
}

/// The shared runtime. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    key: MasterKey,
    config: RuntimeConfig,
    microsoft: MicrosoftSettings,
    engines: Mutex<HashMap<TenantId, CachedEngine>>,
    /// One pacer per tenant for the runtime's life, so that rebuilt engines and
    /// directory reads share what the quota was charged.
    pacers: std::sync::Mutex<HashMap<TenantId, Arc<Pacer>>>,
}

impl Runtime {
    pub fn new(store: Store, key: MasterKey, config: RuntimeConfig) -> Self {
        Runtime::with_microsoft(store, key, config, MicrosoftSettings::default())
    }

    /// A runtime that reaches Microsoft 365 as `microsoft` says (the emulator in tests
    /// and the demo).
    pub fn with_microsoft(
        store: Store,
        key: MasterKey,
        config: RuntimeConfig,
        microsoft: MicrosoftSettings,
    ) -> Self {
        Runtime {
            inner: Arc::new(Inner {
                store,
                key,
                config,
                microsoft,
                engines: Mutex::new(HashMap::new()),
                pacers: std::sync::Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The same store, key and Microsoft settings with the configuration `change` makes
    /// (a command's own settings, such as push, on top of the shared ones). Meant for
    /// start-up: the new runtime builds its engines and pacers afresh.
    pub fn reconfigured(&self, change: impl FnOnce(&mut RuntimeConfig)) -> Self {
        let mut config = self.config().clone();
        change(&mut config);
        Runtime::with_microsoft(
            self.store().clone(),
            self.inner.key.clone(),
            config,
            self.inner.microsoft.clone(),
        )
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// [`Runtime::upload_google_key`] that keeps a stored key unless the new one passes
    /// the connection test.
    pub async fn connect_google(
        &self,
        tenant: &TenantId,
        key_json: &[u8],
        admin_email: &str,
        actor: &str,
    ) -> Result<GoogleSetup, RuntimeError> {
        self.upload_google_key(
            tenant,
            key_json,
            admin_email,
            actor,
            KeyReplacement::IfItWorks,
        )
        .await
    }

    /// Validates `key_json` (its `token_uri` must be this server's token endpoint) and
    /// `admin_email` (an address on the organization's domains once they are known),
    /// then seals and saves the key, keeping the saved policy and capture switch. When a
    /// key is already stored, the new one is tested first and, unless `replacement` is
    /// [`KeyReplacement::Anyway`], a failed test keeps the stored key (audited). On any
    /// error nothing is stored.
    pub async fn upload_google_key(
        &self,
        tenant: &TenantId,
        key_json: &[u8],
        admin_email: &str,
        actor: &str,
        replacement: KeyReplacement,
    ) -> Result<GoogleSetup, RuntimeError> {
        let key = ServiceAccountKey::from_upload(key_json, &self.config().endpoints)?;
        let admin = EmailAddress::parse_mailbox(admin_email)
            .map_err(|_| RuntimeError::AdminEmail(admin_email.trim().to_owned()))?;
        let store = self.store();
        let existing = store.connection(tenant, ConnectionKind::Google).await?;
        self.check_admin_domain(tenant, existing.as_ref(), &admin)
            .await?;
        let test = match &existing {
            None => None,
            Some(_) => Some(
                self.test_replacement(tenant, &key, admin.as_str(), actor, replacement)
                    .await?,
            ),
        };
        let policy = match existing {
            Some(existing) => existing.policy,
            None => serde_json::to_value(PolicySettings::default())
                .map_err(RuntimeError::StoredPolicy)?,
        };
        store
            .save_connection(
                tenant,
                ConnectionKind::Google,
                admin.as_str(),
                &SecretBytes::new(key_json.to_vec()),
                &policy,
                &self.inner.key,
            )
            .await?;
        let mut detail = key_detail(key.info());
        detail["replaced"] = serde_json::json!(test.is_some());
        detail["replace_anyway"] = serde_json::json!(replacement == KeyReplacement::Anyway);
        detail["test"] = serde_json::json!(test);
        store
            .record_audit(
                tenant,
                &audit(
                    actor,
                    "connection.google.key_uploaded",
                    Some(admin.as_str()),
                    detail,
                ),
            )
            .await?;
        self.resume_after_check(tenant, ConnectionKind::Google, test.as_ref(), actor)
            .await?;
        self.google_setup(tenant)
            .await?
            .ok_or(RuntimeError::NotConnected)
    }

    /// Refuses an admin address outside the organization's domains, once any are known:
    /// the directory's (from the last delegation sync) and the members'.
    async fn check_admin_domain(
        &self,
        tenant: &TenantId,
        connection: Option<&ConnectionView>,
        admin: &EmailAddress,
    ) -> Result<(), RuntimeError> {
        let mut domains: BTreeSet<String> = connection
            .map(|c| c.domains.iter().map(|d| d.to_ascii_lowercase()).collect())
            .unwrap_or_default();
        for member in self.store().members(tenant).await? {
            if let Some((_, domain)) = member.email.rsplit_once('@') {
                domains.insert(domain.to_ascii_lowercase());
            }
        }
        if domains.is_empty() || domains.contains(admin.domain()) {
            return Ok(());
        }
        Err(RuntimeError::AdminDomain {
            address: admin.as_str().to_owned(),
            domains: domains.into_iter().collect(),
        })
    }

    /// Tests a key meant to replace the stored one. A failure keeps the stored key
    /// (audited, with Google's parsed answer) unless the admin replaces it anyway.
    async fn test_replacement(
        &self,
        tenant: &TenantId,
        key: &ServiceAccountKey,
        admin: &str,
        actor: &str,
        replacement: KeyReplacement,
    ) -> Result<ConnectionCheck, RuntimeError> {
        let connector = GoogleConnector::new(key.clone(), self.connector_options())?;
        let check = check_connection(&connector, admin).await;
        if check.ok || replacement == KeyReplacement::Anyway {
            return Ok(check);
        }
        let mut detail = key_detail(key.info());
        detail["test"] = serde_json::json!(check);
        self.store()
            .record_audit(
                tenant,
                &audit(
                    actor,
                    "connection.google.key_replacement_refused",
                    Some(admin),
                    detail,
                ),
            )
            .await?;
        Err(RuntimeError::KeyNotReplaced {
            check: Box::new(check),
        })
    }

    /// What to paste into Google's delegation page, once a key is uploaded.
    pub async fn google_setup(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<GoogleSetup>, RuntimeError> {
        let Some(connection) = self
            .store()
            .connection(tenant, ConnectionKind::Google)
            .await?
        else {
            return Ok(None);
        };
        let key = self.google_key(tenant).await?;
        Ok(Some(setup_view(
            key.info(),
            connection.admin_email,
            connection.capture_enabled,
        )))
    }

    /// Mints a token for the admin with every scope and reads one page of the
    /// directory: what Google says, in the taxonomy, with what to do about it.
    pub async fn test_connection(
        &self,
        tenant: &TenantId,
        actor: &str,
    ) -> Result<ConnectionCheck, RuntimeError> {
        let (connector, admin) = self.connector(tenant).await?;
        let check = check_connection(&connector, &admin).await;
        let detail = serde_json::to_value(&check).unwrap_or_default();
        self.store()
            .record_audit(
                tenant,
                &audit(actor, "connection.google.tested", None, detail),
            )
            .await?;
        self.resume_after_check(tenant, ConnectionKind::Google, Some(&check), actor)
            .await?;
        Ok(check)
    }

    pub async fn capture_enabled(&self, tenant: &TenantId) -> Result<bool, RuntimeError> {
        Ok(self
            .store()
            .connection(tenant, self.provider(tenant).await?)
            .await?
            .is_some_and(|c| c.capture_enabled))
    }

    /// Turns capture on (every runnable link is scheduled now) or off (workers drop the
    /// tenant's jobs until it is on again).
    pub async fn set_capture_enabled(
        &self,
        tenant: &TenantId,
        enabled: bool,
        actor: &str,
    ) -> Result<(), RuntimeError> {
        let store = self.store();
        let provider = self.provider(tenant).await?;
        if store.connection(tenant, provider).await?.is_none() {
            return Err(RuntimeError::NotConnected);
        }
        store
            .set_capture_enabled(tenant, provider, enabled, actor)
            .await?;
        if enabled {
            self.schedule_runnable_links(tenant).await?;
            store
                .enqueue_tenant_job(tenant, DELEGATION_SYNC_JOB, clock_ms())
                .await?;
        }
        Ok(())
    }

    /// The saved policy form (the default until one is saved). The tenant's, with or
    /// without a connection.
    pub async fn policy(&self, tenant: &TenantId) -> Result<PolicySettings, RuntimeError> {
        let settings = self.store().tenant_settings(tenant).await?;
        serde_json::from_value(settings.policy).map_err(RuntimeError::StoredPolicy)
    }

    /// Validates and saves the policy form; engines pick it up on their next job.
    pub async fn set_policy(
        &self,
        tenant: &TenantId,
        settings: &PolicySettings,
        actor: &str,
    ) -> Result<(), RuntimeError> {
        settings.validate()?;
        let json = serde_json::to_value(settings).map_err(RuntimeError::StoredPolicy)?;
        Ok(self.store().set_tenant_policy(tenant, &json, actor).await?)
    }

    /// *Rebuild*: reads the directory of every connected provider (Google's as the
    /// connection's admin), matches members by every address, links each at the
    /// provider hosting its mailbox (started when capture is on), unlinks members whose
    /// accounts were suspended, archived or deleted, and stores the result.
    pub async fn rebuild(
        &self,
        tenant: &TenantId,
        actor: &str,
    ) -> Result<DelegationReport, RuntimeError> {
        let mut connectors = Vec::new();
        for connection in self.connections(tenant).await? {
            connectors.push(self.mail_connector(tenant, connection.kind).await?);
        }
        if connectors.is_empty() {
            return Err(RuntimeError::NotConnected);
        }
        let pacer = self.pacer(tenant);
        let directories: Vec<ProviderDirectory<'_>> = connectors
            .iter()
            .map(|(connector, admin)| ProviderDirectory {
                connector,
                admin_email: admin,
                pacer: &pacer,
            })
            .collect();
        let report = rebuild_links(self.store(), tenant, &directories).await?;
        let store = self.store();
        for (connector, _) in &connectors {
            store
                .set_connection_domains(tenant, connector.kind(), &report.domains)
                .await?;
        }
        let json = serde_json::to_value(&report).map_err(StoreError::from)?;
        store
            .save_delegation_result(tenant, &json, report.at_ms)
            .await?;
        let summary = serde_json::json!({
            "matched": report.matched.len(),
            "unmatched": report.unmatched.len(),
            "unlinked": report.unlinked.len(),
        });
        store
            .record_audit(tenant, &audit(actor, "delegation.rebuilt", None, summary))
            .await?;
        self.hold_new_links(tenant, &report, actor).await?;
        self.close_push_of_unlinked(tenant).await?;
        // New and restored links are `pending`: sync them now. Links already syncing
        // keep their own schedule (an extra run now would only repeat an incremental).
        if self.capture_enabled(tenant).await? {
            self.schedule_links(tenant, |status| status == LinkStatus::Pending)
                .await?;
        }
        Ok(report)
    }

    /// The last User Delegation Sync result.
    pub async fn delegation_report(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<DelegationReport>, RuntimeError> {
        let Some((_, json)) = self.store().delegation_result(tenant).await? else {
            return Ok(None);
        };
        Ok(serde_json::from_value(json).ok())
    }

    /// Starts links (from `unlinked` or an error status): `pending`, synced at once when
    /// capture is on. Answers how many changed.
    pub async fn start_links(
        &self,
        tenant: &TenantId,
        links: &[LinkId],
        actor: &str,
    ) -> Result<usize, RuntimeError> {
        self.restart_links(tenant, links, actor, |status| {
            status != LinkStatus::Syncing && status != LinkStatus::Pending
        })
        .await
    }

    /// Retries links in an error status now, without waiting for backoff.
    pub async fn retry_links(
        &self,
        tenant: &TenantId,
        links: &[LinkId],
        actor: &str,
    ) -> Result<usize, RuntimeError> {
        self.restart_links(tenant, links, actor, |status| {
            matches!(
                status,
                LinkStatus::AuthenticationError
                    | LinkStatus::Unauthorized
                    | LinkStatus::LinkageError
                    | LinkStatus::Idle
            )
        })
        .await
    }

    /// Unlinks links: their mail is no longer synced (what was captured stays).
    pub async fn unlink_links(
        &self,
        tenant: &TenantId,
        links: &[LinkId],
        actor: &str,
    ) -> Result<usize, RuntimeError> {
        let links = distinct(links);
        let known = self.check_links(tenant, &links).await?;
        let mut changed = Vec::new();
        for link in &links {
            if known.get(link) == Some(&LinkStatus::Unlinked) {
                continue;
            }
            self.store()
                .set_link_status(tenant, *link, LinkStatus::Unlinked, actor)
                .await?;
            changed.push(*link);
        }
        let views: Vec<LinkView> = self
            .store()
            .links(tenant)
            .await?
            .into_iter()
            .filter(|view| changed.contains(&view.id))
            .collect();
        self.close_push_channels(tenant, &views).await?;
        Ok(changed.len())
    }

    /// Stops the push channels of `links` at their providers (a refusal is logged and
    /// never stops the unlink: the channel lapses at its expiry, and notifications for
    /// an unlinked link schedule nothing), forgets them, and shows the links as polling,
    /// "unlinked". Answers how many channels were closed.
    pub(crate) async fn close_push_channels(
        &self,
        tenant: &TenantId,
        links: &[LinkView],
    ) -> Result<usize, RuntimeError> {
        let store = self.store();
        let now_ms = clock_ms();
        let mut by_provider: Vec<(ConnectionKind, Vec<(PushLink, PushChannelRecord)>)> = Vec::new();
        for view in links {
            let channels = store.push_channels(tenant, view.id).await?;
            // Without push configured, only links that had channels get a push row.
            if self.config().push.is_some() || !channels.is_empty() {
                store
                    .set_link_push(
                        tenant,
                        view.id,
                        PushMode::Polling,
                        Some(UNLINKED_REASON),
                        now_ms,
                    )
                    .await?;
            }
            if channels.is_empty() {
                continue;
            }
            let link = PushLink {
                tenant: tenant.clone(),
                link: view.id,
                mailbox: view.mailbox.to_lowercase(),
                pacer: self.pacer(tenant),
            };
            let index = match by_provider
                .iter()
                .position(|(kind, _)| *kind == view.provider)
            {
                Some(index) => index,
                None => {
                    by_provider.push((view.provider, Vec::new()));
                    by_provider.len() - 1
                }
            };
            by_provider[index]
                .1
                .extend(channels.into_iter().map(|channel| (link.clone(), channel)));
        }
        let mut closed = 0;
        for (provider, channels) in by_provider {
            let connector = match self.mail_connector(tenant, provider).await {
                Ok((connector, _)) => Some(connector),
                Err(error) => {
                    tracing::warn!(
                        tenant = %tenant.as_str(), provider = provider.as_str(),
                        error = ?error.to_string(),
                        "push channels forgotten without being stopped: no connector"
                    );
                    None
                }
            };
            closed += push_lifecycle::close_channels(store, connector.as_ref(), channels).await?;
        }
        Ok(closed)
    }

    /// Closes the channels of links that are unlinked but still hold some (unlinked by
    /// User Delegation Sync, or by an admin while their sync was opening one).
    async fn close_push_of_unlinked(&self, tenant: &TenantId) -> Result<usize, RuntimeError> {
        let store = self.store();
        let holding: std::collections::HashSet<LinkId> = store
            .push_channels_expiring(tenant, i64::MAX, MAX_CHANNELS_SWEPT)
            .await?
            .into_iter()
            .map(|channel| channel.link)
            .collect();
        if holding.is_empty() {
            return Ok(0);
        }
        let unlinked: Vec<LinkView> = store
            .links(tenant)
            .await?
            .into_iter()
            .filter(|view| view.status == LinkStatus::Unlinked && holding.contains(&view.id))
            .collect();
        self.close_push_channels(tenant, &unlinked).await
    }

    async fn restart_links(
        &self,
        tenant: &TenantId,
        links: &[LinkId],
        actor: &str,
        applies: impl Fn(LinkStatus) -> bool,
    ) -> Result<usize, RuntimeError> {
        let links = distinct(links);
        let known = self.check_links(tenant, &links).await?;
        let enabled = self.capture_enabled(tenant).await?;
        let store = self.store();
        let mut changed = 0;
        for link in &links {
            if !known.get(link).is_some_and(|status| applies(*status)) {
                continue;
            }
            store
                .set_link_status(tenant, *link, LinkStatus::Pending, actor)
                .await?;
            if enabled {
                store
                    .enqueue_job(tenant, SYNC_LINK_JOB, Some(*link), clock_ms())
                    .await?;
            }
            changed += 1;
        }
        Ok(changed)
    }

    /// The statuses of `links`; an error naming the first one not in the tenant.
    /// Callers pass `links` through [`distinct`] first, so that a link named twice is
    /// written and counted once.
    async fn check_links(
        &self,
        tenant: &TenantId,
        links: &[LinkId],
    ) -> Result<HashMap<LinkId, LinkStatus>, RuntimeError> {
        let known: HashMap<LinkId, LinkStatus> = self
            .store()
            .links(tenant)
            .await?
            .into_iter()
            .map(|l| (l.id, l.status))
            .collect();
        if let Some(unknown) = links.iter().find(|l| !known.contains_key(l)) {
            return Err(RuntimeError::UnknownLink(unknown.0));
        }
        Ok(known)
    }

    /// A push said `mailbox` (at `provider`) changed: brings its link's sync forward to
    /// now, when the link may run. The store keeps one pending sync per link, so a burst
    /// of notifications for one mailbox becomes one run, and a sync is a fresh-mail job
    /// (leased ahead of backfills) once the link completed its first sync. Answers the
    /// link scheduled, `None` when no runnable link has that mailbox.
    pub async fn sync_mailbox_now(
        &self,
        tenant: &TenantId,
        provider: ConnectionKind,
        mailbox: &str,
    ) -> Result<Option<LinkId>, RuntimeError> {
        let store = self.store();
        let Some(link) = store.links(tenant).await?.into_iter().find(|l| {
            l.provider == provider && l.mailbox.eq_ignore_ascii_case(mailbox) && may_run(l.status)
        }) else {
            return Ok(None);
        };
        store
            .enqueue_job(tenant, SYNC_LINK_JOB, Some(link.id), clock_ms())
            .await?;
        Ok(Some(link.id))
    }

    /// A push named `link`'s channel (a Graph subscription, a Calendar channel): brings
    /// its sync forward to now, as [`Runtime::sync_mailbox_now`] does. Answers whether
    /// it was scheduled (not when the link may not run, or is not the tenant's).
    pub async fn sync_link_now(
        &self,
        tenant: &TenantId,
        link: LinkId,
    ) -> Result<bool, RuntimeError> {
        let store = self.store();
        let runnable = store
            .link(tenant, link)
            .await?
            .is_some_and(|view| may_run(view.status));
        if !runnable {
            return Ok(false);
        }
        store
            .enqueue_job(tenant, SYNC_LINK_JOB, Some(link), clock_ms())
            .await?;
        Ok(true)
    }

    /// Enqueues a sync, due now, for every link of `tenant` that may run.
    pub async fn schedule_runnable_links(&self, tenant: &TenantId) -> Result<usize, RuntimeError> {
        self.schedule_links(tenant, may_run).await
    }

    /// Enqueues a sync, due now, for every link of one of `tenant`'s connected
    /// providers whose status `selects`.
    async fn schedule_links(
        &self,
        tenant: &TenantId,
        selects: impl Fn(LinkStatus) -> bool,
    ) -> Result<usize, RuntimeError> {
        let store = self.store();
        // Each provider's engine syncs only its own links: a link of a provider the
        // tenant is not connected to has no engine to run it.
        let connected: Vec<ConnectionKind> = self
            .connections(tenant)
            .await?
            .iter()
            .map(|c| c.kind)
            .collect();
        let mut scheduled = 0;
        for link in store.links(tenant).await? {
            if connected.contains(&link.provider) && selects(link.status) {
                store
                    .enqueue_job(tenant, SYNC_LINK_JOB, Some(link.id), clock_ms())
                    .await?;
                scheduled += 1;
            }
        }
        Ok(scheduled)
    }

    /// The engine of the tenant's first connected provider (see [`Runtime::engines`]);
    /// `None` while capture is off or unconfigured. A tenant with one provider has only
    /// this one.
    pub async fn engine(&self, tenant: &TenantId) -> Result<Option<SyncEngine>, RuntimeError> {
        Ok(self.engines(tenant).await?.into_iter().next())
    }

    /// The engine syncing `tenant`'s links of `provider`; `None` while capture is off,
    /// or when the tenant is not connected to `provider`.
    pub async fn engine_for(
        &self,
        tenant: &TenantId,
        provider: ConnectionKind,
    ) -> Result<Option<SyncEngine>, RuntimeError> {
        Ok(self
            .engines(tenant)
            .await?
            .into_iter()
            .find(|engine| engine.connector().kind() == provider))
    }

    /// The tenant's engines, one per connected provider in the order connected, built
    /// from the stored credentials, policy, domains and members and rebuilt when any of
    /// them changed; none while capture is off or unconfigured. They share one
    /// extractor (the members of every provider are the tenant's) and the tenant's pacer.
    pub async fn engines(&self, tenant: &TenantId) -> Result<Vec<SyncEngine>, RuntimeError> {
        let version = self.store().config_version(tenant).await?;
        let mut engines = self.inner.engines.lock().await;
        if let Some(cached) = engines.get(tenant).filter(|c| c.version == version) {
            return Ok(cached.engines.clone());
        }
        let built = self.build_engines(tenant).await?;
        if built.is_empty() {
            engines.remove(tenant);
        } else {
            engines.insert(
                tenant.clone(),
                CachedEngine {
                    version,
                    engines: built.clone(),
                },
            );
        }
        Ok(built)
    }

    async fn build_engines(&self, tenant: &TenantId) -> Result<Vec<SyncEngine>, RuntimeError> {
        let connections = self.connections(tenant).await?;
        // The capture switch is the tenant's first connection's (see `provider`).
        if !connections.first().is_some_and(|c| c.capture_enabled) {
            return Ok(Vec::new());
        }
        let Some(extractor) = self.tenant_extractor(tenant, &connections).await? else {
            return Ok(Vec::new());
        };
        let mut engines = Vec::with_capacity(connections.len());
        for connection in &connections {
            let (connector, _) = self.mail_connector(tenant, connection.kind).await?;
            engines.push(
                SyncEngine::new(
                    self.store().clone(),
                    connector,
                    tenant.clone(),
                    extractor.clone(),
                    self.config().engine.clone(),
                )
                .sharing_pacer(self.pacer(tenant))
                .with_push(self.config().push.clone()),
            );
        }
        Ok(engines)
    }

    /// The extractor every engine of the tenant shares: the policy, the domains of
    /// every connection and the active members; `None` without a connection.
    async fn tenant_extractor(
        &self,
        tenant: &TenantId,
        connections: &[ConnectionView],
    ) -> Result<Option<Extractor>, RuntimeError> {
        let Some(first) = connections.first() else {
            return Ok(None);
        };
        let settings: PolicySettings =
            serde_json::from_value(first.policy.clone()).map_err(RuntimeError::StoredPolicy)?;
        let mut directory = TenantDirectory::new();
        let domains: BTreeSet<&String> = connections.iter().flat_map(|c| &c.domains).collect();
        for domain in domains {
            directory.add_domain(domain)?;
        }
        let members = self.store().members(tenant).await?;
        for member in members.iter().filter(|m| m.active) {
            directory.add_member(&member.email, member.aliases.iter().map(String::as_str))?;
        }
        Ok(Some(Extractor::new(
            directory,
            settings.free_mail_list()?,
            settings.capture_policy()?,
        )))
    }
    /// The tenant's pacer, created on first use.
    pub(crate) fn pacer(&self, tenant: &TenantId) -> Arc<Pacer> {
        let mut pacers = self
            .inner
            .pacers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(
            pacers
                .entry(tenant.clone())
                .or_insert_with(|| Arc::new(Pacer::new(self.config().engine.pacing.clone()))),
        )
    }

    async fn google_key(&self, tenant: &TenantId) -> Result<ServiceAccountKey, RuntimeError> {
        let credentials = match self
            .store()
            .connection_credentials(tenant, ConnectionKind::Google, &self.inner.key)
            .await
        {
            Err(StoreError::NoConnection { .. }) => return Err(RuntimeError::NotConnected),
            other => other?,
        };
        Ok(ServiceAccountKey::from_json(credentials.expose())?)
    }

    /// The tenant's connections in the order they were connected (then Google's
    /// first): a tenant mid-migration has a Google and a Microsoft one.
    pub(crate) async fn connections(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<ConnectionView>, RuntimeError> {
        let mut connections = Vec::new();
        for kind in ConnectionKind::ALL {
            if let Some(connection) = self.store().connection(tenant, kind).await? {
                connections.push(connection);
            }
        }
        // `ALL` is in a fixed order and the sort is stable: a tie stays deterministic.
        connections.sort_by_key(|c| c.created_ms);
        Ok(connections)
    }

    /// The connection holding the tenant's capture switch: the one connected first
    /// (Google's while there is none, so that errors say what to connect). Every
    /// provider's engine follows that switch; *Rebuild* reads every connection's
    /// directory, and a link is synced by its own provider's engine.
    async fn provider(&self, tenant: &TenantId) -> Result<ConnectionKind, RuntimeError> {
        Ok(self
            .connections(tenant)
            .await?
            .first()
            .map_or(ConnectionKind::Google, |c| c.kind))
    }

    /// The tenant's mail connector for `provider`, built from its stored credentials,
    /// and the admin address it reads the directory as: the one `match` on the stored
    /// kind that builds a connector.
    pub(crate) async fn mail_connector(
        &self,
        tenant: &TenantId,
        provider: ConnectionKind,
    ) -> Result<(Connector, String), RuntimeError> {
        match provider {
            ConnectionKind::Google => {
                let (connector, admin) = self.connector(tenant).await?;
                Ok((connector.into(), admin))
            }
            ConnectionKind::Microsoft => self.microsoft_connector(tenant).await,
            // No connector yet: such a connection cannot be used.
            ConnectionKind::Imap => Err(RuntimeError::NotConnected),
        }
    }

    /// Disconnects the tenant's `provider`: its credentials are deleted and only its
    /// links are unlinked (what they captured stays); the other provider's links keep
    /// syncing. When the disconnected connection held the capture switch, the next one
    /// takes it over as it was.
    pub async fn disconnect(
        &self,
        tenant: &TenantId,
        provider: ConnectionKind,
        actor: &str,
    ) -> Result<usize, RuntimeError> {
        let connections = self.connections(tenant).await?;
        if !connections.iter().any(|c| c.kind == provider) {
            return Err(RuntimeError::NotConnected);
        }
        let holder = &connections[0];
        if holder.kind == provider
            && let Some(next) = connections.get(1)
            && next.capture_enabled != holder.capture_enabled
        {
            self.store()
                .set_capture_enabled(tenant, next.kind, holder.capture_enabled, actor)
                .await?;
        }
        // Stopped while the credentials that opened them are still stored.
        let links: Vec<LinkView> = self
            .store()
            .links(tenant)
            .await?
            .into_iter()
            .filter(|view| view.provider == provider)
            .collect();
        self.close_push_channels(tenant, &links).await?;
        Ok(self.store().disconnect(tenant, provider, actor).await?)
    }

    /// A Google connector for the tenant's key, and the admin address it reads the
    /// directory as.
    pub(crate) async fn connector(
        &self,
        tenant: &TenantId,
    ) -> Result<(GoogleConnector, String), RuntimeError> {
        let connection = self
            .store()
            .connection(tenant, ConnectionKind::Google)
            .await?
            .ok_or(RuntimeError::NotConnected)?;
        let key = self.google_key(tenant).await?;
        Ok((
            GoogleConnector::new(key, self.connector_options())?,
            connection.admin_email,
        ))
    }

    fn connector_options(&self) -> ConnectorOptions {
        ConnectorOptions {
            endpoints: self.config().endpoints.clone(),
            ..ConnectorOptions::default()
        }
    }
}

/// `links` without repeats, in the order first named.
fn distinct(links: &[LinkId]) -> Vec<LinkId> {
    let mut seen = std::collections::HashSet::new();
    links.iter().copied().filter(|l| seen.insert(*l)).collect()
}

fn setup_view(
    info: &ServiceAccountInfo,
    admin_email: String,
    capture_enabled: bool,
) -> GoogleSetup {
    let scopes: Vec<String> = scopes::ALL.iter().map(|s| (*s).to_owned()).collect();
    GoogleSetup {
        client_id: info.client_id.clone(),
        client_email: info.client_email.clone(),
        project_id: info.project_id.clone(),
        private_key_id: info.private_key_id.clone(),
        admin_email,
        scopes_csv: scopes.join(","),
        scopes,
        delegation_url: DOMAIN_WIDE_DELEGATION_URL.to_owned(),
        capture_enabled,
    }
}

/// *Test connection*: a token for the admin with every scope, then one page of the
/// directory read as the admin.
async fn check_connection(connector: &GoogleConnector, admin: &str) -> ConnectionCheck {
    if let Err(error) = connector.tokens().token(admin, &scopes::ALL).await {
        return failed_check(&error);
    }
    match connector.directory(admin).list_users_page(None).await {
        Err(error) => failed_check(&error),
        Ok(page) => ConnectionCheck {
            ok: true,
            status: None,
            message: format!(
                "Connected: every scope is delegated and {admin} can read the directory."
            ),
            hint: None,
            accounts_seen: Some(page.accounts.len()),
        },
    }
}

/// What the audit log keeps about a key: who it is, never the private key.
fn key_detail(info: &ServiceAccountInfo) -> serde_json::Value {
    serde_json::json!({
        "client_id": info.client_id,
        "client_email": info.client_email,
        "private_key_id": info.private_key_id,
    })
}

fn failed_check(error: &ProviderError) -> ConnectionCheck {
    let status = error.link_status();
    // The check reads the directory as the admin address: "Invalid email or User ID"
    // there means that address, not a member, is unknown.
    let cause = tributary_core::FailureCause::classify(
        tributary_core::HintProvider::Google,
        tributary_core::FailureSite::Directory,
        status,
        error.reason(),
        error.message(),
    );
    ConnectionCheck {
        ok: false,
        status: Some(status),
        message: error.message().to_owned(),
        hint: Some(cause.hint(tributary_core::Audience::Admin)),
        accounts_seen: None,
    }
}

pub(crate) fn audit(
    actor: &str,
    action: &str,
    subject: Option<&str>,
    detail: serde_json::Value,
) -> AuditEvent {
    AuditEvent {
        at_ms: clock_ms(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        subject: subject.map(str::to_owned),
        detail,
    }
}
