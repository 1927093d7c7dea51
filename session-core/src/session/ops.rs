//! Object operations: add, delete, get, refresh, merge, expire, expunge, and the collections.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use tokio_postgres::Row;

use super::{AsyncSession, lock};
use crate::error::{Error, Result};
use crate::identity::{LoadTarget, Owner, load_into};
use crate::model::Entity;
use crate::model::{AnyObj, Obj, ObjectState, check_none_held, held_by_this_thread};
use crate::sql;

/// An identity key: the entity's table and a primary key (SQLAlchemy's
/// `(cls, (pk,), identity_token)`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdentityKey<T: Entity> {
    /// The entity's table name.
    pub table: &'static str,
    /// The primary key.
    pub key: T::Key,
}

/// `SELECT <all columns> FROM t WHERE <key> = $1 ...`, built once per table.
pub(super) fn select_all_sql<T: Entity>() -> Arc<str> {
    static CACHE: OnceLock<RwLock<HashMap<usize, Arc<str>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(RwLock::default);
    let key = T::TABLE as *const crate::model::Table as usize;
    if let Some(sql) = cache.read().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return sql.clone();
    }
    let all: Vec<usize> = (0..T::TABLE.columns.len()).collect();
    let sql: Arc<str> = select_sql::<T>(&all).into();
    cache
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, sql.clone());
    sql
}

pub(super) fn select_sql<T: Entity>(columns: &[usize]) -> String {
    sql::select_by_key(T::TABLE, columns)
}

impl AsyncSession {
    /// Implements [`AsyncSession::add`].
    pub(crate) fn add_impl<T: Entity>(&self, obj: &Obj<T>) -> Result<()> {
        self.add_any(&obj.erase())
    }

