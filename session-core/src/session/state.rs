//! The session's sync state: identity map, pending and deleted objects, transaction levels and
//! what each level changed, so that a rollback restores exactly what SQLAlchemy restores.
//! Nothing here awaits; the lock around it is never held across an `.await`.

use super::events::{Chain, Pending, Transition};
use super::tx::TransactionInfo;
use crate::error::{Error, Result};
use crate::identity::IdentityMap;
use crate::identity::Owner;
use crate::mapper;
use crate::model::{AnyObj, ObjectState};

/// What one transaction level (the root, or a savepoint) did, for rollback and commit.
#[derive(Default)]
pub(crate) struct Level {
    /// This level's id: a transaction handle acts only on the level it began.
    pub(crate) id: u64,
    /// Objects added while this level was innermost (pending until flushed).
    pub(crate) added: Vec<AnyObj>,
    /// Objects inserted by a flush in this level.
    pub(crate) inserted: Vec<AnyObj>,
    /// Objects whose DELETE was flushed in this level.
    pub(crate) deleted: Vec<AnyObj>,
    /// Objects marked for deletion in this level (not flushed).
    pub(crate) marked: Vec<AnyObj>,
    /// Objects updated by a flush in this level.
    pub(crate) updated: Vec<AnyObj>,
    /// The root level's transaction options (`begin_with`); unused on savepoints.
    pub(crate) options: crate::TransactionOptions,
}

static NEXT_LEVEL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Level {
    fn new() -> Self {
        Level {
            id: NEXT_LEVEL.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            ..Level::default()
        }
    }

    fn merge_into(self, parent: &mut Level) {
        parent.added.extend(self.added);
        parent.inserted.extend(self.inserted);
        parent.deleted.extend(self.deleted);
        parent.marked.extend(self.marked);
        parent.updated.extend(self.updated);
    }
}

pub(crate) struct SessionState {
    /// The session's id (what its objects' `Meta::session` says).
    me: u64,
    pub(crate) identity: IdentityMap,
    /// Pending objects, in the order they were added.
    pub(crate) new: Vec<AnyObj>,
    /// Objects marked for deletion, not flushed yet.
    pub(crate) deleted: Vec<AnyObj>,
    /// `None`: no transaction. `Some(levels)`: the root first, then savepoints.
    pub(crate) tx: Option<Vec<Level>>,
    /// A failed or cancelled flush: everything is refused until its level (or the root) is
    /// rolled back.
    pub(crate) failed: Option<Failed>,
    /// The root transaction a `transaction(...)` block runs (SQLAlchemy's context manager):
    /// once that transaction is ended by hand inside the block, work is refused until the
    /// block ends.
    pub(crate) block: Option<u64>,
    pub(crate) autoflush: bool,
    /// Closed for good (`close_resets_only(false)`).
    pub(crate) closed: bool,
    /// Start a transaction on first use (false: only `begin()` starts one).
    autobegin: bool,
    /// The session's listener registries: transitions are recorded only when someone listens.
    watch: Chain,
    /// Recorded changes for listeners, fired once this lock is released.
    pub(crate) pending: Vec<Pending>,
}

pub(crate) const AUTOBEGIN_MESSAGE: &str = "Autobegin is disabled on this Session; please call \
     session.begin() to start a new transaction";

/// A flush that failed at transaction level `level` (1 = the root), and why.
#[derive(Debug, Clone)]
pub(crate) struct Failed {
    pub(crate) level: usize,
    pub(crate) cause: String,
}

pub(crate) const CLOSED_MESSAGE: &str = "This Session has been permanently closed and is unable to \
     handle any more transaction requests.";

impl SessionState {
    pub(crate) fn new(me: u64, autoflush: bool, autobegin: bool, watch: Chain) -> Self {
        SessionState {
            me,
            identity: IdentityMap::default(),
            new: Vec::new(),
            deleted: Vec::new(),
            tx: None,
            failed: None,
            block: None,
            autoflush,
            closed: false,
            autobegin,
            watch,
            pending: Vec::new(),
        }
    }

    /// Records `obj`'s transition for the lifecycle listeners (when there are any).
    pub(crate) fn note(&mut self, t: Transition, obj: &AnyObj) {
        if self.watch.wants_lifecycle() {
            self.pending.push(Pending::Object(t, obj.clone()));
        }
    }

