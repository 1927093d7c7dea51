//! [`AsyncSession`]: identity map, unit of work and transactions (SQLAlchemy's `AsyncSession`).
//!
//! The session is split the way bb8 splits its pool: `state.rs` is the sync state (identity
//! map, pending and deleted objects, transaction levels) behind a `std` mutex that is never held
//! across an `.await`; this module and `tx.rs` / `ops.rs` orchestrate the I/O. The connections
//! of the session's transaction sit behind an async lock that is taken with `try_lock`: a
//! second task using the same session at the same time gets SQLAlchemy's "concurrent
//! operations are not permitted" error instead of corrupting state or deadlocking.

mod api;
mod bound;
mod connection;
mod dml;
pub(crate) mod events;
mod flights;
mod get;
mod ops;
mod query;
mod replica;
mod state;
mod tenant;
mod traced;
mod tx;
mod unit_of_work;
mod unloaded;

use std::any::TypeId;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use crate::connection::AsyncConnection;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::AnyObj;
use crate::model::{Entity, Table};

pub use api::AsyncSession;
pub(crate) use bound::{Bound, release_all_now};
pub use bound::{JoinTransactionMode, SharedConnection};
pub use connection::SessionConnection;
pub use events::{Events, FlushInfo, OrmExecuteState, StatementKind, Transition, global};
pub use get::{GET_MANY_CHUNK, GetOptions};
pub use ops::IdentityKey;
pub use query::{Executable, ObjStream, ReturnsRows, STREAM_CHUNK, Value};
use state::SessionState;
pub use tx::{AsyncSessionTransaction, NoAutoflush, TransactionInfo};

/// The session's user dictionary (SQLAlchemy's `Session.info`).
pub type Info = BTreeMap<String, String>;

/// Chooses the engine for an operation: SQLAlchemy's overridable `Session.get_bind()`, e.g.
/// the leader/follower `RoutingSession` of the docs.
pub trait BindRouter: Send + Sync + 'static {
    /// The engine for an operation on `table` (`None` for plain SQL); `writing` is true while
    /// flushing. Returning `None` falls back to the session's `binds` and `bind`.
    fn get_bind(&self, table: Option<&'static Table>, writing: bool) -> Option<Engine>;
}

/// Options a session is made with (SQLAlchemy's `Session(...)` keyword arguments).
#[derive(Clone)]
pub struct SessionConfig {
    /// The default engine.
    pub bind: Option<Engine>,
    /// Engines per entity type, before `bind`.
    pub binds: HashMap<TypeId, Engine>,
    /// A routing hook consulted before `binds` and `bind`.
    pub router: Option<Arc<dyn BindRouter>>,
    /// One connection to work on instead of checking out from `bind`'s pool.
    pub connection: Option<SharedConnection>,
    /// Flush before queries. Defaults to true.
    pub autoflush: bool,
    /// Expire every object when the root transaction commits. Defaults to true.
    pub expire_on_commit: bool,
    /// `close()` only resets, and the session stays usable. Defaults to true (SQLAlchemy 2.x).
    pub close_resets_only: bool,
    /// The user dictionary.
    pub info: Info,
    /// The options the session's transactions begin with (isolation level, read only,
    /// deferrable), over the engine's. Defaults to none.
    pub transaction_options: crate::TransactionOptions,
    /// Execution options for the session's statements, over the engine's. Defaults to none.
    pub execution_options: crate::ExecutionOptions,
    /// A factory's listener registry: the session fires its events there too, after its
    /// own (set by [`AsyncSessionMaker`](crate::AsyncSessionMaker)). Defaults to none.
    pub factory_events: Option<Events>,
    /// Start a transaction on first use (SQLAlchemy's `autobegin`). With false, work that
    /// needs a transaction before `begin()` is refused. Defaults to true.
    pub autobegin: bool,
    /// What a session bound to a connection does with a transaction already open on it
    /// (SQLAlchemy's `join_transaction_mode`). Defaults to
    /// [`JoinTransactionMode::ConservativeSavepoint`], as SQLAlchemy's.
    pub join_transaction_mode: JoinTransactionMode,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            bind: None,
            binds: HashMap::new(),
            router: None,
            connection: None,
            autoflush: true,
            expire_on_commit: true,
            close_resets_only: true,
            info: Info::new(),
            transaction_options: crate::TransactionOptions::new(),
            execution_options: crate::ExecutionOptions::new(),
            factory_events: None,
            autobegin: true,
            join_transaction_mode: JoinTransactionMode::default(),
        }
    }
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("bind", &self.bind)
            .field("binds", &self.binds.len())
            .field("router", &self.router.is_some())
            .field("connection", &self.connection)
            .field("autoflush", &self.autoflush)
            .field("expire_on_commit", &self.expire_on_commit)
            .field("close_resets_only", &self.close_resets_only)
            .field("info", &self.info)
            .field("transaction_options", &self.transaction_options)
            .field("execution_options", &self.execution_options)
            .field("factory_events", &self.factory_events.is_some())
            .field("autobegin", &self.autobegin)
            .field("join_transaction_mode", &self.join_transaction_mode)
            .finish()
    }
}

