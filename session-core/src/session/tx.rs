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

    /// Implements [`AsyncSession::flush`].
    pub(crate) async fn flush_impl(&self) -> Result<()> {
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

    /// Implements [`AsyncSession::commit`].
    pub(crate) async fn commit_impl(&self) -> Result<()> {
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

    /// Implements [`AsyncSession::rollback`].
    pub(crate) async fn rollback_impl(&self) -> Result<()> {
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

    /// Implements [`AsyncSession::begin`].
    pub(crate) async fn begin_impl(&self) -> Result<AsyncSessionTransaction> {
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

    /// Implements [`AsyncSession::begin_nested`].
    pub(crate) async fn begin_nested_impl(&self) -> Result<AsyncSessionTransaction> {
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

    /// Implements [`AsyncSession::transaction`].
    pub(crate) async fn transaction_impl<T, E, F>(&self, body: F) -> std::result::Result<T, E>
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

    /// Implements [`AsyncSession::scope`].
    pub(crate) async fn scope_impl<R>(&self, body: impl AsyncFnOnce(&AsyncSession) -> R) -> R {
        let out = body(self).await;
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
            is_active: state.failed.is_none(),
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
