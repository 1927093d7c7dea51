//! Session factories: [`async_sessionmaker`] (SQLAlchemy's `async_sessionmaker`) and the
//! session types it can make ([`SessionClass`], SQLAlchemy's `class_`).

use std::any::TypeId;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::Entity;
use crate::session::{AsyncSession, BindRouter, Info, SessionConfig};

/// A session type a factory can make (SQLAlchemy's `class_`): [`AsyncSession`], or a user type
/// built on one (e.g. a wrapper whose methods `#[proxy_methods]` writes).
pub trait SessionClass: Sized + Send + Sync + 'static {
    /// The name the factory's `Debug` shows as `class_='...'`.
    const NAME: &'static str;

    /// Makes a session with `config`.
    fn from_config(config: SessionConfig) -> Self;

    /// The async session inside (for the factory's `begin`).
    fn as_async_session(&self) -> &AsyncSession;
}

impl SessionClass for AsyncSession {
    const NAME: &'static str = "AsyncSession";

    fn from_config(config: SessionConfig) -> Self {
        AsyncSession::with_config(config)
    }

    fn as_async_session(&self) -> &AsyncSession {
        self
    }
}

/// Options given when a session is made or a factory is configured (SQLAlchemy's keyword
/// arguments). Unset options keep the factory's values; `info` is merged into the factory's
/// when a session is made, and replaces it in `configure`.
#[derive(Clone, Default)]
#[must_use]
pub struct SessionOptions {
    bind: Option<Option<Engine>>,
    binds: Vec<(TypeId, Engine)>,
    router: Option<Arc<dyn BindRouter>>,
    connection: Option<crate::session::SharedConnection>,
    autoflush: Option<bool>,
    expire_on_commit: Option<bool>,
    close_resets_only: Option<bool>,
    info: Option<Info>,
    transaction_options: Option<crate::TransactionOptions>,
    execution_options: Option<crate::ExecutionOptions>,
    autobegin: Option<bool>,
    join_transaction_mode: Option<crate::JoinTransactionMode>,
}

impl fmt::Debug for SessionOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionOptions")
            .field("bind", &self.bind)
            .field("binds", &self.binds.len())
            .field("router", &self.router.is_some())
            .field("autoflush", &self.autoflush)
            .field("expire_on_commit", &self.expire_on_commit)
            .field("close_resets_only", &self.close_resets_only)
            .field("info", &self.info)
            .field("transaction_options", &self.transaction_options)
            .field("execution_options", &self.execution_options)
            .field("autobegin", &self.autobegin)
            .field("join_transaction_mode", &self.join_transaction_mode)
            .finish()
    }
}

impl SessionOptions {
    /// No options: everything as the factory says.
    pub fn new() -> Self {
        SessionOptions::default()
    }

    /// The engine.
    pub fn bind(mut self, engine: Engine) -> Self {
        self.bind = Some(Some(engine));
        self
    }

    /// No engine (sessions then refuse statements with a clear error).
    pub fn unbound(mut self) -> Self {
        self.bind = Some(None);
        self
    }

    /// Work on this connection, inside its transaction (SQLAlchemy's `bind=connection`).
    pub fn bind_connection(mut self, conn: crate::session::SharedConnection) -> Self {
        self.connection = Some(conn);
        self
    }

    /// The engine for entity `T`.
    pub fn bind_entity<T: Entity>(mut self, engine: Engine) -> Self {
        self.binds.push((TypeId::of::<T>(), engine));
        self
    }

    /// A routing hook (an overridden `get_bind`).
    pub fn router(mut self, router: impl BindRouter) -> Self {
        self.router = Some(Arc::new(router));
        self
    }

    /// Flush before queries.
    pub fn autoflush(mut self, autoflush: bool) -> Self {
        self.autoflush = Some(autoflush);
        self
    }

    /// Expire objects on commit.
    pub fn expire_on_commit(mut self, expire: bool) -> Self {
        self.expire_on_commit = Some(expire);
        self
    }

