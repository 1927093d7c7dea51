//! Many-to-many relationships through a link table (SQLAlchemy's
//! `relationship(secondary=...)`), as a flush sees them: for one object, which objects its
//! collection holds now and held when it was last loaded or flushed. The flush turns the
//! difference into link-row INSERTs and DELETEs (`flush::links`), one statement per link table
//! and operation.

use std::fmt;

use crate::error::{Error, Result};
use crate::model::{AnyObj, Entity, Obj, OwnedParam, Table};

/// What an object's many-to-many collection held before the changes a flush writes.
#[derive(Debug)]
pub(crate) enum Before {
    /// The object has no row yet: every object in the collection is a new link.
    Nothing,
    /// These objects (as last loaded or flushed).
    Known(Vec<AnyObj>),
    /// Not known: the collection was replaced while it was not loaded. Its link rows are all
    /// deleted, then the collection's written.
    Replaced,
}

/// The array parameter of the keys of `objs` (objects of one entity type with a one-column
/// key): the values a link column takes.
pub(crate) type KeysFn = fn(&[AnyObj]) -> Result<OwnedParam>;

/// One many-to-many relationship of one object (made by the mapping's
/// [`Entity::secondaries`]): the link table, the columns that hold the two sides' keys, and
/// the collection now and before.
pub struct Secondary {
    pub(crate) owner: AnyObj,
    /// The link table, and its entity type (for the bind it is written to).
    pub(crate) table: &'static Table,
    pub(crate) link_type: std::any::TypeId,
    /// Index (in `table.columns`) of the column holding the owner's key.
    pub(crate) owner_column: usize,
    /// Index of the column holding the other side's key.
    pub(crate) other_column: usize,
    /// The collection's objects, `None` when not loaded.
    pub(crate) now: Option<Vec<AnyObj>>,
    pub(crate) before: Before,
    pub(crate) owner_keys: KeysFn,
    pub(crate) other_keys: KeysFn,
    /// `passive_deletes = true`: deleting the owner leaves its rows to the database.
    pub(crate) passive_deletes: bool,
}

impl fmt::Debug for Secondary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secondary")
            .field("owner", &self.owner)
            .field("table", &self.table.name)
            .finish()
    }
}

/// How [`Secondary::new`] reads the owner's collection (`None` when not loaded).
pub type SecondaryFn<P, C> = fn(&P) -> Option<Vec<Obj<C>>>;

impl Secondary {
    /// The many-to-many collection of `owner` read by `collection`, through the link table
    /// `L`, whose column `owner_column` holds the owner's key and `other_column` the key of
    /// the objects in the collection; `passive_deletes` leaves the rows of a deleted owner to
    /// the database's `ON DELETE CASCADE`.
    pub fn new<P: Entity, C: Entity, L: Entity>(
        owner: &Obj<P>,
        (owner_column, other_column): (usize, usize),
        passive_deletes: bool,
        collection: SecondaryFn<P, C>,
    ) -> Secondary {
        let has_row = owner.cell.meta().has_row();
        let (now, before) = {
            let data = owner.cell.data.read_recursive();
            let now = collection(&data.value);
            let before = if !has_row {
                Before::Nothing
            } else {
                match data.committed.as_deref() {
                    // Not changed since it was loaded or flushed.
                    None => Before::Known(now.iter().flatten().map(Obj::erase).collect()),
                    Some(image) => match collection(image) {
                        Some(then) => Before::Known(then.iter().map(Obj::erase).collect()),
                        None if now.is_some() => Before::Replaced,
                        None => Before::Known(Vec::new()),
                    },
                }
            };
            (now, before)
        };
        Secondary {
            owner: owner.erase(),
            table: L::TABLE,
            link_type: std::any::TypeId::of::<L>(),
            owner_column,
            other_column,
            now: now.map(|c| c.iter().map(Obj::erase).collect()),
            before,
            owner_keys: keys_array::<P>,
            other_keys: keys_array::<C>,
            passive_deletes,
        }
    }
}

/// The keys of `objs` (of type `T`) as one array parameter.
pub(crate) fn keys_array<T: Entity>(objs: &[AnyObj]) -> Result<OwnedParam> {
    let keys: Vec<T::Key> = objs
        .iter()
        .filter_map(AnyObj::downcast::<T>)
        .map(|o| o.peek(Entity::key))
        .collect();
    let mut arrays = T::key_arrays(&keys);
    if arrays.len() != 1 {
        return Err(Error::InvalidRequest(format!(
            "a relationship to {} written by key needs a one-column primary key whose values \
             `Entity::key_arrays` gives as one array (a hand-written Entity impl must \
             implement it)",
            T::TABLE.entity
        )));
    }
    Ok(arrays.remove(0))
}
