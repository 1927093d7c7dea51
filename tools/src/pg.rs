//! Throwaway PostgreSQL clusters for tests, examples, the demo and the benchmarks.
//!
//! [`Cluster::start`] uses `DATABASE_URL` when it is set. Otherwise it finds the server
//! binaries (`initdb`, `pg_ctl`, `postgres`: on `PATH`, in `pg_config --bindir`, or under
//! `/usr/lib/postgresql/*/bin`, newest first), fills a fresh directory (on `/dev/shm` when it
//! is a writable tmpfs) with a copy of a cached `initdb` output
//! and starts the server on a free 127.0.0.1 port with a private socket directory and
//! `fsync=off`, as the `postgres` user (through `runuser`) when running as root, since
//! PostgreSQL refuses to run as root. Dropping the [`Cluster`] stops the server and deletes the
//! directory, also while a test panics.
//!
//! Each cluster also has a watchdog process that stops it and deletes its directory once the
//! process that started it is gone, so a cluster shared by a whole test binary
//! ([`shared`], never dropped) or left by a killed run is cleaned up as well; directories a
//! killed run left behind are removed at the next start.

use std::fmt;
use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod standby;

pub use standby::REPLICATION_HBA;

/// Prefix of the temporary directories clusters live in.
const DIR_PREFIX: &str = "session-pg-";

pub mod pgbouncer;

/// Why a throwaway cluster could not be had.
#[derive(Debug)]
#[non_exhaustive]
pub enum PgError {
    /// No PostgreSQL server binaries were found.
    BinariesMissing {
        /// Where we looked.
        searched: Vec<PathBuf>,
    },
    /// Running as root, but there is no `postgres` user to run the server as.
    NoPostgresUser,
    /// A command failed; `log` holds what it printed.
    Command {
        /// What we ran.
        what: String,
        /// Its output or the server log.
        log: String,
    },
    /// A file-system or process error.
    Io(std::io::Error),
    /// The server started but a statement against it failed.
    Sql(String),
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PgError::BinariesMissing { searched } => write!(
                f,
                "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found; looked on PATH, \
                 in `pg_config --bindir` and in {}. Install them (Debian/Ubuntu: \
                 `apt-get install postgresql`) or set DATABASE_URL to a server you can create \
                 databases on",
                searched
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            PgError::NoPostgresUser => write!(
                f,
                "running as root, and PostgreSQL refuses to run as root, but there is no \
                 `postgres` user to run it as; install the `postgresql` package (which creates \
                 it), run as another user, or set DATABASE_URL"
            ),
            PgError::Command { what, log } => write!(f, "{what} failed:\n{log}"),
            PgError::Io(e) => write!(f, "throwaway PostgreSQL: {e}"),
            PgError::Sql(e) => write!(f, "throwaway PostgreSQL: {e}"),
        }
    }
}

impl std::error::Error for PgError {}

impl From<std::io::Error> for PgError {
    fn from(e: std::io::Error) -> Self {
        PgError::Io(e)
    }
}

/// A PostgreSQL server to run against: one this process started (stopped and deleted on drop),
/// or the external one `DATABASE_URL` names.
pub struct Cluster {
    url: String,
    owned: Option<Owned>,
    started_in: Duration,
}

struct Owned {
    base: PathBuf,
    data: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    port: u16,
    /// Extra `-c name=value` options of [`ClusterOptions::settings`].
    extra: String,
}

/// What a cluster started by [`Cluster::start_owned_with`] has beyond the defaults: e.g.
/// `ssl = on` with certificate files made by the test, and a `pg_hba.conf` of its own.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// Server settings, passed as `-c name=value`.
    pub settings: Vec<(String, String)>,
    /// Files written into the data directory before the server starts (name, contents),
    /// owned by the server's user with mode 0600 (as PostgreSQL wants a key file).
    pub files: Vec<(String, Vec<u8>)>,
    /// The whole `pg_hba.conf`, replacing initdb's (`trust` for everyone).
    pub hba: Option<String>,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("url", &self.url)
            .field("owned", &self.owned.is_some())
            .finish()
    }
}

