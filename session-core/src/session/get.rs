//! `get` with options ([`GetOptions`]: populate_existing, with_for_update), `refresh` with a
//! row lock, and the closure form of `begin_nested`.

use super::AsyncSession;
use super::ops::select_all_sql;
use crate::error::{Error, Result};
use crate::model::{Entity, Obj, check_none_held};
use std::collections::HashMap;

use crate::sql::quote;
use crate::statement::{Loader, LoaderKind, RowLock};

/// Keys per `get_many` query.
pub const GET_MANY_CHUNK: usize = 50_000;

/// An identity-map object `get` may return without SQL: persistent, not deleted, not expired.
fn usable<T: Entity>(obj: &Obj<T>) -> bool {
    if obj.cell.data.read_recursive().expired.any() {
        return false;
    }
    let meta = obj.cell.meta();
    meta.status == crate::model::ObjectState::Persistent && !meta.marked_deleted
}

/// Options of [`AsyncSession::get_with`] and [`AsyncSession::get_one_with`] for entity `T`
/// (SQLAlchemy's keyword arguments of `Session.get()`). `populate_existing` and
/// `with_for_update` make `get` send its SELECT even when the object is already in the
/// identity map; loader options load relationships of the object it returns.
///
/// ```
/// use session_core::{Entity, GetOptions, RowLock};
/// #[derive(Debug, Clone, Default, Entity)]
/// #[entity(table = "account")]
/// struct Account {
///     #[entity(primary_key)]
///     id: i32,
/// }
/// let options = GetOptions::<Account>::new()
///     .populate_existing()
///     .with_for_update(RowLock::update().skip_locked());
/// assert!(options.is_populate_existing());
/// assert!(options.lock().is_some());
/// ```
pub struct GetOptions<T: Entity> {
    populate_existing: bool,
    lock: Option<RowLock>,
    loaders: Vec<Loader<T>>,
}

impl<T: Entity> Default for GetOptions<T> {
    fn default() -> Self {
        GetOptions {
            populate_existing: false,
            lock: None,
            loaders: Vec::new(),
        }
    }
}

impl<T: Entity> std::fmt::Debug for GetOptions<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetOptions")
            .field("populate_existing", &self.populate_existing)
            .field("lock", &self.lock)
            .field("loaders", &self.loaders.len())
            .finish()
    }
}

impl<T: Entity> GetOptions<T> {
    /// No options: [`AsyncSession::get_with`] behaves as [`AsyncSession::get`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Reload the object even when it is in the identity map, overwriting its attributes
    /// with the row, unflushed changes included (SQLAlchemy's `populate_existing=True`).
    #[must_use]
    pub fn populate_existing(mut self) -> Self {
        self.populate_existing = true;
        self
    }

    /// Lock the row with `lock` (`FOR UPDATE`, `FOR SHARE`, ..., `NOWAIT`, `SKIP LOCKED`,
    /// `OF t`; SQLAlchemy's `with_for_update=...`): the SELECT is sent also for an object
    /// already in the identity map, which it leaves as it is unless `populate_existing`.
    #[must_use]
    pub fn with_for_update(mut self, lock: RowLock) -> Self {
        self.lock = Some(lock);
        self
    }

    /// A loader option (SQLAlchemy's `get(A, 1, options=[selectinload(A.bs)])`): the
    /// relationship is loaded for the object `get` returns, also when it came from the
    /// identity map (one query per loader, as [`AsyncSession::load`]). Only
    /// [`selectinload`](crate::selectinload) applies here.
    #[must_use]
    pub fn options(mut self, loader: impl Into<Loader<T>>) -> Self {
        self.loaders.push(loader.into());
        self
    }

    /// Whether [`GetOptions::populate_existing`] was asked for.
    pub fn is_populate_existing(&self) -> bool {
        self.populate_existing
    }

    /// The row lock, if any.
    pub fn lock(&self) -> Option<&RowLock> {
        self.lock.as_ref()
    }

    /// True when `get` must send its SELECT whatever the identity map holds.
    fn always_select(&self) -> bool {
        self.populate_existing || self.lock.is_some()
    }
}

