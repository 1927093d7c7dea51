//! request_mix on one side only (`ours`: the task's scoped session; `hand`: plain
//! tokio-postgres), N requests 16 at a time on a pool of 10, with the process's CPU time:
//! for `perf record` of one side of the bench's request_mix.
//!
//! `cargo run --release -p session-tools --example request_loop -- ours|hand [N]`

use std::sync::Arc;

use session_core::tokio_postgres::{self, NoTls, types::Type};
use session_core::{Engine, async_sessionmaker};
use session_scoped::{async_scoped_session, scope};
use session_tools::model::{A, seed_metadata};
use session_tools::pg::Cluster;

fn cpu_ticks() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let v: Vec<&str> = s
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    (
        v.get(11).and_then(|x| x.parse().ok()).unwrap_or(0),
        v.get(12).and_then(|x| x.parse().ok()).unwrap_or(0),
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let side = std::env::args().nth(1).unwrap_or_else(|| "ours".into());
    let n: i32 = std::env::args().nth(2).map_or(Ok(20_000), |a| a.parse())?;
    let cluster = tokio::task::spawn_blocking(Cluster::start).await??;
    let url = cluster.create_database("request_loop").await?;
    let engine = Engine::builder(url.clone())
        .pool_size(10)
        .test_on_checkout(false)
        .build()?;
    let md = seed_metadata();
    engine.transaction(async |c| md.create_all(c).await).await?;
    engine
        .transaction(async |c| {
            c.batch_execute("INSERT INTO a (data) SELECT 'a' || g FROM generate_series(1, 1000) g")
                .await
        })
        .await?;
    let gate = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = Vec::new();
    let (u0, s0) = cpu_ticks();
    let started = std::time::Instant::now();
    if side == "ours" {
        let maker = async_sessionmaker(engine.clone()).expire_on_commit(false);
        let scoped = Arc::new(async_scoped_session(maker, scope::task_scope));
        for i in 0..n {
            let (scoped, gate) = (scoped.clone(), gate.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire().await;
                scoped
                    .scope(async {
                        let s = scoped.proxied();
                        let a = s.get_one::<A>(i % 1000 + 1).await?;
                        a.write()?.data = "r".into();
                        s.commit().await
                    })
                    .await
                    .map_err(|e| e.to_string())
            }));
        }
    } else {
        let config: tokio_postgres::Config = url.parse()?;
        let mut clients = Vec::new();
        for _ in 0..10 {
            let (client, conn) = config.connect(NoTls).await?;
            tokio::spawn(conn);
            clients.push(Arc::new(tokio::sync::Mutex::new(client)));
        }
        for i in 0..n {
            let (client, gate) = (clients[i as usize % 10].clone(), gate.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire().await;
                let mut client = client.lock().await;
                let tx = client.transaction().await.map_err(|e| e.to_string())?;
                let id = i % 1000 + 1;
                tx.query_typed(
                    "SELECT id, data, create_date FROM a WHERE id = $1",
                    &[(&id, Type::INT4)],
                )
                .await
                .map_err(|e| e.to_string())?;
                tx.query_typed(
                    "UPDATE a SET data = $2 WHERE id = $1",
                    &[(&id, Type::INT4), (&"r", Type::VARCHAR)],
                )
                .await
                .map_err(|e| e.to_string())?;
                tx.commit().await.map_err(|e| e.to_string())
            }));
        }
    }
    for t in tasks {
        t.await??;
    }
    let (u1, s1) = cpu_ticks();
    eprintln!(
        "{side}: {:?} for {n} requests; client CPU user {} ms, sys {} ms",
        started.elapsed(),
        (u1 - u0) * 10,
        (s1 - s0) * 10
    );
    Ok(())
}
