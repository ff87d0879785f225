use clap::Args;
use std::process::ExitCode;

#[derive(Args)]
pub struct ExtractArgs {
    /// .eml files to extract.
    pub files: Vec<std::path::PathBuf>,
}

pub fn run(_args: ExtractArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("extract is not built yet")
}