pub(crate) struct Inner {
    pub(crate) id: u64,
    pub(crate) config: Mutex<SessionConfig>,
    pub(crate) state: Mutex<SessionState>,
    pub(crate) conns: Arc<tokio::sync::Mutex<Vec<Bound>>>,
    /// Who holds `conns` (a running operation or a live stream).
    holder: Mutex<Option<Holder>>,
    /// `close()` was called by the task that holds `conns`: the connections are given back
    /// when it lets them go.
    pub(crate) close_requested: std::sync::atomic::AtomicBool,
    /// Objects to look at in the next flush (written to, or re-attached with changes).
    pub(crate) dirty: Arc<Mutex<Vec<AnyObj>>>,
    /// The listener registries this session fires to.
    pub(crate) events: events::Chain,
    /// What the holding task is doing that refuses SQL from its own listeners
    /// ([`Phase`]).
    pub(crate) phase: std::sync::atomic::AtomicU8,
    /// Where the session's last commit ended on the primary, for read-your-writes on
    /// replicas (0: none yet).
    pub(crate) commit_lsn: Arc<std::sync::atomic::AtomicU64>,
}

/// What the session is in the middle of, for SQL that its own listeners try to run
/// (SQLAlchemy's transaction states seen from inside `after_commit`, `after_rollback` and a
/// flush).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(crate) enum Phase {
    Idle = 0,
    Flushing = 1,
    Committed = 2,
    RolledBack = 3,
}

/// Sets the session's [`Phase`] until dropped (a cancelled operation included).
pub(crate) struct PhaseGuard<'a> {
    inner: &'a Inner,
    previous: u8,
}

impl<'a> PhaseGuard<'a> {
    pub(crate) fn enter(inner: &'a Inner, phase: Phase) -> Self {
        let previous = inner.phase.swap(phase as u8, Ordering::AcqRel);
        PhaseGuard { inner, previous }
    }
}

impl Drop for PhaseGuard<'_> {
    fn drop(&mut self) {
        self.inner.phase.store(self.previous, Ordering::Release);
    }
}

/// A task (or, outside any task, a thread) that holds the session's connections.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Holder {
    task: Option<tokio::task::Id>,
    thread: std::thread::ThreadId,
}

impl Holder {
    fn current() -> Self {
        Holder {
            task: tokio::task::try_id(),
            thread: std::thread::current().id(),
        }
    }

    /// Whether `self` is the caller: the same task, or outside tasks the same thread.
    fn is_caller(&self) -> bool {
        let me = Holder::current();
        match (self.task, me.task) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self.thread == me.thread,
            _ => false,
        }
    }
}

/// The session's connections, held by one operation (or a live stream) at a time.
pub(crate) struct ConnsGuard {
    guard: tokio::sync::OwnedMutexGuard<Vec<Bound>>,
    inner: Arc<Inner>,
}

impl ConnsGuard {
    fn new(guard: tokio::sync::OwnedMutexGuard<Vec<Bound>>, inner: Arc<Inner>) -> Self {
        *lock(&inner.holder) = Some(Holder::current());
        ConnsGuard { guard, inner }
    }
}

impl std::ops::Deref for ConnsGuard {
    type Target = Vec<Bound>;

    fn deref(&self) -> &Vec<Bound> {
        &self.guard
    }
}

impl std::ops::DerefMut for ConnsGuard {
    fn deref_mut(&mut self) -> &mut Vec<Bound> {
        &mut self.guard
    }
}

impl Drop for ConnsGuard {
    fn drop(&mut self) {
        *lock(&self.inner.holder) = None;
        if self
            .inner
            .close_requested
            .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            // A close() of the holding task: give the connections back now. Each is rolled
            // back before it is pooled again (AsyncConnection's drop), or discarded.
            release_all_now(&mut self.guard);
        }
    }
}

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

