//! The pooled connection and its bb8 manager.
//!
//! [`Connector`] opens the connections (TLS as the engine's `sslmode` says); this layer adds
//! what a session stack needs on top: a per-connection prepared-statement cache, and a `dirty` flag that is set *before* a
//! transaction is begun and cleared only once it is known to be over. bb8 asks
//! [`ManageConnection::has_broken`] when a connection comes back; a dirty one is discarded
//! (closing it makes the server roll back), so no connection ever returns to the pool with a
//! transaction open, whatever future was dropped where.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use tokio::sync::Notify;
use tokio_postgres::{Client, Statement};

use crate::telemetry::Server;
use crate::tls::Connector;

/// How many prepared statements one connection keeps, unless the engine says otherwise
/// ([`EngineBuilder::statement_cache_size`](crate::EngineBuilder::statement_cache_size)).
pub(crate) const STATEMENT_CACHE_CAPACITY: usize = 512;

/// A live connection as the pool holds it.
pub(crate) struct PgConnection {
    pub(crate) client: Client,
    pub(crate) statements: StatementCache,
    /// A transaction may be open on the server.
    pub(crate) dirty: bool,
    /// How cancel requests for this connection are sent.
    pub(crate) tls: Connector,
    /// Counted in [`Manager::encrypted`] while open; `None` for a plaintext connection.
    encrypted: Option<EncryptedGuard>,
    /// The server it reached (for the spans' `server.address` / `server.port`).
    pub(crate) server: Server,
}

impl PgConnection {
    /// Whether the connection runs over TLS.
    pub(crate) fn is_encrypted(&self) -> bool {
        self.encrypted.is_some()
    }
}

/// One open encrypted connection in the count of its manager.
struct EncryptedGuard(Arc<AtomicU32>);

impl Drop for EncryptedGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Prepared statements by SQL text, evicting the oldest when full; with a capacity of 0 it
/// keeps none (every statement is prepared for its run and closed after it).
pub(crate) struct StatementCache {
    map: HashMap<Box<str>, Statement>,
    order: VecDeque<Box<str>>,
    capacity: usize,
}

impl StatementCache {
    pub(crate) fn new(capacity: usize) -> Self {
        StatementCache {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    /// How many statements it keeps at most (0: none).
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn get(&self, sql: &str) -> Option<Statement> {
        self.map.get(sql).cloned()
    }

    pub(crate) fn insert(&mut self, sql: &str, statement: Statement) {
        if self.capacity == 0 {
            return;
        }
        if self.map.len() >= self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.map.remove(&oldest);
            }
        }
        let key: Box<str> = sql.into();
        if self.map.insert(key.clone(), statement).is_none() {
            self.order.push_back(key);
        }
    }

    pub(crate) fn remove(&mut self, sql: &str) {
        if self.map.remove(sql).is_some() {
            self.order.retain(|k| &**k != sql);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

/// The last failure to open a connection, so that a checkout can fail fast with the real cause
/// instead of waiting out its timeout.
#[derive(Default)]
pub(crate) struct ConnectFailures {
    generation: AtomicU64,
    last: Mutex<Option<ConnectFailure>>,
    pub(crate) notify: Notify,
}

/// A failed connection attempt: the driver's message with its causes, and its error.
#[derive(Clone)]
pub(crate) struct ConnectFailure {
    pub(crate) message: String,
    pub(crate) error: Arc<tokio_postgres::Error>,
}

impl ConnectFailure {
    pub(crate) fn new(error: Arc<tokio_postgres::Error>) -> Self {
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&*error);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        ConnectFailure { message, error }
    }
}

impl ConnectFailures {
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub(crate) fn last(&self) -> Option<ConnectFailure> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn record(&self, error: &Arc<tokio_postgres::Error>) {
        let failure = ConnectFailure::new(error.clone());
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(failure);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.notify.notify_waiters();
    }
}

/// bb8 manager: opens connections through the engine's [`Connector`] and wraps each client
/// with our per-connection state.
pub(crate) struct Manager {
    config: tokio_postgres::Config,
    pub(crate) tls: Connector,
    pub(crate) failures: Arc<ConnectFailures>,
    /// Open connections that run over TLS.
    pub(crate) encrypted: Arc<AtomicU32>,
    /// Prepared statements each connection keeps.
    statement_cache: usize,
}

impl Manager {
    pub(crate) fn new(
        config: tokio_postgres::Config,
        tls: Connector,
        statement_cache: usize,
    ) -> Self {
        Manager {
            config,
            tls,
            failures: Arc::default(),
            encrypted: Arc::default(),
            statement_cache,
        }
    }
}

impl bb8::ManageConnection for Manager {
    type Connection = PgConnection;
    /// Shared, so that the failure a checkout reports and the one recorded for the checkouts
    /// waiting on it are the same error.
    type Error = Arc<tokio_postgres::Error>;

    async fn connect(&self) -> Result<PgConnection, Self::Error> {
        match self.tls.connect(&self.config).await {
            Ok(opened) => Ok(PgConnection {
                server: crate::failover::server_of(&self.config, &opened.client).await,
                client: opened.client,
                statements: StatementCache::new(self.statement_cache),
                dirty: false,
                tls: self.tls.clone(),
                encrypted: opened.encrypted.then(|| {
                    self.encrypted.fetch_add(1, Ordering::Relaxed);
                    EncryptedGuard(self.encrypted.clone())
                }),
            }),
            Err(e) => {
                let e = Arc::new(e);
                self.failures.record(&e);
                Err(e)
            }
        }
    }

    async fn is_valid(&self, conn: &mut PgConnection) -> Result<(), Self::Error> {
        conn.client
            .simple_query("")
            .await
            .map(|_| ())
            .map_err(Arc::new)
    }

    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        conn.dirty || conn.client.is_closed()
    }
}

/// bb8's error sink: background failures go to `tracing`, never to stderr.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TracingSink;

impl bb8::ErrorSink<Arc<tokio_postgres::Error>> for TracingSink {
    fn sink(&self, error: Arc<tokio_postgres::Error>) {
        tracing::warn!(target: "session_core::pool", %error, "connection pool error");
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<Arc<tokio_postgres::Error>>> {
        Box::new(*self)
    }
}
