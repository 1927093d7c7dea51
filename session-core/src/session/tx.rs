//! Transactions: commit, rollback, savepoints, transaction blocks, closing, and the handles
//! that end exactly the level they began.

use super::connection::SessionConnection;
use super::events::Plain;
use super::flights::Ride;
use super::{AsyncSession, Bound, Phase, PhaseGuard, lock, release_all_now};
use crate::error::{Error, Result};

/// What [`AsyncSession::get_transaction`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionInfo {
    /// A savepoint.
    pub nested: bool,
    /// 1 for the root transaction, 2.. for savepoints.
    pub level: usize,
    /// False once a failed flush rolled the transaction back.
    pub is_active: bool,
}

impl AsyncSession {
    /// The handle's level must still be the one it began (`This transaction is closed`).
    fn check_handle(&self, level: usize, id: u64) -> Result<()> {
        if self.state().level_id(level) == Some(id) {
            Ok(())
        } else {
            Err(Error::Closed("This transaction is closed".into()))
        }
    }

    /// Implements [`AsyncSession::commit`].
    pub(crate) async fn commit_impl(&self) -> Result<()> {
        let mut conns = self.lock_conns()?;
        self.fire(Plain::BeforeCommit)?;
        // Flush until clean: an after_flush listener may add work (SQLAlchemy's bound).
        let mut flushes = 0;
        let mut committed = false;
        loop {
            // The first flush may send COMMIT with its last statements (`flights.rs`).
            match self.flush_riding(&mut conns, flushes == 0).await? {
                Ride::NotTaken => {}
                Ride::Committed => {
                    committed = true;
                    break;
                }
                Ride::CommitFailed(e) => {
                    self.state().rollback_root();
                    release_all_now(&mut conns);
                    let _ = self.fire_pending();
                    return Err(e);
                }
            }
            if !self.has_changes(&self.state()) {
                break;
            }
            flushes += 1;
            if flushes >= 100 {
                return Err(Error::InvalidRequest(
                    "Over 100 subsequent flushes have occurred within session.commit() - is an \
                     after_flush() hook creating new objects?"
                        .into(),
                ));
            }
        }
        let mut failure = None;
        for bound in conns.iter_mut().filter(|_| !committed) {
            if let Err(e) = bound.commit_root().await {
                failure = Some(e);
                break;
            }
        }
        if let Some(e) = failure {
            if e.is_in_doubt() {
                // Nothing is known: the session stays in this transaction until rollback().
                return Err(e);
            }
            // No `.await` once the outcome is known: a caller dropping this future now
            // cannot make a retry look like a second, successful commit.
            self.state().rollback_root();
            release_all_now(&mut conns);
            let _ = self.fire_pending();
            return Err(e);
        }
        let expire = self.expire_on_commit();
        // What listeners have not heard yet is told after after_commit, with the ends of the
        // transaction's levels.
        let earlier = std::mem::take(&mut self.state().pending);
        self.state().commit_root(expire);
        release(&mut conns).await;
        // The transaction is over: listeners hear it with SQL refused, and what they return
        // is reported without undoing the commit.
        let phase = PhaseGuard::enter(&self.inner, Phase::Committed);
        let mut outcome = self.fire(Plain::AfterCommit);
        {
            let mut state = self.state();
            let later = std::mem::take(&mut state.pending);
            state.pending = earlier;
            state.pending.extend(later);
        }
        let pending = self.fire_pending();
        drop(phase);
        if outcome.is_ok() {
            outcome = pending;
        }
        outcome
    }

    /// Implements [`AsyncSession::rollback`].
    pub(crate) async fn rollback_impl(&self) -> Result<()> {
        let mut conns = self.lock_conns()?;
        self.state().rollback_root();
        let mut first = None;
        let database = !conns.is_empty();
        for mut bound in conns.drain(..) {
            if let Err(e) = bound.rollback_root().await {
                first.get_or_insert(e);
            }
            bound.release().await;
        }
        let _phase = PhaseGuard::enter(&self.inner, Phase::RolledBack);
        let mut outcome = first.map_or(Ok(()), Err);
        if database {
            let fired = self.fire(Plain::AfterRollback);
            if outcome.is_ok() {
                outcome = fired;
            }
        }
        let pending = self.fire_pending();
        outcome.and(pending)
    }

