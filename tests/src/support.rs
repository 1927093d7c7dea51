//! Test support: databases, engines, probes, cancellation, log capture.

use std::future::Future;
use std::io::Write;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use session_core::Engine;
use session_tools::pg;

/// A fresh, empty database on the shared cluster, named after `prefix`; returns its URL.
///
/// # Panics
/// When no cluster can be had: the message says what to install.
pub async fn fresh_database(prefix: &str) -> String {
    let cluster = tokio::task::spawn_blocking(pg::shared)
        .await
        .expect("cluster start task")
        .unwrap_or_else(|e| panic!("{e}"));
    cluster
        .create_database(prefix)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// An engine on a fresh database, with a pool of `pool_size` and a short checkout timeout.
pub async fn engine(prefix: &str, pool_size: u32) -> Engine {
    let url = fresh_database(prefix).await;
    Engine::builder(url)
        .pool_size(pool_size)
        .checkout_timeout(Duration::from_secs(5))
        .build()
        .expect("engine")
}

/// A session on `engine` whose objects stay loaded across commits (`expire_on_commit(false)`),
/// so that tests read them back without a refresh.
pub fn kept_session(engine: &Engine) -> session_core::AsyncSession {
    session_core::AsyncSession::builder()
        .bind(engine.clone())
        .expire_on_commit(false)
        .build()
}

/// Backends of `engine`'s database in state `idle in transaction` (seen from a separate,
/// unpooled connection, so the pool under test is not disturbed).
pub async fn idle_in_transaction(engine: &Engine) -> i64 {
    let url = engine_url_with_user(engine);
    // A connection discarded after a cancel is closed by its driver task, which the server
    // notices a moment later: count again until the count settles (at most 5 s), so what is
    // reported is a transaction left open, not one being torn down.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = count_idle_in_transaction(&url).await;
        if n == 0 || Instant::now() >= deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn count_idle_in_transaction(url: &str) -> i64 {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("probe connection");
    let task = tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND state LIKE 'idle in transaction%'",
            &[],
        )
        .await
        .expect("probe query");
    drop(client);
    let _ = task.await;
    row.get(0)
}

/// The engine's URL (its display form has no password; the throwaway cluster needs none).
fn engine_url_with_user(engine: &Engine) -> String {
    engine.url().to_string()
}

/// Waits until every connection of `engine` is back in the pool (or 10 s pass).
///
/// # Panics
/// When connections stay checked out for 10 s.
pub async fn wait_pool_idle(engine: &Engine) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while engine.status().checked_out > 0 {
        assert!(
            Instant::now() < deadline,
            "connections still checked out: {}",
            engine.status()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Polls `future` up to `polls` times, letting the runtime run between polls, and drops it if
/// it has not finished: `Some(output)` when it finished, `None` when it was cancelled.
pub async fn poll_then_drop<F: Future>(future: F, polls: usize) -> Option<F::Output> {
    let mut future = pin!(future);
    for _ in 0..polls {
        let step = std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await;
        if let Poll::Ready(out) = step {
            return Some(out);
        }
        // Give the connection task and the server a moment, so that later polls see responses.
        tokio::time::sleep(Duration::from_micros(300)).await;
    }
    None
}

/// A `tracing` subscriber for the current thread that records formatted events.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// Installs the capture for the current thread (use a current-thread runtime) until the guard
    /// drops, recording events of targets matching `filter` (an `EnvFilter` directive).
    pub fn install(&self, filter: &str) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .without_time()
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// Everything recorded so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An engine on a fresh database with the test schema (`a`, `b`, `item`) created.
pub async fn schema_engine(prefix: &str, pool_size: u32) -> Engine {
    let engine = engine(prefix, pool_size).await;
    create_schema(&engine, session_tools::model::metadata()).await;
    engine
}

/// Creates `metadata`'s tables on `engine` (in one transaction).
///
/// # Panics
/// When the DDL fails.
pub async fn create_schema(engine: &Engine, metadata: session_core::MetaData) {
    engine
        .transaction(async |conn| metadata.create_all(conn).await)
        .await
        .expect("create_all");
}

/// Like [`schema_engine`], with every statement logged (`echo`), for tests that count them.
pub async fn echo_schema_engine(prefix: &str) -> Engine {
    let url = fresh_database(prefix).await;
    let engine = Engine::builder(url)
        .echo(true)
        .pool_size(4)
        .build()
        .expect("engine");
    create_schema(&engine, session_tools::model::metadata()).await;
    engine
}

/// `SELECT count(*) FROM table` on a connection of its own.
pub async fn count_rows(engine: &Engine, table: &str) -> i64 {
    let mut conn = engine.connect().await.expect("connect");
    let n = conn
        .scalar(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .expect("count");
    conn.close().await;
    n
}

/// A new (transient) seed `A` with `data`.
pub fn a(data: &str) -> session_core::Obj<session_tools::model::A> {
    session_core::Obj::new(session_tools::model::A {
        data: data.into(),
        ..Default::default()
    })
}

/// The statements in an echo log.
pub fn echo_statements(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("session_core::echo"))
        .collect()
}

/// Fills the test schema on `engine` with the statement tests' rows: `a1`..`a5` with 1, 2, 0,
/// 1, 2 children (`b{i}.{k}`, `B` ids 1..6 in that order), and three `item`s (`x`/1 at 1.0,
/// `x`/2 without a price, `y`/3 at 30.0).
///
/// # Panics
/// When the inserts fail.
pub async fn seed(engine: &Engine) {
    use session_core::{AsyncSession, Collection, Obj};
    use session_tools::model::{A, B, Item};
    let session = AsyncSession::new(engine.clone());
    for i in 1..=5 {
        let children = (0..i % 3)
            .map(|k| {
                Obj::new(B {
                    data: format!("b{i}.{k}"),
                    ..B::default()
                })
            })
            .collect();
        session
            .add(&Obj::new(A {
                data: format!("a{i}"),
                bs: Collection::from_vec(children),
                ..A::default()
            }))
            .expect("add");
    }
    for (shop, sku, price) in [("x", 1, Some(1.0)), ("x", 2, None), ("y", 3, Some(30.0))] {
        session
            .add(&Obj::new(Item {
                shop: shop.into(),
                sku,
                price,
            }))
            .expect("add");
    }
    session.commit().await.expect("seed commit");
    session.close().await;
}

/// [`schema_engine`] filled by [`seed`].
pub async fn seeded(prefix: &str) -> Engine {
    let engine = schema_engine(prefix, 4).await;
    seed(&engine).await;
    engine
}

/// This process's resident memory now, in kB (from `/proc/self/status`): for memory checks in
/// test binaries of their own.
pub fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
