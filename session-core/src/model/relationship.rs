//! Relationships: [`Collection`] (one-to-many, SQLAlchemy's `A.bs`), [`Reference`]
//! (many-to-one, `B.a`), and the [`Link`]s through which the unit of work cascades `add` and
//! copies a parent's key into its children's foreign key.
//!
//! A relationship is either loaded or not. Reading one that is not loaded is an
//! [`Error::NotLoaded`] that says how to load it: attribute access never does I/O.

use std::fmt;

use crate::error::{Error, Result};
use crate::model::Entity;
use crate::model::{AnyObj, Obj};

/// The objects of a one-to-many relationship (SQLAlchemy's `A.bs`).
///
/// A new object starts with an empty, loaded collection; an object loaded from the database
/// starts with an unloaded one unless the query eager-loads it.
pub struct Collection<T: Entity> {
    items: Option<Vec<Obj<T>>>,
    name: &'static str,
    /// Appends and removals since the owner's last write guard, recorded only for a
    /// relationship with `back_populates` (the derive turns it on).
    log: Option<Vec<Change<T>>>,
    /// Not loaded on purpose ([`raiseload`](crate::raiseload)): reading it says so.
    raise: bool,
}

/// One change of a tracked [`Collection`] (plumbing of `back_populates`).
#[doc(hidden)]
pub enum Change<T: Entity> {
    /// `obj` was appended.
    Added(Obj<T>),
    /// `obj` was taken out.
    Removed(Obj<T>),
}

impl<T: Entity> Collection<T> {
    /// An empty, loaded collection (for new objects).
    pub fn new() -> Self {
        Collection {
            items: Some(Vec::new()),
            name: "",
            log: None,
            raise: false,
        }
    }

    /// A loaded collection holding `items`.
    pub fn from_vec(items: Vec<Obj<T>>) -> Self {
        Collection {
            items: Some(items),
            name: "",
            log: None,
            raise: false,
        }
    }

    /// A collection not loaded yet; `name` is `Entity.field` for messages.
    pub fn unloaded(name: &'static str) -> Self {
        Collection {
            items: None,
            name,
            log: None,
            raise: false,
        }
    }

    /// A collection left unloaded by [`raiseload`](crate::raiseload): reading it is
    /// [`Error::RaiseLoad`].
    pub fn raising(name: &'static str) -> Self {
        Collection {
            raise: true,
            ..Collection::unloaded(name)
        }
    }

    /// True when loaded.
    pub fn is_loaded(&self) -> bool {
        self.items.is_some()
    }

    /// The objects.
    ///
    /// # Errors
    /// [`Error::NotLoaded`] when the collection was not loaded.
    /// [`Error::RaiseLoad`] when a [`raiseload`](crate::raiseload) option left it unloaded.
    pub fn get(&self) -> Result<&[Obj<T>]> {
        self.items
            .as_deref()
            .ok_or_else(|| not_loaded(self.name, self.raise))
    }

    /// Appends `obj`; at the next flush it is added to the session (cascade) and gets this
    /// parent's key in its foreign key.
    ///
    /// # Errors
    /// [`Error::NotLoaded`] when the collection was not loaded.
    ///
    /// With `back_populates`, `obj`'s side of the relationship points at this parent as soon
    /// as the write guard through which it was pushed is released (its reference, and its
    /// foreign key when this parent has a key), and it leaves the collection of the parent
    /// it had.
    pub fn push(&mut self, obj: Obj<T>) -> Result<()> {
        let (name, raise) = (self.name, self.raise);
        let items = self.items.as_mut().ok_or_else(|| not_loaded(name, raise))?;
        if let Some(log) = &mut self.log {
            log.push(Change::Added(obj.clone()));
        }
        items.push(obj);
        Ok(())
    }

