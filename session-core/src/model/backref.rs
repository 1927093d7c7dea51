//! `back_populates`: the two sides of a relationship kept in step in memory (SQLAlchemy's
//! backref events, `test/orm/test_backref_mutations.py`).
//!
//! A change made through one object's write guard (`a.bs.push(b)`, `b.a.set(...)`) is logged by
//! the [`Collection`] or [`Reference`]; when the guard is released, the derive's
//! [`Entity::sync_back_references`] turns the log into actions on the *other* objects, which run
//! here once the thread holds no object guard at all (right away in the usual
//! `a.write()?.bs.push(b)?;`, else when the thread's last guard is released). Each action takes
//! one object's lock at a time, so two threads synchronising crossed pairs never wait on each
//! other, and an object whose guard the caller holds is never waited for.
//!
//! # Reference cycles
//!
//! Both sides hold their objects strongly, as every loaded relationship does: a parent whose
//! collection holds a child that refers back to it is a reference cycle. The session cuts such
//! cycles when it closes (the child's side becomes "not loaded"); objects that never joined a
//! session are freed once one side lets go (`b.a.set(None)` or taking `b` out of `a.bs`).

use std::cell::{Cell as StdCell, RefCell};
use std::collections::VecDeque;

use crate::model::{Collection, Entity, Obj, Reference};

type Action = Box<dyn FnOnce()>;

thread_local! {
    static PENDING: RefCell<VecDeque<Action>> = const { RefCell::new(VecDeque::new()) };
    static RUNNING: StdCell<bool> = const { StdCell::new(false) };
}

fn queue(action: impl FnOnce() + 'static) {
    PENDING.with(|p| p.borrow_mut().push_back(Box::new(action)));
}

/// Runs the queued actions, unless this thread holds an object guard (they run when its last
/// guard is released) or is running them already (the outer loop picks up what is queued).
pub(crate) fn run_pending() {
    if PENDING.with(|p| p.borrow().is_empty()) || RUNNING.with(StdCell::get) {
        return;
    }
    if crate::model::object_guards_held() {
        return;
    }
    RUNNING.with(|r| r.set(true));
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            RUNNING.with(|r| r.set(false));
        }
    }
    let _reset = Reset;
    while let Some(action) = PENDING.with(|p| p.borrow_mut().pop_front()) {
        action();
    }
}

/// Where the parent keeps its side of the pair.
pub enum ParentSide<P: Entity, C: Entity> {
    /// A one-to-many `Collection<C>`.
    Many(fn(&mut P) -> &mut Collection<C>),
    /// A one-to-one (`uselist = false`) `Reference<C>` on the side without the foreign key.
    One(fn(&mut P) -> &mut Reference<C>),
}

impl<P: Entity, C: Entity> Clone for ParentSide<P, C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P: Entity, C: Entity> Copy for ParentSide<P, C> {}

/// A relationship pair with `back_populates` (written by `#[derive(Entity)]`): the parent `P`
/// (its collection, or its one-to-one reference), the child `C` (its reference to the parent
/// and the foreign key holding the parent's key `K`).
pub struct BackPopulates<P: Entity, C: Entity, K> {
    /// The parent's key, as the child's foreign key holds it.
    pub parent_key: fn(&P) -> K,
    /// The child's foreign key (`None` for NULL).
    pub fk_get: fn(&C) -> Option<K>,
    /// Sets the child's foreign key.
    pub fk_set: fn(&mut C, K),
    /// Sets the child's foreign key to NULL (false when it is NOT NULL or NULL already).
    pub fk_clear: fn(&mut C) -> bool,
    /// The child's reference to its parent.
    pub child_ref: fn(&mut C) -> &mut Reference<P>,
    /// The parent's side.
    pub parent_side: ParentSide<P, C>,
}

impl<P: Entity, C: Entity, K> Clone for BackPopulates<P, C, K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P: Entity, C: Entity, K> Copy for BackPopulates<P, C, K> {}

/// The parent's key when it has a row (a pending parent gets one at the flush, which copies
/// it then).
fn key_of<P: Entity, K>(parent: &Obj<P>, parent_key: fn(&P) -> K) -> Option<K> {
    if !parent.cell.meta().has_row() {
        return None;
    }
    Some(parent.peek(parent_key))
}

