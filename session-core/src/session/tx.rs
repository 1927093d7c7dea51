//! Flush, commit, rollback, savepoints and closing: the session's I/O orchestration.

use std::any::TypeId;
use std::collections::{HashMap, HashSet};
use std::ops::{Deref, DerefMut};

use super::state::SessionState;
use super::{AsyncSession, Bound, lock};
use crate::connection::AsyncConnection;
use crate::entity::Table;
use crate::error::{Error, Result};
use crate::flush::dependency_order;
use crate::object::{AnyObj, ObjectState};
use crate::relationship::Link;

/// Work found by a flush, grouped per entity type in first-seen order.
#[derive(Default)]
struct Plan {
    types: Vec<(TypeId, &'static Table)>,
    inserts: HashMap<TypeId, Vec<AnyObj>>,
    updates: HashMap<TypeId, Vec<AnyObj>>,
    deletes: HashMap<TypeId, Vec<AnyObj>>,
}

impl Plan {
    fn push(&mut self, kind: u8, obj: AnyObj) {
        let t = obj.cell.entity_type();
        if !self.types.iter().any(|(id, _)| *id == t) {
            self.types.push((t, obj.table()));
        }
        let map = match kind {
            0 => &mut self.inserts,
            1 => &mut self.updates,
            _ => &mut self.deletes,
        };
        map.entry(t).or_default().push(obj);
    }

    fn is_empty(&self) -> bool {
        self.types.is_empty()
    }
}

fn is_flushable_update(obj: &AnyObj) -> bool {
    let mut flushable = false;
    obj.cell.with_meta(&mut |m| {
        flushable = *m.status == ObjectState::Persistent && !*m.marked_deleted;
    });
    flushable
}

/// Marks the session failed if a flush is dropped before it finishes.
struct FlushGuard<'a> {
    session: &'a AsyncSession,
    armed: bool,
}

