//! `tributary worker`: runs the sync scheduler alone, leasing jobs from the store. On
//! PostgreSQL any number of workers share the queue; a killed worker's leases expire.

use super::serve::PushLifecycleArgs;
use super::setup::{StoreArgs, SyncArgs};
use super::signal::{async_runtime, stop_signal};
use clap::Args;
use std::process::ExitCode;
use tributary_sync::Worker;

#[derive(Args, Debug)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub sync: SyncArgs,
    #[command(flatten)]
    pub push: PushLifecycleArgs,
    /// The URL `serve` is reached at by the providers (its --public-url): the worker
    /// opens push channels delivering there. Needed with --push.
    #[arg(long, env = "TRIBUTARY_PUBLIC_URL")]
    pub public_url: Option<String>,
}

pub fn run(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    // Checked before the store is opened: a bad flag changes nothing.
    let push = args.push.settings(args.public_url.as_deref())?;
    async_runtime()?.block_on(async move {
        let runtime = args
            .push
            .open_runtime(&args.store, &args.sync, push)
            .await?;
        let worker = Worker::for_runtime(runtime.clone());
        eprintln!(
            "worker {} syncing from {}; stop with Ctrl-C",
            runtime.config().worker.worker_id,
            args.store.describe()
        );
        let shutdown = async {
            if let Err(error) = stop_signal().await {
                tracing::error!(%error, "no stop signal; running until killed");
                std::future::pending::<()>().await;
            }
        };
        worker.run(shutdown).await?;
        eprintln!("worker stopped");
        Ok(ExitCode::SUCCESS)
    })
}
