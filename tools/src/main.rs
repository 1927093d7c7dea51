//! `session-tools`: the demo, a throwaway PostgreSQL, and the proxy expansion printer.
// The bench future nests the workloads of both sides, the replicas and PgBouncer deeply.
#![recursion_limit = "256"]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use session_tools::pg::Cluster;

/// Tools for the Rust port of SQLAlchemy's session stack.
#[derive(Parser)]
#[command(name = "session-tools", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the demo on a throwaway PostgreSQL (or DATABASE_URL).
    Demo {
        /// Print every SQL statement with its parameters, as SQLAlchemy's `echo=True` does.
        #[arg(long)]
        echo: bool,
    },
    /// Start a throwaway PostgreSQL, print its DATABASE_URL, and keep it until Ctrl-C.
    Pg,
    /// Print or regenerate the expansion of #[proxy_methods] (stable toolchain, no cargo
    /// expand needed).
    Proxy {
        #[command(subcommand)]
        command: ProxyCmd,
    },
    /// Run the seed workloads on the session and on hand-written tokio-postgres (and, with
    /// --sqla, on SQLAlchemy), and print seconds, ratios and peak memory.
    Bench {
        /// Objects per workload.
        #[arg(long, default_value_t = 10_000)]
        n: usize,
        /// Rows for the streaming workload.
        #[arg(long, default_value_t = 1_000_000)]
        stream_rows: usize,
        /// Write the results as JSON to this file.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
        /// Write a chart (SVG) to this file.
        #[arg(long)]
        svg: Option<std::path::PathBuf>,
        /// Also run SQLAlchemy's sqla_bench.py (needs `pip install sqlalchemy asyncpg`).
        #[arg(long)]
        sqla: Option<std::path::PathBuf>,
        /// Runs of each workload; the table shows medians.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Objects of memory_load (a session's load against plain structs; 0 skips it).
        #[arg(long, default_value_t = 100_000)]
        memory_n: usize,
        /// Skip replica_reads (which starts a primary and a streaming standby of its own).
        #[arg(long)]
        no_replica: bool,
        /// Instead of the workloads: insert_flush, load_eager and update_dirty at each of
        /// these N (comma-separated), seconds per object at each.
        #[arg(long, value_delimiter = ',')]
        sizes: Vec<usize>,
        /// Run only these workloads (comma-separated names, as in the table; insert_flush, which
        /// writes the rows the others read, always runs), for profiling
        /// one of them; the memory and replica sections have their own flags.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// One side of the bench's memory_load, in a process of its own (run by `bench`).
    #[command(hide = true)]
    BenchMemorySide {
        /// `ours` or `plain`.
        #[arg(long)]
        side: String,
        /// The database with the rows.
        #[arg(long)]
        url: String,
        /// The rows it holds.
        #[arg(long)]
        n: usize,
    },
}

#[derive(Subcommand)]
enum ProxyCmd {
    /// Print the formatted expansion of every #[proxy_methods] in FILE; targets are looked up
    /// in FILE and in the --target files.
    Expand {
        /// The file with the #[proxy_methods] blocks.
        file: std::path::PathBuf,
        /// Files with the targets' #[publish_signatures] blocks.
        #[arg(long = "target")]
        targets: Vec<std::path::PathBuf>,
        /// Instead of printing, compare with this committed snapshot and fail when it is
        /// stale (for CI).
        #[arg(long)]
        check: Option<std::path::PathBuf>,
    },
    /// Regenerate the committed snapshot of async_scoped_session's proxy block.
    Write,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Cmd::Demo { echo } => demo(echo).await,
            Cmd::Pg => pg().await,
            Cmd::Proxy { command } => proxy(command),
            Cmd::Bench {
                n,
                stream_rows,
                json,
                svg,
                sqla,
                repeat,
                memory_n,
                no_replica,
                sizes,
                only,
            } => {
                let options = session_tools::bench::Options {
                    n,
                    stream_rows,
                    sqla,
                    repeat,
                    memory_n,
                    replica_reads: !no_replica,
                    only,
                };
                if sizes.is_empty() {
                    bench(&options, json, svg).await
                } else {
                    scaling(&sizes, json).await
                }
            }
            Cmd::BenchMemorySide { side, url, n } => {
                match session_tools::bench::memory_side(&side, &url, n).await {
                    Ok(growth) => {
                        println!("{} {}", growth.rss_kb, growth.peak_kb);
                        Ok(())
                    }
                    Err(e) => Err(e.into()),
                }
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type AnyResult = Result<(), Box<dyn std::error::Error>>;

async fn demo(echo: bool) -> AnyResult {
    if echo {
        tracing_subscriber::fmt()
            .with_env_filter("session_core::echo=info")
            .with_target(false)
            .without_time()
            .init();
    }
    let cluster = tokio::task::spawn_blocking(Cluster::start).await??;
    let url = cluster.create_database("demo").await?;
    let mut out = std::io::stdout();
    session_tools::demo::run(&url, echo, &mut out).await?;
    Ok(())
}

async fn bench(
    options: &session_tools::bench::Options,
    json: Option<std::path::PathBuf>,
    svg: Option<std::path::PathBuf>,
) -> AnyResult {
    let report = session_tools::bench::run(options).await?;
    print!("{}", report.table());
    if let Some(path) = json {
        std::fs::write(path, report.json())?;
    }
    if let Some(path) = svg {
        std::fs::write(path, report.svg())?;
    }
    Ok(())
}

async fn scaling(sizes: &[usize], json: Option<std::path::PathBuf>) -> AnyResult {
    let scaling = session_tools::bench::scaling(sizes).await?;
    print!("{}", scaling.table());
    if let Some(path) = json {
        std::fs::write(path, scaling.json())?;
    }
    Ok(())
}

fn proxy(command: ProxyCmd) -> AnyResult {
    match command {
        ProxyCmd::Expand {
            file,
            targets,
            check,
        } => {
            let expansion = session_tools::proxy::expand_files(&targets, &file)?;
            match check {
                Some(snapshot) => {
                    session_tools::proxy::check(&snapshot, &expansion)?;
                    eprintln!("{} is current", snapshot.display());
                }
                None => print!("{expansion}"),
            }
        }
        ProxyCmd::Write => {
            let root = session_tools::proxy::workspace_root();
            let text = session_tools::proxy::scoped_snapshot(&root)?;
            let path = root.join(session_tools::proxy::SNAPSHOT);
            std::fs::write(&path, text)?;
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}

async fn pg() -> AnyResult {
    let cluster = tokio::task::spawn_blocking(Cluster::start_owned).await??;
    println!("DATABASE_URL={}", cluster.url());
    eprintln!(
        "started in {:.2} s; Ctrl-C stops the server and deletes its files",
        cluster.started_in().as_secs_f64()
    );
    tokio::signal::ctrl_c().await?;
    drop(cluster);
    Ok(())
}
