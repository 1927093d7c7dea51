//! [`ScopedRegistry`]: one value per scope key (SQLAlchemy's `util.ScopedRegistry`), and
//! [`ThreadLocalRegistry`] (one value per thread). Sync state: the lock is held for a map
//! operation only, never across an `.await`, and the create function runs outside it.
//!
//! An entry keyed by the thread that made it (a [`ThreadId`], or [`ScopeKey::Thread`] from
//! [`scope::current_thread`](crate::scope::current_thread) and the fallbacks of the task scope
//! functions) is removed when that thread exits, as Python's `threading.local` releases a
//! `ThreadLocalRegistry` value: a per-thread destructor (a `thread_local!` value with a `Drop`)
//! removes it from every registry that made one on that thread.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::ThreadId;

use crate::scope::ScopeKey;

type CreateFn<T> = Box<dyn Fn() -> T + Send + Sync>;
type ScopeFn<K> = Box<dyn Fn() -> K + Send + Sync>;

/// The entries, shared with the exit hooks of the threads that made thread-keyed ones.
struct Map<K, T>(Mutex<HashMap<K, Arc<T>>>);

impl<K, T> Map<K, T> {
    fn lock(&self) -> MutexGuard<'_, HashMap<K, Arc<T>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One value per scope: `call()` returns the current scope's value, making it with the create
/// function the first time (SQLAlchemy's `ScopedRegistry(createfunc, scopefunc)`).
///
/// The scope function is called on every access, so it must be cheap and return the same key
/// for as long as the scope lasts. Entries keyed by the current thread are removed when the
/// thread exits (see the module docs); every other entry stays until it is cleared.
pub struct ScopedRegistry<T, K> {
    create: CreateFn<T>,
    scope: ScopeFn<K>,
    map: Arc<Map<K, T>>,
}

impl<T: 'static, K: Hash + Eq + 'static> ScopedRegistry<T, K> {
    /// A registry making values with `create`, keyed by `scope`.
    pub fn new(
        create: impl Fn() -> T + Send + Sync + 'static,
        scope: impl Fn() -> K + Send + Sync + 'static,
    ) -> Self {
        ScopedRegistry {
            create: Box::new(create),
            scope: Box::new(scope),
            map: Arc::new(Map(Mutex::new(HashMap::new()))),
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<K, Arc<T>>> {
        self.map.lock()
    }

    /// Stores `value` under `key` unless it has one (`replace` false) and returns the stored
    /// value; arranges the removal at thread exit when `key` is the current thread's.
    fn store(&self, key: K, value: Arc<T>, replace: bool) -> Arc<T> {
        let bound = thread_key::<K>(std::thread::current().id()).is_some_and(|k| k == key);
        let stored = {
            let mut map = self.map();
            if replace {
                map.insert(key, value.clone());
                value
            } else {
                map.entry(key).or_insert(value).clone()
            }
        };
        if bound {
            let weak = Arc::downgrade(&self.map);
            exit_hooks::register(weak);
        }
        stored
    }

    /// The current scope's key.
    pub fn key(&self) -> K {
        (self.scope)()
    }

    /// The current scope's value, created if missing (under a race the first stored value
    /// wins, as with SQLAlchemy's `setdefault`).
    pub fn call(&self) -> Arc<T> {
        let key = self.key();
        if let Some(value) = self.map().get(&key) {
            return value.clone();
        }
        let made = Arc::new((self.create)());
        self.store(key, made, false)
    }

    /// The current scope's value, if there is one.
    pub fn get(&self) -> Option<Arc<T>> {
        self.map().get(&self.key()).cloned()
    }

    /// The value of scope `key`, if there is one.
    pub fn get_key(&self, key: &K) -> Option<Arc<T>> {
        self.map().get(key).cloned()
    }

    /// True when the current scope has a value.
    pub fn has(&self) -> bool {
        self.map().contains_key(&self.key())
    }

    /// Sets the current scope's value.
    pub fn set(&self, value: T) -> Arc<T> {
        self.store(self.key(), Arc::new(value), true)
    }

    /// Removes and returns the current scope's value (nothing when there is none).
    pub fn clear(&self) -> Option<Arc<T>> {
        let key = self.key();
        self.map().remove(&key)
    }

    /// Removes and returns the value of scope `key`.
    pub fn remove_key(&self, key: &K) -> Option<Arc<T>> {
        self.map().remove(key)
    }

    /// Removes and returns the value of scope `key` when it is not `kept` (a value seen
    /// earlier, compared by identity): how a scope removes only a value made during it.
    pub fn remove_key_unless(&self, key: &K, kept: Option<&Weak<T>>) -> Option<Arc<T>> {
        let mut map = self.map();
        let same = match (map.get(key), kept) {
            (Some(value), Some(kept)) => std::ptr::eq(Arc::as_ptr(value), kept.as_ptr()),
            _ => false,
        };
        if same { None } else { map.remove(key) }
    }

    /// Number of scopes holding a value (for leak checks: a task-keyed registry whose tasks
    /// never called `remove()` keeps their entries).
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// True when no scope holds a value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T, K> fmt::Debug for ScopedRegistry<T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.map.0.lock().map(|m| m.len()).unwrap_or_default();
        write!(f, "ScopedRegistry({n} scopes)")
    }
}

/// One value per thread (SQLAlchemy's `ThreadLocalRegistry`): a [`ScopedRegistry`] keyed by the
/// current thread. A thread's value is dropped when the thread exits (on that thread, by its
/// thread-local destructors); call [`ScopedRegistry::clear`] before a pooled thread moves on to
/// other work.
pub type ThreadLocalRegistry<T> = ScopedRegistry<T, ThreadId>;

impl<T: 'static> ScopedRegistry<T, ThreadId> {
    /// A registry keyed by the current thread.
    pub fn thread_local(create: impl Fn() -> T + Send + Sync + 'static) -> Self {
        ScopedRegistry::new(create, || std::thread::current().id())
    }
}

/// The key of type `K` that means "thread `thread`", when `K` has one: the thread id itself, or
/// [`ScopeKey::Thread`].
fn thread_key<K: 'static>(thread: ThreadId) -> Option<K> {
    let key: Box<dyn Any> = if TypeId::of::<K>() == TypeId::of::<ThreadId>() {
        Box::new(thread)
    } else if TypeId::of::<K>() == TypeId::of::<ScopeKey>() {
        Box::new(ScopeKey::Thread(thread))
    } else {
        return None;
    };
    key.downcast::<K>().ok().map(|k| *k)
}

