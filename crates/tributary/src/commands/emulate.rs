//! `tributary emulate`: runs the Google Workspace emulator with a generated organization
//! until stopped. Reference: `docs/emulator.md`.

use super::signal::{async_runtime, stop_signal};
use anyhow::Context;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tributary_emulator::org::OrgConfig;
use tributary_emulator::server::app::{now_ms, parse_rfc3339_ms};
use tributary_emulator::server::control::Scenario;
use tributary_emulator::server::faults::FaultConfig;
use tributary_emulator::server::quota::QuotaConfig;
use tributary_emulator::server::{EmulatorConfig, OrgSource, start};

#[derive(Args)]
pub struct EmulateArgs {
    /// Address to listen on; port 0 picks a free port (emulator.json tells which).
    #[arg(long, default_value = "127.0.0.1:8085")]
    pub listen: SocketAddr,
    /// Seed of the organization and of the service-account key.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Internal users on the primary domain.
    #[arg(long, default_value_t = 25)]
    pub users: usize,
    /// Messages per user mailbox.
    #[arg(long, default_value_t = 400)]
    pub messages_per_user: usize,
    /// Directory for service-account.json, ground-truth.json and emulator.json.
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
    /// A scenario file (JSON: quota, faults, mail_disabled); it replaces the quota and
    /// fault flags.
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

pub fn run(args: EmulateArgs) -> anyhow::Result<ExitCode> {
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