fn registry() -> &'static Mutex<HashMap<u64, Weak<Inner>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<u64, Weak<Inner>>>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for Inner {
    fn drop(&mut self) {
        lock(registry()).remove(&self.id);
    }
}

/// Builds an [`AsyncSession`]; every option documents its default.
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until `build()` is called"]
pub struct AsyncSessionBuilder {
    config: SessionConfig,
}

impl AsyncSessionBuilder {
    /// The default engine. Defaults to none (a statement then fails with a clear error).
    pub fn bind(mut self, engine: Engine) -> Self {
        self.config.bind = Some(engine);
        self
    }

    /// The engine for entity `T`, before `bind` (SQLAlchemy's `binds={A: engine}`).
    pub fn bind_entity<T: Entity>(mut self, engine: Engine) -> Self {
        self.config.binds.insert(TypeId::of::<T>(), engine);
        self
    }

    /// A routing hook consulted before `binds` and `bind` (an overridden `get_bind`).
    pub fn router(mut self, router: impl BindRouter) -> Self {
        self.config.router = Some(Arc::new(router));
        self
    }

    /// Work on this connection, inside its transaction (SQLAlchemy's `bind=connection`).
    pub fn bind_connection(mut self, conn: SharedConnection) -> Self {
        self.config.connection = Some(conn);
        self
    }

    /// Flush before queries. Defaults to true.
    pub fn autoflush(mut self, autoflush: bool) -> Self {
        self.config.autoflush = autoflush;
        self
    }

    /// Expire every object when the root transaction commits. Defaults to true.
    pub fn expire_on_commit(mut self, expire: bool) -> Self {
        self.config.expire_on_commit = expire;
        self
    }

    /// The options the session's transactions begin with (isolation level, read only,
    /// deferrable), over the engine's. Defaults to none.
    pub fn transaction_options(mut self, options: crate::TransactionOptions) -> Self {
        self.config.transaction_options = options;
        self
    }

    /// `close()` only resets the session (true), or closes it for good (false). Defaults to
    /// true.
    pub fn close_resets_only(mut self, only: bool) -> Self {
        self.config.close_resets_only = only;
        self
    }

    /// What the session does with a transaction already open on its bound connection
    /// (SQLAlchemy's `join_transaction_mode`). Defaults to `ConservativeSavepoint`.
    pub fn join_transaction_mode(mut self, mode: JoinTransactionMode) -> Self {
        self.config.join_transaction_mode = mode;
        self
    }

    /// Start a transaction on first use (SQLAlchemy's `autobegin`). Defaults to true.
    pub fn autobegin(mut self, on: bool) -> Self {
        self.config.autobegin = on;
        self
    }

    /// Execution options for the session's statements, over the engine's. Defaults to none.
    pub fn execution_options(mut self, options: crate::ExecutionOptions) -> Self {
        self.config.execution_options = options;
        self
    }

    /// The session's user dictionary. Defaults to empty.
    pub fn info(mut self, info: Info) -> Self {
        self.config.info = info;
        self
    }

    /// Makes the session. No I/O.
    pub fn build(self) -> AsyncSession {
        AsyncSession::with_config(self.config)
    }
}

impl AsyncSession {
    /// Implements [`AsyncSession::new`].
    pub(crate) fn new_impl(engine: Engine) -> Self {
        Self::builder().bind(engine).build()
    }

    /// Implements [`AsyncSession::builder`].
    pub(crate) fn builder_impl() -> AsyncSessionBuilder {
        AsyncSessionBuilder::default()
    }

    /// Implements [`AsyncSession::with_config`].
    pub(crate) fn with_config_impl(config: SessionConfig) -> Self {
        let id = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
        let chain = events::Chain::new(Events::new(), config.factory_events.clone());
        let inner = Arc::new(Inner {
            id,
            state: Mutex::new(SessionState::new(
                id,
                config.autoflush,
                config.autobegin,
                chain.clone(),
            )),
            events: chain,
            phase: std::sync::atomic::AtomicU8::new(0),
            config: Mutex::new(config),
            conns: Arc::new(tokio::sync::Mutex::new(Vec::new())),
            holder: Mutex::new(None),
            close_requested: std::sync::atomic::AtomicBool::new(false),
            dirty: Arc::default(),
            commit_lsn: Arc::default(),
        });
        lock(registry()).insert(id, Arc::downgrade(&inner));
        AsyncSession { inner }
    }

