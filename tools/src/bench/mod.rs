//! `session-tools bench`: the seed workloads on the session, against hand-written
//! tokio-postgres doing the same database work, in one process on one cluster (and, with
//! `--sqla`, SQLAlchemy's asyncio ORM on the same cluster).

mod graph;
mod hand;
mod memory;
pub mod peers;
mod replica;
mod report;
mod scaling;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use session_core::{
    AsyncSessionMaker, Collection, Engine, Obj, Result, async_sessionmaker, select, selectinload,
};
use session_scoped::{async_scoped_session, scope};

use crate::model::{A, B, seed_metadata};
use crate::pg::Cluster;
pub use memory::{Growth, Memory, side as memory_side};
pub use replica::ReplicaReads;
pub use report::{Measurement, Report};
pub use scaling::{Point, Scaling, run as scaling};

/// Benchmark options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Objects per workload (the issue's N).
    pub n: usize,
    /// Rows streamed by the `stream` workload.
    pub stream_rows: usize,
    /// Path of `sqla_bench.py`, to run SQLAlchemy on the same cluster.
    pub sqla: Option<std::path::PathBuf>,
    /// Runs of every workload (fresh databases each time); the report shows medians.
    pub repeat: usize,
    /// Objects of memory_load (0: skipped).
    pub memory_n: usize,
    /// Run replica_reads (starts a primary and a streaming standby of its own).
    pub replica_reads: bool,
    /// Workloads to run (their names in the report); empty: all of them.
    pub only: Vec<String>,
}

impl Options {
    /// True when workload `name` is to run.
    fn runs(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == name)
    }
}

/// The names of [`ours_step`]'s workloads, by step.
const STEP_NAMES: [&str; STEPS] = [
    "insert_flush",
    "load_eager",
    "get_by_pk",
    "update_dirty",
    "request_mix",
    "get_many",
    "graph_flush",
    "request_serial",
];

/// Requests request_mix runs at once (on a pool of 10): the 2-core machine's CPU, shared with
/// PostgreSQL, is the limit then, not round trips.
const MIX_AT_ONCE: usize = 16;