    /// Implements [`AsyncSession::begin`] and `begin_with`.
    pub(crate) async fn begin_impl(
        &self,
        options: crate::TransactionOptions,
    ) -> Result<AsyncSessionTransaction> {
        let id = {
            let mut state = self.state();
            state.check_usable()?;
            if state.tx.is_some() {
                return Err(Error::InvalidRequest(
                    "A transaction is already begun on this Session.".into(),
                ));
            }
            state.autobegin()[0].options = options;
            state.level_id(1).unwrap_or_default()
        };
        self.fire_pending()?;
        Ok(AsyncSessionTransaction {
            session: self.handle(),
            level: 1,
            id,
            done: false,
        })
    }

    /// Implements [`AsyncSession::begin_nested`].
    pub(crate) async fn begin_nested_impl(&self) -> Result<AsyncSessionTransaction> {
        let mut conns = self.lock_conns()?;
        self.flush_locked(&mut conns).await?;
        let (level, id) = {
            let mut state = self.state();
            state.check_usable()?;
            state.push_savepoint();
            let level = state.depth();
            (level, state.level_id(level).unwrap_or_default())
        };
        let options = self
            .state()
            .root_options()
            .or(lock(&self.inner.config).transaction_options);
        for bound in conns.iter_mut() {
            if let Err(e) = bound.align(level, options).await {
                self.state().rollback_savepoint();
                return Err(e);
            }
        }
        self.fire_pending()?;
        Ok(AsyncSessionTransaction {
            session: self.handle(),
            level,
            id,
            done: false,
        })
    }

    /// Implements [`AsyncSession::transaction`]: SQLAlchemy's `with session.begin():`. Work
    /// after the transaction was ended by hand inside the block is refused until the block
    /// ends; the block then neither commits nor rolls back again.
    pub(crate) async fn transaction_impl<T, E, F>(&self, body: F) -> std::result::Result<T, E>
    where
        F: AsyncFnOnce(&AsyncSession) -> std::result::Result<T, E>,
        E: From<Error>,
    {
        self.run_block(body(self)).await
    }

    /// Begins a transaction, runs `body` in it as a block, and commits on `Ok` / rolls back on
    /// `Err`, unless the body ended the transaction by hand (then work after that inside the
    /// block was refused, and nothing more is done).
    pub(crate) async fn run_block<T, E>(
        &self,
        body: impl std::future::Future<Output = std::result::Result<T, E>>,
    ) -> std::result::Result<T, E>
    where
        E: From<Error>,
    {
        self.run_block_with(crate::TransactionOptions::new(), body)
            .await
    }

    /// [`AsyncSession::run_block`] in a transaction with `options`.
    pub(crate) async fn run_block_with<T, E>(
        &self,
        options: crate::TransactionOptions,
        body: impl std::future::Future<Output = std::result::Result<T, E>>,
    ) -> std::result::Result<T, E>
    where
        E: From<Error>,
    {
        let tx = self.begin_impl(options).await?;
        let block = self.enter_block(&tx);
        let out = body.await;
        drop(block);
        if !tx.is_current() {
            tx.forget();
            return out;
        }
        match out {
            Ok(value) => {
                tx.commit().await?;
                Ok(value)
            }
            Err(e) => {
                if let Err(rollback) = tx.rollback().await {
                    tracing::warn!(target: "session_core::session", error = %rollback,
                        "rollback after a failed transaction body failed");
                }
                Err(e)
            }
        }
    }

