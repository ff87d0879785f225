use clap::Args;
use std::process::ExitCode;

#[derive(Args)]
pub struct EmulateArgs {}

pub fn run(_args: EmulateArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("emulate is not built yet")
}
