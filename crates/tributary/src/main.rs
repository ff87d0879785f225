//! `tributary`: the one binary. Each subcommand lives in `commands/` and only wires
//! arguments to the library crates; no domain logic lives here.

mod commands;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "tributary",
    version,
    about = "Centralized email and calendar capture for CRMs",
    long_about = "Tributary connects a whole organization's mailboxes once, as an administrator, \
                  and captures every enabled user's email as contact points for a CRM."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the local Google Workspace emulator with a synthetic organization.
    Emulate(commands::emulate::EmulateArgs),
    /// Print what Tributary extracts from .eml files, one JSON line per file.
    Extract(commands::extract::ExtractArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRIBUTARY_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Emulate(args) => commands::emulate::run(args),
        Command::Extract(args) => commands::extract::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