    /// Marks the session as running the block of `tx` (a root transaction) until the guard
    /// drops: work after `tx` was ended by hand is refused meanwhile.
    pub(crate) fn enter_block(&self, tx: &AsyncSessionTransaction) -> BlockGuard<'_> {
        BlockGuard::enter(self, tx.id)
    }

    /// Implements [`AsyncSession::scope`].
    pub(crate) async fn scope_impl<R>(&self, body: impl AsyncFnOnce(&AsyncSession) -> R) -> R {
        let out = body(self).await;
        self.close().await;
        out
    }

    async fn end_level(&self, level: usize, id: u64, commit: bool) -> Result<()> {
        self.check_handle(level, id)?;
        if level <= 1 {
            return if commit {
                self.commit().await
            } else {
                self.rollback().await
            };
        }
        let mut conns = self.lock_conns()?;
        self.check_handle(level, id)?;
        // Ending a savepoint ends the savepoints inside it too (the database's RELEASE and
        // ROLLBACK TO do), so the bookkeeping of every level from the innermost down to this
        // one is merged or undone.
        if commit {
            self.flush_locked(&mut conns).await?;
            for bound in conns.iter_mut() {
                bound.commit_level(level).await?;
            }
            let mut state = self.state();
            while state.depth() >= level {
                state.commit_savepoint();
            }
        } else {
            for bound in conns.iter_mut() {
                bound.rollback_level(level).await?;
            }
            let mut state = self.state();
            while state.depth() >= level {
                state.rollback_savepoint();
            }
        }
        self.fire_pending()
    }

    /// Implements [`AsyncSession::close`].
    pub(crate) async fn close_impl(&self) {
        self.close_with(!self.close_resets_only(), false).await;
    }

    /// Implements [`AsyncSession::aclose`].
    pub(crate) async fn aclose_impl(&self) {
        self.close().await;
    }

    /// Implements [`AsyncSession::reset`].
    pub(crate) async fn reset_impl(&self) {
        self.close_with(false, false).await;
    }

    /// Implements [`AsyncSession::invalidate`].
    pub(crate) async fn invalidate_impl(&self) {
        self.close_with(!self.close_resets_only(), true).await;
    }

    async fn close_with(&self, final_close: bool, invalidate: bool) {
        // Never waits on the calling task itself (a live stream of it holds the connections:
        // they are given back when it lets them go); waits for another task's operation.
        let conns = self.lock_conns_for_close().await;
        {
            let mut state = self.state();
            state.expunge_all(true);
            state.end_all();
            state.failed = None;
            if final_close {
                state.closed = true;
            }
        }
        lock(&self.inner.dirty).clear();
        if let Err(e) = self.fire_pending() {
            tracing::warn!(target: "session_core::events", error = %e,
                "a listener failed while the session closed");
        }
        let Some(mut conns) = conns else {
            // The caller's own stream holds the connections: they are given back when it lets
            // go. Should it have let go meanwhile, give them back now (never leave the request
            // standing for a later operation).
            self.inner
                .close_requested
                .store(true, std::sync::atomic::Ordering::Release);
            if let Ok(guard) = self.inner.conns.clone().try_lock_owned() {
                let taken = self
                    .inner
                    .close_requested
                    .swap(false, std::sync::atomic::Ordering::AcqRel);
                let mut guard = guard;
                if taken {
                    release_all_now(&mut guard);
                }
            }
            return;
        };
        for mut bound in conns.drain(..) {
            if invalidate && bound.home.is_none() {
                bound.conn.invalidate();
            } else if bound.owns_transaction() {
                // The connection's close sends ROLLBACK without waiting for it
                // (`AsyncConnection::close`): closing a session that only read costs no
                // round trip.
                bound.release().await;
            } else {
                let _ = bound.rollback_root().await;
                bound.release().await;
            }
        }
    }

    /// Implements [`AsyncSession::close_all`].
    pub(crate) async fn close_all_impl() {
        for session in AsyncSession::live_sessions() {
            session.close().await;
        }
    }

    /// Implements [`AsyncSession::in_transaction`].
    pub(crate) fn in_transaction_impl(&self) -> bool {
        self.state().tx.is_some()
    }

    /// Implements [`AsyncSession::in_nested_transaction`].
    pub(crate) fn in_nested_transaction_impl(&self) -> bool {
        self.state().depth() > 1
    }

    /// Implements [`AsyncSession::get_transaction`].
    pub(crate) fn get_transaction_impl(&self) -> Option<TransactionInfo> {
        let state = self.state();
        state.tx.as_ref().map(|_| TransactionInfo {
            nested: false,
            level: 1,
            is_active: state.failed.is_none(),
        })
    }

    /// Implements [`AsyncSession::get_nested_transaction`].
    pub(crate) fn get_nested_transaction_impl(&self) -> Option<TransactionInfo> {
        let state = self.state();
        let depth = state.depth();
        (depth > 1).then(|| TransactionInfo {
            nested: true,
            level: depth,
            is_active: state.failed.as_ref().is_none_or(|f| f.level > depth),
        })
    }

    /// Implements [`AsyncSession::is_active`].
    pub(crate) fn is_active_impl(&self) -> bool {
        self.state().failed.is_none()
    }

    /// Implements [`AsyncSession::no_autoflush`].
    pub(crate) fn no_autoflush_impl(&self) -> NoAutoflush {
        let previous = std::mem::replace(&mut self.state().autoflush, false);
        NoAutoflush {
            session: self.handle(),
            previous,
        }
    }

    /// Implements [`AsyncSession::connection`].
    pub(crate) async fn connection_impl(&self) -> Result<SessionConnection> {
        let engine = self.resolve_bind(None, None, false)?;
        let mut conns = self.lock_conns()?;
        self.conn_for(&mut conns, &engine).await?;
        Ok(SessionConnection {
            session: self.handle(),
            engine,
        })
    }
}

