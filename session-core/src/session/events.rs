//! Session events (SQLAlchemy's `SessionEvents`, the object lifecycle events, and
//! `do_orm_execute`), and the registry that also holds the mapper events.
//!
//! Listeners are typed, synchronous closures registered on an [`Events`] registry: a session's
//! own ([`AsyncSession::events`]), a factory's (reaching only the sessions it makes,
//! SQLAlchemy's per-sessionmaker class), or the process-wide [`global`] one. A session fires
//! each event to its own listeners, then its factory's, then the global ones, each in the
//! order they were added. A listener that returns `Err` stops the operation that fired the
//! event, which returns [`Error::Listener`] naming the event.
//!
//! Listeners run with no lock of the session held, so they may call the session's sync
//! methods (`dirty()`, `new_objects()`, `add()`, object guards); they cannot `.await`.
//! SQLAlchemy refuses `event.listen(async_session, ...)` and sends users to `sync_session`;
//! here the async session takes sync listeners directly.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use super::AsyncSession;
use super::tx::TransactionInfo;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::exec_options::ExecutionOptions;
use crate::mapper_events::{ListenerResult, MapperEvent, MapperHooks};
use crate::model::{AnyObj, Entity, Table};

/// An object's move from one state to another (SQLAlchemy's object lifecycle events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transition {
    /// `add()` of a new object.
    TransientToPending,
    /// A pending object left the session (`expunge()`, rollback).
    PendingToTransient,
    /// A pending object was inserted by a flush.
    PendingToPersistent,
    /// An object inserted in a transaction that then rolled back.
    PersistentToTransient,
    /// A persistent object left the session (`expunge()`, `close()`).
    PersistentToDetached,
    /// A flush sent the object's DELETE.
    PersistentToDeleted,
    /// The transaction that deleted the object committed.
    DeletedToDetached,
    /// The transaction that deleted the object rolled back.
    DeletedToPersistent,
    /// A detached object was added again.
    DetachedToPersistent,
    /// A query loaded a new object into the identity map.
    LoadedAsPersistent,
}

/// What a flush wrote, for `after_flush` / `after_flush_postexec` (SQLAlchemy's listeners read
/// `session.new` / `dirty` / `deleted` for the same; here the lists are given).
#[derive(Debug, Default, Clone)]
pub struct FlushInfo {
    /// Objects inserted.
    pub inserted: Vec<AnyObj>,
    /// Objects the flush looked at for UPDATEs (those with net changes were updated).
    pub updated: Vec<AnyObj>,
    /// Objects deleted.
    pub deleted: Vec<AnyObj>,
}

/// What kind of statement a `do_orm_execute` listener sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatementKind {
    /// A `select(...)` of entities or columns.
    Select,
    /// An `insert(...)`.
    Insert,
    /// An `update(...)`.
    Update,
    /// A `delete(...)`.
    Delete,
    /// Raw SQL (`text(...)`).
    Text,
}

/// A statement about to run through a session (SQLAlchemy's `ORMExecuteState`), given to
/// `do_orm_execute` listeners. The options are the effective ones (engine, session,
/// statement and call merged); a listener may change them, and the statement runs with the
/// changed options (`populate_existing`, `autoflush`, `yield_per`, user keys). A listener may
/// also add `WHERE` conditions to a select ([`OrmExecuteState::add_criteria`], SQLAlchemy's
/// `with_loader_criteria` recipe for soft deletes and tenants); the SQL it sees is the
/// statement before them.
pub struct OrmExecuteState<'a> {
    pub(crate) session: &'a AsyncSession,
    pub(crate) sql: &'a str,
    pub(crate) kind: StatementKind,
    pub(crate) table: Option<&'static Table>,
    pub(crate) options: ExecutionOptions,
    pub(crate) criteria: Vec<crate::statement::Expr>,
}

