//! `tributary worker` processes spawned from this very binary, pointed at the emulator.

use anyhow::Context;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use tributary_store::MasterKey;

/// Where the worker finds its store.
pub enum StoreLocation {
    DataDir(PathBuf),
    Url(String),
}

/// The emulated provider a process syncs from.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub google_api_url: &'a str,
    pub reference_now_ms: i64,
}

pub struct WorkerProcess {
    pub child: Child,
}

impl WorkerProcess {
    pub fn spawn(
        location: &StoreLocation,
        key: &MasterKey,
        google_api_url: &str,
        reference_now_ms: i64,
        worker_id: &str,
        poll_seconds: u64,
    ) -> anyhow::Result<Self> {
        let target = Target {
            google_api_url,
            reference_now_ms,
        };
        Self::spawn_command(
            "worker",
            location,
            key,
            &target,
            worker_id,
            poll_seconds,
            &[],
        )
    }

    /// `tributary <subcommand>` (`worker`, or `serve` with its scheduler) with `extra`
    /// arguments (concurrency, pacing budgets, listen address).
    pub fn spawn_command(
        subcommand: &str,
        location: &StoreLocation,
        key: &MasterKey,
        target: &Target<'_>,
        worker_id: &str,
        poll_seconds: u64,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        let Target {
            google_api_url,
            reference_now_ms,
        } = *target;
        let exe = std::env::current_exe().context("cannot find this program to run workers")?;
        let mut command = Command::new(exe);
        command.arg(subcommand);
        match location {
            StoreLocation::DataDir(dir) => command.arg("--data-dir").arg(dir),
            StoreLocation::Url(url) => command.arg("--database-url").arg(url),
        };
        let child = command
            .args(["--google-api-url", google_api_url])
            .args(["--reference-now-ms", &reference_now_ms.to_string()])
            .args(["--worker-id", worker_id])
            .args(["--poll-seconds", &poll_seconds.to_string()])
            .args(extra)
            .env("TRIBUTARY_MASTER_KEY", key.to_base64())
            // `TRIBUTARY_BENCH_PROCESS_LOG` (e.g. `tributary_sync=debug`) follows the
            // spawned processes' jobs and pacing when a row needs explaining.
            .env(
                "TRIBUTARY_LOG",
                std::env::var("TRIBUTARY_BENCH_PROCESS_LOG").unwrap_or_else(|_| "warn".to_owned()),
            )
            .env_remove("TRIBUTARY_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start a `tributary worker` process")?;
        Ok(WorkerProcess { child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the worker already exited (it should run until stopped).
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            anyhow::bail!("a `tributary worker` process exited early: {status}");
        }
        Ok(())
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
