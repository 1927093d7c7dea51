//! [`AsyncScopedSession`] (SQLAlchemy's `async_scoped_session`) and the blocking
//! [`ScopedSession`] (`scoped_session`).

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::ops::Deref;
use std::sync::{Arc, Weak};

use session_core::blocking::{Session, SessionMaker};
use session_core::{AsyncSession, AsyncSessionMaker, Error, Result, SessionClass, SessionOptions};

use crate::registry::ScopedRegistry;
use crate::scope::{self, ScopeKey};

/// SQLAlchemy's exact warning when `configure()` is called while sessions exist.
pub const CONFIGURE_WARNING: &str = "At least one scoped session is already present.  \
     configure() can not affect sessions that have already been created.";

const ALREADY_PRESENT: &str =
    "Scoped session is already present; no new arguments may be specified.";

/// Stores a new value for the current scope, refusing when it has one (SQLAlchemy's
/// "Scoped session is already present" error).
fn set_new<T: 'static, K: Hash + Eq + 'static>(
    registry: &ScopedRegistry<T, K>,
    make: impl FnOnce() -> T,
) -> Result<Arc<T>> {
    if registry.has() {
        return Err(Error::InvalidRequest(ALREADY_PRESENT.into()));
    }
    Ok(registry.set(make()))
}

/// SQLAlchemy's `configure()` warning, when the current scope already has a session.
fn warn_if_present<T: 'static, K: Hash + Eq + 'static>(registry: &ScopedRegistry<T, K>) {
    if registry.has() {
        tracing::warn!(target: "session_scoped", "{CONFIGURE_WARNING}");
    }
}

/// The current scope's session, as the proxied methods reach it (SQLAlchemy's `_proxied`):
/// dereferences to the [`AsyncSession`].
pub struct Current<S: SessionClass>(Arc<S>);

impl<S: SessionClass> Current<S> {
    /// The session as the factory made it (a user `class_` type, say).
    pub fn session(&self) -> &Arc<S> {
        &self.0
    }
}

impl<S: SessionClass> Deref for Current<S> {
    type Target = AsyncSession;

    fn deref(&self) -> &AsyncSession {
        self.0.as_async_session()
    }
}

/// A registry of sessions, one per scope, that also acts as the current scope's session: every
/// proxied method (`add`, `commit`, `execute`, ...) runs on it, creating it first when the scope
/// has none (SQLAlchemy's `async_scoped_session`).
pub struct AsyncScopedSession<S: SessionClass = AsyncSession, K = ScopeKey> {
    /// The factory sessions are made with (SQLAlchemy's public `session_factory`).
    pub session_factory: AsyncSessionMaker<S>,
    registry: ScopedRegistry<S, K>,
}

/// A scoped session over `session_factory`, with the required scope function (SQLAlchemy's
/// `async_scoped_session(factory, scopefunc=current_task)`): [`scope::task_scope`] together
/// with [`AsyncScopedSession::scope`] and [`AsyncScopedSession::spawn`] cleans up by itself;
/// [`scope::current_task`] needs a `remove()` at the end of every task not started with
/// `spawn`.
pub fn async_scoped_session<S: SessionClass, K: Hash + Eq + Send + 'static>(
    session_factory: AsyncSessionMaker<S>,
    scopefunc: impl Fn() -> K + Send + Sync + 'static,
) -> AsyncScopedSession<S, K> {
    let factory = session_factory.clone();
    AsyncScopedSession {
        session_factory,
        registry: ScopedRegistry::new(move || factory.session(), scopefunc),
    }
}

