//! Flush, commit, rollback, savepoints and closing: the session's I/O orchestration.

use std::any::TypeId;
use std::collections::{HashMap, HashSet};

use super::state::{Failed, SessionState};
use super::{AsyncSession, Bound, lock};
use crate::error::{Error, Result};
use crate::flush::dependency_order;
use crate::mapper;
use crate::model::Link;
use crate::model::Table;
use crate::model::{AnyObj, ObjectState};

/// Work found by a flush, grouped per entity type (by `TypeId`) in first-seen order.
#[derive(Default)]
struct Plan {
    types: Vec<(TypeId, &'static Table)>,
    inserts: Vec<AnyObj>,
    updates: HashMap<TypeId, Vec<AnyObj>>,
    deletes: HashMap<TypeId, Vec<AnyObj>>,
}

#[derive(Clone, Copy)]
enum Kind {
    Update,
    Delete,
}

impl Plan {
    fn note_type(&mut self, obj: &AnyObj) -> TypeId {
        let t = obj.cell.entity_type();
        if !self.types.iter().any(|(id, _)| *id == t) {
            self.types.push((t, obj.table()));
        }
        t
    }

    fn insert(&mut self, obj: AnyObj) {
        self.note_type(&obj);
        self.inserts.push(obj);
    }

    fn push(&mut self, kind: Kind, obj: AnyObj) {
        let t = self.note_type(&obj);
        let map = match kind {
            Kind::Update => &mut self.updates,
            Kind::Delete => &mut self.deletes,
        };
        map.entry(t).or_default().push(obj);
    }

    fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// The plan's types with their tables in foreign-key order (parents first).
    fn ordered_types(&self) -> Vec<(TypeId, &'static Table)> {
        let tables: Vec<&'static Table> = self.types.iter().map(|(_, t)| *t).collect();
        dependency_order(&tables)
            .into_iter()
            .map(|i| self.types[i])
            .collect()
    }
}

/// Splits `inserts` into waves: an object comes in a later wave than every pending object it
/// refers to through a relationship, so that parents of the same table (a tree) or of a
/// cycle of tables get their keys before their children are inserted. Within a wave, tables
/// keep foreign-key order. Refuses a cycle of pending rows, which no order can insert.
fn insert_waves(inserts: &[AnyObj], links: &[Link]) -> Result<Vec<Vec<AnyObj>>> {
    let index: HashMap<u64, usize> = inserts
        .iter()
        .enumerate()
        .map(|(i, o)| (o.id(), i))
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); inserts.len()];
    let mut waiting = vec![0usize; inserts.len()];
    let mut seen = HashSet::new();
    for link in links {
        if let (Some(&p), Some(&c)) = (index.get(&link.parent.id()), index.get(&link.child.id())) {
            if p != c && seen.insert((p, c)) {
                children[p].push(c);
                waiting[c] += 1;
            }
        }
    }
    let mut wave: Vec<usize> = (0..inserts.len()).filter(|&i| waiting[i] == 0).collect();
    let mut waves = Vec::new();
    let mut placed = 0;
    while !wave.is_empty() {
        placed += wave.len();
        let mut next = Vec::new();
        for &p in &wave {
            for &c in &children[p] {
                waiting[c] -= 1;
                if waiting[c] == 0 {
                    next.push(c);
                }
            }
        }
        waves.push(wave.iter().map(|&i| inserts[i].clone()).collect());
        wave = next;
    }
    if placed < inserts.len() {
        let stuck: Vec<String> = (0..inserts.len())
            .filter(|&i| waiting[i] > 0)
            .take(5)
            .map(|i| format!("{:?}", inserts[i]))
            .collect();
        return Err(Error::InvalidRequest(format!(
            "Circular dependency detected between pending objects ({}): each refers to another \
             one that has no key yet, so no insert order works; flush one of them first, or \
             break the cycle with a nullable foreign key set after the flush",
            stuck.join(", ")
        )));
    }
    Ok(waves)
}

/// True when `obj` is a persistent object of session `me` that a flush may UPDATE.
fn is_flushable_update(obj: &AnyObj, me: u64) -> bool {
    let m = obj.meta();
    m.status == ObjectState::Persistent && m.session == Some(me) && !m.marked_deleted
}

