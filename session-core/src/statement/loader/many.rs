//! Many-to-many relationships through a link table (SQLAlchemy's
//! `relationship(secondary=...)`): the descriptor `#[derive(Entity)]` writes (`A::C.bs`), its
//! select-in load (one query joining the link table for every parent), and its join path
//! (`select::<A>().join(A::C.bs)` joins the link table, then the target).

use std::collections::HashMap;
use std::hash::Hash;

use super::strategies::{CHUNK, Hasher, Next, select_fns, unloaded_collection};
use super::{IntoLoader, Loader, LoaderKind, Unloaded, run_next};
use crate::error::Error;
use crate::identity::load_into;
use crate::model::{Collection, ColumnType, Entity, Obj};
use crate::sql::quote;
use crate::statement::{Col, JoinOn, Relation};

/// A many-to-many relationship `P.children` through the link table `L` (what
/// `#[derive(Entity)]` generates as `A::C.bs` for
/// `relationship(secondary = "L", foreign_key = "a_id", target_foreign_key = "b_id")`): the
/// link table's two key columns, the two sides' key columns, and where the loaded collection
/// goes.
pub struct ManyToMany<P: Entity, C: Entity, L: Entity, K, KC> {
    /// The parent's key column.
    pub parent_column: Col<P, K>,
    /// The link table's column holding the parent's key.
    pub local: Col<L, K>,
    /// The link table's column holding the target's key.
    pub remote: Col<L, KC>,
    /// The target's key column.
    pub target_column: Col<C, KC>,
    /// The parent's key.
    pub parent_key: fn(&P) -> K,
    /// Stores the loaded collection on the parent.
    pub set: fn(&mut P, Collection<C>),
    /// Whether the parent's collection is loaded.
    pub is_loaded: fn(&P) -> bool,
    /// `Entity.field`, for messages.
    pub name: &'static str,
}

impl<P, C, L, K, KC> ManyToMany<P, C, L, K, KC>
where
    P: Entity,
    C: Entity,
    L: Entity,
    K: ColumnType,
    KC: ColumnType,
{
    /// `SELECT l.local, c.* FROM c JOIN l ON l.remote = c.key WHERE l.local = ANY($1)`.
    fn sql(&self) -> String {
        let (c, l) = (C::TABLE, L::TABLE);
        let local = &l.columns[self.local.index()];
        let cols: Vec<String> = c
            .columns
            .iter()
            .map(|col| format!("\"c\".{}", quote(col.name)))
            .collect();
        let keys: Vec<String> = c
            .key_columns()
            .map(|i| format!("\"c\".{}", quote(c.columns[i].name)))
            .collect();
        format!(
            "SELECT \"l\".{local_name}, {} FROM {} AS \"c\" JOIN {} AS \"l\" ON \"l\".{} = \
             \"c\".{} WHERE \"l\".{local_name} = ANY($1::{}[]) ORDER BY \"l\".{local_name}, {}",
            cols.join(", "),
            quote(c.name),
            quote(l.name),
            quote(l.columns[self.remote.index()].name),
            quote(c.columns[self.target_column.index()].name),
            local.sql_type,
            keys.join(", "),
            local_name = quote(local.name),
        )
    }
}

impl<P, C, L, K, KC> IntoLoader<P> for ManyToMany<P, C, L, K, KC>
where
    P: Entity,
    C: Entity,
    L: Entity,
    K: ColumnType + Hash + Eq,
    KC: ColumnType,
{
    type Target = C;

    fn select_loader(self, next: Vec<Loader<C>>) -> Loader<P> {
        self.select_then(select_fns(next))
    }

    fn unloaded_loader(self, how: Unloaded) -> Loader<P> {
        unloaded_collection(self.is_loaded, self.set, self.name, how)
    }
}

impl<P, C, L, K, KC> ManyToMany<P, C, L, K, KC>
where
    P: Entity,
    C: Entity,
    L: Entity,
    K: ColumnType + Hash + Eq,
    KC: ColumnType,
{
    pub(super) fn select_then(self, next: Next<C>) -> Loader<P> {
        let sql = self.sql();
        let (parent_key, set) = (self.parent_key, self.set);
        Loader {
            kind: LoaderKind::Select(Box::new(move |session, conn, parents| {
                let (next, sql) = (next.clone(), sql.clone());
                Box::pin(async move {
                    let mut keys: Vec<K> = parents.iter().map(|p| p.peek(parent_key)).collect();
                    let mut by_parent: HashMap<K, Vec<Obj<C>>, Hasher> =
                        HashMap::with_capacity_and_hasher(keys.len(), Hasher::default());
                    keys.retain(|k| by_parent.insert(k.clone(), Vec::new()).is_none());
                    let mut all: Vec<Obj<C>> = Vec::new();
                    let mut distinct = std::collections::HashSet::<u64, Hasher>::default();
                    for chunk in keys.chunks(CHUNK) {
                        let rows = conn.query_uncached(&sql, &[&chunk]).await?;
                        let children = load_into::<C, _>(session, &rows, 1, &sql, false)?;
                        for (row, child) in rows.iter().zip(children) {
                            let key: K = row.try_get(0).map_err(|e| Error::row(e, row, &sql))?;
                            if distinct.insert(child.cell.id) {
                                all.push(child.clone());
                            }
                            by_parent.entry(key).or_default().push(child);
                        }
                    }
                    for parent in parents {
                        let key = parent.peek(parent_key);
                        let Some(children) = by_parent.remove(&key) else {
                            continue; // a repeat of a parent already filled
                        };
                        // What the database holds: the value's collection and the image the
                        // flush compares it with.
                        parent.fill(|p| set(p, Collection::from_vec(children.clone())));
                    }
                    run_next(session, conn, &next, &all).await
                })
            })),
        }
    }
}

impl<P: Entity, C: Entity, L: Entity, K: ColumnType, KC: ColumnType> Relation
    for ManyToMany<P, C, L, K, KC>
{
    type Target = C;

    fn join_on(&self) -> JoinOn {
        JoinOn {
            from: P::TABLE,
            from_column: self.parent_column.index(),
            target: L::TABLE,
            target_column: self.local.index(),
        }
    }

    fn join_path(&self) -> Vec<JoinOn> {
        vec![
            self.join_on(),
            JoinOn {
                from: L::TABLE,
                from_column: self.remote.index(),
                target: C::TABLE,
                target_column: self.target_column.index(),
            },
        ]
    }
}
