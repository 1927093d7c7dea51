//! The session's connections: [`Bound`] (a connection of the session's transaction, and how
//! the session's levels map onto the connection's), [`SharedConnection`] (one connection that
//! sessions bind to, SQLAlchemy's `Session(bind=connection)`) and [`JoinTransactionMode`]
//! (what such a session does with a transaction already open on it).

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use super::lock;
use crate::connection::AsyncConnection;
use crate::engine::Engine;
use crate::error::Result;

/// A connection of the session's transaction, and the engine it came from.
pub(crate) struct Bound {
    pub(crate) engine: Engine,
    pub(crate) conn: AsyncConnection,
    /// Session level `n` is connection level `base + n`: the levels the connection had when
    /// the session joined it (the session works in a savepoint of its own), or one fewer when
    /// the session's root is the connection's outer transaction ([`Bound::outer`]).
    pub(crate) base: u32,
    /// The session's root is a transaction begun outside it: `Some(true)` commits it with
    /// the session (`control_fully`), `Some(false)` leaves it open on commit and rolls it back
    /// on rollback (`rollback_only`).
    pub(crate) outer: Option<bool>,
    /// Where an external connection goes back to.
    pub(crate) home: Option<SharedConnection>,
    /// Where the position of this connection's last commit goes (the session's, for
    /// read-your-writes on replicas; see `session/replica.rs`).
    pub(crate) commit_lsn: Option<Arc<AtomicU64>>,
}

impl Bound {
    /// A connection the session checked out itself.
    pub(crate) fn own(engine: Engine, conn: AsyncConnection) -> Self {
        Bound {
            engine,
            conn,
            base: 0,
            outer: None,
            home: None,
            commit_lsn: None,
        }
    }

    /// A connection the session was bound to, joined as `mode` says.
    pub(crate) fn joined(
        engine: Engine,
        conn: AsyncConnection,
        home: SharedConnection,
        mode: JoinTransactionMode,
    ) -> Self {
        let depth = conn.transaction_depth();
        let outer = match mode {
            _ if depth == 0 => None,
            JoinTransactionMode::CreateSavepoint => None,
            JoinTransactionMode::ConservativeSavepoint if depth >= 2 => None,
            JoinTransactionMode::ConservativeSavepoint | JoinTransactionMode::RollbackOnly => {
                Some(false)
            }
            JoinTransactionMode::ControlFully => Some(true),
        };
        Bound {
            engine,
            base: if outer.is_some() { depth - 1 } else { depth },
            conn,
            outer,
            home: Some(home),
            commit_lsn: None,
        }
    }

    /// True when the session's root transaction is this connection's own (checked out by the
    /// session, not joined): committing the session commits it and nothing else.
    pub(crate) fn owns_transaction(&self) -> bool {
        self.base == 0 && self.outer.is_none() && self.home.is_none()
    }

    // The ends of a transaction return boxed futures: once per transaction, and large
    // (kilobytes), they would otherwise make the future of every session call that may end
    // one (commit, rollback, close) that much larger, copied wherever it moves.

