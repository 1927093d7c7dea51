//! The blocking [`Session`] and [`sessionmaker`] for synchronous code (SQLAlchemy's sync
//! `Session` / `sessionmaker`), built on the async core the way the `postgres` crate wraps
//! `tokio-postgres`: each factory owns a small tokio runtime (one worker thread) that drives the
//! connections, and every method blocks on it.
//!
//! Called from inside an async runtime, every method returns a clear error instead of blocking
//! the runtime's thread (or deadlocking): use [`AsyncSession`] there, or move the blocking code
//! into `tokio::task::spawn_blocking`.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use tokio::runtime::Runtime;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::factory::{AsyncSessionMaker, SessionOptions, repr_of};
use crate::session::AsyncSession;

/// Runs `future` to completion on `rt`, refusing to block an async runtime's worker.
///
/// Tokio refuses `block_on` on a thread that drives async tasks (it panics before polling);
/// that check is not public, so it is caught here and turned into a clear error. The future was
/// not polled then, and every future of this crate is cancel-safe, so nothing is lost. Any other
/// panic is resumed.
fn block_on<F: Future>(rt: &Rt, future: F) -> Result<F::Output> {
    let rt = rt.0.as_ref().ok_or_else(inside_async)?;
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(future))) {
        Ok(out) => Ok(out),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if message.contains("Cannot start a runtime from within a runtime") {
                Err(inside_async())
            } else {
                std::panic::resume_unwind(payload)
            }
        }
    }
}

fn inside_async() -> Error {
    Error::InvalidRequest(
        "the blocking Session was called from async code running on a tokio runtime, where \
         blocking would stall the runtime (or deadlock); use AsyncSession there, or call the \
         blocking code through tokio::task::spawn_blocking"
            .into(),
    )
}

/// The factory's runtime; dropped without blocking, so that dropping a blocking session inside
/// async code does not panic.
struct Rt(Option<Runtime>);

impl Drop for Rt {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

fn new_runtime() -> Result<Arc<Rt>> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("session-blocking")
        .enable_all()
        .build()
        .map(|rt| Arc::new(Rt(Some(rt))))
        .map_err(|e| Error::Config(format!("cannot start the blocking session runtime: {e}")))
}

/// A factory of blocking sessions (SQLAlchemy's `sessionmaker`).
#[derive(Clone)]
pub struct SessionMaker {
    maker: AsyncSessionMaker,
    rt: Arc<Rt>,
}

/// Makes a blocking session factory bound to `bind` (or unbound, to `configure` later)
/// (SQLAlchemy's `sessionmaker(engine)`).
///
/// # Errors
/// [`Error::Config`] when its runtime cannot start.
pub fn sessionmaker(bind: impl Into<Option<Engine>>) -> Result<SessionMaker> {
    Ok(SessionMaker {
        maker: AsyncSessionMaker::new(bind),
        rt: new_runtime()?,
    })
}

impl SessionMaker {
    /// Changes the options of sessions made from now on (SQLAlchemy's `configure`).
    pub fn configure(&self, options: SessionOptions) {
        self.maker.configure(options);
    }

    /// Makes a session (SQLAlchemy's `Session()`). No I/O.
    pub fn session(&self) -> Session {
        Session {
            inner: self.maker.session(),
            rt: self.rt.clone(),
        }
    }

