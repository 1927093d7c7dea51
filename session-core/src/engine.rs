//! [`Engine`]: a pool of tokio-postgres connections (SQLAlchemy's `create_async_engine`).

use std::fmt;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bb8::{Pool, PooledConnection, RunError};

use crate::error::{Error, Result};
use crate::pool::{ConnectFailure, ConnectFailures, Manager, TracingSink};
use crate::replicas::ReplicaSet;
use crate::telemetry::{self, Telemetry};
use crate::tls::{self, RootCert, SslMode, TlsSettings};
use crate::tx_options::TransactionOptions;
use crate::url;

type PgPool = Pool<Manager>;

/// The pool is built on first use, inside the runtime that uses it (bb8 spawns its reaper
/// there), so that an engine can be made anywhere, as in SQLAlchemy.
enum Slot {
    Unstarted(Box<(bb8::Builder<Manager>, Manager)>),
    Started(PgPool),
    Disposed,
}

/// Creates an [`Engine`] for `url` with the default options (SQLAlchemy's
/// `create_async_engine(url)`).
///
/// No connection is opened here: the pool connects on first use.
///
/// # Errors
/// [`Error::Config`] when the URL is malformed or not a PostgreSQL URL.
///
/// ```
/// let engine = session_core::create_async_engine("postgresql://scott:tiger@localhost/test")?;
/// assert_eq!(format!("{engine:?}"), "Engine(postgresql://scott@localhost:5432/test)");
/// # Ok::<(), session_core::Error>(())
/// ```
pub fn create_async_engine(url: &str) -> Result<Engine> {
    Engine::builder(url).build()
}

/// A pool of PostgreSQL connections and the options statements run with.
///
/// Cheap to clone: clones share the pool. Made with [`create_async_engine`] or
/// [`Engine::builder`].
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

struct Shared {
    url: String,
    pool: RwLock<Slot>,
    failures: Arc<ConnectFailures>,
    echo: bool,
    pool_size: u32,
    checkout_timeout: Duration,
    ssl_mode: SslMode,
    ssl_asked: bool,
    encrypted: Arc<AtomicU32>,
    transaction_options: TransactionOptions,
    execution_options: crate::ExecutionOptions,
    telemetry: Telemetry,
    replicas: Option<Arc<ReplicaSet<Engine>>>,
}

/// Options for an [`Engine`]; every option documents its default.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build()` is called"]
pub struct EngineBuilder {
    url: String,
    pool_size: u32,
    min_idle: Option<u32>,
    checkout_timeout: Duration,
    connect_timeout: Option<Duration>,
    max_lifetime: Option<Duration>,
    idle_timeout: Option<Duration>,
    test_on_checkout: bool,
    application_name: Option<String>,
    echo: bool,
    tls: TlsSettings,
    transaction_options: TransactionOptions,
    execution_options: crate::ExecutionOptions,
    statement_cache_size: usize,
    slow_statement_threshold: Option<Duration>,
    replica_urls: Vec<String>,
    replica_max_lag: Option<Duration>,
    read_your_writes: Option<Duration>,
}

impl Engine {
    /// Starts configuring an engine for `url` (`postgresql://user:password@host:port/db?...`,
    /// `postgres://...`, or a libpq `key=value` string).
    pub fn builder(url: impl Into<String>) -> EngineBuilder {
        EngineBuilder {
            url: url.into(),
            pool_size: 10,
            min_idle: None,
            checkout_timeout: Duration::from_secs(30),
            connect_timeout: None,
            max_lifetime: Some(Duration::from_secs(30 * 60)),
            idle_timeout: Some(Duration::from_secs(10 * 60)),
            test_on_checkout: true,
            application_name: None,
            echo: false,
            tls: TlsSettings::default(),
            transaction_options: TransactionOptions::new(),
            execution_options: crate::ExecutionOptions::new(),
            statement_cache_size: crate::pool::STATEMENT_CACHE_CAPACITY,
            slow_statement_threshold: None,
            replica_urls: Vec::new(),
            replica_max_lag: None,
            read_your_writes: None,
        }
    }

