//! Streaming hot standbys of a throwaway cluster ([`Cluster::start_standby`]), and
//! promotion ([`Cluster::promote`]), for the failover and read-replica tests.
//!
//! The standby is `pg_basebackup -R -X stream` of the primary (as the `postgres` user when
//! running as root, like every other server command): its own directory, free port and
//! watchdog, `hot_standby = on`, streaming from the primary over the replication entry that
//! initdb's `pg_hba.conf` has for 127.0.0.1 (a cluster with its own `hba` needs one:
//! [`REPLICATION_HBA`]). `wal_level = replica` and `max_wal_senders` are PostgreSQL's
//! defaults; [`ClusterOptions::primary`] sets them explicitly.

use std::process::Stdio;
use std::time::{Duration, Instant};

use super::{Cluster, ClusterOptions, Owned, PgError, new_base_dir, postgres_ids, spawn_watchdog};

/// The `pg_hba.conf` line that lets a standby on this machine stream from the cluster.
pub const REPLICATION_HBA: &str = "host replication all 127.0.0.1/32 trust\n";

impl ClusterOptions {
    /// Options for a primary that standbys stream from: `wal_level = replica`,
    /// `max_wal_senders = 10`, `hot_standby = on` (which the standbys copy).
    pub fn primary() -> ClusterOptions {
        ClusterOptions {
            settings: [
                ("wal_level", "replica"),
                ("max_wal_senders", "10"),
                ("hot_standby", "on"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            ..ClusterOptions::default()
        }
    }
}

impl Cluster {
    /// Starts a streaming hot standby of this cluster on a free port; it accepts read-only
    /// connections once this returns. Dropping it stops it and deletes its directory.
    ///
    /// # Errors
    /// [`PgError::Command`] with `pg_basebackup`'s output or the standby's server log; an
    /// external (`DATABASE_URL`) server has no standby.
    pub fn start_standby(&self) -> Result<Cluster, PgError> {
        let started = Instant::now();
        let Some(primary) = &self.owned else {
            return Err(PgError::Command {
                what: "starting a standby of the DATABASE_URL server".into(),
                log: "only a cluster this process started can have a standby".into(),
            });
        };
        if !primary.bin.join("pg_basebackup").is_file() {
            return Err(PgError::BinariesMissing {
                searched: vec![primary.bin.join("pg_basebackup")],
            });
        }
        let base = new_base_dir()?;
        if primary.as_postgres {
            let (uid, gid) = postgres_ids()?;
            std::os::unix::fs::chown(&base, Some(uid), Some(gid))?;
        }
        let mut owned = Owned {
            data: base.join("data"),
            base,
            bin: primary.bin.clone(),
            as_postgres: primary.as_postgres,
            port: 0,
            extra: format!("{} -c hot_standby=on", primary.extra),
        };
        spawn_watchdog(&owned)?;
        let port = primary.port.to_string();
        let out = owned
            .command("pg_basebackup")
            .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-D"])
            .arg(&owned.data)
            .args(["-R", "-X", "stream", "-c", "fast", "--no-sync"])
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(PgError::Command {
                what: format!("pg_basebackup from port {port}"),
                log: format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            });
        }
        owned.start_on_free_port()?;
        Ok(Cluster {
            url: format!("postgresql://postgres@127.0.0.1:{}/postgres", owned.port),
            owned: Some(owned),
            started_in: started.elapsed(),
        })
    }

    /// Promotes this standby to a primary (`pg_ctl promote -w`): it accepts writes once this
    /// returns.
    ///
    /// # Errors
    /// [`PgError::Command`] when `pg_ctl promote` fails (e.g. the server is no standby).
    pub fn promote(&self) -> Result<(), PgError> {
        match &self.owned {
            Some(owned) => owned.pg_ctl(&["promote", "-w", "-t", "60"]),
            None => Err(PgError::Command {
                what: "promoting the DATABASE_URL server".into(),
                log: "only a cluster this process started can be promoted".into(),
            }),
        }
    }

    /// Waits until `standby` has replayed everything this cluster has written so far (at most
    /// `timeout`).
    ///
    /// # Errors
    /// [`PgError::Sql`] when a server cannot be asked, or the standby is still behind after
    /// `timeout`.
    pub async fn wait_replayed(&self, standby: &Cluster, timeout: Duration) -> Result<(), PgError> {
        let lsn = scalar(&self.url, "SELECT pg_current_wal_lsn()::text").await?;
        let deadline = Instant::now() + timeout;
        let query = format!("SELECT (pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn)::text");
        loop {
            if scalar(&standby.url, &query).await? == "true" {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(PgError::Sql(format!(
                    "the standby has not replayed {lsn} after {timeout:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The first column of the first row of `sql` on `url`, as text.
async fn scalar(url: &str, sql: &str) -> Result<String, PgError> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| PgError::Sql(format!("connecting to {url}: {e}")))?;
    let task = tokio::spawn(connection);
    let rows = client.simple_query(sql).await;
    drop(client);
    let _ = task.await;
    let rows = rows.map_err(|e| PgError::Sql(format!("{sql}: {e}")))?;
    rows.iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .ok_or_else(|| PgError::Sql(format!("{sql}: no row")))
}