    /// Records a transaction event for the listeners (when there are any).
    fn note_tx(&mut self, make: impl FnOnce(TransactionInfo) -> Pending, level: usize) {
        if self.watch.is_active() {
            self.pending.push(make(TransactionInfo {
                nested: level > 1,
                level,
                is_active: true,
            }));
        }
    }

    /// Refuses to start a transaction implicitly when autobegin is off (SQLAlchemy's
    /// message); a begun transaction, or autobegin on, passes.
    pub(crate) fn check_autobegin(&self) -> Result<()> {
        if self.tx.is_none() && !self.autobegin {
            return Err(Error::InvalidRequest(AUTOBEGIN_MESSAGE.into()));
        }
        Ok(())
    }

    /// Ends every open level in the bookkeeping (close, reset): innermost first.
    pub(crate) fn end_all(&mut self) {
        let depth = self.depth();
        self.tx = None;
        for level in (1..=depth).rev() {
            self.note_tx(Pending::Ended, level);
        }
    }

    /// Refuses work while a failed flush waits for rollback(), after a final close, and inside
    /// a `transaction(...)` block whose transaction was ended by hand.
    pub(crate) fn check_usable(&self) -> Result<()> {
        if self.closed {
            return Err(Error::Closed(CLOSED_MESSAGE.into()));
        }
        if let Some(block) = self.block {
            let root = self
                .tx
                .as_ref()
                .and_then(|levels| levels.first())
                .map(|l| l.id);
            if let (Some(failed @ Failed { level: 1, .. }), Some(_)) = (&self.failed, root) {
                return Err(Error::Closed(format!(
                    "Can't operate on closed transaction inside context manager.  The \
                     transaction was rolled back due to an exception: {}.  Please complete the \
                     context manager before emitting further commands.",
                    failed.cause
                )));
            }
            if root != Some(block) {
                return Err(Error::Closed(
                    "Can't operate on closed transaction inside context manager.  Please \
                     complete the context manager before emitting further commands."
                        .into(),
                ));
            }
        }
        if let Some(failed) = &self.failed {
            return Err(Error::PendingRollback(failed.cause.clone()));
        }
        Ok(())
    }

    /// The id of level `level` (1 = the root), when it is open.
    pub(crate) fn level_id(&self, level: usize) -> Option<u64> {
        let levels = self.tx.as_ref()?;
        levels.get(level.checked_sub(1)?).map(|l| l.id)
    }

    /// Starts the root transaction in the session's bookkeeping (no I/O: SQLAlchemy's
    /// autobegin).
    pub(crate) fn autobegin(&mut self) -> &mut Vec<Level> {
        if self.tx.is_none() {
            self.note_tx(Pending::Created, 1);
        }
        self.tx.get_or_insert_with(|| vec![Level::new()])
    }

    /// The options of the root transaction, as `begin_with` set them.
    pub(crate) fn root_options(&self) -> crate::TransactionOptions {
        self.tx
            .as_ref()
            .and_then(|levels| levels.first())
            .map(|root| root.options)
            .unwrap_or_default()
    }

    pub(crate) fn depth(&self) -> usize {
        self.tx.as_ref().map_or(0, Vec::len)
    }

    pub(crate) fn innermost(&mut self) -> &mut Level {
        let levels = self.autobegin();
        let last = levels.len() - 1;
        &mut levels[last]
    }

    // ---- add / delete / expunge ----