/// What a thread's exit hook does to a registry: remove that thread's entry.
trait ThreadExit {
    fn thread_exited(&self, thread: ThreadId);
}

impl<K: Hash + Eq + 'static, T: 'static> ThreadExit for Map<K, T> {
    fn thread_exited(&self, thread: ThreadId) {
        let Some(key) = thread_key::<K>(thread) else {
            return;
        };
        let removed = self.lock().remove(&key);
        // Dropped outside the lock.
        drop(removed);
    }
}

mod exit_hooks {
    use super::*;

    /// The registries holding an entry for this thread; dropped when the thread exits.
    struct Hooks {
        thread: ThreadId,
        registries: Vec<Weak<dyn ThreadExit>>,
    }

    impl Drop for Hooks {
        fn drop(&mut self) {
            for registry in self.registries.drain(..) {
                if let Some(registry) = registry.upgrade() {
                    // A panic must not escape a thread-local destructor (that aborts).
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        registry.thread_exited(self.thread)
                    }));
                }
            }
        }
    }

    thread_local! {
        static HOOKS: RefCell<Hooks> = RefCell::new(Hooks {
            thread: std::thread::current().id(),
            registries: Vec::new(),
        });
    }

    /// Arranges for `registry` to lose this thread's entry when the thread exits (once per
    /// registry and thread; hooks of dropped registries are pruned).
    pub(super) fn register(registry: Weak<dyn ThreadExit>) {
        // During thread teardown the hooks may be gone already: then the entry stays, as it
        // would without this mechanism.
        let _ = HOOKS.try_with(|hooks| {
            let mut hooks = hooks.borrow_mut();
            hooks.registries.retain(|r| r.strong_count() > 0);
            if !hooks.registries.iter().any(|r| Weak::ptr_eq(r, &registry)) {
                hooks.registries.push(registry);
            }
        });
    }
}
