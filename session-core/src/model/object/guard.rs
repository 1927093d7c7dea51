//! [`Ref`] and [`RefMut`], the guards of [`Obj::read`](super::Obj::read) and
//! [`Obj::write`](super::Obj::write), and the per-thread record of the guards a thread holds.
//!
//! # Why the record
//!
//! A guard holds its object's lock. A session call made while the same thread holds a guard of
//! an object the call must lock would wait for a lock its own caller holds: a deadlock no
//! timeout can break. So every guard notes itself in a thread-local list, and:
//!
//! - reads never exclude reads on one thread (`read_recursive`): two guards of one object, as a
//!   joined query that returns it twice gives, are fine;
//! - a `write()` while the thread holds any guard of that object, or a `read()` while it holds
//!   its write guard, is [`Error::ObjectLocked`] instead of a deadlock;
//! - a session operation that locks objects first checks the list ([`check_none_held`]) and
//!   returns [`Error::ObjectLocked`], naming the object and the fix, instead of blocking.
//!
//! A guard held by *another* thread is waited for: it is released without any session call.

use std::cell::RefCell;
use std::fmt;
use std::ops::{Deref, DerefMut};

use parking_lot::{RwLockReadGuard, RwLockWriteGuard};

use super::state::Data;
use crate::error::{Error, Result};
use crate::model::Entity;

/// One guard a thread holds: the object's id, its entity's name, and whether it writes.
#[derive(Clone, Copy)]
struct Held {
    id: u64,
    entity: &'static str,
    write: bool,
}

thread_local! {
    static HELD: RefCell<Vec<Held>> = const { RefCell::new(Vec::new()) };
}

fn note(id: u64, entity: &'static str, write: bool) {
    HELD.with(|h| h.borrow_mut().push(Held { id, entity, write }));
}

fn forget(id: u64, write: bool) {
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        if let Some(i) = h.iter().rposition(|g| g.id == id && g.write == write) {
            h.swap_remove(i);
        }
    });
}

/// How this thread holds object `id`: `None`, `Some(false)` (read guards only) or
/// `Some(true)` (a write guard).
pub(crate) fn held_by_this_thread(id: u64) -> Option<bool> {
    HELD.with(|h| {
        let h = h.borrow();
        let mut found = None;
        for g in h.iter().filter(|g| g.id == id) {
            found = Some(found.unwrap_or(false) || g.write);
        }
        found
    })
}

/// True when this thread holds any object guard.
pub(crate) fn object_guards_held() -> bool {
    HELD.with(|h| !h.borrow().is_empty())
}

/// [`Error::ObjectLocked`] when this thread holds any object guard: the session operation
/// `operation` would lock objects and could wait on its own caller.
pub(crate) fn check_none_held(operation: &'static str) -> Result<()> {
    HELD.with(|h| match h.borrow().first() {
        None => Ok(()),
        Some(g) => Err(locked(g.entity, g.write, operation)),
    })
}

pub(crate) fn locked(entity: &'static str, write: bool, operation: &'static str) -> Error {
    Error::ObjectLocked {
        object: entity.to_string(),
        guard: if write { "write()" } else { "read()" },
        operation,
    }
}

/// A reading guard on an object; dereferences to `T`.
///
/// Holds the object's read lock: other reads go on, writes wait. Do not keep it across an
/// `.await` or a session call (a session call made while it is held returns
/// [`Error::ObjectLocked`]); it is not `Send`, so the compiler stops you in a spawned task.
pub struct Ref<'a, T: Entity> {
    // Fields drop in this order: back-references queued while this thread held guards run
    // once it holds none, after this lock is gone (see `model::backref`).
    guard: RwLockReadGuard<'a, Data<T>>,
    id: u64,
    _after: RunPending,
}

impl<'a, T: Entity> Ref<'a, T> {
    pub(crate) fn new(guard: RwLockReadGuard<'a, Data<T>>, id: u64) -> Self {
        note(id, T::TABLE.entity, false);
        Ref {
            guard,
            id,
            _after: RunPending,
        }
    }
}

impl<T: Entity> Drop for Ref<'_, T> {
    fn drop(&mut self) {
        forget(self.id, false);
    }
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

/// A writing guard on an object; dereferences mutably to `T`.
///
/// Holds the object's write lock; the same rules as [`Ref`] apply.
///
/// With `back_populates`, the relationship changes made through it reach the other objects
/// when it is released (see [`Collection::push`](crate::Collection::push)).
pub struct RefMut<'a, T: Entity> {
    // Fields drop in this order: the lock is released before `_after` runs what it queued.
    guard: RwLockWriteGuard<'a, Data<T>>,
    owner: &'a super::Obj<T>,
    _after: RunPending,
}

/// Runs the queued back-reference actions when dropped (after the guard's lock is gone).
struct RunPending;

impl Drop for RunPending {
    fn drop(&mut self) {
        crate::model::backref::run_pending();
    }
}

impl<'a, T: Entity> RefMut<'a, T> {
    pub(crate) fn new(guard: RwLockWriteGuard<'a, Data<T>>, owner: &'a super::Obj<T>) -> Self {
        note(owner.cell.id, T::TABLE.entity, true);
        RefMut {
            guard,
            owner,
            _after: RunPending,
        }
    }
}

impl<T: Entity> Drop for RefMut<'_, T> {
    fn drop(&mut self) {
        // What changed in back-populated relationships, queued while the lock is held; the
        // actions run after it is released (`_after`).
        T::sync_back_references(self.owner, &mut self.guard.value, false);
        forget(self.owner.cell.id, true);
    }
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

impl<T: Entity> fmt::Debug for RefMut<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.guard.value, f)
    }
}