    /// Adds `obj` (SQLAlchemy's `Session.add`): transient → pending; detached → persistent
    /// again, queued for the next flush with the changes it had while detached.
    pub(crate) fn add(
        &mut self,
        obj: &AnyObj,
        owner: Owner<'_>,
        owner_alive: impl Fn(u64) -> bool,
    ) -> Result<()> {
        self.check_autobegin()?;
        let (me, sink) = (owner.session, owner.sink);
        let desc = obj.cell.describe();
        let action = {
            let mut m = obj.meta();
            match (m.status, m.session) {
                _ if m.was_deleted || m.status == ObjectState::Deleted => {
                    return Err(Error::InvalidRequest(format!(
                        "Instance '{desc}' has been deleted.  Use the make_transient() function \
                         to send this object back to the transient state."
                    )));
                }
                (ObjectState::Transient, _) => {
                    m.status = ObjectState::Pending;
                    m.session = Some(me);
                    m.set_sink(Some(sink.clone()), || obj.clone());
                    Action::New
                }
                (ObjectState::Pending | ObjectState::Persistent, Some(s)) if s == me => {
                    Action::None
                }
                (ObjectState::Pending | ObjectState::Persistent, Some(s)) if owner_alive(s) => {
                    return Err(Error::InvalidRequest(format!(
                        "Object '{desc}' is already attached to session '{s}' (this is '{me}')"
                    )));
                }
                (ObjectState::Pending, _) => {
                    m.session = Some(me);
                    m.set_sink(Some(sink.clone()), || obj.clone());
                    Action::Pending
                }
                _ => {
                    // Detached (or owned by a session that is gone): attach as persistent.
                    m.status = ObjectState::Persistent;
                    m.session = Some(me);
                    m.marked_deleted = false;
                    Action::Reattach
                }
            }
        };
        match action {
            Action::None => Ok(()),
            Action::Pending | Action::New => {
                self.new.push(obj.clone());
                self.innermost().added.push(obj.clone());
                if matches!(action, Action::New) {
                    self.note(Transition::TransientToPending, obj);
                }
                Ok(())
            }
            Action::Reattach => {
                if let Some(other) = mapper::of(obj).identity_insert(obj, &mut self.identity) {
                    let mut m = obj.meta();
                    m.status = ObjectState::Detached;
                    m.session = None;
                    return Err(Error::InvalidRequest(format!(
                        "Can't attach instance {desc}; another instance with key {other} is \
                         already present in this session."
                    )));
                }
                // Changes made while detached are flushed like any other.
                let changed = obj.cell.has_changes();
                let mut m = obj.meta();
                m.touched |= changed;
                m.set_sink(Some(sink.clone()), || obj.clone());
                drop(m);
                self.autobegin();
                self.note(Transition::DetachedToPersistent, obj);
                Ok(())
            }
        }
    }

    /// Marks `obj` for deletion at the next flush. A detached object is attached first
    /// (SQLAlchemy's `delete()` of a detached instance).
    pub(crate) fn delete(
        &mut self,
        obj: &AnyObj,
        owner: Owner<'_>,
        owner_alive: impl Fn(u64) -> bool,
    ) -> Result<()> {
        let me = owner.session;
        if obj.state() == ObjectState::Detached && !obj.meta().was_deleted {
            self.add(obj, owner, &owner_alive)?;
        }
        let desc = obj.cell.describe();
        let marked = {
            let mut m = obj.meta();
            match (m.status, m.session) {
                (ObjectState::Persistent, Some(s)) if s == me => {
                    if m.marked_deleted {
                        false
                    } else {
                        m.marked_deleted = true;
                        true
                    }
                }
                (ObjectState::Deleted, Some(s)) if s == me => false,
                (ObjectState::Persistent, Some(s)) => {
                    return Err(Error::InvalidRequest(format!(
                        "Object '{desc}' is already attached to session '{s}' (this is '{me}')"
                    )));
                }
                _ => {
                    return Err(Error::InvalidRequest(format!(
                        "Instance '{desc}' is not persisted"
                    )));
                }
            }
        };
        if marked {
            self.deleted.push(obj.clone());
            self.innermost().marked.push(obj.clone());
        }
        Ok(())
    }

    /// Detaches `obj` (persistent → detached, pending → transient).
    pub(crate) fn expunge(&mut self, obj: &AnyObj, me: u64) -> Result<()> {
        let (present, was_pending) = {
            let m = obj.meta();
            let present = m.session == Some(me)
                && matches!(
                    m.status,
                    ObjectState::Pending | ObjectState::Persistent | ObjectState::Deleted
                );
            (present, m.status == ObjectState::Pending)
        };
        if !present {
            return Err(Error::InvalidRequest(format!(
                "Instance {} is not present in this Session",
                obj.cell.describe()
            )));
        }
        self.forget(obj);
        if was_pending {
            obj.cell.make_transient();
            self.note(Transition::PendingToTransient, obj);
        } else {
            let deleted = obj.state() == ObjectState::Deleted;
            detach(obj);
            let t = if deleted {
                Transition::DeletedToDetached
            } else {
                Transition::PersistentToDetached
            };
            self.note(t, obj);
        }
        Ok(())
    }

