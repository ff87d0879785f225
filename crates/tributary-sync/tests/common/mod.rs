//! Test support: an emulated organization on loopback, a store on SQLite or PostgreSQL,
//! the tenant set up from the directory, an engine, the emulator's control API, and the
//! comparison of the store with the ground truth.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tributary_core::{CapturePolicy, FreeMailList};
use tributary_emulator::org::OrgConfig;
use tributary_emulator::server::{EmulatorConfig, OrgSource, RunningEmulator, start};
pub use tributary_emulator::testing::ControlClient as Control;
use tributary_emulator::testing::{Differences, json_text, truth_time_ms};
use tributary_emulator::truth::GroundTruth;
use tributary_google::{ConnectorOptions, GoogleConnector, GoogleEndpoints, ServiceAccountKey};
use tributary_store::{ConnectionKind, MasterKey, SecretBytes, Store, TenantId};
use tributary_sync::{
    DelegationOutcome, EngineConfig, Pacer, PacingConfig, SyncEngine, sync_users,
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
    let truth = emulated.truth();
    let mut diffs = Differences::default();
    compare_activities(store, tenant, truth, &mut diffs).await;
    compare_contacts(store, tenant, truth, &mut diffs).await;
    compare_relationships(store, tenant, truth, &mut diffs).await;
    diffs.assert_none("the store");
}

/// Compares activities. Times must be equal too: a message without a Date header is
/// timed by the earliest `internalDate` of its copies, whichever mailbox is synced first
/// (the store lowers a receipt time when an earlier copy arrives).
async fn compare_activities(
    store: &Store,
    tenant: &TenantId,
    truth: &GroundTruth,
    diffs: &mut Differences,
) {
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
            activity.time_ms,
            Some(truth_time_ms(&truth.time)),
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
    let contacts: BTreeMap<String, Option<String>> = store
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
    diffs.compare("contacts", "all", contacts, truth_contacts);
    let companies: BTreeMap<String, i64> = store
        .companies(tenant)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.domain, c.contacts))
        .collect();
    let truth_companies: BTreeMap<String, i64> = truth
        .companies
        .iter()
        .map(|c| (c.domain.clone(), i64::try_from(c.contacts).unwrap()))
        .collect();
    diffs.compare("companies", "all", companies, truth_companies);
}

/// (member, contact) → (sent, received, total, first ms, last ms)
type Relationships = BTreeMap<(String, String), (i64, i64, i64, i64, i64)>;

async fn compare_relationships(
    store: &Store,
    tenant: &TenantId,
    truth: &GroundTruth,
    diffs: &mut Differences,
) {
    let stored: Relationships = store
        .relationships(tenant)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                (r.member, r.contact),
                (r.sent, r.received, r.total, r.first_ms, r.last_ms),
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
                    truth_time_ms(&r.first),
                    truth_time_ms(&r.last),
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
