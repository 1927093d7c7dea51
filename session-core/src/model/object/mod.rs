//! [`Obj`]: a shared handle to one mapped object, and its state (sync; no `.await` here).
//!
//! A session keeps one live [`Obj`] per primary key (its identity map); every handle to that
//! object sees the same value. Reading goes through [`Obj::read`], changing through
//! [`Obj::write`]: both refuse an object with expired attributes with an error that says how
//! to load them, because reading a field never does I/O.
//!
//! # Lock order
//!
//! The one order every lock of the session stack is taken in (a lock is only ever taken while
//! holding locks that come *before* it):
//!
//! 1. the session's connection lock (async, `try_lock` only: a second task gets "concurrent
//!    operations are not permitted", never a wait);
//! 2. the session's state (identity map, pending and deleted lists, transaction levels);
//! 3. an object's data ([`Data`], what guards hold; a thread holding a guard makes no session
//!    call: [`guard::check_none_held`]);
//! 4. an object's meta ([`Meta`]);
//! 5. the session's list of objects for the next flush (its "dirty" list).
//!
//! No lock from 2 on is held across an `.await`.

mod erased;
mod guard;
mod state;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use parking_lot::RwLock;

pub use erased::AnyObj;
pub(crate) use erased::ErasedCell;
pub use guard::{Ref, RefMut};
pub(crate) use guard::{check_none_held, held_by_this_thread, object_guards_held};
pub(crate) use state::{Data, DirtySink, Meta, same_row};

use crate::error::Result;
use crate::model::Entity;

static NEXT_OBJECT: AtomicU64 = AtomicU64::new(1);

/// Where an object stands towards a session (SQLAlchemy's object states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ObjectState {
    /// Not in any session, never persisted.
    #[default]
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

/// A handle that does not keep its object alive (from [`Obj::downgrade`]).
pub struct WeakObj<T: Entity> {
    cell: Weak<Cell<T>>,
}

impl<T: Entity> WeakObj<T> {
    /// The object, while any [`Obj`] handle to it (or its session's bookkeeping) keeps it
    /// alive.
    pub fn upgrade(&self) -> Option<Obj<T>> {
        self.cell.upgrade().map(Obj::from_cell)
    }
}

impl<T: Entity> fmt::Debug for WeakObj<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WeakObj<{}>", T::TABLE.entity)
    }
}

pub(crate) struct Cell<T: Entity> {
    pub(crate) id: u64,
    pub(crate) data: RwLock<Data<T>>,
    pub(crate) meta: Mutex<Meta>,
}

impl<T: Entity> Obj<T> {
    /// A new transient object (SQLAlchemy: `A(data="a1")` before `session.add`).
    ///
    /// With `back_populates`, the objects already in its relationships point back at it
    /// (`A { bs: Collection::from_vec(vec![b]), .. }` sets `b.a`).
    pub fn new(value: T) -> Self {
        let obj = Obj::with_meta(value, Meta::default());
        T::sync_back_references(&obj, &mut obj.cell.data.write().value, true);
        crate::model::backref::run_pending();
        obj
    }

    /// A persistent object of `session` made from a loaded row: its relationships are not
    /// loaded, so there are no back-references to set, and its state is made as it is, not
    /// taken under its lock (the cheap path of every loaded row).
    pub(crate) fn loaded(value: T, session: u64, sink: &DirtySink) -> Self {
        Obj::with_meta(
            value,
            Meta {
                status: ObjectState::Persistent,
                session: Some(session),
                sink: Some(sink.clone()),
                ..Meta::default()
            },
        )
    }

    /// A new object's cell, with a fresh id.
    fn with_meta(value: T, meta: Meta) -> Self {
        Obj {
            cell: Arc::new(Cell {
                id: NEXT_OBJECT.fetch_add(1, Ordering::Relaxed),
                data: RwLock::new(Data::new(value)),
                meta: Mutex::new(meta),
            }),
        }
    }

    pub(crate) fn from_cell(cell: Arc<Cell<T>>) -> Self {
        Obj { cell }
    }

