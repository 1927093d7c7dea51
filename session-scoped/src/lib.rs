//! Scoped sessions: [`ScopedRegistry`], scope functions, [`AsyncScopedSession`]
//! (SQLAlchemy's `async_scoped_session`) and the blocking [`ScopedSession`]
//! (`scoped_session`).
//!
//! ```no_run
//! use session_core::{async_sessionmaker, create_async_engine};
//! use session_scoped::{async_scoped_session, scope};
//!
//! # async fn demo() -> session_core::Result<()> {
//! let engine = create_async_engine("postgresql://scott:tiger@localhost/test")?;
//! let factory = async_sessionmaker(engine).expire_on_commit(false);
//! let scoped = async_scoped_session(factory, scope::task_scope);
//! scoped
//!     .scope(async {
//!         let session = scoped.call(); // this scope's session, made on first use
//!         session.commit().await
//!     })
//!     .await?; // the scope's session is closed and removed here, whatever happened
//! assert_eq!(scoped.registered(), 0);
//! # Ok(()) }
//! ```

mod registry;
pub mod scope;
mod scoped;

pub use registry::{ScopedRegistry, ThreadLocalRegistry};
pub use scope::ScopeKey;
pub use scoped::{
    AsyncScopedSession, CONFIGURE_WARNING, Current, ScopedSession, async_scoped_session,
    scoped_session, scoped_session_with,
};
