//! [`Obj`]: a shared handle to one mapped object, and its state (sync; no `.await` here).
//!
//! A session keeps one live [`Obj`] per primary key (its identity map); every handle to that
//! object sees the same value. Reading goes through [`Obj::read`], changing through
//! [`Obj::write`]: both refuse an object with expired attributes with an error that says how
//! to load them, because reading a field never does I/O.

use std::any::{Any, TypeId};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;

use crate::connection::AsyncConnection;
use crate::entity::{Entity, Table};
use crate::error::{Error, Result};
use crate::flush;
use crate::identity::IdentityMap;
use crate::relationship::Link;

static NEXT_OBJECT: AtomicU64 = AtomicU64::new(1);

/// Where an object stands towards a session (SQLAlchemy's object states).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectState {
    /// Not in any session, never persisted.
    Transient,
    /// Added to a session, not flushed yet.
    Pending,
    /// In a session's identity map, with a row in the database.
    Persistent,
    /// Its DELETE was flushed; it leaves the session at commit.
    Deleted,
    /// Was persistent in a session that has since let it go (commit of a delete, expunge,
    /// close).
    Detached,
}

/// A shared handle to a mapped object of type `T`.
///
/// Cloning a handle is cheap and gives another handle to the same object. Two handles are the
/// same object when [`Obj::ptr_eq`] says so; a session returns the same object for the same key.
pub struct Obj<T: Entity> {
    pub(crate) cell: Arc<Cell<T>>,
}

pub(crate) struct Cell<T: Entity> {
    pub(crate) id: u64,
    pub(crate) state: Mutex<State<T>>,
}

pub(crate) struct State<T: Entity> {
    pub(crate) value: T,
    /// The row as last loaded or flushed, kept only once the object is written to: `None`
    /// means `value` is that image (or, before the first flush, that there is none). Loading
    /// an object so costs no copy; changing one costs one.
    pub(crate) committed: Option<Box<T>>,
    pub(crate) status: ObjectState,
    /// The session that owns the object (pending, persistent or deleted).
    pub(crate) session: Option<u64>,
    /// Expired columns (indices into `T::TABLE.columns`).
    pub(crate) expired: Expiry,
    /// A write guard was taken since the last flush (SQLAlchemy's optimistic `dirty`).
    pub(crate) modified: bool,
    /// Marked with `session.delete()`, not flushed yet.
    pub(crate) marked_deleted: bool,
    /// Its DELETE was committed: adding it again is refused until `make_transient`.
    pub(crate) was_deleted: bool,
    /// The owning session's list of written objects.
    pub(crate) sink: Option<DirtySink>,
}

/// A session's list of objects written to since its last flush.
pub(crate) type DirtySink = Arc<Mutex<Vec<AnyObj>>>;

impl<T: Entity> Obj<T> {
    /// A new transient object (SQLAlchemy: `A(data="a1")` before `session.add`).
    pub fn new(value: T) -> Self {
        Obj {
            cell: Arc::new(Cell {
                id: NEXT_OBJECT.fetch_add(1, Ordering::Relaxed),
                state: Mutex::new(State {
                    value,
                    committed: None,
                    status: ObjectState::Transient,
                    session: None,
                    expired: Expiry::default(),
                    modified: false,
                    marked_deleted: false,
                    was_deleted: false,
                    sink: None,
                }),
            }),
        }
    }

    pub(crate) fn from_cell(cell: Arc<Cell<T>>) -> Self {
        Obj { cell }
    }