    /// Takes a pooled connection (what [`AsyncConnection`](crate::AsyncConnection) wraps).
    pub(crate) async fn checkout(&self) -> Result<PooledConnection<'static, Manager>> {
        let span = telemetry::checkout_span(&self.shared.telemetry);
        telemetry::traced(span, self.checkout_untraced()).await
    }

    async fn checkout_untraced(&self) -> Result<PooledConnection<'static, Manager>> {
        let pool = self.pool()?;
        let failures = &self.shared.failures;
        let mut checkout = pin!(pool.get_owned());
        loop {
            let seen = failures.generation();
            let mut failed = pin!(failures.notify.notified());
            failed.as_mut().enable();
            // A failure recorded before `enable()` shows in the generation counter.
            if failures.generation() == seen {
                tokio::select! {
                    biased;
                    got = &mut checkout => {
                        return match got {
                            Ok(conn) => Ok(conn),
                            Err(RunError::TimedOut) => Err(self.pool_timeout_error()),
                            Err(RunError::User(e)) => {
                                Err(self.connect_error(ConnectFailure::new(e)))
                            }
                        };
                    }
                    () = failed.as_mut() => {}
                }
            }
            // Opening a connection failed. With none open, waiting cannot help: say why now.
            if pool.state().connections == 0 {
                return Err(match failures.last() {
                    Some(failure) => self.connect_error(failure),
                    None => Error::Connect {
                        url: self.shared.url.clone(),
                        message: "unknown error".into(),
                        source: None,
                    },
                });
            }
        }
    }

    /// Closes the pool's idle connections and refuses every later checkout with
    /// [`Error::Disposed`] (SQLAlchemy's `await engine.dispose()`).
    ///
    /// Connections checked out now stay usable; each is closed when it is given back.
    pub async fn dispose(&self) {
        let old = std::mem::replace(
            &mut *self.shared.pool.write().unwrap_or_else(|p| p.into_inner()),
            Slot::Disposed,
        );
        drop(old);
        if let Some(replicas) = &self.shared.replicas {
            for replica in &replicas.engines {
                Box::pin(replica.dispose()).await;
            }
        }
        // Let the connection tasks see their clients dropped.
        tokio::task::yield_now().await;
    }

    /// True after [`Engine::dispose`].
    pub fn is_disposed(&self) -> bool {
        matches!(
            *self.shared.pool.read().unwrap_or_else(|p| p.into_inner()),
            Slot::Disposed
        )
    }

    /// A snapshot of the pool (SQLAlchemy's `engine.pool.status()`).
    pub fn status(&self) -> PoolStatus {
        let slot = self.shared.pool.read().unwrap_or_else(|p| p.into_inner());
        match &*slot {
            Slot::Started(pool) => {
                let state = pool.state();
                let stats = &state.statistics;
                PoolStatus {
                    size: self.shared.pool_size,
                    connections: state.connections,
                    idle: state.idle_connections,
                    checked_out: state.connections - state.idle_connections,
                    encrypted: self.shared.encrypted.load(Ordering::Relaxed),
                    disposed: false,
                    checkouts: stats.get_direct + stats.get_waited,
                    waits: stats.get_waited,
                    wait_timeouts: stats.get_timed_out,
                    wait_time: stats.get_wait_time,
                    opened: stats.connections_created,
                    discarded: stats.connections_closed_broken + stats.connections_closed_invalid,
                }
            }
            Slot::Unstarted(_) | Slot::Disposed => PoolStatus {
                size: self.shared.pool_size,
                connections: 0,
                idle: 0,
                checked_out: 0,
                encrypted: 0,
                disposed: matches!(*slot, Slot::Disposed),
                checkouts: 0,
                waits: 0,
                wait_timeouts: 0,
                wait_time: Duration::ZERO,
                opened: 0,
                discarded: 0,
            },
        }
    }

    /// The URL without its password, e.g. `postgresql://scott@localhost:5432/test`.
    pub fn url(&self) -> &str {
        &self.shared.url
    }

    /// The options every transaction on this engine's connections begins with, unless the
    /// transaction's own say otherwise.
    pub fn transaction_options(&self) -> TransactionOptions {
        self.shared.transaction_options
    }

    /// The execution options of every statement a session runs on this engine, unless the
    /// session's, the statement's or the call's say otherwise.
    pub fn execution_options(&self) -> &crate::ExecutionOptions {
        &self.shared.execution_options
    }

    /// The `sslmode` connections use (libpq's; `prefer` unless the URL or the builder says
    /// otherwise). How many open connections are encrypted is in [`Engine::status`].
    pub fn ssl_mode(&self) -> SslMode {
        self.shared.ssl_mode
    }

    /// Whether statements are logged through `tracing` (target `session_core::echo`).
    pub fn echo(&self) -> bool {
        self.shared.echo
    }

    /// Statements at least this slow are logged at WARN (see
    /// [`EngineBuilder::slow_statement_threshold`]); `None` when not set.
    pub fn slow_statement_threshold(&self) -> Option<Duration> {
        self.shared.telemetry.slow
    }

    /// The engines of the read replicas ([`EngineBuilder::read_replica`]), in the order they
    /// were given; each has its own pool (see its [`Engine::status`]).
    pub fn replicas(&self) -> &[Engine] {
        self.shared
            .replicas
            .as_deref()
            .map_or(&[], |set| set.engines.as_slice())
    }

    /// The replicas and their routing state, when there are any.
    pub(crate) fn replica_set(&self) -> Option<&ReplicaSet<Engine>> {
        self.shared.replicas.as_deref()
    }

    /// What this engine's spans carry.
    pub(crate) fn telemetry(&self) -> &Telemetry {
        &self.shared.telemetry
    }

    /// True when both handles share one pool.
    pub(crate) fn same_pool(&self, other: &Engine) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    fn pool(&self) -> Result<PgPool> {
        if let Slot::Started(pool) = &*self.shared.pool.read().unwrap_or_else(|p| p.into_inner()) {
            return Ok(pool.clone());
        }
        let mut slot = self.shared.pool.write().unwrap_or_else(|p| p.into_inner());
        match std::mem::replace(&mut *slot, Slot::Disposed) {
            Slot::Started(pool) => {
                *slot = Slot::Started(pool.clone());
                Ok(pool)
            }
            Slot::Unstarted(parts) => {
                let (builder, manager) = *parts;
                let pool = builder.build_unchecked(manager);
                *slot = Slot::Started(pool.clone());
                Ok(pool)
            }
            Slot::Disposed => Err(Error::Disposed),
        }
    }

    fn pool_timeout_error(&self) -> Error {
        Error::PoolTimeout {
            pool_size: self.shared.pool_size,
            timeout: self.shared.checkout_timeout,
        }
    }

    fn connect_error(&self, failure: ConnectFailure) -> Error {
        Error::Connect {
            url: self.shared.url.clone(),
            message: failure.message,
            source: Some(failure.error),
        }
    }
}