impl<P: Entity, C: Entity, K: Clone + PartialEq + 'static> BackPopulates<P, C, K> {
    /// Queues what follows a change of the parent's side: `changes` of `parent`'s collection,
    /// or its one-to-one reference moved from `old` to `new`.
    #[doc(hidden)]
    pub fn parent_side_changed(self, parent: &Obj<P>, added: Vec<Obj<C>>, removed: Vec<Obj<C>>) {
        for child in removed {
            let (pair, parent) = (self, parent.clone());
            queue(move || pair.child_detached(&parent, &child));
        }
        for child in added {
            let (pair, parent) = (self, parent.clone());
            queue(move || pair.child_attached(&parent, &child));
        }
    }

    /// Queues what follows `child.parent` moving from `old` to `new`.
    #[doc(hidden)]
    pub fn child_side_changed(self, child: &Obj<C>, old: Option<Obj<P>>, new: Option<Obj<P>>) {
        if let Some(old) = old.filter(|o| new.as_ref().is_none_or(|n| !n.ptr_eq(o))) {
            let (pair, child) = (self, child.clone());
            queue(move || pair.leave_parent(&old, &child));
        }
        let (pair, child) = (self, child.clone());
        queue(move || {
            if let Some(new) = &new {
                pair.join_parent(new, &child);
            }
            let key = new.as_ref().and_then(|n| key_of(n, pair.parent_key));
            child.change(|c| match (&new, key) {
                (_, Some(k)) if (pair.fk_get)(c).as_ref() != Some(&k) => {
                    (pair.fk_set)(c, k);
                    true
                }
                (None, _) => (pair.fk_clear)(c),
                _ => false,
            });
        });
    }

    /// `child` came into `parent`'s side: it points at `parent`, takes its key, and leaves
    /// the parent it had.
    fn child_attached(self, parent: &Obj<P>, child: &Obj<C>) {
        let key = key_of(parent, self.parent_key);
        let mut old = None;
        child.change(|c| {
            let r = (self.child_ref)(c);
            if r.loaded().is_none_or(|o| !o.ptr_eq(parent)) {
                old = r.loaded().cloned();
                r.set_quiet(Some(parent.clone()));
            }
            match key {
                Some(k) if (self.fk_get)(c).as_ref() != Some(&k) => {
                    (self.fk_set)(c, k);
                    true
                }
                _ => false,
            }
        });
        if let Some(old) = old {
            self.leave_parent(&old, child);
        }
    }

    /// `child` was taken out of `parent`'s side: its reference and foreign key let go of
    /// `parent` (a NOT NULL key keeps its value for the flush to decide).
    fn child_detached(self, parent: &Obj<P>, child: &Obj<C>) {
        let key = key_of(parent, self.parent_key);
        child.change(|c| {
            let r = (self.child_ref)(c);
            let mine = match r.loaded() {
                Some(o) => o.ptr_eq(parent),
                None => !r.is_loaded(),
            };
            if !mine {
                return false;
            }
            r.set_quiet(None);
            match key {
                Some(k) if (self.fk_get)(c).as_ref() == Some(&k) => (self.fk_clear)(c),
                _ => false,
            }
        });
    }

    /// `child` no longer belongs to `parent`: out of its collection, or off its one-to-one.
    fn leave_parent(self, parent: &Obj<P>, child: &Obj<C>) {
        parent.change(|p| match self.parent_side {
            ParentSide::Many(side) => side(p).remove_quiet(child),
            ParentSide::One(side) => {
                let r = side(p);
                if r.loaded().is_some_and(|o| o.ptr_eq(child)) {
                    r.set_quiet(None);
                    true
                } else {
                    false
                }
            }
        });
    }

    /// `child` now belongs to `parent`: into its loaded collection, or onto its one-to-one
    /// (whose previous child lets go of `parent`).
    fn join_parent(self, parent: &Obj<P>, child: &Obj<C>) {
        let mut replaced = None;
        parent.change(|p| match self.parent_side {
            ParentSide::Many(side) => side(p).push_quiet(child),
            ParentSide::One(side) => {
                let r = side(p);
                if r.loaded().is_some_and(|o| o.ptr_eq(child)) {
                    return false;
                }
                replaced = r.loaded().cloned();
                r.set_quiet(Some(child.clone()));
                true
            }
        });
        if let Some(previous) = replaced {
            self.child_detached(parent, &previous);
        }
    }
}

/// The two sides of a many-to-many pair with `back_populates` (written by
/// `#[derive(Entity)]`): appending `c` to `p`'s collection appends `p` to `c`'s, when `c`'s is
/// loaded (an unloaded one is left alone: its next load reads the link row), and taking it
/// out takes `p` out. The link row itself is written once, whichever side changed.
pub struct ManyBack<P: Entity, C: Entity> {
    /// The other side's collection, on `C`.
    pub other: fn(&mut C) -> &mut Collection<P>,
}

impl<P: Entity, C: Entity> Clone for ManyBack<P, C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P: Entity, C: Entity> Copy for ManyBack<P, C> {}

impl<P: Entity, C: Entity> ManyBack<P, C> {
    /// Queues what follows `owner`'s collection gaining `added` and losing `removed`.
    #[doc(hidden)]
    pub fn changed(self, owner: &Obj<P>, added: Vec<Obj<C>>, removed: Vec<Obj<C>>) {
        for other in removed {
            let (other_side, owner) = (self.other, owner.clone());
            queue(move || {
                other.change(|c| other_side(c).remove_quiet(&owner));
            });
        }
        for other in added {
            let (other_side, owner) = (self.other, owner.clone());
            queue(move || {
                other.change(|c| other_side(c).push_quiet(&owner));
            });
        }
    }
}