impl AsyncSession {
    /// Implements [`AsyncSession::get_with`].
    pub(crate) async fn get_with_impl<T: Entity>(
        &self,
        key: T::Key,
        mut options: GetOptions<T>,
    ) -> Result<Option<Obj<T>>> {
        let loaders = std::mem::take(&mut options.loaders);
        let obj = self.get_with_options(key, options).await?;
        if let Some(obj) = &obj {
            for loader in loaders {
                self.load_impl(std::slice::from_ref(obj), loader).await?;
            }
        }
        Ok(obj)
    }

    /// [`AsyncSession::get_with`] without its loaders.
    async fn get_with_options<T: Entity>(
        &self,
        key: T::Key,
        options: GetOptions<T>,
    ) -> Result<Option<Obj<T>>> {
        if !options.always_select() {
            return self.get::<T>(key).await;
        }
        check_none_held("AsyncSession::get")?;
        if let Some(message) = options.lock.as_ref().and_then(RowLock::error) {
            return Err(Error::InvalidRequest(message));
        }
        self.state().check_usable()?;
        let mut conns = self.lock_conns()?;
        if self.autoflush() && self.has_changes(&self.state()) {
            self.flush_locked(&mut conns).await?;
        }
        let engine = self.resolve_bind(Some(T::TABLE), Some(std::any::TypeId::of::<T>()), false)?;
        let mut sql = select_all_sql::<T>().to_string();
        if let Some(lock) = &options.lock {
            sql.push_str(&lock.sql(&[]));
        }
        let conn = self.conn_for_read(&mut conns, &engine, &sql).await?;
        let row = conn.query_opt(&sql, &T::key_params(&key)).await?;
        drop(conns);
        let obj = match row {
            None => None,
            Some(row) => Some(self.load_row::<T>(&row, &sql, options.populate_existing)?),
        };
        // The lifecycle events of the load (as `get`).
        self.fire_pending()?;
        Ok(obj)
    }

    /// Implements [`AsyncSession::get_one_with`].
    pub(crate) async fn get_one_with_impl<T: Entity>(
        &self,
        key: T::Key,
        options: GetOptions<T>,
    ) -> Result<Obj<T>> {
        self.get_with_impl::<T>(key, options)
            .await?
            .ok_or(Error::NoResultFound)
    }

