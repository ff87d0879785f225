//! Test support: an emulated organization on loopback, a store on SQLite or PostgreSQL,
//! the tenant set up from the directory, an engine, the emulator's control API, and the
//! comparison of the store with the ground truth.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tributary_core::{CapturePolicy, FreeMailList};
pub use tributary_emulator::kit::WindowConfig;
use tributary_emulator::microsoft::{MicrosoftConfig, RunningMicrosoft, TenantSource};
use tributary_emulator::org::OrgConfig;
use tributary_emulator::server::{EmulatorConfig, OrgSource, RunningEmulator, start};
pub use tributary_emulator::testing::ControlClient as Control;
use tributary_emulator::testing::{Differences, json_text, truth_time_ms};
use tributary_emulator::truth::GroundTruth;
use tributary_google::{ConnectorOptions, GoogleConnector, GoogleEndpoints, ServiceAccountKey};
use tributary_store::{ConnectionKind, MasterKey, SecretBytes, Store, TenantId};
use tributary_sync::{
    Connector, DelegationOutcome, EngineConfig, MicrosoftCredential, MicrosoftSettings, Pacer,
    PacingConfig, SyncEngine, microsoft_connector, sync_users,
};

/// A store on a fresh SQLite file or PostgreSQL database (the store's test support).
pub use tributary_store::testing::TestDatabase as TestStore;

/// An emulated organization of `users` users with about `messages_per_user` messages
/// each, with Google's default quotas unless `config` says otherwise.
pub async fn emulator(users: usize, messages_per_user: usize, config: EmulatorConfig) -> Emulated {
    let running = start(EmulatorConfig {
        organization: OrgSource::Generate(OrgConfig {
            users,
            messages_per_user,
            ..OrgConfig::default()
        }),
        ..config
    })
    .await
    .expect("the emulator starts");
    let control = Control::new(&running.info.control_url);
    Emulated { running, control }
}

pub struct Emulated {
    pub running: RunningEmulator,
    pub control: Control,
}

impl Emulated {
    pub fn truth(&self) -> &GroundTruth {
        self.running
            .truth
            .as_ref()
            .expect("a generated organization")
    }

    pub fn now_ms(&self) -> i64 {
        self.running.state.org().now_ms
    }

    pub fn key_file_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.running.key_file).expect("the key file serializes")
    }

    pub fn key_id(&self) -> String {
        self.running.key_file.private_key_id.clone()
    }

    pub fn admin(&self) -> String {
        self.running.info.admin_email.clone()
    }

    pub fn primary_domain(&self) -> String {
        self.running.info.domains[0].clone()
    }
}

/// Pacing for tests: Google's budgets, quick retries.
pub fn test_pacing() -> PacingConfig {
    PacingConfig {
        max_attempts: 8,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(200),
        ..PacingConfig::default()
    }
}

/// A tenant connected to the emulated organization: its connection saved (credentials
/// sealed), members and links from the directory, and an engine.
pub struct Tenant {
    pub id: TenantId,
    pub store: Store,
    pub delegation: DelegationOutcome,
    pub engine: SyncEngine,
}

pub async fn connect_tenant(emulated: &Emulated, store: &Store, pacing: PacingConfig) -> Tenant {
    let config = EngineConfig {
        pacing,
        ..EngineConfig::default()
    };
    connect_tenant_with(emulated, store, config).await
}

