//! [`AnyObj`], a type-erased object handle, and [`ErasedCell`], what the session needs of an
//! object without knowing its type.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::{Arc, MutexGuard};

use super::{Cell, Meta, Obj, ObjectState};
use crate::model::{Entity, Link, Table};

/// A type-erased object handle, as the session's collections (`new`, `dirty`, `deleted`,
/// `identity_map`, iteration) return them. [`AnyObj::downcast`] gives the typed handle back.
#[derive(Clone)]
pub struct AnyObj {
    pub(crate) cell: Arc<dyn ErasedCell>,
}

impl AnyObj {
    /// The typed handle, when the object is a `T`.
    pub fn downcast<T: Entity>(&self) -> Option<Obj<T>> {
        self.cell
            .clone()
            .into_any()
            .downcast::<Cell<T>>()
            .ok()
            .map(Obj::from_cell)
    }

    /// The mapped table of the object.
    pub fn table(&self) -> &'static Table {
        self.cell.table()
    }

    /// The object's state.
    pub fn state(&self) -> ObjectState {
        self.cell.status()
    }

    /// True when both handles are the same object.
    pub fn ptr_eq(&self, other: &AnyObj) -> bool {
        self.cell.object_id() == other.cell.object_id()
    }

    /// True when this is the object `obj`.
    pub fn is<T: Entity>(&self, obj: &Obj<T>) -> bool {
        self.cell.object_id() == obj.cell.id
    }

    /// The object's session-side state.
    pub(crate) fn meta(&self) -> MutexGuard<'_, Meta> {
        self.cell.meta_lock()
    }

    pub(crate) fn id(&self) -> u64 {
        self.cell.object_id()
    }
}

impl fmt::Debug for AnyObj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.cell.describe())
    }
}

/// What the session needs of an object without knowing its type.
pub(crate) trait ErasedCell: Send + Sync + 'static {
    fn object_id(&self) -> u64;
    fn entity_type(&self) -> TypeId;
    fn table(&self) -> &'static Table;
    fn describe(&self) -> String;
    fn status(&self) -> ObjectState;
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
    /// The type-independent part of the state.
    fn meta_lock(&self) -> MutexGuard<'_, Meta>;
    /// Expires the given columns (all, and the relationships, when `None`).
    fn expire(&self, columns: Option<&[usize]>);
    /// True when a column or a loaded relationship differs from the row image.
    fn has_changes(&self) -> bool;
    /// A flush looked at the object: its changes are written (the row image is settled) and
    /// it is no longer touched.
    fn flushed(&self);
    /// Becomes transient again: drops the key image (rollback of an insert).
    fn make_transient(&self);
    /// Sets every relationship back to "not loaded" (breaks object cycles after close).
    fn unload_relations(&self);
    /// Visits the object's relationship links.
    fn relations(self: Arc<Self>, visit: &mut dyn FnMut(Link));
    /// Visits the object's one-to-many relationships, for deleting it.
    fn dependents(self: Arc<Self>, visit: &mut dyn FnMut(crate::model::Dependent));
    /// Becomes the merge of `source` (an object of the same type): its columns, and its
    /// relationships as [`Entity::merge_relations`] says; `fresh` for a new copy.
    fn merge_from(
        self: Arc<Self>,
        source: &AnyObj,
        fresh: bool,
        map: &dyn Fn(&AnyObj) -> Option<AnyObj>,
    ) -> crate::Result<()>;
    /// Visits the objects its relationships with cascade `kind` hold.
    fn cascade_targets(self: Arc<Self>, kind: crate::CascadeKind, visit: &mut dyn FnMut(AnyObj));
    /// Visits the object's many-to-many relationships, for their link rows.
    fn secondaries(self: Arc<Self>, visit: &mut dyn FnMut(crate::model::Secondary));
    /// The per-type operations of the object's entity (opaque here: see `crate::mapper`).
    fn mapper_handle(&self) -> &'static (dyn Any + Send + Sync);
}

impl<T: Entity> Cell<T> {
    /// The value for writing, unless this thread holds a guard of the object: the session
    /// calls that cannot fail (`close()`, `expire_all()`) never wait on their own caller; they
    /// leave that object as it is and say so in the log.
    fn data_unless_held(
        &self,
        what: &'static str,
    ) -> Option<parking_lot::RwLockWriteGuard<'_, super::Data<T>>> {
        if super::held_by_this_thread(self.id).is_some() {
            tracing::warn!(target: "session_core::session", object = T::TABLE.entity, what,
                "an object guard held by the caller kept the session from updating the object; \
                 drop guards before calling the session");
            return None;
        }
        Some(self.data.write())
    }
}

impl<T: Entity> ErasedCell for Cell<T> {
    fn object_id(&self) -> u64 {
        self.id
    }

    fn entity_type(&self) -> TypeId {
        TypeId::of::<T>()
    }

    fn table(&self) -> &'static Table {
        T::TABLE
    }

    fn describe(&self) -> String {
        Cell::describe(self)
    }

    fn status(&self) -> ObjectState {
        Cell::status(self)
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn meta_lock(&self) -> MutexGuard<'_, Meta> {
        self.meta()
    }

    fn expire(&self, columns: Option<&[usize]>) {
        let Some(mut data) = self.data_unless_held("expire") else {
            return;
        };
        data.expire(columns);
        drop(data);
        if columns.is_none() {
            self.meta().touched = false;
        }
    }

    fn has_changes(&self) -> bool {
        self.data.read_recursive().has_changes()
    }

    fn flushed(&self) {
        self.data.write().flushed();
        self.meta().touched = false;
    }

    fn make_transient(&self) {
        if let Some(mut data) = self.data_unless_held("make_transient") {
            data.committed = None;
            data.expired.clear_all();
        }
        let mut meta = self.meta();
        *meta = Meta::default();
    }

    fn unload_relations(&self) {
        let Some(mut data) = self.data_unless_held("unload_relations") else {
            return;
        };
        data.value.unload_relations();
        if let Some(image) = data.committed.as_mut() {
            image.unload_relations();
        }
    }

    fn relations(self: Arc<Self>, visit: &mut dyn FnMut(Link)) {
        T::relations(&Obj::from_cell(self), visit);
    }

    fn dependents(self: Arc<Self>, visit: &mut dyn FnMut(crate::model::Dependent)) {
        T::dependents(&Obj::from_cell(self), visit);
    }

    fn cascade_targets(self: Arc<Self>, kind: crate::CascadeKind, visit: &mut dyn FnMut(AnyObj)) {
        T::cascade_targets(&Obj::from_cell(self), kind, visit);
    }

    fn merge_from(
        self: Arc<Self>,
        source: &AnyObj,
        fresh: bool,
        map: &dyn Fn(&AnyObj) -> Option<AnyObj>,
    ) -> crate::Result<()> {
        let Some(source) = source.downcast::<T>() else {
            return Ok(());
        };
        let target = Obj::from_cell(self);
        if target.ptr_eq(&source) {
            return Ok(());
        }
        let value = source.peek(T::clone);
        let mut guard = target.write()?;
        let before = std::mem::replace(&mut *guard, value);
        T::merge_relations(&mut guard, before, fresh, map);
        Ok(())
    }

    fn secondaries(self: Arc<Self>, visit: &mut dyn FnMut(crate::model::Secondary)) {
        T::secondaries(&Obj::from_cell(self), visit);
    }

    fn mapper_handle(&self) -> &'static (dyn Any + Send + Sync) {
        T::__mapper()
    }
}
