//! The blocking [`Session`] and [`sessionmaker`] for synchronous code (SQLAlchemy's sync
//! `Session` / `sessionmaker`), built on the async core the way the `postgres` crate wraps
//! `tokio-postgres`: every method blocks the calling thread on a future.
//!
//! # The runtime
//! One tokio runtime per process drives every blocking session: started lazily by the first
//! factory or session (two worker threads named `session-blocking`, and at most two threads for
//! blocking work), and never shut down. Factories and sessions own no runtime and no thread, so
//! making many costs no threads, and the connections they open (whose background tasks run on
//! that runtime) stay usable after the factory and the session that opened them are gone, by
//! other sessions and by async code alike.
//!
//! # Inside async code
//! Called from a thread that is inside a tokio runtime (an async task, the future of
//! `block_on`, `#[tokio::main]`; detected with [`tokio::runtime::Handle::try_current`] before
//! anything blocks), every method returns a clear [`Error::InvalidRequest`] instead of
//! blocking the runtime's thread (or deadlocking): use [`AsyncSession`] there, or run the
//! blocking code through [`spawn_blocking`] (this module's: tokio's own keeps the runtime's
//! context on its threads, where the check cannot tell them from a worker) or on a plain
//! thread.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Runtime;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::factory::{AsyncSessionMaker, SessionOptions, repr_of};
use crate::session::AsyncSession;

mod handles;

pub use handles::{ObjIter, SessionConnection, SessionTransaction};

/// Worker threads of the shared runtime: they run the connections' background tasks, while
/// each blocking call's own future runs on the calling thread.
const WORKER_THREADS: usize = 2;

thread_local! {
    /// Set while [`spawn_blocking`] runs its closure: this thread may block although it is in
    /// a runtime's context.
    static MAY_BLOCK: Cell<bool> = const { Cell::new(false) };
}

/// The process's blocking runtime, started on first use.
fn runtime() -> Result<&'static Runtime> {
    static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(WORKER_THREADS)
                .max_blocking_threads(2)
                .thread_name("session-blocking")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::Config(format!("cannot start the blocking session runtime: {e}")))
}

/// Runs `future` to completion on the shared runtime, refusing to block a thread that is
/// inside a tokio runtime (checked before anything blocks or the future is polled).
fn block_on<F: Future>(future: F) -> Result<F::Output> {
    if tokio::runtime::Handle::try_current().is_ok() && !MAY_BLOCK.get() {
        return Err(inside_async());
    }
    Ok(runtime()?.block_on(future))
}

fn inside_async() -> Error {
    Error::InvalidRequest(
        "the blocking Session was called from async code running on a tokio runtime, where \
         blocking would stall the runtime (or deadlock); use AsyncSession there, or call the \
         blocking code through session_core::blocking::spawn_blocking (or on a thread of its \
         own)"
            .into(),
    )
}

/// Runs `f` on the current tokio runtime's blocking thread pool, as
/// [`tokio::task::spawn_blocking`] does, with the blocking API allowed inside it: the way to
/// call blocking sessions from async code. (On tokio's own `spawn_blocking` threads the
/// blocking API refuses, since those threads keep the runtime's context and cannot be told
/// from its workers.)
///
/// # Panics
/// Outside a tokio runtime, as `tokio::task::spawn_blocking`.
pub fn spawn_blocking<F, R>(f: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        struct Reset(bool);
        impl Drop for Reset {
            fn drop(&mut self) {
                MAY_BLOCK.set(self.0);
            }
        }
        let _reset = Reset(MAY_BLOCK.replace(true));
        f()
    })
}

/// A factory of blocking sessions (SQLAlchemy's `sessionmaker`).
#[derive(Clone)]
pub struct SessionMaker {
    maker: AsyncSessionMaker,
}

/// Makes a blocking session factory bound to `bind` (or unbound, to `configure` later)
/// (SQLAlchemy's `sessionmaker(engine)`).
///
/// # Errors
/// [`Error::Config`] when the process's blocking runtime cannot start (see the
/// [module docs](self)).
pub fn sessionmaker(bind: impl Into<Option<Engine>>) -> Result<SessionMaker> {
    runtime()?;
    Ok(SessionMaker {
        maker: AsyncSessionMaker::new(bind),
    })
}

impl SessionMaker {
    /// The factory's listener registry: its listeners hear only the sessions this factory
    /// makes (SQLAlchemy's `event.listen(sessionmaker, ...)`); see
    /// [`AsyncSessionMaker::events`].
    pub fn events(&self) -> crate::Events {
        self.maker.events()
    }