impl OrmExecuteState<'_> {
    /// Adds a `WHERE` condition to the select about to run (ANDed with its own), e.g.
    /// `state.add_criteria(Doc::C.deleted.eq(false))` for every select of `doc`. Only a
    /// select takes criteria: on another statement the statement fails with an error saying
    /// so. A condition naming a table the select does not read is the database's error.
    pub fn add_criteria(&mut self, condition: crate::statement::Expr) {
        self.criteria.push(condition);
    }

    /// The session running the statement.
    pub fn session(&self) -> &AsyncSession {
        self.session
    }

    /// The statement's SQL.
    pub fn sql(&self) -> &str {
        self.sql
    }

    /// The statement's kind.
    pub fn kind(&self) -> StatementKind {
        self.kind
    }

    /// True for a `select(...)` (SQLAlchemy's `is_select`).
    pub fn is_select(&self) -> bool {
        self.kind == StatementKind::Select
    }

    /// The entity table the statement is about, when it has one.
    pub fn table(&self) -> Option<&'static Table> {
        self.table
    }

    /// The effective execution options.
    pub fn execution_options(&self) -> &ExecutionOptions {
        &self.options
    }

    /// The execution options, to change before the statement runs.
    pub fn execution_options_mut(&mut self) -> &mut ExecutionOptions {
        &mut self.options
    }
}

type SessionHook = Arc<dyn Fn(&AsyncSession) -> ListenerResult + Send + Sync>;
type FlushHook = Arc<dyn Fn(&AsyncSession, &FlushInfo) -> ListenerResult + Send + Sync>;
type TxHook = Arc<dyn Fn(&AsyncSession, &TransactionInfo) -> ListenerResult + Send + Sync>;
type BeginHook =
    Arc<dyn Fn(&AsyncSession, &TransactionInfo, &Engine) -> ListenerResult + Send + Sync>;
type ObjHook = Arc<dyn Fn(&AsyncSession, &AnyObj) -> ListenerResult + Send + Sync>;
type ExecHook = Arc<dyn Fn(&mut OrmExecuteState<'_>) -> ListenerResult + Send + Sync>;

#[derive(Default)]
struct Lists {
    before_flush: Vec<SessionHook>,
    before_commit: Vec<SessionHook>,
    after_commit: Vec<SessionHook>,
    after_rollback: Vec<SessionHook>,
    after_flush: Vec<FlushHook>,
    after_flush_postexec: Vec<FlushHook>,
    after_transaction_create: Vec<TxHook>,
    after_transaction_end: Vec<TxHook>,
    after_soft_rollback: Vec<TxHook>,
    after_begin: Vec<BeginHook>,
    before_attach: Vec<ObjHook>,
    after_attach: Vec<ObjHook>,
    lifecycle: Vec<(Transition, ObjHook)>,
    do_orm_execute: Vec<ExecHook>,
}

#[derive(Default)]
struct Registry {
    /// Any session listener at all (the fast path checks this alone).
    any: AtomicBool,
    /// Any lifecycle listener (objects' transitions are recorded only then).
    lifecycle: AtomicBool,
    lists: RwLock<Lists>,
    mapper: MapperHooks,
}

/// A registry of event listeners: a session's, a factory's, or the [`global`] one.
///
/// ```no_run
/// # async fn demo(session: &session_core::AsyncSession) -> session_core::Result<()> {
/// session.events().before_flush(|s| {
///     println!("flushing {} new objects", s.new_objects().len());
///     Ok(())
/// });
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct Events {
    inner: Arc<Registry>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Events(active={})",
            self.inner.any.load(Ordering::Relaxed)
        )
    }
}

/// The process-wide registry: its listeners reach every session (SQLAlchemy's
/// `event.listen(Session, ...)`).
pub fn global() -> &'static Events {
    static GLOBAL: OnceLock<Events> = OnceLock::new();
    GLOBAL.get_or_init(Events::new)
}

