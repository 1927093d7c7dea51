//! [`AsyncScopedSession`] (SQLAlchemy's `async_scoped_session`) and the blocking
//! [`ScopedSession`] (`scoped_session`).

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::ops::Deref;
use std::sync::Arc;

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
fn set_new<T, K: Hash + Eq>(
    registry: &ScopedRegistry<T, K>,
    make: impl FnOnce() -> T,
) -> Result<Arc<T>> {
    if registry.has() {
        return Err(Error::InvalidRequest(ALREADY_PRESENT.into()));
    }
    Ok(registry.set(make()))
}

/// SQLAlchemy's `configure()` warning, when the current scope already has a session.
fn warn_if_present<T, K: Hash + Eq>(registry: &ScopedRegistry<T, K>) {
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
/// with [`AsyncScopedSession::scope`] cleans up by itself; [`scope::current_task`] needs a
/// `remove()` at the end of every task.
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

    /// Runs `future` in a new scope and removes (and closes) that scope's session when it
    /// completes, returns an error, panics or is dropped: the cure for sessions leaked by a
    /// forgotten `remove()` (SQLAlchemy #8340). Use it with [`scope::task_scope`].
    pub async fn scope<F: Future>(&self, future: F) -> F::Output {
        scope::enter(async {
            let mut guard = ScopeGuard {
                registry: &self.registry,
                key: Some(self.registry.key()),
            };
            let out = future.await;
            if let Some(key) = guard.key.take() {
                if let Some(session) = self.registry.remove_key(&key) {
                    session.as_async_session().close().await;
                }
            }
            out
        })
        .await
    }
}

/// The proxy block of SQLAlchemy's `async_scoped_session` (seed 003), written by
/// `#[proxy_methods]` from the names alone: every member runs on the current scope's session,
/// creating it first when the scope has none. SQLAlchemy's `new` attribute is `new_objects`
/// here (`AsyncSession::new` is the constructor); `__contains__` and `__iter__` are `contains`
/// and `iter`.
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
        execute,
        expire,
        expire_all,
        expunge,
        expunge_all,
        flush,
        get_bind,
        is_modified,
        invalidate,
        merge,
        refresh,
        rollback,
        scalar,
        scalars,
        get,
        get_one,
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
}

/// Removes a scope's session if the scope ends without reaching its normal end (panic, drop).
/// Dropping the session returns its connection rolled back.
struct ScopeGuard<'a, S, K: Hash + Eq> {
    registry: &'a ScopedRegistry<S, K>,
    key: Option<K>,
}

impl<S, K: Hash + Eq> Drop for ScopeGuard<'_, S, K> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            drop(self.registry.remove_key(&key));
        }
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

/// The blocking proxy list: SQLAlchemy's `scoped_session` members that the blocking
/// [`Session`] has, written by `#[proxy_methods]`; each runs on the current thread's session.
#[session_macros::proxy_methods(
    Session,
    methods(
        add,
        add_all,
        delete,
        flush,
        commit,
        rollback,
        close,
        get,
        get_one,
        refresh,
        merge,
        expire,
        expunge,
        contains,
        is_modified
    ),
    attributes(new_objects, dirty, deleted, info, in_transaction)
)]
impl<K: Hash + Eq + Send + 'static> ScopedSession<K> {
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