    /// Implements [`AsyncSession::get_many`].
    pub(crate) async fn get_many_impl<T: Entity>(
        &self,
        keys: &[T::Key],
    ) -> Result<Vec<Option<Obj<T>>>> {
        check_none_held("AsyncSession::get_many")?;
        let mut found: HashMap<T::Key, Obj<T>> = HashMap::with_capacity(keys.len());
        let mut missing: Vec<T::Key> = Vec::new();
        {
            let state = self.state();
            state.check_usable()?;
            let mut asked = std::collections::HashSet::with_capacity(keys.len());
            for key in keys {
                if !asked.insert(key) {
                    continue;
                }
                match state.identity.get::<T>(key).map(Obj::from_cell) {
                    Some(obj) if usable(&obj) => {
                        found.insert(key.clone(), obj);
                    }
                    _ => missing.push(key.clone()),
                }
            }
        }
        if !missing.is_empty() {
            if T::key_arrays(&missing[..1]).is_empty() {
                // A hand-written entity without key arrays: one get per key.
                for key in missing {
                    if let Some(obj) = self.get::<T>(key.clone()).await? {
                        found.insert(key, obj);
                    }
                }
            } else {
                for obj in self.load_keys::<T>(&missing).await? {
                    found.insert(obj.peek(Entity::key), obj);
                }
            }
        }
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    /// Loads the rows of `keys` (none in the identity map usable), in chunks of
    /// [`GET_MANY_CHUNK`] keys, one `unnest` query each.
    async fn load_keys<T: Entity>(&self, keys: &[T::Key]) -> Result<Vec<Obj<T>>> {
        let table = T::TABLE;
        let key_cols: Vec<usize> = table.key_columns().collect();
        let names: Vec<String> = key_cols
            .iter()
            .map(|&i| format!("{}.{}", quote(table.name), quote(table.columns[i].name)))
            .collect();
        let arrays: Vec<String> = key_cols
            .iter()
            .enumerate()
            .map(|(n, &i)| format!("${}::{}[]", n + 1, table.columns[i].sql_type))
            .collect();
        let select = select_all_sql::<T>();
        let select = select.split(" WHERE ").next().unwrap_or_default();
        // One key column: `= ANY($1)`, which PostgreSQL plans as an index scan over the array;
        // several: the rows of `unnest` compared as a tuple.
        let sql = match (names.as_slice(), arrays.as_slice()) {
            ([name], [array]) => format!("{select} WHERE {name} = ANY({array})"),
            _ => format!(
                "{select} WHERE ({}) IN (SELECT * FROM unnest({}))",
                names.join(", "),
                arrays.join(", ")
            ),
        };
        let mut conns = self.lock_conns()?;
        if self.autoflush() && self.has_changes(&self.state()) {
            self.flush_locked(&mut conns).await?;
        }
        let engine = self.resolve_bind(Some(table), Some(std::any::TypeId::of::<T>()), false)?;
        let conn = self.conn_for_read(&mut conns, &engine, &sql).await?;
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(GET_MANY_CHUNK) {
            let params = T::key_arrays(chunk);
            let refs: Vec<crate::connection::Param<'_>> = params
                .iter()
                .map(|p| &**p as crate::connection::Param<'_>)
                .collect();
            // Unnamed: the plan is made with the keys each time (see the loaders).
            let rows = conn.query_with(&sql, &refs, false).await?;
            out.extend(crate::identity::load_into::<T, _>(
                self, &rows, 0, &sql, false,
            )?);
        }
        drop(conns);
        self.fire_pending()?;
        Ok(out)
    }

    /// Implements [`AsyncSession::load`].
    pub(crate) async fn load_impl<T: Entity>(
        &self,
        objs: &[Obj<T>],
        loader: Loader<T>,
    ) -> Result<()> {
        check_none_held("AsyncSession::load")?;
        let run = match loader.kind {
            LoaderKind::Select(run) => run,
            LoaderKind::Joined(_) => {
                return Err(Error::InvalidRequest(
                    "joinedload adds a join to a query; for objects already loaded use \
                     selectinload(...), which loads the relationship of all of them in one \
                     query"
                        .into(),
                ));
            }
        };
        if objs.is_empty() {
            return Ok(());
        }
        let mut conns = self.lock_conns()?;
        if self.autoflush() && self.has_changes(&self.state()) {
            self.flush_locked(&mut conns).await?;
        }
        let engine = self.resolve_bind(Some(T::TABLE), Some(std::any::TypeId::of::<T>()), false)?;
        // The loaders only read.
        let conn = self.conn_for_read(&mut conns, &engine, "SELECT").await?;
        run(self, conn, objs).await?;
        drop(conns);
        self.fire_pending()
    }

    /// Implements [`AsyncSession::refresh_with`].
    pub(crate) async fn refresh_with_impl<T: Entity>(
        &self,
        obj: &Obj<T>,
        attributes: &[&dyn crate::Attribute<T>],
        lock: RowLock,
    ) -> Result<()> {
        self.refresh_locking(obj, attributes, Some(&lock)).await
    }

    /// Implements [`AsyncSession::nested_transaction`]: SQLAlchemy's `with
    /// session.begin_nested():`, whose exit commits the savepoint when the block succeeded
    /// and rolls it back when it raised, leaving the enclosing transaction open.
    pub(crate) async fn nested_transaction_impl<T, E, F>(
        &self,
        body: F,
    ) -> std::result::Result<T, E>
    where
        F: AsyncFnOnce(&AsyncSession) -> std::result::Result<T, E>,
        E: From<Error>,
    {
        let savepoint = self.begin_nested().await?;
        let out = body(self).await;
        if !savepoint.is_current() {
            // The body released or rolled back the savepoint (or the whole transaction).
            savepoint.forget();
            return out;
        }
        match out {
            Ok(value) => {
                savepoint.commit().await?;
                Ok(value)
            }
            Err(e) => {
                if let Err(rollback) = savepoint.rollback().await {
                    tracing::warn!(target: "session_core::session", error = %rollback,
                        "rolling back to the savepoint after a failed body failed");
                }
                Err(e)
            }
        }
    }
}
