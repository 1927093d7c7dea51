//! The one error type of the session stack.
//!
//! Shaped after sqlx's `Error`: a `#[non_exhaustive]` enum with a variant per failure a caller
//! acts on, the driver error kept as the [`source`](std::error::Error::source), and predicates
//! ([`Error::code`], [`Error::as_db_error`], [`Error::is_disconnect`], ...) in the spirit of
//! tokio-postgres, so the SQLSTATE of a database error is always reachable.

use std::fmt;
use std::time::Duration;

use tokio_postgres::error::{DbError, SqlState};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed error an event listener returns.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Everything that can go wrong in the session stack.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server or the driver reported an error while running a statement: a database error
    /// (with SQLSTATE, see [`Error::code`]), a lost connection, a parameter that could not be
    /// encoded, a column that could not be decoded.
    #[error("{}", StatementDisplay { source, sql: sql.as_deref() })]
    Statement {
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
        /// The SQL that failed, when there was one.
        sql: Option<Box<str>>,
    },

    /// A column of a row could not be read into its field: the column's SQL type does not
    /// match the field's Rust type, or the value does not fit (a numeric beyond `Decimal`, an
    /// enum label the Rust enum lacks). Names the column and its type.
    #[error("cannot read column '{column}' ({pg_type}) into its field: {}{}", cause_of(source), sql_suffix(sql.as_deref()))]
    Decode {
        /// The column, as the row names it.
        column: String,
        /// Its PostgreSQL type.
        pg_type: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
        /// The SQL whose row it was.
        sql: Option<Box<str>>,
    },

    /// No connection could be opened to the server: unreachable (see
    /// [`Error::is_disconnect`]), or refused by it, e.g. a wrong password (SQLSTATE 28P01) or
    /// an unknown database (3D000), whose SQLSTATE [`Error::code`] gives.
    #[error("could not connect to {url}: {message}")]
    Connect {
        /// The URL, without its password.
        url: String,
        /// What the driver said, e.g. `Connection refused`.
        message: String,
        /// The driver's error, when there was one; shared, since every checkout waiting on
        /// the failed attempt reports it, so [`source`](std::error::Error::source) downcasts
        /// to `Arc<tokio_postgres::Error>` ([`Error::as_postgres`] gives the error itself).
        #[source]
        source: Option<std::sync::Arc<tokio_postgres::Error>>,
    },

    /// Every connection of the pool stayed checked out for the whole checkout timeout.
    #[error(
        "pool limit of size {pool_size} reached, connection timed out, timeout {:.2}s: \
         all {pool_size} connections stayed checked out; close sessions and connections \
         sooner, or raise `pool_size` or `checkout_timeout` on the engine builder",
        timeout.as_secs_f64()
    )]
    PoolTimeout {
        /// The pool's maximum number of connections.
        pool_size: u32,
        /// How long the checkout waited.
        timeout: Duration,
    },

    /// The engine was disposed with [`Engine::dispose`](crate::Engine::dispose).
    #[error("this Engine has been disposed and gives out no more connections; create a new Engine")]
    Disposed,

    /// The engine configuration is invalid: a malformed URL, an unsupported scheme, a bad option.
    #[error("invalid engine configuration: {0}")]
    Config(String),

    /// A value PostgreSQL cannot store exactly (a timestamp with nanoseconds, a leap second),
    /// refused before it is sent instead of being changed silently.
    #[error("cannot store the value of column '{column}' exactly: {reason}")]
    Value {
        /// `table.column`.
        column: String,
        /// What would be lost and what to do.
        reason: String,
    },

    /// The operation is not valid in the current state (SQLAlchemy's `InvalidRequestError`).
    #[error("{0}")]
    InvalidRequest(String),

    /// An object's attributes were expired and reading them would need I/O, which never happens
    /// on attribute access (the case SQLAlchemy reports as `MissingGreenlet` under asyncio).
    #[error(
        "{object} has expired attributes ({attributes}) and reading them would need a query, \
         which never happens on attribute access; load them with `session.refresh(&obj).await` \
         (or `get` / select the object again), or make the session with \
         `expire_on_commit(false)` so that commit keeps loaded values"
    )]
    Expired {
        /// The object, e.g. `A(1)`.
        object: String,
        /// The expired attribute names, comma-separated.
        attributes: String,
    },

    /// A relationship was read before it was loaded; loading it would need I/O, which never
    /// happens on attribute access.
    #[error(
        "{relationship} is not loaded, and loading it would need a query, which never happens \
         on attribute access; eager-load it in the query (selectinload / joinedload), or query \
         the related objects"
    )]
    NotLoaded {
        /// `Entity.field`.
        relationship: String,
    },

    /// A relationship left unloaded by a [`raiseload`](crate::raiseload) option was read
    /// (SQLAlchemy's `lazy='raise'` message).
    #[error(
        "'{relationship}' is not available due to lazy='raise'; the query that loaded the \
         object asked for raiseload({relationship}): eager-load it there instead, or load it \
         with session.load(...)"
    )]
    RaiseLoad {
        /// `Entity.field`.
        relationship: String,
    },

    /// A flush failed (or was cancelled) and the session's transaction was rolled back
    /// (SQLAlchemy's `PendingRollbackError`).
    #[error(
        "This Session's transaction has been rolled back due to a previous exception during \
         flush. To begin a new transaction with this Session, first issue Session.rollback(). \
         Original exception was: {0}"
    )]
    PendingRollback(String),

    /// A session call (or a second guard) met an object whose guard the calling thread still
    /// holds: waiting would deadlock, so the call is refused before it does anything.
    #[error(
        "{object} object is borrowed by a {guard} guard that this thread still holds; drop the \
         guard (end its scope, or copy the values out first) before calling {operation}: it \
         would wait on a lock its own caller holds"
    )]
    ObjectLocked {
        /// The entity of the held object.
        object: String,
        /// `read()` or `write()`.
        guard: &'static str,
        /// The refused call, e.g. `AsyncSession::flush`.
        operation: &'static str,
    },

    /// A second task used the session while another operation of it was in flight
    /// (SQLAlchemy's "concurrent operations are not permitted").
    #[error(
        "This session is provisioning a new connection; concurrent operations are not \
         permitted (an AsyncSession must not be used by two tasks at once: give each task its \
         own session, e.g. through async_scoped_session)"
    )]
    ConcurrentUse,

    /// The transaction, session or connection was already closed (SQLAlchemy's
    /// `ResourceClosedError`, and "Can't operate on closed transaction inside context
    /// manager").
    #[error("{0}")]
    Closed(String),

    /// A COMMIT, RELEASE SAVEPOINT or statement was cancelled (its future dropped) before its
    /// outcome was known: what the database kept is unknown, so every statement of the
    /// transaction is refused until it is rolled back.
    #[error("{0}")]
    InDoubt(String),

    /// The server rolled the transaction back instead of committing it, because a statement
    /// of it had failed (PostgreSQL answers COMMIT in an aborted transaction with ROLLBACK).
    #[error("{0}")]
    RolledBack(String),

    /// An UPDATE or DELETE matched fewer rows than objects (SQLAlchemy's `StaleDataError`).
    #[error("{0}")]
    StaleData(String),

    /// A statement that had to return a row returned none (SQLAlchemy's `NoResultFound`).
    #[error("No row was found when one was required")]
    NoResultFound,

    /// A statement that had to return at most one row returned more
    /// (SQLAlchemy's `MultipleResultsFound`).
    #[error("Multiple rows were found when exactly one was required")]
    MultipleResultsFound,

    /// An event listener returned an error; the operation that fired the event stopped there
    /// (for `after_commit`, the transaction was already committed).
    #[error("the {event} listener failed: {source}")]
    Listener {
        /// The event's name, as SQLAlchemy spells it (`before_flush`, `before_update`, ...).
        event: &'static str,
        /// What the listener returned.
        #[source]
        source: BoxError,
    },
}