/// Peak resident memory since the last reset, and now (kB, from /proc/self/status).
fn rss_kb() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Resets the kernel's peak-RSS counter, so that the next reading is this workload's peak.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Runs `work`; returns its time and the growth of peak RSS in MB (for both sides: the
/// session's errors and the hand-written side's strings).
async fn timed<T, E>(
    work: impl std::future::Future<Output = std::result::Result<T, E>>,
) -> std::result::Result<(Duration, f64), E> {
    reset_peak();
    let before = rss_kb().1;
    let started = Instant::now();
    work.await?;
    let elapsed = started.elapsed();
    let peak = rss_kb().0;
    Ok((elapsed, peak.saturating_sub(before) as f64 / 1024.0))
}

async fn fresh_engine(
    cluster: &Cluster,
    name: &str,
    n: usize,
) -> std::result::Result<Engine, String> {
    let url = cluster
        .create_database(name)
        .await
        .map_err(|e| e.to_string())?;
    let engine = Engine::builder(url)
        .pool_size(10)
        .test_on_checkout(false)
        .build()
        .map_err(|e| e.to_string())?;
    let md = seed_metadata();
    let graph = graph::metadata();
    let seed = graph::seed_sql(graph_chains(n));
    engine
        .transaction(async |conn| {
            md.create_all(conn).await?;
            graph.create_all(conn).await?;
            conn.batch_execute(&seed).await
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(engine)
}

/// Deterministic ids for request_mix (the same sequence for both sides).
fn request_ids(n: usize) -> Vec<i32> {
    let mut x: u64 = 7;
    (0..n / 5)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as i32 + 1
        })
        .collect()
}

fn seed_objects(n: usize) -> Vec<Obj<A>> {
    (0..n)
        .map(|i| {
            Obj::new(A {
                data: format!("a{i}"),
                bs: Collection::from_vec(
                    [1, 2]
                        .map(|k| {
                            Obj::new(B {
                                data: format!("b{i}.{k}"),
                                ..B::default()
                            })
                        })
                        .into(),
                ),
                ..A::default()
            })
        })
        .collect()
}

/// Workloads 1–5, get_many, graph_flush and request_serial, compared with the hand-written
/// side one by one.
const STEPS: usize = 8;

/// New chains of four rows graph_flush adds (and shelves it renames, slots it deletes).
fn graph_chains(n: usize) -> usize {
    (n / 10).max(1)
}

/// The keys `get_many` asks for: every row, last first (so that order matters).
fn many_keys(n: usize) -> Vec<i32> {
    (1..=n as i32).rev().collect()
}

/// Workload `step` (0-based: insert_flush, load_eager, get_by_pk, update_dirty, request_mix,
/// get_many, graph_flush) on the session.
async fn ours_step(
    step: usize,
    maker: &AsyncSessionMaker,
    n: usize,
    report: &mut Report,
) -> Result<()> {
    match step {
        0 => {
            let (t, m) = timed(maker.scope(async |s| {
                let objs = seed_objects(n);
                s.add_all(&objs)?;
                s.commit().await
            }))
            .await?;
            report.ours("insert_flush", t, m);
        }
        1 => {
            let (t, m) = timed(maker.scope(async |s| {
                let rows = s
                    .scalars(
                        select::<A>()
                            .options(selectinload(A::C.bs))
                            .order_by(A::C.id.asc()),
                    )
                    .await?
                    .all();
                assert_eq!(rows.len(), n);
                for a in &rows {
                    assert_eq!(a.read()?.bs.get()?.len(), 2);
                }
                Ok(())
            }))
            .await?;
            report.ours("load_eager", t, m);
        }
        2 => {
            let (t, m) = timed(maker.scope(async |s| {
                // Held, as the hand-written side holds its map: the second loop hits the
                // identity map.
                let mut held = Vec::with_capacity(n);
                for i in 1..=n as i32 {
                    held.push(s.get_one::<A>(i).await?);
                }
                for i in 1..=n as i32 {
                    assert!(s.get::<A>(i).await?.is_some());
                }
                Ok(())
            }))
            .await?;
            report.ours("get_by_pk", t, m);
        }
        3 => {
            let (t, m) = timed(maker.scope(async |s| {
                for a in s.scalars(select::<A>()).await?.all() {
                    a.write()?.data.push('!');
                }
                s.commit().await
            }))
            .await?;
            report.ours("update_dirty", t, m);
        }
        5 => {
            let keys = many_keys(n);
            let (t, m) = timed(maker.scope(async |s| {
                let got = s.get_many::<A>(&keys).await?;
                assert!(got.iter().all(Option::is_some));
                Ok(())
            }))
            .await?;
            report.ours("get_many", t, m);
        }
        6 => {
            let (t, m) = timed(graph::ours(maker, graph_chains(n))).await?;
            report.ours("graph_flush", t, m);
        }
        7 => {
            let (t, m) = ours_request_mix(maker, n, 1).await?;
            report.ours("request_serial", t, m);
        }
        _ => {
            let (t, m) = ours_request_mix(maker, n, MIX_AT_ONCE).await?;
            report.ours("request_mix", t, m);
        }
    }
    Ok(())
}

/// request_mix on the session: `n / 5` requests, `at_once` at a time, each through the task's
/// scoped session: get one `A` by key, change it, commit. One at a time (request_serial), the
/// round trips are the cost: two here (BEGIN rides with the SELECT, COMMIT with the UPDATE),
/// four by hand.
async fn ours_request_mix(
    maker: &AsyncSessionMaker,
    n: usize,
    at_once: usize,
) -> Result<(Duration, f64)> {
    let scoped = Arc::new(async_scoped_session(maker.clone(), scope::task_scope));
    let ids = request_ids(n);
    let timing = timed(async {
        let gate = Arc::new(tokio::sync::Semaphore::new(at_once));
        let mut tasks = Vec::with_capacity(ids.len());
        for id in ids {
            let (scoped, gate) = (scoped.clone(), gate.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire().await;
                scoped
                    .scope(async {
                        let s = scoped.proxied();
                        let a = s.get_one::<A>(id).await?;
                        a.write()?.data = "r".into();
                        s.commit().await
                    })
                    .await
            }));
        }
        for task in tasks {
            task.await.expect("request task")?;
        }
        Ok(())
    })
    .await?;
    assert_eq!(scoped.registered(), 0);
    Ok(timing)
}

/// request_mix by hand, on `pool`, `at_once` at a time.
async fn hand_request_mix(
    pool: &hand::Pool,
    n: usize,
    at_once: usize,
) -> std::result::Result<(Duration, f64), String> {
    let ids = request_ids(n);
    timed(async {
        let gate = Arc::new(tokio::sync::Semaphore::new(at_once));
        let mut tasks = Vec::with_capacity(ids.len());
        for id in ids {
            let (pool, gate) = (pool.clone(), gate.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire().await;
                hand::request(&pool, id).await
            }));
        }
        for task in tasks {
            task.await.map_err(|e| e.to_string())??;
        }
        Ok(())
    })
    .await
}

