//! [`AsyncConnection`]: one pooled connection, its statements and its transaction state.
//!
//! # Transaction state and cancellation
//!
//! The connection keeps one explicit transaction state:
//!
//! - the open levels, each with an id of its own (`levels`: empty = none, 1 = a transaction,
//!   2.. = savepoints `sa_savepoint_2`, ...): a guard acts only on the level it began, never on
//!   a later one at the same depth;
//! - `aborted`: a statement of the open transaction failed on the server, so PostgreSQL will
//!   answer COMMIT with ROLLBACK: commit is then an [`Error::RolledBack`];
//! - `lost`: a statement (or COMMIT / RELEASE) was in flight when its future was dropped. Its
//!   outcome is unknown, so the connection is discarded at once (a cancel request stops the
//!   statement on the server, and the pool slot comes back), and every later call says so:
//!   [`Error::InDoubt`] inside a transaction until it is rolled back, [`Error::Closed`]
//!   outside one;
//! - a rollback still to be sent for a guard that was dropped (`pending_rollback`), sent
//!   before the next statement.
//!
//! The pooled connection is marked dirty *before* `BEGIN` is queued; a dirty connection dropped
//! inside a tokio runtime is rolled back by a spawned task before it goes back to the pool;
//! without a runtime, or when that rollback fails, the pool discards it.

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
/// checking the `BEGIN`. While `$work` runs, the pooled connection sits in an [`InFlight`]
/// guard: a future dropped there discards the connection and cancels the statement. With
/// `sql <text>`, the flight runs in a `statement` span for that SQL (see `telemetry`).
macro_rules! on_client {
    ($self:ident, $client:ident => $work:expr) => {
        on_client!(@run $self, Lost::Statement, "", $client => $work)
    };
    ($self:ident, sql $sql:expr, $client:ident => $work:expr) => {
        on_client!(@run $self, Lost::Statement, $sql, $client => $work)
    };
    ($self:ident, $what:expr, $client:ident => $work:expr) => {
        on_client!(@run $self, $what, "", $client => $work)
    };
    ($self:ident, $what:expr, sql $sql:expr, $client:ident => $work:expr) => {
        on_client!(@run $self, $what, $sql, $client => $work)
    };
    (@run $self:ident, $what:expr, $sql:expr, $client:ident => $work:expr) => {{
        let started = Instant::now();
        let Some(pooled) = $self.conn.take() else {
            return Err($self.gone());
        };
        let span = crate::telemetry::statement_span($self.engine.telemetry(), &pooled.server, $sql);
        $self.lost = Some($what);
        let flight = InFlight(Some(pooled));
        let $client = &flight.client();
        let (begun, result) = crate::telemetry::instrument(
            &span,
            crate::pipeline::with_begin($client, &mut $self.begin_unsent, &$self.begin_sql, $work),
        )
        .await;
        crate::telemetry::statement_done($self.engine.telemetry(), &span, $sql, started, &result);
        $self.conn = flight.land();
        $self.lost = None;
        if let Some(begun) = begun {
            let sql = std::mem::take(&mut $self.begin_sql);
            let checked = $self.finish(&sql, &[], started, begun);
            $self.echo(&sql, &[], 0, started);
            $self.begin_sql = sql;
            checked?;
        }
        result
    }};
}

mod checkout;
mod flight;
mod levels;
mod typed;

pub(crate) use flight::{Answer, FlightError, Planned};

/// What was in flight when a connection was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lost {
    /// A statement.
    Statement,
    /// COMMIT (or RELEASE SAVEPOINT).
    Commit,
}

/// The pooled connection while a statement runs on it. Dropped before [`InFlight::land`] (its
/// future was dropped), it cancels the statement on the server and discards the connection.
struct InFlight(Option<PooledConnection<'static, Manager>>);

impl InFlight {
    fn client(&self) -> &tokio_postgres::Client {
        match &self.0 {
            Some(conn) => &conn.client,
            None => unreachable!("an InFlight guard holds its connection until it lands"),
        }
    }

    fn land(mut self) -> Option<PooledConnection<'static, Manager>> {
        self.0.take()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let Some(mut conn) = self.0.take() else {
            return;
        };
        // Discarded, never pooled again: its state is unknown.
        conn.dirty = true;
        let token = conn.client.cancel_token();
        let tls = conn.tls.clone();
        drop(conn);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move { tls.cancel(token).await });
        }
    }
}