static DB_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Cluster {
    /// The server of `DATABASE_URL` when set, else a new throwaway cluster.
    ///
    /// # Errors
    /// See [`Cluster::start_owned`].
    pub fn start() -> Result<Cluster, PgError> {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => Ok(Cluster {
                url,
                owned: None,
                started_in: Duration::ZERO,
            }),
            _ => Cluster::start_owned(),
        }
    }

    /// Always a new throwaway cluster, whatever `DATABASE_URL` says (for tests that stop or
    /// restart their server).
    ///
    /// # Errors
    /// [`PgError::BinariesMissing`] with what to install, [`PgError::NoPostgresUser`], or
    /// [`PgError::Command`] carrying `initdb`'s output or the server log.
    pub fn start_owned() -> Result<Cluster, PgError> {
        Cluster::start_owned_with(ClusterOptions::default())
    }

    /// [`Cluster::start_owned`] with `options`' settings, files and `pg_hba.conf`.
    ///
    /// # Errors
    /// As [`Cluster::start_owned`]; [`PgError::Io`] when a file cannot be written.
    pub fn start_owned_with(options: ClusterOptions) -> Result<Cluster, PgError> {
        let started = Instant::now();
        remove_stale_clusters();
        let bin = find_bin_dir()?;
        let as_postgres = running_as_root();
        let base = new_base_dir()?;
        let data = base.join("data");
        if as_postgres {
            let (uid, gid) = postgres_ids()?;
            std::os::unix::fs::chown(&base, Some(uid), Some(gid))?;
        }
        let extra = options
            .settings
            .iter()
            .map(|(k, v)| format!(" -c {k}={v}"))
            .collect();
        let mut owned = Owned {
            base,
            data,
            bin,
            as_postgres,
            port: 0,
            extra,
        };
        spawn_watchdog(&owned)?;
        owned.initdb()?;
        owned.write_files(&options)?;
        owned.start_on_free_port()?;
        Ok(Cluster {
            url: format!("postgresql://postgres@127.0.0.1:{}/postgres", owned.port),
            owned: Some(owned),
            started_in: started.elapsed(),
        })
    }

    /// URL of the cluster's maintenance database (`postgres`), or `DATABASE_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The TCP port of a cluster this process started (`None` for `DATABASE_URL`).
    pub fn port(&self) -> Option<u16> {
        self.owned.as_ref().map(|o| o.port)
    }

    /// How long starting took (zero for `DATABASE_URL`).
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// True when this process started the server (not `DATABASE_URL`).
    pub fn is_owned(&self) -> bool {
        self.owned.is_some()
    }

    /// The same server, database `name`.
    pub fn database_url(&self, name: &str) -> String {
        with_database(&self.url, name)
    }

    /// Creates a new, empty database with a unique name starting with `prefix` and returns its
    /// URL. Tests each take their own, so they run in parallel without seeing each other.
    ///
    /// # Errors
    /// [`PgError::Sql`] when the server refuses (e.g. no CREATEDB right on `DATABASE_URL`).
    pub async fn create_database(&self, prefix: &str) -> Result<String, PgError> {
        let clean: String = prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(32)
            .collect();
        let name = format!(
            "{clean}_{}_{}",
            std::process::id(),
            DB_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .map_err(|e| PgError::Sql(format!("connecting to {}: {e}", self.url)))?;
        let task = tokio::spawn(connection);
        let result = client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .map_err(|e| PgError::Sql(format!("CREATE DATABASE {name}: {e}")));
        drop(client);
        let _ = task.await;
        result.map(|()| self.database_url(&name))
    }

    /// Stops the server now (fast shutdown), keeping its directory until drop.
    ///
    /// # Errors
    /// [`PgError::Command`] when `pg_ctl stop` fails; an external server cannot be stopped.
    pub fn stop_server(&self) -> Result<(), PgError> {
        match &self.owned {
            Some(owned) => owned.pg_ctl(&["stop", "-m", "fast", "-w"]),
            None => Err(PgError::Command {
                what: "stopping the DATABASE_URL server".into(),
                log: "only a cluster this process started can be stopped".into(),
            }),
        }
    }

    /// Starts a stopped server again on the same port.
    ///
    /// # Errors
    /// [`PgError::Command`] with the server log.
    pub fn start_server(&self) -> Result<(), PgError> {
        match &self.owned {
            Some(owned) => owned.start(owned.port),
            None => Err(PgError::Command {
                what: "starting the DATABASE_URL server".into(),
                log: "only a cluster this process started can be started".into(),
            }),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(owned) = &self.owned {
            let _ = owned.pg_ctl(&["stop", "-m", "immediate", "-w"]);
            let _ = fs::remove_dir_all(&owned.base);
        }
    }
}

/// The cluster shared by every test of this process: started on first use, stopped and deleted
/// by its watchdog when the process exits.
///
/// # Errors
/// As [`Cluster::start`], once per process (later calls return the same error text).
pub fn shared() -> Result<&'static Cluster, PgError> {
    static SHARED: OnceLock<Result<Cluster, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| Cluster::start().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| PgError::Command {
            what: "starting the shared throwaway PostgreSQL".into(),
            log: e.clone(),
        })
}

