//! A calendar backfill in `tributary worker`, killed with SIGKILL several times while the
//! calendars are being listed and restarted (issue 15, "SIGKILL during a calendar
//! backfill resumes to the same state"): the store ends equal to the emulator's meeting
//! truth, captured and upcoming, each meeting once, and mail still equals its truth.
//! Google and Microsoft 365, SQLite and PostgreSQL. Small pages (`--page-size`, which
//! sizes calendar pages too) and one job at a time make many calendar commits, so each
//! kill lands mid-listing.

mod common;

use common::{
    AnyEmulated, Counted, Location, Provider, TestStore, assert_meetings_match,
    assert_store_matches, kill_when, run_until_calendars_idle, spawn, worker_command,
};
use std::path::PathBuf;
use std::process::Command;
use tributary_google::GoogleEndpoints;
use tributary_store::{LinkStatus, MasterKey, Store, TenantId};
use tributary_sync::{MicrosoftCredential, Runtime, RuntimeConfig};

const ADMIN: &str = "admin@test";

/// The emulator, the store and the tenant connected through the runtime (credentials
/// sealed, Rebuild, capture on), as an admin leaves it for the workers.
struct Setup {
    emulated: AnyEmulated,
    store: Store,
    tenant: TenantId,
    key: MasterKey,
    location: Location,
    /// The Microsoft emulator's CA, in a file as an operator would give it.
    ca_file: PathBuf,
    _files: tempfile::TempDir,
}

async fn setup(provider: Provider, database: &TestStore) -> Setup {
    // Few messages: the mail is done quickly and the calendars make most of the work.
    let emulated = provider.emulator(7, 5).await;
    let files = tempfile::tempdir().unwrap();
    let ca_file = files.path().join("ca.pem");
    let key = MasterKey::generate();
    let store = database.store.clone();
    let tenant = TenantId::new("acme");
    store.create_tenant(&tenant, "Acme").await.unwrap();
    let runtime = match &emulated {
        AnyEmulated::Google(google) => {
            let config = RuntimeConfig {
                endpoints: GoogleEndpoints::from_base_url(&google.running.base_url),
                ..RuntimeConfig::default()
            };
            let runtime = Runtime::new(store.clone(), key.clone(), config);
            runtime
                .connect_google(&tenant, &google.key_file_json(), &google.admin(), ADMIN)
                .await
                .unwrap();
            runtime
        }
        AnyEmulated::Microsoft(microsoft) => {
            std::fs::write(&ca_file, &microsoft.running.ca_pem).unwrap();
            let runtime = Runtime::with_microsoft(
                store.clone(),
                key.clone(),
                RuntimeConfig::default(),
                microsoft.settings(),
            );
            let app = &microsoft.running.app;
            runtime
                .connect_microsoft(
                    &tenant,
                    &app.tenant_id,
                    &app.client_id,
                    MicrosoftCredential::Secret(microsoft.secret()),
                    ADMIN,
                )
                .await
                .unwrap();
            runtime
        }
    };
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

/// `tributary worker` pointed at the emulator through the operator's settings, one job
/// at a time, two events per calendar page.
fn worker(setup: &Setup, id: &str) -> Command {
    let mut command = worker_command(&setup.location, &setup.key, id);
    match &setup.emulated {
        AnyEmulated::Google(google) => {
            command.args(["--google-api-url", &google.running.base_url]);
        }
        AnyEmulated::Microsoft(microsoft) => {
            let base = &microsoft.running.base_url;
            command
                .args(["--microsoft-login-url", base])
                .args(["--microsoft-graph-url", &format!("{base}/v1.0")])
                .arg("--microsoft-ca-file")
                .arg(&setup.ca_file);
        }
    }
    command
        .args(["--reference-now-ms", &setup.emulated.now_ms().to_string()])
        .args(["--sync-concurrency", "1", "--page-size", "2"]);
    command
}

async fn killed_calendar_backfills_resume_to_the_meeting_truth(
    provider: Provider,
    database: &TestStore,
) {
    let setup = setup(provider, database).await;
    let truth = setup.emulated.meetings_truth(setup.emulated.now_ms());
    let total = i64::try_from(truth.meetings.len()).unwrap();
    assert!(total >= 40, "enough meetings for four kills: {total}");

    // The later calendars mostly hold meetings already seen (invitations shared between
    // members), so the count grows slowly towards the end: the last kill comes early
    // enough to land before it.
    let mut seen = Vec::new();
    let mut mid_listing = 0;
    for (round, share) in [10, 30, 50, 70].into_iter().enumerate() {
        let mut running = spawn(worker(&setup, &format!("crash-{round}")));
        let at = total * share / 100;
        seen.push(
            kill_when(
                &setup.store,
                &setup.tenant,
                &mut running,
                Counted::Meetings,
                at,
            )
            .await,
        );
        if calendars_listing(&setup).await > 0 {
            mid_listing += 1;
        }
    }
    eprintln!("killed at {seen:?} of {total} meetings");
    assert!(
        seen.iter().all(|&n| n < total),
        "a kill came after the end: {seen:?}"
    );
    // A kill lands between two calendar pages unless a calendar had just finished.
    assert!(
        mid_listing >= 2,
        "only {mid_listing} kills left a calendar mid-listing"
    );

    run_until_calendars_idle(&setup.store, &setup.tenant, worker(&setup, "finisher")).await;
    assert_meetings_match(&setup.store, &setup.tenant, &truth).await;
    assert_store_matches(
        &setup.store,
        &setup.tenant,
        setup.emulated.truth(),
        setup.emulated.time_precision_ms(),
    )
    .await;
}

/// How many calendars are marked as being listed (a killed worker leaves its calendar
/// so until another worker takes the link over).
async fn calendars_listing(setup: &Setup) -> usize {
    let mut listing = 0;
    for link in setup.store.links(&setup.tenant).await.unwrap() {
        let calendar = setup
            .store
            .calendar_state(&setup.tenant, link.id)
            .await
            .unwrap();
        if calendar.status == LinkStatus::Syncing {
            listing += 1;
        }
    }
    listing
}

/// One test per provider and backend (PostgreSQL skipped when it is not there).
macro_rules! on_both_backends {
    ($($name:ident: $provider:expr),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let database = TestStore::sqlite().await;
                killed_calendar_backfills_resume_to_the_meeting_truth($provider, &database).await;
                database.close().await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(database) = TestStore::postgres().await else {
                    return;
                };
                killed_calendar_backfills_resume_to_the_meeting_truth($provider, &database).await;
                database.close().await;
            }
        }
    )*};
}

on_both_backends!(
    google_calendar_killed_resumes_to_the_truth: Provider::Google,
    microsoft_calendar_killed_resumes_to_the_truth: Provider::Microsoft,
);
