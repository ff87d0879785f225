//! `tributary demo`: the whole mission on one machine. It starts the emulator of the
//! chosen provider (`--provider google|microsoft|mixed`: Google Workspace, Microsoft 365,
//! or both serving one organization mid-migration) with a generated organization, a
//! server on embedded SQLite, creates the tenant and a console login, connects each
//! provider as its admin would (Google: the key; Microsoft: the app registration, admin
//! consent, *Test connection*), enables capture, runs User Delegation Sync, starts every
//! matched member and shows the capture as it happens; then a summary (mail, meetings
//! captured and upcoming) and whether the capture equals the organization's ground
//! truth, its mail and its meetings; then it keeps serving the console while new mail
//! arrives every few seconds. Push is on (docs/push.md): the emulators deliver change
//! notifications to the console's address, so new mail is captured within a second or
//! two; the summary says which mailboxes are on push.

pub(crate) mod emulators;
pub(crate) mod live;
pub(crate) mod progress;
mod summary;
pub(crate) mod verify;

use super::signal::{async_runtime, stop_signal};
use anyhow::Context;
use clap::Args;
use emulators::{DemoProvider, Emulators};
use rand::Rng;
use rand::distributions::Alphanumeric;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tributary_core::{CalendarSync, MeetingSettings};
use tributary_emulator::org::OrgConfig;
use tributary_emulator::org::meetings_truth::MeetingPolicy;
use tributary_server::{AppState, ServerConfig};
use tributary_store::{LinkStatus, MasterKey, MemberRole, Store, TenantId};
use tributary_sync::push::PushSettings;
use tributary_sync::{Runtime, Worker};

/// The actor the demo's own setup steps are audited as.
const DEMO_ACTOR: &str = "tributary demo";

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where the organization's mailboxes are: Google Workspace, Microsoft 365, or
    /// mixed (a company mid-migration: every other mailbox at Microsoft 365, the rest
    /// at Google, the tenant connected to both).
    #[arg(long, value_enum, default_value_t = DemoProvider::Google)]
    pub provider: DemoProvider,
    /// Users in the generated organization (suspended, archived and mailbox-less ones
    /// included; at least 3).
    #[arg(long, default_value_t = 25)]
    pub users: usize,
    /// About this many messages per user mailbox.
    #[arg(long, default_value_t = 400)]
    pub messages_per_user: usize,
    /// Seed of the generated organization (same seed, same organization).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Address the console listens on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the database, master key and emulator files go (default: a fresh temporary
    /// directory, removed on exit).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Exit once every mailbox has synced: status 0 when the capture equals the ground
    /// truth, 1 when it does not.
    #[arg(long)]
    pub exit_when_synced: bool,
    /// Print the summary as JSON on stdout (progress stays on stderr).
    #[arg(long)]
    pub json: bool,
    /// Seconds between new messages delivered to the organization while serving (0:
    /// none).
    #[arg(long, default_value_t = 5)]
    pub deliver_every: u64,
    /// Mailboxes synced at once.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
}

/// The data directory: the given one, or a temporary one removed on exit.
enum DataDir {
    Given(PathBuf),
    Temporary(tempfile::TempDir),
}

impl DataDir {
    fn new(given: Option<PathBuf>) -> anyhow::Result<Self> {
        match given {
            Some(path) => {
                tributary_store::create_private_dir(&path)
                    .with_context(|| format!("cannot create --data-dir {}", path.display()))?;
                Ok(DataDir::Given(path))
            }
            None => Ok(DataDir::Temporary(
                tempfile::Builder::new()
                    .prefix("tributary-demo-")
                    .tempdir()
                    .context("cannot create a temporary data directory")?,
            )),
        }
    }

    fn path(&self) -> &Path {
        match self {
            DataDir::Given(path) => path,
            DataDir::Temporary(dir) => dir.path(),
        }
    }
}

/// A console sign-in the demo created.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Login {
    pub email: String,
    pub password: String,
    pub role: &'static str,
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.users >= 3, "--users must be at least 3");
    anyhow::ensure!(args.workers >= 1, "--workers must be at least 1");
    async_runtime()?.block_on(demo(args))
}

async fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let data = DataDir::new(args.data_dir.clone())?;
    let progress = progress::Progress::new(args.json);

    progress.step(&format!(
        "Generating the organization and starting the {} emulator{}",
        args.provider.name(),
        if args.provider == DemoProvider::Mixed {
            "s"
        } else {
            ""
        }
    ));
    let emulators = Emulators::start(
        args.provider,
        organization(&args, data.path())?,
        data.path(),
    )
    .await?;
    let truth = emulators.truth.clone();

    // Bound first: its address is the public URL the providers push to.
    let listener = TcpListener::bind(args.listen).await.with_context(|| {
        format!(
            "cannot listen on {}: pass another address with --listen (port 0 picks a free one)",
            args.listen
        )
    })?;
    let address = listener.local_addr()?;
    let console_url = format!("http://{address}");
    let push = PushSettings::new(&push_url(address))?;

    let store = Store::open_in_data_dir(data.path())
        .await
        .with_context(|| format!("cannot open the database in {}", data.path().display()))?;
    let key = MasterKey::load_or_create(data.path()).context("cannot create the master key")?;
    let runtime = emulators.runtime(store.clone(), key, Some(push));
    let tenant = TenantId::new("demo");
    store
        .create_tenant(&tenant, "Larkspur Trading (demo)")
        .await?;
    let logins = create_logins(&store, &tenant, &emulators.admin_email, &truth).await?;
    emulators
        .connect(&runtime, &tenant, DEMO_ACTOR, &progress)
        .await?;

    progress.step("Reading the directory (User Delegation Sync)");
    let report = runtime.rebuild(&tenant, DEMO_ACTOR).await?;
    progress.note(&format!(
        "{} directory accounts: {} matched, {} not synced ({})",
        report.directory_accounts,
        report.matched.len(),
        report.unmatched.len(),
        report
            .unmatched
            .iter()
            .map(|u| format!("{} {}", u.email, u.describe()))
            .collect::<Vec<_>>()
            .join("; ")
    ));

    let (stop_tx, stop_rx) = watch::channel(false);
    let server = spawn_server(
        listener,
        &runtime,
        ServerConfig {
            public_url: console_url.clone(),
            push: Some(emulators.push_config()),
            ..ServerConfig::default()
        },
        stop_rx.clone(),
    );

    progress.step("Enabling capture and syncing every matched mailbox");
    runtime
        .set_capture_enabled(&tenant, true, DEMO_ACTOR)
        .await?;
    let workers = spawn_workers(&runtime, args.workers, &stop_rx);
    let meetings = runtime.policy(&tenant).await?.meetings;
    let calendars = captures_every_calendar(&meetings);
    let synced = progress
        .watch_sync(&store, &tenant, truth.activities.len(), calendars)
        .await?;
    // A link's channels are opened after its calendar, at the end of its job.
    wait_for_push_modes(&store, &tenant).await?;

    // Meetings are judged as of now: one that ended since its calendar was listed is
    // captured now, as the next calendar run would.
    let now_ms = tributary_emulator::server::app::now_ms();
    store.promote_ended_meetings(&tenant, now_ms).await?;
    let meetings_truth =
        calendars.then(|| emulators.meetings_truth(meeting_truth_policy(&meetings, now_ms)));
    let check =
        verify::check_with_meetings(&store, &tenant, &truth, meetings_truth.as_ref()).await?;
    let summary = summary::Summary::collect(summary::Inputs {
        args: &args,
        store: &store,
        tenant: &tenant,
        usage: emulators.usage(),
        check,
        now_ms,
        sync_seconds: synced.as_secs_f64(),
        total_seconds: started.elapsed().as_secs_f64(),
        console_url: &console_url,
        logins: &logins,
    })
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        summary.print();
    }
    let code = if summary.ground_truth.equal {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };

    if !args.exit_when_synced {
        eprintln!();
        eprintln!("Console: {console_url}  (stop with Ctrl-C)");
        for login in &logins {
            eprintln!(
                "  {:6} {}  password {}",
                login.role, login.email, login.password
            );
        }
        if let DataDir::Given(path) = &data {
            eprintln!("Data kept in {}", path.display());
        }
        let watch = live::CaptureWatch {
            store: store.clone(),
            tenant: tenant.clone(),
        };
        let delivering = live::spawn_delivery(
            emulators.live_mail(),
            &truth,
            args.deliver_every,
            watch,
            &stop_rx,
        );
        stop_signal().await?;
        eprintln!("stopping");
        drop(delivering);
    }
    let _ = stop_tx.send(true);
    server.await??;
    for worker in workers {
        worker.await??;
    }
    store.close().await;
    emulators.shutdown().await?;
    Ok(code)
}

