//! Hooks for `bench-peers/` (a crate outside the workspace, so that CI never builds SeaORM,
//! diesel-async and sqlx): the bench's databases and inputs, and the session and hand-written
//! sides one workload at a time, so that the peers run beside them on one cluster.

use std::time::Duration;

use session_core::{AsyncSessionMaker, Engine, async_sessionmaker};

use super::{Report, STEP_NAMES, STEPS, hand};
use crate::pg::Cluster;

/// The workloads [`Ours::step`] and [`Hand::step`] run, by step index: the bench's, but
/// request_serial (request_mix one at a time), which the peers' crate does not run.
pub const WORKLOADS: &[&str] = STEP_NAMES.split_at(STEPS - 1).0;

/// A fresh database on `cluster` with the bench's schema (`a`, `b` and graph_flush's four
/// tables) and graph_flush's seed rows for `n`; returns its URL.
///
/// # Errors
/// A message when the database or the schema cannot be made.
pub async fn fresh_database(cluster: &Cluster, name: &str, n: usize) -> Result<String, String> {
    let engine = super::fresh_engine(cluster, name, n).await?;
    let url = engine.url().to_string();
    engine.dispose().await;
    Ok(url)
}

/// The keys request_mix reads and changes, in order (`n / 5` of them, repeats included).
pub fn request_ids(n: usize) -> Vec<i32> {
    super::request_ids(n)
}

/// The keys get_many asks for: every row, last first.
pub fn many_keys(n: usize) -> Vec<i32> {
    super::many_keys(n)
}

/// The chains graph_flush adds (and the shelves its seed holds).
pub fn graph_chains(n: usize) -> usize {
    super::graph_chains(n)
}

/// Runs `work` as the bench times its sides (peak-RSS counter reset first); returns its time.
///
/// # Errors
/// `work`'s error.
pub async fn measure<T, E>(
    work: impl std::future::Future<Output = Result<T, E>>,
) -> Result<Duration, E> {
    Ok(super::timed(work).await?.0)
}

/// The seconds `pick` reads from a one-workload report.
fn seconds(report: &Report, pick: fn(&super::Measurement) -> Option<f64>) -> Duration {
    Duration::from_secs_f64(report.rows.first().and_then(pick).unwrap_or(0.0))
}

/// The session side on a database of its own (engine of 10 connections, as in `bench`).
pub struct Ours {
    engine: Engine,
    maker: AsyncSessionMaker,
}

impl Ours {
    /// A fresh database (see [`fresh_database`]) and an engine on it.
    ///
    /// # Errors
    /// A message when the database cannot be made.
    pub async fn new(cluster: &Cluster, name: &str, n: usize) -> Result<Self, String> {
        let engine = super::fresh_engine(cluster, name, n).await?;
        let maker = async_sessionmaker(engine.clone()).expire_on_commit(false);
        Ok(Ours { engine, maker })
    }

    /// The database's URL (for checks after a workload).
    pub fn url(&self) -> &str {
        self.engine.url()
    }

    /// Runs workload `step` (an index of [`WORKLOADS`]) exactly as `bench` does; its time.
    ///
    /// # Errors
    /// The session's error, as a message.
    pub async fn step(&self, step: usize, n: usize) -> Result<Duration, String> {
        let mut report = Report::new(n);
        super::ours_step(step, &self.maker, n, &mut report)
            .await
            .map_err(|e| e.to_string())?;
        Ok(seconds(&report, |m| m.ours))
    }

    /// Opens all 10 of the engine's connections (each checked out at once and used), so that
    /// no side pays for connecting inside a timed workload.
    ///
    /// # Errors
    /// The session's error, as a message.
    pub async fn warm(&self) -> Result<(), String> {
        let conns = futures::future::try_join_all((0..10).map(|_| async {
            let mut conn = self.engine.connect().await?;
            conn.batch_execute("SELECT 1").await?;
            Ok::<_, session_core::Error>(conn)
        }))
        .await
        .map_err(|e| e.to_string())?;
        drop(conns);
        Ok(())
    }

    /// Closes the engine's connections.
    pub async fn dispose(self) {
        self.engine.dispose().await;
    }
}

/// The hand-written tokio-postgres side on a database of its own (its own bb8 pool of 10).
pub struct Hand {
    url: String,
    pool: hand::Pool,
}

impl Hand {
    /// A fresh database (see [`fresh_database`]) and a plain pool on it.
    ///
    /// # Errors
    /// A message when the database cannot be made.
    pub async fn new(cluster: &Cluster, name: &str, n: usize) -> Result<Self, String> {
        let url = fresh_database(cluster, name, n).await?;
        let pool = hand::pool(&url, 10).await?;
        Ok(Hand { url, pool })
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Opens all 10 of the pool's connections (see [`Ours::warm`]).
    ///
    /// # Errors
    /// The driver's or the pool's error, as a message.
    pub async fn warm(&self) -> Result<(), String> {
        let conns = futures::future::try_join_all((0..10).map(|_| async {
            let conn = self.pool.get().await.map_err(|e| e.to_string())?;
            conn.simple_query("SELECT 1")
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(conn)
        }))
        .await?;
        drop(conns);
        Ok(())
    }

    /// Runs workload `step` exactly as `bench` does; its time.
    ///
    /// # Errors
    /// The driver's or the pool's error, as a message.
    pub async fn step(&self, step: usize, n: usize) -> Result<Duration, String> {
        let mut report = Report::new(n);
        super::hand_step(step, &self.pool, n, &mut report).await?;
        Ok(seconds(&report, |m| m.hand))
    }
}
