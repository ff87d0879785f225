//! `tributary serve`: the console and REST API, with the sync scheduler in the same
//! process unless `--no-worker` (then run `tributary worker` processes beside it).

use super::setup::{StoreArgs, SyncArgs, open_runtime};
use super::signal::{async_runtime, stop_signal};
use anyhow::Context;
use clap::Args;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;
use tokio::net::TcpListener;
use tributary_server::{AppState, PushConfig, ServerConfig, SmtpConfig};
use tributary_sync::push::PushSettings;
use tributary_sync::{Runtime, Worker};

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub sync: SyncArgs,
    /// Address the console and API listen on.
    #[arg(long, env = "TRIBUTARY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The URL users reach the console at (default: http://LISTEN). An https:// URL
    /// (behind a TLS proxy) makes the session cookies Secure and __Host- prefixed.
    #[arg(long, env = "TRIBUTARY_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Serve only: no sync scheduler in this process.
    #[arg(long, env = "TRIBUTARY_NO_WORKER")]
    pub no_worker: bool,
    #[command(flatten)]
    pub smtp: SmtpArgs,
    #[command(flatten)]
    pub push: PushArgs,
}

/// Receiving provider push (docs/push.md). Off unless `--push`; then `--public-url`
/// must be the address the provider reaches.
#[derive(Args, Debug, Clone)]
pub struct PushArgs {
    #[command(flatten)]
    pub lifecycle: PushLifecycleArgs,
    /// Where the keys signing Pub/Sub's push tokens are served (the emulator's
    /// BASE/oauth2/v3/certs in a test).
    #[arg(
        long,
        env = "TRIBUTARY_PUSH_GOOGLE_CERTS_URL",
        default_value = tributary_google::push::GOOGLE_CERTS_URL
    )]
    pub push_google_certs_url: String,
}

/// What `serve` and `worker` share about push: whether it is on (the processes that
/// run syncs open, renew and close the channels) and how slowly a link on push is
/// polled.
#[derive(Args, Debug, Clone)]
pub struct PushLifecycleArgs {
    /// Use provider push: open a watch or subscription per mailbox delivering to
    /// PUBLIC_URL/push/…, and accept deliveries there (`serve`). Needs --public-url.
    #[arg(long, env = "TRIBUTARY_PUSH")]
    pub push: bool,
    /// Seconds between the safety polls of a mailbox on push (catching notifications
    /// the provider dropped); a mailbox on polling keeps --poll-seconds.
    #[arg(long, env = "TRIBUTARY_PUSH_POLL_SECONDS", default_value_t = 3600)]
    pub push_poll_seconds: u64,
}

impl PushLifecycleArgs {
    /// The runtime's push settings: `None` without `--push`; refused without a usable
    /// public URL.
    pub fn settings(&self, public_url: Option<&str>) -> anyhow::Result<Option<PushSettings>> {
        if !self.push {
            return Ok(None);
        }
        let Some(public_url) = public_url else {
            anyhow::bail!(
                "--push needs --public-url: the https address Google and Microsoft deliver push to"
            );
        };
        Ok(Some(PushSettings::new(public_url)?))
    }

    /// Opens the store and builds the runtime as `open_runtime` does, with push on as
    /// `push` says and a link on push polled every `--push-poll-seconds`.
    pub async fn open_runtime(
        &self,
        store: &StoreArgs,
        sync: &SyncArgs,
        push: Option<PushSettings>,
    ) -> anyhow::Result<Runtime> {
        let push_poll = Duration::from_secs(self.push_poll_seconds.max(1));
        Ok(open_runtime(store, sync).await?.reconfigured(|config| {
            config.worker.push_poll_interval = push_poll;
            config.push = push;
        }))
    }
}

impl PushArgs {
    /// The server's push configuration and the runtime's, which always agree: both on
    /// (the same public URL) or both off.
    fn config(
        &self,
        public_url: Option<&str>,
    ) -> anyhow::Result<(Option<PushConfig>, Option<PushSettings>)> {
        let Some(settings) = self.lifecycle.settings(public_url)? else {
            return Ok((None, None));
        };
        let server = PushConfig {
            google_certs_url: self.push_google_certs_url.clone(),
        };
        Ok((Some(server), Some(settings)))
    }
}

/// Where notification mail goes (capture turned on, …). Without a host, none is sent
/// and the console says so.
#[derive(Args, Debug, Clone)]
pub struct SmtpArgs {
    /// SMTP server host.
    #[arg(long, env = "TRIBUTARY_SMTP_HOST")]
    pub smtp_host: Option<String>,
    #[arg(long, env = "TRIBUTARY_SMTP_PORT", default_value_t = 587)]
    pub smtp_port: u16,
    /// Sender address of notifications.
    #[arg(
        long,
        env = "TRIBUTARY_SMTP_FROM",
        default_value = "tributary@localhost"
    )]
    pub smtp_from: String,
    #[arg(long, env = "TRIBUTARY_SMTP_USERNAME")]
    pub smtp_username: Option<String>,
    /// Prefer the environment variable: flags show up in process listings.
    #[arg(long, env = "TRIBUTARY_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,
    /// Plain SMTP without TLS (a local relay).
    #[arg(long, env = "TRIBUTARY_SMTP_PLAINTEXT")]
    pub smtp_plaintext: bool,
}