    /// Implements [`AsyncSession::id`].
    pub(crate) fn id_impl(&self) -> u64 {
        self.inner.id
    }

    /// Implements [`AsyncSession::bind`].
    pub(crate) fn bind_impl(&self) -> Option<Engine> {
        lock(&self.inner.config).bind.clone()
    }

    /// Implements [`AsyncSession::set_bind`].
    pub(crate) fn set_bind_impl(&self, engine: Option<Engine>) {
        lock(&self.inner.config).bind = engine;
    }

    /// Implements [`AsyncSession::autoflush`].
    pub(crate) fn autoflush_impl(&self) -> bool {
        lock(&self.inner.state).autoflush
    }

    /// Implements [`AsyncSession::set_autoflush`].
    pub(crate) fn set_autoflush_impl(&self, autoflush: bool) {
        lock(&self.inner.state).autoflush = autoflush;
    }

    /// Implements [`AsyncSession::info`].
    pub(crate) fn info_impl(&self) -> Info {
        lock(&self.inner.config).info.clone()
    }

    /// Implements [`AsyncSession::set_info`].
    pub(crate) fn set_info_impl(&self, info: Info) {
        lock(&self.inner.config).info = info;
    }

    /// Implements [`AsyncSession::update_info`].
    pub(crate) fn update_info_impl(&self, f: impl FnOnce(&mut Info)) {
        f(&mut lock(&self.inner.config).info);
    }

    /// Implements [`AsyncSession::get_bind`].
    pub(crate) fn get_bind_impl(&self, table: Option<&'static Table>) -> Result<Engine> {
        self.resolve_bind(table, None, false)
    }

    /// Implements [`AsyncSession::get_bind_for`].
    pub(crate) fn get_bind_for_impl<T: Entity>(&self) -> Result<Engine> {
        self.resolve_bind(Some(T::TABLE), Some(TypeId::of::<T>()), false)
    }

