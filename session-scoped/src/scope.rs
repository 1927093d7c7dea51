//! Scope functions: what "the current scope" means for a scoped session.
//!
//! - [`current_task`]: the current tokio task (SQLAlchemy's `asyncio.current_task`). An entry
//!   stays until `remove()` is called inside the task: a task that forgets leaks its session
//!   (SQLAlchemy #8340). Prefer [`task_scope`] with `AsyncScopedSession::scope`.
//! - [`task_scope`]: the innermost `AsyncScopedSession::scope(future)` around the caller,
//!   falling back to the current task outside one. The scope removes and closes its session
//!   when the future completes, fails, panics or is dropped.
//! - [`current_thread`]: the current thread (the blocking `scoped_session`'s default).
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

/// The innermost explicit scope around the caller; [`current_task`] outside one.
pub fn task_scope() -> ScopeKey {
    SCOPE
        .try_with(|id| ScopeKey::Scope(*id))
        .unwrap_or_else(|_| current_task())
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
