//! `get` with options ([`GetOptions`]: populate_existing, with_for_update), `refresh` with a
//! row lock, and the closure form of `begin_nested`.

use super::AsyncSession;
use super::ops::select_all_sql;
use crate::error::{Error, Result};
use crate::model::{Entity, Obj, check_none_held};
use crate::statement::RowLock;

/// Options of [`AsyncSession::get_with`] and [`AsyncSession::get_one_with`] (SQLAlchemy's
/// keyword arguments of `Session.get()`). Either option makes `get` send its SELECT even when
/// the object is already in the identity map.
///
/// ```
/// use session_core::{GetOptions, RowLock};
/// let options = GetOptions::new()
///     .populate_existing()
///     .with_for_update(RowLock::update().skip_locked());
/// assert!(options.is_populate_existing());
/// assert!(options.lock().is_some());
/// ```
#[derive(Debug, Clone, Default)]
pub struct GetOptions {
    populate_existing: bool,
    lock: Option<RowLock>,
}

impl GetOptions {
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
        options: GetOptions,
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
        let conn = self.conn_for(&mut conns, &engine).await?;
        let mut sql = select_all_sql::<T>().to_string();
        if let Some(lock) = &options.lock {
            sql.push_str(&lock.sql(&[]));
        }
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
        options: GetOptions,
    ) -> Result<Obj<T>> {
        self.get_with_impl::<T>(key, options)
            .await?
            .ok_or(Error::NoResultFound)
    }

    /// Implements [`AsyncSession::refresh_with`].
    pub(crate) async fn refresh_with_impl<T: Entity>(
        &self,
        obj: &Obj<T>,
        attributes: &[&str],
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