/// request_mix through PgBouncer (transaction mode, `SERVER_POOL` server connections) on both
/// sides; the session's engine has its statement cache off, as PgBouncer needs.
async fn through_pgbouncer(
    bouncer: &crate::pg::pgbouncer::PgBouncer,
    ours_url: &str,
    hand_url: &str,
    n: usize,
    first: usize,
    report: &mut Report,
) -> std::result::Result<(), String> {
    let engine = Engine::builder(bouncer.through(ours_url))
        .pool_size(10)
        .test_on_checkout(false)
        .statement_cache_size(0)
        .build()
        .map_err(|e| e.to_string())?;
    let maker = async_sessionmaker(engine.clone()).expire_on_commit(false);
    let pool = hand::pool(&bouncer.through(hand_url), 10).await?;
    for side in [first, 1 - first] {
        if side == 0 {
            let (t, m) = hand_request_mix(&pool, n, MIX_AT_ONCE).await?;
            report.hand("request_mix_pgbouncer", t, m);
        } else {
            let (t, m) = ours_request_mix(&maker, n, MIX_AT_ONCE)
                .await
                .map_err(|e| e.to_string())?;
            report.ours("request_mix_pgbouncer", t, m);
        }
    }
    engine.dispose().await;
    Ok(())
}

/// Workload 6 on the session: sessions made and closed by a factory, no I/O.
async fn factory_overhead(maker: &AsyncSessionMaker, n: usize, report: &mut Report) -> Result<()> {
    let (t, m) = timed(async {
        for _ in 0..n * 10 {
            let s = maker.session();
            s.close().await;
        }
        Ok(())
    })
    .await?;
    report.ours("factory_overhead", t, m);
    Ok(())
}

/// Workload `step` (as in [`ours_step`]) written by hand on plain tokio-postgres.
async fn hand_step(
    step: usize,
    pool: &hand::Pool,
    n: usize,
    report: &mut Report,
) -> std::result::Result<(), String> {
    match step {
        0 => {
            let (t, m) = timed(hand::insert_flush(pool, n)).await?;
            report.hand("insert_flush", t, m);
        }
        1 => {
            let (t, m) = timed(async {
                let rows = hand::load_eager(pool).await?;
                assert_eq!(rows.len(), n);
                assert!(rows.iter().all(|a| a.bs.len() == 2));
                Ok::<(), String>(())
            })
            .await?;
            report.hand("load_eager", t, m);
        }
        2 => {
            let (t, m) = timed(hand::get_by_pk(pool, n as i32)).await?;
            report.hand("get_by_pk", t, m);
        }
        3 => {
            let (t, m) = timed(hand::update_dirty(pool)).await?;
            report.hand("update_dirty", t, m);
        }
        5 => {
            let keys = many_keys(n);
            let (t, m) = timed(async {
                let got = hand::get_many(pool, &keys).await?;
                assert!(got.iter().all(Option::is_some));
                Ok::<(), String>(())
            })
            .await?;
            report.hand("get_many", t, m);
        }
        6 => {
            let (t, m) = timed(graph::hand(pool, graph_chains(n))).await?;
            report.hand("graph_flush", t, m);
        }
        7 => {
            let (t, m) = hand_request_mix(pool, n, 1).await?;
            report.hand("request_serial", t, m);
        }
        _ => {
            let (t, m) = hand_request_mix(pool, n, MIX_AT_ONCE).await?;
            report.hand("request_mix", t, m);
        }
    }
    Ok(())
}

/// A wrapper whose `autoflush` accessor `#[proxy_methods]` writes (workload 8).
struct Proxied(session_core::AsyncSession);

#[session_macros::proxy_methods(session_core::AsyncSession, attributes(autoflush))]
impl Proxied {
    fn proxied(&self) -> &session_core::AsyncSession {
        &self.0
    }
}

/// Calls per side of workload 8.
const PROXY_CALLS: u32 = 10_000_000;