impl fmt::Debug for Engine {
    /// `Engine(postgresql://user@host:port/db)`, never the password; with the `sslmode` when
    /// one was asked for, and once connections are open, how many of them are encrypted:
    /// `Engine(postgresql://u@h:5432/db, sslmode=verify-full, encrypted 2/2)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Engine({}", self.shared.url)?;
        if self.shared.ssl_asked {
            write!(f, ", sslmode={}", self.shared.ssl_mode)?;
        }
        let status = self.status();
        if status.connections > 0 {
            write!(f, ", encrypted {}/{}", status.encrypted, status.connections)?;
        }
        write!(f, ")")
    }
}

impl EngineBuilder {
    /// Maximum number of connections the pool opens. Defaults to 10.
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = size;
        self
    }

    /// Idle connections the pool keeps open. Defaults to none (connections are opened on
    /// demand and kept until `idle_timeout`).
    pub fn min_idle(mut self, min_idle: Option<u32>) -> Self {
        self.min_idle = min_idle;
        self
    }

    /// How long a checkout waits for a free connection before [`Error::PoolTimeout`]
    /// (SQLAlchemy's `pool_timeout`). Defaults to 30 seconds.
    pub fn checkout_timeout(mut self, timeout: Duration) -> Self {
        self.checkout_timeout = timeout;
        self
    }

    /// How long opening one connection may take. Defaults to the URL's `connect_timeout`
    /// option, else 10 seconds.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Connections older than this are closed when given back (SQLAlchemy's `pool_recycle`).
    /// Defaults to 30 minutes; `None` keeps them forever.
    pub fn max_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.max_lifetime = lifetime;
        self
    }

    /// Idle connections older than this are closed. Defaults to 10 minutes.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Check each connection with an empty query before handing it out, replacing it when the
    /// server has gone away (SQLAlchemy's `pool_pre_ping`). Defaults to true.
    pub fn test_on_checkout(mut self, test: bool) -> Self {
        self.test_on_checkout = test;
        self
    }

    /// The `application_name` the server shows in `pg_stat_activity`. Defaults to the URL's,
    /// else none.
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = Some(name.into());
        self
    }

    /// Log every statement with its parameters, row count and elapsed time through `tracing`
    /// at INFO under the target `session_core::echo` (SQLAlchemy's `echo=True`). Defaults to
    /// false.
    pub fn echo(mut self, echo: bool) -> Self {
        self.echo = echo;
        self
    }

    /// Log every statement that takes at least `threshold` at WARN under the target
    /// `session_core::slow`, with its SQL (never the parameter values) and how long it took.
    /// Defaults to none (no statement is timed against a threshold).
    pub fn slow_statement_threshold(mut self, threshold: Duration) -> Self {
        self.slow_statement_threshold = Some(threshold);
        self
    }

    /// A streaming standby (hot standby) that sessions' reads may go to, by URL; call once per
    /// replica. The replica's engine gets this builder's options (pool size, timeouts, TLS,
    /// ...) and a pool of its own. How reads are routed: [`crate::replicas`]. Defaults to
    /// none: everything runs on the primary.
    pub fn read_replica(mut self, url: impl Into<String>) -> Self {
        self.replica_urls.push(url.into());
        self
    }

    /// Skip a replica whose replay is further behind than `lag` (see
    /// [`crate::replicas`] for how lag is measured). Defaults to no bound.
    pub fn replica_max_lag(mut self, lag: Duration) -> Self {
        self.replica_max_lag = Some(lag);
        self
    }

    /// Read-your-writes: before a session's transaction reads from a replica, wait up to
    /// `wait` until the replica has replayed that session's last commit; a replica still
    /// behind then is skipped (the read goes to another replica or the primary). Costs one
    /// query on the primary after each transaction that used it. Defaults to off.
    pub fn read_your_writes(mut self, wait: Duration) -> Self {
        self.read_your_writes = Some(wait);
        self
    }

    /// The options every transaction begins with (isolation level, read only, deferrable;
    /// SQLAlchemy's `create_engine(isolation_level=...)`). A session's, a factory's or a
    /// transaction's own options win where they are set. Defaults to none (PostgreSQL's).
    pub fn transaction_options(mut self, options: TransactionOptions) -> Self {
        self.transaction_options = options;
        self
    }

    /// Execution options for every statement sessions run on this engine (SQLAlchemy's
    /// `create_engine(execution_options=...)`); the session's, the statement's and the call's
    /// win where they are set. Defaults to none.
    pub fn execution_options(mut self, options: crate::ExecutionOptions) -> Self {
        self.execution_options = options;
        self
    }

    /// How many prepared statements each connection keeps (SQLAlchemy's asyncpg
    /// `prepared_statement_cache_size`). Defaults to 512; the oldest is closed when a new one
    /// needs the room.
    ///
    /// `0` turns the cache off: each statement is prepared when it runs and closed right
    /// after, inside its transaction (a statement run outside one gets a transaction of its
    /// own). That is what PgBouncer's `pool_mode = transaction` needs (before PgBouncer 1.21's
    /// `max_prepared_statements`), since each transaction may run on another server
    /// connection, where a statement prepared earlier does not exist.
    ///
    /// ```
    /// # fn demo() -> session_core::Result<()> {
    /// // Through PgBouncer in transaction mode:
    /// let engine = session_core::Engine::builder("postgresql://app@pgbouncer:6432/app")
    ///     .statement_cache_size(0)
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn statement_cache_size(mut self, statements: usize) -> Self {
        self.statement_cache_size = statements;
        self
    }

    /// How connections use TLS (libpq's `sslmode`; see [`SslMode`]). Defaults to the URL's
    /// `sslmode`, else `prefer`.
    pub fn ssl_mode(mut self, mode: SslMode) -> Self {
        self.tls.mode = Some(mode);
        self
    }

    /// The trusted root certificates (PEM) the server's certificate must chain to under
    /// `verify-ca` / `verify-full` (libpq's `sslrootcert`). Defaults to the URL's, else
    /// `~/.postgresql/root.crt`.
    pub fn ssl_root_cert(mut self, pem_file: impl Into<PathBuf>) -> Self {
        self.tls.root_cert = Some(RootCert::File(pem_file.into()));
        self
    }

    /// Trust the platform's root certificates (libpq's `sslrootcert=system`).
    pub fn ssl_system_roots(mut self) -> Self {
        self.tls.root_cert = Some(RootCert::System);
        self
    }

    /// A client certificate and its private key (PEM files) for `cert` authentication
    /// (libpq's `sslcert` / `sslkey`). Defaults to the URL's, else
    /// `~/.postgresql/postgresql.crt` / `.key` when both exist.
    pub fn ssl_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls.cert = Some(cert.into());
        self.tls.key = Some(key.into());
        self
    }

    /// Makes the engine. Opens no connection.
    ///
    /// # Errors
    /// [`Error::Config`] for a malformed URL or an invalid option, naming it: an unknown
    /// `sslmode`, a certificate file that is missing or holds no certificate, a verifying
    /// mode without root certificates.
    pub fn build(self) -> Result<Engine> {
        if self.pool_size == 0 {
            return Err(Error::Config("pool_size must be at least 1".into()));
        }
        if self.min_idle.is_some_and(|m| m > self.pool_size) {
            return Err(Error::Config(format!(
                "min_idle ({}) must not exceed pool_size ({})",
                self.min_idle.unwrap_or_default(),
                self.pool_size
            )));
        }
        let replicas = if self.replica_urls.is_empty() {
            None
        } else {
            let mut engines = Vec::with_capacity(self.replica_urls.len());
            for url in &self.replica_urls {
                let mut replica = self.clone();
                replica.url = url.clone();
                replica.replica_urls.clear();
                engines.push(replica.build()?);
            }
            Some(Arc::new(ReplicaSet::new(
                engines,
                self.replica_max_lag,
                self.read_your_writes,
            )))
        };
        let (url, mut tls_settings) = tls::split_url(&self.url)?;
        let asked = &self.tls;
        tls_settings.mode = asked.mode.or(tls_settings.mode);
        tls_settings.root_cert = asked.root_cert.clone().or(tls_settings.root_cert);
        tls_settings.cert = asked.cert.clone().or(tls_settings.cert);
        tls_settings.key = asked.key.clone().or(tls_settings.key);
        let connector = tls::Connector::new(&tls_settings)?;
        let mut config = url::parse(&url)?;
        if let Some(timeout) = self.connect_timeout {
            config.connect_timeout(timeout);
        } else if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if let Some(name) = &self.application_name {
            config.application_name(name);
        }
        let shown = url::display(&config);
        let telemetry = Telemetry::new(&config, self.slow_statement_threshold);
        let (ssl_mode, ssl_asked) = (connector.mode(), connector.asked());
        let manager = Manager::new(config, connector, self.statement_cache_size);
        let failures = manager.failures.clone();
        let encrypted = manager.encrypted.clone();
        let builder = Pool::builder()
            .max_size(self.pool_size)
            .min_idle(self.min_idle)
            .connection_timeout(self.checkout_timeout)
            .max_lifetime(self.max_lifetime)
            .idle_timeout(self.idle_timeout)
            .test_on_check_out(self.test_on_checkout)
            .retry_connection(false)
            .error_sink(Box::new(TracingSink));
        Ok(Engine {
            shared: Arc::new(Shared {
                url: shown,
                pool: RwLock::new(Slot::Unstarted(Box::new((builder, manager)))),
                failures,
                echo: self.echo,
                pool_size: self.pool_size,
                checkout_timeout: self.checkout_timeout,
                ssl_mode,
                ssl_asked,
                encrypted,
                transaction_options: self.transaction_options,
                execution_options: self.execution_options,
                telemetry,
                replicas,
            }),
        })
    }
}