    /// `close()` only resets (true) or closes for good (false).
    pub fn close_resets_only(mut self, only: bool) -> Self {
        self.close_resets_only = Some(only);
        self
    }

    /// The user dictionary.
    pub fn info(mut self, info: Info) -> Self {
        self.info = Some(info);
        self
    }

    /// The options the sessions' transactions begin with (isolation level, read only,
    /// deferrable), over the engine's.
    pub fn transaction_options(mut self, options: crate::TransactionOptions) -> Self {
        self.transaction_options = Some(options);
        self
    }

    /// Execution options for the sessions' statements, over the engine's.
    pub fn execution_options(mut self, options: crate::ExecutionOptions) -> Self {
        self.execution_options = Some(options);
        self
    }

    /// Start a transaction on first use (SQLAlchemy's `autobegin`).
    pub fn autobegin(mut self, on: bool) -> Self {
        self.autobegin = Some(on);
        self
    }

    /// What sessions bound to a connection do with a transaction already open on it
    /// (SQLAlchemy's `join_transaction_mode`).
    pub fn join_transaction_mode(mut self, mode: crate::JoinTransactionMode) -> Self {
        self.join_transaction_mode = Some(mode);
        self
    }

    /// Applies these options to `config`; `merge_info` merges `info` (call time) instead of
    /// replacing it (configure).
    fn apply(self, config: &mut SessionConfig, merge_info: bool) {
        if let Some(bind) = self.bind {
            config.bind = bind;
        }
        for (t, engine) in self.binds {
            config.binds.insert(t, engine);
        }
        if let Some(router) = self.router {
            config.router = Some(router);
        }
        if let Some(conn) = self.connection {
            config.connection = Some(conn);
        }
        if let Some(v) = self.autoflush {
            config.autoflush = v;
        }
        if let Some(v) = self.expire_on_commit {
            config.expire_on_commit = v;
        }
        if let Some(v) = self.close_resets_only {
            config.close_resets_only = v;
        }
        if let Some(v) = self.transaction_options {
            config.transaction_options = v;
        }
        if let Some(v) = self.execution_options {
            config.execution_options = v;
        }
        if let Some(v) = self.autobegin {
            config.autobegin = v;
        }
        if let Some(v) = self.join_transaction_mode {
            config.join_transaction_mode = v;
        }
        if let Some(info) = self.info {
            if merge_info {
                config.info.extend(info);
            } else {
                config.info = info;
            }
        }
    }
}

/// A configured factory of sessions (SQLAlchemy's `async_sessionmaker`), made once at start-up
/// and called for each unit of work. Clones share the configuration, so
/// [`configure`](AsyncSessionMaker::configure) reaches every clone.
pub struct AsyncSessionMaker<S: SessionClass = AsyncSession> {
    shared: Arc<Mutex<Kw>>,
    _class: PhantomData<fn() -> S>,
}

struct Kw {
    config: SessionConfig,
    info_given: bool,
}

/// Makes a session factory bound to `bind` (or unbound, to `configure` later), with the default
/// options: autoflush and expire_on_commit on (SQLAlchemy's `async_sessionmaker(engine)`).
///
/// ```
/// use session_core::{async_sessionmaker, create_async_engine, SessionOptions};
/// let engine = create_async_engine("postgresql://scott:tiger@localhost/test")?;
/// let maker = async_sessionmaker(engine).expire_on_commit(false);
/// assert_eq!(
///     format!("{maker:?}"),
///     "async_sessionmaker(class_='AsyncSession', bind=Engine(postgresql://scott@localhost:5432/test), \
///      autoflush=true, expire_on_commit=false)"
/// );
/// let session = maker.session(); // no I/O
/// # Ok::<(), session_core::Error>(())
/// ```
pub fn async_sessionmaker(bind: impl Into<Option<Engine>>) -> AsyncSessionMaker {
    AsyncSessionMaker::new(bind)
}