fn closed() -> Error {
    Error::Closed("This connection is closed".to_string())
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
    /// Ids of the open levels, the root first (see the module docs).
    levels: Vec<u64>,
    pending_rollback: Option<u32>,
    /// The cause when a statement of the open transaction failed on the server.
    aborted: Option<String>,
    /// Set while a statement is in flight; still set afterwards when its future was dropped.
    lost: Option<Lost>,
    /// A transaction was begun but its `BEGIN` not sent yet: it goes out with the next
    /// statement, in the same flight (one round trip, not two).
    begin_unsent: bool,
    /// The `BEGIN` of the root transaction, with its options.
    begin_sql: String,
    /// The connection was discarded and the caller acknowledged it (rolled back): the next
    /// statement checks out a new one (SQLAlchemy's reconnect after `invalidate()`).
    relink: bool,
}

static NEXT_LEVEL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl std::fmt::Debug for AsyncConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncConnection")
            .field("engine", &self.engine)
            .field("transaction_depth", &self.levels.len())
            .field("closed", &self.conn.is_none())
            .finish()
    }
}

impl AsyncConnection {
    pub(crate) fn new(conn: PooledConnection<'static, Manager>, engine: Engine) -> Self {
        AsyncConnection {
            conn: Some(conn),
            engine,
            levels: Vec::new(),
            pending_rollback: None,
            aborted: None,
            lost: None,
            begin_unsent: false,
            begin_sql: String::new(),
            relink: false,
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
    /// rollback is still to be sent (a dropped guard) no longer counts; a transaction whose
    /// outcome is in doubt still does, until it is rolled back.
    pub fn transaction_depth(&self) -> u32 {
        let depth = self.levels.len() as u32;
        match self.pending_rollback {
            Some(level) => depth.min(level - 1),
            None => depth,
        }
    }

    /// The id of open level `level` (1 = the root), which a guard compares with its own.
    pub(crate) fn level_id(&self, level: u32) -> Option<u64> {
        if level == 0 || level > self.transaction_depth() {
            return None;
        }
        self.levels.get(level as usize - 1).copied()
    }

    /// True when nothing waits to be settled: no rollback still to send, no statement lost in
    /// flight. A depth that reads 0 otherwise is no proof that nothing is open.
    pub(crate) fn is_settled(&self) -> bool {
        self.pending_rollback.is_none() && self.lost.is_none()
    }

    /// True when a statement or COMMIT was cancelled in flight and the connection discarded.
    pub fn is_in_doubt(&self) -> bool {
        self.lost.is_some()
    }

    /// The error for a call on a connection that is not there (closed, or discarded after a
    /// cancelled statement).
    fn gone(&self) -> Error {
        match self.lost {
            None => closed(),
            Some(what) if !self.levels.is_empty() => Error::InDoubt(format!(
                "{} was cancelled before its outcome was known (its future was dropped), so \
                 the connection was discarded and what this transaction did is {}; roll the \
                 transaction back (session.rollback()) before using it again",
                match what {
                    Lost::Commit => "COMMIT (or RELEASE SAVEPOINT)",
                    Lost::Statement => "a statement of this transaction",
                },
                match what {
                    Lost::Commit => "unknown: it may or may not have committed",
                    Lost::Statement => "rolled back by the server",
                }
            )),
            Some(_) => Error::Closed(
                "a statement was cancelled before its outcome was known (its future was \
                 dropped), so this connection was discarded; check out a new one"
                    .into(),
            ),
        }
    }

    /// True once the server side of the connection is gone.
    pub fn is_closed(&self) -> bool {
        self.conn.as_ref().is_none_or(|c| c.client.is_closed())
    }

    /// Whether this connection runs over TLS (see [`SslMode`](crate::SslMode)); false once
    /// closed.
    pub fn is_encrypted(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.is_encrypted())
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
        if let Some(typed) = self.typed_when_uncached(sql, params) {
            return self.execute_typed_here(sql, params, &typed).await;
        }
        let own = self.begin_own().await?;
        let result = self.execute_here(sql, params).await;
        self.end_own(own, result).await
    }

    async fn execute_here(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        let statement = self.prepare(sql).await?;
        let started = Instant::now();
        let result = on_client!(self, sql sql, client => client.execute(&statement, params));
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
        if let Some(typed) = self.typed_when_uncached(sql, params) {
            return self.query_typed_here(sql, params, &typed).await;
        }
        let own = self.begin_own().await?;
        let result = self.query_here(sql, params).await;
        self.end_own(own, result).await
    }

    async fn query_here(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        let statement = self.prepare(sql).await?;
        let started = Instant::now();
        let result = on_client!(self, sql sql, client => client.query(&statement, params));
        let rows = self.finish(sql, params, started, result)?;
        self.echo(sql, params, rows.len() as u64, started);
        Ok(rows)
    }

    /// Runs `sql` without caching its prepared statement (for one-off statements such as a
    /// cursor's `DECLARE` / `FETCH`, or one that binds an array). When the type of every
    /// parameter is known (cast in the SQL, as `$1::integer[]`, or the only built-in type the
    /// value accepts), it runs unnamed, Parse, Bind and Execute in one flight: one round trip
    /// (tokio-postgres's `query_typed`); else it is prepared, run and closed (two).
    ///
    /// # Errors
    /// As [`AsyncConnection::execute`].
    pub async fn query_uncached(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        self.settle().await?;
        if let Some(typed) = typed::bind(sql, params) {
            return self.query_typed_here(sql, params, &typed).await;
        }
        let own = self.begin_own().await?;
        let started = Instant::now();
        let result = on_client!(self, sql sql, client => client.query(sql, params));
        let result = self.finish(sql, params, started, result);
        if let Ok(rows) = &result {
            self.echo(sql, params, rows.len() as u64, started);
        }
        self.end_own(own, result).await
    }

    /// [`AsyncConnection::execute`] without caching the prepared statement; unnamed in one
    /// flight as [`AsyncConnection::query_uncached`].
    ///
    /// # Errors
    /// As [`AsyncConnection::execute`].
    pub async fn execute_uncached(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        self.settle().await?;
        if let Some(typed) = typed::bind(sql, params) {
            return self.execute_typed_here(sql, params, &typed).await;
        }
        let own = self.begin_own().await?;
        let started = Instant::now();
        let result = on_client!(self, sql sql, client => client.execute(sql, params));
        let result = self.finish(sql, params, started, result);
        if let Ok(n) = &result {
            self.echo(sql, params, *n, started);
        }
        self.end_own(own, result).await
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
        let result = on_client!(self, sql sql, client => client.batch_execute(sql));
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
        // Boxed: once per statement and connection, and it would make every caller's
        // future larger (see `session/unit_of_work.rs` on why that costs).
        Box::pin(self.prepare_new(sql)).await
    }

    /// Prepares `sql` on the server and caches it (a miss of [`AsyncConnection::prepare`]).
    async fn prepare_new(&mut self, sql: &str) -> Result<Statement> {
        let started = Instant::now();
        // A deferred BEGIN goes out ahead of the Parse: the statement is prepared inside the
        // transaction that runs it (through PgBouncer's transaction mode, on the same server
        // connection).
        let server = self.live()?.server.clone();
        let span = crate::telemetry::prepare_span(self.engine.telemetry(), &server, sql);
        let result = crate::telemetry::instrument(&span, async {
            Ok::<_, Error>(on_client!(self, client => client.prepare(sql)))
        })
        .await?;
        crate::telemetry::statement_done(self.engine.telemetry(), &span, sql, started, &result);
        let statement = self.finish(sql, &[], started, result)?;
        self.live()?.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    /// True when statements are not cached ([`EngineBuilder::statement_cache_size`] 0) and no
    /// transaction is open: a statement then runs in a transaction of its own, so that its
    /// Parse and its Execute reach the same server connection through a transaction pooler.
    ///
    /// [`EngineBuilder::statement_cache_size`]: crate::EngineBuilder::statement_cache_size
    fn needs_own_transaction(&self) -> bool {
        self.levels.is_empty()
            && self.pending_rollback.is_none()
            && self
                .conn
                .as_ref()
                .is_some_and(|c| c.statements.capacity() == 0)
    }

    /// Begins a transaction for one statement when [`AsyncConnection::needs_own_transaction`];
    /// returns whether it did.
    async fn begin_own(&mut self) -> Result<bool> {
        if !self.needs_own_transaction() {
            return Ok(false);
        }
        Box::pin(self.begin_level()).await?;
        Ok(true)
    }

    /// Ends the transaction [`AsyncConnection::begin_own`] began: commits after `Ok`.
    async fn end_own<T>(&mut self, own: bool, result: Result<T>) -> Result<T> {
        if !own {
            return result;
        }
        match result {
            Ok(value) => {
                Box::pin(self.commit_level(1)).await?;
                Ok(value)
            }
            Err(e) => {
                let _ = Box::pin(self.rollback_level(1)).await;
                Err(e)
            }
        }
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
    /// [`Error::RolledBack`] when a statement of the transaction had failed (the server rolls
    /// back instead); [`Error::InDoubt`] when an earlier statement or COMMIT was cancelled in
    /// flight; the server's error for `COMMIT` (e.g. a deferred constraint). The transaction is
    /// over either way, except when in doubt: then roll back.
    pub async fn commit(&mut self) -> Result<()> {
        if self.levels.is_empty() && self.pending_rollback.is_none() && self.lost.is_none() {
            return Ok(());
        }
        self.commit_level(1).await
    }

    /// Rolls back the transaction, if one is open (SQLAlchemy's `conn.rollback()`). Also ends a
    /// transaction in doubt.
    ///
    /// # Errors
    /// The driver's error when the connection is gone (the server has rolled back then).
    pub async fn rollback(&mut self) -> Result<()> {
        self.rollback_level(1).await
    }

    /// Gives the connection back to the pool, rolling back an open transaction first
    /// (SQLAlchemy's `await conn.close()`).
    ///
    /// The ROLLBACK is sent, not waited for (the mirror of the deferred BEGIN): whatever runs
    /// on the connection next is sent after it, so it runs outside this transaction, and a
    /// session that only read costs no round trip to close. Nothing hangs on its answer:
    /// ROLLBACK does not fail on a live connection, and a connection that died fails the next
    /// statement sent on it, as any pooled connection that dies does. A connection whose
    /// ROLLBACK cannot even be sent is discarded.
    pub async fn close(mut self) {
        self.forget_unsent_begin();
        if let Some(conn) = self.conn.as_mut() {
            if conn.dirty {
                let failed = {
                    let mut rollback = std::pin::pin!(conn.client.batch_execute("ROLLBACK"));
                    // The first poll queues ROLLBACK on the connection before it can return;
                    // the answer is read (and dropped) by the connection's task.
                    let sent = std::future::poll_fn(|cx| {
                        std::task::Poll::Ready(rollback.as_mut().poll(cx))
                    })
                    .await;
                    matches!(sent, std::task::Poll::Ready(Err(_)))
                };
                conn.dirty = failed;
            }
        }
        self.levels.clear();
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

    async fn simple_as(&mut self, sql: &str, what: Lost) -> Result<()> {
        let started = Instant::now();
        let result = on_client!(self, what, sql sql, client => client.batch_execute(sql));
        self.finish(sql, &[], started, result)?;
        self.echo(sql, &[], 0, started);
        Ok(())
    }

    async fn simple(&mut self, sql: &str) -> Result<()> {
        self.simple_as(sql, Lost::Statement).await
    }

    fn live(&mut self) -> Result<&mut PgConnection> {
        if self.conn.is_none() {
            return Err(self.gone());
        }
        match self.conn.as_mut() {
            Some(conn) => Ok(conn),
            None => Err(closed()),
        }
    }

    /// Runs `sql` (a `SET LOCAL`) now, at the start of the transaction just begun (with its
    /// deferred `BEGIN` in the same flight), so that the statements prepared after it see it.
    pub(crate) async fn set_local(&mut self, sql: &str) -> Result<()> {
        self.simple(sql).await
    }

    /// Ends a transaction whose `BEGIN` was never sent: nothing to tell the server.
    fn forget_unsent_begin(&mut self) -> bool {
        if !self.begin_unsent {
            return false;
        }
        self.begin_unsent = false;
        self.levels.clear();
        self.pending_rollback = None;
        self.aborted = None;
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
            if e.as_db_error().is_some() && !self.levels.is_empty() && self.aborted.is_none() {
                // PostgreSQL aborts the transaction: until a rollback (to a savepoint), every
                // statement fails and COMMIT rolls back.
                self.aborted = Some(match e.as_db_error() {
                    Some(db) => format!("{}: {}", db.code().code(), db.message()),
                    None => e.to_string(),
                });
            }
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