impl SmtpArgs {
    pub fn config(&self) -> Option<SmtpConfig> {
        let host = self.smtp_host.clone()?;
        Some(SmtpConfig {
            host,
            port: self.smtp_port,
            from: self.smtp_from.clone(),
            username: self.smtp_username.clone(),
            password: self.smtp_password.clone(),
            plaintext: self.smtp_plaintext,
        })
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    // Checked before the store is opened: a bad flag changes nothing.
    let (push, runtime_push) = args.push.config(args.public_url.as_deref())?;
    async_runtime()?.block_on(async move {
        let runtime = args
            .push
            .lifecycle
            .open_runtime(&args.store, &args.sync, runtime_push)
            .await?;
        let listener = TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {} (--listen)", args.listen))?;
        let address = listener.local_addr()?;
        let config = ServerConfig {
            public_url: args
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{address}")),
            smtp: args.smtp.config(),
            push,
            ..ServerConfig::default()
        };
        eprintln!("database {}", args.store.describe());
        let installation = runtime
            .store()
            .installation()
            .await
            .context("cannot read the accounts")?;
        if installation.needs_first_admin() {
            eprintln!(
                "{}",
                first_admin_help(&args.store, installation.tenants > 0)
            );
        }
        // Last: scripts wait for this line to know the console is up.
        eprintln!("Tributary console at {}", config.public_url);
        let state = AppState::new(runtime.clone(), config);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let worker = (!args.no_worker).then(|| {
            let mut stop = stop_rx.clone();
            let worker = Worker::for_runtime(runtime.clone());
            tokio::spawn(async move {
                worker
                    .run(async move {
                        let _ = stop.wait_for(|stopped| *stopped).await;
                    })
                    .await
            })
        });
        let mut stop = stop_rx.clone();
        let server = tokio::spawn(tributary_server::serve(listener, state, async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        }));
        stop_signal().await?;
        eprintln!("stopping");
        let _ = stop_tx.send(true);
        server.await??;
        if let Some(worker) = worker {
            worker.await??;
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// What `serve` prints on a database with no console account: the commands that create
/// the first admin, with this server's store flags, ready to paste.
fn first_admin_help(store: &StoreArgs, has_tenant: bool) -> String {
    let flags = store_flags(store);
    let mut text = String::from(
        "No console account exists yet. Create the first admin (its password is printed once), then sign in:\n",
    );
    if has_tenant {
        text.push_str(&format!(
            "  tributary admin create-user TENANT-ID you@example.com --role admin{flags}\n"
        ));
    } else {
        text.push_str(&format!(
            "  tributary admin create-tenant acme --name \"Acme Inc\"{flags}\n  tributary admin create-user acme you@example.com --role admin{flags}\n"
        ));
    }
    text
}

/// The store flags `serve` was given, as the admin commands take them. A database URL
/// is named by its variable: it may hold a password.
fn store_flags(store: &StoreArgs) -> String {
    let mut flags = match &store.database_url {
        Some(_) => " --database-url \"$TRIBUTARY_DATABASE_URL\"".to_owned(),
        None => format!(
            " --data-dir {}",
            shell_word(&store.data_dir.display().to_string())
        ),
    };
    if let Some(file) = &store.master_key_file {
        flags.push_str(&format!(
            " --master-key-file {}",
            shell_word(&file.display().to_string())
        ));
    }
    flags
}

/// `word` as one shell word: quoted unless it is plain.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &str) -> StoreArgs {
        StoreArgs {
            data_dir: dir.into(),
            database_url: None,
            master_key_file: None,
        }
    }

    fn push(on: bool) -> PushArgs {
        PushArgs {
            lifecycle: PushLifecycleArgs {
                push: on,
                push_poll_seconds: 3600,
            },
            push_google_certs_url: "https://certs.example/".into(),
        }
    }

    #[test]
    fn the_server_and_the_runtime_agree_on_push() {
        let (server, runtime) = push(false).config(Some("https://crm.example")).unwrap();
        assert!(server.is_none() && runtime.is_none());
        let (server, runtime) = push(true).config(Some("https://crm.example/")).unwrap();
        assert_eq!(server.unwrap().google_certs_url, "https://certs.example/");
        assert_eq!(runtime.unwrap().public_url(), "https://crm.example");
        let error = push(true).config(None).unwrap_err().to_string();
        assert!(error.contains("--public-url"), "{error}");
        let error = push(true)
            .config(Some("crm.example"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("public URL"), "{error}");
    }

    #[test]
    fn the_first_admin_commands_carry_this_servers_store() {
        let help = first_admin_help(&store("/var/lib/tributary"), false);
        assert!(help.contains("tributary admin create-tenant acme --name \"Acme Inc\" --data-dir /var/lib/tributary\n"), "{help}");
        assert!(help.contains("tributary admin create-user acme you@example.com --role admin --data-dir /var/lib/tributary"), "{help}");
        let spaced = first_admin_help(&store("my data"), true);
        assert!(
            spaced.contains(
                "create-user TENANT-ID you@example.com --role admin --data-dir 'my data'"
            ),
            "{spaced}"
        );
        assert!(!spaced.contains("create-tenant"));
    }
}