impl<S: SessionClass> AsyncSessionMaker<S> {
    /// A factory of `S` sessions bound to `bind` (or unbound).
    pub fn new(bind: impl Into<Option<Engine>>) -> Self {
        AsyncSessionMaker {
            shared: Arc::new(Mutex::new(Kw {
                config: SessionConfig {
                    bind: bind.into(),
                    factory_events: Some(crate::Events::new()),
                    ..SessionConfig::default()
                },
                info_given: false,
            })),
            _class: PhantomData,
        }
    }

    fn kw(&self) -> MutexGuard<'_, Kw> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The same configuration, making sessions of type `S2` (SQLAlchemy's `class_=`).
    pub fn class<S2: SessionClass>(self) -> AsyncSessionMaker<S2> {
        AsyncSessionMaker {
            shared: self.shared,
            _class: PhantomData,
        }
    }

    /// Sets autoflush for sessions made from now on (builder form of `configure`).
    #[must_use]
    pub fn autoflush(self, autoflush: bool) -> Self {
        self.kw().config.autoflush = autoflush;
        self
    }

    /// Sets expire_on_commit for sessions made from now on (builder form of `configure`).
    #[must_use]
    pub fn expire_on_commit(self, expire: bool) -> Self {
        self.kw().config.expire_on_commit = expire;
        self
    }

    /// Sets the options the sessions' transactions begin with, e.g.
    /// `TransactionOptions::new().isolation_level(IsolationLevel::Serializable)` (builder form
    /// of `configure`).
    #[must_use]
    pub fn transaction_options(self, options: crate::TransactionOptions) -> Self {
        self.kw().config.transaction_options = options;
        self
    }

    /// Sets the execution options of the sessions' statements (builder form of `configure`).
    #[must_use]
    pub fn execution_options(self, options: crate::ExecutionOptions) -> Self {
        self.kw().config.execution_options = options;
        self
    }

    /// Sets what sessions bound to a connection do with a transaction already open on it
    /// (builder form of `configure`).
    #[must_use]
    pub fn join_transaction_mode(self, mode: crate::JoinTransactionMode) -> Self {
        self.kw().config.join_transaction_mode = mode;
        self
    }

    /// Turns autobegin on or off for sessions made from now on (builder form of `configure`).
    #[must_use]
    pub fn autobegin(self, on: bool) -> Self {
        self.kw().config.autobegin = on;
        self
    }

    /// The factory's listener registry: its listeners hear only the sessions this factory
    /// makes (SQLAlchemy's `event.listen(maker, ...)`, which listens on the maker's own
    /// Session subclass). Clones of the factory share it.
    ///
    /// ```
    /// use session_core::async_sessionmaker;
    /// let maker = async_sessionmaker(None);
    /// maker.events().before_commit(|_session| Ok(()));
    /// ```
    pub fn events(&self) -> crate::Events {
        let mut kw = self.kw();
        kw.config
            .factory_events
            .get_or_insert_with(crate::Events::new)
            .clone()
    }

    /// Sets the user dictionary each session starts from (builder form of `configure`).
    #[must_use]
    pub fn info(self, info: Info) -> Self {
        self.configure(SessionOptions::new().info(info));
        self
    }

    /// Changes the options of the sessions made from now on (SQLAlchemy's `configure`);
    /// sessions already made keep theirs. `info` replaces the factory's.
    pub fn configure(&self, options: SessionOptions) {
        let mut kw = self.kw();
        if options.info.is_some() {
            kw.info_given = true;
        }
        options.apply(&mut kw.config, false);
    }

    /// The options sessions are made with now.
    pub fn config(&self) -> SessionConfig {
        self.kw().config.clone()
    }

    /// Makes a session with the factory's options (SQLAlchemy's `maker()`). No I/O.
    pub fn session(&self) -> S {
        S::from_config(self.config())
    }

    /// Makes a session with `options` over the factory's (SQLAlchemy's `maker(**kw)`): given
    /// options win, and `info` is merged into a copy of the factory's (given keys win).
    pub fn session_with(&self, options: SessionOptions) -> S {
        let mut config = self.config();
        options.apply(&mut config, true);
        S::from_config(config)
    }

    /// Runs `body` with a new session inside a transaction: commits when it returns `Ok`,
    /// rolls back when it returns `Err`, and closes the session in every case, also when the
    /// commit fails (SQLAlchemy's `async with maker.begin() as session:`, whose async form leaves
    /// the session open when commit raises; this one does not).
    ///
    /// # Errors
    /// The body's error, or the commit's.
    pub async fn begin<T, E>(
        &self,
        body: impl AsyncFnOnce(&S) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        E: From<Error>,
    {
        let session = self.session();
        let result = session.as_async_session().run_block(body(&session)).await;
        session.as_async_session().close().await;
        result
    }

    /// Runs `body` with a new session and closes it afterwards, never committing (SQLAlchemy's
    /// `async with maker() as session:`).
    pub async fn scope<R>(&self, body: impl AsyncFnOnce(&S) -> R) -> R {
        let session = self.session();
        let out = body(&session).await;
        session.as_async_session().close().await;
        out
    }

    /// The configured bind, or the clear error a session would give without one.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] when the factory is unbound.
    pub fn bind(&self) -> Result<Engine> {
        self.kw().config.bind.clone().ok_or_else(|| {
            Error::InvalidRequest(
                "this session factory has no bind; configure one with \
                 maker.configure(SessionOptions::new().bind(engine))"
                    .into(),
            )
        })
    }
}