/// [`connect_tenant`] with the engine configured by `config` (its reference time is the
/// organization's).
pub async fn connect_tenant_with(
    emulated: &Emulated,
    store: &Store,
    config: EngineConfig,
) -> Tenant {
    let pacing = config.pacing.clone();
    let tenant = TenantId::new("acme");
    store.create_tenant(&tenant, "Acme").await.unwrap();
    let master_key = MasterKey::generate();
    store
        .save_connection(
            &tenant,
            ConnectionKind::Google,
            &emulated.admin(),
            &SecretBytes::new(emulated.key_file_json()),
            &serde_json::json!({}),
            &master_key,
        )
        .await
        .unwrap();
    // The engine reads the key back as a worker would.
    let credentials = store
        .connection_credentials(&tenant, ConnectionKind::Google, &master_key)
        .await
        .unwrap();
    let key = ServiceAccountKey::from_json(credentials.expose()).expect("the key loads");
    let connector = GoogleConnector::new(
        key,
        ConnectorOptions {
            endpoints: GoogleEndpoints::from_base_url(&emulated.running.base_url),
            ..ConnectorOptions::default()
        },
    )
    .expect("the connector builds");
    let connector = Connector::from(connector);
    let pacer = Pacer::new(pacing.clone());
    let delegation = sync_users(
        store,
        &tenant,
        &connector,
        &emulated.admin(),
        &emulated.running.info.domains,
        &pacer,
    )
    .await
    .expect("the directory syncs");
    let extractor = delegation.extractor(FreeMailList::default(), CapturePolicy::default());
    let engine = SyncEngine::new(
        store.clone(),
        connector,
        tenant.clone(),
        extractor,
        EngineConfig {
            reference_now_ms: Some(emulated.now_ms()),
            ..config
        },
    );
    Tenant {
        id: tenant,
        store: store.clone(),
        delegation,
        engine,
    }
}

/// Compares everything the store captured with the ground truth of `emulated`:
/// activities (keys, direction, time, subject, participants, mailboxes), contacts,
/// companies and relationships.
pub async fn assert_store_matches_truth(store: &Store, tenant: &TenantId, emulated: &Emulated) {
    assert_store_matches(store, tenant, emulated.truth(), 1).await;
}

/// [`assert_store_matches_truth`] against any provider's ground truth. Folders or
/// labels are not compared: a truth's containers are the provider's (Gmail's `INBOX`,
/// Graph's `inbox`), what the store holds is the same activities, contacts and
/// relationships. Times are compared to `precision_ms`: Graph gives a message's
/// receipt time in whole seconds, which times a message without a Date header.
pub async fn assert_store_matches(
    store: &Store,
    tenant: &TenantId,
    truth: &GroundTruth,
    precision_ms: i64,
) {
    let mut diffs = Differences::default();
    compare_activities(store, tenant, truth, precision_ms, &mut diffs).await;
    compare_contacts(store, tenant, truth, &mut diffs).await;
    compare_relationships(store, tenant, truth, precision_ms, &mut diffs).await;
    diffs.assert_none("the store");
}

/// Compares activities. Times must be equal too: a message without a Date header is
/// timed by the earliest `internalDate` of its copies, whichever mailbox is synced first
/// (the store lowers a receipt time when an earlier copy arrives).
async fn compare_activities(
    store: &Store,
    tenant: &TenantId,
    truth: &GroundTruth,
    precision_ms: i64,
    diffs: &mut Differences,
) {
    let at = |ms: i64| ms.div_euclid(precision_ms);
    let stored: BTreeMap<String, _> = store
        .activities(tenant)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.dedupe_key.clone(), a))
        .collect();
    let expected: BTreeMap<&str, _> = truth
        .activities
        .iter()
        .map(|a| (a.dedupe_key.as_str(), a))
        .collect();
    for key in expected.keys().filter(|k| !stored.contains_key(**k)) {
        diffs.add("activity missing", (*key).to_owned());
    }
    for key in stored.keys().filter(|k| !expected.contains_key(k.as_str())) {
        diffs.add("activity not in truth", key.clone());
    }
    for (key, activity) in &stored {
        let Some(truth) = expected.get(key.as_str()) else {
            continue;
        };
        diffs.compare(
            "direction",
            key,
            activity.direction.clone(),
            json_text(&truth.direction),
        );
        diffs.compare(
            "time",
            key,
            activity.time_ms.map(at),
            Some(at(truth_time_ms(&truth.time))),
        );
        diffs.compare(
            "subject",
            key,
            activity.subject.clone(),
            truth.subject.clone(),
        );
        let participants: BTreeSet<(String, String, String)> = activity
            .participants
            .iter()
            .map(|p| (p.address.clone(), p.role.clone(), p.kind.clone()))
            .collect();
        let truth_participants: BTreeSet<(String, String, String)> = truth
            .participants
            .iter()
            .map(|p| (p.address.clone(), json_text(&p.role), json_text(&p.kind)))
            .collect();
        diffs.compare("participants", key, participants, truth_participants);
        let mailboxes: BTreeSet<String> = activity
            .sightings
            .iter()
            .map(|(m, _, _)| m.clone())
            .collect();
        let truth_mailboxes: BTreeSet<String> =
            truth.mailboxes.iter().map(|m| m.to_lowercase()).collect();
        diffs.compare("mailboxes", key, mailboxes, truth_mailboxes);
    }
}

