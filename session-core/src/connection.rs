//! [`AsyncConnection`]: one pooled connection, its statements and its transaction state.
//!
//! # Transaction state and cancellation
//!
//! The connection counts the transaction levels it knows to be open (`depth`: 0 = none,
//! 1 = a transaction, 2.. = savepoints `sa_savepoint_2`, ...). Every transaction-control
//! statement is armed before it is awaited, so that a future dropped at any `.await` leaves a
//! state the next operation can settle:
//!
//! - the pooled connection is marked dirty *before* `BEGIN` is sent;
//! - a `COMMIT` or `RELEASE SAVEPOINT` whose outcome was not seen is "in doubt", and is settled
//!   by rolling the whole transaction back (a `ROLLBACK` after a `COMMIT` that went through is
//!   a harmless no-op);
//! - a rollback that was dropped, or a transaction guard dropped without commit, leaves a
//!   pending rollback that runs before the next statement.
//!
//! A dirty connection dropped inside a tokio runtime is rolled back by a spawned task before it
//! goes back to the pool; without a runtime, or when that rollback fails, the pool discards it.

use std::time::Instant;

use bb8::PooledConnection;
use postgres_types::{FromSqlOwned, ToSql};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Row, Statement};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::pool::{Manager, PgConnection};

/// Runs `$work` (a driver future on `$client`) on the live connection, with a deferred `BEGIN`
/// sent ahead of it in the same flight; evaluates to the driver's result, after echoing and
/// checking the `BEGIN`.
macro_rules! on_client {
    ($self:ident, $client:ident => $work:expr) => {{
        let started = Instant::now();
        let Some(conn) = $self.conn.as_mut() else {
            return Err(closed());
        };
        let $client = &conn.client;
        let (begun, result) =
            crate::pipeline::with_begin($client, &mut $self.begin_unsent, $work).await;
        if let Some(begun) = begun {
            $self.finish("BEGIN", &[], started, begun)?;
            $self.echo("BEGIN", &[], 0, started);
        }
        result
    }};
}

fn closed() -> Error {
    Error::InvalidRequest("This connection is closed".to_string())
}

/// A statement parameter, as tokio-postgres takes it.
pub type Param<'a> = &'a (dyn ToSql + Sync);

/// A connection checked out of an [`Engine`]'s pool (SQLAlchemy's `AsyncConnection`).
///
/// Statements autocommit until [`AsyncConnection::begin`] (or [`Engine::begin`]) opens a
/// transaction. Prepared statements are cached per connection, so a repeated statement costs
/// one round trip.
///
/// Give it back with [`AsyncConnection::close`] or by dropping it: an open transaction is
/// rolled back first, never returned to the pool.
pub struct AsyncConnection {
    conn: Option<PooledConnection<'static, Manager>>,
    engine: Engine,
    depth: u32,
    pending_rollback: Option<u32>,
    in_doubt: Option<u32>,
    /// A transaction was begun but its `BEGIN` not sent yet: it goes out with the next
    /// statement, in the same flight (one round trip, not two).
    begin_unsent: bool,
}

impl std::fmt::Debug for AsyncConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncConnection")
            .field("engine", &self.engine)
            .field("transaction_depth", &self.depth)
            .field("closed", &self.conn.is_none())
            .finish()
    }
}

impl AsyncConnection {
    pub(crate) fn new(conn: PooledConnection<'static, Manager>, engine: Engine) -> Self {
        AsyncConnection {
            conn: Some(conn),
            engine,
            depth: 0,
            pending_rollback: None,
            in_doubt: None,
            begin_unsent: false,
        }
    }

    /// The engine this connection came from.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// True while a transaction is open (SQLAlchemy's `in_transaction()`).
    pub fn in_transaction(&self) -> bool {
        self.transaction_depth() > 0
    }

    /// True while a savepoint is open (SQLAlchemy's `in_nested_transaction()`).
    pub fn in_nested_transaction(&self) -> bool {
        self.transaction_depth() > 1
    }

    /// Open transaction levels: 0 none, 1 a transaction, each savepoint one more. A level whose
    /// rollback is still to be sent (a dropped guard) no longer counts.
    pub fn transaction_depth(&self) -> u32 {
        if self.in_doubt.is_some() {
            return 0;
        }
        match self.pending_rollback {
            Some(level) => self.depth.min(level - 1),
            None => self.depth,
        }
    }

    /// True once the server side of the connection is gone.
    pub fn is_closed(&self) -> bool {
        self.conn.as_ref().is_none_or(|c| c.client.is_closed())
    }