    /// Takes `obj` out (every occurrence); returns whether it was there. At the next flush
    /// it is deleted with `cascade = "delete-orphan"`, else its foreign key is set to NULL.
    ///
    /// With `back_populates`, `obj`'s reference to this parent and its foreign key are
    /// cleared as soon as the write guard is released (a NOT NULL foreign key keeps its
    /// value until the flush decides).
    ///
    /// # Errors
    /// [`Error::NotLoaded`] when the collection was not loaded.
    pub fn remove(&mut self, obj: &Obj<T>) -> Result<bool> {
        let (name, raise) = (self.name, self.raise);
        let items = self.items.as_mut().ok_or_else(|| not_loaded(name, raise))?;
        let before = items.len();
        items.retain(|o| !o.ptr_eq(obj));
        let removed = items.len() != before;
        if let (true, Some(log)) = (removed, &mut self.log) {
            log.push(Change::Removed(obj.clone()));
        }
        Ok(removed)
    }

    /// Replaces the objects (and marks the collection loaded). With `back_populates`, the
    /// objects that left and the ones that came are synchronised as by [`Collection::remove`]
    /// and [`Collection::push`].
    pub fn set(&mut self, items: Vec<Obj<T>>) {
        if let Some(log) = &mut self.log {
            let old = self.items.as_deref().unwrap_or_default();
            for o in old.iter().filter(|o| !items.iter().any(|n| n.ptr_eq(o))) {
                log.push(Change::Removed(o.clone()));
            }
            for n in items.iter().filter(|n| !old.iter().any(|o| o.ptr_eq(n))) {
                log.push(Change::Added(n.clone()));
            }
        }
        self.items = Some(items);
    }

    /// Turns on the change log (`back_populates`); returns whether it was on already.
    #[doc(hidden)]
    pub fn __track(&mut self) -> bool {
        let was = self.log.is_some();
        if !was {
            self.log = Some(Vec::new());
        }
        was
    }

    /// The changes logged since the last call.
    #[doc(hidden)]
    pub fn __take_changes(&mut self) -> Vec<Change<T>> {
        self.log.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Appends without logging (the other side of a back-reference), unless already there;
    /// returns whether it appended. Nothing when not loaded.
    pub(crate) fn push_quiet(&mut self, obj: &Obj<T>) -> bool {
        match &mut self.items {
            Some(items) if !items.iter().any(|o| o.ptr_eq(obj)) => {
                items.push(obj.clone());
                true
            }
            _ => false,
        }
    }

    /// Takes `obj` out without logging; returns whether it was there.
    pub(crate) fn remove_quiet(&mut self, obj: &Obj<T>) -> bool {
        match &mut self.items {
            Some(items) => {
                let before = items.len();
                items.retain(|o| !o.ptr_eq(obj));
                items.len() != before
            }
            None => false,
        }
    }

    /// The objects if loaded (for the mapping's plumbing).
    pub fn loaded(&self) -> Option<&[Obj<T>]> {
        self.items.as_deref()
    }

    /// Number of objects (0 when not loaded).
    pub fn len(&self) -> usize {
        self.items.as_ref().map_or(0, Vec::len)
    }

    /// True when empty or not loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Entity> Default for Collection<T> {
    fn default() -> Self {
        Collection::new()
    }
}

impl<T: Entity> Clone for Collection<T> {
    fn clone(&self) -> Self {
        Collection {
            items: self.items.clone(),
            name: self.name,
            log: self.log.as_ref().map(|_| Vec::new()),
            raise: self.raise,
        }
    }
}

impl<T: Entity> PartialEq for Collection<T> {
    /// Same objects (by identity), in the same order.
    fn eq(&self, other: &Self) -> bool {
        self.items == other.items
    }
}

impl<T: Entity> fmt::Debug for Collection<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.items {
            Some(items) => f.debug_list().entries(items).finish(),
            None => f.write_str("<not loaded>"),
        }
    }
}

/// The object of a many-to-one relationship (SQLAlchemy's `B.a`); `None` inside for a NULL
/// foreign key.
pub struct Reference<T: Entity> {
    target: Option<Option<Obj<T>>>,
    name: &'static str,
    /// With `back_populates`: `Some(None)` while tracked and unchanged, `Some(Some(old))`
    /// once set since the owner's last write guard (`old` is what it held before).
    log: Option<Option<Option<Obj<T>>>>,
    /// Not loaded on purpose ([`raiseload`](crate::raiseload)): reading it says so.
    raise: bool,
}