async fn compare_contacts(
    store: &Store,
    tenant: &TenantId,
    truth: &GroundTruth,
    diffs: &mut Differences,
) {
    let mut contacts: BTreeMap<String, Option<String>> = store
        .contacts(tenant)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.address, c.company))
        .collect();
    let truth_contacts: BTreeMap<String, Option<String>> = truth
        .contacts
        .iter()
        .map(|c| (c.address.clone(), c.company.clone()))
        .collect();
    // The mail truth knows mail's contacts; people met only in captured meetings are
    // contacts too (tests/meetings.rs compares meetings with their own truth).
    let met = meeting_only_contacts(store, tenant, &contacts, &truth_contacts).await;
    contacts.retain(|address, _| !met.contains_key(address));
    diffs.compare("contacts", "all", contacts, truth_contacts);
    let mut companies: BTreeMap<String, i64> = store
        .companies(tenant)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.domain, c.contacts))
        .collect();
    for company in met.values().flatten() {
        if let Some(count) = companies.get_mut(company) {
            *count -= 1;
        }
    }
    companies.retain(|_, count| *count > 0);
    let truth_companies: BTreeMap<String, i64> = truth
        .companies
        .iter()
        .map(|c| (c.domain.clone(), i64::try_from(c.contacts).unwrap()))
        .collect();
    diffs.compare("companies", "all", companies, truth_companies);
}

/// The stored contacts the mail truth lacks that took part in a captured meeting, with
/// their companies.
async fn meeting_only_contacts(
    store: &Store,
    tenant: &TenantId,
    stored: &BTreeMap<String, Option<String>>,
    mail: &BTreeMap<String, Option<String>>,
) -> BTreeMap<String, Option<String>> {
    let mut met = BTreeMap::new();
    for (address, company) in stored.iter().filter(|(a, _)| !mail.contains_key(*a)) {
        let of = tributary_store::MeetingsOf::Contact(address.clone());
        if !store.meetings_of(tenant, &of, 1).await.unwrap().is_empty() {
            met.insert(address.clone(), company.clone());
        }
    }
    met
}

/// (member, contact) → (sent, received, total, first ms, last ms)
type Relationships = BTreeMap<(String, String), (i64, i64, i64, i64, i64)>;

async fn compare_relationships(
    store: &Store,
    tenant: &TenantId,
    truth: &GroundTruth,
    precision_ms: i64,
    diffs: &mut Differences,
) {
    let at = |ms: i64| ms.div_euclid(precision_ms);
    let stored: Relationships = store
        .relationships(tenant)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                (r.member, r.contact),
                (r.sent, r.received, r.total, at(r.first_ms), at(r.last_ms)),
            )
        })
        .collect();
    let count = |n: usize| i64::try_from(n).unwrap();
    let expected: Relationships = truth
        .relationships
        .iter()
        .map(|r| {
            (
                (r.member.clone(), r.contact.clone()),
                (
                    count(r.sent),
                    count(r.received),
                    count(r.total),
                    at(truth_time_ms(&r.first)),
                    at(truth_time_ms(&r.last)),
                ),
            )
        })
        .collect();
    for (pair, counts) in &expected {
        let key = format!("{} ↔ {}", pair.0, pair.1);
        diffs.compare(
            "relationship",
            &key,
            stored.get(pair).copied(),
            Some(*counts),
        );
    }
    for pair in stored.keys().filter(|p| !expected.contains_key(*p)) {
        diffs.add(
            "relationship not in truth",
            format!("{} ↔ {}", pair.0, pair.1),
        );
    }
}