    /// Reads the object.
    ///
    /// # Errors
    /// [`Error::Expired`] when any attribute is expired (after `commit()` with
    /// `expire_on_commit`, after `rollback()`, or `expire()`): load it with
    /// `session.refresh(&obj)`, or make the session with `expire_on_commit(false)`. Reading
    /// never does I/O.
    pub fn read(&self) -> Result<Ref<'_, T>> {
        let guard = self.cell.lock();
        guard.check_loaded()?;
        Ok(Ref { guard })
    }

    /// Changes the object: the session sees the change at the next flush and updates only the
    /// columns whose values differ.
    ///
    /// # Errors
    /// [`Error::Expired`], as for [`Obj::read`].
    pub fn write(&self) -> Result<RefMut<'_, T>> {
        let mut guard = self.cell.lock();
        guard.check_loaded()?;
        guard.keep_committed();
        if !guard.modified {
            guard.modified = true;
            if let Some(sink) = &guard.sink {
                // Lock order: object, then sink; the session never holds the sink's lock
                // while locking an object.
                sink.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(self.erase());
            }
        }
        Ok(RefMut { guard })
    }

    /// Runs `f` on the value as it is, without the expiry check (expired attributes hold
    /// stale values): plumbing for mapping code such as [`Entity::relations`], not a way to
    /// read data.
    pub fn peek<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.cell.lock().value)
    }

    /// Runs `f` on the value without marking the object changed (loaders filling a
    /// relationship).
    pub(crate) fn with_value<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.cell.lock().value)
    }

    /// The object's state towards its session.
    pub fn state(&self) -> ObjectState {
        self.cell.lock().status
    }

    /// The primary key, once the object is persistent (or deleted, or detached).
    pub fn key(&self) -> Option<T::Key> {
        let state = self.cell.lock();
        match state.status {
            ObjectState::Transient | ObjectState::Pending => None,
            _ => Some(state.value.key()),
        }
    }

    /// Names of the expired attributes.
    pub fn expired_attributes(&self) -> Vec<&'static str> {
        self.cell.lock().expired_names()
    }

    /// True when any attribute is expired.
    pub fn is_expired(&self) -> bool {
        self.cell.lock().expired.any()
    }

    /// True when both handles are the same object.
    pub fn ptr_eq(&self, other: &Obj<T>) -> bool {
        Arc::ptr_eq(&self.cell, &other.cell)
    }

    /// A type-erased handle, for the session's object lists.
    pub fn erase(&self) -> AnyObj {
        AnyObj {
            cell: self.cell.clone(),
        }
    }
}

impl<T: Entity> Clone for Obj<T> {
    fn clone(&self) -> Self {
        Obj {
            cell: self.cell.clone(),
        }
    }
}

impl<T: Entity> PartialEq for Obj<T> {
    fn eq(&self, other: &Self) -> bool {
        self.ptr_eq(other)
    }
}

impl<T: Entity> Eq for Obj<T> {}

impl<T: Entity> fmt::Debug for Obj<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.cell.describe())
    }
}

impl<T: Entity> Cell<T> {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `A(1)` for a persistent object, `A(transient)` / `A(pending)` before it has a key.
    pub(crate) fn describe(&self) -> String {
        let state = self.lock();
        state.describe()
    }
}

impl<T: Entity> State<T> {
    pub(crate) fn describe(&self) -> String {
        match self.status {
            ObjectState::Transient | ObjectState::Pending if self.committed.is_none() => {
                format!(
                    "{}({})",
                    T::TABLE.entity,
                    if self.status == ObjectState::Pending {
                        "pending"
                    } else {
                        "transient"
                    }
                )
            }
            _ => format!("{}({:?})", T::TABLE.entity, self.value.key()),
        }
    }

