//! `tributary emulate`: runs the Google Workspace emulator (default) or the Microsoft 365
//! emulator (`--provider microsoft`) with a generated organization until stopped.
//! Reference: `docs/emulator.md`.

use super::signal::{async_runtime, stop_signal};
use anyhow::Context;
use clap::{Args, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tributary_emulator::kit::{FaultConfig as NeutralFaults, WindowConfig};
use tributary_emulator::microsoft::control::Scenario as MicrosoftScenario;
use tributary_emulator::microsoft::{MicrosoftConfig, TenantSource};
use tributary_emulator::org::OrgConfig;
use tributary_emulator::server::app::{now_ms, parse_rfc3339_ms};
use tributary_emulator::server::control::Scenario;
use tributary_emulator::server::faults::FaultConfig;
use tributary_emulator::server::quota::QuotaConfig;
use tributary_emulator::server::{EmulatorConfig, OrgSource, start};

/// Which provider's APIs to emulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Provider {
    Google,
    Microsoft,
}

#[derive(Args)]
pub struct EmulateArgs {
    /// Which provider's APIs to emulate (Microsoft serves https with a generated CA).
    #[arg(long, value_enum, default_value_t = Provider::Google)]
    pub provider: Provider,
    /// Microsoft: do not grant admin consent at start (token requests get AADSTS7000229
    /// until consent is granted through /adminconsent or the control API).
    #[arg(long)]
    pub no_consent: bool,
    /// Microsoft: requests per app and mailbox per throttling window.
    #[arg(long, default_value_t = 10_000)]
    pub throttle_requests_per_window: u32,
    /// Microsoft: the throttling window in seconds (scaled by --quota-time-scale).
    #[arg(long, default_value_t = 600.0)]
    pub throttle_window_seconds: f64,
    /// Microsoft: requests one app may have in flight per mailbox.
    #[arg(long, default_value_t = 4)]
    pub throttle_concurrency: u32,
    /// Address to listen on; port 0 picks a free port (emulator.json tells which).
    #[arg(long, default_value = "127.0.0.1:8085")]
    pub listen: SocketAddr,
    /// Seed of the organization and of the service-account key (Microsoft: of the
    /// tenant's ids and the certificate credential's key).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Internal users on the primary domain.
    #[arg(long, default_value_t = 25)]
    pub users: usize,
    /// Messages per user mailbox.
    #[arg(long, default_value_t = 400)]
    pub messages_per_user: usize,
    /// Directory for service-account.json (Microsoft: ca.pem, app.json and the certificate
    /// files), ground-truth.json and emulator.json.
    #[arg(long, default_value = "emulator-out")]
    pub out: PathBuf,
    /// The reference instant the generated mail leads up to (RFC 3339; default: now).
    #[arg(long)]
    pub now: Option<String>,
    /// Do not delegate Tributary's scopes to the service account (token requests for a
    /// user then get 401 unauthorized_client until the control API delegates them).
    #[arg(long)]
    pub no_delegation: bool,
    /// Access-token lifetime in seconds (expires_in is one less).
    #[arg(long, default_value_t = 3600)]
    pub token_lifetime: u64,
    /// Turn Gmail quotas off entirely (no budgets, no concurrency cap).
    #[arg(long)]
    pub no_quota: bool,
    /// Gmail quota units per user per minute.
    #[arg(long, default_value_t = 15_000)]
    pub quota_user_units_per_minute: u32,
    /// Gmail quota units per project per minute.
    #[arg(long, default_value_t = 1_200_000)]
    pub quota_project_units_per_minute: u32,
    /// Requests one user may have in flight at once (more get 429).
    #[arg(long, default_value_t = 10)]
    pub quota_concurrency: u32,
    /// How many times faster than real time a quota minute passes.
    #[arg(long, default_value_t = 1.0)]
    pub quota_time_scale: f64,
    /// Chance (0 to 1) that an API request is answered 500 backendError.
    #[arg(long, default_value_t = 0.0)]
    pub fault_backend_error_rate: f64,
    /// Chance (0 to 1) that a token request is answered 500 internal_failure.
    #[arg(long, default_value_t = 0.0)]
    pub fault_token_error_rate: f64,
    /// Latency added to every API request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub fault_latency_ms: u64,
    /// Extra random latency of 0 to this many milliseconds.
    #[arg(long, default_value_t = 0)]
    pub fault_latency_jitter_ms: u64,
    /// Seed of the fault decisions (default: random).
    #[arg(long)]
    pub fault_seed: Option<u64>,
    /// A scenario file (JSON: quota or throttling, faults, time_scale, mail_disabled; see
    /// docs/emulator-control.md); its parts replace the matching flags.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
}