impl<S: SessionClass> Clone for AsyncSessionMaker<S> {
    fn clone(&self) -> Self {
        AsyncSessionMaker {
            shared: self.shared.clone(),
            _class: PhantomData,
        }
    }
}

impl<S: SessionClass> fmt::Debug for AsyncSessionMaker<S> {
    /// `async_sessionmaker(class_='AsyncSession', bind=Engine(postgresql://user@host:5432/db),
    /// autoflush=true, expire_on_commit=true)`, with `info={...}` when given, and
    /// `close_resets_only=false` / `transaction_options='BEGIN ...'` once configured; never a
    /// password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_repr(f, "async_sessionmaker", S::NAME, &self.kw())
    }
}

fn write_repr(f: &mut fmt::Formatter<'_>, maker: &str, class: &str, kw: &Kw) -> fmt::Result {
    let c = &kw.config;
    write!(f, "{maker}(class_='{class}', bind=")?;
    match &c.bind {
        Some(engine) => write!(f, "{engine:?}")?,
        None => f.write_str("None")?,
    }
    write!(
        f,
        ", autoflush={}, expire_on_commit={}",
        c.autoflush, c.expire_on_commit
    )?;
    if kw.info_given {
        write!(f, ", info={:?}", c.info)?;
    }
    // Like SQLAlchemy's kw: the other options appear once configured away from the default.
    if !c.close_resets_only {
        f.write_str(", close_resets_only=false")?;
    }
    if !c.transaction_options.is_empty() {
        write!(
            f,
            ", transaction_options='{}'",
            c.transaction_options.begin_sql()
        )?;
    }
    if !c.execution_options.is_empty() {
        write!(f, ", execution_options={:?}", c.execution_options)?;
    }
    if !c.autobegin {
        f.write_str(", autobegin=false")?;
    }
    if c.join_transaction_mode != crate::JoinTransactionMode::default() {
        let mode = match c.join_transaction_mode {
            crate::JoinTransactionMode::CreateSavepoint => "create_savepoint",
            crate::JoinTransactionMode::RollbackOnly => "rollback_only",
            crate::JoinTransactionMode::ControlFully => "control_fully",
            _ => "conservative_savepoint",
        };
        write!(f, ", join_transaction_mode='{mode}'")?;
    }
    f.write_str(")")
}

/// The blocking factory's repr uses the same shape.
pub(crate) fn repr_of<S: SessionClass>(
    f: &mut fmt::Formatter<'_>,
    maker: &str,
    class: &str,
    factory: &AsyncSessionMaker<S>,
) -> fmt::Result {
    write_repr(f, maker, class, &factory.kw())
}
