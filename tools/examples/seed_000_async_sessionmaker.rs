//! Seed 000: an `async_sessionmaker` passed to the functions that need sessions.
//! `cargo run -p session-tools --example seed_000_async_sessionmaker`

use session_tools::{pg::Cluster, seeds};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = tokio::task::spawn_blocking(Cluster::start).await??;
    let url = cluster.create_database("seed_000").await?;
    seeds::create_schema(&url).await?;
    let stored = seeds::seed_000_async_sessionmaker(&url).await?;
    println!("run_some_sql stored {stored} objects");
    Ok(())
}