/// Workload 8: `PROXY_CALLS` proxied `autoflush()` reads against as many direct ones (no I/O);
/// the report's "ours" is the proxied side, "hand" the direct one.
fn proxy(engine: &Engine, report: &mut Report) {
    use std::hint::black_box;
    let direct = session_core::AsyncSession::new(engine.clone());
    let wrapper = Proxied(session_core::AsyncSession::new(engine.clone()));
    let started = Instant::now();
    for _ in 0..PROXY_CALLS {
        black_box(black_box(&direct).autoflush());
    }
    report.hand("proxy_10m_calls", started.elapsed(), 0.0);
    let started = Instant::now();
    for _ in 0..PROXY_CALLS {
        black_box(black_box(&wrapper).autoflush());
    }
    report.ours("proxy_10m_calls", started.elapsed(), 0.0);
}

async fn stream(maker: &AsyncSessionMaker, rows: usize, report: &mut Report) -> Result<()> {
    let session = maker.session();
    session
        .execute(session_core::text(format!(
            "INSERT INTO a (data) SELECT 'stream' || g FROM generate_series(1, {rows}) g"
        )))
        .await?;
    session.commit().await?;
    let (t, m) = timed(async {
        let mut stream = session.stream_scalars(select::<A>()).await?;
        let mut count = 0usize;
        while let Some(obj) = stream.next().await {
            obj?;
            count += 1;
        }
        assert!(count >= rows);
        Ok(())
    })
    .await?;
    session.close().await;
    report.ours("stream", t, m);
    Ok(())
}

/// Runs every workload and returns the report.
///
/// # Errors
/// A message when the cluster, a database or a workload fails.
pub async fn run(options: &Options) -> std::result::Result<Report, String> {
    let cluster = tokio::task::spawn_blocking(Cluster::start)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    // PgBouncer in front of the same cluster, for request_mix through it (skipped, with a
    // note, where the Debian package is not installed).
    let bouncer = match crate::pg::pgbouncer::PgBouncer::start_with(&cluster, 10) {
        Ok(bouncer) => Some(bouncer),
        Err(e) => {
            eprintln!("request_mix_pgbouncer skipped: {e}");
            None
        }
    };
    let mut runs = Vec::new();
    for run in 0..options.repeat.max(1) {
        let mut report = Report::new(options.n);
        let hand_engine = fresh_engine(&cluster, &format!("bench_hand_{run}"), options.n).await?;
        let hand_pool = hand::pool(hand_engine.url(), 10).await?;
        let engine = fresh_engine(&cluster, &format!("bench_ours_{run}"), options.n).await?;
        let maker = async_sessionmaker(engine.clone()).expire_on_commit(false);
        // Each workload on both sides back to back, the side going first alternating by run,
        // so that drift on a shared machine hits both alike.
        // insert_flush always runs: it writes the rows the other workloads read.
        for step in (0..STEPS).filter(|&s| s == 0 || options.runs(STEP_NAMES[s])) {
            for side in [run % 2, 1 - run % 2] {
                if side == 0 {
                    hand_step(step, &hand_pool, options.n, &mut report).await?;
                } else {
                    ours_step(step, &maker, options.n, &mut report)
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        drop(hand_pool);
        if let Some(bouncer) = bouncer
            .as_ref()
            .filter(|_| options.runs("request_mix_pgbouncer"))
        {
            let (ours_url, hand_url) = (engine.url().to_string(), hand_engine.url().to_string());
            through_pgbouncer(
                bouncer,
                &ours_url,
                &hand_url,
                options.n,
                run % 2,
                &mut report,
            )
            .await?;
        }
        hand_engine.dispose().await;
        if options.runs("factory_overhead") {
            factory_overhead(&maker, options.n, &mut report)
                .await
                .map_err(|e| e.to_string())?;
        }
        if options.runs("proxy_10m_calls") {
            proxy(&engine, &mut report);
        }
        engine.dispose().await;

        if run == 0 && options.stream_rows > 0 && options.runs("stream") {
            let engine = fresh_engine(&cluster, "bench_stream", options.n).await?;
            let maker = async_sessionmaker(engine.clone()).expire_on_commit(false);
            stream(&maker, options.stream_rows, &mut report)
                .await
                .map_err(|e| e.to_string())?;
            engine.dispose().await;
        }
        runs.push(report);
    }
    let mut report = Report::median(runs);
    if options.memory_n > 0 {
        report.memory = Some(memory::run(&cluster, options.memory_n).await?);
    }
    if options.replica_reads {
        report.replica_reads = replica::run(options.n).await?;
    }

    if let Some(script) = &options.sqla {
        let url = cluster
            .create_database("bench_sqla")
            .await
            .map_err(|e| e.to_string())?;
        report.sqlalchemy(script, &url, options.n)?;
    }
    Ok(report)
}