    /// Reads the object. Reads never exclude reads: several [`Ref`]s of one object may live at
    /// once, on one thread or many.
    ///
    /// # Errors
    /// [`Error::Expired`](crate::Error::Expired) when any attribute is expired (after
    /// `commit()` with `expire_on_commit`, after `rollback()`, or `expire()`): load it with
    /// `session.refresh(&obj)`, or make the session with `expire_on_commit(false)`. Reading
    /// never does I/O. [`Error::ObjectLocked`](crate::Error::ObjectLocked) when this thread
    /// holds the object's write guard.
    pub fn read(&self) -> Result<Ref<'_, T>> {
        if held_by_this_thread(self.cell.id) == Some(true) {
            return Err(guard::locked(T::TABLE.entity, true, "Obj::read"));
        }
        let data = self.cell.data.read_recursive();
        data.check_loaded(self.cell.status())?;
        Ok(Ref::new(data, self.cell.id))
    }

    /// Changes the object: the session sees the change at the next flush and updates only the
    /// columns whose values differ.
    ///
    /// # Errors
    /// [`Error::Expired`](crate::Error::Expired), as for [`Obj::read`];
    /// [`Error::ObjectLocked`](crate::Error::ObjectLocked) when this thread already holds a
    /// guard of the object (drop it first).
    pub fn write(&self) -> Result<RefMut<'_, T>> {
        if let Some(write) = held_by_this_thread(self.cell.id) {
            return Err(guard::locked(T::TABLE.entity, write, "Obj::write"));
        }
        let mut data = self.cell.data.write();
        let mut meta = self.cell.meta();
        data.check_loaded(meta.status)?;
        data.keep_committed(meta.has_row());
        meta.touch(|| self.erase());
        drop(meta);
        Ok(RefMut::new(data, self))
    }

    /// Runs `f` on the value as it is, without the expiry check (expired attributes hold
    /// stale values): plumbing for mapping code such as [`Entity::relations`], not a way to
    /// read data. Not while this thread holds the object's write guard (it would wait on it);
    /// use the guard then.
    pub fn peek<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.cell.data.read_recursive().value)
    }

    /// Runs `f` on the value without marking the object changed (loaders filling a
    /// relationship).
    pub(crate) fn with_value<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.cell.data.write().value)
    }

    /// Runs `f` on the value and on the kept row image, without marking the object changed:
    /// a loader filling a relationship with what the database holds, which is also what the
    /// next flush compares the relationship with.
    pub(crate) fn fill(&self, f: impl Fn(&mut T)) {
        let mut data = self.cell.data.write();
        f(&mut data.value);
        if let Some(image) = data.committed.as_deref_mut() {
            f(image);
        }
    }

    /// The object's state towards its session.
    pub fn state(&self) -> ObjectState {
        self.cell.status()
    }

    /// The primary key, once the object is persistent (or deleted, or detached). Not while
    /// this thread holds the object's write guard (it would wait on it); read the key through
    /// the guard then.
    pub fn key(&self) -> Option<T::Key> {
        if !self.cell.meta().has_row() {
            return None;
        }
        Some(self.cell.data.read_recursive().value.key())
    }

    /// Names of the expired attributes (none while this thread holds the object's write
    /// guard: a guard is only given for a loaded object).
    pub fn expired_attributes(&self) -> Vec<&'static str> {
        if held_by_this_thread(self.cell.id) == Some(true) {
            return Vec::new();
        }
        self.cell.data.read_recursive().expired_names()
    }

    /// True when any attribute is expired (false while this thread holds the object's write
    /// guard).
    pub fn is_expired(&self) -> bool {
        if held_by_this_thread(self.cell.id) == Some(true) {
            return false;
        }
        self.cell.data.read_recursive().expired.any()
    }

    /// True when both handles are the same object.
    pub fn ptr_eq(&self, other: &Obj<T>) -> bool {
        Arc::ptr_eq(&self.cell, &other.cell)
    }

    /// A handle that does not keep the object alive.
    pub fn downgrade(&self) -> WeakObj<T> {
        WeakObj {
            cell: Arc::downgrade(&self.cell),
        }
    }

    /// Changes the value outside a guard (a foreign key copied from its parent): `f` returns
    /// whether it changed anything; an object with a row is then touched and queued for the
    /// next flush, its row image kept first.
    pub(crate) fn change(&self, f: impl FnOnce(&mut T) -> bool) -> bool {
        let mut data = self.cell.data.write();
        let has_row = self.cell.meta().has_row();
        data.keep_committed(has_row);
        let changed = f(&mut data.value);
        if changed && has_row {
            self.cell.meta().touch(|| self.erase());
        } else {
            data.settle_committed();
        }
        changed
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
    /// The object's session-side state. Never held by a guard, so never waits on one.
    pub(crate) fn meta(&self) -> MutexGuard<'_, Meta> {
        self.meta.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn status(&self) -> ObjectState {
        self.meta().status
    }

    /// `A(1)` for an object with a row, `A(transient)` / `A(pending)` before it has a key.
    /// Without waiting when this thread holds the object's write guard (`A(being written)`).
    pub(crate) fn describe(&self) -> String {
        if held_by_this_thread(self.id) == Some(true) {
            return format!("{}(locked by this thread's write guard)", T::TABLE.entity);
        }
        let data = self.data.read_recursive();
        data.describe(self.status())
    }
}

/// The bytes the session adds to each object it tracks, beside the value itself (plumbing for
/// the benchmark's memory report; not public API).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackedBytes {
    /// The shared cell without the value: the `Arc`'s counts, the object id, the value's lock,
    /// the kept image's slot, the expired columns, the state and its lock.
    pub cell: usize,
    /// One identity-map entry (key, weak pointer, hash table control byte), before the table's
    /// spare capacity.
    pub identity_entry: usize,
    /// The handle a result hands out ([`Obj`]).
    pub handle: usize,
    /// The value (`size_of::<T>()`).
    pub value: usize,
}

impl TrackedBytes {
    /// Everything the session adds per object.
    pub fn overhead(&self) -> usize {
        self.cell + self.identity_entry + self.handle
    }
}

/// [`TrackedBytes`] of `T` (the heap its fields own, the same for a plain struct, not
/// counted).
#[doc(hidden)]
pub fn tracked_bytes<T: Entity>() -> TrackedBytes {
    use std::mem::size_of;
    let value = size_of::<T>();
    TrackedBytes {
        // An Arc's allocation: strong and weak counts, then the cell.
        cell: 2 * size_of::<usize>() + size_of::<Cell<T>>() - value,
        // The identity map's table (`identity::Typed`) maps keys to weak cells.
        identity_entry: size_of::<(T::Key, Weak<Cell<T>>)>() + 1,
        handle: size_of::<Obj<T>>(),
        value,
    }
}
