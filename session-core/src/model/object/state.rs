//! An object's state, in two parts with a lock each (sync; no I/O):
//!
//! - [`Data`]: the value, the row image it was loaded or flushed as, and which columns are
//!   expired. What [`Ref`](super::Ref) and [`RefMut`](super::RefMut) guard.
//! - [`Meta`]: where the object stands towards a session: its [`ObjectState`], its session,
//!   whether it is *touched* (a write guard was taken since the last flush: SQLAlchemy's
//!   optimistic `dirty`) and, apart from that, whether it is *queued* in the session's list of
//!   objects to look at in the next flush. A guard never holds this lock, so a session can
//!   always read it.

use super::ObjectState;
use super::erased::AnyObj;
use crate::error::{Error, Result};
use crate::model::Entity;

/// A session's list of objects to look at in its next flush.
pub(crate) type DirtySink = std::sync::Arc<std::sync::Mutex<Vec<AnyObj>>>;

/// The value side of an object.
pub(crate) struct Data<T: Entity> {
    pub(crate) value: T,
    /// The row as last loaded or flushed, kept only once the object is written to: `None`
    /// means `value` is that image (or, before the first flush, that there is none). Loading
    /// an object so costs no copy; changing one costs one.
    pub(crate) committed: Option<Box<T>>,
    /// Expired columns (indices into `T::TABLE.columns`).
    pub(crate) expired: Expiry,
}

/// The session side of an object.
#[derive(Default)]
pub(crate) struct Meta {
    pub(crate) status: ObjectState,
    /// The session that owns the object (pending, persistent or deleted).
    pub(crate) session: Option<u64>,
    /// A write guard was taken since the last flush looked at the object.
    pub(crate) touched: bool,
    /// In the owning session's list of objects for the next flush.
    pub(crate) queued: bool,
    /// Marked with `session.delete()`, not flushed yet.
    pub(crate) marked_deleted: bool,
    /// Its DELETE was committed: adding it again is refused until `make_transient`.
    pub(crate) was_deleted: bool,
    /// The owning session's list of objects for the next flush.
    pub(crate) sink: Option<DirtySink>,
}

impl Meta {
    /// Puts `obj` (whose meta this is) on its session's list for the next flush, once.
    /// Lock order: the object's meta, then the list.
    pub(crate) fn enqueue(&mut self, obj: impl FnOnce() -> AnyObj) {
        if self.queued {
            return;
        }
        if let Some(sink) = &self.sink {
            sink.lock().unwrap_or_else(|p| p.into_inner()).push(obj());
            self.queued = true;
        }
    }

    /// A write happened: touched, and queued for the next flush.
    pub(crate) fn touch(&mut self, obj: impl FnOnce() -> AnyObj) {
        self.touched = true;
        self.enqueue(obj);
    }

    /// Moves the object to `sink` (a session's list, or none): it is queued there afresh when
    /// it has anything for a flush to look at.
    pub(crate) fn set_sink(&mut self, sink: Option<DirtySink>, obj: impl FnOnce() -> AnyObj) {
        let same = match (&self.sink, &sink) {
            (Some(a), Some(b)) => std::sync::Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if same {
            return;
        }
        self.sink = sink;
        self.queued = false;
        if self.touched {
            self.enqueue(obj);
        }
    }

    /// True when the object has a row (so a change needs an UPDATE, not part of an INSERT).
    pub(crate) fn has_row(&self) -> bool {
        !matches!(self.status, ObjectState::Transient | ObjectState::Pending)
    }
}

impl<T: Entity> Data<T> {
    pub(crate) fn new(value: T) -> Self {
        Data {
            value,
            committed: None,
            expired: Expiry::default(),
        }
    }

    /// `A(1)` for an object with a row, `A(transient)` / `A(pending)` before it has a key.
    pub(crate) fn describe(&self, status: ObjectState) -> String {
        match status {
            ObjectState::Transient | ObjectState::Pending if self.committed.is_none() => {
                format!(
                    "{}({})",
                    T::TABLE.entity,
                    if status == ObjectState::Pending {
                        "pending"
                    } else {
                        "transient"
                    }
                )
            }
            _ => format!("{}({:?})", T::TABLE.entity, self.value.key()),
        }
    }

    /// The key of the row: from the kept image when the value's key was changed.
    pub(crate) fn row_key(&self) -> T::Key {
        self.committed
            .as_deref()
            .map_or_else(|| self.value.key(), Entity::key)
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

    /// Keeps a copy of the database image before the value of an object with a row changes.
    pub(crate) fn keep_committed(&mut self, has_row: bool) {
        if has_row && self.committed.is_none() {
            self.committed = Some(Box::new(self.value.clone()));
        }
    }

    /// Sets `(column, row index)` pairs from `row` in the value and in the kept image and marks
    /// those columns loaded (what a refresh or a synchronized UPDATE does). Returns whether the
    /// object still has unflushed changes.
    pub(crate) fn load_columns(
        &mut self,
        columns: &[(usize, usize)],
        row: &tokio_postgres::Row,
    ) -> std::result::Result<bool, tokio_postgres::Error> {
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
        Ok(self.has_changes())
    }

    /// Drops the kept image when the value is back to it: its columns and its relationships
    /// (an image kept for a changed collection is what the flush compares it with).
    pub(crate) fn settle_committed(&mut self) {
        if let Some(old) = &self.committed {
            if same_row(&self.value, old) && self.value.relations_eq(old) {
                self.committed = None;
            }
        }
    }

    /// A flush wrote the object: the image is dropped when the columns are back to it (the
    /// relationships' changes were written by the same flush).
    pub(crate) fn flushed(&mut self) {
        if let Some(old) = &self.committed {
            if same_row(&self.value, old) {
                self.committed = None;
            }
        }
    }

    pub(crate) fn check_loaded(&self, status: ObjectState) -> Result<()> {
        if self.expired.any() {
            return Err(Error::Expired {
                object: self.describe(status),
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

    /// True when a column or a loaded relationship differs from the kept image.
    pub(crate) fn has_changes(&self) -> bool {
        match &self.committed {
            Some(old) => !self.changed_columns().is_empty() || !self.value.relations_eq(old),
            None => false,
        }
    }

    /// Expires the given columns (all, and the relationships, when `None`).
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
            self.value.unload_relations();
        }
    }
}

/// Every column of `a` equals `b`'s.
pub(crate) fn same_row<T: Entity>(a: &T, b: &T) -> bool {
    (0..T::TABLE.columns.len()).all(|i| a.column_eq(b, i))
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