    /// Removes `obj` from every list and the identity map.
    fn forget(&mut self, obj: &AnyObj) {
        self.new.retain(|o| !o.ptr_eq(obj));
        self.deleted.retain(|o| !o.ptr_eq(obj));
        mapper::of(obj).identity_remove(obj, &mut self.identity);
    }

    /// Detaches everything (close, reset, expunge_all). With `break_cycles`, a relationship
    /// loaded in both directions (a parent's collection holds the child, and the child's
    /// reference holds the parent: a reference cycle, which Rust never frees) is cut on the
    /// child's side, whose relationships become "not loaded"; the parent keeps its children.
    pub(crate) fn expunge_all(&mut self, break_cycles: bool) {
        for obj in std::mem::take(&mut self.new) {
            obj.cell.make_transient();
            self.note(Transition::PendingToTransient, &obj);
        }
        self.deleted.clear();
        let mut all = self.identity.clear();
        if let Some(levels) = &mut self.tx {
            for level in levels.iter_mut() {
                all.append(&mut level.deleted);
            }
        }
        for obj in &all {
            let deleted = obj.state() == ObjectState::Deleted;
            detach(obj);
            let t = if deleted {
                Transition::DeletedToDetached
            } else {
                Transition::PersistentToDetached
            };
            self.note(t, obj);
        }
        if break_cycles {
            cut_cycles(&all);
        }
    }

    // ---- transaction bookkeeping ----

    pub(crate) fn push_savepoint(&mut self) {
        self.autobegin().push(Level::new());
        let depth = self.depth();
        self.note_tx(Pending::Created, depth);
    }

    /// A savepoint was released: its bookkeeping moves to the enclosing level.
    pub(crate) fn commit_savepoint(&mut self) {
        if let Some(levels) = &mut self.tx {
            if levels.len() > 1 {
                if let Some(level) = levels.pop() {
                    let last = levels.len() - 1;
                    level.merge_into(&mut levels[last]);
                    self.note_tx(Pending::Ended, last + 2);
                }
            }
        }
    }

    /// The root transaction committed.
    pub(crate) fn commit_root(&mut self, expire_on_commit: bool) {
        if let Some(levels) = self.tx.take() {
            let depth = levels.len();
            for level in levels {
                for obj in level.deleted {
                    {
                        let mut m = obj.meta();
                        m.status = ObjectState::Detached;
                        m.session = None;
                        m.was_deleted = true;
                    }
                    self.note(Transition::DeletedToDetached, &obj);
                }
            }
            for level in (1..=depth).rev() {
                self.note_tx(Pending::Ended, level);
            }
        }
        if expire_on_commit {
            // An object changed while the commit ran (another task) keeps its change for the
            // next flush: only a COMMIT sent with the flush's last statements lets that happen.
            for obj in self.identity.objects() {
                if !obj.meta().queued {
                    obj.cell.expire(None);
                }
            }
        }
    }

    /// A savepoint rolled back: objects added inside it leave, its deletes come back, and only
    /// objects changed inside it are expired.
    pub(crate) fn rollback_savepoint(&mut self) {
        let Some(level) = self
            .tx
            .as_mut()
            .and_then(|levels| if levels.len() > 1 { levels.pop() } else { None })
        else {
            return;
        };
        let depth = self.depth();
        self.note_tx(Pending::SoftRollback, depth + 1);
        self.note_tx(Pending::Ended, depth + 1);
        if self.failed.as_ref().is_some_and(|f| f.level > depth) {
            self.failed = None;
        }
        let mut changed: Vec<AnyObj> = level.updated;
        for obj in self.identity.objects() {
            if obj.meta().touched || obj.cell.has_changes() {
                changed.push(obj);
            }
        }
        self.undo(level.added, level.inserted, level.deleted, level.marked);
        for obj in changed {
            obj.cell.expire(None);
        }
    }