impl Drop for FlushGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut state = self.session.state();
            if state.failed.is_none() {
                state.failed = Some(
                    "the flush was cancelled before it finished (its future was dropped); \
                     the database transaction is rolled back"
                        .into(),
                );
            }
        }
    }
}

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
    /// True when there is anything to flush.
    pub(crate) fn has_changes(&self, state: &SessionState) -> bool {
        !state.new.is_empty() || !state.deleted.is_empty() || !lock(&self.inner.dirty).is_empty()
    }

    /// Writes pending changes: INSERTs of added objects, UPDATEs of changed columns, DELETEs of
    /// deleted objects, batched per table in foreign-key order (SQLAlchemy's `flush()`).
    ///
    /// # Errors
    /// The database error of the failing batch; the transaction is then rolled back and the
    /// session refuses work with [`Error::PendingRollback`] until `rollback()`.
    pub async fn flush(&self) -> Result<()> {
        let mut conns = self.lock_conns()?;
        self.flush_locked(&mut conns).await
    }

    pub(crate) async fn flush_locked(&self, conns: &mut Vec<Bound>) -> Result<()> {
        let (plan, links) = {
            let mut state = self.state();
            state.check_usable()?;
            let dirty = std::mem::take(&mut *lock(&self.inner.dirty));
            if state.new.is_empty() && state.deleted.is_empty() && dirty.is_empty() {
                return Ok(());
            }
            let links = self.cascade(&mut state, &dirty)?;
            let mut plan = Plan::default();
            for obj in &state.new {
                plan.push(0, obj.clone());
            }
            let mut seen = HashSet::new();
            for obj in dirty {
                if seen.insert(obj.cell.object_id()) && is_flushable_update(&obj) {
                    plan.push(1, obj);
                }
            }
            for obj in &state.deleted {
                plan.push(2, obj.clone());
            }
            if plan.is_empty() {
                return Ok(());
            }
            state.autobegin();
            (plan, links)
        };
        let mut guard = FlushGuard {
            session: self,
            armed: true,
        };
        let result = self.run_plan(conns, plan, &links).await;
        guard.armed = false;
        if let Err(e) = result {
            self.state().failed = Some(e.to_string());
            // Roll the database back now, so no connection idles in a failed transaction.
            for mut bound in conns.drain(..) {
                let _ = bound.rollback_root().await;
                bound.release().await;
            }
            return Err(e);
        }
        Ok(())
    }

    /// Walks the relationships of pending and changed objects: transient objects they reach
    /// are added (SQLAlchemy's save-update cascade); returns every parent/child link.
    fn cascade(&self, state: &mut SessionState, dirty: &[AnyObj]) -> Result<Vec<Link>> {
        let me = self.inner.id;
        let mut links = Vec::new();
        let mut queue: Vec<AnyObj> = state.new.iter().chain(dirty).cloned().collect();
        while let Some(obj) = queue.pop() {
            let mut found = Vec::new();
            obj.cell.clone().relations(&mut |link| found.push(link));
            for link in found {
                for other in [&link.parent, &link.child] {
                    if other.cell.status() == ObjectState::Transient {
                        state.add(other, me, AsyncSession::is_alive)?;
                        other.cell.set_sink(Some(self.inner.dirty.clone()));
                        queue.push(other.clone());
                    }
                }
                links.push(link);
            }
        }
        Ok(links)
    }

    async fn run_plan(&self, conns: &mut Vec<Bound>, mut plan: Plan, links: &[Link]) -> Result<()> {
        let tables: Vec<&'static Table> = plan.types.iter().map(|(_, t)| *t).collect();
        let order = dependency_order(&tables);
        for &i in &order {
            let (t, table) = plan.types[i];
            if let Some(objs) = plan.inserts.get(&t) {
                // Children take their parents' keys (parents' tables were inserted before).
                for link in links
                    .iter()
                    .filter(|l| std::ptr::eq(l.child.table(), table))
                {
                    link.apply();
                }
                let engine = self.resolve_bind(Some(table), Some(t), true)?;
                let conn = self.conn_for(conns, &engine).await?;
                objs[0].cell.insert_batch(conn, objs).await?;
                let mut state = self.state();
                let sink = self.inner.dirty.clone();
                let done: HashSet<u64> = objs.iter().map(|o| o.cell.object_id()).collect();
                state.new.retain(|o| !done.contains(&o.cell.object_id()));
                for obj in objs {
                    obj.cell.set_sink(Some(sink.clone()));
                    if let Some(other) = obj.cell.clone().identity_insert(&mut state.identity) {
                        return Err(Error::InvalidRequest(format!(
                            "New instance {obj:?} conflicts with persistent instance {other}"
                        )));
                    }
                    state.innermost().inserted.push(obj.clone());
                }
            }
        }
        // Persistent children moved to a parent get its key now, and are updated below.
        for link in links {
            link.apply();
        }
        let inserted: HashSet<u64> = plan
            .inserts
            .values()
            .flatten()
            .map(|o| o.cell.object_id())
            .collect();
        let mut seen: HashSet<u64> = plan
            .updates
            .values()
            .flatten()
            .map(|o| o.cell.object_id())
            .collect();
        let late = std::mem::take(&mut *lock(&self.inner.dirty));
        for obj in late {
            let id = obj.cell.object_id();
            if inserted.contains(&id) || !seen.insert(id) {
                continue;
            }
            if is_flushable_update(&obj) {
                plan.push(1, obj);
            }
        }
        let tables: Vec<&'static Table> = plan.types.iter().map(|(_, t)| *t).collect();
        let order = dependency_order(&tables);
        for &i in &order {
            let (t, table) = plan.types[i];
            if let Some(objs) = plan.updates.get(&t) {
                let engine = self.resolve_bind(Some(table), Some(t), true)?;
                let conn = self.conn_for(conns, &engine).await?;
                let updated = objs[0].cell.update_batch(conn, objs).await?;
                self.state().innermost().updated.extend(updated);
            }
        }
        for &i in order.iter().rev() {
            let (t, table) = plan.types[i];
            if let Some(objs) = plan.deletes.get(&t) {
                let engine = self.resolve_bind(Some(table), Some(t), true)?;
                let conn = self.conn_for(conns, &engine).await?;
                objs[0].cell.delete_batch(conn, objs).await?;
                let mut state = self.state();
                let done: HashSet<u64> = objs.iter().map(|o| o.cell.object_id()).collect();
                state
                    .deleted
                    .retain(|o| !done.contains(&o.cell.object_id()));
                for obj in objs {
                    obj.cell.identity_remove(&mut state.identity);
                    state.innermost().deleted.push(obj.clone());
                }
            }
        }
        Ok(())
    }

    /// Flushes, then commits the whole transaction, savepoints included (SQLAlchemy's
    /// `commit()`); the connections go back to the pool. With `expire_on_commit` (the default)
    /// every object is expired; deleted objects become detached.
    ///
    /// # Errors
    /// The flush's or COMMIT's error; after a COMMIT error the session is rolled back.
    pub async fn commit(&self) -> Result<()> {
        let mut conns = self.lock_conns()?;
        self.flush_locked(&mut conns).await?;
        let mut failure = None;
        for bound in conns.iter_mut() {
            if let Err(e) = bound.commit_root().await {
                failure = Some(e);
                break;
            }
        }
        if let Some(e) = failure {
            self.state().rollback_root();
            release(&mut conns).await;
            return Err(e);
        }
        release(&mut conns).await;
        let expire = self.expire_on_commit();
        self.state().commit_root(expire);
        Ok(())
    }

    /// Rolls back the whole transaction (SQLAlchemy's `rollback()`): objects added in it become
    /// transient, deleted ones come back, every persistent object is expired, and a failed
    /// flush's [`Error::PendingRollback`] is cleared. Without a transaction it does nothing.
    ///
    /// # Errors
    /// The driver's error when a connection is gone (its transaction is gone with it); the
    /// session is rolled back either way.
    pub async fn rollback(&self) -> Result<()> {
        let mut conns = self.lock_conns()?;
        self.state().rollback_root();
        let mut first = None;
        for mut bound in conns.drain(..) {
            if let Err(e) = bound.rollback_root().await {
                first.get_or_insert(e);
            }
            bound.release().await;
        }
        first.map_or(Ok(()), Err)
    }

    /// Begins the session's transaction explicitly (SQLAlchemy's `begin()`); end it with
    /// [`AsyncSessionTransaction::commit`] or [`AsyncSessionTransaction::rollback`], or use
    /// [`AsyncSession::transaction`], which cannot forget to.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] "A transaction is already begun on this Session." when one is
    /// open (also an autobegun one).
    pub async fn begin(&self) -> Result<AsyncSessionTransaction> {
        let mut state = self.state();
        state.check_usable()?;
        if state.tx.is_some() {
            return Err(Error::InvalidRequest(
                "A transaction is already begun on this Session.".into(),
            ));
        }
        state.autobegin();
        Ok(AsyncSessionTransaction {
            session: self.handle(),
            level: 1,
            done: false,
        })
    }

    /// Flushes, then begins a savepoint (SQLAlchemy's `begin_nested()`), beginning the root
    /// transaction first when there is none.
    ///
    /// # Errors
    /// The flush's error, or the server's error for `SAVEPOINT`.
    pub async fn begin_nested(&self) -> Result<AsyncSessionTransaction> {
        let mut conns = self.lock_conns()?;
        self.flush_locked(&mut conns).await?;
        let level = {
            let mut state = self.state();
            state.check_usable()?;
            state.push_savepoint();
            state.depth()
        };
        for bound in conns.iter_mut() {
            if let Err(e) = bound.align(level).await {
                self.state().rollback_savepoint();
                return Err(e);
            }
        }
        Ok(AsyncSessionTransaction {
            session: self.handle(),
            level,
            done: false,
        })
    }

    /// Runs `body` in a transaction: commits when it returns `Ok`, rolls back when it returns
    /// `Err` (SQLAlchemy's `async with session.begin():`).
    ///
    /// # Errors
    /// The body's error (after rolling back), or the commit's.
    pub async fn transaction<T, E, F>(&self, body: F) -> std::result::Result<T, E>
    where
        F: AsyncFnOnce(&AsyncSession) -> std::result::Result<T, E>,
        E: From<Error>,
    {
        let tx = self.begin().await?;
        match body(self).await {
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

    /// Runs `body` with the session, then closes it whatever the body returned (SQLAlchemy's
    /// `async with AsyncSession(engine) as session:`): like it, this never commits; commit in
    /// the body, or use [`AsyncSession::transaction`].
    pub async fn scope<R>(self, body: impl AsyncFnOnce(&AsyncSession) -> R) -> R {
        let out = body(&self).await;
        self.close().await;
        out
    }

    async fn end_level(&self, level: usize, commit: bool) -> Result<()> {
        if level <= 1 {
            return if commit {
                self.commit().await
            } else {
                self.rollback().await
            };
        }
        let mut conns = self.lock_conns()?;
        if self.state().depth() < level {
            return Err(Error::InvalidRequest("This transaction is closed".into()));
        }
        if commit {
            self.flush_locked(&mut conns).await?;
            for bound in conns.iter_mut() {
                bound.commit_level(level).await?;
            }
            self.state().commit_savepoint();
        } else {
            self.state().rollback_savepoint();
            for bound in conns.iter_mut() {
                bound.rollback_level(level).await?;
            }
        }
        Ok(())
    }

    /// Rolls back and detaches every object, and gives the connections back (SQLAlchemy's
    /// `close()`). The session stays usable unless made with `close_resets_only(false)`.
    pub async fn close(&self) {
        self.close_impl(!self.close_resets_only(), false).await;
    }

    /// Same as [`AsyncSession::close`] (for symmetry with SQLAlchemy's `aclose()`).
    pub async fn aclose(&self) {
        self.close().await;
    }

    /// Like `close()`, but never closes the session for good (SQLAlchemy's `reset()`); a
    /// session closed for good stays closed.
    pub async fn reset(&self) {
        self.close_impl(false, false).await;
    }

    /// Like `close()`, and the connections are discarded instead of pooled (SQLAlchemy's
    /// `invalidate()`).
    pub async fn invalidate(&self) {
        self.close_impl(!self.close_resets_only(), true).await;
    }

    async fn close_impl(&self, final_close: bool, invalidate: bool) {
        // A concurrent operation holds the connections: wait for it rather than fail, closing
        // must always happen.
        let mut conns = self.inner.conns.lock().await;
        {
            let mut state = self.state();
            state.expunge_all();
            state.tx = None;
            state.failed = None;
            if final_close {
                state.closed = true;
            }
        }
        lock(&self.inner.dirty).clear();
        for mut bound in conns.drain(..) {
            if invalidate && bound.home.is_none() {
                bound.conn.invalidate();
            } else {
                let _ = bound.rollback_root().await;
                bound.release().await;
            }
        }
    }

    /// Closes every live session of the process (SQLAlchemy's `close_all_sessions()`).
    pub async fn close_all() {
        for session in AsyncSession::live_sessions() {
            session.close().await;
        }
    }

    /// True while the session has a transaction (SQLAlchemy's `in_transaction()`).
    pub fn in_transaction(&self) -> bool {
        self.state().tx.is_some()
    }

    /// True while a savepoint is open.
    pub fn in_nested_transaction(&self) -> bool {
        self.state().depth() > 1
    }

    /// The root transaction, if any.
    pub fn get_transaction(&self) -> Option<TransactionInfo> {
        let state = self.state();
        state.tx.as_ref().map(|_| TransactionInfo {
            nested: false,
            level: 1,
            is_active: state.failed.is_none(),
        })
    }

    /// The innermost savepoint, if any.
    pub fn get_nested_transaction(&self) -> Option<TransactionInfo> {
        let state = self.state();
        let depth = state.depth();
        (depth > 1).then(|| TransactionInfo {
            nested: true,
            level: depth,
            is_active: state.failed.is_none(),
        })
    }

    /// False while a failed flush waits for `rollback()` (SQLAlchemy's `is_active`).
    pub fn is_active(&self) -> bool {
        self.state().failed.is_none()
    }

    /// Turns autoflush off until the guard drops, then restores the previous value, also on an
    /// early return or a panic (SQLAlchemy's `with session.no_autoflush:`).
    pub fn no_autoflush(&self) -> NoAutoflush {
        let previous = std::mem::replace(&mut self.state().autoflush, false);
        NoAutoflush {
            session: self.handle(),
            previous,
        }
    }

    /// The connection of the session's transaction for the default bind, begun on first use
    /// (SQLAlchemy's `connection()`). Other operations of this session are refused while the
    /// guard lives.
    ///
    /// # Errors
    /// No bind, a failed checkout, or [`Error::PendingRollback`].
    pub async fn connection(&self) -> Result<SessionConnection> {
        let engine = self.resolve_bind(None, None, false)?;
        let mut conns = self.lock_conns_owned()?;
        self.conn_for(&mut conns, &engine).await?;
        let index = conns
            .iter()
            .position(|b| b.engine.same_pool(&engine))
            .unwrap_or(0);
        Ok(SessionConnection { conns, index })
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
/// Dropped without `commit()` or `rollback()`, it is rolled back when the session next closes or
/// rolls back, and a warning is logged: prefer [`AsyncSession::transaction`].
#[must_use = "end the transaction with `commit().await` or `rollback().await`"]
pub struct AsyncSessionTransaction {
    session: AsyncSession,
    level: usize,
    done: bool,
}

impl AsyncSessionTransaction {
    /// Commits the transaction, or releases the savepoint (flushing first).
    ///
    /// # Errors
    /// As [`AsyncSession::commit`]; "This transaction is closed" when it already ended.
    pub async fn commit(mut self) -> Result<()> {
        self.done = true;
        self.session.end_level(self.level, true).await
    }

    /// Rolls back the transaction, or just the savepoint.
    ///
    /// # Errors
    /// As [`AsyncSession::rollback`].
    pub async fn rollback(mut self) -> Result<()> {
        self.done = true;
        self.session.end_level(self.level, false).await
    }

    /// True for a savepoint.
    pub fn nested(&self) -> bool {
        self.level > 1
    }

    /// True while this transaction is open and no failed flush waits for rollback.
    pub fn is_active(&self) -> bool {
        let state = self.session.state();
        !self.done && state.depth() >= self.level && state.failed.is_none()
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
        if !self.done && !std::thread::panicking() && self.session.state().depth() >= self.level {
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

/// The connection of a session's transaction (from [`AsyncSession::connection`]).
pub struct SessionConnection {
    conns: tokio::sync::OwnedMutexGuard<Vec<Bound>>,
    index: usize,
}

impl Deref for SessionConnection {
    type Target = AsyncConnection;

    fn deref(&self) -> &AsyncConnection {
        &self.conns[self.index].conn
    }
}

impl DerefMut for SessionConnection {
    fn deref_mut(&mut self) -> &mut AsyncConnection {
        &mut self.conns[self.index].conn
    }
}

impl std::fmt::Debug for SessionConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}
