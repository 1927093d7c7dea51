//! The identity map: one live object per (entity, primary key) in a session (sync state).
//!
//! Like SQLAlchemy's, it holds objects weakly: an object nobody uses any more leaves it (a
//! later `get` loads it again), so streaming or paging through many rows keeps memory bounded.
//! Objects with unflushed state are held strongly elsewhere until it is flushed and committed:
//! pending and deleted ones in the session's lists, changed ones in its dirty list, flushed
//! ones in the transaction's bookkeeping.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Weak};

use foldhash::quality::RandomState;

use tokio_postgres::Row;

use crate::error::{Error, Result};
use crate::model::Entity;
use crate::model::{AnyObj, Cell, DirtySink, ErasedCell, Obj};

/// Objects by entity type and key, held weakly.
#[derive(Default)]
pub(crate) struct IdentityMap {
    tables: HashMap<TypeId, Box<dyn ErasedTable>, foldhash::fast::RandomState>,
}

trait ErasedTable: Send + Sync {
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn objects(&self, out: &mut Vec<AnyObj>);
    fn len(&self) -> usize;
}

/// The objects of one entity type (what a batch load works on, with one type lookup).
pub(crate) struct Typed<T: Entity> {
    map: HashMap<T::Key, Weak<Cell<T>>, RandomState>,
    /// Sweep dead entries when the map grows past this.
    sweep_at: usize,
}

impl<T: Entity> Typed<T> {
    fn new() -> Self {
        Typed {
            map: HashMap::default(),
            sweep_at: 1024,
        }
    }

    /// Makes room for `additional` objects (before loading a result).
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.map.reserve(additional);
    }

    /// The live object for `key`, if any.
    pub(crate) fn get(&self, key: &T::Key) -> Option<Arc<Cell<T>>> {
        self.map.get(key)?.upgrade()
    }

    /// Inserts `cell` under `key`; returns the live object already there under that key, if
    /// it is another one.
    pub(crate) fn insert(&mut self, key: T::Key, cell: &Arc<Cell<T>>) -> Option<Arc<Cell<T>>> {
        let existing = self.insert_unswept(key, cell);
        if existing.is_none() {
            self.sweep();
        }
        existing
    }

    /// [`Typed::insert`] without the sweep: a batch load sweeps once, before its first row
    /// (every object of the batch is alive until it returns, so sweeping in between finds
    /// nothing of its own to drop).
    fn insert_unswept(&mut self, key: T::Key, cell: &Arc<Cell<T>>) -> Option<Arc<Cell<T>>> {
        match self.map.entry(key) {
            Entry::Occupied(mut entry) => match entry.get().upgrade() {
                Some(existing) if !Arc::ptr_eq(&existing, cell) => return Some(existing),
                Some(_) => return None,
                None => {
                    entry.insert(Arc::downgrade(cell));
                }
            },
            Entry::Vacant(entry) => {
                entry.insert(Arc::downgrade(cell));
            }
        }
        None
    }

    /// Drops the entries of objects nobody holds, once the map has doubled since the last
    /// sweep (amortized O(1) per insert; keeps a stream's map bounded).
    fn sweep(&mut self) {
        if self.map.len() >= self.sweep_at {
            self.map.retain(|_, w| w.strong_count() > 0);
            self.sweep_at = (self.map.len() * 2).max(1024);
        }
    }
}

impl<T: Entity> ErasedTable for Typed<T> {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn objects(&self, out: &mut Vec<AnyObj>) {
        out.extend(
            self.map
                .values()
                .filter_map(Weak::upgrade)
                .map(|cell| AnyObj {
                    cell: cell as Arc<dyn ErasedCell>,
                }),
        );
    }

    fn len(&self) -> usize {
        self.map.values().filter(|w| w.strong_count() > 0).count()
    }
}

impl IdentityMap {
    fn typed<T: Entity>(&self) -> Option<&Typed<T>> {
        self.tables
            .get(&TypeId::of::<T>())
            .and_then(|t| t.as_any().downcast_ref::<Typed<T>>())
    }

    /// The table of `T`'s objects, made on first use.
    pub(crate) fn typed_mut<T: Entity>(&mut self) -> &mut Typed<T> {
        let table = self
            .tables
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Box::new(Typed::<T>::new()));
        match table.as_any_mut().downcast_mut::<Typed<T>>() {
            Some(typed) => typed,
            // The entry for TypeId::of::<T>() is always a Typed<T>.
            None => unreachable!("identity map entry of the wrong type"),
        }
    }

    /// True when the map may hold an object of `T`.
    pub(crate) fn holds<T: Entity>(&self) -> bool {
        self.typed::<T>().is_some_and(|t| !t.map.is_empty())
    }

    pub(crate) fn get<T: Entity>(&self, key: &T::Key) -> Option<Arc<Cell<T>>> {
        self.typed::<T>()?.get(key)
    }

    /// Inserts `cell` under `key`; returns the live object already there under that key, if
    /// it is another one.
    pub(crate) fn insert<T: Entity>(
        &mut self,
        key: T::Key,
        cell: Arc<Cell<T>>,
    ) -> Option<Arc<Cell<T>>> {
        self.typed_mut::<T>().insert(key, &cell)
    }

    /// Puts `cell` under `key`, in place of whatever was there.
    pub(crate) fn replace<T: Entity>(&mut self, key: T::Key, cell: &Arc<Cell<T>>) {
        self.typed_mut::<T>().map.insert(key, Arc::downgrade(cell));
    }

    /// Removes the entry for `key` if it is `cell`.
    pub(crate) fn remove<T: Entity>(&mut self, key: &T::Key, cell: &Arc<Cell<T>>) {
        if let Some(typed) = self
            .tables
            .get_mut(&TypeId::of::<T>())
            .and_then(|t| t.as_any_mut().downcast_mut::<Typed<T>>())
        {
            if typed
                .map
                .get(key)
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(cell)))
            {
                typed.map.remove(key);
            }
        }
    }

    pub(crate) fn objects(&self) -> Vec<AnyObj> {
        let mut out = Vec::new();
        for table in self.tables.values() {
            table.objects(&mut out);
        }
        out
    }

    pub(crate) fn len(&self) -> usize {
        self.tables.values().map(|t| t.len()).sum()
    }

    pub(crate) fn clear(&mut self) -> Vec<AnyObj> {
        let all = self.objects();
        self.tables.clear();
        all
    }
}