/// The driver error's cause (the conversion's message), else its own text.
fn cause_of(e: &tokio_postgres::Error) -> String {
    std::error::Error::source(e).map_or_else(|| e.to_string(), ToString::to_string)
}

fn sql_suffix(sql: Option<&str>) -> String {
    sql.map(|s| format!("\n[SQL: {s}]")).unwrap_or_default()
}

struct StatementDisplay<'a> {
    source: &'a tokio_postgres::Error,
    sql: Option<&'a str>,
}

impl fmt::Display for StatementDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.source.as_db_error() {
            Some(db) => {
                write!(f, "database error {}: {}", db.code().code(), db.message())?;
                if let Some(detail) = db.detail() {
                    write!(f, "\nDETAIL: {detail}")?;
                }
                if let Some(hint) = db.hint() {
                    write!(f, "\nHINT: {hint}")?;
                }
            }
            None => {
                write!(f, "{}", self.source)?;
                if let Some(cause) = std::error::Error::source(self.source) {
                    write!(f, ": {cause}")?;
                }
            }
        }
        if let Some(sql) = self.sql {
            write!(f, "\n[SQL: {sql}]")?;
        }
        Ok(())
    }
}

impl Error {
    /// Wraps a driver error raised by `sql`.
    pub(crate) fn statement(source: tokio_postgres::Error, sql: &str) -> Self {
        Error::Statement {
            source,
            sql: Some(sql.into()),
        }
    }

    /// The error of reading `row` (of `sql`): [`Error::Decode`] naming the column when the
    /// driver says which one failed, else [`Error::Statement`].
    pub(crate) fn row(source: tokio_postgres::Error, row: &tokio_postgres::Row, sql: &str) -> Self {
        let index = source
            .to_string()
            .strip_prefix("error deserializing column ")
            .and_then(|n| n.parse::<usize>().ok());
        match index.and_then(|i| row.columns().get(i)) {
            Some(column) => Error::Decode {
                column: column.name().to_string(),
                pg_type: column.type_().name().to_string(),
                source,
                sql: Some(sql.into()),
            },
            None => Error::statement(source, sql),
        }
    }