/// The providers the engine is proven against, each with its emulator. Tests that hold
/// for every provider are written once, as `async fn(Provider, Store)`, and listed in
/// [`on_every_provider!`]: a new provider adds a variant here and its arms below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Google,
    Microsoft,
}

/// The Microsoft 365 emulator in-process over HTTPS with its own CA. Its state is
/// changed in-process (this module is shared with crates that have no HTTP client).
pub struct MicrosoftEmulated {
    pub running: RunningMicrosoft,
}

impl MicrosoftEmulated {
    pub async fn start(users: usize, messages_per_user: usize) -> Self {
        Self::start_with(users, messages_per_user, WindowConfig::default()).await
    }

    /// [`MicrosoftEmulated::start`] with Outlook's per-mailbox limits as `throttling`.
    pub async fn start_with(
        users: usize,
        messages_per_user: usize,
        throttling: WindowConfig,
    ) -> Self {
        let running = tributary_emulator::microsoft::start(MicrosoftConfig {
            organization: TenantSource::Generate(OrgConfig {
                users,
                messages_per_user,
                ..OrgConfig::default()
            }),
            throttling,
            ..MicrosoftConfig::default()
        })
        .await
        .expect("the Microsoft emulator starts");
        MicrosoftEmulated { running }
    }

    pub fn truth(&self) -> &GroundTruth {
        self.running
            .truth
            .as_ref()
            .expect("a generated organization")
    }

    pub fn now_ms(&self) -> i64 {
        self.running.state.tenant().now_ms
    }

    /// The app's client secret, as the admin would paste it.
    pub fn secret(&self) -> String {
        self.running.app.client_secret.clone()
    }

    /// Where the emulator is, as the operator configures it.
    pub fn settings(&self) -> MicrosoftSettings {
        MicrosoftSettings::at(&self.running.base_url, vec![self.running.ca_pem.clone()])
    }

    /// A connector with `secret`, as a worker builds it from the sealed credential.
    pub fn connector(&self, secret: &str) -> Connector {
        let app = &self.running.app;
        microsoft_connector(
            &app.tenant_id,
            &app.client_id,
            MicrosoftCredential::Secret(secret.to_owned()),
            &self.settings(),
        )
        .expect("the connector is set up")
    }

    /// Forgets `mailbox`'s delta state: every link issued so far answers 410.
    pub fn expire_delta(&self, mailbox: &str) {
        let mut tenant = self.running.state.tenant_mut();
        let id = tenant
            .user_by_address(mailbox)
            .map(|user| user.id.clone())
            .expect("a user of the tenant");
        tenant
            .mailboxes
            .get_mut(&id)
            .expect("the user's mailbox")
            .expire_sync_state();
    }

    /// The admin removes the app's consent (its service principal) and tokens already
    /// minted expire.
    pub fn revoke_consent(&self) {
        let mut identity = self.running.state.identity_mut();
        identity.principals.remove(&self.running.app.client_id);
        identity.expire_tokens();
    }

    /// Turns `address`'s account on or off.
    pub fn set_account_enabled(&self, address: &str, enabled: bool) {
        let mut tenant = self.running.state.tenant_mut();
        let user = tenant
            .users
            .iter_mut()
            .find(|user| {
                user.mail
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case(address))
            })
            .expect("a user with that address");
        user.account_enabled = enabled;
    }
}

/// An emulated organization of some provider.
pub enum AnyEmulated {
    Google(Emulated),
    Microsoft(MicrosoftEmulated),
}

impl AnyEmulated {
    pub fn truth(&self) -> &GroundTruth {
        match self {
            AnyEmulated::Google(emulated) => emulated.truth(),
            AnyEmulated::Microsoft(emulated) => emulated.truth(),
        }
    }

    /// How precisely the provider times a message (Graph: whole seconds).
    pub fn time_precision_ms(&self) -> i64 {
        match self {
            AnyEmulated::Google(_) => 1,
            AnyEmulated::Microsoft(_) => 1000,
        }
    }

    fn google(&self) -> &Emulated {
        match self {
            AnyEmulated::Google(emulated) => emulated,
            AnyEmulated::Microsoft(_) => panic!("not a Google organization"),
        }
    }