macro_rules! listeners {
    ($( $(#[$doc:meta])* $name:ident ( $($arg:ty),* ); )*) => {$(
        $(#[$doc])*
        pub fn $name(
            &self,
            f: impl Fn($($arg),*) -> ListenerResult + Send + Sync + 'static,
        ) -> &Self {
            self.edit(|l| l.$name.push(Arc::new(f)));
            self
        }
    )*};
}

macro_rules! lifecycle {
    ($( $(#[$doc:meta])* $name:ident => $transition:ident; )*) => {$(
        $(#[$doc])*
        pub fn $name(
            &self,
            f: impl Fn(&AsyncSession, &AnyObj) -> ListenerResult + Send + Sync + 'static,
        ) -> &Self {
            self.edit(|l| l.lifecycle.push((Transition::$transition, Arc::new(f))));
            self.inner.lifecycle.store(true, Ordering::Release);
            self
        }
    )*};
}

macro_rules! mapper_listeners {
    ($( $(#[$doc:meta])* $name:ident ( $push:ident, $arg:ty ) => $event:ident; )*) => {$(
        $(#[$doc])*
        pub fn $name<T: Entity>(
            &self,
            f: impl Fn($arg) -> ListenerResult + Send + Sync + 'static,
        ) -> &Self {
            self.inner.mapper.$push::<T>(MapperEvent::$event, f);
            self
        }
    )*};
}

impl Events {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn edit(&self, f: impl FnOnce(&mut Lists)) {
        f(&mut self.inner.lists.write().unwrap_or_else(|p| p.into_inner()));
        self.inner.any.store(true, Ordering::Release);
    }

    /// Removes every listener of this registry.
    pub fn clear(&self) {
        *self.inner.lists.write().unwrap_or_else(|p| p.into_inner()) = Lists::default();
        self.inner.any.store(false, Ordering::Release);
        self.inner.lifecycle.store(false, Ordering::Release);
    }

    listeners! {
        /// Before a flush that has work, before its plan is made: a listener may add, change
        /// and delete objects, and they are flushed with the rest.
        before_flush(&AsyncSession);
        /// Before `commit()` flushes (so a listener may still add work).
        before_commit(&AsyncSession);
        /// After the database committed. The transaction is over: SQL run from here is
        /// refused with SQLAlchemy's "This session is in 'committed' state" message. An error
        /// here is reported by `commit()`, whose transaction stays committed.
        after_commit(&AsyncSession);
        /// After the database rolled back (only when a connection was in the transaction).
        /// SQL from here is refused ("This session is in 'inactive' state").
        after_rollback(&AsyncSession);
        /// After a flush's statements ran, with what it wrote.
        after_flush(&AsyncSession, &FlushInfo);
        /// After a flush finished and its objects' states were updated.
        after_flush_postexec(&AsyncSession, &FlushInfo);
        /// When the session starts a transaction or a savepoint in its bookkeeping.
        after_transaction_create(&AsyncSession, &TransactionInfo);
        /// When a transaction or savepoint ends (committed, rolled back, closed).
        after_transaction_end(&AsyncSession, &TransactionInfo);
        /// After any rollback of a transaction or savepoint, with the one rolled back.
        after_soft_rollback(&AsyncSession, &TransactionInfo);
        /// When a connection begins the session's transaction (its `BEGIN` travels with the
        /// first statement), with the engine it came from.
        after_begin(&AsyncSession, &TransactionInfo, &Engine);
        /// Before an object is attached (`add()`, a cascade, `merge()`); an error refuses it.
        before_attach(&AsyncSession, &AnyObj);
        /// After an object was attached.
        after_attach(&AsyncSession, &AnyObj);
        /// Before every statement the session runs (`execute`, `scalars`, `scalar`,
        /// `stream`): sees the SQL and the effective execution options, and may change the
        /// options.
        do_orm_execute(&mut OrmExecuteState<'_>);
    }

    lifecycle! {
        /// A new object was added.
        transient_to_pending => TransientToPending;
        /// A pending object left the session.
        pending_to_transient => PendingToTransient;
        /// A pending object was inserted.
        pending_to_persistent => PendingToPersistent;
        /// An object inserted in a rolled-back transaction became transient again.
        persistent_to_transient => PersistentToTransient;
        /// A persistent object was detached.
        persistent_to_detached => PersistentToDetached;
        /// A persistent object's DELETE was flushed.
        persistent_to_deleted => PersistentToDeleted;
        /// A deleted object's transaction committed.
        deleted_to_detached => DeletedToDetached;
        /// A deleted object's transaction rolled back.
        deleted_to_persistent => DeletedToPersistent;
        /// A detached object was attached again.
        detached_to_persistent => DetachedToPersistent;
        /// A query loaded a new object.
        loaded_as_persistent => LoadedAsPersistent;
    }

    mapper_listeners! {
        /// Before `T` objects are INSERTed; changes made here are inserted.
        before_insert(push_mut, &mut T) => BeforeInsert;
        /// After `T` objects were INSERTed (keys known).
        after_insert(push_ref, &T) => AfterInsert;
        /// Before the flush UPDATEs `T` objects, for every object written to since the last
        /// flush, even one without net changes (as SQLAlchemy does); changes made here are
        /// written by the same UPDATE (the `updated_at` hook).
        before_update(push_mut, &mut T) => BeforeUpdate;
        /// After the flush UPDATEd `T` objects (every object `before_update` saw).
        after_update(push_ref, &T) => AfterUpdate;
        /// Before `T` objects are DELETEd.
        before_delete(push_ref, &T) => BeforeDelete;
        /// After `T` objects were DELETEd.
        after_delete(push_ref, &T) => AfterDelete;
    }
}

/// The registries one session fires to: its own, its factory's, the global one.
#[derive(Clone, Default)]
pub(crate) struct Chain {
    registries: Vec<Events>,
}

/// State changes recorded under the session's state lock and fired once it is released.
pub(crate) enum Pending {
    Object(Transition, AnyObj),
    Created(TransactionInfo),
    Ended(TransactionInfo),
    SoftRollback(TransactionInfo),
}

impl Chain {
    pub(crate) fn new(own: Events, factory: Option<Events>) -> Self {
        let mut registries = vec![own];
        registries.extend(factory);
        registries.push(global().clone());
        Chain { registries }
    }

    fn active(&self) -> impl Iterator<Item = &Registry> {
        self.registries
            .iter()
            .map(|e| &*e.inner)
            .filter(|r| r.any.load(Ordering::Acquire))
    }

    /// True when any lifecycle listener could hear an object's transition.
    pub(crate) fn wants_lifecycle(&self) -> bool {
        self.registries
            .iter()
            .any(|e| e.inner.lifecycle.load(Ordering::Acquire))
    }

    /// True when any session listener is registered.
    pub(crate) fn is_active(&self) -> bool {
        self.active().next().is_some()
    }

    /// The mapper listener tables with anything in them.
    pub(crate) fn mapper_hooks(&self) -> Vec<&MapperHooks> {
        self.registries
            .iter()
            .map(|e| &e.inner.mapper)
            .filter(|m| !m.is_empty())
            .collect()
    }

    pub(crate) fn own(&self) -> &Events {
        &self.registries[0]
    }

    fn collect<H: Clone>(&self, pick: impl Fn(&Lists) -> &Vec<H>) -> Vec<H> {
        let mut out = Vec::new();
        for r in self.active() {
            out.extend(
                pick(&r.lists.read().unwrap_or_else(|p| p.into_inner()))
                    .iter()
                    .cloned(),
            );
        }
        out
    }
}

fn failed(event: &'static str) -> impl Fn(crate::error::BoxError) -> Error {
    move |source| Error::Listener { event, source }
}

/// The session-wide events with the session as their only argument.
#[derive(Clone, Copy)]
pub(crate) enum Plain {
    BeforeFlush,
    BeforeCommit,
    AfterCommit,
    AfterRollback,
}

impl AsyncSession {
    /// The session's own listener registry (SQLAlchemy's `event.listen(session, ...)`).
    pub(crate) fn events_impl(&self) -> Events {
        self.inner.events.own().clone()
    }

    pub(crate) fn fire(&self, event: Plain) -> Result<()> {
        if !self.inner.events.is_active() {
            return Ok(());
        }
        let (hooks, name) = match event {
            Plain::BeforeFlush => (
                self.inner.events.collect(|l| &l.before_flush),
                "before_flush",
            ),
            Plain::BeforeCommit => (
                self.inner.events.collect(|l| &l.before_commit),
                "before_commit",
            ),
            Plain::AfterCommit => (
                self.inner.events.collect(|l| &l.after_commit),
                "after_commit",
            ),
            Plain::AfterRollback => (
                self.inner.events.collect(|l| &l.after_rollback),
                "after_rollback",
            ),
        };
        hooks.iter().try_for_each(|h| h(self).map_err(failed(name)))
    }

    pub(crate) fn fire_flush(&self, postexec: bool, info: &FlushInfo) -> Result<()> {
        if !self.inner.events.is_active() {
            return Ok(());
        }
        let (hooks, name) = if postexec {
            (
                self.inner.events.collect(|l| &l.after_flush_postexec),
                "after_flush_postexec",
            )
        } else {
            (self.inner.events.collect(|l| &l.after_flush), "after_flush")
        };
        hooks
            .iter()
            .try_for_each(|h| h(self, info).map_err(failed(name)))
    }

    pub(crate) fn fire_begin(&self, engine: &Engine) -> Result<()> {
        if !self.inner.events.is_active() {
            return Ok(());
        }
        // The transaction's creation is told first.
        self.fire_pending()?;
        let hooks = self.inner.events.collect(|l| &l.after_begin);
        if hooks.is_empty() {
            return Ok(());
        }
        let info = self.get_transaction().unwrap_or(TransactionInfo {
            nested: false,
            level: 1,
            is_active: true,
        });
        hooks
            .iter()
            .try_for_each(|h| h(self, &info, engine).map_err(failed("after_begin")))
    }

    pub(crate) fn fire_attach(&self, before: bool, obj: &AnyObj) -> Result<()> {
        if !self.inner.events.is_active() {
            return Ok(());
        }
        let (hooks, name) = if before {
            (
                self.inner.events.collect(|l| &l.before_attach),
                "before_attach",
            )
        } else {
            (
                self.inner.events.collect(|l| &l.after_attach),
                "after_attach",
            )
        };
        hooks
            .iter()
            .try_for_each(|h| h(self, obj).map_err(failed(name)))
    }

    /// Runs `do_orm_execute` listeners; returns the options the statement runs with.
    pub(crate) fn fire_execute(
        &self,
        sql: &(dyn Fn() -> String + Sync),
        kind: StatementKind,
        table: Option<&'static Table>,
        options: ExecutionOptions,
    ) -> Result<(ExecutionOptions, Vec<crate::statement::Expr>)> {
        if !self.inner.events.is_active() {
            return Ok((options, Vec::new()));
        }
        let hooks = self.inner.events.collect(|l| &l.do_orm_execute);
        if hooks.is_empty() {
            return Ok((options, Vec::new()));
        }
        let text = sql();
        let mut state = OrmExecuteState {
            session: self,
            sql: &text,
            kind,
            table,
            options,
            criteria: Vec::new(),
        };
        for h in &hooks {
            h(&mut state).map_err(failed("do_orm_execute"))?;
        }
        Ok((state.options, state.criteria))
    }

    /// Fires what the state recorded (transitions, transactions created and ended) since the
    /// last call; no session lock is held while listeners run.
    pub(crate) fn fire_pending(&self) -> Result<()> {
        let pending = std::mem::take(&mut self.state().pending);
        if pending.is_empty() {
            return Ok(());
        }
        let chain = &self.inner.events;
        let lifecycle = chain.collect(|l| &l.lifecycle);
        let created = chain.collect(|l| &l.after_transaction_create);
        let ended = chain.collect(|l| &l.after_transaction_end);
        let soft = chain.collect(|l| &l.after_soft_rollback);
        let mut first = None;
        let mut note = |r: ListenerResult, name: &'static str| {
            if let Err(e) = r {
                first.get_or_insert(Error::Listener {
                    event: name,
                    source: e,
                });
            }
        };
        // Every recorded change is told even when one listener fails (the changes happened);
        // the first error is returned.
        for p in pending {
            match p {
                Pending::Object(t, obj) => {
                    for (_, h) in lifecycle.iter().filter(|(w, _)| *w == t) {
                        note(h(self, &obj), transition_name(t));
                    }
                }
                Pending::Created(info) => {
                    for h in &created {
                        note(h(self, &info), "after_transaction_create");
                    }
                }
                Pending::Ended(info) => {
                    for h in &ended {
                        note(h(self, &info), "after_transaction_end");
                    }
                }
                Pending::SoftRollback(info) => {
                    for h in &soft {
                        note(h(self, &info), "after_soft_rollback");
                    }
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Runs `T`-typed mapper listeners (through the mapper) for `objs`.
    pub(crate) fn mapper_hooks(&self) -> Vec<&MapperHooks> {
        self.inner.events.mapper_hooks()
    }
}

fn transition_name(t: Transition) -> &'static str {
    match t {
        Transition::TransientToPending => "transient_to_pending",
        Transition::PendingToTransient => "pending_to_transient",
        Transition::PendingToPersistent => "pending_to_persistent",
        Transition::PersistentToTransient => "persistent_to_transient",
        Transition::PersistentToDetached => "persistent_to_detached",
        Transition::PersistentToDeleted => "persistent_to_deleted",
        Transition::DeletedToDetached => "deleted_to_detached",
        Transition::DeletedToPersistent => "deleted_to_persistent",
        Transition::DetachedToPersistent => "detached_to_persistent",
        Transition::LoadedAsPersistent => "loaded_as_persistent",
    }
}