impl Owned {
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// Fills the data directory: a copy of a cached, pristine `initdb` output (made once per
    /// server build and user, atomically), which is several times faster than `initdb`.
    fn initdb(&self) -> Result<(), PgError> {
        let template = template_dir(&self.bin);
        if !template.join("PG_VERSION").is_file() {
            let staging = base_root().join(format!(
                "{DIR_PREFIX}template-staging-{}-{}",
                std::process::id(),
                DB_COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&staging);
            fs::create_dir_all(&staging)?;
            if self.as_postgres {
                let (uid, gid) = postgres_ids()?;
                std::os::unix::fs::chown(&staging, Some(uid), Some(gid))?;
            }
            let result = self.initdb_into(&staging.join("data"));
            if result.is_ok() && fs::rename(staging.join("data"), &template).is_err() {
                // Another process made the template first: use theirs.
            }
            let _ = fs::remove_dir_all(&staging);
            result?;
        }
        let out = Command::new("cp")
            .arg("-a")
            .arg(&template)
            .arg(&self.data)
            .output()?;
        if !out.status.success() || !self.data.join("PG_VERSION").is_file() {
            // A damaged cache: fall back to initdb, and drop the cache for next time.
            let _ = fs::remove_dir_all(&template);
            let _ = fs::remove_dir_all(&self.data);
            return self.initdb_into(&self.data);
        }
        Ok(())
    }

    fn write_files(&self, options: &ClusterOptions) -> Result<(), PgError> {
        use std::os::unix::fs::PermissionsExt;
        let hba = options
            .hba
            .as_ref()
            .map(|h| ("pg_hba.conf".to_string(), h.clone().into_bytes()));
        for (name, contents) in options.files.iter().cloned().chain(hba) {
            let path = self.data.join(&name);
            fs::write(&path, contents)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
            if self.as_postgres {
                let (uid, gid) = postgres_ids()?;
                std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
            }
        }
        Ok(())
    }

    fn initdb_into(&self, data: &Path) -> Result<(), PgError> {
        let out = self
            .command("initdb")
            .arg("-D")
            .arg(data)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(PgError::Command {
                what: format!("initdb -D {}", data.display()),
                log: format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            });
        }
        Ok(())
    }

    fn start_on_free_port(&mut self) -> Result<(), PgError> {
        let mut last = None;
        for _ in 0..5 {
            let port = free_port()?;
            match self.start(port) {
                Ok(()) => {
                    self.port = port;
                    return Ok(());
                }
                Err(PgError::Command { what, log })
                    if log.contains("could not bind") || log.contains("already in use") =>
                {
                    last = Some(PgError::Command { what, log });
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(PgError::Command {
            what: "pg_ctl start".into(),
            log: "no free port".into(),
        }))
    }

    fn start(&self, port: u16) -> Result<(), PgError> {
        let log = self.base.join("server.log");
        let options = format!(
            "-F -p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 \
             -c synchronous_commit=off -c full_page_writes=off -c autovacuum=off -c log_min_messages=warning{}",
            self.base.display(),
            self.extra
        );
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(PgError::Command {
                what: format!("pg_ctl start (port {port})"),
                log: format!(
                    "{}{}\n--- server log ---\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr),
                    fs::read_to_string(&log).unwrap_or_default()
                ),
            });
        }
        Ok(())
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), PgError> {
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(args)
            .stdin(Stdio::null())
            .output()?;
        if out.status.success() {
            Ok(())
        } else {
            Err(PgError::Command {
                what: format!("pg_ctl {}", args.join(" ")),
                log: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }
}

/// Replaces the database of a `postgresql://` URL (or appends `dbname=` to a key-value string).
fn with_database(url: &str, name: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let (authority, query) = match rest.find(['/', '?']) {
            Some(i) => {
                let (auth, tail) = rest.split_at(i);
                let query = tail.find('?').map(|q| &tail[q..]).unwrap_or("");
                (auth, query)
            }
            None => (rest, ""),
        };
        format!("{scheme}://{authority}/{name}{query}")
    } else {
        format!("{url} dbname={name}")
    }
}

/// Where the pristine data directory of the server in `bin` is cached for this user.
fn template_dir(bin: &Path) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bin.hash(&mut h);
    fs::metadata(bin.join("postgres"))
        .and_then(|m| m.modified())
        .ok()
        .hash(&mut h);
    let uid = fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0);
    base_root().join(format!("{DIR_PREFIX}template-{:016x}-{uid}", h.finish()))
}

fn free_port() -> Result<u16, PgError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn postgres_ids() -> Result<(u32, u32), PgError> {
    let passwd = fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.first() == Some(&"postgres") && f.len() > 3)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                .flatten()
        })
        .ok_or(PgError::NoPostgresUser)
}

