//! The demo's providers: the Google Workspace emulator, the Microsoft 365 emulator, or
//! both serving the two halves of one organization mid-migration. Each is connected
//! through the runtime as an admin connects it on the setup pages: Google with the
//! service-account key and a Workspace admin; Microsoft with the app registration's
//! directory (tenant) ID, client ID and secret, then admin consent and *Test
//! connection*.

use super::progress::Progress;
use anyhow::Context;
use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tributary_emulator::microsoft::mail::live::deliver;
use tributary_emulator::microsoft::state::MicrosoftState;
use tributary_emulator::microsoft::{MicrosoftConfig, RunningMicrosoft, TenantSource};
use tributary_emulator::org::meetings_truth::{MeetingPolicy, MeetingsTruth};
use tributary_emulator::org::{
    Generated, Host, LiveMessage, MailboxSplit, OrgConfig, deliver_live, generate,
};
use tributary_emulator::server::state::EmulatorState;
use tributary_emulator::server::{EmulatorConfig, OrgSource, RunningEmulator, start};
use tributary_emulator::truth::GroundTruth;
use tributary_google::GoogleEndpoints;
use tributary_server::PushConfig;
use tributary_store::{MasterKey, Store, TenantId};
use tributary_sync::push::PushSettings;
use tributary_sync::runtime::ConsentOutcome;
use tributary_sync::{
    MicrosoftCredential, MicrosoftSettings, Runtime, RuntimeConfig, WorkerConfig,
};

/// Where the demo organization's mailboxes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DemoProvider {
    /// Google Workspace.
    #[default]
    Google,
    /// Microsoft 365.
    Microsoft,
    /// A company mid-migration: every other mailbox moved to Microsoft 365, the rest
    /// still at Google; the tenant is connected to both.
    Mixed,
}

impl DemoProvider {
    /// As `--provider` takes it.
    pub fn flag(self) -> &'static str {
        match self {
            DemoProvider::Google => "google",
            DemoProvider::Microsoft => "microsoft",
            DemoProvider::Mixed => "mixed",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DemoProvider::Google => "Google Workspace",
            DemoProvider::Microsoft => "Microsoft 365",
            DemoProvider::Mixed => "Google Workspace and Microsoft 365",
        }
    }
}

/// The emulators serving the demo's organization, and what a correct capture of it is.
pub struct Emulators {
    pub google: Option<RunningEmulator>,
    pub microsoft: Option<RunningMicrosoft>,
    /// The whole organization's ground truth.
    pub truth: GroundTruth,
    /// The organization's administrator (the console's admin login).
    pub admin_email: String,
}

/// Every emulator's organization, for delivering new mail. Cheap to clone.
#[derive(Clone)]
pub struct LiveMail {
    google: Option<Arc<EmulatorState>>,
    microsoft: Option<Arc<MicrosoftState>>,
}

impl LiveMail {
    /// Delivers `message` at every provider; each puts it in the mailboxes it hosts.
    pub fn deliver(&self, message: &LiveMessage, now_ms: i64) {
        if let Some(google) = &self.google {
            deliver_live(&mut google.org_mut(), message, now_ms);
        }
        if let Some(microsoft) = &self.microsoft {
            deliver(&mut microsoft.tenant_mut(), message, now_ms);
        }
    }
}

/// What one provider's emulator counted.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderUsage {
    pub provider: &'static str,
    /// API requests answered (Google: quota-counted calls; Microsoft: Graph requests,
    /// batch parts included).
    pub requests: u64,
    /// Answers telling Tributary to slow down (Gmail rate limits, Graph 429s).
    pub rate_limited: u64,
    /// Gmail quota units spent (Google only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_units: Option<u64>,
    /// Gmail metadata reads (Google only: Graph returns messages in delta pages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages_read: Option<u64>,
    /// Change notifications the provider delivered to Tributary and it acknowledged
    /// (Pub/Sub pushes and Calendar channel messages; Graph notifications).
    pub push_notifications: u64,
}