impl<T: Entity> Reference<T> {
    /// A loaded reference to `obj`.
    pub fn to(obj: Obj<T>) -> Self {
        Reference {
            target: Some(Some(obj)),
            name: "",
            log: None,
            raise: false,
        }
    }

    /// A loaded, empty reference (NULL foreign key).
    pub fn none() -> Self {
        Reference {
            target: Some(None),
            name: "",
            log: None,
            raise: false,
        }
    }

    /// A reference not loaded yet; `name` is `Entity.field` for messages.
    pub fn unloaded(name: &'static str) -> Self {
        Reference {
            target: None,
            name,
            log: None,
            raise: false,
        }
    }

    /// A reference left unloaded by [`raiseload`](crate::raiseload): reading it is
    /// [`Error::RaiseLoad`].
    pub fn raising(name: &'static str) -> Self {
        Reference {
            raise: true,
            ..Reference::unloaded(name)
        }
    }

    /// True when loaded.
    pub fn is_loaded(&self) -> bool {
        self.target.is_some()
    }

    /// The referenced object.
    ///
    /// # Errors
    /// [`Error::NotLoaded`] when the reference was not loaded.
    pub fn get(&self) -> Result<Option<&Obj<T>>> {
        self.target
            .as_ref()
            .map(Option::as_ref)
            .ok_or_else(|| not_loaded(self.name, self.raise))
    }

    /// Points the reference at `obj`: at the next flush, `obj` is added (cascade) and this
    /// object's foreign key gets its key.
    ///
    /// With `back_populates`, the other side follows as soon as the write guard is released:
    /// for a many-to-one, this object joins `obj`'s loaded collection and leaves the one of
    /// the parent it had, and its foreign key takes `obj`'s key (or NULL for `None`); for a
    /// one-to-one parent side, `obj` points back here and the child it replaces lets go.
    pub fn set(&mut self, obj: Option<Obj<T>>) {
        if let Some(log @ None) = &mut self.log {
            *log = Some(self.target.clone().flatten());
        }
        self.target = Some(obj);
    }

    /// Turns on the change log (`back_populates`); returns whether it was on already.
    #[doc(hidden)]
    pub fn __track(&mut self) -> bool {
        let was = self.log.is_some();
        if !was {
            self.log = Some(None);
        }
        was
    }

    /// What the reference held before it was first set since the last call, if it was set.
    #[doc(hidden)]
    pub fn __take_change(&mut self) -> Option<Option<Obj<T>>> {
        self.log.as_mut().and_then(Option::take)
    }

    /// Sets without logging (the other side of a back-reference).
    pub(crate) fn set_quiet(&mut self, obj: Option<Obj<T>>) {
        self.target = Some(obj);
    }

    /// The object if loaded and set (for the mapping's plumbing).
    pub fn loaded(&self) -> Option<&Obj<T>> {
        self.target.as_ref().and_then(Option::as_ref)
    }
}

impl<T: Entity> Default for Reference<T> {
    fn default() -> Self {
        Reference::none()
    }
}

impl<T: Entity> Clone for Reference<T> {
    fn clone(&self) -> Self {
        Reference {
            target: self.target.clone(),
            name: self.name,
            log: self.log.as_ref().map(|_| None),
            raise: self.raise,
        }
    }
}

impl<T: Entity> PartialEq for Reference<T> {
    fn eq(&self, other: &Self) -> bool {
        self.target == other.target
    }
}

impl<T: Entity> fmt::Debug for Reference<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Some(Some(obj)) => fmt::Debug::fmt(obj, f),
            Some(None) => f.write_str("None"),
            None => f.write_str("<not loaded>"),
        }
    }
}

fn not_loaded(name: &'static str, raise: bool) -> Error {
    if raise {
        return Error::RaiseLoad {
            relationship: name.into(),
        };
    }
    Error::NotLoaded {
        relationship: if name.is_empty() {
            "the relationship".into()
        } else {
            name.into()
        },
    }
}