    fn microsoft(&self) -> &MicrosoftEmulated {
        match self {
            AnyEmulated::Microsoft(emulated) => emulated,
            AnyEmulated::Google(_) => panic!("not a Microsoft organization"),
        }
    }
}

/// A tenant connected to the emulated Microsoft 365 organization with the app's client
/// secret (sealed, read back as a worker would); members and links from its users.
pub async fn connect_microsoft_tenant(
    emulated: &MicrosoftEmulated,
    store: &Store,
    config: EngineConfig,
) -> Tenant {
    let pacing = config.pacing.clone();
    let tenant = TenantId::new("acme");
    store.create_tenant(&tenant, "Acme").await.unwrap();
    let master_key = MasterKey::generate();
    let admin = emulated.running.info.admin_email.clone();
    store
        .save_connection(
            &tenant,
            ConnectionKind::Microsoft,
            &admin,
            &SecretBytes::new(emulated.secret().into_bytes()),
            &serde_json::json!({}),
            &master_key,
        )
        .await
        .unwrap();
    let credentials = store
        .connection_credentials(&tenant, ConnectionKind::Microsoft, &master_key)
        .await
        .unwrap();
    let secret = String::from_utf8(credentials.expose().to_vec()).expect("a UTF-8 secret");
    let connector = emulated.connector(&secret);
    let pacer = Pacer::new(pacing);
    let delegation = sync_users(
        store,
        &tenant,
        &connector,
        &admin,
        &emulated.running.info.domains,
        &pacer,
    )
    .await
    .expect("the directory syncs");
    for link in &delegation.links {
        store
            .set_link_provider(&tenant, link.link, ConnectionKind::Microsoft)
            .await
            .unwrap();
    }
    let extractor = delegation.extractor(FreeMailList::default(), CapturePolicy::default());
    let engine = SyncEngine::new(
        store.clone(),
        connector,
        tenant.clone(),
        extractor,
        EngineConfig {
            reference_now_ms: Some(emulated.now_ms()),
            ..config
        },
    );
    Tenant {
        id: tenant,
        store: store.clone(),
        delegation,
        engine,
    }
}

/// What an admin should see on every link once the provider's access is revoked.
pub struct Revoked {
    pub status: tributary_core::LinkErrorStatus,
    /// Part of the provider's own message.
    pub message: &'static str,
}

impl Provider {
    /// How connections and links record the provider.
    pub fn kind(self) -> ConnectionKind {
        match self {
            Provider::Google => ConnectionKind::Google,
            Provider::Microsoft => ConnectionKind::Microsoft,
        }
    }

    /// An emulated organization of this provider (the default quotas).
    pub async fn emulator(self, users: usize, messages_per_user: usize) -> AnyEmulated {
        match self {
            Provider::Google => AnyEmulated::Google(
                emulator(users, messages_per_user, EmulatorConfig::default()).await,
            ),
            Provider::Microsoft => {
                AnyEmulated::Microsoft(MicrosoftEmulated::start(users, messages_per_user).await)
            }
        }
    }

    /// The tenant connected to `emulated`: members and links from its directory, and
    /// an engine configured by `config`.
    pub async fn connect(
        self,
        emulated: &AnyEmulated,
        store: &Store,
        config: EngineConfig,
    ) -> Tenant {
        match self {
            Provider::Google => connect_tenant_with(emulated.google(), store, config).await,
            Provider::Microsoft => {
                connect_microsoft_tenant(emulated.microsoft(), store, config).await
            }
        }
    }

    /// Makes the provider forget `mailbox`'s incremental cursor, as it does when the
    /// cursor is too old (Gmail: the history id is no longer available). The emulated
    /// Gmail forgets every history id up to the mailbox's current one, so the resync's
    /// own cursor is gone too until new mail arrives. The emulated Graph forgets the
    /// mailbox's delta state: every delta link issued so far answers 410.
    pub async fn expire_cursor(self, emulated: &AnyEmulated, mailbox: &str) {
        match self {
            Provider::Microsoft => emulated.microsoft().expire_delta(mailbox),
            Provider::Google => {
                emulated
                    .google()
                    .control
                    .post(
                        &format!("/users/{mailbox}/history/expire"),
                        serde_json::json!({}),
                    )
                    .await;
            }
        }
    }