impl EmulateArgs {
    fn config(&self) -> anyhow::Result<EmulatorConfig> {
        let now_ms = match &self.now {
            Some(text) => parse_rfc3339_ms(text)
                .with_context(|| format!("--now {text:?} is not an RFC 3339 instant"))?,
            None => now_ms(),
        };
        let quota = QuotaConfig {
            enabled: !self.no_quota,
            per_user_units_per_minute: self.quota_user_units_per_minute,
            per_project_units_per_minute: self.quota_project_units_per_minute,
            concurrent_requests_per_user: self.quota_concurrency,
            time_scale: self.quota_time_scale,
            ..QuotaConfig::default()
        };
        let faults = FaultConfig {
            backend_error_probability: self.fault_backend_error_rate,
            token_error_probability: self.fault_token_error_rate,
            latency_ms: self.fault_latency_ms,
            latency_jitter_ms: self.fault_latency_jitter_ms,
            seed: self.fault_seed,
        };
        let scenario = self
            .scenario
            .as_deref()
            .map(Scenario::from_path)
            .transpose()?;
        Ok(EmulatorConfig {
            listen: self.listen,
            organization: OrgSource::Generate(OrgConfig {
                seed: self.seed,
                users: self.users,
                messages_per_user: self.messages_per_user,
                now_ms,
            }),
            delegation: !self.no_delegation,
            token_lifetime: Duration::from_secs(self.token_lifetime),
            key_seed: self.seed,
            quota,
            faults,
            scenario,
            out_dir: Some(self.out.clone()),
        })
    }
}

impl EmulateArgs {
    fn org_config(&self) -> anyhow::Result<OrgConfig> {
        let now_ms = match &self.now {
            Some(text) => parse_rfc3339_ms(text)
                .with_context(|| format!("--now {text:?} is not an RFC 3339 instant"))?,
            None => now_ms(),
        };
        Ok(OrgConfig {
            seed: self.seed,
            users: self.users,
            messages_per_user: self.messages_per_user,
            now_ms,
        })
    }

    fn microsoft_config(&self) -> anyhow::Result<MicrosoftConfig> {
        let scenario = self
            .scenario
            .as_deref()
            .map(MicrosoftScenario::from_path)
            .transpose()?;
        Ok(MicrosoftConfig {
            listen: self.listen,
            organization: TenantSource::Generate(self.org_config()?),
            seed: self.seed,
            consent: !self.no_consent,
            token_lifetime: Duration::from_secs(self.token_lifetime),
            throttling: WindowConfig {
                enabled: !self.no_quota,
                requests_per_window: self.throttle_requests_per_window,
                window_seconds: self.throttle_window_seconds,
                concurrency: self.throttle_concurrency,
                time_scale: self.quota_time_scale,
            },
            faults: NeutralFaults {
                server_error_probability: self.fault_backend_error_rate,
                token_error_probability: self.fault_token_error_rate,
                latency_ms: self.fault_latency_ms,
                latency_jitter_ms: self.fault_latency_jitter_ms,
                seed: self.fault_seed,
            },
            scenario,
            out_dir: Some(self.out.clone()),
        })
    }
}

fn run_microsoft(args: EmulateArgs) -> anyhow::Result<ExitCode> {
    let config = args.microsoft_config()?;
    let runtime = async_runtime()?;
    runtime.block_on(async move {
        let running = tributary_emulator::microsoft::start(config).await?;
        let info = &running.info;
        eprintln!("Microsoft 365 emulator listening on {}", info.base_url);
        eprintln!("  authority    {}", info.authority);
        eprintln!("  graph_url    {}", info.graph_url);
        eprintln!("  control_url  {}", info.control_url);
        eprintln!("  admin_email  {}", info.admin_email);
        for path in [&info.ca_cert, &info.app_file, &info.ground_truth_file]
            .into_iter()
            .flatten()
        {
            eprintln!("  wrote        {}", path.display());
        }
        eprintln!(
            "  wrote        {}",
            args.out.join("emulator.json").display()
        );
        eprintln!("stop with Ctrl-C");
        stop_signal().await?;
        eprintln!("stopping");
        running.shutdown().await?;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn run(args: EmulateArgs) -> anyhow::Result<ExitCode> {
    if args.provider == Provider::Microsoft {
        return run_microsoft(args);
    }
    let config = args.config()?;
    let runtime = async_runtime()?;
    runtime.block_on(async move {
        let running = start(config).await?;
        let info = &running.info;
        eprintln!("emulator listening on {}", info.base_url);
        eprintln!("  token_uri    {}", info.token_uri);
        eprintln!("  control_url  {}", info.control_url);
        eprintln!("  admin_email  {}", info.admin_email);
        for path in [&info.service_account_file, &info.ground_truth_file]
            .into_iter()
            .flatten()
        {
            eprintln!("  wrote        {}", path.display());
        }
        eprintln!(
            "  wrote        {}",
            args.out.join("emulator.json").display()
        );
        eprintln!("stop with Ctrl-C");
        stop_signal().await?;
        eprintln!("stopping");
        running.shutdown().await?;
        Ok(ExitCode::SUCCESS)
    })
}