    /// The root transaction rolled back (or failed): objects added in it become transient,
    /// deleted ones come back, and every persistent object is expired.
    pub(crate) fn rollback_root(&mut self) {
        let levels = self.tx.take().unwrap_or_default();
        let depth = levels.len();
        for level in levels.into_iter().rev() {
            self.undo(level.added, level.inserted, level.deleted, level.marked);
        }
        if depth > 0 {
            self.note_tx(Pending::SoftRollback, 1);
        }
        for level in (1..=depth).rev() {
            self.note_tx(Pending::Ended, level);
        }
        // Pending objects added outside any transaction bookkeeping (none normally).
        for obj in std::mem::take(&mut self.new) {
            obj.cell.make_transient();
            self.note(Transition::PendingToTransient, &obj);
        }
        for obj in std::mem::take(&mut self.deleted) {
            obj.meta().marked_deleted = false;
        }
        for obj in self.identity.objects() {
            obj.cell.expire(None);
        }
        self.failed = None;
    }

    fn undo(
        &mut self,
        added: Vec<AnyObj>,
        inserted: Vec<AnyObj>,
        deleted: Vec<AnyObj>,
        marked: Vec<AnyObj>,
    ) {
        let mut gone = std::collections::HashSet::new();
        for obj in added.into_iter().chain(inserted) {
            // Only objects still in this session: one expunged and added elsewhere since
            // belongs to that session now.
            let (ours, was) = {
                let m = obj.meta();
                let ours = m.session == Some(self.me)
                    && matches!(
                        m.status,
                        ObjectState::Pending | ObjectState::Persistent | ObjectState::Deleted
                    );
                (ours, m.status)
            };
            if ours && gone.insert(obj.id()) {
                mapper::of(&obj).identity_remove(&obj, &mut self.identity);
                obj.cell.make_transient();
                let t = if was == ObjectState::Pending {
                    Transition::PendingToTransient
                } else {
                    Transition::PersistentToTransient
                };
                self.note(t, &obj);
            }
        }
        if !gone.is_empty() {
            self.new.retain(|o| !gone.contains(&o.id()));
            self.deleted.retain(|o| !gone.contains(&o.id()));
        }
        // An object inserted and deleted at this level never had a row: it stays transient.
        for obj in deleted.into_iter().filter(|o| !gone.contains(&o.id())) {
            {
                let mut m = obj.meta();
                m.status = ObjectState::Persistent;
                m.marked_deleted = false;
            }
            let _ = mapper::of(&obj).identity_insert(&obj, &mut self.identity);
            obj.cell.expire(None);
            self.note(Transition::DeletedToPersistent, &obj);
        }
        let unmarked: std::collections::HashSet<u64> = marked
            .iter()
            .map(|obj| {
                obj.meta().marked_deleted = false;
                obj.id()
            })
            .collect();
        if !unmarked.is_empty() {
            self.deleted.retain(|o| !unmarked.contains(&o.id()));
        }
    }
}

/// Unloads the relationships of every child in `objs` whose parent holds it in a loaded
/// collection while the child's reference holds the parent (see `expunge_all`).
fn cut_cycles(objs: &[AnyObj]) {
    use std::collections::{HashMap, HashSet};
    let by_id: HashMap<u64, &AnyObj> = objs.iter().map(|o| (o.id(), o)).collect();
    // (parent, child) pairs seen from the parent's side and from the child's side.
    let mut from_parent = HashSet::new();
    let mut from_child = HashSet::new();
    for obj in objs {
        let me = obj.id();
        if crate::model::held_by_this_thread(me).is_some() {
            continue; // the caller holds its guard: leave it as it is rather than wait
        }
        obj.cell.clone().relations(&mut |link| {
            let pair = (link.parent.id(), link.child.id());
            if pair.0 == me {
                from_parent.insert(pair);
            }
            if pair.1 == me {
                from_child.insert(pair);
            }
        });
    }
    let children: HashSet<u64> = from_parent
        .intersection(&from_child)
        .map(|&(_, child)| child)
        .collect();
    for id in children {
        if let Some(obj) = by_id.get(&id) {
            obj.cell.unload_relations();
        }
    }
}

enum Action {
    None,
    /// Transient → pending.
    New,
    /// Pending again (its old session is gone).
    Pending,
    Reattach,
}

fn detach(obj: &AnyObj) {
    let mut m = obj.meta();
    if m.status == ObjectState::Deleted {
        m.was_deleted = true;
    }
    m.status = ObjectState::Detached;
    m.session = None;
    m.marked_deleted = false;
    m.sink = None;
    m.queued = false;
}