/// How long the summary waits for every synced mailbox's push mode to be recorded.
const PUSH_MODE_PATIENCE: Duration = Duration::from_secs(10);

/// Waits (a little) until every idle link's sync has recorded whether it is on push.
async fn wait_for_push_modes(store: &Store, tenant: &TenantId) -> anyhow::Result<()> {
    let started = Instant::now();
    while started.elapsed() < PUSH_MODE_PATIENCE {
        let modes = store.link_push_modes(tenant).await?;
        let links = store.links(tenant).await?;
        let recorded = links
            .iter()
            .filter(|l| l.status == LinkStatus::Idle)
            .all(|l| modes.iter().any(|m| m.link == l.id));
        if recorded {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Whether the tenant captures every member's calendar: what the emulator's meeting
/// truth states.
fn captures_every_calendar(settings: &MeetingSettings) -> bool {
    settings.capture && settings.calendar_sync == CalendarSync::Everyone
}

/// The emulator's meeting truth policy at `now_ms` with the tenant's meeting settings.
fn meeting_truth_policy(settings: &MeetingSettings, now_ms: i64) -> MeetingPolicy {
    MeetingPolicy {
        now_ms,
        backfill_days: i64::from(settings.backfill_days),
        horizon_days: i64::from(settings.horizon_days),
        large_meeting_attendees: usize::try_from(settings.large_meeting_attendees)
            .unwrap_or(usize::MAX),
    }
}

/// The file in a kept data directory naming the organization the demo generated, so
/// that running it again on that directory generates the same one (the same mail, at
/// the same times) and finds its capture already there.
const ORGANIZATION_FILE: &str = "demo-organization.json";

/// What generates a demo organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct OrganizationRecord {
    /// Demos recorded before providers were chosen ran at Google.
    #[serde(default)]
    provider: DemoProvider,
    seed: u64,
    users: usize,
    messages_per_user: usize,
    now_ms: i64,
}

/// This run's organization: the one recorded in `data` when the flags match it, else a
/// new one as of now (recorded). A directory holding another organization's capture is
/// refused: its capture would never equal this organization's ground truth.
fn organization(args: &DemoArgs, data: &Path) -> anyhow::Result<OrgConfig> {
    let record = organization_record(args, data)?;
    Ok(OrgConfig {
        seed: record.seed,
        users: record.users,
        messages_per_user: record.messages_per_user,
        now_ms: record.now_ms,
    })
}

fn organization_record(args: &DemoArgs, data: &Path) -> anyhow::Result<OrganizationRecord> {
    let path = data.join(ORGANIZATION_FILE);
    let fresh = OrganizationRecord {
        provider: args.provider,
        seed: args.seed,
        users: args.users,
        messages_per_user: args.messages_per_user,
        // New mail delivered while serving arrives "now": the organization's now must
        // be the clock's, which the engine's backfill window uses too.
        now_ms: tributary_emulator::server::app::now_ms(),
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let recorded: OrganizationRecord = serde_json::from_slice(&bytes)
                .with_context(|| format!("cannot read {}", path.display()))?;
            anyhow::ensure!(
                (
                    recorded.provider,
                    recorded.seed,
                    recorded.users,
                    recorded.messages_per_user
                ) == (
                    fresh.provider,
                    fresh.seed,
                    fresh.users,
                    fresh.messages_per_user
                ),
                "{} holds the demo of another organization (--provider {} --seed {} --users {} --messages-per-user {}): \
                 run it with those flags, or pass another --data-dir",
                data.display(),
                recorded.provider.flag(),
                recorded.seed,
                recorded.users,
                recorded.messages_per_user
            );
            Ok(recorded)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            std::fs::write(&path, serde_json::to_vec_pretty(&fresh)?)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(fresh)
        }
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// An admin login (the organization's admin) and a member login (the first synced
/// member who is not an admin), with one fresh random password.
async fn create_logins(
    store: &Store,
    tenant: &TenantId,
    admin_email: &str,
    truth: &tributary_emulator::truth::GroundTruth,
) -> anyhow::Result<Vec<Login>> {
    let password: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(16)
        .map(char::from)
        .collect();
    let admin = admin_email.to_lowercase();
    let member = truth
        .members
        .iter()
        .map(|m| m.primary.to_lowercase())
        .find(|m| *m != admin);
    let mut logins = vec![Login {
        email: admin,
        password: password.clone(),
        role: "admin",
    }];
    if let Some(email) = member {
        logins.push(Login {
            email,
            password,
            role: "member",
        });
    }
    for login in &logins {
        ensure_login(store, tenant, login).await?;
    }
    Ok(logins)
}

/// Creates the login's account, or, when the demo ran on this data directory before,
/// gives the account it made then this run's password (audited as a reset).
async fn ensure_login(store: &Store, tenant: &TenantId, login: &Login) -> anyhow::Result<()> {
    let role = if login.role == "admin" {
        MemberRole::Admin
    } else {
        MemberRole::Member
    };
    let Some(existing) = store.account_by_email(&login.email).await? else {
        tributary_server::auth::create_user(
            store,
            tenant,
            &login.email,
            role,
            &login.password,
            DEMO_ACTOR,
        )
        .await?;
        return Ok(());
    };
    anyhow::ensure!(
        existing.tenant == *tenant,
        "the account {} belongs to another tenant ({}) in this data directory",
        login.email,
        existing.tenant.as_str()
    );
    let hash = tributary_server::auth::hash_new_password(&login.password, &[&login.email]).await?;
    store
        .reset_user_password(tenant, existing.id, &hash, true, DEMO_ACTOR)
        .await?;
    if !existing.active {
        store
            .set_user_active(tenant, existing.id, true, DEMO_ACTOR)
            .await?;
    }
    if existing.role != role {
        store
            .set_user_role(tenant, existing.id, role, DEMO_ACTOR)
            .await?;
    }
    Ok(())
}

/// Where the emulators deliver push: the console's address, on loopback when the
/// console listens on every interface (the emulators deliver to loopback only).
fn push_url(listening: SocketAddr) -> String {
    if listening.ip().is_unspecified() {
        let loopback = match listening {
            SocketAddr::V4(_) => std::net::IpAddr::from(std::net::Ipv4Addr::LOCALHOST),
            SocketAddr::V6(_) => std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        };
        return format!("http://{}", SocketAddr::new(loopback, listening.port()));
    }
    format!("http://{listening}")
}

fn spawn_server(
    listener: TcpListener,
    runtime: &Runtime,
    config: ServerConfig,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    let state = AppState::new(runtime.clone(), config);
    tokio::spawn(tributary_server::serve(listener, state, async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    }))
}

fn spawn_workers(
    runtime: &Runtime,
    count: usize,
    stop: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<Result<(), tributary_sync::WorkerError>>> {
    (0..count)
        .map(|index| {
            let worker = Worker::for_runtime(runtime.clone()).named(format!("demo-{index}"));
            let mut stop = stop.clone();
            tokio::spawn(async move {
                worker
                    .run(async move {
                        let _ = stop.wait_for(|stopped| *stopped).await;
                    })
                    .await
            })
        })
        .collect()
}
