//! The mapper: per-entity-type operations the unit of work calls on type-erased objects
//! ([`AnyObj`]): registering them in the identity map and writing them with the batched SQL of
//! `flush`. Each entity type has one [`Mapper`], reached from any of its objects through the
//! opaque handle [`Entity::__mapper`] returns, so the object model below knows nothing of
//! identity maps, connections or SQL.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock, RwLock};

use futures::future::BoxFuture;

use crate::connection::AsyncConnection;
use crate::error::Result;
use crate::flush::{self, Work};
use crate::identity::{IdentityMap, LoadTarget, load_into};
use crate::mapper_events::{self, MapperEvent, MapperHooks};
use crate::model::{AnyObj, Entity, OwnedParam};

/// What the unit of work does with objects of one entity type, without knowing the type.
pub(crate) trait Mapper: Send + Sync {
    /// The other live object (not marked deleted) that `map` holds under the key of `obj`, a
    /// new object, described; `None` as well when the server fills in the key.
    fn identity_conflict(&self, obj: &AnyObj, map: &IdentityMap) -> Option<String>;
    /// Registers `obj` in `map` under its key; describes the other object on a clash.
    fn identity_insert(&self, obj: &AnyObj, map: &mut IdentityMap) -> Option<String>;
    /// Registers `obj`, just inserted, in `map` under its key. Another object there (a key the
    /// server generated again, e.g. after its sequence was reset) is replaced and detached,
    /// with a warning (SQLAlchemy's).
    fn identity_register(&self, obj: &AnyObj, map: &mut IdentityMap);
    /// Removes `obj` (under the key of its row) from `map`.
    fn identity_remove(&self, obj: &AnyObj, map: &mut IdentityMap);
    /// The INSERTs of `objs`, all of this type.
    fn insert_work(&self, objs: &[AnyObj]) -> Result<Box<dyn Work>>;
    /// The UPDATEs of the changed ones of `objs`; `checked` has the server check the row
    /// counts (a COMMIT travels with them).
    fn update_work(&self, objs: &[AnyObj], checked: bool) -> Result<Box<dyn Work>>;
    /// The DELETEs of `objs`; `checked` as for [`Mapper::update_work`].
    fn delete_work(&self, objs: &[AnyObj], checked: bool) -> Result<Box<dyn Work>>;
    /// Loads into `target` the rows of this type whose column `column` is one of `keys` (an
    /// array of that column's type).
    fn load_where<'a>(
        &self,
        target: &'a dyn LoadTarget,
        conn: &'a mut AsyncConnection,
        column: usize,
        keys: OwnedParam,
    ) -> BoxFuture<'a, Result<Vec<AnyObj>>>;
    /// The object of `target` that merging `source` (an object of this type) writes into:
    /// the one in the identity map with its key, else the row loaded by key, else `None` (a
    /// new copy is needed).
    fn merge_target<'a>(
        &self,
        target: &'a dyn LoadTarget,
        conn: &'a mut AsyncConnection,
        source: &'a AnyObj,
    ) -> BoxFuture<'a, Result<Option<AnyObj>>>;
    /// A new object holding `source`'s value (the copy a merge adds), unattached.
    fn copy_of(&self, source: &AnyObj) -> Option<AnyObj>;
    /// Calls this type's listeners for `event` in `registries` on `objs`.
    fn run_hooks(
        &self,
        registries: &[&MapperHooks],
        event: MapperEvent,
        objs: &[AnyObj],
    ) -> Result<()>;
}

/// The mapper of `T`.
struct Typed<T>(PhantomData<fn() -> T>);

impl<T: Entity> Mapper for Typed<T> {
    fn identity_conflict(&self, obj: &AnyObj, map: &IdentityMap) -> Option<String> {
        let obj = obj.downcast::<T>()?;
        let key = {
            let data = obj.cell.data.read_recursive();
            let generated = T::TABLE
                .key_columns()
                .any(|c| T::TABLE.columns[c].server_filled() && data.value.column_is_unset(c));
            if generated {
                return None;
            }
            data.value.key()
        };
        let other = map.get::<T>(&key)?;
        if Arc::ptr_eq(&other, &obj.cell) || other.meta().marked_deleted {
            return None;
        }
        Some(other.describe())
    }

    fn identity_insert(&self, obj: &AnyObj, map: &mut IdentityMap) -> Option<String> {
        let obj = obj.downcast::<T>()?;
        let key = obj.cell.data.read_recursive().value.key();
        map.insert::<T>(key, obj.cell).map(|other| other.describe())
    }

    fn identity_register(&self, obj: &AnyObj, map: &mut IdentityMap) {
        let Some(obj) = obj.downcast::<T>() else {
            return;
        };
        let key = obj.cell.data.read_recursive().value.key();
        if let Some(other) = map.insert::<T>(key.clone(), obj.cell.clone()) {
            tracing::warn!(target: "session_core::session",
                "Identity map already had an identity for {key:?}, replacing it with newly \
                 flushed object {}; the object it held is detached", obj.cell.describe());
            map.replace::<T>(key, &obj.cell);
            let mut meta = other.meta();
            meta.status = crate::model::ObjectState::Detached;
            meta.session = None;
        }
    }