    pub(crate) fn expired_names(&self) -> Vec<&'static str> {
        T::TABLE
            .columns
            .iter()
            .enumerate()
            .filter(|(i, _)| self.expired.is(*i))
            .map(|(_, c)| c.field)
            .collect()
    }

    /// Keeps a copy of the database image before the value of a persistent object changes.
    pub(crate) fn keep_committed(&mut self) {
        if self.status == ObjectState::Persistent && self.committed.is_none() {
            self.committed = Some(Box::new(self.value.clone()));
        }
    }

    /// Sets `(column, row index)` pairs from `row` in the value and in the kept image, marks
    /// those columns loaded, and recomputes whether the object has unflushed changes (what a
    /// refresh or a synchronized UPDATE does).
    pub(crate) fn load_columns(
        &mut self,
        columns: &[(usize, usize)],
        row: &tokio_postgres::Row,
    ) -> std::result::Result<(), tokio_postgres::Error> {
        let mut committed = self.committed.take();
        let result = columns.iter().try_for_each(|&(c, at)| {
            self.value.set_column(c, row, at)?;
            match committed.as_mut() {
                Some(image) => image.set_column(c, row, at),
                None => Ok(()),
            }
        });
        self.committed = committed;
        result?;
        let loaded: Vec<usize> = columns.iter().map(|&(c, _)| c).collect();
        self.expired.refreshed(&loaded, T::TABLE.columns.len());
        self.settle_committed();
        self.modified = !self.changed_columns().is_empty();
        Ok(())
    }

    /// Drops the kept image when the value is back to it.
    pub(crate) fn settle_committed(&mut self) {
        if let Some(old) = &self.committed {
            if (0..T::TABLE.columns.len()).all(|i| self.value.column_eq(old, i)) {
                self.committed = None;
            }
        }
    }

    fn check_loaded(&self) -> Result<()> {
        if self.expired.any() {
            return Err(Error::Expired {
                object: self.describe(),
                attributes: self.expired_names().join(", "),
            });
        }
        Ok(())
    }

    /// Columns whose current value differs from the last loaded or flushed one.
    pub(crate) fn changed_columns(&self) -> Vec<usize> {
        match &self.committed {
            Some(old) => (0..T::TABLE.columns.len())
                .filter(|&i| !self.expired.is(i) && !self.value.column_eq(old, i))
                .collect(),
            None => Vec::new(),
        }
    }

    pub(crate) fn expire(&mut self, columns: Option<&[usize]>) {
        match columns {
            None => self.expired.set_all(),
            Some(cols) => cols.iter().for_each(|&i| self.expired.set(i)),
        }
        // Unflushed changes to expired attributes are discarded, as in SQLAlchemy.
        if columns.is_none() {
            if let Some(old) = self.committed.take() {
                self.value = *old;
            }
            self.modified = false;
        }
    }
}

/// Which columns are expired: a bit per column; columns past the 64th share one flag that
/// expires the whole object (conservative, never stale).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Expiry {
    bits: u64,
    all: bool,
}

impl Expiry {
    pub(crate) fn any(&self) -> bool {
        self.all || self.bits != 0
    }

    pub(crate) fn is(&self, column: usize) -> bool {
        self.all || (column < 64 && self.bits & (1 << column) != 0)
    }

    pub(crate) fn set(&mut self, column: usize) {
        if column < 64 {
            self.bits |= 1 << column;
        } else {
            self.all = true;
        }
    }

    pub(crate) fn set_all(&mut self) {
        self.all = true;
    }

    pub(crate) fn clear(&mut self, column: usize) {
        if column < 64 {
            self.bits &= !(1 << column);
        }
    }

    pub(crate) fn clear_all(&mut self) {
        *self = Expiry::default();
    }

    /// After a refresh of `columns` (all columns when `of` is their count).
    pub(crate) fn refreshed(&mut self, columns: &[usize], of: usize) {
        if columns.len() == of {
            self.clear_all();
            return;
        }
        if self.all {
            // Expand "all" into bits, then clear the refreshed ones.
            self.all = of > 64;
            self.bits = if of >= 64 { u64::MAX } else { (1u64 << of) - 1 };
        }
        for &c in columns {
            self.clear(c);
        }
    }
}

/// A reading guard on an object; dereferences to `T`.
///
/// Holds the object's lock: do not keep it across an `.await` (it is not `Send`, so the
/// compiler stops you in a spawned task).
pub struct Ref<'a, T: Entity> {
    guard: MutexGuard<'a, State<T>>,
}

impl<T: Entity> Deref for Ref<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.guard.value
    }
}

impl<T: Entity> fmt::Debug for Ref<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.guard.value, f)
    }
}

impl<T: Entity> fmt::Debug for RefMut<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.guard.value, f)
    }
}

/// A writing guard on an object; dereferences mutably to `T`.
pub struct RefMut<'a, T: Entity> {
    guard: MutexGuard<'a, State<T>>,
}

impl<T: Entity> Deref for RefMut<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.guard.value
    }
}

