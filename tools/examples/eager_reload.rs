//! Loads every `A` with `selectinload(A::C.bs)` again and again on one pooled connection and
//! prints each run's time: the steady state of a long-lived service, which the benchmark (one
//! run per connection) does not show. Before eager loads ran as unnamed statements, runs six
//! and later took 450 ms instead of 50 ms (PostgreSQL's generic plan for `= ANY($1)`).
//!
//! `cargo run --release -p session-tools --example eager_reload -- [RUNS]`

use session_core::{AsyncSession, Collection, Engine, Obj, select, selectinload};
use session_tools::model::{A, B, seed_metadata};
use session_tools::pg::Cluster;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: u32 = std::env::args().nth(1).map_or(Ok(12), |a| a.parse())?;
    let cluster = tokio::task::spawn_blocking(Cluster::start).await??;
    let url = cluster.create_database("eager_reload").await?;
    let engine = Engine::builder(url).pool_size(1).build()?;
    let md = seed_metadata();
    engine.transaction(async |c| md.create_all(c).await).await?;
    let s = AsyncSession::new(engine.clone());
    let parents: Vec<Obj<A>> = (0..10_000)
        .map(|i| {
            let bs = (0..2)
                .map(|k| {
                    Obj::new(B {
                        data: format!("b{i}.{k}"),
                        ..B::default()
                    })
                })
                .collect();
            Obj::new(A {
                data: format!("a{i}"),
                bs: Collection::from_vec(bs),
                ..A::default()
            })
        })
        .collect();
    s.add_all(&parents)?;
    s.commit().await?;
    s.close().await;
    drop(parents);
    for run in 1..=runs {
        let started = std::time::Instant::now();
        let s = AsyncSession::new(engine.clone());
        let stmt = select::<A>()
            .options(selectinload(A::C.bs))
            .order_by(A::C.id.asc());
        let loaded = s.scalars(stmt).await?.all();
        assert_eq!(loaded.len(), 10_000);
        drop(loaded);
        s.close().await;
        println!("run {run:2}: {:?}", started.elapsed());
    }
    // The per-object cost of the session: 10,000 `A`s as session objects, and as plain
    // structs decoded from the same rows by hand (fastest of RUNS each).
    let (mut ours, mut hand) = (std::time::Duration::MAX, std::time::Duration::MAX);
    for _ in 0..runs {
        let started = std::time::Instant::now();
        let s = AsyncSession::new(engine.clone());
        let loaded = s.scalars(select::<A>()).await?.all();
        drop(loaded);
        s.close().await;
        ours = ours.min(started.elapsed());
        let started = std::time::Instant::now();
        let mut conn = engine.connect().await?;
        let rows = conn
            .query(
                "SELECT \"a\".\"id\", \"a\".\"data\", \"a\".\"create_date\" FROM \"a\"",
                &[],
            )
            .await?;
        let plain: Vec<(i32, String, Option<chrono::NaiveDateTime>)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        drop((rows, plain));
        conn.close().await;
        hand = hand.min(started.elapsed());
    }
    println!("10,000 rows: session objects {ours:?}, hand-decoded {hand:?}");
    engine.dispose().await;
    Ok(())
}