fn has_server(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|b| dir.join(b).is_file())
}

/// Finds the directory holding `initdb`, `pg_ctl` and `postgres`.
fn find_bin_dir() -> Result<PathBuf, PgError> {
    let mut searched = Vec::new();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let initdb = dir.join("initdb");
            if initdb.is_file() {
                if let Some(real) = fs::canonicalize(&initdb)
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_path_buf))
                {
                    if has_server(&real) {
                        return Ok(real);
                    }
                }
                if has_server(&dir) {
                    return Ok(dir);
                }
            }
        }
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_server(&dir) {
            return Ok(dir);
        }
    }
    let root = Path::new("/usr/lib/postgresql");
    searched.push(root.join("*/bin"));
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .collect();
    versions.sort_by_key(|v| std::cmp::Reverse(v.0));
    versions
        .into_iter()
        .map(|(_, dir)| dir)
        .find(|dir| has_server(dir))
        .ok_or(PgError::BinariesMissing { searched })
}

/// Where clusters live: `SESSION_PG_DIR` when set, else `/dev/shm` when it is a writable tmpfs
/// (creating a data directory there is about ten times faster than on disk, and a throwaway
/// cluster needs no durability), else the temporary directory.
fn base_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("SESSION_PG_DIR") {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    let probe = shm.join(format!("{DIR_PREFIX}probe-{}", std::process::id()));
    if fs::create_dir(&probe).is_ok() {
        let _ = fs::remove_dir(&probe);
        return shm.to_path_buf();
    }
    std::env::temp_dir()
}

fn new_base_dir() -> Result<PathBuf, PgError> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let base = base_root().join(format!("{DIR_PREFIX}{}-{nanos}", std::process::id()));
    fs::create_dir_all(&base)?;
    Ok(base)
}

/// Stops and deletes clusters whose creating process is gone (a killed test run).
fn remove_stale_clusters() {
    let Ok(entries) = fs::read_dir(base_root()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(DIR_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let base = entry.path();
        if let Some(postmaster) = fs::read_to_string(base.join("data/postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
        {
            let _ = Command::new("kill")
                .args(["-QUIT", &postmaster.to_string()])
                .status();
        }
        let _ = fs::remove_dir_all(&base);
    }
}

/// Starts a detached process that waits for this one to exit, then stops the cluster and
/// deletes its directory.
fn spawn_watchdog(owned: &Owned) -> Result<(), PgError> {
    let runas = if owned.as_postgres {
        "runuser -u postgres -- "
    } else {
        ""
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
         {runas}'{pg_ctl}' -D '{data}' stop -m immediate -w >/dev/null 2>&1; \
         rm -rf '{base}'",
        pid = std::process::id(),
        pg_ctl = owned.bin.join("pg_ctl").display(),
        data = owned.data.display(),
        base = owned.base.display(),
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_database() {
        assert_eq!(
            with_database("postgresql://postgres@127.0.0.1:5/postgres", "t1"),
            "postgresql://postgres@127.0.0.1:5/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
        assert_eq!(
            with_database("host=h user=u", "x"),
            "host=h user=u dbname=x"
        );
    }
}