/// Marks the session failed if a flush is dropped before it finishes.
struct FlushGuard<'a> {
    session: &'a AsyncSession,
    level: usize,
    armed: bool,
}

impl Drop for FlushGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut state = self.session.state();
            if state.failed.is_none() {
                state.failed = Some(Failed {
                    level: self.level.max(1),
                    cause: "the flush was cancelled before it finished (its future was \
                            dropped); the database transaction is rolled back"
                        .into(),
                });
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
        let me = self.inner.id;
        let (plan, links, looked_at, depth) = {
            let mut state = self.state();
            state.check_usable()?;
            let queued = self.take_queued();
            if state.new.is_empty() && state.deleted.is_empty() && queued.is_empty() {
                return Ok(());
            }
            let links = self.cascade(&mut state, &queued)?;
            let mut plan = Plan::default();
            for obj in &state.new {
                plan.insert(obj.clone());
            }
            let mut seen = HashSet::new();
            let mut looked_at = Vec::new();
            for obj in queued {
                if seen.insert(obj.id()) && is_flushable_update(&obj, me) {
                    looked_at.push(obj.clone());
                    plan.push(Kind::Update, obj);
                }
            }
            for obj in &state.deleted {
                plan.push(Kind::Delete, obj.clone());
            }
            if plan.is_empty() {
                return Ok(());
            }
            state.autobegin();
            (plan, links, looked_at, state.depth())
        };
        let mut guard = FlushGuard {
            session: self,
            level: depth,
            armed: true,
        };
        let result = self.run_plan(conns, plan, &links, looked_at).await;
        guard.armed = false;
        if let Err(e) = result {
            self.flush_failed(conns, depth, &e).await;
            return Err(e);
        }
        Ok(())
    }

    /// The objects queued for the next flush, each taken off the queue.
    fn take_queued(&self) -> Vec<AnyObj> {
        let queued = std::mem::take(&mut *lock(&self.inner.dirty));
        for obj in &queued {
            obj.meta().queued = false;
        }
        queued
    }

    /// A flush failed at transaction level `depth`: in a savepoint, only the savepoint is rolled
    /// back in the database and the session waits for that savepoint's rollback (SQLAlchemy);
    /// at the root, the database transaction is rolled back now and the session waits for
    /// `rollback()`.
    async fn flush_failed(&self, conns: &mut Vec<Bound>, depth: usize, e: &Error) {
        let cause = e.to_string();
        if depth > 1 && !e.is_in_doubt() {
            let mut ok = true;
            for bound in conns.iter_mut() {
                ok &= bound.rollback_level(depth).await.is_ok();
            }
            if ok {
                self.state().failed = Some(Failed {
                    level: depth,
                    cause,
                });
                return;
            }
        }
        self.state().failed = Some(Failed { level: 1, cause });
        if e.is_in_doubt() {
            return; // the connection is gone; rollback() ends the transaction
        }
        // Roll the database back now, so no connection idles in a failed transaction.
        for mut bound in conns.drain(..) {
            let _ = bound.rollback_root().await;
            bound.release().await;
        }
    }

    /// Walks the relationships of pending and changed objects: transient objects they reach
    /// are added (SQLAlchemy's save-update cascade); returns every parent/child link.
    fn cascade(&self, state: &mut SessionState, queued: &[AnyObj]) -> Result<Vec<Link>> {
        let me = self.inner.id;
        let mut links = Vec::new();
        let mut queue: Vec<AnyObj> = state.new.iter().chain(queued).cloned().collect();
        let mut visited = HashSet::new();
        while let Some(obj) = queue.pop() {
            if !visited.insert(obj.id()) {
                continue;
            }
            let mut found = Vec::new();
            obj.cell.clone().relations(&mut |link| found.push(link));
            for link in found {
                for other in [&link.parent, &link.child] {
                    if other.state() == ObjectState::Transient {
                        state.add(other, me, &self.inner.dirty, AsyncSession::is_alive)?;
                        queue.push(other.clone());
                    }
                }
                links.push(link);
            }
        }
        Ok(links)
    }

    async fn run_plan(
        &self,
        conns: &mut Vec<Bound>,
        mut plan: Plan,
        links: &[Link],
        mut looked_at: Vec<AnyObj>,
    ) -> Result<()> {
        let me = self.inner.id;
        let types = plan.ordered_types();
        let inserts = std::mem::take(&mut plan.inserts);
        for wave in insert_waves(&inserts, links)? {
            let in_wave: HashSet<u64> = wave.iter().map(AnyObj::id).collect();
            // Children take their parents' keys (parents were inserted in earlier waves).
            for link in links.iter().filter(|l| in_wave.contains(&l.child.id())) {
                link.apply();
            }
            for &(t, table) in &types {
                let objs: Vec<AnyObj> = wave
                    .iter()
                    .filter(|o| o.cell.entity_type() == t)
                    .cloned()
                    .collect();
                if objs.is_empty() {
                    continue;
                }
                let engine = self.resolve_bind(Some(table), Some(t), true)?;
                let conn = self.conn_for(conns, &engine).await?;
                let mapper = mapper::of(&objs[0]);
                mapper.insert_batch(conn, &objs).await?;
                let mut state = self.state();
                let done: HashSet<u64> = objs.iter().map(AnyObj::id).collect();
                state.new.retain(|o| !done.contains(&o.id()));
                for obj in &objs {
                    if let Some(other) = mapper.identity_insert(obj, &mut state.identity) {
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
        let inserted: HashSet<u64> = inserts.iter().map(AnyObj::id).collect();
        let mut seen: HashSet<u64> = looked_at.iter().map(AnyObj::id).collect();
        for obj in self.take_queued() {
            let id = obj.id();
            if inserted.contains(&id) {
                // Changed while its INSERT ran: look at it in the next flush.
                obj.meta().enqueue(|| obj.clone());
                continue;
            }
            if seen.insert(id) && is_flushable_update(&obj, me) {
                looked_at.push(obj.clone());
                plan.push(Kind::Update, obj);
            }
        }
        let types = plan.ordered_types();
        for &(t, table) in &types {
            if let Some(objs) = plan.updates.get(&t) {
                let engine = self.resolve_bind(Some(table), Some(t), true)?;
                let conn = self.conn_for(conns, &engine).await?;
                let updated = mapper::of(&objs[0]).update_batch(conn, objs).await?;
                self.state().innermost().updated.extend(updated);
            }
        }
        for &(t, table) in types.iter().rev() {
            if let Some(objs) = plan.deletes.get(&t) {
                let engine = self.resolve_bind(Some(table), Some(t), true)?;
                let conn = self.conn_for(conns, &engine).await?;
                let mapper = mapper::of(&objs[0]);
                mapper.delete_batch(conn, objs).await?;
                let mut state = self.state();
                let done: HashSet<u64> = objs.iter().map(AnyObj::id).collect();
                state.deleted.retain(|o| !done.contains(&o.id()));
                for obj in objs {
                    mapper.identity_remove(obj, &mut state.identity);
                    state.innermost().deleted.push(obj.clone());
                }
            }
        }
        // What this flush looked at is clean now: its columns were written and its
        // relationships cascaded.
        for obj in looked_at {
            obj.cell.flushed();
        }
        Ok(())
    }

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
        self.flush_locked(&mut conns).await?;
        let mut failure = None;
        for bound in conns.iter_mut() {
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
            for bound in conns.drain(..) {
                bound.release_now();
            }
            return Err(e);
        }
        let expire = self.expire_on_commit();
        self.state().commit_root(expire);
        release(&mut conns).await;
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
        let id = state.level_id(1).unwrap_or_default();
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
        for bound in conns.iter_mut() {
            if let Err(e) = bound.align(level).await {
                self.state().rollback_savepoint();
                return Err(e);
            }
        }
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
        let tx = self.begin().await?;
        let block = BlockGuard::enter(self, tx.id);
        let out = body.await;
        drop(block);
        let still_open = self.state().level_id(1) == Some(tx.id);
        if !still_open {
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
        if commit {
            self.flush_locked(&mut conns).await?;
            for bound in conns.iter_mut() {
                bound.commit_level(level).await?;
            }
            self.state().commit_savepoint();
        } else {
            for bound in conns.iter_mut() {
                bound.rollback_level(level).await?;
            }
            self.state().rollback_savepoint();
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
        // Never waits on the calling task itself (a live stream of it holds the connections:
        // they are given back when it lets them go); waits for another task's operation.
        let conns = self.lock_conns_for_close().await;
        {
            let mut state = self.state();
            state.expunge_all(true);
            state.tx = None;
            state.failed = None;
            if final_close {
                state.closed = true;
            }
        }
        lock(&self.inner.dirty).clear();
        let Some(mut conns) = conns else {
            self.inner
                .close_requested
                .store(true, std::sync::atomic::Ordering::Release);
            return;
        };
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
struct BlockGuard<'a> {
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

    fn forget(mut self) {
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

/// The connection of a session's transaction (from [`AsyncSession::connection`]), as a
/// handle: each call takes the session's connection for that call only, so the holder may go
/// on using the session between calls (SQLAlchemy lets both be used), and `close()` never
/// waits for a held handle. A call made while another task runs an operation of the session
/// is [`Error::ConcurrentUse`].
///
/// Its statements run in the session's transaction (begun on first use); it commits and rolls
/// back with the session.
pub struct SessionConnection {
    session: AsyncSession,
    engine: crate::engine::Engine,
}

macro_rules! through_session {
    ($self:ident, $conn:ident => $body:expr) => {{
        let mut conns = $self.session.lock_conns()?;
        let $conn = $self.session.conn_for(&mut conns, &$self.engine).await?;
        $body.await
    }};
}

impl SessionConnection {
    /// [`AsyncConnection::execute`] in the session's transaction.
    ///
    /// # Errors
    /// As [`AsyncConnection::execute`], and [`Error::ConcurrentUse`].
    pub async fn execute(
        &mut self,
        sql: &str,
        params: &[crate::connection::Param<'_>],
    ) -> Result<u64> {
        through_session!(self, conn => conn.execute(sql, params))
    }

    /// [`AsyncConnection::query`] in the session's transaction.
    ///
    /// # Errors
    /// As [`AsyncConnection::query`], and [`Error::ConcurrentUse`].
    pub async fn query(
        &mut self,
        sql: &str,
        params: &[crate::connection::Param<'_>],
    ) -> Result<Vec<tokio_postgres::Row>> {
        through_session!(self, conn => conn.query(sql, params))
    }

    /// [`AsyncConnection::query_one`] in the session's transaction.
    ///
    /// # Errors
    /// As [`AsyncConnection::query_one`], and [`Error::ConcurrentUse`].
    pub async fn query_one(
        &mut self,
        sql: &str,
        params: &[crate::connection::Param<'_>],
    ) -> Result<tokio_postgres::Row> {
        through_session!(self, conn => conn.query_one(sql, params))
    }

    /// [`AsyncConnection::query_opt`] in the session's transaction.
    ///
    /// # Errors
    /// As [`AsyncConnection::query_opt`], and [`Error::ConcurrentUse`].
    pub async fn query_opt(
        &mut self,
        sql: &str,
        params: &[crate::connection::Param<'_>],
    ) -> Result<Option<tokio_postgres::Row>> {
        through_session!(self, conn => conn.query_opt(sql, params))
    }

    /// [`AsyncConnection::scalar`] in the session's transaction.
    ///
    /// # Errors
    /// As [`AsyncConnection::scalar`], and [`Error::ConcurrentUse`].
    pub async fn scalar<T: postgres_types::FromSqlOwned>(
        &mut self,
        sql: &str,
        params: &[crate::connection::Param<'_>],
    ) -> Result<T> {
        through_session!(self, conn => conn.scalar(sql, params))
    }

    /// [`AsyncConnection::batch_execute`] in the session's transaction.
    ///
    /// # Errors
    /// As [`AsyncConnection::batch_execute`], and [`Error::ConcurrentUse`].
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
