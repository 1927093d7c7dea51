//! [`AsyncTransaction`]: a transaction or savepoint on an [`AsyncConnection`], as a guard.

use std::ops::{Deref, DerefMut};

use crate::connection::AsyncConnection;
use crate::error::{Error, Result};
use crate::tx_options::TransactionOptions;

/// A transaction (or, from [`AsyncConnection::begin_nested`], a savepoint) on a connection
/// (SQLAlchemy's `AsyncTransaction`).
///
/// Statements run through it with the connection's methods (it dereferences to the
/// [`AsyncConnection`]). End it with [`commit`](AsyncTransaction::commit) or
/// [`rollback`](AsyncTransaction::rollback). Dropped without either, it is rolled back: the
/// rollback is sent before the connection's next statement, or when the connection goes back to
/// the pool, and a `tracing` warning names the forgotten end.
#[must_use = "a transaction is rolled back when dropped; call `commit().await` or `rollback().await`"]
pub struct AsyncTransaction<'c> {
    conn: &'c mut AsyncConnection,
    level: u32,
    /// The id of the level this guard began: it acts on that level only.
    id: u64,
    done: bool,
}

impl AsyncConnection {
    /// Begins a transaction and returns its guard (SQLAlchemy's `conn.begin()`).
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] when a transaction is already open on this connection (use
    /// [`AsyncConnection::begin_nested`] for a savepoint), or the server's error for `BEGIN`.
    ///
    /// # Cancel safety
    /// Dropped before `BEGIN` completes, the connection rolls back before its next statement.
    pub async fn begin(&mut self) -> Result<AsyncTransaction<'_>> {
        if self.in_transaction() {
            return Err(Error::InvalidRequest(
                "a transaction is already begun on this connection; \
                 use begin_nested() for a savepoint"
                    .into(),
            ));
        }
        let (level, id) = self.begin_level().await?;
        Ok(AsyncTransaction {
            conn: self,
            level,
            id,
            done: false,
        })
    }

    /// [`AsyncConnection::begin`] with `options` (isolation level, read only, deferrable) over
    /// the engine's; they go out in the `BEGIN` itself, before the transaction's first
    /// statement.
    ///
    /// ```no_run
    /// # async fn demo(mut conn: session_core::AsyncConnection) -> session_core::Result<()> {
    /// use session_core::{IsolationLevel, TransactionOptions};
    /// let tx = conn
    ///     .begin_with(TransactionOptions::new().isolation_level(IsolationLevel::Serializable))
    ///     .await?;
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`AsyncConnection::begin`].
    pub async fn begin_with(
        &mut self,
        options: TransactionOptions,
    ) -> Result<AsyncTransaction<'_>> {
        if self.in_transaction() {
            return Err(Error::InvalidRequest(
                "a transaction is already begun on this connection; its options are fixed \
                 at BEGIN (use begin_nested() for a savepoint)"
                    .into(),
            ));
        }
        let (level, id) = self.begin_level_with(options).await?;
        Ok(AsyncTransaction {
            conn: self,
            level,
            id,
            done: false,
        })
    }

    /// Begins a savepoint (`SAVEPOINT sa_savepoint_N`), first beginning a transaction when none
    /// is open (SQLAlchemy's `conn.begin_nested()`), and returns its guard.
    ///
    /// # Errors
    /// The server's error for `BEGIN` or `SAVEPOINT`.
    pub async fn begin_nested(&mut self) -> Result<AsyncTransaction<'_>> {
        self.settle().await?;
        if !self.in_transaction() {
            self.begin_level().await?;
        }
        let (level, id) = self.begin_level().await?;
        Ok(AsyncTransaction {
            conn: self,
            level,
            id,
            done: false,
        })
    }
}

impl AsyncTransaction<'_> {
    /// Commits this transaction, or releases this savepoint.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] ("This transaction is inactive") when it was already ended
    /// through the connection; else the server's error.
    ///
    /// # Cancel safety
    /// If the future is dropped before the outcome is known, the connection rolls the whole
    /// transaction back before its next statement: a commit is never half-known.
    pub async fn commit(mut self) -> Result<()> {
        self.done = true;
        if !self.is_current() {
            return Err(Error::Closed("This transaction is inactive".into()));
        }
        self.conn.commit_level(self.level).await
    }

    /// Rolls back this transaction, or rolls back to and releases this savepoint.
    ///
    /// # Errors
    /// The driver's error when the connection is gone.
    pub async fn rollback(mut self) -> Result<()> {
        self.done = true;
        if !self.is_current() && !self.conn.is_in_doubt() {
            return Ok(());
        }
        self.conn.rollback_level(self.level).await
    }

    /// True while the level this guard began is open (not a later one at the same depth).
    fn is_current(&self) -> bool {
        self.conn.level_id(self.level) == Some(self.id)
    }

    /// Begins a savepoint inside this transaction.
    ///
    /// # Errors
    /// The server's error for `SAVEPOINT`.
    pub async fn begin_nested(&mut self) -> Result<AsyncTransaction<'_>> {
        self.conn.begin_nested().await
    }

    /// True while this transaction is open on the connection (SQLAlchemy's `is_active`).
    pub fn is_active(&self) -> bool {
        !self.done && self.is_current()
    }

    /// True for a savepoint.
    pub fn is_nested(&self) -> bool {
        self.level > 1
    }
}

impl Deref for AsyncTransaction<'_> {
    type Target = AsyncConnection;

    fn deref(&self) -> &AsyncConnection {
        self.conn
    }
}

impl DerefMut for AsyncTransaction<'_> {
    fn deref_mut(&mut self) -> &mut AsyncConnection {
        self.conn
    }
}

impl std::fmt::Debug for AsyncTransaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncTransaction")
            .field("nested", &self.is_nested())
            .field("active", &self.is_active())
            .finish()
    }
}

impl Drop for AsyncTransaction<'_> {
    fn drop(&mut self) {
        if self.done || !self.is_current() {
            return;
        }
        if !std::thread::panicking() {
            tracing::debug!(target: "session_core::transaction", nested = self.is_nested(),
                "transaction dropped without commit() or rollback(); it is rolled back");
        }
        self.conn.defer_rollback(self.level);
    }
}