    /// Prepared statements cached on this connection.
    pub fn cached_statements(&self) -> usize {
        self.conn.as_ref().map_or(0, |c| c.statements.len())
    }

    /// Runs `sql` and returns the number of rows it affected.
    ///
    /// # Errors
    /// [`Error::Statement`] with the server's SQLSTATE for bad SQL or a violated constraint, or
    /// the driver's message for a wrong parameter count or type.
    pub async fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        self.settle().await?;
        let statement = self.prepare(sql).await?;
        let started = Instant::now();
        let result = on_client!(self, client => client.execute(&statement, params));
        let affected = self.finish(sql, params, started, result)?;
        self.echo(sql, params, affected, started);
        Ok(affected)
    }

    /// Runs `sql` and returns every row.
    ///
    /// # Errors
    /// As [`AsyncConnection::execute`].
    pub async fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        self.settle().await?;
        let statement = self.prepare(sql).await?;
        let started = Instant::now();
        let result = on_client!(self, client => client.query(&statement, params));
        let rows = self.finish(sql, params, started, result)?;
        self.echo(sql, params, rows.len() as u64, started);
        Ok(rows)
    }

    /// Runs `sql` without caching its prepared statement (for one-off statements such as a
    /// cursor's `DECLARE` / `FETCH`).
    ///
    /// # Errors
    /// As [`AsyncConnection::execute`].
    pub async fn query_uncached(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        self.settle().await?;
        let started = Instant::now();
        let result = on_client!(self, client => client.query(sql, params));
        let rows = self.finish(sql, params, started, result)?;
        self.echo(sql, params, rows.len() as u64, started);
        Ok(rows)
    }

    /// [`AsyncConnection::execute`] without caching the prepared statement.
    ///
    /// # Errors
    /// As [`AsyncConnection::execute`].
    pub async fn execute_uncached(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        self.settle().await?;
        let started = Instant::now();
        let result = on_client!(self, client => client.execute(sql, params));
        let n = self.finish(sql, params, started, result)?;
        self.echo(sql, params, n, started);
        Ok(n)
    }

    /// [`AsyncConnection::query`] when `cached`, else [`AsyncConnection::query_uncached`]: a
    /// statement that binds an array runs uncached, planned with its values every time (a
    /// cached one gets PostgreSQL's generic plan from its sixth run, where `= ANY($1)` scans
    /// the whole array for every row).
    pub(crate) async fn query_with(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        cached: bool,
    ) -> Result<Vec<Row>> {
        if cached {
            self.query(sql, params).await
        } else {
            self.query_uncached(sql, params).await
        }
    }

    /// [`AsyncConnection::execute`] or [`AsyncConnection::execute_uncached`], as
    /// [`AsyncConnection::query_with`].
    pub(crate) async fn execute_with(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        cached: bool,
    ) -> Result<u64> {
        if cached {
            self.execute(sql, params).await
        } else {
            self.execute_uncached(sql, params).await
        }
    }

    /// Runs `sql`, which must return exactly one row.
    ///
    /// # Errors
    /// [`Error::NoResultFound`] or [`Error::MultipleResultsFound`], else as
    /// [`AsyncConnection::execute`].
    pub async fn query_one(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Row> {
        self.query_opt(sql, params)
            .await?
            .ok_or(Error::NoResultFound)
    }

    /// Runs `sql`, which must return at most one row.
    ///
    /// # Errors
    /// [`Error::MultipleResultsFound`], else as [`AsyncConnection::execute`].
    pub async fn query_opt(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>> {
        let mut rows = self.query(sql, params).await?;
        match rows.len() {
            0 => Ok(None),
            1 => Ok(rows.pop()),
            _ => Err(Error::MultipleResultsFound),
        }
    }

    /// Runs `sql`, which must return one row, and decodes its first column.
    ///
    /// # Errors
    /// As [`AsyncConnection::query_one`], and the driver's error when the column does not
    /// decode as `T`.
    pub async fn scalar<T: FromSqlOwned>(&mut self, sql: &str, params: &[Param<'_>]) -> Result<T> {
        let row = self.query_one(sql, params).await?;
        row.try_get(0).map_err(|e| Error::statement(e, sql))
    }

    /// Runs one or more `;`-separated statements without parameters (the simple query
    /// protocol), e.g. DDL.
    ///
    /// # Errors
    /// As [`AsyncConnection::execute`].
    pub async fn batch_execute(&mut self, sql: &str) -> Result<()> {
        self.settle().await?;
        let started = Instant::now();
        let result = on_client!(self, client => client.batch_execute(sql));
        self.finish(sql, &[], started, result)?;
        self.echo(sql, &[], 0, started);
        Ok(())
    }

    /// Prepares `sql`, or returns the statement this connection prepared for it before.
    ///
    /// # Errors
    /// The server's error for SQL that does not parse or names unknown objects.
    pub async fn prepare(&mut self, sql: &str) -> Result<Statement> {
        let conn = self.live()?;
        if let Some(statement) = conn.statements.get(sql) {
            return Ok(statement);
        }
        let started = Instant::now();
        let result = conn.client.prepare(sql).await;
        let statement = self.finish(sql, &[], started, result)?;
        self.live()?.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    /// Forgets every prepared statement of this connection (after DDL changed a table that
    /// cached statements read).
    pub fn clear_statement_cache(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            conn.statements.clear();
        }
    }

    /// Commits the transaction, if one is open (SQLAlchemy's `conn.commit()`); savepoints
    /// inside it are committed with it. Without a transaction this does nothing.
    ///
    /// # Errors
    /// The server's error for `COMMIT` (e.g. a deferred constraint); the transaction is over
    /// either way.
    pub async fn commit(&mut self) -> Result<()> {
        if self.depth == 0 && self.pending_rollback.is_none() && self.in_doubt.is_none() {
            return Ok(());
        }
        self.commit_level(1).await
    }

    /// Rolls back the transaction, if one is open (SQLAlchemy's `conn.rollback()`).
    ///
    /// # Errors
    /// The driver's error when the connection is gone (the server has rolled back then).
    pub async fn rollback(&mut self) -> Result<()> {
        self.rollback_level(1).await
    }

    /// Gives the connection back to the pool, rolling back an open transaction first
    /// (SQLAlchemy's `await conn.close()`). A connection whose rollback fails is discarded.
    pub async fn close(mut self) {
        self.forget_unsent_begin();
        if let Some(conn) = self.conn.as_mut() {
            if conn.dirty && conn.client.batch_execute("ROLLBACK").await.is_ok() {
                conn.dirty = false;
            }
        }
        self.depth = 0;
        // Dropping gives it back (or discards it when still dirty).
    }

    /// Closes the underlying connection instead of returning it to the pool
    /// (SQLAlchemy's `invalidate()`): use it after an error that leaves the connection in an
    /// unknown state. The server rolls back whatever was open.
    pub fn invalidate(mut self) {
        if let Some(mut conn) = self.conn.take() {
            conn.dirty = true;
        }
    }

    // ---- transaction levels, used by the guards here and by the session ----

    /// Begins a transaction (at depth 0) or a savepoint, and returns its level.
    pub(crate) async fn begin_level(&mut self) -> Result<u32> {
        self.settle().await?;
        let level = self.depth + 1;
        if level == 1 {
            // Marked dirty before anything can be sent; the BEGIN itself goes out with the
            // next statement.
            self.live()?.dirty = true;
            self.begin_unsent = true;
        } else {
            self.simple(&format!("SAVEPOINT sa_savepoint_{level}"))
                .await?;
        }
        self.depth = level;
        Ok(level)
    }

    /// Commits level `level` (COMMIT at 1, RELEASE SAVEPOINT above).
    pub(crate) async fn commit_level(&mut self, level: u32) -> Result<()> {
        self.settle().await?;
        if self.depth < level {
            return Err(Error::InvalidRequest(
                "This transaction is inactive".to_string(),
            ));
        }
        if level == 1 && self.forget_unsent_begin() {
            return Ok(());
        }
        self.in_doubt = Some(level);
        let result = if level == 1 {
            self.simple("COMMIT").await
        } else {
            self.simple(&format!("RELEASE SAVEPOINT sa_savepoint_{level}"))
                .await
        };
        self.in_doubt = None;
        match result {
            Ok(()) => {
                self.depth = level - 1;
                if level == 1 {
                    self.live()?.dirty = false;
                }
                Ok(())
            }
            Err(e) => {
                if level == 1 {
                    // The server ended the transaction (or the connection is gone); a ROLLBACK
                    // before the next statement makes sure.
                    self.depth = 0;
                }
                Err(e)
            }
        }
    }

    /// Rolls back level `level` and everything inside it. Does nothing when it is not open.
    pub(crate) async fn rollback_level(&mut self, level: u32) -> Result<()> {
        if let Some(pending) = self.pending_rollback {
            if pending <= level {
                return self.settle().await;
            }
        }
        if let Some(doubt) = self.in_doubt {
            if doubt <= level || level == 1 {
                return self.settle().await;
            }
        }
        if self.depth < level {
            if level == 1 && self.conn.as_ref().is_some_and(|c| c.dirty) {
                return self.settle().await;
            }
            return Ok(());
        }
        self.pending_rollback = Some(level);
        self.settle().await
    }

    /// Marks level `level` for rollback before the next statement (a dropped guard).
    pub(crate) fn defer_rollback(&mut self, level: u32) {
        if self.depth >= level {
            self.pending_rollback = Some(self.pending_rollback.map_or(level, |p| p.min(level)));
        }
    }

    /// Brings the server in line with what this connection believes, after a cancelled or
    /// abandoned transaction-control statement.
    pub(crate) async fn settle(&mut self) -> Result<()> {
        let doubtful = self.in_doubt.is_some();
        let target = match (self.pending_rollback, doubtful) {
            // A COMMIT / RELEASE whose outcome is unknown: only a full rollback is certain.
            (_, true) => Some(1),
            (Some(level), false) => Some(level),
            (None, false) => {
                if self.depth == 0 && self.conn.as_ref().is_some_and(|c| c.dirty) {
                    Some(1)
                } else {
                    None
                }
            }
        };
        let Some(level) = target else {
            return Ok(());
        };
        if level == 1 && self.forget_unsent_begin() {
            return Ok(());
        }
        self.pending_rollback = Some(level);
        let sql = if level == 1 {
            "ROLLBACK".to_string()
        } else {
            format!(
                "ROLLBACK TO SAVEPOINT sa_savepoint_{level}; RELEASE SAVEPOINT sa_savepoint_{level}"
            )
        };
        match self.simple(&sql).await {
            Ok(()) => {
                self.pending_rollback = None;
                self.in_doubt = None;
                if level == 1 {
                    self.depth = 0;
                    self.live()?.dirty = false;
                } else {
                    self.depth = self.depth.min(level - 1);
                }
                Ok(())
            }
            Err(e) if level == 1 || e.is_disconnect() => {
                // The connection is gone: so is its transaction. The pool discards it.
                self.pending_rollback = None;
                self.in_doubt = None;
                self.depth = 0;
                Err(e)
            }
            Err(e) => {
                // The savepoint is not there: roll everything back next time.
                self.pending_rollback = Some(1);
                Err(e)
            }
        }
    }

    async fn simple(&mut self, sql: &str) -> Result<()> {
        let started = Instant::now();
        let result = on_client!(self, client => client.batch_execute(sql));
        self.finish(sql, &[], started, result)?;
        self.echo(sql, &[], 0, started);
        Ok(())
    }

    fn live(&mut self) -> Result<&mut PgConnection> {
        match self.conn.as_mut() {
            Some(conn) => Ok(conn),
            None => Err(closed()),
        }
    }

    /// Ends a transaction whose `BEGIN` was never sent: nothing to tell the server.
    fn forget_unsent_begin(&mut self) -> bool {
        if !self.begin_unsent {
            return false;
        }
        self.begin_unsent = false;
        self.depth = 0;
        self.pending_rollback = None;
        self.in_doubt = None;
        if let Some(conn) = self.conn.as_mut() {
            conn.dirty = false;
        }
        true
    }

    fn finish<T>(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        started: Instant,
        result: std::result::Result<T, tokio_postgres::Error>,
    ) -> Result<T> {
        result.map_err(|e| {
            if e.code() == Some(&SqlState::FEATURE_NOT_SUPPORTED) {
                // "cached plan must not change result type": re-prepare next time.
                if let Some(conn) = self.conn.as_mut() {
                    conn.statements.remove(sql);
                }
            }
            if self.engine.echo() {
                tracing::info!(target: "session_core::echo", params = ?params,
                    elapsed = ?started.elapsed(), error = %e, "{sql}");
            }
            Error::statement(e, sql)
        })
    }

    fn echo(&self, sql: &str, params: &[Param<'_>], rows: u64, started: Instant) {
        if self.engine.echo() {
            tracing::info!(target: "session_core::echo", params = ?params, rows,
                elapsed = ?started.elapsed(), "{sql}");
        }
    }
}

impl Drop for AsyncConnection {
    fn drop(&mut self) {
        self.forget_unsent_begin();
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if !conn.dirty {
            return;
        }
        // A transaction may be open: roll it back before the connection is pooled again. The
        // spawned task owns the connection, so nobody else can check it out meanwhile; if the
        // task never runs (runtime shutting down) the still-dirty connection is discarded.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if conn.client.batch_execute("ROLLBACK").await.is_ok() {
                    conn.dirty = false;
                }
                drop(conn);
            });
        }
    }
}