    /// The driver error behind this error, if any (a failed statement's, or a failed
    /// connection attempt's).
    pub fn as_postgres(&self) -> Option<&tokio_postgres::Error> {
        match self {
            Error::Statement { source, .. } | Error::Decode { source, .. } => Some(source),
            Error::Connect { source, .. } => source.as_deref(),
            _ => None,
        }
    }

    /// The server's error report (severity, message, detail, table, constraint, ...), if the
    /// server raised this error.
    pub fn as_db_error(&self) -> Option<&DbError> {
        self.as_postgres()?.as_db_error()
    }

    /// The SQLSTATE of a database error, e.g. [`SqlState::UNIQUE_VIOLATION`].
    pub fn code(&self) -> Option<&SqlState> {
        self.as_postgres()?.code()
    }

    /// The SQL of the statement that failed, if known.
    pub fn sql(&self) -> Option<&str> {
        match self {
            Error::Statement { sql, .. } | Error::Decode { sql, .. } => sql.as_deref(),
            _ => None,
        }
    }

    /// True when the connection to the server is gone (closed socket, server shut down, backend
    /// terminated), or none could be opened because the server is unreachable or shutting down:
    /// the operation may be retried on a new connection once the transaction that was open on
    /// the old one has been rolled back. A server that answered a connection attempt with a
    /// refusal (wrong password, unknown database, ...) is not a disconnect.
    pub fn is_disconnect(&self) -> bool {
        match self {
            Error::Connect { source: None, .. } => true,
            Error::Connect {
                source: Some(source),
                ..
            } => match source.code() {
                Some(code) => is_disconnect_code(code),
                None => true,
            },
            Error::Statement { source, .. } => {
                if source.is_closed() {
                    return true;
                }
                source.code().is_some_and(is_disconnect_code)
                    || (source.code().is_none()
                        && std::error::Error::source(source)
                            .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some()))
            }
            _ => false,
        }
    }

    /// True for a unique-constraint violation (SQLSTATE 23505).
    pub fn is_unique_violation(&self) -> bool {
        self.code() == Some(&SqlState::UNIQUE_VIOLATION)
    }

    /// True for a foreign-key violation (SQLSTATE 23503).
    pub fn is_foreign_key_violation(&self) -> bool {
        self.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION)
    }

    /// True for a NOT NULL violation (SQLSTATE 23502).
    pub fn is_not_null_violation(&self) -> bool {
        self.code() == Some(&SqlState::NOT_NULL_VIOLATION)
    }

    /// True for a check-constraint violation (SQLSTATE 23514).
    pub fn is_check_violation(&self) -> bool {
        self.code() == Some(&SqlState::CHECK_VIOLATION)
    }

    /// True for any integrity-constraint violation (SQLSTATE class 23), SQLAlchemy's
    /// `IntegrityError`.
    pub fn is_integrity_error(&self) -> bool {
        self.code().is_some_and(|c| c.code().starts_with("23"))
    }

    /// True for a serialization failure or deadlock (SQLSTATE 40001 / 40P01): retry the whole
    /// transaction.
    pub fn is_serialization_failure(&self) -> bool {
        matches!(self.code(), Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED)
    }

    /// True for [`Error::PendingRollback`].
    pub fn is_pending_rollback(&self) -> bool {
        matches!(self, Error::PendingRollback(_))
    }

    /// True for [`Error::ObjectLocked`]: drop the object guard and call again.
    pub fn is_object_locked(&self) -> bool {
        matches!(self, Error::ObjectLocked { .. })
    }

    /// True for [`Error::ConcurrentUse`]: two tasks used one session at once.
    pub fn is_concurrent_use(&self) -> bool {
        matches!(self, Error::ConcurrentUse)
    }

    /// True for [`Error::Closed`]: the transaction, session or connection already ended.
    pub fn is_closed(&self) -> bool {
        matches!(self, Error::Closed(_))
    }

    /// True for [`Error::InDoubt`]: a commit or statement was cancelled before its outcome was
    /// known; roll back and check what the database has.
    pub fn is_in_doubt(&self) -> bool {
        matches!(self, Error::InDoubt(_))
    }

    /// True for [`Error::RolledBack`]: the server rolled the transaction back at COMMIT.
    pub fn is_rolled_back(&self) -> bool {
        matches!(self, Error::RolledBack(_))
    }

    /// True when the pool had no free connection within the checkout timeout.
    pub fn is_pool_timeout(&self) -> bool {
        matches!(self, Error::PoolTimeout { .. })
    }
}

/// SQLSTATEs that mean the server went away or cannot take connections now.
fn is_disconnect_code(code: &SqlState) -> bool {
    *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
        || *code == SqlState::CONNECTION_FAILURE
        || *code == SqlState::CONNECTION_EXCEPTION
        || *code == SqlState::CONNECTION_DOES_NOT_EXIST
}