    pub(crate) fn resolve_bind(
        &self,
        table: Option<&'static Table>,
        entity: Option<TypeId>,
        writing: bool,
    ) -> Result<Engine> {
        let config = lock(&self.inner.config);
        if let Some(router) = &config.router {
            if let Some(engine) = router.get_bind(table, writing) {
                return Ok(engine);
            }
        }
        if let Some(engine) = entity.and_then(|t| config.binds.get(&t)) {
            return Ok(engine.clone());
        }
        if let Some(conn) = &config.connection {
            return Ok(conn.engine().clone());
        }
        config.bind.clone().ok_or_else(|| {
            Error::InvalidRequest(match table {
                Some(t) => format!(
                    "Could not locate a bind configured on mapper {}({}) or this Session; \
                     make the session with a bind (AsyncSession::new(engine), \
                     AsyncSession::builder().bind(engine)) or configure the factory's bind",
                    t.entity, t.name
                ),
                None => "Could not locate a bind configured on this Session; make the session \
                         with a bind (AsyncSession::new(engine)) or configure the factory's bind"
                    .to_string(),
            })
        })
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, SessionState> {
        lock(&self.inner.state)
    }

    pub(crate) fn expire_on_commit(&self) -> bool {
        lock(&self.inner.config).expire_on_commit
    }

    pub(crate) fn close_resets_only(&self) -> bool {
        lock(&self.inner.config).close_resets_only
    }

    /// Takes the transaction's connections, refusing a concurrent operation (and a call made
    /// while this thread holds an object guard, which could wait on its own caller).
    pub(crate) fn lock_conns(&self) -> Result<ConnsGuard> {
        crate::model::check_none_held("a session method that runs SQL")?;
        self.check_phase()?;
        self.inner
            .conns
            .clone()
            .try_lock_owned()
            .map(|guard| ConnsGuard::new(guard, self.inner.clone()))
            .map_err(|_| Error::ConcurrentUse)
    }

    /// Refuses SQL from the session's own listeners while a flush runs, or once the
    /// transaction committed or rolled back (SQLAlchemy's messages); another task gets
    /// [`Error::ConcurrentUse`] from the lock as usual.
    fn check_phase(&self) -> Result<()> {
        let phase = self.inner.phase.load(Ordering::Acquire);
        if phase == Phase::Idle as u8 || !lock(&self.inner.holder).is_some_and(|h| h.is_caller()) {
            return Ok(());
        }
        Err(Error::InvalidRequest(
            match phase {
                1 => "Session is already flushing",
                2 => {
                    "This session is in 'committed' state; no further SQL can be emitted within \
                     this transaction."
                }
                _ => {
                    "This session is in 'inactive' state, due to the SQL transaction being \
                     rolled back; no further SQL can be emitted within this transaction."
                }
            }
            .into(),
        ))
    }

    /// The connections for `close()`: at once when free; when the calling task itself holds
    /// them (a live stream), `None` (the close completes when it lets them go); when another
    /// task runs an operation, after it.
    pub(crate) async fn lock_conns_for_close(&self) -> Option<ConnsGuard> {
        if let Ok(guard) = self.inner.conns.clone().try_lock_owned() {
            return Some(ConnsGuard::new(guard, self.inner.clone()));
        }
        let holder = *lock(&self.inner.holder);
        if holder.is_some_and(|h| h.is_caller()) {
            return None;
        }
        // Another task or thread (or one just letting go): wait for it.
        let guard = self.inner.conns.clone().lock_owned().await;
        Some(ConnsGuard::new(guard, self.inner.clone()))
    }

    /// Another handle to this same session (for guards that must not borrow it).
    pub(crate) fn handle(&self) -> AsyncSession {
        AsyncSession {
            inner: self.inner.clone(),
        }
    }

    /// The connection for `engine` in the session's transaction, checked out and begun (with
    /// as many savepoints as the session has) on first use.
    pub(crate) async fn conn_for<'c>(
        &self,
        conns: &'c mut Vec<Bound>,
        engine: &Engine,
    ) -> Result<&'c mut AsyncConnection> {
        let (depth, options) = {
            let mut state = self.state();
            state.check_usable()?;
            state.check_autobegin()?;
            state.autobegin();
            (state.depth(), state.root_options())
        };
        let index = match conns.iter().position(|b| b.engine.same_pool(engine)) {
            Some(i) => i,
            None => {
                let (shared, mode) = {
                    let config = lock(&self.inner.config);
                    let shared = config
                        .connection
                        .clone()
                        .filter(|c| c.engine().same_pool(engine));
                    (shared, config.join_transaction_mode)
                };
                let bound = match shared {
                    Some(home) => {
                        let conn = home.take().ok_or_else(|| {
                            Error::InvalidRequest(
                                "the session's bound connection is not in its \
                                 SharedConnection (another session or the caller holds it)"
                                    .into(),
                            )
                        })?;
                        Bound::joined(engine.clone(), conn, home, mode)
                    }
                    // Boxed, like the begin below: once per transaction, and large.
                    None => Bound::own(engine.clone(), Box::pin(engine.connect()).await?),
                };
                let mut bound = bound;
                bound.commit_lsn = Some(self.inner.commit_lsn.clone());
                conns.push(bound);
                conns.len() - 1
            }
        };
        let bound = &mut conns[index];
        if bound.conn.transaction_depth() < bound.base + depth as u32 {
            // Only a begin needs the session's options (the config lock stays off the path
            // of every other statement).
            let began = bound.conn.transaction_depth() <= bound.base;
            let options = options.or(lock(&self.inner.config).transaction_options);
            Box::pin(bound.align(depth, options)).await?;
            if began {
                let engine = bound.engine.clone();
                Box::pin(self.begin_tenant(&mut bound.conn, &engine)).await?;
                self.fire_begin(&engine)?;
            }
        }
        Ok(&mut conns[index].conn)
    }

    /// Every live session in the process (for [`AsyncSession::close_all`]).
    pub(crate) fn live_sessions() -> Vec<AsyncSession> {
        lock(registry())
            .values()
            .filter_map(Weak::upgrade)
            .map(|inner| AsyncSession { inner })
            .collect()
    }

    pub(crate) fn by_id(id: u64) -> Option<AsyncSession> {
        lock(registry())
            .get(&id)
            .and_then(Weak::upgrade)
            .map(|inner| AsyncSession { inner })
    }

    pub(crate) fn is_alive(id: u64) -> bool {
        lock(registry())
            .get(&id)
            .is_some_and(|w| w.strong_count() > 0)
    }
}

impl fmt::Debug for AsyncSession {
    /// `AsyncSession(id=3, bind=Engine(postgresql://user@host/db))`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.bind() {
            Some(bind) => write!(f, "AsyncSession(id={}, bind={bind:?})", self.inner.id),
            None => write!(f, "AsyncSession(id={}, bind=None)", self.inner.id),
        }
    }
}