    /// Changes the options of sessions made from now on (SQLAlchemy's `configure`).
    pub fn configure(&self, options: SessionOptions) {
        self.maker.configure(options);
    }

    /// Makes a session (SQLAlchemy's `Session()`). No I/O.
    pub fn session(&self) -> Session {
        Session {
            inner: self.maker.session(),
        }
    }

    /// Makes a session with `options` over the factory's (`info` merged).
    pub fn session_with(&self, options: SessionOptions) -> Session {
        Session {
            inner: self.maker.session_with(options),
        }
    }

    /// Runs `body` with a new session and closes it afterwards, never committing
    /// (SQLAlchemy's `with Session() as session:`).
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] when called from async code.
    pub fn scope<R>(&self, body: impl FnOnce(&Session) -> R) -> Result<R> {
        let session = self.session();
        let out = body(&session);
        session.close()?;
        Ok(out)
    }

    /// Runs `body` with a new session in a transaction: commits on `Ok`, rolls back on `Err`,
    /// and always closes (SQLAlchemy's `with Session.begin() as session:`).
    ///
    /// # Errors
    /// The body's error, or the commit's.
    pub fn begin<T, E: From<Error>>(
        &self,
        body: impl FnOnce(&Session) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let session = self.session();
        let result = run_block(&session, crate::TransactionOptions::new(), body);
        let _ = session.close();
        result
    }

    /// The async factory underneath.
    pub fn async_maker(&self) -> &AsyncSessionMaker {
        &self.maker
    }
}

impl fmt::Debug for SessionMaker {
    /// `sessionmaker(class_='Session', bind=..., autoflush=true, expire_on_commit=true)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        repr_of(f, "sessionmaker", "Session", &self.maker)
    }
}

/// A blocking session: [`AsyncSession`]'s API without `.await` (every member; the ones that
/// hand out async things have blocking counterparts: [`SessionTransaction`],
/// [`SessionConnection`], [`ObjIter`], closures over `&Session`).
///
/// ```no_run
/// use session_core::blocking::sessionmaker;
/// use session_core::{GetOptions, RowLock, TransactionOptions, IsolationLevel};
/// # #[derive(Debug, Clone, Default, session_core::Entity)]
/// # struct Account { #[entity(primary_key)] id: i32, balance: i64 }
/// # fn demo(engine: session_core::Engine) -> session_core::Result<()> {
/// let maker = sessionmaker(engine)?;
/// let session = maker.session();
/// let serializable = TransactionOptions::new().isolation_level(IsolationLevel::Serializable);
/// session.transaction_with(serializable, |s| {
///     let from = s.get_one_with::<Account>(1, GetOptions::new().with_for_update(RowLock::update()))?;
///     from.write()?.balance -= 10;
///     // A savepoint: rolled back to (and its error returned) when the closure fails.
///     s.nested_transaction(|s| -> session_core::Result<()> {
///         let to = s.get_one::<Account>(2)?;
///         to.write()?.balance += 10;
///         Ok(())
///     })?;
///     Ok::<_, session_core::Error>(())
/// })?;
/// # Ok(()) }
/// ```
pub struct Session {
    inner: AsyncSession,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Session({:?})", self.inner)
    }
}

/// `AsyncSession`'s members without `.await`, written by `#[proxy_methods]` in blocking mode:
/// each async member runs through [`Session::block_on`] (the shared runtime, refusing inside
/// async code), each sync one calls the async session directly. The members that hand out
/// async things (transactions, the connection, streams, async closures) are written by hand
/// below, with blocking counterparts ([`SessionTransaction`], [`SessionConnection`],
/// [`ObjIter`], closures over `&Session`). Published again, with the hand-written members,
/// for the blocking `scoped_session`.
#[session_macros::publish_signatures]
#[session_macros::proxy_methods(
    AsyncSession,
    blocking(block_on = block_on, error = crate::Error),
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
        events
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
    classmethods(make_transient, identity_key)
)]
impl Session {
    /// A blocking session bound to `engine` (SQLAlchemy's `Session(engine)`), on the
    /// process's blocking runtime.
    ///
    /// # Errors
    /// [`Error::Config`] when that runtime cannot start.
    pub fn new(engine: crate::Engine) -> crate::Result<Self> {
        Session::from_async(AsyncSession::new(engine))
    }

