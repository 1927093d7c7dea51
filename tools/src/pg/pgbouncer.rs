//! A throwaway PgBouncer (the Debian package `pgbouncer`) in front of a throwaway cluster,
//! in `pool_mode = transaction`, for the tests and the benchmark that run through it.
//!
//! It listens on a free 127.0.0.1 port, forwards every database to the cluster's database of
//! the same name as the `postgres` user (`auth_type = any`), keeps [`SERVER_POOL`] server
//! connections per database, and runs as the `postgres` user when running as root
//! (PgBouncer refuses to run as root). A watchdog stops it once the process that started it
//! is gone; dropping the [`PgBouncer`] stops it at once.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Cluster, PgError, free_port, new_base_dir, postgres_ids, running_as_root};

/// Server connections PgBouncer keeps per database: fewer than the tests' concurrent
/// sessions, so that transactions of different sessions share server connections.
pub const SERVER_POOL: u32 = 4;

/// A running PgBouncer; see the [module docs](self).
pub struct PgBouncer {
    child: Child,
    port: u16,
    base: PathBuf,
}

/// Where the `pgbouncer` binary is: on `PATH` or Debian's `/usr/sbin`.
fn binary() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push("/usr/sbin".into());
    dirs.into_iter()
        .map(|d| d.join("pgbouncer"))
        .find(|p| p.is_file())
}

impl PgBouncer {
    /// Starts PgBouncer in front of `cluster` (one this process started).
    ///
    /// # Errors
    /// [`PgError::Command`] when the binary is missing (install the Debian package
    /// `pgbouncer`), or with PgBouncer's log when it does not come up within 10 s.
    pub fn start(cluster: &Cluster) -> Result<PgBouncer, PgError> {
        PgBouncer::start_with(cluster, SERVER_POOL)
    }

    /// [`PgBouncer::start`] with `server_pool` server connections per database.
    ///
    /// # Errors
    /// As [`PgBouncer::start`].
    pub fn start_with(cluster: &Cluster, server_pool: u32) -> Result<PgBouncer, PgError> {
        let Some(bin) = binary() else {
            return Err(PgError::Command {
                what: "starting pgbouncer".into(),
                log: "no pgbouncer binary on PATH or in /usr/sbin: install the Debian package \
                      `pgbouncer` (apt-get install pgbouncer)"
                    .into(),
            });
        };
        let Some(server_port) = cluster.port() else {
            return Err(PgError::Command {
                what: "starting pgbouncer".into(),
                log: "only a cluster this process started can have a pgbouncer".into(),
            });
        };
        let base = new_base_dir()?;
        let port = free_port()?;
        let ini = base.join("pgbouncer.ini");
        let log = base.join("pgbouncer.log");
        fs::write(
            &ini,
            format!(
                "[databases]\n\
                 * = host=127.0.0.1 port={server_port} user=postgres\n\
                 [pgbouncer]\n\
                 listen_addr = 127.0.0.1\n\
                 listen_port = {port}\n\
                 unix_socket_dir =\n\
                 auth_type = any\n\
                 pool_mode = transaction\n\
                 default_pool_size = {server_pool}\n\
                 max_client_conn = 500\n\
                 ignore_startup_parameters = extra_float_digits,options\n\
                 logfile = {}\n\
                 pidfile = {}\n",
                log.display(),
                base.join("pgbouncer.pid").display()
            ),
        )?;
        let as_postgres = running_as_root();
        if as_postgres {
            let (uid, gid) = postgres_ids()?;
            std::os::unix::fs::chown(&base, Some(uid), Some(gid))?;
            std::os::unix::fs::chown(&ini, Some(uid), Some(gid))?;
        }
        let mut command = if as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&bin);
            c
        } else {
            Command::new(&bin)
        };
        let child = command
            .arg(&ini)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let bouncer = PgBouncer { child, port, base };
        bouncer.spawn_watchdog()?;
        bouncer.wait_listening(&log)?;
        Ok(bouncer)
    }

    /// The port PgBouncer listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name` through PgBouncer.
    pub fn database_url(&self, name: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// `url` (a database of the cluster behind) with PgBouncer's address instead.
    pub fn through(&self, url: &str) -> String {
        let name = url
            .rsplit('/')
            .next()
            .and_then(|tail| tail.split('?').next())
            .unwrap_or("postgres");
        self.database_url(name)
    }

    fn wait_listening(&self, log: &Path) -> Result<(), PgError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(PgError::Command {
            what: format!("pgbouncer on port {}", self.port),
            log: fs::read_to_string(log).unwrap_or_else(|e| format!("(no log: {e})")),
        })
    }

    /// Stops PgBouncer and removes its directory once this process is gone.
    fn spawn_watchdog(&self) -> Result<(), PgError> {
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
             kill $(cat '{base}/pgbouncer.pid') {child} 2>/dev/null; sleep 0.2; rm -rf '{base}'",
            pid = std::process::id(),
            child = self.child.id(),
            base = self.base.display(),
        );
        std::os::unix::process::CommandExt::process_group(
            Command::new("sh")
                .arg("-c")
                .arg(script)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            0,
        )
        .spawn()?;
        Ok(())
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        // The child may be `runuser`, which does not pass SIGKILL on: stop PgBouncer itself.
        if let Ok(pid) = fs::read_to_string(self.base.join("pgbouncer.pid")) {
            let _ = Command::new("kill")
                .arg(pid.trim())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.base);
    }
}