    /// Implements [`AsyncSession::add_all`].
    pub(crate) fn add_all_impl<'a, T: Entity>(
        &self,
        objs: impl IntoIterator<Item = &'a Obj<T>>,
    ) -> Result<()> {
        for obj in objs {
            self.add(obj)?;
        }
        Ok(())
    }

    /// Implements [`AsyncSession::add_any`].
    pub(crate) fn add_any_impl(&self, obj: &AnyObj) -> Result<()> {
        check_none_held("AsyncSession::add")?;
        let attaching = obj.meta().session != Some(self.inner.id);
        if attaching {
            self.fire_attach(true, obj)?;
        }
        {
            let mut state = self.state();
            state.check_usable()?;
            state.add(obj, self.owner(), AsyncSession::is_alive)?;
            // Cascade along loaded relationships (SQLAlchemy's "save-update" cascade).
            self.cascade(&mut state, vec![obj.clone()])?;
        }
        self.fire_pending()?;
        if attaching {
            self.fire_attach(false, obj)?;
        }
        Ok(())
    }

    /// Implements [`AsyncSession::delete`].
    pub(crate) fn delete_impl<T: Entity>(&self, obj: &Obj<T>) -> Result<()> {
        check_none_held("AsyncSession::delete")?;
        {
            let mut state = self.state();
            state.check_usable()?;
            state.delete(&obj.erase(), self.owner(), AsyncSession::is_alive)?;
        }
        self.fire_pending()
    }

    /// Implements [`AsyncSession::delete_all`].
    pub(crate) fn delete_all_impl<'a, T: Entity>(
        &self,
        objs: impl IntoIterator<Item = &'a Obj<T>>,
    ) -> Result<()> {
        for obj in objs {
            self.delete(obj)?;
        }
        Ok(())
    }

    /// Implements [`AsyncSession::make_transient`].
    pub(crate) fn make_transient_impl<T: Entity>(obj: &Obj<T>) {
        use crate::model::ErasedCell;
        obj.cell.make_transient();
    }

    /// Implements [`AsyncSession::get`].
    pub(crate) async fn get_impl<T: Entity>(&self, key: T::Key) -> Result<Option<Obj<T>>> {
        check_none_held("AsyncSession::get")?;
        {
            let state = self.state();
            state.check_usable()?;
            if let Some(cell) = state.identity.get::<T>(&key) {
                let expired = cell.data.read_recursive().expired.any();
                let meta = cell.meta();
                let usable =
                    meta.status == ObjectState::Persistent && !meta.marked_deleted && !expired;
                drop(meta);
                if usable {
                    return Ok(Some(Obj::from_cell(cell)));
                }
            }
        }
        let mut conns = self.lock_conns()?;
        if self.autoflush() && self.has_changes(&self.state()) {
            self.flush_locked(&mut conns).await?;
        }
        let engine = self.resolve_bind(Some(T::TABLE), Some(std::any::TypeId::of::<T>()), false)?;
        let conn = self.conn_for(&mut conns, &engine).await?;
        let sql = select_all_sql::<T>();
        let row = conn.query_opt(&sql, &T::key_params(&key)).await?;
        drop(conns);
        let obj = match row {
            None => None,
            Some(row) => Some(self.load_row::<T>(&row, &sql, false)?),
        };
        self.fire_pending()?;
        Ok(obj)
    }

    /// Implements [`AsyncSession::get_one`].
    pub(crate) async fn get_one_impl<T: Entity>(&self, key: T::Key) -> Result<Obj<T>> {
        self.get::<T>(key).await?.ok_or(Error::NoResultFound)
    }

    /// The owner of the objects this session loads.
    pub(crate) fn owner(&self) -> Owner<'_> {
        Owner {
            session: self.inner.id,
            sink: &self.inner.dirty,
        }
    }

    /// Turns a row laid out as `T::TABLE.columns` into the session's object for its key.
    pub(crate) fn load_row<T: Entity>(
        &self,
        row: &Row,
        sql: &str,
        populate_existing: bool,
    ) -> Result<Obj<T>> {
        let mut objs = load_into::<T, _>(self, [row], 0, sql, populate_existing)?;
        objs.pop().ok_or(Error::NoResultFound)
    }

    /// Implements [`AsyncSession::refresh`].
    pub(crate) async fn refresh_impl<T: Entity>(
        &self,
        obj: &Obj<T>,
        attributes: &[&dyn crate::Attribute<T>],
    ) -> Result<()> {
        self.refresh_locking(obj, attributes, None).await
    }

    /// [`AsyncSession::refresh`], its SELECT ending with `lock`'s clause when given (for
    /// `refresh_with`).
    pub(super) async fn refresh_locking<T: Entity>(
        &self,
        obj: &Obj<T>,
        attributes: &[&dyn crate::Attribute<T>],
        lock: Option<&crate::RowLock>,
    ) -> Result<()> {
        check_none_held("AsyncSession::refresh")?;
        if let Some(message) = lock.and_then(crate::RowLock::error) {
            return Err(Error::InvalidRequest(message));
        }
        let columns = self.persistent_columns(obj, attributes)?;
        let mut conns = self.lock_conns()?;
        if self.autoflush() && self.has_changes(&self.state()) {
            self.flush_locked(&mut conns).await?;
        }
        if attributes.is_empty() {
            // `cascade = "refresh-expire"`: what the object's relationships hold is expired
            // (SQLAlchemy's refresh), to load again when next asked for.
            for other in self.cascaded(&obj.erase(), crate::CascadeKind::RefreshExpire) {
                if self.holds_persistent(&other) {
                    other.cell.expire(None);
                }
            }
        }
        let key = obj.cell.data.read_recursive().row_key();
        let engine = self.resolve_bind(Some(T::TABLE), Some(std::any::TypeId::of::<T>()), false)?;
        let conn = self.conn_for(&mut conns, &engine).await?;
        let mut sql = select_sql::<T>(&columns);
        if let Some(lock) = lock {
            sql.push_str(&lock.sql(&[]));
        }
        let row = conn.query_opt(&sql, &T::key_params(&key)).await?;
        drop(conns);
        let row = row.ok_or_else(|| {
            Error::InvalidRequest(format!("Could not refresh instance '{obj:?}'"))
        })?;
        let pairs: Vec<(usize, usize)> =
            columns.iter().enumerate().map(|(at, &c)| (c, at)).collect();
        let changed = obj
            .cell
            .data
            .write()
            .load_columns(&pairs, &row)
            .map_err(|e| Error::statement(e, &sql))?;
        obj.cell.meta().touched = changed;
        Ok(())
    }

    /// Implements [`AsyncSession::expire`].
    pub(crate) fn expire_impl<T: Entity>(
        &self,
        obj: &Obj<T>,
        attributes: &[&dyn crate::Attribute<T>],
    ) -> Result<()> {
        check_none_held("AsyncSession::expire")?;
        let columns = self.persistent_columns(obj, attributes)?;
        use crate::model::ErasedCell;
        if attributes.is_empty() {
            // Collected first: expiring unloads the relationships they are reached through.
            let cascaded = self.cascaded(&obj.erase(), crate::CascadeKind::RefreshExpire);
            obj.cell.expire(None);
            for other in cascaded {
                if self.holds_persistent(&other) {
                    other.cell.expire(None);
                }
            }
        } else {
            obj.cell.expire(Some(&columns));
        }
        Ok(())
    }

    /// The objects reached from `root` through relationships whose cascade has `kind`, and
    /// from those in turn (SQLAlchemy's `cascade_iterator`), `root` excluded.
    pub(super) fn cascaded(&self, root: &AnyObj, kind: crate::CascadeKind) -> Vec<AnyObj> {
        let mut seen = std::collections::HashSet::from([root.id()]);
        let mut queue = vec![root.clone()];
        let mut out = Vec::new();
        while let Some(obj) = queue.pop() {
            obj.cell.clone().cascade_targets(kind, &mut |other| {
                if seen.insert(other.id()) {
                    out.push(other.clone());
                    queue.push(other);
                }
            });
        }
        out
    }

    /// True when `obj` is a persistent object of this session.
    fn holds_persistent(&self, obj: &AnyObj) -> bool {
        let m = obj.meta();
        m.session == Some(self.inner.id) && m.status == ObjectState::Persistent
    }

    /// Implements [`AsyncSession::expire_all`].
    pub(crate) fn expire_all_impl(&self) {
        for obj in self.state().identity.objects() {
            obj.cell.expire(None);
        }
    }

    /// The columns of `attributes` (all of them for none), once `obj` is found persistent in
    /// this session.
    fn persistent_columns<T: Entity>(
        &self,
        obj: &Obj<T>,
        attributes: &[&dyn crate::Attribute<T>],
    ) -> Result<Vec<usize>> {
        let (status, session) = {
            let meta = obj.cell.meta();
            (meta.status, meta.session)
        };
        if status != ObjectState::Persistent || session != Some(self.inner.id) {
            return Err(Error::InvalidRequest(format!(
                "Instance '{obj:?}' is not persistent within this Session"
            )));
        }
        if attributes.is_empty() {
            return Ok((0..T::TABLE.columns.len()).collect());
        }
        let mut columns: Vec<usize> = attributes.iter().map(|a| a.column_index()).collect();
        columns.sort_unstable();
        columns.dedup();
        Ok(columns)
    }

    /// Implements [`AsyncSession::expunge`].
    pub(crate) fn expunge_impl<T: Entity>(&self, obj: &Obj<T>) -> Result<()> {
        check_none_held("AsyncSession::expunge")?;
        let root = obj.erase();
        let cascaded = self.cascaded(&root, crate::CascadeKind::Expunge);
        {
            let mut state = self.state();
            state.expunge(&root, self.inner.id)?;
            for other in &cascaded {
                if other.meta().session == Some(self.inner.id) {
                    state.expunge(other, self.inner.id)?;
                }
            }
        }
        self.fire_pending()
    }

    /// Implements [`AsyncSession::expunge_all`].
    pub(crate) fn expunge_all_impl(&self) {
        self.state().expunge_all(false);
        lock(&self.inner.dirty).clear();
        if let Err(e) = self.fire_pending() {
            tracing::warn!(target: "session_core::events", error = %e,
                "a listener failed during expunge_all");
        }
    }

    /// Implements [`AsyncSession::merge`].
    pub(crate) async fn merge_impl<T: Entity>(&self, source: &Obj<T>) -> Result<Obj<T>> {
        check_none_held("AsyncSession::merge")?;
        if self.autoflush() && self.has_changes(&self.state()) {
            self.flush().await?;
        }
        let root = source.erase();
        let merged = self.merge_graph(&root).await?;
        merged
            .downcast::<T>()
            .ok_or_else(|| Error::InvalidRequest("merge lost its object".into()))
    }

    /// Merges `root` and the objects reached from it through relationships with the `merge`
    /// cascade (SQLAlchemy's default): each into the session's object with its key (from the
    /// identity map, else loaded), or into a new pending copy; then each copy's relationships
    /// point at the other copies. Returns `root`'s copy.
    async fn merge_graph(&self, root: &AnyObj) -> Result<AnyObj> {
        let mut sources = vec![root.clone()];
        sources.extend(self.cascaded(root, crate::CascadeKind::Merge));
        let mut pairs: Vec<(AnyObj, AnyObj, bool)> = Vec::with_capacity(sources.len());
        {
            let mut conns = self.lock_conns()?;
            for source in sources {
                if self.holds_persistent(&source) || {
                    let m = source.meta();
                    m.session == Some(self.inner.id) && m.status == ObjectState::Pending
                } {
                    pairs.push((source.clone(), source, false)); // already this session's
                    continue;
                }
                let table = source.table();
                let t = source.cell.entity_type();
                let engine = self.resolve_bind(Some(table), Some(t), false)?;
                let mapper = crate::mapper::of(&source);
                let conn = self.conn_for(&mut conns, &engine).await?;
                let found = mapper.merge_target(self, conn, &source).await?;
                let (target, fresh) = match found {
                    Some(target) => (target, false),
                    None => (
                        mapper.copy_of(&source).ok_or_else(|| {
                            Error::InvalidRequest(format!("cannot copy {source:?} to merge it"))
                        })?,
                        true,
                    ),
                };
                pairs.push((source, target, fresh));
            }
        }
        let map: std::collections::HashMap<u64, AnyObj> =
            pairs.iter().map(|(s, t, _)| (s.id(), t.clone())).collect();
        let lookup = |o: &AnyObj| map.get(&o.id()).cloned();
        for (source, target, fresh) in &pairs {
            target.cell.clone().merge_from(source, *fresh, &lookup)?;
        }
        // Added once every copy points at the other copies (adding cascades), never at the
        // source's objects.
        for (_, target, _) in pairs.iter().filter(|(_, _, fresh)| *fresh) {
            self.add_any(target)?;
        }
        Ok(pairs[0].1.clone())
    }

    /// Implements [`AsyncSession::merge_all`]: one autoflush first, then every merge with
    /// autoflush off (SQLAlchemy's `merge_all`), so that one merge's changes are not flushed
    /// by the next one's load.
    pub(crate) async fn merge_all_impl<'a, T: Entity>(
        &self,
        sources: impl IntoIterator<Item = &'a Obj<T>>,
    ) -> Result<Vec<Obj<T>>> {
        check_none_held("AsyncSession::merge_all")?;
        if self.autoflush() && self.has_changes(&self.state()) {
            self.flush().await?;
        }
        let _no_autoflush = self.no_autoflush();
        let mut merged = Vec::new();
        for source in sources {
            merged.push(self.merge(source).await?);
        }
        Ok(merged)
    }

    /// Implements [`AsyncSession::is_modified`].
    pub(crate) fn is_modified_impl<T: Entity>(&self, obj: &Obj<T>) -> bool {
        if obj.cell.status() == ObjectState::Pending {
            return true;
        }
        if held_by_this_thread(obj.cell.id) == Some(true) {
            // The caller is writing it right now: it is being modified.
            return true;
        }
        obj.cell.data.read_recursive().has_changes()
    }

    /// Implements [`AsyncSession::contains`].
    pub(crate) fn contains_impl<T: Entity>(&self, obj: &Obj<T>) -> bool {
        let meta = obj.cell.meta();
        meta.session == Some(self.inner.id)
            && matches!(meta.status, ObjectState::Pending | ObjectState::Persistent)
    }

    /// Implements [`AsyncSession::iter`].
    pub(crate) fn iter_impl(&self) -> std::vec::IntoIter<AnyObj> {
        let state = self.state();
        let mut all = state.new.clone();
        all.extend(state.identity.objects());
        all.into_iter()
    }

    /// Implements [`AsyncSession::new_objects`].
    pub(crate) fn new_objects_impl(&self) -> Vec<AnyObj> {
        self.state().new.clone()
    }

    /// Implements [`AsyncSession::dirty`].
    pub(crate) fn dirty_impl(&self) -> Vec<AnyObj> {
        let me = self.inner.id;
        let mut seen = std::collections::HashSet::new();
        // Copied out first: the list's lock comes after an object's meta in the lock order.
        let queued: Vec<AnyObj> = lock(&self.inner.dirty).clone();
        queued
            .into_iter()
            .filter(|o| seen.insert(o.id()))
            .filter(|o| {
                let m = o.meta();
                m.status == ObjectState::Persistent
                    && m.session == Some(me)
                    && m.touched
                    && !m.marked_deleted
            })
            .collect()
    }

    /// Implements [`AsyncSession::deleted`].
    pub(crate) fn deleted_impl(&self) -> Vec<AnyObj> {
        self.state().deleted.clone()
    }

    /// Implements [`AsyncSession::identity_map`].
    pub(crate) fn identity_map_impl(&self) -> Vec<AnyObj> {
        self.state().identity.objects()
    }

    /// Implements [`AsyncSession::set_identity_map`].
    pub(crate) fn set_identity_map_impl(&self, objects: Vec<AnyObj>) -> Result<()> {
        self.expunge_all();
        for obj in &objects {
            self.add_any(obj)?;
        }
        Ok(())
    }

    /// Implements [`AsyncSession::object_session`].
    pub(crate) fn object_session_impl<T: Entity>(obj: &Obj<T>) -> Option<AsyncSession> {
        let id = obj.cell.meta().session?;
        AsyncSession::by_id(id)
    }

    /// Implements [`AsyncSession::identity_key`].
    pub(crate) fn identity_key_impl<T: Entity>(key: T::Key) -> IdentityKey<T> {
        IdentityKey {
            table: T::TABLE.name,
            key,
        }
    }

    /// Implements [`AsyncSession::len`].
    pub(crate) fn len_impl(&self) -> usize {
        let state = self.state();
        state.identity.len() + state.new.len()
    }

    /// Implements [`AsyncSession::is_empty`].
    pub(crate) fn is_empty_impl(&self) -> bool {
        self.len_impl() == 0
    }
}

impl LoadTarget for AsyncSession {
    fn load(&self, f: &mut dyn FnMut(&mut crate::identity::IdentityMap, Owner<'_>)) {
        let mut state = self.state();
        f(&mut state.identity, self.owner());
    }

    fn wants_loaded(&self) -> bool {
        self.inner.events.wants_lifecycle()
    }

    fn loaded(&self, fresh: Vec<AnyObj>) {
        let mut state = self.state();
        for obj in &fresh {
            state.note(super::events::Transition::LoadedAsPersistent, obj);
        }
    }
}