impl ProviderUsage {
    /// One line of the summary table.
    pub fn describe(&self) -> String {
        match (self.provider, self.quota_units) {
            ("google", units) => format!(
                "{} to Google ({} quota units, {} rate-limited); {} push notifications",
                self.requests,
                units.unwrap_or(0),
                self.rate_limited,
                self.push_notifications
            ),
            _ => format!(
                "{} to Microsoft Graph ({} throttled); {} push notifications",
                self.requests, self.rate_limited, self.push_notifications
            ),
        }
    }
}

impl Emulators {
    /// Starts the emulators `provider` needs for the organization `config` generates,
    /// writing their files (keys, CA, ground truth) under `data`.
    pub async fn start(
        provider: DemoProvider,
        config: OrgConfig,
        data: &Path,
    ) -> anyhow::Result<Self> {
        let seed = config.seed;
        let generated = tokio::task::spawn_blocking(move || generate(&config))
            .await
            .context("the organization generator failed")?;
        let truth = generated.truth.clone();
        let (google, microsoft) = match provider {
            DemoProvider::Google => (Some(start_google(generated, seed, data).await?), None),
            DemoProvider::Microsoft => (None, Some(start_microsoft(generated, seed, data).await?)),
            DemoProvider::Mixed => {
                let split = MailboxSplit::alternate(&generated.org);
                let google = split.generated_part(&generated, Host::Google);
                let microsoft = split.generated_part(&generated, Host::Microsoft);
                (
                    Some(start_google(google, seed, data).await?),
                    Some(start_microsoft(microsoft, seed, data).await?),
                )
            }
        };
        let admin_email = match (&google, &microsoft) {
            (Some(google), _) => google.info.admin_email.clone(),
            (None, Some(microsoft)) => microsoft.info.admin_email.clone(),
            (None, None) => anyhow::bail!("no emulator started"),
        };
        Ok(Emulators {
            google,
            microsoft,
            truth,
            admin_email,
        })
    }

    /// The runtime a server would build with the operator's settings pointing at these
    /// emulators, opening push channels to `push`'s public URL when given.
    pub fn runtime(&self, store: Store, key: MasterKey, push: Option<PushSettings>) -> Runtime {
        let endpoints = self
            .google
            .as_ref()
            .map_or_else(GoogleEndpoints::default, |g| {
                GoogleEndpoints::from_base_url(&g.base_url)
            });
        let config = RuntimeConfig {
            endpoints,
            worker: WorkerConfig {
                // Quick polling so that delivered mail shows up within seconds in a
                // mailbox not on push (on push, a notification brings its sync forward).
                poll_interval: Duration::from_secs(5),
                idle_sleep: Duration::from_millis(200),
                ..WorkerConfig::default()
            },
            push,
            ..RuntimeConfig::default()
        };
        let microsoft = self
            .microsoft
            .as_ref()
            .map_or_else(MicrosoftSettings::default, |m| {
                MicrosoftSettings::at(&m.base_url, vec![m.ca_pem.clone()])
            });
        Runtime::with_microsoft(store, key, config, microsoft)
    }

    /// How the server checks the emulators' push deliveries: Google's OIDC tokens
    /// against the Google emulator's certificates (Microsoft's carry the channel's
    /// secret instead).
    pub fn push_config(&self) -> PushConfig {
        match &self.google {
            Some(google) => PushConfig {
                google_certs_url: google_certs_url(&google.base_url),
            },
            None => PushConfig::default(),
        }
    }

