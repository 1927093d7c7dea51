//! Eager loading: [`selectinload`] runs one extra `... WHERE fk = ANY($1)` query per
//! relationship for all the objects a query returned, and fills their [`Collection`]s or
//! [`Reference`]s; [`joinedload`] reads a many-to-one relationship from a `LEFT OUTER JOIN` in
//! the query itself. Either way the relationship is then read without I/O.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use futures::future::BoxFuture;
use tokio_postgres::Row;

use super::{Col, JoinOn, Relation};
use crate::connection::AsyncConnection;
use crate::error::Result;
use crate::identity::{LoadTarget, load_into};
use crate::model::Obj;
use crate::model::{Collection, Reference};
use crate::model::{ColumnType, Entity};
use crate::sql::quote;

/// The hasher of the loaders' key maps.
type Hasher = foldhash::quality::RandomState;

/// Keys per eager-load query.
const CHUNK: usize = 50_000;

// Eager-load queries bind their keys as one array, so they run as unnamed statements, planned
// with the keys every time: a cached statement switches to PostgreSQL's generic plan after
// five runs, and there `fk = ANY($1)` scans the whole array for every row (measured on the
// benchmark's schema: 20 ms became 450 ms from the sixth load on one connection).

type LoadFn<T> = Box<
    dyn for<'a> Fn(
            &'a dyn LoadTarget,
            &'a mut AsyncConnection,
            &'a [Obj<T>],
        ) -> BoxFuture<'a, Result<()>>
        + Send
        + Sync,
>;

/// Fills a joined relationship from the rows' columns `offset..`, one row per object.
type ApplyFn<T> =
    Box<dyn Fn(&dyn LoadTarget, &[Row], usize, &[Obj<T>], &str) -> Result<()> + Send + Sync>;

/// A loader option for a query of `T` (from [`selectinload`] or [`joinedload`]).
pub struct Loader<T: Entity> {
    pub(crate) kind: LoaderKind<T>,
}

pub(crate) enum LoaderKind<T: Entity> {
    /// Runs after the query, with the objects it returned.
    Select(LoadFn<T>),
    /// Adds a join and columns to the query.
    Joined(Joined<T>),
}

pub(crate) struct Joined<T: Entity> {
    pub(crate) on: JoinOn,
    pub(crate) apply: ApplyFn<T>,
}

impl<T: Entity> std::fmt::Debug for Loader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Loader")
    }
}

/// A one-to-many relationship `P.children` (what `#[derive(Entity)]` generates as `A::C.bs`):
/// the child's foreign-key column, how to read keys on both sides, and where the loaded
/// collection goes.
pub struct OneToMany<P: Entity, C: Entity, K> {
    /// The parent's referenced key column.
    pub parent_column: Col<P, K>,
    /// The child's foreign-key column.
    pub foreign_key: Col<C, K>,
    /// The parent's referenced key.
    pub parent_key: fn(&P) -> K,
    /// The child's foreign-key value (`None` for NULL).
    pub child_key: fn(&C) -> Option<K>,
    /// Stores the loaded collection on the parent.
    pub set: fn(&mut P, Collection<C>),
}

/// A many-to-one relationship `C.parent` (what `#[derive(Entity)]` generates as `B::C.a`).
pub struct ManyToOne<C: Entity, P: Entity, K> {
    /// The child's foreign-key column.
    pub foreign_key: Col<C, K>,
    /// The parent's referenced key column.
    pub parent_column: Col<P, K>,
    /// The parent's referenced key.
    pub parent_key: fn(&P) -> K,
    /// The child's foreign-key value (`None` for NULL).
    pub child_key: fn(&C) -> Option<K>,
    /// Stores the loaded reference on the child.
    pub set: fn(&mut C, Reference<P>),
}

/// Loads a relationship of every object a query returns with one extra query per chunk of
/// keys (SQLAlchemy's `selectinload`).
pub fn selectinload<T: Entity>(relationship: impl IntoLoader<T>) -> Loader<T> {
    relationship.into_loader()
}

/// A relationship that can be eager-loaded for objects of `T`.
pub trait IntoLoader<T: Entity> {
    /// The loader.
    fn into_loader(self) -> Loader<T>;
}

fn select_by<C: Entity>(column: &str, cast: &str) -> String {
    let t = C::TABLE;
    let cols: Vec<String> = t.columns.iter().map(|c| quote(c.name)).collect();
    let keys: Vec<String> = t.key_columns().map(|i| quote(t.columns[i].name)).collect();
    format!(
        "SELECT {} FROM {} WHERE {} = ANY($1::{cast}[]) ORDER BY {}",
        cols.join(", "),
        quote(t.name),
        quote(column),
        keys.join(", ")
    )
}

