//! Read replicas: the engines of an engine's streaming standbys, and what routing to them
//! needs to remember (which are down, how far behind each was last seen). The routing itself is the session's (`session/replica.rs`).
//!
//! A session's transaction reads from a replica while it has written nothing: its reads
//! (ORM selects, `get`, `get_many`, relationship loads, and `text` statements that are a plain
//! `SELECT`) run on one replica, taken in turn from the healthy ones; once the transaction
//! writes (a flush, an `insert` / `update` / `delete`, a `FOR UPDATE` / `FOR SHARE` select, any
//! other `text` statement) it uses the primary, and so do its later reads, until it ends.
//! A replica is skipped when it cannot be reached (for
//! [`REPLICA_RETRY_AFTER`] after a failure), when it lags more than
//! [`EngineBuilder::replica_max_lag`](crate::EngineBuilder::replica_max_lag), and, with
//! [`EngineBuilder::read_your_writes`](crate::EngineBuilder::read_your_writes), when it has
//! not replayed the session's last commit within the wait given; with no
//! replica left, the read goes to the primary. A `SERIALIZABLE` transaction always uses the
//! primary (a hot standby refuses that level), and so does a session bound to a connection
//! (`bind_connection`).
//!
//! How far behind a replica is: nothing when it has replayed all the WAL it received, else the
//! time since the last transaction it replayed (`now() - pg_last_xact_replay_timestamp()`).
//! One probe query per replica tells it, and its answer is reused for [`PROBE_TTL`].

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a replica that could not be reached is skipped.
pub const REPLICA_RETRY_AFTER: Duration = Duration::from_secs(2);

/// How long a replica's probe (its lag and replayed position) is reused.
pub const PROBE_TTL: Duration = Duration::from_millis(100);

/// What a probe of a replica found.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Probe {
    pub(crate) at: Instant,
    pub(crate) lag: Duration,
    pub(crate) replayed: u64,
}

/// One replica's health.
#[derive(Debug, Default)]
struct Health {
    down_until: Option<Instant>,
    probe: Option<Probe>,
}

/// An engine's replicas (`E` is the engine type: this module knows nothing of engines).
#[derive(Debug)]
pub(crate) struct ReplicaSet<E> {
    pub(crate) engines: Vec<E>,
    next: AtomicUsize,
    health: Vec<Mutex<Health>>,
    /// Skip a replica further behind than this.
    pub(crate) max_lag: Option<Duration>,
    /// Wait at most this long for a replica to replay the session's last commit; `None`:
    /// don't wait.
    pub(crate) read_your_writes: Option<Duration>,
}

impl<E> ReplicaSet<E> {
    pub(crate) fn new(
        engines: Vec<E>,
        max_lag: Option<Duration>,
        read_your_writes: Option<Duration>,
    ) -> Self {
        ReplicaSet {
            health: engines.iter().map(|_| Mutex::default()).collect(),
            engines,
            next: AtomicUsize::new(0),
            max_lag,
            read_your_writes,
        }
    }

    /// The replicas in the order to try them for the next transaction (each in turn first).
    pub(crate) fn rotation(&self) -> impl Iterator<Item = usize> + '_ {
        let n = self.engines.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n).map(move |k| (start + k) % n)
    }

    fn health(&self, i: usize) -> std::sync::MutexGuard<'_, Health> {
        self.health[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True while replica `i` is skipped after a failure.
    pub(crate) fn is_down(&self, i: usize) -> bool {
        self.health(i)
            .down_until
            .is_some_and(|until| Instant::now() < until)
    }

    /// Replica `i` could not be reached: skip it for a while.
    pub(crate) fn mark_down(&self, i: usize) {
        let mut health = self.health(i);
        health.down_until = Some(Instant::now() + REPLICA_RETRY_AFTER);
        health.probe = None;
    }

    /// Replica `i`'s last probe, while it is fresh.
    pub(crate) fn fresh_probe(&self, i: usize) -> Option<Probe> {
        self.health(i).probe.filter(|p| p.at.elapsed() < PROBE_TTL)
    }

    /// Records a probe of replica `i`.
    pub(crate) fn record_probe(&self, i: usize, probe: Probe) {
        let mut health = self.health(i);
        health.down_until = None;
        health.probe = Some(probe);
    }

    /// Whether `probe`'s lag is within the bound.
    pub(crate) fn lag_ok(&self, probe: &Probe) -> bool {
        self.max_lag.is_none_or(|max| probe.lag <= max)
    }
}

/// `16/B374D848` -> its 64-bit position.
pub(crate) fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.trim().split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

/// True when `sql` only reads: a `SELECT` (also after `WITH`) without a row lock
/// (`FOR UPDATE`, `FOR NO KEY UPDATE`, `FOR SHARE`, `FOR KEY SHARE`), without `INTO` and
/// without a data-modifying `WITH` (any `INSERT` / `UPDATE` / `DELETE` / `MERGE` word counts,
/// so a column named so sends the statement to the primary: safe, not wrong).
/// A `SELECT` that calls a function that writes is not recognised: on a replica it fails with
/// "cannot execute ... in a read-only transaction".
pub(crate) fn is_read(sql: &str) -> bool {
    let (operation, _) = crate::telemetry::summarize(sql);
    if operation.as_deref() != Some("SELECT") {
        return false;
    }
    let upper = sql.to_ascii_uppercase();
    let words: Vec<&str> = upper
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .collect();
    let locked = words
        .windows(2)
        .any(|w| w[0] == "FOR" && matches!(w[1], "UPDATE" | "SHARE" | "NO" | "KEY"));
    // `INTO` makes a table; a data-modifying `WITH` writes.
    let writes = words
        .iter()
        .any(|w| matches!(*w, "INTO" | "INSERT" | "UPDATE" | "DELETE" | "MERGE"));
    !locked && !writes
}

#[cfg(test)]
mod tests {
    use super::{is_read, parse_lsn};

    #[test]
    fn reads_and_positions() {
        assert!(is_read("SELECT \"a\".\"id\" FROM \"a\" WHERE \"id\" = $1"));
        assert!(is_read("with x as (select 1) select * from x"));
        assert!(!is_read("SELECT * FROM a WHERE id = $1 FOR UPDATE"));
        assert!(!is_read("SELECT * FROM a FOR NO KEY UPDATE SKIP LOCKED"));
        assert!(!is_read("select * from a for share"));
        assert!(!is_read("SELECT * INTO b FROM a"));
        assert!(!is_read("INSERT INTO a VALUES (1)"));
        assert!(!is_read(
            "WITH d AS (DELETE FROM a RETURNING *) SELECT * FROM d"
        ));
        assert_eq!(parse_lsn("16/B374D848"), Some((0x16 << 32) | 0xB374_D848));
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("x"), None);
    }
}