    /// The flags a `tributary serve` or `worker` process needs to reach these emulators
    /// as a deployment reaches the providers, besides `--google-api-url`: the Google
    /// emulator's certificates for push, and Microsoft's addresses with the emulator's
    /// CA (written to `files`).
    pub fn process_flags(&self, files: &Path) -> anyhow::Result<Vec<String>> {
        let mut flags = Vec::new();
        if let Some(google) = &self.google {
            flags.extend([
                "--push-google-certs-url".to_owned(),
                google_certs_url(&google.base_url),
            ]);
        }
        if let Some(microsoft) = &self.microsoft {
            let ca_file = files.join("microsoft-ca.pem");
            std::fs::write(&ca_file, &microsoft.ca_pem)
                .with_context(|| format!("cannot write {}", ca_file.display()))?;
            let base = microsoft.base_url.trim_end_matches('/');
            flags.extend([
                "--microsoft-login-url".to_owned(),
                base.to_owned(),
                "--microsoft-graph-url".to_owned(),
                format!("{base}/v1.0"),
                "--microsoft-ca-file".to_owned(),
                ca_file.display().to_string(),
            ]);
        }
        Ok(flags)
    }

    /// The Google emulator's root URL, when it runs.
    pub fn google_api_url(&self) -> Option<&str> {
        self.google.as_ref().map(|g| g.base_url.as_str())
    }

    /// API requests the emulators counted so far under `mailbox` (its address), at
    /// whichever provider hosts it.
    pub fn mailbox_requests(&self, mailbox: &str) -> u64 {
        let google = self.google.as_ref().map_or(0, |google| {
            google
                .state
                .counters
                .snapshot()
                .users
                .iter()
                .filter(|(user, _)| user.eq_ignore_ascii_case(mailbox))
                .map(|(_, counts)| counts.total.requests)
                .sum()
        });
        let microsoft = self.microsoft.as_ref().map_or(0, |microsoft| {
            // Graph calls are counted under the mailbox's user id.
            let Some(id) = microsoft.state.tenant().user(mailbox).map(|u| u.id.clone()) else {
                return 0;
            };
            microsoft
                .state
                .counters
                .snapshot()
                .mailboxes
                .get(&id)
                .map_or(0, |counts| counts.requests.values().sum())
        });
        google + microsoft
    }

    /// Connects `tenant` to every emulated provider as its admin would, Google first
    /// (a company migrating away from it connected it first).
    pub async fn connect(
        &self,
        runtime: &Runtime,
        tenant: &TenantId,
        actor: &str,
        progress: &Progress,
    ) -> anyhow::Result<()> {
        if let Some(google) = &self.google {
            progress.step("Google Workspace: uploading the service-account key");
            let key_json = serde_json::to_vec(&google.key_file)?;
            let setup = runtime
                .connect_google(tenant, &key_json, &google.info.admin_email, actor)
                .await?;
            progress.note(&format!(
                "client ID {} delegated {} scopes",
                setup.client_id,
                setup.scopes.len()
            ));
        }
        if let Some(microsoft) = &self.microsoft {
            connect_microsoft(microsoft, runtime, tenant, actor, progress).await?;
        }
        Ok(())
    }

    /// The meetings a correct capture holds under `policy` (at its instant), from the
    /// calendars as they are now. Every emulator generates the whole organization's
    /// meetings (a mixed one serves each member's calendar at its provider only), so
    /// any of them answers for all.
    pub fn meetings_truth(&self, policy: MeetingPolicy) -> MeetingsTruth {
        let calendars = match (&self.google, &self.microsoft) {
            (Some(google), _) => google.state.calendars.read(),
            (None, Some(microsoft)) => microsoft.state.calendars.read(),
            (None, None) => unreachable!("Emulators::start starts at least one"),
        };
        MeetingsTruth::compute(&calendars, policy)
    }

    /// Where new mail is delivered while the demo serves.
    pub fn live_mail(&self) -> LiveMail {
        LiveMail {
            google: self.google.as_ref().map(|g| Arc::clone(&g.state)),
            microsoft: self.microsoft.as_ref().map(|m| Arc::clone(&m.state)),
        }
    }

