//! N sequential lookups by key, on the session (`ours`) or on plain tokio-postgres (`hand`),
//! in one transaction each, for `strace -c` / `perf` of the per-statement cost of a `get`.
//!
//! `cargo run --release -p session-tools --example get_loop -- ours|hand [N]`

use session_core::tokio_postgres::{self, NoTls};
use session_core::{AsyncSession, Engine};
use session_tools::model::{A, seed_metadata};
use session_tools::pg::Cluster;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let side = std::env::args().nth(1).unwrap_or_else(|| "ours".into());
    let n: i32 = std::env::args().nth(2).map_or(Ok(2000), |a| a.parse())?;
    let cluster = tokio::task::spawn_blocking(Cluster::start).await??;
    let url = cluster.create_database("get_loop").await?;
    let engine = Engine::builder(url.clone())
        .pool_size(1)
        .test_on_checkout(false)
        .build()?;
    let md = seed_metadata();
    engine.transaction(async |c| md.create_all(c).await).await?;
    engine
        .transaction(async |c| {
            c.batch_execute(&format!(
                "INSERT INTO a (data) SELECT 'a' || g FROM generate_series(1, {n}) g"
            ))
            .await
        })
        .await?;
    eprintln!("ready");
    let started = std::time::Instant::now();
    if side == "ours" {
        let s = AsyncSession::new(engine.clone());
        let mut held = Vec::new();
        for i in 1..=n {
            held.push(s.get_one::<A>(i).await?);
        }
        s.commit().await?;
    } else {
        let (mut client, conn) = url
            .parse::<tokio_postgres::Config>()?
            .connect(NoTls)
            .await?;
        tokio::spawn(conn);
        let tx = client.transaction().await?;
        let st = tx
            .prepare("SELECT id, data, create_date FROM a WHERE id = $1")
            .await?;
        for i in 1..=n {
            tx.query_one(&st, &[&i]).await?;
        }
        tx.commit().await?;
    }
    eprintln!("{side}: {:?} per get", started.elapsed() / n as u32);
    Ok(())
}
