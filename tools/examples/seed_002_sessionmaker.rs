//! Seed 002: the blocking `sessionmaker` forms (`with Session()`, try/finally, `Session.begin()`,
//! `Session(bind=connection)`, `configure(bind=...)` later).
//! `cargo run -p session-tools --example seed_002_sessionmaker`

use session_tools::{pg::Cluster, seeds};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = Cluster::start()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let url = runtime.block_on(cluster.create_database("seed_002"))?;
    runtime.block_on(seeds::create_schema(&url))?;
    drop(runtime);
    for data in seeds::seed_002_sessionmaker(&url)? {
        println!("{data}");
    }
    Ok(())
}
