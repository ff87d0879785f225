//! `tributary bench`: capture speed against the quota limit, pipeline cost and scale
//! (issue 7), measured the same way every time. One table, printed as Markdown and
//! written as JSON. Figures are measurements, never checked here: the exit status is 1
//! only when a benchmark failed to run or a capture differs from the ground truth.

mod backfill;
mod emulated;
mod idle;
mod incremental;
mod pipeline;
mod postgres;
mod process;
mod product;
mod report;
mod scale_out;
mod workers;

use super::demo::verify;
use super::signal::async_runtime;
use clap::Args;
use report::{Machine, Report, Row, Status};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use tokio::runtime::Handle;

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Smaller organizations and shorter windows (under two minutes), e.g. for CI.
    #[arg(long)]
    pub quick: bool,
    /// Where the table is written as JSON.
    #[arg(long, default_value = "target/bench/bench.json")]
    pub out: PathBuf,
    /// PostgreSQL server for the pipeline and scale-out rows: a uniquely named database
    /// is created (with psql) and dropped. Rows are skipped when it is not reachable.
    #[arg(long, env = "TRIBUTARY_BENCH_POSTGRES_URL", default_value = DEFAULT_POSTGRES_URL)]
    pub postgres_url: String,
    /// Run only these rows (1 pipeline, 2 against the quota, 3 unthrottled, 4
    /// incremental, 5 idle scale, 6 scale-out, 7 through `serve` and `worker`), e.g.
    /// `--only 2,3`.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<u8>,
}

/// Sizes of every row, quick or full.
struct Plan {
    pipeline: pipeline::Sizes,
    backfill: backfill::Sizes,
    incremental: incremental::Sizes,
    idle: idle::Sizes,
    scale_out: scale_out::Sizes,
    product: product::Sizes,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Plan {
                pipeline: pipeline::Sizes {
                    users: 12,
                    messages_per_user: 1_000,
                },
                backfill: backfill::Sizes {
                    users: 10,
                    messages_per_user: 1_000,
                    target_seconds: 10.0,
                },
                incremental: incremental::Sizes { deliveries: 5 },
                idle: idle::Sizes {
                    mailboxes: 1_000,
                    poll_seconds: 20,
                },
                scale_out: scale_out::Sizes {
                    users: 10,
                    messages_per_user: 500,
                },
                product: product::Sizes {
                    users: 20,
                    messages_per_user: 300,
                    target_seconds: 10.0,
                    concurrencies: vec![4, 16],
                    deliveries: 3,
                },
            }
        } else {
            Plan {
                pipeline: pipeline::Sizes {
                    users: 25,
                    messages_per_user: 4_000,
                },
                backfill: backfill::Sizes {
                    users: 16,
                    messages_per_user: 2_500,
                    target_seconds: 60.0,
                },
                incremental: incremental::Sizes { deliveries: 20 },
                idle: idle::Sizes {
                    mailboxes: 10_000,
                    poll_seconds: 300,
                },
                scale_out: scale_out::Sizes {
                    users: 16,
                    messages_per_user: 2_000,
                },
                product: product::Sizes {
                    users: 110,
                    messages_per_user: 400,
                    target_seconds: 60.0,
                    concurrencies: vec![4, 16, 64],
                    deliveries: 10,
                },
            }
        }
    }
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let emulator_runtime = emulated::emulator_runtime()?;
    let emulator_threads = emulator_runtime.handle().clone();
    let report = async_runtime()?.block_on(bench(&args, &emulator_threads));
    // Dropped here, outside any async context, as tokio requires.
    drop(emulator_runtime);
    println!("{}", report.markdown());
    report.write_json(&args.out)?;
    eprintln!("wrote {}", args.out.display());
    Ok(exit_code(&report.rows))
}

async fn bench(args: &BenchArgs, emulator_threads: &Handle) -> Report {
    let started = Instant::now();
    let started_unix_ms = tributary_emulator::server::app::now_ms();
    let plan = Plan::new(args.quick);
    let wanted = |row: u8| args.only.is_empty() || args.only.contains(&row);
    let mut rows: Vec<Row> = Vec::new();
    let mut progress = |name: &str, new: Vec<Row>| {
        eprintln!(
            "bench: {name} done after {:.0} s",
            started.elapsed().as_secs_f64()
        );
        rows.extend(new);
    };
    if wanted(1) {
        progress(
            "pipeline",
            pipeline::run(&plan.pipeline, &args.postgres_url).await,
        );
    }
    if wanted(2) || wanted(3) {
        let backfill = backfill::run(emulator_threads, &plan.backfill).await;
        let backfill = backfill.into_iter().filter(|r| wanted(r.number)).collect();
        progress("against the quota and unthrottled", backfill);
    }
    if wanted(4) {
        progress(
            "incremental",
            vec![incremental::run(emulator_threads, &plan.incremental).await],
        );
    }
    if wanted(6) {
        progress(
            "scale-out",
            scale_out::run(emulator_threads, &plan.scale_out, &args.postgres_url).await,
        );
    }
    if wanted(7) {
        progress(
            "through the product",
            product::run(emulator_threads, &plan.product, &args.postgres_url).await,
        );
    }
    if wanted(5) {
        progress(
            "idle scale",
            vec![idle::run(emulator_threads, &plan.idle).await],
        );
    }
    rows.sort_by_key(|row| row.number);
    Report {
        quick: args.quick,
        started_unix_ms,
        seconds: started.elapsed().as_secs_f64(),
        machine: Machine::describe(),
        rows,
    }
}

/// 1 when a row failed or a capture differs from the ground truth; skipped rows are fine.
fn exit_code(rows: &[Row]) -> ExitCode {
    let failed = rows
        .iter()
        .any(|row| matches!(row.status, Status::Failed(_)));
    let unequal = rows.iter().any(|row| {
        row.figure("equals_ground_truth")
            .is_some_and(|f| f.value == serde_json::Value::Bool(false))
    });
    if failed {
        eprintln!("error: a benchmark failed (see FAILED in the table)");
    }
    if unequal {
        eprintln!("error: a capture differs from the ground truth (see the notes)");
    }
    if failed || unequal {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