/// What [`Engine::status`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStatus {
    /// Maximum number of connections.
    pub size: u32,
    /// Connections open now.
    pub connections: u32,
    /// Open connections waiting in the pool.
    pub idle: u32,
    /// Connections checked out now.
    pub checked_out: u32,
    /// Open connections that run over TLS.
    pub encrypted: u32,
    /// The engine was disposed.
    pub disposed: bool,
    /// Checkouts that got a connection, since the pool started (the rest of these counters
    /// too).
    pub checkouts: u64,
    /// Checkouts that had to wait for a connection (none was idle and the pool was full, or
    /// a new one had to be opened).
    pub waits: u64,
    /// Checkouts that waited out the checkout timeout ([`Error::PoolTimeout`]).
    pub wait_timeouts: u64,
    /// Time spent waiting by every checkout together.
    pub wait_time: Duration,
    /// Connections opened.
    pub opened: u64,
    /// Connections discarded because they were broken or failed the checkout test (closed by
    /// the server, left in a transaction).
    pub discarded: u64,
}

impl fmt::Display for PoolStatus {
    /// SQLAlchemy's shape: `Pool size: 10  Connections in pool: 1  Checked out: 0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.disposed {
            return write!(f, "Pool disposed");
        }
        write!(
            f,
            "Pool size: {}  Connections in pool: {}  Checked out: {}",
            self.size, self.idle, self.checked_out
        )
    }
}