    /// Makes a session with `options` over the factory's (`info` merged).
    pub fn session_with(&self, options: SessionOptions) -> Session {
        Session {
            inner: self.maker.session_with(options),
            rt: self.rt.clone(),
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
        let result = (|| {
            let tx = block_on(&self.rt, session.inner.begin())??;
            match body(&session) {
                Ok(value) => {
                    block_on(&self.rt, tx.commit())??;
                    Ok(value)
                }
                Err(e) => {
                    let _ = block_on(&self.rt, tx.rollback());
                    Err(e)
                }
            }
        })();
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

/// A blocking session: [`AsyncSession`]'s API without `.await`.
pub struct Session {
    inner: AsyncSession,
    rt: Arc<Rt>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Session({:?})", self.inner)
    }
}

#[session_macros::publish_signatures]
impl Session {
    /// A blocking session bound to `engine` on its own runtime (SQLAlchemy's
    /// `Session(engine)`).
    ///
    /// # Errors
    /// [`Error::Config`] when its runtime cannot start.
    pub fn new(engine: crate::Engine) -> crate::Result<Self> {
        Ok(Session {
            inner: AsyncSession::new(engine),
            rt: new_runtime()?,
        })
    }

    fn run<F: Future<Output = Result<T>>, T>(&self, future: F) -> Result<T> {
        block_on(&self.rt, future)?
    }

    /// The async session underneath.
    pub fn async_session(&self) -> &crate::AsyncSession {
        &self.inner
    }

    /// See [`AsyncSession::add`].
    ///
    /// # Errors
    /// As [`AsyncSession::add`].
    pub fn add<T: crate::Entity>(&self, obj: &crate::Obj<T>) -> crate::Result<()> {
        self.inner.add(obj)
    }

    /// See [`AsyncSession::add_all`].
    ///
    /// # Errors
    /// As [`AsyncSession::add`].
    pub fn add_all<'a, T: crate::Entity>(
        &self,
        objs: impl IntoIterator<Item = &'a crate::Obj<T>>,
    ) -> crate::Result<()> {
        self.inner.add_all(objs)
    }

    /// See [`AsyncSession::delete`].
    ///
    /// # Errors
    /// As [`AsyncSession::delete`].
    pub fn delete<T: crate::Entity>(&self, obj: &crate::Obj<T>) -> crate::Result<()> {
        self.inner.delete(obj)
    }

    /// See [`AsyncSession::flush`].
    ///
    /// # Errors
    /// As [`AsyncSession::flush`], or when called from async code.
    pub fn flush(&self) -> crate::Result<()> {
        self.run(self.inner.flush())
    }

    /// See [`AsyncSession::commit`].
    ///
    /// # Errors
    /// As [`AsyncSession::commit`], or when called from async code.
    pub fn commit(&self) -> crate::Result<()> {
        self.run(self.inner.commit())
    }

    /// See [`AsyncSession::rollback`].
    ///
    /// # Errors
    /// As [`AsyncSession::rollback`], or when called from async code.
    pub fn rollback(&self) -> crate::Result<()> {
        self.run(self.inner.rollback())
    }

    /// See [`AsyncSession::close`].
    ///
    /// # Errors
    /// When called from async code.
    pub fn close(&self) -> crate::Result<()> {
        block_on(&self.rt, self.inner.close())
    }

    /// See [`AsyncSession::get`].
    ///
    /// # Errors
    /// As [`AsyncSession::get`], or when called from async code.
    pub fn get<T: crate::Entity>(&self, key: T::Key) -> crate::Result<Option<crate::Obj<T>>> {
        self.run(self.inner.get::<T>(key))
    }

    /// See [`AsyncSession::get_one`].
    ///
    /// # Errors
    /// As [`AsyncSession::get_one`], or when called from async code.
    pub fn get_one<T: crate::Entity>(&self, key: T::Key) -> crate::Result<crate::Obj<T>> {
        self.run(self.inner.get_one::<T>(key))
    }

    /// See [`AsyncSession::refresh`].
    ///
    /// # Errors
    /// As [`AsyncSession::refresh`], or when called from async code.
    pub fn refresh<T: crate::Entity>(
        &self,
        obj: &crate::Obj<T>,
        attributes: &[&str],
    ) -> crate::Result<()> {
        self.run(self.inner.refresh(obj, attributes))
    }

    /// See [`AsyncSession::merge`].
    ///
    /// # Errors
    /// As [`AsyncSession::merge`], or when called from async code.
    pub fn merge<T: crate::Entity>(&self, source: &crate::Obj<T>) -> crate::Result<crate::Obj<T>> {
        self.run(self.inner.merge(source))
    }

    /// See [`AsyncSession::expire`].
    ///
    /// # Errors
    /// As [`AsyncSession::expire`].
    pub fn expire<T: crate::Entity>(
        &self,
        obj: &crate::Obj<T>,
        attributes: &[&str],
    ) -> crate::Result<()> {
        self.inner.expire(obj, attributes)
    }

    /// See [`AsyncSession::expunge`].
    ///
    /// # Errors
    /// As [`AsyncSession::expunge`].
    pub fn expunge<T: crate::Entity>(&self, obj: &crate::Obj<T>) -> crate::Result<()> {
        self.inner.expunge(obj)
    }

    /// See [`AsyncSession::contains`].
    pub fn contains<T: crate::Entity>(&self, obj: &crate::Obj<T>) -> bool {
        self.inner.contains(obj)
    }

    /// See [`AsyncSession::is_modified`].
    pub fn is_modified<T: crate::Entity>(&self, obj: &crate::Obj<T>) -> bool {
        self.inner.is_modified(obj)
    }

    /// See [`AsyncSession::new_objects`].
    #[proxy(attribute)]
    pub fn new_objects(&self) -> Vec<crate::AnyObj> {
        self.inner.new_objects()
    }

    /// See [`AsyncSession::dirty`].
    #[proxy(attribute)]
    pub fn dirty(&self) -> Vec<crate::AnyObj> {
        self.inner.dirty()
    }

    /// See [`AsyncSession::deleted`].
    #[proxy(attribute)]
    pub fn deleted(&self) -> Vec<crate::AnyObj> {
        self.inner.deleted()
    }

    /// See [`AsyncSession::in_transaction`].
    #[proxy(attribute)]
    pub fn in_transaction(&self) -> bool {
        self.inner.in_transaction()
    }

    /// See [`AsyncSession::info`].
    #[proxy(attribute)]
    pub fn info(&self) -> crate::Info {
        self.inner.info()
    }

    /// Runs `body` in a transaction on this session: commits on `Ok`, rolls back on `Err`
    /// (SQLAlchemy's `with session.begin():`).
    ///
    /// # Errors
    /// The body's error, or the commit's.
    pub fn transaction<T, E: From<crate::Error>>(
        &self,
        body: impl FnOnce(&Session) -> ::std::result::Result<T, E>,
    ) -> ::std::result::Result<T, E> {
        let tx = block_on(&self.rt, self.inner.begin())??;
        match body(self) {
            Ok(value) => {
                block_on(&self.rt, tx.commit())??;
                Ok(value)
            }
            Err(e) => {
                let _ = block_on(&self.rt, tx.rollback());
                Err(e)
            }
        }
    }

    /// Runs async work on this session's runtime (for raw SQL through
    /// [`AsyncSession::connection`], say).
    ///
    /// # Errors
    /// When called from async code.
    pub fn block_on<F: ::std::future::Future>(&self, future: F) -> crate::Result<F::Output> {
        block_on(&self.rt, future)
    }
}