    /// The admin takes back the access the tenant was granted (Google: the
    /// domain-wide delegation of every scope); answers what each link must then show.
    pub async fn revoke_access(self, emulated: &AnyEmulated) -> Revoked {
        match self {
            Provider::Microsoft => {
                // The admin removes the app's consent (its service principal); tokens
                // already minted stay good until they expire.
                emulated.microsoft().revoke_consent();
                Revoked {
                    status: tributary_core::LinkErrorStatus::AuthenticationError,
                    message: "AADSTS7000229",
                }
            }
            Provider::Google => {
                let emulated = emulated.google();
                emulated
                    .control
                    .put("/delegation", serde_json::json!({"scopes": []}))
                    .await;
                // Tokens already minted stay good until they expire, as Google's do:
                // the revocation shows once the engine needs a new one.
                emulated
                    .control
                    .post("/tokens/expire", serde_json::json!({}))
                    .await;
                Revoked {
                    status: tributary_core::LinkErrorStatus::Unauthorized,
                    message: "Client is unauthorized to retrieve access tokens",
                }
            }
        }
    }

    /// The cursor stream holding a full sync's progress, which a crashed full sync
    /// resumes from.
    pub fn progress_stream(self) -> &'static str {
        match self {
            Provider::Google => tributary_sync::FULL_SYNC_STREAM,
            Provider::Microsoft => tributary_sync::providers::graph::FULL_SYNC_STREAM,
        }
    }
}

/// Defines, for each named `async fn(Provider, Store)`, a module with one test per
/// provider and backend (`google_on_sqlite`, `google_on_postgres`, …), in the style of
/// the store's `on_both_backends!`.
#[macro_export]
macro_rules! on_every_provider {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use $crate::common::Provider;

            #[tokio::test]
            async fn google_on_sqlite() {
                $crate::common::run_on_sqlite(Provider::Google, super::$name).await;
            }

            #[tokio::test]
            async fn google_on_postgres() {
                $crate::common::run_on_postgres(Provider::Google, super::$name).await;
            }

            #[tokio::test]
            async fn microsoft_on_sqlite() {
                $crate::common::run_on_sqlite(Provider::Microsoft, super::$name).await;
            }

            #[tokio::test]
            async fn microsoft_on_postgres() {
                $crate::common::run_on_postgres(Provider::Microsoft, super::$name).await;
            }
        }
    )*};
}

pub async fn run_on_sqlite<F, Fut>(provider: Provider, body: F)
where
    F: FnOnce(Provider, Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let database = TestStore::sqlite().await;
    body(provider, database.store.clone()).await;
    database.close().await;
}

/// Runs `body` on a uniquely named database (skipped without PostgreSQL), dropped
/// afterwards even when `body` panics.
pub async fn run_on_postgres<F, Fut>(provider: Provider, body: F)
where
    F: FnOnce(Provider, Store) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Some(database) = TestStore::postgres().await else {
        return;
    };
    let outcome = tokio::spawn(body(provider, database.store.clone())).await;
    database.close().await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

// Meetings (issue 15): the emulated calendars, their ground truth, and the store's
// meetings compared with it. Both providers serve one meeting store per emulator, changed
// in-process here as the control API would change it.

pub use tributary_emulator::org::meetings::SharedMeetings;
pub use tributary_emulator::org::meetings_truth::{MeetingsTruth, TruthMeeting};

impl AnyEmulated {
    /// The organization's "now", which its calendars were generated around.
    pub fn now_ms(&self) -> i64 {
        match self {
            AnyEmulated::Google(emulated) => emulated.now_ms(),
            AnyEmulated::Microsoft(emulated) => emulated.now_ms(),
        }
    }

    /// The emulated calendars.
    pub fn calendars(&self) -> &SharedMeetings {
        match self {
            AnyEmulated::Google(emulated) => &emulated.running.state.calendars,
            AnyEmulated::Microsoft(emulated) => &emulated.running.state.calendars,
        }
    }

