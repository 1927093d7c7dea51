//! The blocking counterparts of the async handles a session hands out: its transaction
//! ([`SessionTransaction`]), its connection ([`SessionConnection`]) and its streams
//! ([`ObjIter`]). Each call blocks on the shared runtime, as the session's own members do.

use std::fmt;

use futures::StreamExt;

use super::block_on;
use crate::connection::Param;
use crate::error::Result;
use crate::model::{Entity, Obj};
use crate::session::{AsyncSession, AsyncSessionTransaction, ObjStream};

/// The blocking session's transaction or savepoint, from [`Session::begin`](super::Session::begin),
/// [`Session::begin_with`](super::Session::begin_with) or
/// [`Session::begin_nested`](super::Session::begin_nested) (SQLAlchemy's sync
/// `SessionTransaction`).
///
/// It acts only on the transaction it began, as [`AsyncSessionTransaction`] does: once that
/// one ended otherwise, `commit()` and `rollback()` are "This transaction is closed".
/// Dropped without either, it stays open until the session commits, rolls back or closes
/// (a warning is logged): prefer [`Session::transaction`](super::Session::transaction) and
/// [`Session::nested_transaction`](super::Session::nested_transaction).
///
/// ```no_run
/// # fn demo(session: &session_core::blocking::Session) -> session_core::Result<()> {
/// let savepoint = session.begin_nested()?;
/// // ... work that may be undone alone ...
/// savepoint.rollback()?; // back to the savepoint; the outer transaction goes on
/// session.commit()?;
/// # Ok(()) }
/// ```
#[must_use = "end the transaction with `commit()` or `rollback()`"]
pub struct SessionTransaction {
    inner: AsyncSessionTransaction,
}

impl SessionTransaction {
    pub(super) fn new(inner: AsyncSessionTransaction) -> Self {
        SessionTransaction { inner }
    }

    /// Commits the transaction, or releases the savepoint (flushing first).
    ///
    /// # Errors
    /// As [`AsyncSessionTransaction::commit`]; [`Error::InvalidRequest`](crate::Error::InvalidRequest)
    /// from async code (see the [module docs](super)).
    pub fn commit(self) -> Result<()> {
        block_on(self.inner.commit())?
    }

    /// Rolls back the transaction, or just the savepoint.
    ///
    /// # Errors
    /// As [`AsyncSessionTransaction::rollback`]; [`Error::InvalidRequest`](crate::Error::InvalidRequest)
    /// from async code.
    pub fn rollback(self) -> Result<()> {
        block_on(self.inner.rollback())?
    }

    /// True for a savepoint.
    pub fn nested(&self) -> bool {
        self.inner.nested()
    }

    /// True while this transaction is open and no failed flush waits for its rollback.
    pub fn is_active(&self) -> bool {
        self.inner.is_active()
    }

    /// The async handle underneath.
    pub fn into_async(self) -> AsyncSessionTransaction {
        self.inner
    }

    /// True while the transaction this handle began is still open.
    pub(super) fn is_current(&self) -> bool {
        self.inner.is_current()
    }

    /// Ends the handle without acting (its transaction was ended by hand).
    pub(super) fn forget(self) {
        self.inner.forget();
    }
}

impl fmt::Debug for SessionTransaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionTransaction")
            .field("nested", &self.nested())
            .finish()
    }
}

/// The connection of a blocking session's transaction, from
/// [`Session::connection`](super::Session::connection) (SQLAlchemy's `Session.connection()`):
/// [`crate::SessionConnection`] with blocking calls. Its statements run in the session's
/// transaction (begun on first use) and commit or roll back with it.
///
/// ```no_run
/// # fn demo(session: &session_core::blocking::Session) -> session_core::Result<()> {
/// let mut conn = session.connection()?;
/// let n: i64 = conn.scalar("SELECT count(*) FROM a", &[])?;
/// # Ok(()) }
/// ```
pub struct SessionConnection {
    inner: crate::SessionConnection,
}

impl SessionConnection {
    pub(super) fn new(inner: crate::SessionConnection) -> Self {
        SessionConnection { inner }
    }

    /// Runs a statement; returns the number of rows it affected.
    ///
    /// # Errors
    /// As [`crate::SessionConnection::execute`]; from async code, see the [module docs](super).
    pub fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        block_on(self.inner.execute(sql, params))?
    }

    /// Runs a query; returns its rows.
    ///
    /// # Errors
    /// As [`crate::SessionConnection::query`].
    pub fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<tokio_postgres::Row>> {
        block_on(self.inner.query(sql, params))?
    }

    /// Runs a query that returns exactly one row.
    ///
    /// # Errors
    /// As [`crate::SessionConnection::query_one`].
    pub fn query_one(&mut self, sql: &str, params: &[Param<'_>]) -> Result<tokio_postgres::Row> {
        block_on(self.inner.query_one(sql, params))?
    }

    /// Runs a query that returns at most one row.
    ///
    /// # Errors
    /// As [`crate::SessionConnection::query_opt`].
    pub fn query_opt(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Option<tokio_postgres::Row>> {
        block_on(self.inner.query_opt(sql, params))?
    }

    /// The first column of the one row a query returns.
    ///
    /// # Errors
    /// As [`crate::SessionConnection::scalar`].
    pub fn scalar<T: postgres_types::FromSqlOwned>(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<T> {
        block_on(self.inner.scalar(sql, params))?
    }

    /// Runs several `;`-separated statements without parameters.
    ///
    /// # Errors
    /// As [`crate::SessionConnection::batch_execute`].
    pub fn batch_execute(&mut self, sql: &str) -> Result<()> {
        block_on(self.inner.batch_execute(sql))?
    }

    /// The async session this connection belongs to.
    pub fn session(&self) -> &AsyncSession {
        self.inner.session()
    }

    /// The engine the connection comes from.
    pub fn engine(&self) -> &crate::engine::Engine {
        self.inner.engine()
    }

    /// The async handle underneath.
    pub fn into_async(self) -> crate::SessionConnection {
        self.inner
    }
}

impl fmt::Debug for SessionConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "blocking::{:?}", self.inner)
    }
}

/// The objects of a streamed select, one blocking fetch of
/// [`STREAM_CHUNK`](crate::STREAM_CHUNK) rows at a time, from
/// [`Session::stream`](super::Session::stream) or
/// [`Session::stream_scalars`](super::Session::stream_scalars): [`ObjStream`] as an
/// [`Iterator`]. The session refuses other operations while it lives; dropping it early is
/// safe.
pub struct ObjIter<T: Entity> {
    stream: Option<ObjStream<T>>,
}

impl<T: Entity> ObjIter<T> {
    pub(super) fn new(stream: ObjStream<T>) -> Self {
        ObjIter {
            stream: Some(stream),
        }
    }
}

impl<T: Entity> Iterator for ObjIter<T> {
    type Item = Result<Obj<T>>;

    /// The next object, fetching the next chunk when needed; an error (a failed fetch, or
    /// a call from async code) is the last item.
    fn next(&mut self) -> Option<Result<Obj<T>>> {
        let stream = self.stream.as_mut()?;
        let item = match block_on(stream.next()) {
            Ok(item) => item,
            Err(e) => Some(Err(e)),
        };
        if !matches!(item, Some(Ok(_))) {
            self.stream = None;
        }
        item
    }
}

impl<T: Entity> fmt::Debug for ObjIter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjIter")
            .field("entity", &T::TABLE.entity)
            .field("done", &self.stream.is_none())
            .finish()
    }
}
