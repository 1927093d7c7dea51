//! memory_load: the memory of `n` objects loaded into a session against `n` plain structs
//! (the same `A` values in a `Vec`, loaded by hand), and the bytes the session adds per
//! tracked object ([`session_core::__private::tracked_bytes`]).
//!
//! Each side runs in a child process of its own (`session-tools bench-memory-side`), so
//! that neither reuses the heap the other freed: the figure is the growth of resident memory
//! (VmRSS) from after connecting to after the load, with the objects alive, and the peak
//! (VmHWM) over the same span.

use std::process::Command;

use session_core::{Collection, Engine, select};

use super::{hand, reset_peak, rss_kb};
use crate::model::A;
use crate::pg::Cluster;

/// One side's growth of resident memory, kB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Growth {
    /// With the objects alive, after the load.
    pub rss_kb: u64,
    /// The peak during the load.
    pub peak_kb: u64,
}

/// The figures of memory_load.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// Objects loaded.
    pub n: usize,
    /// Loaded into a session (identity map, states, handles).
    pub ours: Growth,
    /// Plain `A` structs in a `Vec`.
    pub plain: Growth,
    /// Bytes the session adds per object, beside the value.
    pub tracked: session_core::__private::TrackedBytes,
}

impl Memory {
    /// ours / plain, resident memory after the load (the target: at most 2).
    pub fn ratio(&self) -> f64 {
        self.ours.rss_kb as f64 / self.plain.rss_kb.max(1) as f64
    }

    /// ours / plain, peak during the load.
    pub fn peak_ratio(&self) -> f64 {
        self.ours.peak_kb as f64 / self.plain.peak_kb.max(1) as f64
    }
}

/// Creates a database with `n` rows of `a` and measures both sides in child processes.
///
/// # Errors
/// A message when the database or a child fails.
pub(crate) async fn run(cluster: &Cluster, n: usize) -> Result<Memory, String> {
    let url = cluster
        .create_database("bench_memory")
        .await
        .map_err(|e| e.to_string())?;
    let engine = Engine::builder(&url).build().map_err(|e| e.to_string())?;
    engine
        .transaction(async |conn| {
            crate::model::seed_metadata().create_all(conn).await?;
            conn.batch_execute(&format!(
                "INSERT INTO a (data) SELECT 'a' || g FROM generate_series(1, {n}) g"
            ))
            .await
        })
        .await
        .map_err(|e| e.to_string())?;
    engine.dispose().await;
    let ours = child("ours", &url, n)?;
    let plain = child("plain", &url, n)?;
    Ok(Memory {
        n,
        ours,
        plain,
        tracked: session_core::__private::tracked_bytes::<A>(),
    })
}

/// Runs `session-tools bench-memory-side` for `side` and reads its two numbers.
fn child(side: &str, url: &str, n: usize) -> Result<Growth, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .args(["bench-memory-side", "--side", side, "--n", &n.to_string()])
        .arg("--url")
        .arg(url)
        .output()
        .map_err(|e| format!("bench-memory-side: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "bench-memory-side {side} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut numbers = text.split_whitespace().map(str::parse::<u64>);
    match (numbers.next(), numbers.next()) {
        (Some(Ok(rss_kb)), Some(Ok(peak_kb))) => Ok(Growth { rss_kb, peak_kb }),
        _ => Err(format!("bench-memory-side {side} printed {text:?}")),
    }
}

/// The child's side: connects, then loads every row of `a` into a session (`side` "ours") or
/// into plain `A` structs (`side` "plain"), and returns the growth of resident memory with
/// the objects alive.
///
/// # Errors
/// A message when the database fails or `side` is neither.
pub async fn side(side: &str, url: &str, n: usize) -> Result<Growth, String> {
    let growth = match side {
        "ours" => {
            let engine = Engine::builder(url)
                .pool_size(1)
                .build()
                .map_err(|e| e.to_string())?;
            let session = session_core::AsyncSession::new(engine.clone());
            // Connected, the transaction begun, before the baseline.
            session
                .execute(session_core::text("SELECT 1"))
                .await
                .map_err(|e| e.to_string())?;
            let (before, _) = baseline();
            let objects = session
                .scalars(select::<A>())
                .await
                .map_err(|e| e.to_string())?
                .all();
            let growth = since(before);
            assert_eq!(objects.len(), n);
            drop(objects);
            session.close().await;
            growth
        }
        "plain" => {
            let pool = hand::pool(url, 1).await?;
            let client = pool.get().await.map_err(|e| e.to_string())?;
            let (before, _) = baseline();
            let rows = client
                .query("SELECT id, data, create_date FROM a", &[])
                .await
                .map_err(|e| e.to_string())?;
            let plain: Vec<A> = rows
                .iter()
                .map(|r| A {
                    id: r.get(0),
                    data: r.get(1),
                    create_date: r.get(2),
                    bs: Collection::default(),
                })
                .collect();
            drop(rows);
            let growth = since(before);
            assert_eq!(plain.len(), n);
            growth
        }
        other => return Err(format!("unknown side {other:?}: ours or plain")),
    };
    Ok(growth)
}

/// Resident memory now (kB), the peak counter reset.
fn baseline() -> (u64, u64) {
    reset_peak();
    let (_, rss) = rss_kb();
    (rss, rss)
}

fn since(before: u64) -> Growth {
    let (peak, rss) = rss_kb();
    Growth {
        rss_kb: rss.saturating_sub(before),
        peak_kb: peak.saturating_sub(before),
    }
}