/// A parent/child pair found through a loaded relationship, and how to copy the parent's key
/// into the child's foreign key. Made by the mapping's [`Entity::relations`].
pub struct Link {
    pub(crate) parent: AnyObj,
    pub(crate) child: AnyObj,
    pub(crate) sync: Box<dyn Fn() + Send + Sync>,
    /// The child holds the parent's key, so it is inserted after it; false for a
    /// many-to-many pair ([`Link::cascade_only`]), whose link row comes after both.
    pub(crate) orders: bool,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("parent", &self.parent)
            .field("child", &self.child)
            .finish()
    }
}

impl Link {
    /// `child` belongs to `parent`: its foreign key (written by `set`, read by `get`, `None`
    /// for NULL) takes the parent's key (read by `key`).
    pub fn new<P: Entity, C: Entity, K: Clone + PartialEq + Send + 'static>(
        parent: &Obj<P>,
        child: &Obj<C>,
        key: fn(&P) -> K,
        set: fn(&mut C, K),
        get: fn(&C) -> Option<K>,
    ) -> Link {
        let (p, c) = (parent.clone(), child.clone());
        Link {
            parent: parent.erase(),
            child: child.erase(),
            orders: true,
            sync: Box::new(move || {
                {
                    let m = p.cell.meta();
                    if !m.has_row() || m.marked_deleted {
                        // No key yet; or a parent being deleted, whose children were set free.
                        return;
                    }
                }
                let value = key(&p.cell.data.read_recursive().value);
                // A pending child is inserted whole; one with a row is queued for an UPDATE.
                c.change(|child| {
                    if get(child).as_ref() == Some(&value) {
                        return false;
                    }
                    set(child, value);
                    true
                });
            }),
        }
    }

    /// `child` is in a many-to-many collection of `parent`: adding `parent` adds `child`
    /// (save-update cascade), and neither holds the other's key, so no insert order follows.
    pub fn cascade_only<P: Entity, C: Entity>(parent: &Obj<P>, child: &Obj<C>) -> Link {
        Link {
            parent: parent.erase(),
            child: child.erase(),
            sync: Box::new(|| {}),
            orders: false,
        }
    }

    /// Copies the parent's key into the child's foreign key, if the parent has one.
    pub(crate) fn apply(&self) {
        (self.sync)();
    }
}

/// How [`Dependent::new`] reads the parent's collection (`None` when not loaded) and key, a
/// child's foreign key, and sets it to NULL (returning whether that changed anything).
pub type DependentFns<P, C, K> = (
    fn(&P) -> Option<Vec<Obj<C>>>,
    fn(&P) -> K,
    fn(&C) -> Option<K>,
    fn(&mut C) -> bool,
);

/// A cascade that follows a relationship from an object to the objects it holds
/// (`relationship(cascade = "...")`), for [`Entity::cascade_targets`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CascadeKind {
    /// `expunge`: expunging the object expunges them.
    Expunge,
    /// `refresh-expire`: expiring or refreshing the whole object expires them.
    RefreshExpire,
    /// `merge` (SQLAlchemy's default): merging the object merges them.
    Merge,
}

/// The cascades of a one-to-many relationship that act on its children
/// (`relationship(cascade = "...")`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cascades {
    /// `delete`: deleting the parent deletes its children.
    pub delete: bool,
    /// `delete-orphan`: a child taken out of the collection is deleted (instead of getting a
    /// NULL foreign key).
    pub delete_orphan: bool,
    /// `passive_deletes = true`: children that are not in the session are left to the
    /// database's `ON DELETE` action (never loaded or updated by the session).
    pub passive_deletes: bool,
}

