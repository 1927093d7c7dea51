//! `bench-peers`: the session bench's workloads on five sides in one run on one throwaway
//! cluster: the session ("ours"), the hand-written tokio-postgres baseline ("hand"), and the
//! libraries a Rust user would pick instead: sqlx, SeaORM and diesel-async, each written the
//! way its docs recommend. Every side gets a fresh database per run and runs the workloads in
//! the bench's order; after each workload an untimed check counts what it left in the
//! database. Prints medians with ratios against the hand-written side and writes
//! `docs/bench-peers.json` and a chart, `docs/bench-peers.svg`.
//!
//! ```text
//! cd bench-peers && cargo run --release -- --n 10000 --repeat 3
//! ```
// The session side's future nests the bench's workloads deeply (as in session-tools).
#![recursion_limit = "256"]

mod check;
mod diesel;
mod report;
mod seaorm;
mod sqlx;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use session_tools::bench::peers;
use session_tools::pg::Cluster;

/// The session bench against sqlx, SeaORM and diesel-async.
#[derive(Parser)]
#[command(name = "bench-peers")]
struct Cli {
    /// Objects per workload.
    #[arg(long, default_value_t = 10_000)]
    n: usize,
    /// Runs of each workload (fresh databases each time); the table shows medians.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Where to write the JSON (default: `docs/bench-peers.json` at the repository root).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Where to write the chart (default: `docs/bench-peers.svg` at the repository root).
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Only these sides, comma-separated (default: all of hand, ours, sqlx, sea-orm,
    /// diesel-async); ratios need `hand`.
    #[arg(long, value_delimiter = ',')]
    sides: Vec<String>,
}

/// The sides, in the table's order.
pub const SIDES: [&str; 5] = ["hand", "ours", "sqlx", "sea-orm", "diesel-async"];

/// One side on its own database.
enum Side {
    Hand(peers::Hand),
    Ours(peers::Ours),
    Sqlx(crate::sqlx::Side),
    SeaOrm(crate::seaorm::Side),
    Diesel(crate::diesel::Side),
}

impl Side {
    /// Side `index` of [`SIDES`] on a fresh database; returns it and the database's URL.
    async fn new(
        index: usize,
        cluster: &Cluster,
        run: usize,
        n: usize,
    ) -> Result<(Self, String), String> {
        let name = format!("peers_{}_{run}", SIDES[index].replace('-', "_"));
        Ok(match index {
            0 => {
                let side = peers::Hand::new(cluster, &name, n).await?;
                let url = side.url().to_string();
                (Side::Hand(side), url)
            }
            1 => {
                let side = peers::Ours::new(cluster, &name, n).await?;
                let url = side.url().to_string();
                (Side::Ours(side), url)
            }
            _ => {
                let url = peers::fresh_database(cluster, &name, n).await?;
                let side = match index {
                    2 => Side::Sqlx(crate::sqlx::Side::new(&url).await?),
                    3 => Side::SeaOrm(crate::seaorm::Side::new(&url).await?),
                    _ => Side::Diesel(crate::diesel::Side::new(&url).await?),
                };
                (side, url)
            }
        })
    }

    async fn step(&self, step: usize, n: usize) -> Result<Duration, String> {
        match self {
            Side::Hand(s) => s.step(step, n).await,
            Side::Ours(s) => s.step(step, n).await,
            Side::Sqlx(s) => s.step(step, n).await,
            Side::SeaOrm(s) => s.step(step, n).await,
            Side::Diesel(s) => s.step(step, n).await,
        }
    }

    /// Opens each side's 10 pooled connections before the first timed workload, so that no
    /// side pays for connecting inside one (request_mix is the first to use them all).
    async fn warm(&self) -> Result<(), String> {
        match self {
            Side::Hand(s) => s.warm().await,
            Side::Ours(s) => s.warm().await,
            Side::Sqlx(s) => s.warm().await,
            Side::SeaOrm(s) => s.warm().await,
            Side::Diesel(s) => s.warm().await,
        }
    }

    async fn dispose(self) {
        match self {
            Side::Ours(s) => s.dispose().await,
            Side::Sqlx(s) => s.dispose().await,
            Side::SeaOrm(s) => s.dispose().await,
            Side::Hand(_) | Side::Diesel(_) => {}
        }
    }
}

/// Checks out all 10 connections of a sqlx pool at once and uses each (sqlx and SeaORM).
pub(crate) async fn warm_sqlx(pool: &::sqlx::PgPool) -> Result<(), String> {
    let conns = futures::future::try_join_all((0..10).map(|_| async {
        let mut conn = pool.acquire().await?;
        ::sqlx::query("SELECT 1").execute(&mut *conn).await?;
        Ok::<_, ::sqlx::Error>(conn)
    }))
    .await
    .map_err(|e| format!("warming a sqlx pool: {e}"))?;
    drop(conns);
    Ok(())
}

/// request_mix's driver, as the bench's: one task per key, 16 running at a time.
pub(crate) async fn concurrently<F, Fut>(ids: Vec<i32>, request: F) -> Result<(), String>
where
    F: Fn(i32) -> Fut,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let gate = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = Vec::with_capacity(ids.len());
    for id in ids {
        let gate = gate.clone();
        let work = request(id);
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await;
            work.await
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

async fn run(cli: &Cli) -> Result<report::Report, String> {
    let chosen: Vec<usize> = if cli.sides.is_empty() {
        (0..SIDES.len()).collect()
    } else {
        cli.sides
            .iter()
            .map(|name| {
                SIDES
                    .iter()
                    .position(|s| s == name)
                    .ok_or_else(|| format!("no side `{name}`; the sides are {}", SIDES.join(", ")))
            })
            .collect::<Result<_, _>>()?
    };
    let cluster = tokio::task::spawn_blocking(Cluster::start)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let mut report = report::Report::new(cli.n);
    for run in 0..cli.repeat.max(1) {
        let mut sides = Vec::with_capacity(chosen.len());
        for &index in &chosen {
            sides.push(Side::new(index, &cluster, run, cli.n).await?);
        }
        for (side, _) in &sides {
            side.warm().await?;
        }
        for step in 0..peers::WORKLOADS.len() {
            // The side going first rotates by run, so that drift hits every side alike.
            for k in 0..chosen.len() {
                let at = (k + run) % chosen.len();
                let index = chosen[at];
                let (side, url) = &sides[at];
                let time = side
                    .step(step, cli.n)
                    .await
                    .map_err(|e| format!("{} {}: {e}", SIDES[index], peers::WORKLOADS[step]))?;
                check::check(url, SIDES[index], step, cli.n).await?;
                report.record(run, step, index, time);
            }
        }
        for (side, _) in sides {
            side.dispose().await;
        }
        eprintln!("run {} of {} done", run + 1, cli.repeat.max(1));
    }
    Ok(report)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(&cli).await {
        Ok(report) => {
            print!("{}", report.table());
            let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/");
            let outputs = [
                (cli.json.clone(), "bench-peers.json", report.json()),
                (cli.svg.clone(), "bench-peers.svg", report.svg()),
            ];
            for (path, default, text) in outputs {
                let path = path.unwrap_or_else(|| PathBuf::from(docs).join(default));
                if let Err(e) = std::fs::write(&path, text) {
                    eprintln!("writing {}: {e}", path.display());
                    return std::process::ExitCode::FAILURE;
                }
                eprintln!("wrote {}", path.display());
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-peers: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
