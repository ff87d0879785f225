//! A Microsoft 365 full sync in `tributary worker`, killed with SIGKILL at several points
//! and restarted: the store ends exactly equal to the emulator's ground truth, with no
//! activity or sighting twice (SQLite and PostgreSQL). The worker reaches the emulator
//! through the operator's Microsoft settings (`--microsoft-login-url`,
//! `--microsoft-graph-url`, `--microsoft-ca-file`), as a deployment reaches Microsoft.
//! The Google counterpart is in `workers.rs`.

mod common;

use common::{
    Location, MicrosoftEmulated, TestStore, assert_store_matches, kill_four_times, run_until_idle,
    worker_command,
};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use tributary_store::{LinkStatus, MasterKey, Store, TenantId};
use tributary_sync::{MicrosoftCredential, Runtime, RuntimeConfig};

const ADMIN: &str = "admin@test";
/// Graph gives receipt times in whole seconds.
const GRAPH_PRECISION_MS: i64 = 1000;

/// The emulator, the store and the tenant connected through the runtime (app
/// registration sealed, Rebuild, capture on), as an admin leaves it for the workers.
struct Setup {
    emulated: MicrosoftEmulated,
    store: Store,
    tenant: TenantId,
    key: MasterKey,
    location: Location,
    /// The emulator's CA, in a file as an operator would give it.
    ca_file: PathBuf,
    _files: tempfile::TempDir,
}

async fn setup(database: &TestStore) -> Setup {
    let emulated = MicrosoftEmulated::start(8, 150).await;
    let files = tempfile::tempdir().unwrap();
    let ca_file = files.path().join("ca.pem");
    std::fs::write(&ca_file, &emulated.running.ca_pem).unwrap();
    let key = MasterKey::generate();
    let store = database.store.clone();
    let runtime = Runtime::with_microsoft(
        store.clone(),
        key.clone(),
        RuntimeConfig::default(),
        emulated.settings(),
    );
    let tenant = TenantId::new("acme");
    store.create_tenant(&tenant, "Acme").await.unwrap();
    let app = &emulated.running.app;
    runtime
        .connect_microsoft(
            &tenant,
            &app.tenant_id,
            &app.client_id,
            MicrosoftCredential::Secret(emulated.secret()),
            ADMIN,
        )
        .await
        .unwrap();
    runtime.rebuild(&tenant, ADMIN).await.unwrap();
    runtime
        .set_capture_enabled(&tenant, true, ADMIN)
        .await
        .unwrap();
    Setup {
        emulated,
        store,
        tenant,
        key,
        location: Location::of(database),
        ca_file,
        _files: files,
    }
}

/// `tributary worker` pointed at the emulator. Small pages and two links at a time:
/// many commits, so every kill lands mid-sync.
fn worker(setup: &Setup, id: &str) -> Command {
    let base = &setup.emulated.running.base_url;
    let mut command = worker_command(&setup.location, &setup.key, id);
    command
        .args(["--microsoft-login-url", base])
        .args(["--microsoft-graph-url", &format!("{base}/v1.0")])
        .arg("--microsoft-ca-file")
        .arg(&setup.ca_file)
        .args(["--reference-now-ms", &setup.emulated.now_ms().to_string()])
        .args(["--sync-concurrency", "2", "--page-size", "10"]);
    command
}

async fn killed_workers_resume_to_exactly_the_truth(setup: Setup) {
    let total = i64::try_from(setup.emulated.truth().activities.len()).unwrap();
    kill_four_times(&setup.store, &setup.tenant, total, |id| worker(&setup, id)).await;
    let interrupted = setup
        .store
        .links(&setup.tenant)
        .await
        .unwrap()
        .into_iter()
        .filter(|l| l.status != LinkStatus::Idle)
        .count();
    assert!(interrupted > 0, "the kills left links mid-sync");

    run_until_idle(&setup.store, &setup.tenant, worker(&setup, "finisher")).await;
    for activity in setup.store.activities(&setup.tenant).await.unwrap() {
        let distinct: BTreeSet<_> = activity.sightings.iter().collect();
        assert_eq!(
            distinct.len(),
            activity.sightings.len(),
            "a sighting twice: {activity:?}"
        );
    }
    assert_store_matches(
        &setup.store,
        &setup.tenant,
        setup.emulated.truth(),
        GRAPH_PRECISION_MS,
    )
    .await;
}

#[tokio::test]
async fn microsoft_worker_killed_on_sqlite_resumes_exactly() {
    let database = TestStore::sqlite().await;
    let setup = setup(&database).await;
    killed_workers_resume_to_exactly_the_truth(setup).await;
    database.close().await;
}

#[tokio::test]
async fn microsoft_worker_killed_on_postgres_resumes_exactly() {
    let Some(database) = TestStore::postgres().await else {
        return;
    };
    let setup = setup(&database).await;
    killed_workers_resume_to_exactly_the_truth(setup).await;
    database.close().await;
}
