//! [`SessionConnection`]: the session's connection as a per-call handle.

use super::AsyncSession;
use crate::error::Result;

/// The connection of a session's transaction (from [`AsyncSession::connection`]), as a
/// handle: each call takes the session's connection for that call only, so the holder may go
/// on using the session between calls (SQLAlchemy lets both be used), and `close()` never
/// waits for a held handle. A call made while another task runs an operation of the session
/// is [`Error::ConcurrentUse`](crate::Error::ConcurrentUse).
///
/// Its statements run in the session's transaction (begun on first use); it commits and rolls
/// back with the session.
pub struct SessionConnection {
    pub(super) session: AsyncSession,
    pub(super) engine: crate::engine::Engine,
}

macro_rules! through_session {
    ($self:ident, $conn:ident => $body:expr) => {{
        let mut conns = $self.session.lock_conns()?;
        let $conn = $self.session.conn_for(&mut conns, &$self.engine).await?;
        $body.await
    }};
}

impl SessionConnection {
    /// [`AsyncConnection::execute`](crate::AsyncConnection::execute) in the session's transaction.
    ///
    /// # Errors
    /// As [`AsyncConnection::execute`](crate::AsyncConnection::execute), and [`Error::ConcurrentUse`](crate::Error::ConcurrentUse).
    pub async fn execute(
        &mut self,
        sql: &str,
        params: &[crate::connection::Param<'_>],
    ) -> Result<u64> {
        through_session!(self, conn => conn.execute(sql, params))
    }

    /// [`AsyncConnection::query`](crate::AsyncConnection::query) in the session's transaction.
    ///
    /// # Errors
    /// As [`AsyncConnection::query`](crate::AsyncConnection::query), and [`Error::ConcurrentUse`](crate::Error::ConcurrentUse).
    pub async fn query(
        &mut self,
        sql: &str,
        params: &[crate::connection::Param<'_>],
    ) -> Result<Vec<tokio_postgres::Row>> {
        through_session!(self, conn => conn.query(sql, params))
    }

    /// [`AsyncConnection::query_one`](crate::AsyncConnection::query_one) in the session's transaction.
    ///
    /// # Errors
    /// As [`AsyncConnection::query_one`](crate::AsyncConnection::query_one), and [`Error::ConcurrentUse`](crate::Error::ConcurrentUse).
    pub async fn query_one(
        &mut self,
        sql: &str,
        params: &[crate::connection::Param<'_>],
    ) -> Result<tokio_postgres::Row> {
        through_session!(self, conn => conn.query_one(sql, params))
    }

    /// [`AsyncConnection::query_opt`](crate::AsyncConnection::query_opt) in the session's transaction.
    ///
    /// # Errors
    /// As [`AsyncConnection::query_opt`](crate::AsyncConnection::query_opt), and [`Error::ConcurrentUse`](crate::Error::ConcurrentUse).
    pub async fn query_opt(
        &mut self,
        sql: &str,
        params: &[crate::connection::Param<'_>],
    ) -> Result<Option<tokio_postgres::Row>> {
        through_session!(self, conn => conn.query_opt(sql, params))
    }

    /// [`AsyncConnection::scalar`](crate::AsyncConnection::scalar) in the session's transaction.
    ///
    /// # Errors
    /// As [`AsyncConnection::scalar`](crate::AsyncConnection::scalar), and [`Error::ConcurrentUse`](crate::Error::ConcurrentUse).
    pub async fn scalar<T: postgres_types::FromSqlOwned>(
        &mut self,
        sql: &str,
        params: &[crate::connection::Param<'_>],
    ) -> Result<T> {
        through_session!(self, conn => conn.scalar(sql, params))
    }

    /// [`AsyncConnection::batch_execute`](crate::AsyncConnection::batch_execute) in the session's transaction.
    ///
    /// # Errors
    /// As [`AsyncConnection::batch_execute`](crate::AsyncConnection::batch_execute), and [`Error::ConcurrentUse`](crate::Error::ConcurrentUse).
    pub async fn batch_execute(&mut self, sql: &str) -> Result<()> {
        through_session!(self, conn => conn.batch_execute(sql))
    }

    /// The session this connection belongs to.
    pub fn session(&self) -> &AsyncSession {
        &self.session
    }

    /// The engine the connection comes from.
    pub fn engine(&self) -> &crate::engine::Engine {
        &self.engine
    }
}

impl std::fmt::Debug for SessionConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionConnection({:?})", self.engine)
    }
}
