//! `tributary emulate`: runs the Google Workspace emulator (default) or the Microsoft 365
//! emulator (`--provider microsoft`) with a generated organization until stopped. With
//! `--split`, the organization is a company mid-migration and the emulator serves only
//! the mailboxes its provider hosts (run one emulator per provider with the same
//! flags). Reference: `docs/emulator.md`, `docs/emulator-organization.md`.

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
use tributary_emulator::org::{Generated, Host, MailboxSplit, OrgConfig, generate};
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
    /// A company mid-migration: which mailboxes Microsoft 365 hosts, the others staying
    /// at Google. `alternate` (every other user by primary address) or a JSON file
    /// {"microsoft": [primary addresses], "both": [primary addresses]}. Every user stays
    /// in both directories; this emulator serves only the mailboxes its provider hosts.
    /// Run a Google and a Microsoft emulator with the same --split, --seed, --users,
    /// --messages-per-user and --now for the two halves of one organization.
    #[arg(long, value_name = "alternate|FILE")]
    pub split: Option<String>,
}

/// A split file, read before the organization is generated so that a wrong one is
/// refused at once; `None` for `alternate`.
fn read_split_file(value: &str) -> anyhow::Result<Option<MailboxSplit>> {
    if value == "alternate" {
        return Ok(None);
    }
    let text = std::fs::read_to_string(value)
        .with_context(|| format!("--split {value:?} is neither `alternate` nor a readable file"))?;
    let split = serde_json::from_str(&text).with_context(|| {
        format!("--split {value}: expected {{\"microsoft\": [addresses], \"both\": [addresses]}}")
    })?;
    Ok(Some(split))
}

/// What an emulator serves.
enum Organization {
    Whole(OrgConfig),
    Part(Box<Generated>),
}

impl Provider {
    fn host(self) -> Host {
        match self {
            Provider::Google => Host::Google,
            Provider::Microsoft => Host::Microsoft,
        }
    }
}

impl EmulateArgs {
    fn config(&self) -> anyhow::Result<EmulatorConfig> {
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
        let organization = match self.organization()? {
            Organization::Whole(config) => OrgSource::Generate(config),
            Organization::Part(part) => OrgSource::Generated(part),
        };
        Ok(EmulatorConfig {
            listen: self.listen,
            organization,
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
    /// The organization to serve: the whole one, generated by the emulator, or with
    /// `--split` this provider's part of it.
    fn organization(&self) -> anyhow::Result<Organization> {
        let config = self.org_config()?;
        let Some(value) = &self.split else {
            return Ok(Organization::Whole(config));
        };
        let given = read_split_file(value)?;
        let generated = generate(&config);
        let split = given.unwrap_or_else(|| MailboxSplit::alternate(&generated.org));
        split
            .validate(&generated.org)
            .with_context(|| format!("--split {value}"))?;
        let part = split.generated_part(&generated, self.provider.host());
        Ok(Organization::Part(Box::new(part)))
    }

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
            organization: match self.organization()? {
                Organization::Whole(config) => TenantSource::Generate(config),
                Organization::Part(part) => TenantSource::Generated(part),
            },
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        args: EmulateArgs,
    }

    fn args(flags: &[&str]) -> EmulateArgs {
        let mut all = vec![
            "emulate",
            "--users",
            "6",
            "--messages-per-user",
            "10",
            "--now",
            "2026-01-01T00:00:00Z",
        ];
        all.extend_from_slice(flags);
        Command::parse_from(all).args
    }

    /// The users whose mailbox an organization serves.
    fn hosted(part: &Generated) -> Vec<String> {
        part.org
            .users
            .iter()
            .filter(|u| u.is_mailbox_setup)
            .map(|u| u.primary_email.to_ascii_lowercase())
            .collect()
    }

    #[test]
    fn a_split_serves_each_provider_its_own_mailboxes_of_one_organization() {
        let part = |provider: &str| match args(&["--provider", provider, "--split", "alternate"])
            .organization()
            .unwrap()
        {
            Organization::Part(part) => *part,
            Organization::Whole(_) => panic!("--split serves a part"),
        };
        let (google, microsoft) = (part("google"), part("microsoft"));
        assert_eq!(google.org.users.len(), microsoft.org.users.len());
        let (at_google, at_microsoft) = (hosted(&google), hosted(&microsoft));
        assert!(!at_google.is_empty() && !at_microsoft.is_empty());
        assert!(at_google.iter().all(|u| !at_microsoft.contains(u)));
        assert_eq!(
            google.truth, microsoft.truth,
            "the whole organization's truth"
        );
        assert!(matches!(
            args(&[]).organization().unwrap(),
            Organization::Whole(_)
        ));
    }

    #[test]
    fn a_split_file_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("split.json");
        std::fs::write(&file, r#"{"microsoft": [], "elsewhere": []}"#).unwrap();
        let error = args(&["--split", file.to_str().unwrap()])
            .organization()
            .err()
            .unwrap();
        assert!(
            format!("{error:#}").contains("\"microsoft\": [addresses]"),
            "{error:#}"
        );
        std::fs::write(&file, r#"{"both": []}"#).unwrap();
        assert!(matches!(
            args(&["--split", file.to_str().unwrap()])
                .organization()
                .unwrap(),
            Organization::Part(_)
        ));
    }
}