    /// The meetings a correct capture holds at `now_ms` (the default meeting policy),
    /// computed from the calendars as they are now.
    pub fn meetings_truth(&self, now_ms: i64) -> MeetingsTruth {
        use tributary_emulator::org::meetings_truth::MeetingPolicy;
        MeetingsTruth::compute(&self.calendars().read(), MeetingPolicy::default_at(now_ms))
    }
}

impl Provider {
    /// Expires every calendar cursor the provider gave (Google sync tokens, Graph delta
    /// links): the next incremental call answers 410.
    pub fn expire_calendar_cursors(self, emulated: &AnyEmulated) {
        emulated.calendars().write().expire_tokens(None);
    }

    /// The admin takes back the calendar permission alone (Google: the calendar scope
    /// left out of the delegation; Microsoft: `Calendars.Read` removed); answers what the
    /// calendar must then show. Mail keeps its permission.
    pub async fn revoke_calendar(self, emulated: &AnyEmulated) -> Revoked {
        match self {
            Provider::Google => {
                let emulated = emulated.google();
                emulated
                    .control
                    .put(
                        "/delegation",
                        serde_json::json!({"scopes": [
                            tributary_google::scopes::GMAIL_READONLY,
                            tributary_google::scopes::DIRECTORY_USER_READONLY,
                        ]}),
                    )
                    .await;
                emulated
                    .control
                    .post("/tokens/expire", serde_json::json!({}))
                    .await;
                Revoked {
                    status: tributary_core::LinkErrorStatus::Unauthorized,
                    message: "Client is unauthorized to retrieve access tokens",
                }
            }
            Provider::Microsoft => {
                let emulated = emulated.microsoft();
                let mut identity = emulated.running.state.identity_mut();
                let roles = identity
                    .principals
                    .get_mut(&emulated.running.app.client_id)
                    .expect("the app has consent");
                for role in [
                    "Calendars.Read",
                    "Calendars.ReadWrite",
                    "Calendars.ReadBasic.All",
                ] {
                    roles.remove(role);
                }
                // Tokens already minted keep their roles until they expire.
                identity.expire_tokens();
                Revoked {
                    status: tributary_core::LinkErrorStatus::Unauthorized,
                    message: "Access is denied",
                }
            }
        }
    }
}

/// A meeting as compared with the truth: identity, time, title, direction, size,
/// participants with their answers, calendars and the members who took part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComparedMeeting {
    pub start_ms: i64,
    pub end_ms: i64,
    pub all_day: bool,
    pub title: Option<String>,
    pub private: bool,
    pub direction: String,
    pub large: bool,
    /// (address, organizer, answer), sorted.
    pub participants: Vec<(String, bool, String)>,
    pub calendars: Vec<String>,
    pub took_part: Vec<String>,
}

/// The store's key of a truth meeting: `ical:<original start ms>:<iCalUID>`.
pub fn truth_meeting_key(meeting: &TruthMeeting) -> String {
    format!(
        "ical:{}:{}",
        truth_time_ms(&meeting.original_start),
        meeting.ical_uid
    )
}

fn compared_truth(meeting: &TruthMeeting) -> ComparedMeeting {
    let mut participants: Vec<(String, bool, String)> = meeting
        .participants
        .iter()
        .map(|p| {
            let answer = serde_json::to_value(p.response).expect("an answer serializes");
            let answer = match answer.as_str() {
                Some("needsAction") => "needs_action".to_owned(),
                other => other.unwrap_or_default().to_owned(),
            };
            (p.email.to_lowercase(), p.organizer, answer)
        })
        .collect();
    participants.sort();
    let mut took_part: Vec<String> = meeting.members.iter().map(|m| m.to_lowercase()).collect();
    took_part.sort();
    let mut calendars: Vec<String> = meeting.calendars.iter().map(|c| c.to_lowercase()).collect();
    calendars.sort();
    ComparedMeeting {
        start_ms: truth_time_ms(&meeting.start),
        end_ms: truth_time_ms(&meeting.end),
        all_day: meeting.all_day,
        title: meeting.title.clone(),
        private: meeting.private,
        direction: meeting.direction.to_owned(),
        large: meeting.large,
        participants,
        calendars,
        took_part,
    }
}