impl<S: SessionClass, K: Hash + Eq + Send + 'static> AsyncScopedSession<S, K> {
    /// The current scope's session, created with the factory's options when the scope has
    /// none (SQLAlchemy's `scoped()`).
    pub fn call(&self) -> Arc<S> {
        self.registry.call()
    }

    /// A new session for the current scope made with `options` over the factory's
    /// (SQLAlchemy's `scoped(**kw)`).
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] "Scoped session is already present; no new arguments may be
    /// specified." when the scope has a session.
    pub fn call_with(&self, options: SessionOptions) -> Result<Arc<S>> {
        set_new(&self.registry, || {
            self.session_factory.session_with(options)
        })
    }

    /// Reconfigures the factory for sessions made from now on; warns (through `tracing`, with
    /// SQLAlchemy's text) when the current scope already has a session, which keeps its
    /// options.
    pub fn configure(&self, options: SessionOptions) {
        warn_if_present(&self.registry);
        self.session_factory.configure(options);
    }

    /// Closes the current scope's session and forgets it; the next call makes a new one.
    /// Unlike SQLAlchemy, the entry is removed even when closing fails or is cancelled.
    pub async fn remove(&self) {
        if let Some(session) = self.registry.clear() {
            session.as_async_session().close().await;
        }
    }

    /// True when the current scope has a session.
    pub fn has(&self) -> bool {
        self.registry.has()
    }

    /// Number of scopes holding a session (0 after every scope was removed: a leak check).
    pub fn registered(&self) -> usize {
        self.registry.len()
    }

    /// The registry itself.
    pub fn registry(&self) -> &ScopedRegistry<S, K> {
        &self.registry
    }

    /// Runs `future` in a new scope and removes (and closes) the session made for it when it
    /// completes, returns an error, panics or is dropped: the cure for sessions leaked by a
    /// forgotten `remove()` (SQLAlchemy #8340). Use it with [`scope::task_scope`].
    ///
    /// It only ever closes a session it made: with a scope function whose key inside the scope
    /// is the same as outside (e.g. [`scope::current_task`]), a session the enclosing code
    /// already had is used inside and left registered and open afterwards.
    pub async fn scope<F: Future>(&self, future: F) -> F::Output {
        scope::enter(async {
            let key = self.registry.key();
            let found = self.registry.get_key(&key).map(|s| Arc::downgrade(&s));
            let mut guard = ScopeGuard {
                registry: &self.registry,
                key: Some(key),
                found,
            };
            let out = future.await;
            if let Some(session) = guard.take_own() {
                session.as_async_session().close().await;
            }
            out
        })
        .await
    }

    /// Spawns `future` as a tokio task inside a scope of its own (so with a session of its
    /// own, made on first use and closed when the task ends, also by panic or abort): the way
    /// to start tasks that use the scoped session, whatever the scope function. A task made by
    /// a bare `tokio::spawn` inside a scope does not inherit it, and [`scope::task_scope`]
    /// refuses it.
    ///
    /// # Panics
    /// Outside a tokio runtime, as `tokio::spawn`.
    pub fn spawn<F>(self: &Arc<Self>, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
        K: Sync,
    {
        let this = self.clone();
        tokio::spawn(async move { this.scope(future).await })
    }
}

/// The proxy block of SQLAlchemy's `async_scoped_session` (seed 003), written by
/// `#[proxy_methods]` from the names alone: every member runs on the current scope's session,
/// creating it first when the scope has none. SQLAlchemy's `new` attribute is `new_objects`
/// here (`AsyncSession::new` is the constructor); `__contains__` and `__iter__` are `contains`
/// and `iter`; `get`'s and `refresh`'s options are `get_with`, `get_one_with` and
/// `refresh_with`. SQLAlchemy 2.1's `merge_all` and `delete_all` are in the list.
#[session_macros::proxy_methods(
    AsyncSession,
    methods(
        contains,
        iter,
        aclose,
        add,
        add_all,
        begin,
        begin_nested,
        close,
        reset,
        commit,
        connection,
        delete,
        delete_all,
        execute,
        execute_with,
        expire,
        expire_all,
        expunge,
        expunge_all,
        flush,
        get_bind,
        is_modified,
        invalidate,
        merge,
        merge_all,
        refresh,
        refresh_with,
        load,
        get_many,
        rollback,
        scalar,
        scalars,
        get,
        get_one,
        get_with,
        get_one_with,
        stream,
        stream_scalars
    ),
    attributes(
        bind,
        dirty,
        deleted,
        new_objects,
        identity_map,
        is_active,
        autoflush,
        no_autoflush,
        info
    ),
    classmethods(close_all, object_session, identity_key)
)]
impl<S: SessionClass, K: Hash + Eq + Send + 'static> AsyncScopedSession<S, K> {
    /// The current scope's session, created when the scope has none (SQLAlchemy's
    /// `_proxied`); the proxied members go through it.
    pub fn proxied(&self) -> Current<S> {
        Current(self.call())
    }

    /// The listener registry of the scoped session's factory (SQLAlchemy's
    /// `event.listen(scoped, ...)`, which listens on the factory's Session class): its
    /// listeners hear every session this scoped session makes, in every scope.
    ///
    /// SQLAlchemy raises `ArgumentError("Session event listen on a scoped_session requires
    /// that its creation callable is associated with the Session class.")` when the scoped
    /// session was made from some other callable; here a scoped session is always made from
    /// an [`AsyncSessionMaker`], so that mistake does not compile.
    pub fn events(&self) -> session_core::Events {
        self.session_factory.events()
    }
}

/// Removes the session a scope made, when it ends without reaching its normal end (panic,
/// drop): dropping the session returns its connection rolled back. A session that was there
/// when the scope began (`found`) is left alone.
struct ScopeGuard<'a, S: 'static, K: Hash + Eq + 'static> {
    registry: &'a ScopedRegistry<S, K>,
    key: Option<K>,
    found: Option<Weak<S>>,
}