    fn identity_remove(&self, obj: &AnyObj, map: &mut IdentityMap) {
        let Some(obj) = obj.downcast::<T>() else {
            return;
        };
        let key = obj.cell.data.read_recursive().row_key();
        map.remove::<T>(&key, &obj.cell);
    }

    fn insert_work(&self, objs: &[AnyObj]) -> Result<Box<dyn Work>> {
        flush::insert_work::<T>(objs)
    }

    fn update_work(&self, objs: &[AnyObj], checked: bool) -> Result<Box<dyn Work>> {
        flush::update_work::<T>(objs, checked)
    }

    fn delete_work(&self, objs: &[AnyObj], checked: bool) -> Result<Box<dyn Work>> {
        flush::delete_work::<T>(objs, checked)
    }

    fn load_where<'a>(
        &self,
        target: &'a dyn LoadTarget,
        conn: &'a mut AsyncConnection,
        column: usize,
        keys: OwnedParam,
    ) -> BoxFuture<'a, Result<Vec<AnyObj>>> {
        Box::pin(async move {
            let t = T::TABLE;
            let col = &t.columns[column];
            let sql = format!(
                "SELECT {} FROM {} WHERE {} = ANY($1::{}[])",
                crate::sql::columns(t, &(0..t.columns.len()).collect::<Vec<_>>()),
                crate::sql::quote(t.name),
                crate::sql::quote(col.name),
                col.sql_type
            );
            let rows = conn.query_uncached(&sql, &[&*keys]).await?;
            let objs = load_into::<T, _>(target, &rows, 0, &sql, false)?;
            Ok(objs.iter().map(crate::model::Obj::erase).collect())
        })
    }

    fn merge_target<'a>(
        &self,
        target: &'a dyn LoadTarget,
        conn: &'a mut AsyncConnection,
        source: &'a AnyObj,
    ) -> BoxFuture<'a, Result<Option<AnyObj>>> {
        Box::pin(async move {
            let Some(source) = source.downcast::<T>() else {
                return Ok(None);
            };
            let (key, unset) = source.peek(|v| {
                let unset = T::TABLE
                    .key_columns()
                    .any(|c| T::TABLE.columns[c].server_filled() && v.column_is_unset(c));
                (v.key(), unset)
            });
            if unset {
                return Ok(None); // a key the server will give: a new row
            }
            let mut found = None;
            target.load(&mut |map, _| found = map.get::<T>(&key));
            // An expired one is loaded again below (the load refreshes it in place).
            if let Some(cell) = found.filter(|c| !c.data.read_recursive().expired.any()) {
                return Ok(Some(crate::model::Obj::from_cell(cell).erase()));
            }
            let all: Vec<usize> = (0..T::TABLE.columns.len()).collect();
            let sql = crate::sql::select_by_key(T::TABLE, &all);
            let rows = conn.query(&sql, &T::key_params(&key)).await?;
            let objs = load_into::<T, _>(target, &rows, 0, &sql, false)?;
            Ok(objs.first().map(crate::model::Obj::erase))
        })
    }

    fn copy_of(&self, source: &AnyObj) -> Option<AnyObj> {
        let source = source.downcast::<T>()?;
        Some(crate::model::Obj::new(source.peek(T::clone)).erase())
    }

    fn run_hooks(
        &self,
        registries: &[&MapperHooks],
        event: MapperEvent,
        objs: &[AnyObj],
    ) -> Result<()> {
        if registries.is_empty() {
            return Ok(());
        }
        mapper_events::run::<T>(registries, event, objs)
    }
}

type Handle = &'static (dyn Any + Send + Sync);

/// The opaque handle of `T`'s mapper (what [`Entity::__mapper`] returns): made once per type.
pub fn handle<T: Entity>() -> Handle {
    static HANDLES: OnceLock<RwLock<HashMap<TypeId, Handle>>> = OnceLock::new();
    let handles = HANDLES.get_or_init(RwLock::default);
    let id = TypeId::of::<T>();
    if let Some(h) = handles.read().unwrap_or_else(|p| p.into_inner()).get(&id) {
        return *h;
    }
    let mut handles = handles.write().unwrap_or_else(|p| p.into_inner());
    *handles.entry(id).or_insert_with(|| {
        let mapper: &'static dyn Mapper = Box::leak(Box::new(Typed::<T>(PhantomData)));
        Box::leak(Box::new(mapper))
    })
}

/// The mapper of `obj`'s entity type.
pub(crate) fn of(obj: &AnyObj) -> &'static dyn Mapper {
    of_handle(obj.cell.mapper_handle())
}

/// The mapper behind a handle [`Entity::__mapper`] returned.
pub(crate) fn of_handle(handle: Handle) -> &'static dyn Mapper {
    match handle.downcast_ref::<&'static dyn Mapper>() {
        Some(mapper) => *mapper,
        // `Entity::__mapper` is written by the derive as `__private::mapper::<Self>()`.
        None => unreachable!(
            "an entity's mapper handle is not a mapper: implement \
                              Entity::__mapper as session_core::__private::mapper::<Self>()"
        ),
    }
}