fn compared_view(view: &tributary_store::MeetingView) -> ComparedMeeting {
    let mut participants: Vec<(String, bool, String)> = view
        .participants
        .iter()
        .map(|p| {
            (
                p.address.clone(),
                p.organizer,
                p.response.as_str().to_owned(),
            )
        })
        .collect();
    participants.sort();
    let mut took_part: Vec<String> = view
        .participants
        .iter()
        .filter(|p| p.took_part)
        .map(|p| p.address.clone())
        .collect();
    took_part.sort();
    ComparedMeeting {
        start_ms: view.start_ms,
        end_ms: view.end_ms,
        all_day: view.all_day,
        title: view.title.clone(),
        private: view.private,
        direction: view.direction.clone(),
        large: view.large,
        participants,
        calendars: view.calendars.clone(),
        took_part,
    }
}

/// Whose meetings to read so that every truth meeting is found: each of its external
/// participants (every truth meeting has one) and each member who took part.
async fn meeting_owners(
    store: &Store,
    tenant: &TenantId,
    meetings: &[TruthMeeting],
) -> Vec<tributary_store::MeetingsOf> {
    use tributary_store::MeetingsOf;
    let mut contacts = BTreeSet::new();
    let mut members = BTreeSet::new();
    for meeting in meetings {
        for participant in &meeting.participants {
            if !participant.internal {
                contacts.insert(participant.email.to_lowercase());
            }
        }
        members.extend(meeting.members.iter().map(|m| m.to_lowercase()));
    }
    let mut owners: Vec<MeetingsOf> = contacts.into_iter().map(MeetingsOf::Contact).collect();
    for address in members {
        if let Some(member) = store.member_by_address(tenant, &address).await.unwrap() {
            owners.push(MeetingsOf::Member(member.id));
        }
    }
    owners
}

/// The store's captured meetings and upcoming meetings (at `truth.policy.now_ms`) equal
/// the truth's, field by field; the number of captured meetings too, so that none is
/// captured that the truth does not hold.
pub async fn assert_meetings_match(store: &Store, tenant: &TenantId, truth: &MeetingsTruth) {
    let now_ms = truth.policy.now_ms;
    let mut diffs = Differences::default();
    let mut captured = BTreeMap::new();
    for of in meeting_owners(store, tenant, &truth.meetings).await {
        for view in store.meetings_of(tenant, &of, 500).await.unwrap() {
            captured.insert(view.key.clone(), compared_view(&view));
        }
    }
    compare_meetings("captured meeting", &truth.meetings, &captured, &mut diffs);
    let count = store.count_meetings(tenant).await.unwrap();
    diffs.compare(
        "number of captured meetings",
        "tenant",
        count,
        i64::try_from(truth.meetings.len()).unwrap(),
    );
    let mut upcoming = BTreeMap::new();
    for of in meeting_owners(store, tenant, &truth.upcoming).await {
        for view in store
            .upcoming_meetings_of(tenant, &of, now_ms, 500)
            .await
            .unwrap()
        {
            upcoming.insert(view.key.clone(), compared_view(&view));
        }
    }
    compare_meetings("upcoming meeting", &truth.upcoming, &upcoming, &mut diffs);
    diffs.assert_none("the store's meetings");
}

fn compare_meetings(
    kind: &'static str,
    truth: &[TruthMeeting],
    stored: &BTreeMap<String, ComparedMeeting>,
    diffs: &mut Differences,
) {
    let expected: BTreeMap<String, ComparedMeeting> = truth
        .iter()
        .map(|m| (truth_meeting_key(m), compared_truth(m)))
        .collect();
    for (key, want) in &expected {
        match stored.get(key) {
            Some(got) => diffs.compare(kind, key, got, want),
            None => diffs.add(kind, format!("{key}: missing ({want:?})")),
        }
    }
    for key in stored.keys().filter(|k| !expected.contains_key(*k)) {
        diffs.add(kind, format!("{key}: not in the truth"));
    }
}
