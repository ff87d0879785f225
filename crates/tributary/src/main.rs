//! `tributary`: the one binary. Each subcommand lives in `commands/` and only wires
//! arguments to the library crates; no domain logic lives here.

mod commands;

use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "tributary",
    version,
    about = "Centralized email capture for CRMs",
    long_about = "Tributary connects a whole organization's mailboxes once, as an administrator, \
                  and captures every enabled user's email as contact points for a CRM."
)]
struct Cli {
    /// A TOML file of settings (keys are the long flag names, e.g. data_dir =
    /// "/var/lib/tributary"); flags and TRIBUTARY_* variables win over it.
    #[arg(long, global = true, env = "TRIBUTARY_CONFIG")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the whole mission on one machine: emulator, server, capture, summary.
    Demo(commands::demo::DemoArgs),
    /// Run the admin console and REST API, with the sync scheduler unless --no-worker.
    Serve(commands::serve::ServeArgs),
    /// Run the sync scheduler alone (several may share a PostgreSQL database).
    Worker(commands::worker::WorkerArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate(commands::migrate::MigrateArgs),
    /// Headless setup: tenants, console accounts (roles, disable, password reset), API tokens.
    Admin(commands::admin::AdminArgs),
    /// Run the local Google Workspace or Microsoft 365 emulator with a synthetic organization.
    Emulate(commands::emulate::EmulateArgs),
    /// Print what Tributary extracts from .eml files, one JSON line per file.
    Extract(commands::extract::ExtractArgs),
    /// Measure capture speed against the quota, pipeline cost and scale (one table).
    Bench(commands::bench::BenchArgs),
}

fn main() -> ExitCode {
    // The config file fills TRIBUTARY_* variables before the flags are parsed, so that
    // clap resolves flag > environment > file > default in one place.
    if let Some(path) = config_file_argument()
        && let Err(err) = commands::setup::apply_config_file(&path)
    {
        eprintln!("error: {err:#}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    let _ = &cli.config;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRIBUTARY_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match cli.command {
        Command::Demo(args) => commands::demo::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Worker(args) => commands::worker::run(args),
        Command::Migrate(args) => commands::migrate::run(args),
        Command::Admin(args) => commands::admin::run(args),
        Command::Emulate(args) => commands::emulate::run(args),
        Command::Extract(args) => commands::extract::run(args),
        Command::Bench(args) => commands::bench::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--config PATH`, `--config=PATH` or `TRIBUTARY_CONFIG`, looked up before clap runs.
fn config_file_argument() -> Option<std::path::PathBuf> {
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--config" {
            return args.next().map(Into::into);
        }
        if let Some(path) = arg.to_str().and_then(|a| a.strip_prefix("--config=")) {
            return Some(path.into());
        }
    }
    std::env::var_os("TRIBUTARY_CONFIG").map(Into::into)
}
