//! `tributary migrate`: creates or upgrades the database schema, then exits. (`serve`
//! and `worker` migrate on start too; this is for deployments that do it first.)

use super::setup::StoreArgs;
use super::signal::async_runtime;
use clap::Args;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    async_runtime()?.block_on(async move {
        let store = args.store.open().await?;
        store.close().await;
        println!("database {} is up to date", args.store.describe());
        Ok(ExitCode::SUCCESS)
    })
}