impl<P, C, K> IntoLoader<P> for OneToMany<P, C, K>
where
    P: Entity,
    C: Entity,
    K: ColumnType + Hash + Eq,
{
    fn into_loader(self) -> Loader<P> {
        let OneToMany {
            foreign_key,
            parent_column: _,
            parent_key,
            child_key,
            set,
        } = self;
        Loader {
            kind: LoaderKind::Select(Box::new(move |session, conn, parents| {
                Box::pin(async move {
                    let column = &C::TABLE.columns[foreign_key.index()];
                    let sql = select_by::<C>(column.name, column.sql_type);
                    let mut keys: Vec<K> = parents.iter().map(|p| p.peek(parent_key)).collect();
                    // One entry per distinct parent key (which also dedupes the keys), taken by
                    // the first parent with that key: a joined query may return a parent more
                    // than once (the same object).
                    let mut by_parent: HashMap<K, Vec<Obj<C>>, Hasher> =
                        HashMap::with_capacity_and_hasher(keys.len(), Hasher::default());
                    keys.retain(|k| by_parent.insert(k.clone(), Vec::new()).is_none());
                    for chunk in keys.chunks(CHUNK) {
                        let rows = conn.query_uncached(&sql, &[&chunk]).await?;
                        for child in load_into::<C, _>(session, &rows, 0, &sql, false)? {
                            if let Some(key) = child.peek(child_key) {
                                by_parent.entry(key).or_default().push(child);
                            }
                        }
                    }
                    for parent in parents {
                        let key = parent.peek(parent_key);
                        let Some(children) = by_parent.remove(&key) else {
                            continue; // a repeat of a parent already filled
                        };
                        parent.with_value(|p| set(p, Collection::from_vec(children)));
                    }
                    Ok(())
                })
            })),
        }
    }
}

impl<C, P, K> IntoLoader<C> for ManyToOne<C, P, K>
where
    C: Entity,
    P: Entity,
    K: ColumnType + Hash + Eq,
{
    fn into_loader(self) -> Loader<C> {
        let ManyToOne {
            foreign_key: _,
            parent_column,
            parent_key,
            child_key,
            set,
        } = self;
        Loader {
            kind: LoaderKind::Select(Box::new(move |session, conn, children| {
                Box::pin(async move {
                    let column = &P::TABLE.columns[parent_column.index()];
                    let sql = select_by::<P>(column.name, column.sql_type);
                    let mut seen =
                        HashSet::with_capacity_and_hasher(children.len(), Hasher::default());
                    let keys: Vec<K> = children
                        .iter()
                        .filter_map(|c| c.peek(child_key))
                        .filter(|k| seen.insert(k.clone()))
                        .collect();
                    let mut parents: HashMap<K, Obj<P>, Hasher> =
                        HashMap::with_capacity_and_hasher(keys.len(), Hasher::default());
                    for chunk in keys.chunks(CHUNK) {
                        let rows = conn.query_uncached(&sql, &[&chunk]).await?;
                        for parent in load_into::<P, _>(session, &rows, 0, &sql, false)? {
                            parents.insert(parent.peek(parent_key), parent);
                        }
                    }
                    for child in children {
                        let target = child.peek(child_key).and_then(|k| parents.get(&k).cloned());
                        let reference = match target {
                            Some(p) => Reference::to(p),
                            None => Reference::none(),
                        };
                        child.with_value(|c| set(c, reference));
                    }
                    Ok(())
                })
            })),
        }
    }
}

impl<P: Entity, C: Entity, K: ColumnType> Relation for OneToMany<P, C, K> {
    fn join_on(&self) -> JoinOn {
        JoinOn {
            from: P::TABLE,
            from_column: self.parent_column.index(),
            target: C::TABLE,
            target_column: self.foreign_key.index(),
        }
    }
}

impl<C: Entity, P: Entity, K: ColumnType> Relation for ManyToOne<C, P, K> {
    fn join_on(&self) -> JoinOn {
        JoinOn {
            from: C::TABLE,
            from_column: self.foreign_key.index(),
            target: P::TABLE,
            target_column: self.parent_column.index(),
        }
    }
}

/// Loads a many-to-one relationship in the same query, from a `LEFT OUTER JOIN` of the
/// parent's table under the alias `table_N` (SQLAlchemy's `joinedload(B.a)`). Parents already
/// in the identity map are reused. For a one-to-many relationship use [`selectinload`]: a join
/// would repeat each parent once per child (and `joinedload` of a collection does not compile).
pub fn joinedload<C, P, K>(relationship: ManyToOne<C, P, K>) -> Loader<C>
where
    C: Entity,
    P: Entity,
    K: ColumnType + Hash + Eq,
{
    let on = relationship.join_on();
    let ManyToOne { set, .. } = relationship;
    Loader {
        kind: LoaderKind::Joined(Joined {
            on,
            apply: Box::new(move |session, rows, offset, children, sql| {
                // A row whose joined key is NULL has no parent (NULL foreign key, or one
                // that points nowhere).
                let at = offset + on.target_column;
                let linked = rows
                    .iter()
                    .map(|row| row.try_get::<_, Option<K>>(at).map(|k| k.is_some()))
                    .collect::<std::result::Result<Vec<bool>, _>>()
                    .map_err(|e| crate::Error::statement(e, sql))?;
                let parents = load_into::<P, _>(
                    session,
                    rows.iter()
                        .zip(&linked)
                        .filter(|(_, linked)| **linked)
                        .map(|(row, _)| row),
                    offset,
                    sql,
                    false,
                )?;
                let mut parents = parents.into_iter();
                for (child, linked) in children.iter().zip(linked) {
                    let reference = match linked.then(|| parents.next()).flatten() {
                        Some(parent) => Reference::to(parent),
                        None => Reference::none(),
                    };
                    child.with_value(|c| set(c, reference));
                }
                Ok(())
            }),
        }),
    }
}
