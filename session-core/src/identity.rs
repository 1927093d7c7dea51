//! The identity map: one live object per (entity, primary key) in a session (sync state).
//!
//! Like SQLAlchemy's, it holds objects weakly: an object nobody uses any more leaves it (a
//! later `get` loads it again), so streaming or paging through many rows keeps memory bounded.
//! Objects with unflushed state are held strongly elsewhere until it is flushed and committed:
//! pending and deleted ones in the session's lists, changed ones in its dirty list, flushed
//! ones in the transaction's bookkeeping.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Weak};

use crate::entity::Entity;
use crate::object::{AnyObj, Cell, ErasedCell};

/// Objects by entity type and key, held weakly.
#[derive(Default)]
pub(crate) struct IdentityMap {
    tables: HashMap<TypeId, Box<dyn ErasedTable>>,
}

trait ErasedTable: Send + Sync {
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn objects(&self, out: &mut Vec<AnyObj>);
    fn len(&self) -> usize;
}

struct Typed<T: Entity> {
    map: HashMap<T::Key, Weak<Cell<T>>>,
    /// Sweep dead entries when the map grows past this.
    sweep_at: usize,
}

impl<T: Entity> Typed<T> {
    fn new() -> Self {
        Typed {
            map: HashMap::new(),
            sweep_at: 1024,
        }
    }
}

impl<T: Entity> ErasedTable for Typed<T> {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn objects(&self, out: &mut Vec<AnyObj>) {
        out.extend(
            self.map
                .values()
                .filter_map(Weak::upgrade)
                .map(|cell| AnyObj {
                    cell: cell as Arc<dyn ErasedCell>,
                }),
        );
    }

    fn len(&self) -> usize {
        self.map.values().filter(|w| w.strong_count() > 0).count()
    }
}

impl IdentityMap {
    fn typed<T: Entity>(&self) -> Option<&Typed<T>> {
        self.tables
            .get(&TypeId::of::<T>())
            .and_then(|t| t.as_any().downcast_ref::<Typed<T>>())
    }

    fn typed_mut<T: Entity>(&mut self) -> &mut Typed<T> {
        let table = self
            .tables
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Box::new(Typed::<T>::new()));
        match table.as_any_mut().downcast_mut::<Typed<T>>() {
            Some(typed) => typed,
            // The entry for TypeId::of::<T>() is always a Typed<T>.
            None => unreachable!("identity map entry of the wrong type"),
        }
    }

    /// Makes room for `additional` objects of `T` (before loading a result).
    pub(crate) fn reserve<T: Entity>(&mut self, additional: usize) {
        self.typed_mut::<T>().map.reserve(additional);
    }

    /// True when the map may hold an object of `T`.
    pub(crate) fn holds<T: Entity>(&self) -> bool {
        self.typed::<T>().is_some_and(|t| !t.map.is_empty())
    }

    pub(crate) fn get<T: Entity>(&self, key: &T::Key) -> Option<Arc<Cell<T>>> {
        self.typed::<T>()?.map.get(key)?.upgrade()
    }

    /// Inserts `cell` under `key`; returns the live object already there under that key, if
    /// it is another one.
    pub(crate) fn insert<T: Entity>(
        &mut self,
        key: T::Key,
        cell: Arc<Cell<T>>,
    ) -> Option<Arc<Cell<T>>> {
        let typed = self.typed_mut::<T>();
        if let Some(existing) = typed.map.get(&key).and_then(Weak::upgrade) {
            if !Arc::ptr_eq(&existing, &cell) {
                return Some(existing);
            }
            return None;
        }
        typed.map.insert(key, Arc::downgrade(&cell));
        if typed.map.len() >= typed.sweep_at {
            typed.map.retain(|_, w| w.strong_count() > 0);
            typed.sweep_at = (typed.map.len() * 2).max(1024);
        }
        None
    }

    /// Removes the entry for `key` if it is `cell`.
    pub(crate) fn remove<T: Entity>(&mut self, key: &T::Key, cell: &Arc<Cell<T>>) {
        if let Some(typed) = self
            .tables
            .get_mut(&TypeId::of::<T>())
            .and_then(|t| t.as_any_mut().downcast_mut::<Typed<T>>())
        {
            if typed
                .map
                .get(key)
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(cell)))
            {
                typed.map.remove(key);
            }
        }
    }

    pub(crate) fn objects(&self) -> Vec<AnyObj> {
        let mut out = Vec::new();
        for table in self.tables.values() {
            table.objects(&mut out);
        }
        out
    }

    pub(crate) fn len(&self) -> usize {
        self.tables.values().map(|t| t.len()).sum()
    }

    pub(crate) fn clear(&mut self) -> Vec<AnyObj> {
        let all = self.objects();
        self.tables.clear();
        all
    }
}