    pub(crate) fn commit_root(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            if self.outer == Some(false) {
                // The outer transaction stays open; the session's own savepoints are released.
                if self.conn.transaction_depth() > self.base + 1 {
                    return self.conn.commit_level(self.base + 2).await;
                }
                return Ok(());
            }
            if self.conn.transaction_depth() <= self.base && self.conn.is_settled() {
                return Ok(());
            }
            self.conn.commit_level(self.base + 1).await
        })
    }

    pub(crate) fn rollback_root(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.conn.rollback_level(self.base + 1))
    }

    pub(crate) async fn commit_level(&mut self, level: usize) -> Result<()> {
        self.conn.commit_level(self.base + level as u32).await
    }

    pub(crate) async fn rollback_level(&mut self, level: usize) -> Result<()> {
        self.conn.rollback_level(self.base + level as u32).await
    }

    /// Begins levels until the connection matches session depth `depth`; a transaction it
    /// begins (not a savepoint in a joined connection's) has `options`.
    pub(crate) async fn align(
        &mut self,
        depth: usize,
        options: crate::TransactionOptions,
    ) -> Result<()> {
        while self.conn.transaction_depth() < self.base + depth as u32 {
            if self.conn.transaction_depth() == 0 {
                self.conn.begin_level_with(options).await?;
            } else {
                self.conn.begin_level().await?;
            }
        }
        Ok(())
    }

    /// Gives the connection back: to its pool, or to the [`SharedConnection`] it came from.
    pub(crate) fn release(mut self) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            super::replica::after_transaction(
                &self.engine,
                &mut self.conn,
                self.commit_lsn.as_deref(),
            )
            .await;
            match self.home {
                Some(home) => home.put(self.conn),
                None => self.conn.close().await,
            }
        })
    }

    /// [`Bound::release`] without waiting: a pooled connection is rolled back by its drop.
    pub(crate) fn release_now(mut self) {
        match self.home.take() {
            Some(home) => {
                if let Ok(handle) = tokio::runtime::Handle::try_current() {
                    handle.spawn(async move {
                        let _ = self.rollback_root().await;
                        home.put(self.conn);
                    });
                }
            }
            None => drop(self.conn),
        }
    }
}

/// Gives every connection back without waiting ([`Bound::release_now`]).
pub(crate) fn release_all_now(conns: &mut Vec<Bound>) {
    for bound in conns.drain(..) {
        bound.release_now();
    }
}

/// One connection that sessions bind to (SQLAlchemy's `Session(bind=connection)`, the "join
/// an external transaction" recipe): a session takes it on first use, works inside the
/// connection's transaction (in a savepoint when one is open, so the session's commit only
/// releases the savepoint), and puts it back when its transaction ends.
#[derive(Clone)]
pub struct SharedConnection {
    slot: Arc<Mutex<Option<AsyncConnection>>>,
    engine: Engine,
}

impl SharedConnection {
    /// Shares `conn` with the sessions bound to it.
    pub fn new(conn: AsyncConnection) -> Self {
        SharedConnection {
            engine: conn.engine().clone(),
            slot: Arc::new(Mutex::new(Some(conn))),
        }
    }

    /// Takes the connection back (once no session holds it), e.g. to roll back the outer
    /// transaction at the end of a test.
    pub fn take(&self) -> Option<AsyncConnection> {
        lock(&self.slot).take()
    }

    /// Gives a connection taken with [`SharedConnection::take`] back to the sessions bound to
    /// this handle.
    pub fn put_back(&self, conn: AsyncConnection) {
        self.put(conn);
    }

    pub(crate) fn put(&self, conn: AsyncConnection) {
        *lock(&self.slot) = Some(conn);
    }

    /// The engine the connection came from.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

impl fmt::Debug for SharedConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedConnection({:?})", self.engine)
    }
}

/// What a session bound to a connection ([`SharedConnection`]) does with a transaction that is
/// already open on it (SQLAlchemy's `join_transaction_mode`). Without one, the session begins
/// and ends its own transaction on the connection in every mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum JoinTransactionMode {
    /// `rollback_only` when the connection is in a plain transaction, `create_savepoint` when
    /// it is inside a savepoint (SQLAlchemy's default).
    #[default]
    ConservativeSavepoint,
    /// The session works in a savepoint of its own: its commit releases it, its rollback
    /// rolls back to it; the outer transaction is never ended (the "join an external
    /// transaction" test recipe).
    CreateSavepoint,
    /// The session works in the outer transaction: its commit leaves it open (nothing is
    /// committed), its rollback rolls it back.
    RollbackOnly,
    /// The session takes the outer transaction over: its commit commits it, its rollback
    /// rolls it back.
    ControlFully,
}
