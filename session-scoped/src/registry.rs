//! [`ScopedRegistry`]: one value per scope key (SQLAlchemy's `util.ScopedRegistry`), and
//! [`ThreadLocalRegistry`] (one value per thread). Sync state: the lock is held for a map
//! operation only, never across an `.await`, and the create function runs outside it.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::ThreadId;

type CreateFn<T> = Box<dyn Fn() -> T + Send + Sync>;
type ScopeFn<K> = Box<dyn Fn() -> K + Send + Sync>;

/// One value per scope: `call()` returns the current scope's value, making it with the create
/// function the first time (SQLAlchemy's `ScopedRegistry(createfunc, scopefunc)`).
///
/// The scope function is called on every access, so it must be cheap and return the same key
/// for as long as the scope lasts.
pub struct ScopedRegistry<T, K> {
    create: CreateFn<T>,
    scope: ScopeFn<K>,
    map: Mutex<HashMap<K, Arc<T>>>,
}

impl<T, K: Hash + Eq> ScopedRegistry<T, K> {
    /// A registry making values with `create`, keyed by `scope`.
    pub fn new(
        create: impl Fn() -> T + Send + Sync + 'static,
        scope: impl Fn() -> K + Send + Sync + 'static,
    ) -> Self {
        ScopedRegistry {
            create: Box::new(create),
            scope: Box::new(scope),
            map: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<K, Arc<T>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
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
        self.map().entry(key).or_insert(made).clone()
    }

    /// The current scope's value, if there is one.
    pub fn get(&self) -> Option<Arc<T>> {
        self.map().get(&self.key()).cloned()
    }

    /// True when the current scope has a value.
    pub fn has(&self) -> bool {
        self.map().contains_key(&self.key())
    }

    /// Sets the current scope's value.
    pub fn set(&self, value: T) -> Arc<T> {
        let value = Arc::new(value);
        self.map().insert(self.key(), value.clone());
        value
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
        let n = self.map.lock().map(|m| m.len()).unwrap_or_default();
        write!(f, "ScopedRegistry({n} scopes)")
    }
}

/// One value per thread (SQLAlchemy's `ThreadLocalRegistry`): a [`ScopedRegistry`] keyed by the
/// current thread. Call [`ScopedRegistry::clear`] before a pooled thread moves on to other work.
pub type ThreadLocalRegistry<T> = ScopedRegistry<T, ThreadId>;

impl<T> ScopedRegistry<T, ThreadId> {
    /// A registry keyed by the current thread.
    pub fn thread_local(create: impl Fn() -> T + Send + Sync + 'static) -> Self {
        ScopedRegistry::new(create, || std::thread::current().id())
    }
}
