//! Before a flush deletes objects: the children of their one-to-many relationships with a
//! delete cascade that are not loaded, loaded into the session first (SQLAlchemy loads an
//! unloaded collection on delete unless `passive_deletes`), so that they are deleted with
//! their own cascades, level by level. Children whose key is only set to NULL are not loaded
//! (one UPDATE does it, `flush::orphans`); children with a NOT NULL key and no cascade are
//! not loaded either: the parent's DELETE fails on the database's foreign key, which names
//! them, and nothing of the flush is stored. The database's own `ON DELETE` action and
//! `passive_deletes = true` leave them to the database.

use std::any::TypeId;

use super::unit_of_work::{IdSet, database_action, is_flushable_update};
use super::{AsyncSession, Bound};
use crate::error::Result;
use crate::mapper;
use crate::model::{AnyObj, KeysFn, Table};

/// The parents whose children of one table and foreign-key column are loaded together.
struct Group {
    table: &'static Table,
    child_type: TypeId,
    column: usize,
    child_mapper: &'static (dyn std::any::Any + Send + Sync),
    keys: KeysFn,
    parents: Vec<AnyObj>,
}

impl AsyncSession {
    /// Loads what deleting the objects marked deleted must see (see the module docs): one
    /// query per child table and level. Returns the loaded objects, which the caller keeps
    /// alive until the flush is planned (the identity map holds objects weakly).
    pub(super) async fn load_for_delete(&self, conns: &mut Vec<Bound>) -> Result<Vec<AnyObj>> {
        let me = self.inner.id;
        let mut kept = Vec::new();
        let mut frontier: Vec<AnyObj> = self.state().deleted.clone();
        let mut seen = IdSet::default();
        while !frontier.is_empty() {
            let mut groups: Vec<Group> = Vec::new();
            for parent in std::mem::take(&mut frontier) {
                if !seen.insert(parent.id()) {
                    continue;
                }
                parent.cell.clone().dependents(&mut |d| {
                    let fk = &d.child_table.columns[d.fk_column];
                    let needed = d.loaded.is_none()
                        && d.cascade_delete
                        && !d.passive_deletes
                        && database_action(fk).is_none();
                    if !needed {
                        return;
                    }
                    match groups
                        .iter_mut()
                        .find(|g| g.child_type == d.child_type && g.column == d.fk_column)
                    {
                        Some(g) => g.parents.push(d.parent.clone()),
                        None => groups.push(Group {
                            table: d.child_table,
                            child_type: d.child_type,
                            column: d.fk_column,
                            child_mapper: d.child_mapper,
                            keys: d.parent_keys,
                            parents: vec![d.parent.clone()],
                        }),
                    }
                });
            }
            for g in groups {
                let engine = self.resolve_bind(Some(g.table), Some(g.child_type), true)?;
                let keys = (g.keys)(&g.parents)?;
                let conn = self.conn_for(conns, &engine).await?;
                let loaded = mapper::of_handle(g.child_mapper)
                    .load_where(self, conn, g.column, keys)
                    .await;
                let children = match loaded {
                    Ok(children) => children,
                    Err(e) => {
                        let depth = self.state().depth();
                        self.flush_failed(conns, depth, &e).await;
                        return Err(e);
                    }
                };
                // Their own children, when a cascade deletes them in turn.
                frontier.extend(
                    children
                        .iter()
                        .filter(|c| is_flushable_update(c, me))
                        .cloned(),
                );
                kept.extend(children);
            }
        }
        Ok(kept)
    }
}
