//! replica_reads: the overhead of routing reads to a read replica. request_mix's reads
//! (`n / 5` requests, 16 at a time, each a session that gets one `A` by key and commits)
//! through an engine with a streaming hot standby as its replica, against the same engine
//! without replicas, and with a lag bound (whose probe queries cost too), all on one primary
//! started for it (`Cluster::start_standby`).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use session_core::{AsyncSessionMaker, Engine, async_sessionmaker, text};

use super::{request_ids, timed};
use crate::model::A;
use crate::pg::{Cluster, ClusterOptions};

/// Rounds of the three configurations, interleaved; the report shows medians.
const ROUNDS: usize = 3;

/// Seconds of replica_reads, medians of [`ROUNDS`].
#[derive(Debug, Clone, Copy)]
pub struct ReplicaReads {
    /// Requests.
    pub requests: usize,
    /// The engine without replicas (everything on the primary).
    pub primary: f64,
    /// Reads routed to the replica.
    pub replica: f64,
    /// Reads routed to the replica, with `replica_max_lag` (lag probes every `PROBE_TTL`).
    pub replica_max_lag: f64,
}

impl ReplicaReads {
    /// The table's lines.
    pub fn table(&self) -> String {
        let mut out = format!(
            "\nreplica_reads: {} read-only requests, 16 at a time (medians of {ROUNDS})\n",
            self.requests
        );
        for (name, s) in [
            ("primary only", self.primary),
            ("via the replica", self.replica),
            ("replica, max lag", self.replica_max_lag),
        ] {
            let _ = writeln!(
                out,
                "{name:<18} {s:>10.4} s {:>8.2}x",
                s / self.primary.max(f64::MIN_POSITIVE)
            );
        }
        out
    }

    /// As a JSON object.
    pub fn json(&self) -> String {
        format!(
            "{{\"requests\":{},\"primary_s\":{:.6},\"replica_s\":{:.6},\
             \"replica_max_lag_s\":{:.6}}}",
            self.requests, self.primary, self.replica, self.replica_max_lag
        )
    }
}

/// Starts a primary and its standby, seeds `n` rows of `a`, and times the three engines;
/// `None` (with a note) when the servers cannot be started here.
///
/// # Errors
/// A message when the database or a request fails.
pub(crate) async fn run(n: usize) -> Result<Option<ReplicaReads>, String> {
    let servers = tokio::task::spawn_blocking(|| {
        let primary = Cluster::start_owned_with(ClusterOptions::primary())?;
        let standby = primary.start_standby()?;
        Ok::<_, crate::pg::PgError>((primary, standby))
    })
    .await
    .map_err(|e| e.to_string())?;
    let (primary, standby) = match servers {
        Ok(servers) => servers,
        Err(e) => {
            eprintln!("replica_reads skipped: {e}");
            return Ok(None);
        }
    };
    let url = primary
        .create_database("bench_replica")
        .await
        .map_err(|e| e.to_string())?;
    let seed = Engine::builder(&url).build().map_err(|e| e.to_string())?;
    seed.transaction(async |conn| {
        crate::model::seed_metadata().create_all(conn).await?;
        conn.batch_execute(&format!(
            "INSERT INTO a (data) SELECT 'a' || g FROM generate_series(1, {n}) g"
        ))
        .await
    })
    .await
    .map_err(|e| e.to_string())?;
    seed.dispose().await;
    primary
        .wait_replayed(&standby, Duration::from_secs(60))
        .await
        .map_err(|e| e.to_string())?;
    let name = url.rsplit('/').next().unwrap_or_default();
    let replica_url = standby.database_url(name);
    let builder = || Engine::builder(&url).pool_size(10).test_on_checkout(false);
    let engines = [
        builder().build(),
        builder().read_replica(&replica_url).build(),
        builder()
            .read_replica(&replica_url)
            .replica_max_lag(Duration::from_secs(5))
            .build(),
    ];
    let (mut kept, mut makers) = (Vec::new(), Vec::new());
    for engine in engines {
        let engine = engine.map_err(|e| e.to_string())?;
        kept.push(engine.clone());
        makers.push(async_sessionmaker(engine).expire_on_commit(false));
    }
    for (maker, on_standby) in makers.iter().zip([false, true, true]) {
        let s = maker.session();
        let answer = s
            .execute(text("SELECT pg_is_in_recovery()"))
            .await
            .and_then(|r| r.scalar::<bool>())
            .map_err(|e| e.to_string())?;
        s.close().await;
        if answer != Some(on_standby) {
            return Err(format!(
                "replica_reads: a read ran on the {} (expected the {})",
                if answer == Some(true) {
                    "standby"
                } else {
                    "primary"
                },
                if on_standby { "standby" } else { "primary" }
            ));
        }
    }
    let mut seconds: [Vec<f64>; 3] = Default::default();
    for round in 0..ROUNDS {
        for k in 0..3 {
            // The configuration going first turns with the round.
            let k = (k + round) % 3;
            let t = reads(&makers[k], n).await.map_err(|e| e.to_string())?;
            seconds[k].push(t.as_secs_f64());
        }
    }
    for engine in kept {
        engine.dispose().await;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let [mut p, mut r, mut l] = seconds;
    Ok(Some(ReplicaReads {
        requests: request_ids(n).len(),
        primary: median(&mut p),
        replica: median(&mut r),
        replica_max_lag: median(&mut l),
    }))
}

/// The read-only requests on `maker`'s sessions.
async fn reads(maker: &AsyncSessionMaker, n: usize) -> session_core::Result<Duration> {
    let ids = request_ids(n);
    let (t, _) = timed(async {
        let gate = Arc::new(tokio::sync::Semaphore::new(16));
        let mut tasks = Vec::with_capacity(ids.len());
        for id in ids {
            let (maker, gate) = (maker.clone(), gate.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire().await;
                maker
                    .scope(async |s| {
                        let a = s.get_one::<A>(id).await?;
                        assert_eq!(a.read()?.id, id);
                        s.commit().await
                    })
                    .await
            }));
        }
        for task in tasks {
            task.await.expect("request task")?;
        }
        Ok::<(), session_core::Error>(())
    })
    .await?;
    Ok(t)
}
