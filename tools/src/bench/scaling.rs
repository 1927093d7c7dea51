//! `bench --sizes 1000,10000,100000`: insert_flush, load_eager and update_dirty at each N, on
//! fresh databases, ours and hand-written; seconds per object at each size, and how that
//! grew against the smallest size (1.00 everywhere is linear growth).

use std::fmt::Write as _;

use session_core::async_sessionmaker;

use super::{Report, fresh_engine, hand, hand_step, ours_step};
use crate::pg::Cluster;

/// The workloads measured at every size (their step numbers in [`ours_step`]).
const WORKLOADS: [(usize, &str); 3] = [(0, "insert_flush"), (1, "load_eager"), (3, "update_dirty")];

/// One workload at one size.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    /// Objects.
    pub n: usize,
    /// Workload name.
    pub workload: &'static str,
    /// Session, seconds per object.
    pub ours: f64,
    /// Hand-written, seconds per object.
    pub hand: f64,
}

/// Every workload at every size, sizes in the order given.
#[derive(Debug, Clone, Default)]
pub struct Scaling {
    /// In size order, then workload order.
    pub points: Vec<Point>,
}

/// Runs the three workloads at each of `sizes` (one run each; the side going first
/// alternates by size).
///
/// # Errors
/// A message when the cluster, a database or a workload fails.
pub async fn run(sizes: &[usize]) -> Result<Scaling, String> {
    let cluster = tokio::task::spawn_blocking(Cluster::start)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let mut out = Scaling::default();
    for (i, &n) in sizes.iter().enumerate() {
        let mut report = Report::new(n);
        let hand_engine = fresh_engine(&cluster, &format!("scale_hand_{i}"), n).await?;
        let pool = hand::pool(hand_engine.url(), 10).await?;
        let engine = fresh_engine(&cluster, &format!("scale_ours_{i}"), n).await?;
        let maker = async_sessionmaker(engine.clone()).expire_on_commit(false);
        for (step, _) in WORKLOADS {
            for side in [i % 2, 1 - i % 2] {
                if side == 0 {
                    hand_step(step, &pool, n, &mut report).await?;
                } else {
                    ours_step(step, &maker, n, &mut report)
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        drop(pool);
        hand_engine.dispose().await;
        engine.dispose().await;
        for (_, name) in WORKLOADS {
            let row = report.rows.iter().find(|r| r.name == name);
            let per = |v: Option<f64>| v.unwrap_or(f64::NAN) / n.max(1) as f64;
            out.points.push(Point {
                n,
                workload: name,
                ours: per(row.and_then(|r| r.ours)),
                hand: per(row.and_then(|r| r.hand)),
            });
        }
    }
    Ok(out)
}

impl Scaling {
    /// The point of `workload` at the smallest size run first.
    fn first(&self, workload: &str) -> Option<&Point> {
        self.points.iter().find(|p| p.workload == workload)
    }

    /// The table printed by `bench --sizes`.
    pub fn table(&self) -> String {
        let mut out = format!(
            "seconds per object (one run per size; growth: per-object time / that at the first \
             size, 1.00 = linear)\n{:<14} {:>9} {:>13} {:>13} {:>8} {:>13} {:>8}\n",
            "workload", "N", "ours s/obj", "hand s/obj", "ratio", "ours growth", "hand"
        );
        for p in &self.points {
            let first = self.first(p.workload).copied().unwrap_or(*p);
            let _ = writeln!(
                out,
                "{:<14} {:>9} {:>13.3e} {:>13.3e} {:>8.2} {:>13.2} {:>8.2}",
                p.workload,
                p.n,
                p.ours,
                p.hand,
                p.ours / p.hand,
                p.ours / first.ours,
                p.hand / first.hand
            );
        }
        out
    }

    /// The same as JSON.
    pub fn json(&self) -> String {
        let rows: Vec<String> = self
            .points
            .iter()
            .map(|p| {
                format!(
                    "{{\"workload\":\"{}\",\"n\":{},\"ours_s_per_object\":{:.9},\
                     \"hand_s_per_object\":{:.9}}}",
                    p.workload, p.n, p.ours, p.hand
                )
            })
            .collect();
        format!("{{\"scaling\":[{}]}}\n", rows.join(","))
    }
}