/// The session that loaded objects belong to.
#[derive(Clone, Copy)]
pub(crate) struct Owner<'a> {
    /// The session's id.
    pub(crate) session: u64,
    /// Its list of objects for the next flush.
    pub(crate) sink: &'a DirtySink,
}

/// Where loaded rows become objects: the session that runs a statement (its identity map, and
/// the owner its objects get). Loaders are data the session executes; they reach it only
/// through this.
pub(crate) trait LoadTarget: Sync {
    /// Runs `f` on the identity map, under the session's state lock.
    fn load(&self, f: &mut dyn FnMut(&mut IdentityMap, Owner<'_>));

    /// True when the target wants to hear of new objects loaded (lifecycle listeners).
    fn wants_loaded(&self) -> bool {
        false
    }

    /// New objects a load made, told after the state lock is released.
    fn loaded(&self, _fresh: Vec<AnyObj>) {}
}

/// [`load_rows_at`] on `target`'s identity map: the one way rows become session objects.
///
/// # Errors
/// As [`load_rows_at`].
pub(crate) fn load_into<'r, T: Entity, I>(
    target: &dyn LoadTarget,
    rows: I,
    offset: usize,
    sql: &str,
    populate_existing: bool,
) -> Result<Vec<Obj<T>>>
where
    I: IntoIterator<Item = &'r Row>,
{
    let mut rows = Some(rows);
    let mut out = Ok(Vec::new());
    let mut fresh = target.wants_loaded().then(Vec::new);
    target.load(&mut |map, owner| {
        if let Some(rows) = rows.take() {
            out =
                load_rows_at::<T, I>(map, owner, rows, offset, sql, populate_existing, &mut fresh);
        }
    });
    if let Some(fresh) = fresh.filter(|f| !f.is_empty()) {
        target.loaded(fresh);
    }
    out
}

/// Turns rows (this table's columns at `offset..`) into the session's objects: the object
/// already in the identity map for each key (refreshed when it was expired, or always with
/// `populate_existing`), or a new persistent one.
///
/// # Errors
/// The driver's error (with `sql`) when a column does not decode.
fn load_rows_at<'r, T: Entity, I>(
    map: &mut IdentityMap,
    owner: Owner<'_>,
    rows: I,
    offset: usize,
    sql: &str,
    populate_existing: bool,
    fresh: &mut Option<Vec<AnyObj>>,
) -> Result<Vec<Obj<T>>>
where
    I: IntoIterator<Item = &'r Row>,
{
    let rows = rows.into_iter();
    let typed = map.typed_mut::<T>();
    // Dead entries go before the batch (a stream's earlier chunks, say), not during it: the
    // batch's own objects are alive until it returns.
    typed.sweep();
    typed.reserve(rows.size_hint().0);
    rows.map(|row| {
        let (obj, new) = load_row::<T>(typed, owner, row, offset, sql, populate_existing)?;
        if let (true, Some(fresh)) = (new, fresh.as_mut()) {
            fresh.push(obj.erase());
        }
        Ok(obj)
    })
    .collect()
}

fn load_row<T: Entity>(
    identity: &mut Typed<T>,
    owner: Owner<'_>,
    row: &Row,
    offset: usize,
    sql: &str,
    populate_existing: bool,
) -> Result<(Obj<T>, bool)> {
    let key = T::key_from_row(row, offset).map_err(|e| Error::row(e, row, sql))?;
    if let Some(cell) = identity.get(&key) {
        let refresh = populate_existing || cell.data.read_recursive().expired.any();
        if refresh {
            // Set the columns on the live value, so loaded relationships stay.
            let mut data = cell.data.write();
            if populate_existing {
                // populate_existing overwrites the object, unflushed changes included
                // (SQLAlchemy's).
                for c in 0..T::TABLE.columns.len() {
                    data.value
                        .set_column(c, row, offset + c)
                        .map_err(|e| Error::row(e, row, sql))?;
                }
                data.committed = None;
                data.expired.clear_all();
                drop(data);
                cell.meta().touched = false;
            } else {
                // Only the expired columns: unflushed changes to the others stay.
                let pairs: Vec<(usize, usize)> = (0..T::TABLE.columns.len())
                    .filter(|&c| data.expired.is(c))
                    .map(|c| (c, offset + c))
                    .collect();
                let changed = data
                    .load_columns(&pairs, row)
                    .map_err(|e| Error::row(e, row, sql))?;
                drop(data);
                cell.meta().touched = changed;
            }
        }
        return Ok((Obj::from_cell(cell), false));
    }
    let value = T::from_row(row, offset).map_err(|e| Error::row(e, row, sql))?;
    let obj = Obj::loaded(value, owner.session, owner.sink);
    identity.insert_unswept(key, &obj.cell);
    Ok((obj, true))
}
