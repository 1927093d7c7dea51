//! The session's sync state: identity map, pending and deleted objects, transaction levels and
//! what each level changed, so that a rollback restores exactly what SQLAlchemy restores.
//! Nothing here awaits; the lock around it is never held across an `.await`.

use crate::error::{Error, Result};
use crate::identity::IdentityMap;
use crate::object::{AnyObj, ObjectState};

/// What one transaction level (the root, or a savepoint) did, for rollback and commit.
#[derive(Default)]
pub(crate) struct Level {
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
}

impl Level {
    fn merge_into(self, parent: &mut Level) {
        parent.added.extend(self.added);
        parent.inserted.extend(self.inserted);
        parent.deleted.extend(self.deleted);
        parent.marked.extend(self.marked);
        parent.updated.extend(self.updated);
    }
}

pub(crate) struct SessionState {
    pub(crate) identity: IdentityMap,
    /// Pending objects, in the order they were added.
    pub(crate) new: Vec<AnyObj>,
    /// Objects marked for deletion, not flushed yet.
    pub(crate) deleted: Vec<AnyObj>,
    /// `None`: no transaction. `Some(levels)`: the root first, then savepoints.
    pub(crate) tx: Option<Vec<Level>>,
    /// The cause of a failed or cancelled flush: everything is refused until rollback().
    pub(crate) failed: Option<String>,
    pub(crate) autoflush: bool,
    /// Closed for good (`close_resets_only(false)`).
    pub(crate) closed: bool,
}

pub(crate) const CLOSED_MESSAGE: &str = "This Session has been permanently closed and is unable to \
     handle any more transaction requests.";

impl SessionState {
    pub(crate) fn new(autoflush: bool) -> Self {
        SessionState {
            identity: IdentityMap::default(),
            new: Vec::new(),
            deleted: Vec::new(),
            tx: None,
            failed: None,
            autoflush,
            closed: false,
        }
    }

    /// Refuses work while a failed flush waits for rollback() or after a final close.
    pub(crate) fn check_usable(&self) -> Result<()> {
        if self.closed {
            return Err(Error::InvalidRequest(CLOSED_MESSAGE.into()));
        }
        if let Some(cause) = &self.failed {
            return Err(Error::PendingRollback(cause.clone()));
        }
        Ok(())
    }