    /// A blocking session with these options (see [`AsyncSession::with_config`]).
    ///
    /// # Errors
    /// [`Error::Config`] when the blocking runtime cannot start.
    pub fn with_config(config: crate::SessionConfig) -> crate::Result<Self> {
        Session::from_async(AsyncSession::with_config(config))
    }

    /// The blocking face of an async session (made with [`AsyncSession::builder`], say): both
    /// act on the same session.
    ///
    /// ```no_run
    /// # fn demo(engine: session_core::Engine) -> session_core::Result<()> {
    /// let session = session_core::blocking::Session::from_async(
    ///     session_core::AsyncSession::builder().bind(engine).autoflush(false).build(),
    /// )?;
    /// assert!(!session.autoflush());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] when the blocking runtime cannot start.
    pub fn from_async(session: crate::AsyncSession) -> crate::Result<Self> {
        runtime()?;
        Ok(Session { inner: session })
    }

    /// The async session underneath (SQLAlchemy's `_proxied`): the proxied members go
    /// through it.
    fn proxied(&self) -> &AsyncSession {
        &self.inner
    }

    /// The async session underneath.
    pub fn async_session(&self) -> &crate::AsyncSession {
        &self.inner
    }

    /// Begins the session's transaction explicitly (SQLAlchemy's `begin()`); end it with
    /// [`SessionTransaction::commit`] or [`SessionTransaction::rollback`], or use
    /// [`Session::transaction`], which cannot forget to.
    ///
    /// # Errors
    /// As [`AsyncSession::begin`]; [`Error::InvalidRequest`] from async code.
    pub fn begin(&self) -> crate::Result<crate::blocking::SessionTransaction> {
        self.begin_with(crate::TransactionOptions::new())
    }

    /// [`Session::begin`] with `options` (isolation level, read only, deferrable).
    ///
    /// # Errors
    /// As [`AsyncSession::begin_with`].
    pub fn begin_with(
        &self,
        options: crate::TransactionOptions,
    ) -> crate::Result<crate::blocking::SessionTransaction> {
        let tx = block_on(self.inner.begin_with(options))??;
        Ok(SessionTransaction::new(tx))
    }

    /// Flushes, then begins a savepoint (SQLAlchemy's `begin_nested()`), beginning the root
    /// transaction first when there is none.
    ///
    /// # Errors
    /// As [`AsyncSession::begin_nested`].
    pub fn begin_nested(&self) -> crate::Result<crate::blocking::SessionTransaction> {
        let tx = block_on(self.inner.begin_nested())??;
        Ok(SessionTransaction::new(tx))
    }

    /// Runs `body` in a transaction on this session: commits on `Ok`, rolls back on `Err`
    /// (SQLAlchemy's `with session.begin():`).
    ///
    /// # Errors
    /// The body's error, or the commit's.
    pub fn transaction<T, E: From<crate::Error>>(
        &self,
        body: impl FnOnce(&crate::blocking::Session) -> ::std::result::Result<T, E>,
    ) -> ::std::result::Result<T, E> {
        run_block(self, crate::TransactionOptions::new(), body)
    }

    /// [`Session::transaction`] in a transaction with `options`, e.g. SERIALIZABLE.
    ///
    /// # Errors
    /// As [`Session::transaction`].
    pub fn transaction_with<T, E: From<crate::Error>>(
        &self,
        options: crate::TransactionOptions,
        body: impl FnOnce(&crate::blocking::Session) -> ::std::result::Result<T, E>,
    ) -> ::std::result::Result<T, E> {
        run_block(self, options, body)
    }