impl<T: Entity> DerefMut for RefMut<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard.value
    }
}

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
    /// Runs `f` on the type-independent part of the state.
    fn with_meta(&self, f: &mut dyn FnMut(&mut Meta<'_>));
    /// Expires the given columns (all when `None`).
    fn expire(&self, columns: Option<&[usize]>);
    /// Becomes transient again: drops the key image (rollback of an insert).
    fn make_transient(&self);
    /// Sets (or clears) the owning session's dirty list.
    fn set_sink(&self, sink: Option<DirtySink>);
    /// Visits the object's relationship links.
    fn relations(self: Arc<Self>, visit: &mut dyn FnMut(Link));
    /// Registers the object in `map` under its key; describes the other object on a clash.
    fn identity_insert(self: Arc<Self>, map: &mut IdentityMap) -> Option<String>;
    /// Removes the object from `map`.
    fn identity_remove(&self, map: &mut IdentityMap);
    /// INSERTs `objs`, all of this object's type.
    fn insert_batch<'a>(
        &self,
        conn: &'a mut AsyncConnection,
        objs: &'a [AnyObj],
    ) -> BoxFuture<'a, Result<()>>;
    /// UPDATEs the changed ones of `objs`; returns those.
    fn update_batch<'a>(
        &self,
        conn: &'a mut AsyncConnection,
        objs: &'a [AnyObj],
    ) -> BoxFuture<'a, Result<Vec<AnyObj>>>;
    /// DELETEs `objs`.
    fn delete_batch<'a>(
        &self,
        conn: &'a mut AsyncConnection,
        objs: &'a [AnyObj],
    ) -> BoxFuture<'a, Result<()>>;
}

/// The type-independent part of an object's state.
pub(crate) struct Meta<'a> {
    pub(crate) status: &'a mut ObjectState,
    pub(crate) session: &'a mut Option<u64>,
    pub(crate) modified: &'a mut bool,
    pub(crate) marked_deleted: &'a mut bool,
    pub(crate) was_deleted: &'a mut bool,
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
        self.lock().status
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn with_meta(&self, f: &mut dyn FnMut(&mut Meta<'_>)) {
        let mut guard = self.lock();
        let state = &mut *guard;
        f(&mut Meta {
            status: &mut state.status,
            session: &mut state.session,
            modified: &mut state.modified,
            marked_deleted: &mut state.marked_deleted,
            was_deleted: &mut state.was_deleted,
        });
    }

    fn expire(&self, columns: Option<&[usize]>) {
        self.lock().expire(columns);
    }

    fn make_transient(&self) {
        let mut state = self.lock();
        state.status = ObjectState::Transient;
        state.session = None;
        state.committed = None;
        state.modified = false;
        state.marked_deleted = false;
        state.was_deleted = false;
        state.sink = None;
        state.expired.clear_all();
    }

    fn set_sink(&self, sink: Option<DirtySink>) {
        self.lock().sink = sink;
    }

    fn relations(self: Arc<Self>, visit: &mut dyn FnMut(Link)) {
        T::relations(&Obj::from_cell(self), visit);
    }

    fn identity_insert(self: Arc<Self>, map: &mut IdentityMap) -> Option<String> {
        let key = self.lock().value.key();
        map.insert::<T>(key, self).map(|other| other.describe())
    }

    fn identity_remove(&self, map: &mut IdentityMap) {
        let key = {
            let state = self.lock();
            state
                .committed
                .as_deref()
                .map_or_else(|| state.value.key(), Entity::key)
        };
        // `remove` compares by pointer; find our own Arc through the map.
        if let Some(cell) = map.get::<T>(&key) {
            if cell.id == self.id {
                map.remove::<T>(&key, &cell);
            }
        }
    }

    fn insert_batch<'a>(
        &self,
        conn: &'a mut AsyncConnection,
        objs: &'a [AnyObj],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(flush::insert_batch::<T>(conn, objs))
    }

    fn update_batch<'a>(
        &self,
        conn: &'a mut AsyncConnection,
        objs: &'a [AnyObj],
    ) -> BoxFuture<'a, Result<Vec<AnyObj>>> {
        Box::pin(flush::update_batch::<T>(conn, objs))
    }

    fn delete_batch<'a>(
        &self,
        conn: &'a mut AsyncConnection,
        objs: &'a [AnyObj],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(flush::delete_batch::<T>(conn, objs))
    }
}
