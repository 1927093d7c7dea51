//! Scope functions: what "the current scope" means for a scoped session.
//!
//! - [`current_task`]: the current tokio task (SQLAlchemy's `asyncio.current_task`). An entry
//!   stays until `remove()` is called inside the task: a task that forgets leaks its session
//!   (SQLAlchemy #8340). Prefer [`task_scope`] with `AsyncScopedSession::scope`.
//! - [`task_scope`]: the innermost `AsyncScopedSession::scope(future)` around the caller. The
//!   scope removes and closes its session when the future completes, fails, panics or is
//!   dropped. A tokio task outside any scope is refused (a panic that says what to do): a task
//!   spawned inside a scope does not inherit it, and nothing could remove a session made for
//!   it when it ends. Spawn such tasks with `AsyncScopedSession::spawn`, which gives each its
//!   own scope and session, as `current_task` gives each asyncio task its own. Outside any
//!   task (the future passed to `block_on`) it falls back to the current thread.
//! - [`current_thread`]: the current thread (the blocking `scoped_session`'s default).
//!
//! Entries keyed by a thread are removed when that thread exits (see [`ScopedRegistry`]).
//!
//! [`ScopedRegistry`]: crate::ScopedRegistry
//! - any closure returning a hashable key, e.g. a request id.

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::ThreadId;

/// The key a built-in scope function returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeKey {
    /// A tokio task.
    Task(tokio::task::Id),
    /// A thread (outside any task: e.g. the future passed to `block_on`).
    Thread(ThreadId),
    /// An explicit scope entered with `AsyncScopedSession::scope`.
    Scope(u64),
}

tokio::task_local! {
    static SCOPE: u64;
}

static NEXT_SCOPE: AtomicU64 = AtomicU64::new(1);

/// The current tokio task; the current thread outside a task.
pub fn current_task() -> ScopeKey {
    match tokio::task::try_id() {
        Some(id) => ScopeKey::Task(id),
        None => ScopeKey::Thread(std::thread::current().id()),
    }
}

/// Why [`task_scope`] refuses a task outside any scope.
pub const TASK_OUTSIDE_SCOPE: &str = "task_scope: this tokio task runs outside any \
     AsyncScopedSession::scope (a task spawned inside a scope does not inherit it), and a \
     session made for it would never be removed; spawn it with `scoped.spawn(future)` (its own \
     scope and session, closed when it ends), or run its body inside `scoped.scope(...)`";

/// The innermost explicit scope around the caller; the current thread outside any task.
///
/// # Panics
/// With [`TASK_OUTSIDE_SCOPE`] in a tokio task that runs outside any scope (e.g. one made by
/// `tokio::spawn` inside a scope): use `AsyncScopedSession::spawn` for such tasks.
pub fn task_scope() -> ScopeKey {
    match SCOPE.try_with(|id| *id) {
        Ok(id) => ScopeKey::Scope(id),
        Err(_) if tokio::task::try_id().is_some() => panic!("{TASK_OUTSIDE_SCOPE}"),
        Err(_) => current_thread(),
    }
}

/// The current thread.
pub fn current_thread() -> ScopeKey {
    ScopeKey::Thread(std::thread::current().id())
}

/// Runs `future` inside a new explicit scope.
pub(crate) async fn enter<F: std::future::Future>(future: F) -> F::Output {
    let id = NEXT_SCOPE.fetch_add(1, Ordering::Relaxed);
    SCOPE.scope(id, future).await
}
