//! The mapped-object model, without I/O: the [`Entity`] trait and the static table description
//! it carries (`entity`), the shared object handle [`Obj`] with its state and guards
//! (`object`), and the relationship containers (`relationship`). The three refer to each other
//! by nature (an entity's relationships hold handles of other entities; a handle holds an
//! entity), so they are one module; nothing here knows the identity map, the connection or the
//! SQL that persists objects: those sit above and reach an object's type through its
//! [`mapper`](crate::mapper) handle.

pub(crate) mod backref;
mod entity;
mod object;
mod relationship;
mod secondary;
mod types;
mod xid;

pub use backref::{BackPopulates, ManyBack, ParentSide};
pub use entity::{Column, Entity, ForeignKey, Index, OwnedParam, Table, VersionCounter};
pub use object::{AnyObj, Obj, ObjectState, Ref, RefMut, WeakObj};
pub(crate) use object::{
    Cell, DirtySink, ErasedCell, check_none_held, held_by_this_thread, object_guards_held, same_row,
};
#[doc(hidden)]
pub use object::{TrackedBytes, tracked_bytes};
pub use relationship::{
    CascadeKind, Cascades, Change, Collection, Dependent, DependentFns, Link, Reference,
};
pub(crate) use secondary::{Before, KeysFn, keys_array};
pub use secondary::{Secondary, SecondaryFn};
pub(crate) use types::is_array_type;
pub use types::{ArrayElement, ColumnType, EnumType};
pub use xid::Xid;