/// Marks the session as inside a `transaction(...)` block for its root transaction `id`, and
/// unmarks it when the block ends (or its future is dropped).
pub(crate) struct BlockGuard<'a> {
    session: &'a AsyncSession,
    previous: Option<u64>,
}

impl<'a> BlockGuard<'a> {
    fn enter(session: &'a AsyncSession, id: u64) -> Self {
        let previous = session.state().block.replace(id);
        BlockGuard { session, previous }
    }
}

impl Drop for BlockGuard<'_> {
    fn drop(&mut self) {
        self.session.state().block = self.previous;
    }
}

async fn release(conns: &mut Vec<Bound>) {
    for bound in conns.drain(..) {
        bound.release().await;
    }
}

/// The session's transaction or savepoint, from [`AsyncSession::begin`] or
/// [`AsyncSession::begin_nested`] (SQLAlchemy's `AsyncSessionTransaction`).
///
/// A handle acts only on the transaction it began: once that one ended (through
/// `session.commit()`, `session.rollback()`, or a root rollback that took a savepoint with
/// it), its `commit()` and `rollback()` are [`Error::Closed`] ("This transaction is closed"),
/// never an action on a later transaction.
///
/// Dropped without `commit()` or `rollback()`, it is rolled back when the session next closes or
/// rolls back, and a warning is logged: prefer [`AsyncSession::transaction`].
#[must_use = "end the transaction with `commit().await` or `rollback().await`"]
pub struct AsyncSessionTransaction {
    session: AsyncSession,
    level: usize,
    id: u64,
    done: bool,
}

impl AsyncSessionTransaction {
    /// Commits the transaction, or releases the savepoint (flushing first).
    ///
    /// # Errors
    /// As [`AsyncSession::commit`]; "This transaction is closed" when it already ended.
    pub async fn commit(mut self) -> Result<()> {
        self.done = true;
        self.session.end_level(self.level, self.id, true).await
    }

    /// Rolls back the transaction, or just the savepoint.
    ///
    /// # Errors
    /// As [`AsyncSession::rollback`]; "This transaction is closed" when it already ended.
    pub async fn rollback(mut self) -> Result<()> {
        self.done = true;
        self.session.end_level(self.level, self.id, false).await
    }

    /// True for a savepoint.
    pub fn nested(&self) -> bool {
        self.level > 1
    }

    /// True while this transaction is open and no failed flush waits for its rollback.
    pub fn is_active(&self) -> bool {
        let state = self.session.state();
        !self.done
            && state.level_id(self.level) == Some(self.id)
            && state.failed.as_ref().is_none_or(|f| f.level > self.level)
    }

    /// True while the transaction this handle began is still open.
    pub(crate) fn is_current(&self) -> bool {
        self.session.state().level_id(self.level) == Some(self.id)
    }

    /// Ends the handle without acting (its transaction was ended by hand).
    pub(crate) fn forget(mut self) {
        self.done = true;
    }
}

impl std::fmt::Debug for AsyncSessionTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncSessionTransaction")
            .field("nested", &self.nested())
            .field("level", &self.level)
            .finish()
    }
}

impl Drop for AsyncSessionTransaction {
    fn drop(&mut self) {
        if !self.done
            && !std::thread::panicking()
            && self.session.state().level_id(self.level) == Some(self.id)
        {
            tracing::warn!(target: "session_core::session", nested = self.nested(),
                "session transaction dropped without commit() or rollback(); it stays open \
                 until the session rolls back or closes (use AsyncSession::transaction)");
        }
    }
}

/// Keeps autoflush off while it lives (from [`AsyncSession::no_autoflush`]).
#[must_use = "autoflush is restored as soon as the guard drops"]
pub struct NoAutoflush {
    session: AsyncSession,
    previous: bool,
}

impl std::fmt::Debug for NoAutoflush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoAutoflush")
            .field("previous", &self.previous)
            .finish()
    }
}

impl Drop for NoAutoflush {
    fn drop(&mut self) {
        self.session.state().autoflush = self.previous;
    }
}
