//! The identity map: one live object per (entity, primary key) in a session (sync state).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use crate::entity::Entity;
use crate::object::{AnyObj, Cell, ErasedCell};

/// Objects by entity type and key. Holds them strongly until they are expunged or the session
/// closes.
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

struct Typed<T: Entity>(HashMap<T::Key, Arc<Cell<T>>>);

impl<T: Entity> ErasedTable for Typed<T> {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn objects(&self, out: &mut Vec<AnyObj>) {
        out.extend(self.0.values().map(|cell| AnyObj {
            cell: cell.clone() as Arc<dyn ErasedCell>,
        }));
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

impl IdentityMap {
    fn typed<T: Entity>(&self) -> Option<&HashMap<T::Key, Arc<Cell<T>>>> {
        self.tables
            .get(&TypeId::of::<T>())
            .and_then(|t| t.as_any().downcast_ref::<Typed<T>>())
            .map(|t| &t.0)
    }

    fn typed_mut<T: Entity>(&mut self) -> &mut HashMap<T::Key, Arc<Cell<T>>> {
        let table = self
            .tables
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Box::new(Typed::<T>(HashMap::new())));
        match table.as_any_mut().downcast_mut::<Typed<T>>() {
            Some(typed) => &mut typed.0,
            // The entry for TypeId::of::<T>() is always a Typed<T>.
            None => unreachable!("identity map entry of the wrong type"),
        }
    }

    pub(crate) fn get<T: Entity>(&self, key: &T::Key) -> Option<Arc<Cell<T>>> {
        self.typed::<T>()?.get(key).cloned()
    }

    /// Inserts `cell` under `key`; returns the object already there under that key, if it is
    /// another one.
    pub(crate) fn insert<T: Entity>(
        &mut self,
        key: T::Key,
        cell: Arc<Cell<T>>,
    ) -> Option<Arc<Cell<T>>> {
        let map = self.typed_mut::<T>();
        match map.get(&key) {
            Some(existing) if !Arc::ptr_eq(existing, &cell) => Some(existing.clone()),
            _ => {
                map.insert(key, cell);
                None
            }
        }
    }

    /// Removes the entry for `key` if it is `cell`.
    pub(crate) fn remove<T: Entity>(&mut self, key: &T::Key, cell: &Arc<Cell<T>>) {
        if let Some(map) = self
            .tables
            .get_mut(&TypeId::of::<T>())
            .and_then(|t| t.as_any_mut().downcast_mut::<Typed<T>>())
        {
            if map.0.get(key).is_some_and(|c| Arc::ptr_eq(c, cell)) {
                map.0.remove(key);
            }
        }
    }

    pub(crate) fn objects(&self) -> Vec<AnyObj> {
        let mut out = Vec::with_capacity(self.len());
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
