//! Seed 003: `async_scoped_session` scoped to the current task, `remove()` at each task's end.
//! `cargo run -p session-tools --example seed_003_scoped_session`

use session_tools::{pg::Cluster, seeds};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = tokio::task::spawn_blocking(Cluster::start).await??;
    let url = cluster.create_database("seed_003").await?;
    seeds::create_schema(&url).await?;
    let (registered, rows) = seeds::seed_003_scoped_session(&url).await?;
    println!("{rows} rows written; {registered} sessions left registered");
    Ok(())
}