    /// Starts the root transaction in the session's bookkeeping (no I/O: SQLAlchemy's
    /// autobegin).
    pub(crate) fn autobegin(&mut self) -> &mut Vec<Level> {
        self.tx.get_or_insert_with(|| vec![Level::default()])
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

    pub(crate) fn add(
        &mut self,
        obj: &AnyObj,
        me: u64,
        owner_alive: impl Fn(u64) -> bool,
    ) -> Result<()> {
        let desc = obj.cell.describe();
        let mut outcome = Ok(Action::None);
        obj.cell.with_meta(&mut |m| {
            outcome = match (*m.status, *m.session) {
                (_, _) if *m.was_deleted => Err(Error::InvalidRequest(format!(
                    "Instance '{}' has been deleted.  Use the make_transient() function to send \
                     this object back to the transient state.",
                    desc
                ))),
                (ObjectState::Transient, _) => {
                    *m.status = ObjectState::Pending;
                    *m.session = Some(me);
                    Ok(Action::Pending)
                }
                (
                    ObjectState::Pending | ObjectState::Persistent | ObjectState::Deleted,
                    Some(s),
                ) if s == me => Ok(Action::None),
                (
                    ObjectState::Pending | ObjectState::Persistent | ObjectState::Deleted,
                    Some(s),
                ) if owner_alive(s) => Err(Error::InvalidRequest(format!(
                    "Object '{}' is already attached to session '{s}' (this is '{me}')",
                    desc
                ))),
                (ObjectState::Pending, _) => {
                    *m.session = Some(me);
                    Ok(Action::Pending)
                }
                _ => {
                    // Detached (or owned by a session that is gone): attach as persistent.
                    *m.status = ObjectState::Persistent;
                    *m.session = Some(me);
                    Ok(Action::Reattach)
                }
            };
        });
        match outcome? {
            Action::None => Ok(()),
            Action::Pending => {
                self.new.push(obj.clone());
                self.innermost().added.push(obj.clone());
                Ok(())
            }
            Action::Reattach => {
                if let Some(other) = obj.cell.clone().identity_insert(&mut self.identity) {
                    obj.cell.with_meta(&mut |m| {
                        *m.status = ObjectState::Detached;
                        *m.session = None;
                    });
                    return Err(Error::InvalidRequest(format!(
                        "Can't attach instance {}; another instance with key {other} is already \
                         present in this session.",
                        desc
                    )));
                }
                self.autobegin();
                Ok(())
            }
        }
    }

    pub(crate) fn delete(&mut self, obj: &AnyObj, me: u64) -> Result<()> {
        let desc = obj.cell.describe();
        let mut outcome = Ok(false);
        obj.cell.with_meta(&mut |m| {
            outcome = match (*m.status, *m.session) {
                (ObjectState::Persistent, Some(s)) if s == me => {
                    if *m.marked_deleted {
                        Ok(false)
                    } else {
                        *m.marked_deleted = true;
                        Ok(true)
                    }
                }
                (ObjectState::Deleted, Some(s)) if s == me => Ok(false),
                (ObjectState::Persistent, Some(s)) => Err(Error::InvalidRequest(format!(
                    "Object '{}' is already attached to session '{s}' (this is '{me}')",
                    desc
                ))),
                _ => Err(Error::InvalidRequest(format!(
                    "Instance '{}' is not persisted",
                    desc
                ))),
            };
        });
        if outcome? {
            self.deleted.push(obj.clone());
            self.innermost().marked.push(obj.clone());
        }
        Ok(())
    }

    /// Detaches `obj` (persistent → detached, pending → transient).
    pub(crate) fn expunge(&mut self, obj: &AnyObj, me: u64) -> Result<()> {
        let desc = obj.cell.describe();
        let mut present = false;
        let mut was_pending = false;
        obj.cell.with_meta(&mut |m| {
            if *m.session == Some(me)
                && matches!(
                    *m.status,
                    ObjectState::Pending | ObjectState::Persistent | ObjectState::Deleted
                )
            {
                present = true;
                was_pending = *m.status == ObjectState::Pending;
            }
        });
        if !present {
            return Err(Error::InvalidRequest(format!(
                "Instance {} is not present in this Session",
                desc
            )));
        }
        self.forget(obj);
        if was_pending {
            obj.cell.make_transient();
        } else {
            detach(obj);
        }
        Ok(())
    }

    /// Removes `obj` from every list and the identity map.
    fn forget(&mut self, obj: &AnyObj) {
        self.new.retain(|o| !o.ptr_eq(obj));
        self.deleted.retain(|o| !o.ptr_eq(obj));
        obj.cell.identity_remove(&mut self.identity);
    }

    /// Detaches everything (close, reset, expunge_all).
    pub(crate) fn expunge_all(&mut self) {
        for obj in std::mem::take(&mut self.new) {
            obj.cell.make_transient();
        }
        self.deleted.clear();
        for obj in self.identity.clear() {
            detach(&obj);
        }
        if let Some(levels) = &mut self.tx {
            for level in levels.iter_mut() {
                for obj in level.deleted.drain(..) {
                    detach(&obj);
                }
            }
        }
    }

    // ---- transaction bookkeeping ----

    pub(crate) fn push_savepoint(&mut self) {
        self.autobegin().push(Level::default());
    }

    /// A savepoint was released: its bookkeeping moves to the enclosing level.
    pub(crate) fn commit_savepoint(&mut self) {
        if let Some(levels) = &mut self.tx {
            if levels.len() > 1 {
                if let Some(level) = levels.pop() {
                    let last = levels.len() - 1;
                    level.merge_into(&mut levels[last]);
                }
            }
        }
    }

    /// The root transaction committed.
    pub(crate) fn commit_root(&mut self, expire_on_commit: bool) {
        if let Some(levels) = self.tx.take() {
            for level in levels {
                for obj in level.deleted {
                    obj.cell.with_meta(&mut |m| {
                        *m.status = ObjectState::Detached;
                        *m.session = None;
                        *m.was_deleted = true;
                    });
                }
            }
        }
        if expire_on_commit {
            for obj in self.identity.objects() {
                obj.cell.expire(None);
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
        let mut changed: Vec<AnyObj> = level.updated;
        for obj in self.identity.objects() {
            let mut modified = false;
            obj.cell.with_meta(&mut |m| modified = *m.modified);
            if modified {
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
        for level in levels.into_iter().rev() {
            self.undo(level.added, level.inserted, level.deleted, level.marked);
        }
        // Pending objects added outside any transaction bookkeeping (none normally).
        for obj in std::mem::take(&mut self.new) {
            obj.cell.make_transient();
        }
        for obj in std::mem::take(&mut self.deleted) {
            obj.cell.with_meta(&mut |m| *m.marked_deleted = false);
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
            let mut ours = false;
            obj.cell.with_meta(&mut |m| {
                ours = matches!(
                    *m.status,
                    ObjectState::Pending | ObjectState::Persistent | ObjectState::Deleted
                );
            });
            if ours && gone.insert(obj.cell.object_id()) {
                obj.cell.identity_remove(&mut self.identity);
                obj.cell.make_transient();
            }
        }
        if !gone.is_empty() {
            self.new.retain(|o| !gone.contains(&o.cell.object_id()));
            self.deleted.retain(|o| !gone.contains(&o.cell.object_id()));
        }
        // An object inserted and deleted at this level never had a row: it stays transient.
        for obj in deleted
            .into_iter()
            .filter(|o| !gone.contains(&o.cell.object_id()))
        {
            obj.cell.with_meta(&mut |m| {
                *m.status = ObjectState::Persistent;
                *m.marked_deleted = false;
            });
            let _ = obj.cell.clone().identity_insert(&mut self.identity);
            obj.cell.expire(None);
        }
        let unmarked: std::collections::HashSet<u64> = marked
            .iter()
            .map(|obj| {
                obj.cell.with_meta(&mut |m| *m.marked_deleted = false);
                obj.cell.object_id()
            })
            .collect();
        if !unmarked.is_empty() {
            self.deleted
                .retain(|o| !unmarked.contains(&o.cell.object_id()));
        }
    }
}

enum Action {
    None,
    Pending,
    Reattach,
}

fn detach(obj: &AnyObj) {
    obj.cell.with_meta(&mut |m| {
        if *m.status == ObjectState::Deleted {
            *m.was_deleted = true;
        }
        *m.status = ObjectState::Detached;
        *m.session = None;
        *m.marked_deleted = false;
    });
}
