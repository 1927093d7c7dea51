//! Checkouts: the engine's methods that hand out [`AsyncConnection`]s.

use super::AsyncConnection;
use crate::engine::Engine;
use crate::error::{Error, Result};

/// Checkouts: the engine's methods that hand out [`AsyncConnection`]s (here, so that the
/// pool below knows nothing of connections).
impl Engine {
    /// Checks a connection out of the pool (SQLAlchemy's `engine.connect()`).
    ///
    /// Statements on it autocommit until [`AsyncConnection::begin`] is called. Give it back with
    /// [`AsyncConnection::close`] or by dropping it; an open transaction is rolled back first.
    ///
    /// # Errors
    /// [`Error::Disposed`] after [`Engine::dispose`]; [`Error::Connect`] as soon as opening a
    /// new connection fails while the pool has none (server down, wrong password, unknown
    /// database); [`Error::PoolTimeout`] when every connection stays checked out for the
    /// checkout timeout.
    ///
    /// # Cancel safety
    /// Dropping the future loses nothing: a connection already taken is returned to the pool.
    pub async fn connect(&self) -> Result<AsyncConnection> {
        Ok(AsyncConnection::new(self.checkout().await?, self.clone()))
    }

    /// Checks out a connection and begins a transaction on it (SQLAlchemy's
    /// `engine.begin()`).
    ///
    /// Commit it with [`AsyncConnection::commit`]; dropping it or [`AsyncConnection::close`]
    /// without committing rolls back. For the scoped form see [`Engine::transaction`].
    ///
    /// # Errors
    /// As [`Engine::connect`], and the server's error for `BEGIN`.
    pub async fn begin(&self) -> Result<AsyncConnection> {
        let mut conn = self.connect().await?;
        conn.begin_level().await?;
        Ok(conn)
    }

    /// Runs `body` in a transaction on a fresh connection: commits when it returns `Ok`, rolls
    /// back when it returns `Err`, and gives the connection back in every case (the Rust
    /// counterpart of `async with engine.begin() as conn:`).
    ///
    /// ```no_run
    /// # async fn demo(engine: session_core::Engine) -> session_core::Result<()> {
    /// let n: i64 = engine
    ///     .transaction(async |conn| {
    ///         conn.execute("CREATE TABLE t (id int)", &[]).await?;
    ///         conn.scalar("SELECT count(*) FROM t", &[]).await
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The body's error (after rolling back), or the error of `BEGIN` / `COMMIT`.
    pub async fn transaction<T, E, F>(&self, body: F) -> std::result::Result<T, E>
    where
        F: AsyncFnOnce(&mut AsyncConnection) -> std::result::Result<T, E>,
        E: From<Error>,
    {
        let mut conn = self.begin().await?;
        match body(&mut conn).await {
            Ok(value) => {
                conn.commit().await?;
                conn.close().await;
                Ok(value)
            }
            Err(e) => {
                if let Err(rollback) = conn.rollback().await {
                    tracing::warn!(target: "session_core::engine", error = %rollback,
                        "rollback after a failed transaction body failed; connection discarded");
                }
                conn.close().await;
                Err(e)
            }
        }
    }
}
