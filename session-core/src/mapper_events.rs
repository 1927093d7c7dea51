//! Mapper events (SQLAlchemy's `MapperEvents`): typed listeners per entity type, called by the
//! unit of work around each batch of INSERTs, UPDATEs and DELETEs. Registered through
//! [`Events`](crate::Events); stored here, below the mapper that calls them, so the mapper
//! needs nothing of sessions.
//!
//! `before_insert` / `before_update` listeners get `&mut T`: what they change is written by the
//! same statement (the everyday `updated_at` hook). The others get `&T`.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use crate::error::{Error, Result};
use crate::model::{AnyObj, Entity, Obj};

pub use crate::error::BoxError;

/// What a listener returns: `Err` stops the operation that fired the event, which returns
/// [`Error::Listener`] naming the event.
pub type ListenerResult = std::result::Result<(), BoxError>;

/// The mapper events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum MapperEvent {
    BeforeInsert,
    AfterInsert,
    BeforeUpdate,
    AfterUpdate,
    BeforeDelete,
    AfterDelete,
}

impl MapperEvent {
    pub(crate) fn name(self) -> &'static str {
        match self {
            MapperEvent::BeforeInsert => "before_insert",
            MapperEvent::AfterInsert => "after_insert",
            MapperEvent::BeforeUpdate => "before_update",
            MapperEvent::AfterUpdate => "after_update",
            MapperEvent::BeforeDelete => "before_delete",
            MapperEvent::AfterDelete => "after_delete",
        }
    }
}

type MutHook<T> = Arc<dyn Fn(&mut T) -> ListenerResult + Send + Sync>;
type RefHook<T> = Arc<dyn Fn(&T) -> ListenerResult + Send + Sync>;

/// One listener of `T`, erased into the per-type table.
enum Hook<T> {
    Mut(MutHook<T>),
    Ref(RefHook<T>),
}

type Erased = Arc<dyn Any + Send + Sync>;

/// The mapper listeners of one registry.
#[derive(Default)]
pub(crate) struct MapperHooks {
    any: AtomicBool,
    table: RwLock<HashMap<(TypeId, MapperEvent), Vec<Erased>>>,
}

impl MapperHooks {
    fn push<T: Entity>(&self, event: MapperEvent, hook: Hook<T>) {
        let mut table = self.table.write().unwrap_or_else(|p| p.into_inner());
        table
            .entry((TypeId::of::<T>(), event))
            .or_default()
            .push(Arc::new(hook));
        self.any.store(true, Ordering::Release);
    }

    pub(crate) fn push_mut<T: Entity>(
        &self,
        event: MapperEvent,
        f: impl Fn(&mut T) -> ListenerResult + Send + Sync + 'static,
    ) {
        self.push::<T>(event, Hook::Mut(Arc::new(f)));
    }

    pub(crate) fn push_ref<T: Entity>(
        &self,
        event: MapperEvent,
        f: impl Fn(&T) -> ListenerResult + Send + Sync + 'static,
    ) {
        self.push::<T>(event, Hook::Ref(Arc::new(f)));
    }

    /// The listeners of `T` for `event`, copied out (none are called under the table's lock).
    fn of(&self, t: TypeId, event: MapperEvent) -> Vec<Erased> {
        if !self.any.load(Ordering::Acquire) {
            return Vec::new();
        }
        let table = self.table.read().unwrap_or_else(|p| p.into_inner());
        table.get(&(t, event)).cloned().unwrap_or_default()
    }

    pub(crate) fn is_empty(&self) -> bool {
        !self.any.load(Ordering::Acquire)
    }
}

/// Calls `T`'s listeners for `event` in each of `registries` on every object of `objs` (all
/// of type `T`). A `&mut T` listener writes the object's value directly: the flush that fired
/// it writes the change, and the object is not queued again.
pub(crate) fn run<T: Entity>(
    registries: &[&MapperHooks],
    event: MapperEvent,
    objs: &[AnyObj],
) -> Result<()> {
    let hooks: Vec<Erased> = registries
        .iter()
        .flat_map(|r| r.of(TypeId::of::<T>(), event))
        .collect();
    if hooks.is_empty() {
        return Ok(());
    }
    for obj in objs {
        let Some(obj) = obj.downcast::<T>() else {
            continue;
        };
        for hook in &hooks {
            call(hook, &obj).map_err(|source| Error::Listener {
                event: event.name(),
                source,
            })?;
        }
    }
    Ok(())
}

fn call<T: Entity>(hook: &Erased, obj: &Obj<T>) -> ListenerResult {
    match hook.downcast_ref::<Hook<T>>() {
        Some(Hook::Mut(f)) => f(&mut obj.cell.data.write().value),
        Some(Hook::Ref(f)) => f(&obj.cell.data.read_recursive().value),
        None => Ok(()),
    }
}