    /// What each provider's emulator counted so far.
    pub fn usage(&self) -> Vec<ProviderUsage> {
        let mut usage = Vec::new();
        if let Some(google) = &self.google {
            let counters = google.state.counters.snapshot();
            usage.push(ProviderUsage {
                provider: "google",
                requests: counters.total.requests,
                rate_limited: counters.total.rate_limited,
                quota_units: Some(counters.total.units),
                messages_read: Some(
                    counters
                        .methods
                        .get("users.messages.get")
                        .map_or(0, |m| m.requests),
                ),
                push_notifications: google.state.push.outbox.totals().delivered,
            });
        }
        if let Some(microsoft) = &self.microsoft {
            let counters = microsoft.state.counters.snapshot();
            usage.push(ProviderUsage {
                provider: "microsoft",
                requests: counters.total_requests,
                rate_limited: counters.total_throttled,
                quota_units: None,
                messages_read: None,
                push_notifications: microsoft.state.subscriptions.outbox.totals().delivered,
            });
        }
        usage
    }

    pub async fn shutdown(self) -> anyhow::Result<()> {
        if let Some(google) = self.google {
            google.shutdown().await?;
        }
        if let Some(microsoft) = self.microsoft {
            microsoft.shutdown().await?;
        }
        Ok(())
    }
}

/// Where the Google emulator serves the keys that sign its push tokens (Google's
/// `https://www.googleapis.com/oauth2/v3/certs`).
fn google_certs_url(base_url: &str) -> String {
    format!("{}/oauth2/v3/certs", base_url.trim_end_matches('/'))
}

async fn start_google(part: Generated, seed: u64, data: &Path) -> anyhow::Result<RunningEmulator> {
    let config = EmulatorConfig {
        key_seed: seed,
        organization: OrgSource::Generated(Box::new(part)),
        out_dir: Some(data.join("emulator")),
        ..EmulatorConfig::default()
    };
    start(config)
        .await
        .context("cannot start the Google Workspace emulator")
}

/// The Microsoft emulator without consent: the demo grants it as the admin would.
async fn start_microsoft(
    part: Generated,
    seed: u64,
    data: &Path,
) -> anyhow::Result<RunningMicrosoft> {
    let config = MicrosoftConfig {
        seed,
        organization: TenantSource::Generated(Box::new(part)),
        consent: false,
        out_dir: Some(data.join("emulator-microsoft")),
        ..MicrosoftConfig::default()
    };
    tributary_emulator::microsoft::start(config)
        .await
        .context("cannot start the Microsoft 365 emulator")
}

/// The Microsoft 365 setup page's steps: the app registration's IDs and secret, admin
/// consent, then *Test connection*.
async fn connect_microsoft(
    microsoft: &RunningMicrosoft,
    runtime: &Runtime,
    tenant: &TenantId,
    actor: &str,
    progress: &Progress,
) -> anyhow::Result<()> {
    let app = &microsoft.app;
    progress.step("Microsoft 365: saving the app registration (tenant ID, client ID, secret)");
    runtime
        .connect_microsoft(
            tenant,
            &app.tenant_id,
            &app.client_id,
            MicrosoftCredential::Secret(app.client_secret.clone()),
            actor,
        )
        .await?;
    progress.step("Microsoft 365: granting admin consent");
    // What Microsoft's consent page does when the admin accepts, and the answer its
    // redirect carries back to the console.
    microsoft.state.identity_mut().consent(&app.client_id);
    runtime
        .record_microsoft_consent(
            tenant,
            ConsentOutcome::Granted {
                directory: app.tenant_id.clone(),
            },
            actor,
        )
        .await?;
    let check = runtime.test_microsoft_connection(tenant, actor).await?;
    anyhow::ensure!(
        check.ok,
        "Test connection failed: {}{}",
        check.message,
        check.hint.map(|h| format!(" ({h})")).unwrap_or_default()
    );
    progress.note(&format!(
        "app {} consented in directory {}; {}",
        app.client_id, app.tenant_id, check.message
    ));
    Ok(())
}