    /// Runs `body` in a savepoint (SQLAlchemy's `with session.begin_nested():`): released
    /// when `body` returns `Ok`, rolled back to when it returns `Err`; the enclosing
    /// transaction stays open either way (see [`AsyncSession::nested_transaction`]).
    ///
    /// ```no_run
    /// # fn demo(session: &session_core::blocking::Session, obj: &session_core::Obj<A>)
    /// # -> session_core::Result<()> {
    /// let undone: Result<(), session_core::Error> = session.nested_transaction(|s| {
    ///     s.delete(obj)?;
    ///     Err(session_core::Error::InvalidRequest("keep it after all".into()))
    /// });
    /// assert!(undone.is_err());
    /// session.commit()?; // the delete was rolled back with the savepoint
    /// # Ok(()) }
    /// # #[derive(Debug, Clone, Default, session_core::Entity)]
    /// # struct A { #[entity(primary_key)] id: i32, data: String }
    /// ```
    ///
    /// # Errors
    /// The body's error (after rolling back to the savepoint), or the savepoint's.
    pub fn nested_transaction<T, E: From<crate::Error>>(
        &self,
        body: impl FnOnce(&crate::blocking::Session) -> ::std::result::Result<T, E>,
    ) -> ::std::result::Result<T, E> {
        let savepoint = self.begin_nested()?;
        let out = body(self);
        if !savepoint.is_current() {
            savepoint.forget();
            return out;
        }
        match out {
            Ok(value) => {
                savepoint.commit()?;
                Ok(value)
            }
            Err(e) => {
                if let Err(rollback) = savepoint.rollback() {
                    tracing::warn!(target: "session_core::session", error = %rollback,
                        "rolling back to the savepoint after a failed body failed");
                }
                Err(e)
            }
        }
    }

    /// Runs `body` with the session, then closes it whatever the body returned (SQLAlchemy's
    /// `with Session(engine) as session:`); like it, this never commits.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] from async code (the body ran; the close could not).
    pub fn scope<R>(&self, body: impl FnOnce(&crate::blocking::Session) -> R) -> crate::Result<R> {
        let out = body(self);
        self.close()?;
        Ok(out)
    }

    /// The connection of the session's transaction for the default bind, begun on first use
    /// (SQLAlchemy's `connection()`), with blocking calls.
    ///
    /// # Errors
    /// As [`AsyncSession::connection`].
    pub fn connection(&self) -> crate::Result<crate::blocking::SessionConnection> {
        let conn = block_on(self.inner.connection())??;
        Ok(SessionConnection::new(conn))
    }

    /// Streams the entities of a select from a server-side cursor (SQLAlchemy's
    /// `stream_scalars()`), as a blocking iterator; see [`AsyncSession::stream_scalars`].
    ///
    /// # Errors
    /// As [`AsyncSession::stream_scalars`]; items carry the errors of later fetches.
    pub fn stream_scalars<T: crate::Entity>(
        &self,
        statement: crate::Select<T>,
    ) -> crate::Result<crate::blocking::ObjIter<T>> {
        let stream = block_on(self.inner.stream_scalars(statement))??;
        Ok(ObjIter::new(stream))
    }

    /// Same as [`Session::stream_scalars`] (SQLAlchemy's `stream()`).
    ///
    /// # Errors
    /// As [`Session::stream_scalars`].
    pub fn stream<T: crate::Entity>(
        &self,
        statement: crate::Select<T>,
    ) -> crate::Result<crate::blocking::ObjIter<T>> {
        self.stream_scalars(statement)
    }

    /// Closes every live session of the process, async ones included (SQLAlchemy's
    /// `close_all_sessions()`).
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] from async code.
    pub fn close_all() -> crate::Result<()> {
        block_on(AsyncSession::close_all())
    }

    /// The live session owning `obj`, if any, as a blocking session (SQLAlchemy's
    /// `object_session()`).
    pub fn object_session<T: crate::Entity>(
        obj: &crate::Obj<T>,
    ) -> Option<crate::blocking::Session> {
        AsyncSession::object_session(obj).map(|inner| Session { inner })
    }

    /// Runs async work on the blocking runtime (for raw SQL through
    /// [`AsyncSession::connection`], say); every blocking member runs through it.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] when called from async code (a thread inside a tokio
    /// runtime, outside [`spawn_blocking`]): blocking there would stall the runtime.
    pub fn block_on<F: ::std::future::Future>(&self, future: F) -> crate::Result<F::Output> {
        block_on(future)
    }
}

/// Begins a transaction with `options` on `session`, runs `body` in it as a block, and
/// commits on `Ok` / rolls back on `Err`, unless the body ended the transaction by hand.
fn run_block<T, E: From<Error>>(
    session: &Session,
    options: crate::TransactionOptions,
    body: impl FnOnce(&Session) -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    let tx = block_on(session.inner.begin_with(options))??;
    let block = session.inner.enter_block(&tx);
    let out = body(session);
    drop(block);
    if !tx.is_current() {
        tx.forget();
        return out;
    }
    match out {
        Ok(value) => {
            block_on(tx.commit())??;
            Ok(value)
        }
        Err(e) => {
            let _ = block_on(tx.rollback());
            Err(e)
        }
    }
}
