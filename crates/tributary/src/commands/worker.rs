//! `tributary worker`: runs the sync scheduler alone, leasing jobs from the store. On
//! PostgreSQL any number of workers share the queue; a killed worker's leases expire.

use super::setup::{StoreArgs, SyncArgs, open_runtime};
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
}

pub fn run(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    async_runtime()?.block_on(async move {
        let runtime = open_runtime(&args.store, &args.sync).await?;
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
