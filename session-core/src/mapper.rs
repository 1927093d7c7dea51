//! The mapper: per-entity-type operations the unit of work calls on type-erased objects
//! ([`AnyObj`]): registering them in the identity map and writing them with the batched SQL of
//! `flush`. Each entity type has one [`Mapper`], reached from any of its objects through the
//! opaque handle [`Entity::__mapper`] returns, so the object model below knows nothing of
//! identity maps, connections or SQL.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{OnceLock, RwLock};

use futures::future::BoxFuture;

use crate::connection::AsyncConnection;
use crate::error::Result;
use crate::flush;
use crate::identity::IdentityMap;
use crate::mapper_events::{self, MapperEvent, MapperHooks};
use crate::model::{AnyObj, Entity};

/// What the unit of work does with objects of one entity type, without knowing the type.
pub(crate) trait Mapper: Send + Sync {
    /// Registers `obj` in `map` under its key; describes the other object on a clash.
    fn identity_insert(&self, obj: &AnyObj, map: &mut IdentityMap) -> Option<String>;
    /// Removes `obj` (under the key of its row) from `map`.
    fn identity_remove(&self, obj: &AnyObj, map: &mut IdentityMap);
    /// INSERTs `objs`, all of this type.
    fn insert_batch<'a>(
        &self,
        conn: &'a mut AsyncConnection,
        objs: &'a [AnyObj],
    ) -> BoxFuture<'a, Result<()>>;
    /// UPDATEs the changed ones of `objs`; returns those.
    fn update_batch<'a>(
        &self,
        conn: &'a mut AsyncConnection,
        objs: &'a [AnyObj],
    ) -> BoxFuture<'a, Result<Vec<AnyObj>>>;
    /// DELETEs `objs`.
    fn delete_batch<'a>(
        &self,
        conn: &'a mut AsyncConnection,
        objs: &'a [AnyObj],
    ) -> BoxFuture<'a, Result<()>>;
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
    fn identity_insert(&self, obj: &AnyObj, map: &mut IdentityMap) -> Option<String> {
        let obj = obj.downcast::<T>()?;
        let key = obj.cell.data.read_recursive().value.key();
        map.insert::<T>(key, obj.cell).map(|other| other.describe())
    }

    fn identity_remove(&self, obj: &AnyObj, map: &mut IdentityMap) {
        let Some(obj) = obj.downcast::<T>() else {
            return;
        };
        let key = obj.cell.data.read_recursive().row_key();
        map.remove::<T>(&key, &obj.cell);
    }

    fn insert_batch<'a>(
        &self,
        conn: &'a mut AsyncConnection,
        objs: &'a [AnyObj],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(flush::insert_batch::<T>(conn, objs))
    }

    fn update_batch<'a>(
        &self,
        conn: &'a mut AsyncConnection,
        objs: &'a [AnyObj],
    ) -> BoxFuture<'a, Result<Vec<AnyObj>>> {
        Box::pin(flush::update_batch::<T>(conn, objs))
    }

    fn delete_batch<'a>(
        &self,
        conn: &'a mut AsyncConnection,
        objs: &'a [AnyObj],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(flush::delete_batch::<T>(conn, objs))
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
    match obj
        .cell
        .mapper_handle()
        .downcast_ref::<&'static dyn Mapper>()
    {
        Some(mapper) => *mapper,
        // `Entity::__mapper` is written by the derive as `__private::mapper::<Self>()`.
        None => unreachable!(
            "an entity's mapper handle is not a mapper: implement \
                              Entity::__mapper as session_core::__private::mapper::<Self>()"
        ),
    }
}