impl<S: 'static, K: Hash + Eq + 'static> ScopeGuard<'_, S, K> {
    /// Disarms the guard and takes the scope's own session out of the registry, if any.
    fn take_own(&mut self) -> Option<Arc<S>> {
        let key = self.key.take()?;
        self.registry.remove_key_unless(&key, self.found.as_ref())
    }
}

impl<S: 'static, K: Hash + Eq + 'static> Drop for ScopeGuard<'_, S, K> {
    fn drop(&mut self) {
        drop(self.take_own());
    }
}

impl<S: SessionClass, K> fmt::Debug for AsyncScopedSession<S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "async_scoped_session(session_factory={:?}, {:?})",
            self.session_factory, self.registry
        )
    }
}

/// The blocking scoped session (SQLAlchemy's `scoped_session`): one blocking [`Session`] per
/// scope, the current thread by default.
pub struct ScopedSession<K = ScopeKey> {
    /// The factory sessions are made with.
    pub session_factory: SessionMaker,
    registry: ScopedRegistry<Session, K>,
}

/// A blocking scoped session keyed by the current thread (SQLAlchemy's
/// `scoped_session(factory)`).
pub fn scoped_session(session_factory: SessionMaker) -> ScopedSession {
    scoped_session_with(session_factory, scope::current_thread)
}

/// A blocking scoped session with a scope function (SQLAlchemy's
/// `scoped_session(factory, scopefunc)`).
pub fn scoped_session_with<K: Hash + Eq + Send + 'static>(
    session_factory: SessionMaker,
    scopefunc: impl Fn() -> K + Send + Sync + 'static,
) -> ScopedSession<K> {
    let factory = session_factory.clone();
    ScopedSession {
        session_factory,
        registry: ScopedRegistry::new(move || factory.session(), scopefunc),
    }
}

/// The blocking proxy list (SQLAlchemy's `scoped_session`): every member of the blocking
/// [`Session`] but its constructors and `async_session` (a borrow of one scope's session),
/// written by `#[proxy_methods]`; each runs on the current scope's session, creating it first
/// when the scope has none.
#[session_macros::proxy_methods(
    Session,
    methods(
        id,
        update_info,
        get_bind,
        get_bind_for,
        add,
        add_all,
        add_any,
        delete,
        delete_all,
        flush,
        commit,
        rollback,
        close,
        reset,
        invalidate,
        get,
        get_one,
        get_with,
        get_one_with,
        refresh,
        refresh_with,
        load,
        get_many,
        merge,
        merge_all,
        expire,
        expire_all,
        expunge,
        expunge_all,
        contains,
        is_modified,
        iter,
        len,
        is_empty,
        in_transaction,
        in_nested_transaction,
        get_transaction,
        get_nested_transaction,
        execute,
        execute_with,
        scalar,
        scalars,
        begin,
        begin_with,
        begin_nested,
        transaction,
        transaction_with,
        nested_transaction,
        scope,
        connection,
        stream,
        stream_scalars,
        block_on
    ),
    attributes(
        bind,
        autoflush,
        info,
        is_active,
        no_autoflush,
        new_objects,
        dirty,
        deleted,
        identity_map
    ),
    classmethods(make_transient, identity_key, object_session, close_all)
)]
impl<K: Hash + Eq + Send + 'static> ScopedSession<K> {
    /// The listener registry of the scoped session's factory: its listeners hear every
    /// session this scoped session makes, on every thread (SQLAlchemy's
    /// `event.listen(scoped_session, ...)`; see [`AsyncScopedSession::events`]).
    pub fn events(&self) -> session_core::Events {
        self.session_factory.events()
    }

    /// The current scope's session, created when missing.
    pub fn call(&self) -> Arc<Session> {
        self.registry.call()
    }

    /// A new session for the current scope made with `options`.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] when the scope has a session.
    pub fn call_with(&self, options: SessionOptions) -> Result<Arc<Session>> {
        set_new(&self.registry, || {
            self.session_factory.session_with(options)
        })
    }

    /// Reconfigures the factory; warns when the current scope has a session.
    pub fn configure(&self, options: SessionOptions) {
        warn_if_present(&self.registry);
        self.session_factory.configure(options);
    }

    /// Closes and forgets the current scope's session (forgotten even when closing fails).
    ///
    /// # Errors
    /// When called from async code (see [`session_core::blocking`]).
    pub fn remove(&self) -> Result<()> {
        match self.registry.clear() {
            Some(session) => session.close(),
            None => Ok(()),
        }
    }

    /// Number of scopes holding a session.
    pub fn registered(&self) -> usize {
        self.registry.len()
    }

    /// The current scope's session (SQLAlchemy's `_proxied`).
    pub fn proxied(&self) -> Arc<Session> {
        self.call()
    }
}

impl<K> fmt::Debug for ScopedSession<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "scoped_session(session_factory={:?}, {:?})",
            self.session_factory, self.registry
        )
    }
}