/// A one-to-many relationship of one parent object, as deleting that parent sees it (made by
/// the mapping's [`Entity::dependents`]): which children belong to it, and what may be done to
/// them (delete them with it, or set their foreign key to NULL).
pub struct Dependent {
    pub(crate) parent: AnyObj,
    pub(crate) child_table: &'static crate::model::Table,
    pub(crate) child_type: std::any::TypeId,
    /// Index of the child's foreign-key column in `child_table.columns`.
    pub(crate) fk_column: usize,
    /// `cascade = "delete"` on the relationship.
    pub(crate) cascade_delete: bool,
    /// `cascade = "delete-orphan"` on the relationship.
    pub(crate) delete_orphan: bool,
    /// `passive_deletes = true` on the relationship.
    pub(crate) passive_deletes: bool,
    /// The parents' keys as one array (what the children's foreign key holds).
    pub(crate) parent_keys: crate::model::KeysFn,
    /// The child type's mapper handle (to load children that are not in the session).
    pub(crate) child_mapper: &'static (dyn std::any::Any + Send + Sync),
    /// The loaded collection, `None` when not loaded.
    pub(crate) loaded: Option<Vec<AnyObj>>,
    /// Children of the collection as last loaded or flushed that it no longer holds.
    pub(crate) removed: Vec<AnyObj>,
    /// True when the child's foreign key holds this parent's key.
    pub(crate) belongs: Box<dyn Fn(&AnyObj) -> bool + Send + Sync>,
    /// True when the child's foreign key holds another parent's key (not NULL: a child taken
    /// out whose key `back_populates` already cleared is still an orphan).
    pub(crate) elsewhere: Box<dyn Fn(&AnyObj) -> bool + Send + Sync>,
    /// Sets the child's foreign key to NULL (through the session's change tracking, so the
    /// next flush UPDATEs it); only called when that column is nullable.
    pub(crate) clear: Box<dyn Fn(&AnyObj) + Send + Sync>,
}

impl fmt::Debug for Dependent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dependent")
            .field("parent", &self.parent)
            .field("child_table", &self.child_table.name)
            .field("cascade_delete", &self.cascade_delete)
            .finish()
    }
}

impl Dependent {
    /// The relationship `parent.children` (read by `collection`), whose children `C` hold
    /// the parent's key (read by `key`) in the foreign-key field `fk_field` (read by `get`;
    /// set to NULL by `clear`, which returns whether it changed anything).
    pub fn new<P: Entity, C: Entity, K: Clone + PartialEq + Send + Sync + 'static>(
        parent: &Obj<P>,
        fk_field: &'static str,
        cascades: Cascades,
        (collection, key, get, clear): DependentFns<P, C, K>,
    ) -> Dependent {
        let (parent_key, loaded, removed) = {
            let data = parent.cell.data.read_recursive();
            let loaded = collection(&data.value);
            let removed: Vec<AnyObj> = match (&loaded, data.committed.as_deref().map(collection)) {
                (Some(now), Some(Some(before))) => before
                    .iter()
                    .filter(|b| !now.iter().any(|n| n.ptr_eq(b)))
                    .map(Obj::erase)
                    .collect(),
                _ => Vec::new(),
            };
            (key(&data.value), loaded, removed)
        };
        Dependent {
            parent: parent.erase(),
            child_table: C::TABLE,
            child_type: std::any::TypeId::of::<C>(),
            fk_column: C::TABLE.column_by_field(fk_field).unwrap_or(0),
            cascade_delete: cascades.delete,
            delete_orphan: cascades.delete_orphan,
            passive_deletes: cascades.passive_deletes,
            parent_keys: crate::model::keys_array::<P>,
            child_mapper: C::__mapper(),
            loaded: loaded.map(|c| c.iter().map(Obj::erase).collect()),
            removed,
            belongs: {
                let parent_key = parent_key.clone();
                Box::new(move |child| {
                    child
                        .downcast::<C>()
                        .is_some_and(|c| c.peek(|c| get(c).as_ref() == Some(&parent_key)))
                })
            },
            elsewhere: Box::new(move |child| {
                child
                    .downcast::<C>()
                    .is_some_and(|c| c.peek(|c| get(c).is_some_and(|k| k != parent_key)))
            }),
            clear: Box::new(move |child| {
                if let Some(c) = child.downcast::<C>() {
                    c.change(clear);
                }
            }),
        }
    }
}
