//! The session's side of read replicas (see [`crate::replicas`]): which engine a read runs on,
//! the probe of a replica's lag and replayed position, and the commit position recorded for
//! read-your-writes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{AsyncSession, Bound, lock};
use crate::connection::AsyncConnection;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::replicas::{Probe, ReplicaSet, is_read, parse_lsn};

/// Lag (0 when everything received is replayed), replayed position, and whether the server
/// is still a standby.
const PROBE_SQL: &str = "SELECT CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM \
     pg_last_wal_replay_lsn() THEN 0 ELSE coalesce(extract(epoch FROM now() - \
     pg_last_xact_replay_timestamp()), 1e9) END::float8, \
     coalesce(pg_last_wal_replay_lsn(), pg_current_wal_insert_lsn())::text";

impl AsyncSession {
    /// [`AsyncSession::conn_for`] for a statement that may read from a replica: `sql` goes to
    /// one of `engine`'s replicas while the transaction has not used the primary, else (and
    /// when no replica fits) to `engine`.
    pub(crate) async fn conn_for_read<'c>(
        &self,
        conns: &'c mut Vec<Bound>,
        engine: &Engine,
        sql: &str,
    ) -> Result<&'c mut AsyncConnection> {
        let Some(set) = engine.replica_set().filter(|_| is_read(sql)) else {
            return self.conn_for(conns, engine).await;
        };
        let mut target = self.read_target(conns, engine, set).await;
        let new = !conns.iter().any(|b| b.engine.same_pool(&target));
        if new && !target.same_pool(engine) {
            // A replica connection for this transaction: when none can be had (the replica
            // went away since its last probe), the primary serves the read.
            if let Err(e) = self.conn_for(conns, &target).await.map(|_| ()) {
                if !(matches!(e, Error::Connect { .. } | Error::PoolTimeout { .. })
                    || e.is_disconnect())
                {
                    return Err(e);
                }
                if let Some(i) = set.engines.iter().position(|r| r.same_pool(&target)) {
                    tracing::warn!(target: "session_core::replicas", replica = %target.url(),
                        error = %e, "replica unreachable; reads go elsewhere for a while");
                    set.mark_down(i);
                }
                target = engine.clone();
            }
        }
        self.conn_for(conns, &target).await
    }

    async fn read_target(
        &self,
        conns: &[Bound],
        engine: &Engine,
        set: &ReplicaSet<Engine>,
    ) -> Engine {
        if conns.iter().any(|b| b.engine.same_pool(engine)) {
            // The transaction has written (or fell back): it stays on the primary.
            return engine.clone();
        }
        if let Some(bound) = conns
            .iter()
            .find(|b| set.engines.iter().any(|r| b.engine.same_pool(r)))
        {
            return bound.engine.clone();
        }
        if self.serializable(engine) || lock(&self.inner.config).connection.is_some() {
            // A standby refuses SERIALIZABLE; a session bound to a connection works in its
            // transaction only.
            return engine.clone();
        }
        let watermark = self.inner.commit_lsn.load(Ordering::Acquire);
        for i in set.rotation() {
            if set.is_down(i) {
                continue;
            }
            if usable(set, i, watermark).await {
                return set.engines[i].clone();
            }
        }
        engine.clone()
    }

    /// True when the session's next transaction is `SERIALIZABLE` (a hot standby refuses it).
    fn serializable(&self, engine: &Engine) -> bool {
        let configured = lock(&self.inner.config).transaction_options;
        self.state()
            .root_options()
            .or(configured)
            .or(engine.transaction_options())
            .get_isolation_level()
            == Some(crate::IsolationLevel::Serializable)
    }
}

/// Whether replica `i` may serve a transaction's reads now: reachable, within the lag bound,
/// and (read-your-writes) caught up with the session's last commit (`watermark`), waiting for
/// that as configured.
async fn usable(set: &ReplicaSet<Engine>, i: usize, watermark: u64) -> bool {
    if let Some(probe) = set.fresh_probe(i) {
        if !set.lag_ok(&probe) {
            return false;
        }
        if set.read_your_writes.is_none() || probe.replayed >= watermark {
            return true;
        }
    }
    let deadline = Instant::now() + set.read_your_writes.unwrap_or_default();
    loop {
        let probe = match probe(&set.engines[i]).await {
            Ok(probe) => probe,
            Err(error) => {
                tracing::warn!(target: "session_core::replicas", replica = %set.engines[i].url(),
                    %error, "replica unreachable; reads go elsewhere for a while");
                set.mark_down(i);
                return false;
            }
        };
        set.record_probe(i, probe);
        if !set.lag_ok(&probe) {
            return false;
        }
        if set.read_your_writes.is_none() || probe.replayed >= watermark {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Asks a replica how far behind it is.
async fn probe(replica: &Engine) -> Result<Probe> {
    let mut conn = replica.connect().await?;
    let row = conn.query_one(PROBE_SQL, &[]).await;
    conn.close().await;
    let row = row?;
    let lag: f64 = row.get(0);
    let replayed: String = row.get(1);
    Ok(Probe {
        at: Instant::now(),
        lag: Duration::try_from_secs_f64(lag.max(0.0)).unwrap_or(Duration::MAX),
        replayed: parse_lsn(&replayed).unwrap_or(0),
    })
}

/// After a transaction of `conn` on `engine` ended: with read-your-writes, the position of
/// its commit goes to the session's `sink`, so that its later reads wait for a replica to
/// have replayed it.
pub(crate) async fn after_transaction(
    engine: &Engine,
    conn: &mut AsyncConnection,
    sink: Option<&AtomicU64>,
) {
    let (Some(set), Some(sink)) = (engine.replica_set(), sink) else {
        return;
    };
    if set.read_your_writes.is_none() || conn.in_transaction() || !conn.is_settled() {
        return;
    }
    if let Ok(lsn) = conn
        .scalar::<String>("SELECT pg_current_wal_insert_lsn()::text", &[])
        .await
    {
        if let Some(lsn) = parse_lsn(&lsn) {
            sink.fetch_max(lsn, Ordering::AcqRel);
        }
    }
}
