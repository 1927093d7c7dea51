//! The relationship descriptors `#[derive(Entity)]` writes (`A::C.bs`) and how each kind is
//! loaded: select-in for all three, joined for many-to-one and one-to-one, raise / empty.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::Arc;

use super::{IntoLoader, JoinLoader, Joined, LoadFn, Loader, LoaderKind, Unloaded, run_next};
use crate::error::{Error, Result};
use crate::identity::load_into;
use crate::model::{AnyObj, Collection, ColumnType, Entity, Obj, Reference};
use crate::sql::quote;
use crate::statement::{Col, JoinOn, Relation};

/// The hasher of the loaders' key maps.
pub(super) type Hasher = foldhash::quality::RandomState;

/// Keys per eager-load query.
pub(super) const CHUNK: usize = 50_000;

// Eager-load queries bind their keys as one array, so they run as unnamed statements, planned
// with the keys every time: a cached statement switches to PostgreSQL's generic plan after
// five runs, and there `fk = ANY($1)` scans the whole array for every row (measured on the
// benchmark's schema: 20 ms became 450 ms from the sixth load on one connection).

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
    /// Whether the parent's collection is loaded.
    pub is_loaded: fn(&P) -> bool,
    /// With `back_populates`: the child's reference to its parent, filled by the same load.
    pub back: Option<fn(&mut C) -> &mut Reference<P>>,
    /// `Entity.field`, for messages.
    pub name: &'static str,
}

/// A one-to-one relationship `P.child` on the side without the foreign key (SQLAlchemy's
/// `relationship(uselist=False)`; `#[derive(Entity)]` generates it as `A::C.b` for a
/// `Reference` with `uselist = false`).
pub struct OneToOne<P: Entity, C: Entity, K> {
    /// The parent's referenced key column.
    pub parent_column: Col<P, K>,
    /// The child's foreign-key column (UNIQUE).
    pub foreign_key: Col<C, K>,
    /// The parent's referenced key.
    pub parent_key: fn(&P) -> K,
    /// The child's foreign-key value (`None` for NULL).
    pub child_key: fn(&C) -> Option<K>,
    /// Stores the loaded reference on the parent.
    pub set: fn(&mut P, Reference<C>),
    /// Whether the parent's reference is loaded.
    pub is_loaded: fn(&P) -> bool,
    /// With `back_populates`: the child's reference to its parent, filled by the same load.
    pub back: Option<fn(&mut C) -> &mut Reference<P>>,
    /// `Entity.field`, for messages.
    pub name: &'static str,
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
    /// Whether the child's reference is loaded.
    pub is_loaded: fn(&C) -> bool,
    /// `Entity.field`, for messages.
    pub name: &'static str,
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

/// The options chained after a step, as loads that run after it (shared by a joined load
/// and its select-in twin).
pub(super) type Next<C> = Arc<Vec<LoadFn<C>>>;

pub(super) fn select_fns<C: Entity>(next: Vec<Loader<C>>) -> Next<C> {
    Arc::new(next.into_iter().map(Loader::into_select).collect())
}

/// The raise / empty load: sets `value` on every object whose relationship is not loaded.
pub(super) fn unloaded_loader<T: Entity, V: Send + Sync + 'static>(
    is_loaded: fn(&T) -> bool,
    set: fn(&mut T, V),
    value: impl Fn() -> V + Send + Sync + 'static,
) -> Loader<T> {
    Loader {
        kind: LoaderKind::Select(Box::new(move |_session, _conn, objects| {
            for obj in objects {
                obj.with_value(|o| {
                    if !is_loaded(o) {
                        set(o, value());
                    }
                });
            }
            Box::pin(async { Ok(()) })
        })),
    }
}

/// The children of each parent key (one entry per distinct key, in the parents' order),
/// from select-in queries on the child's foreign key.
async fn children_by_parent<P: Entity, C: Entity, K: ColumnType + Hash + Eq>(
    session: &dyn crate::identity::LoadTarget,
    conn: &mut crate::connection::AsyncConnection,
    parents: &[Obj<P>],
    foreign_key: Col<C, K>,
    parent_key: fn(&P) -> K,
    child_key: fn(&C) -> Option<K>,
) -> Result<(Vec<K>, HashMap<K, Vec<Obj<C>>, Hasher>, Vec<Obj<C>>)> {
    let column = &C::TABLE.columns[foreign_key.index()];
    let sql = select_by::<C>(column.name, column.sql_type);
    let mut keys: Vec<K> = parents.iter().map(|p| p.peek(parent_key)).collect();
    // One entry per distinct parent key (which also dedupes the keys): a joined query may
    // return a parent more than once (the same object).
    let mut by_parent: HashMap<K, Vec<Obj<C>>, Hasher> =
        HashMap::with_capacity_and_hasher(keys.len(), Hasher::default());
    keys.retain(|k| by_parent.insert(k.clone(), Vec::new()).is_none());
    let mut all = Vec::new();
    for chunk in keys.chunks(CHUNK) {
        let rows = conn.query_uncached(&sql, &[&chunk]).await?;
        for child in load_into::<C, _>(session, &rows, 0, &sql, false)? {
            if let Some(key) = child.peek(child_key) {
                all.push(child.clone());
                by_parent.entry(key).or_default().push(child);
            }
        }
    }
    Ok((keys, by_parent, all))
}

/// Points each child's back-reference at `parent`, where it is not loaded yet.
pub(super) fn fill_back<P: Entity, C: Entity>(
    back: Option<fn(&mut C) -> &mut Reference<P>>,
    parent: &Obj<P>,
    children: &[Obj<C>],
) {
    let Some(back) = back else { return };
    for child in children {
        child.with_value(|c| {
            let r = back(c);
            if !r.is_loaded() {
                r.set_quiet(Some(parent.clone()));
            }
        });
    }
}

impl<P, C, K> IntoLoader<P> for OneToMany<P, C, K>
where
    P: Entity,
    C: Entity,
    K: ColumnType + Hash + Eq,
{
    type Target = C;

    fn select_loader(self, next: Vec<Loader<C>>) -> Loader<P> {
        self.select_then(select_fns(next))
    }

    fn unloaded_loader(self, how: Unloaded) -> Loader<P> {
        unloaded_collection(self.is_loaded, self.set, self.name, how)
    }
}

/// The raise / empty load of a collection (`raiseload` / `noload`).
pub(super) fn unloaded_collection<P: Entity, C: Entity>(
    is_loaded: fn(&P) -> bool,
    set: fn(&mut P, Collection<C>),
    name: &'static str,
    how: Unloaded,
) -> Loader<P> {
    unloaded_loader(is_loaded, set, move || match how {
        Unloaded::Raise => Collection::raising(name),
        Unloaded::Empty => Collection::new(),
    })
}

impl<P, C, K> OneToMany<P, C, K>
where
    P: Entity,
    C: Entity,
    K: ColumnType + Hash + Eq,
{
    pub(super) fn select_then(self, next: Next<C>) -> Loader<P> {
        let OneToMany {
            foreign_key,
            parent_key,
            child_key,
            set,
            back,
            ..
        } = self;
        select_children(
            foreign_key,
            parent_key,
            child_key,
            next,
            move |parent, children| {
                fill_back(back, parent, &children);
                parent.with_value(|p| set(p, Collection::from_vec(children)));
                Ok(())
            },
        )
    }
}

/// The select load of a relationship whose children hold the foreign key (one-to-many,
/// one-to-one): one query for the children of every parent, `place` puts each parent's
/// children on it, then the loaders chained after it run on all the children.
fn select_children<P, C, K>(
    foreign_key: Col<C, K>,
    parent_key: fn(&P) -> K,
    child_key: fn(&C) -> Option<K>,
    next: Next<C>,
    place: impl Fn(&Obj<P>, Vec<Obj<C>>) -> Result<()> + Copy + Send + Sync + 'static,
) -> Loader<P>
where
    P: Entity,
    C: Entity,
    K: ColumnType + Hash + Eq,
{
    Loader {
        kind: LoaderKind::Select(Box::new(move |session, conn, parents| {
            let next = next.clone();
            Box::pin(async move {
                let (_, mut by_parent, all) =
                    children_by_parent(session, conn, parents, foreign_key, parent_key, child_key)
                        .await?;
                for parent in parents {
                    let key = parent.peek(parent_key);
                    let Some(children) = by_parent.remove(&key) else {
                        continue; // a repeat of a parent already filled
                    };
                    place(parent, children)?;
                }
                run_next(session, conn, &next, &all).await
            })
        })),
    }
}

impl<P, C, K> IntoLoader<P> for OneToOne<P, C, K>
where
    P: Entity,
    C: Entity,
    K: ColumnType + Hash + Eq,
{
    type Target = C;

    fn select_loader(self, next: Vec<Loader<C>>) -> Loader<P> {
        self.select_then(select_fns(next))
    }

    fn unloaded_loader(self, how: Unloaded) -> Loader<P> {
        let name = self.name;
        unloaded_loader(self.is_loaded, self.set, move || match how {
            Unloaded::Raise => Reference::raising(name),
            Unloaded::Empty => Reference::none(),
        })
    }
}

impl<P, C, K> OneToOne<P, C, K>
where
    P: Entity,
    C: Entity,
    K: ColumnType + Hash + Eq,
{
    fn select_then(self, next: Next<C>) -> Loader<P> {
        let OneToOne {
            foreign_key,
            parent_key,
            child_key,
            set,
            back,
            name,
            ..
        } = self;
        select_children(
            foreign_key,
            parent_key,
            child_key,
            next,
            move |parent, children| {
                let reference = one_of(name, parent, children)?;
                if let Some(child) = reference.loaded() {
                    fill_back(back, parent, std::slice::from_ref(child));
                }
                parent.with_value(|p| set(p, reference));
                Ok(())
            },
        )
    }
}

/// The one child of a one-to-one, or SQLAlchemy's "Multiple rows returned with
/// uselist=False" as an error (SQLAlchemy warns and keeps one; keeping one would hide which).
fn one_of<P: Entity, C: Entity>(
    name: &str,
    parent: &Obj<P>,
    mut children: Vec<Obj<C>>,
) -> Result<Reference<C>> {
    if children.len() > 1 {
        return Err(Error::InvalidRequest(format!(
            "Multiple rows returned with uselist=False for eagerly-loaded attribute '{name}': \
             {} rows of {} refer to {parent:?}; a one-to-one allows one (make the foreign key \
             #[entity(unique)] so that the database refuses a second)",
            children.len(),
            C::TABLE.name,
        )));
    }
    Ok(match children.pop() {
        Some(child) => Reference::to(child),
        None => Reference::none(),
    })
}

impl<C, P, K> IntoLoader<C> for ManyToOne<C, P, K>
where
    C: Entity,
    P: Entity,
    K: ColumnType + Hash + Eq,
{
    type Target = P;

    fn select_loader(self, next: Vec<Loader<P>>) -> Loader<C> {
        self.select_then(select_fns(next))
    }

    fn unloaded_loader(self, how: Unloaded) -> Loader<C> {
        let name = self.name;
        unloaded_loader(self.is_loaded, self.set, move || match how {
            Unloaded::Raise => Reference::raising(name),
            Unloaded::Empty => Reference::none(),
        })
    }
}

impl<C, P, K> ManyToOne<C, P, K>
where
    C: Entity,
    P: Entity,
    K: ColumnType + Hash + Eq,
{
    fn select_then(self, next: Next<P>) -> Loader<C> {
        let ManyToOne {
            parent_column,
            parent_key,
            child_key,
            set,
            ..
        } = self;
        Loader {
            kind: LoaderKind::Select(Box::new(move |session, conn, children| {
                let next = next.clone();
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
                    let mut all = Vec::new();
                    for chunk in keys.chunks(CHUNK) {
                        let rows = conn.query_uncached(&sql, &[&chunk]).await?;
                        for parent in load_into::<P, _>(session, &rows, 0, &sql, false)? {
                            all.push(parent.clone());
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
                    run_next(session, conn, &next, &all).await
                })
            })),
        }
    }
}

impl<P: Entity, C: Entity, K: ColumnType> Relation for OneToMany<P, C, K> {
    type Target = C;

    fn join_on(&self) -> JoinOn {
        JoinOn {
            from: P::TABLE,
            from_column: self.parent_column.index(),
            target: C::TABLE,
            target_column: self.foreign_key.index(),
        }
    }
}

impl<P: Entity, C: Entity, K: ColumnType> Relation for OneToOne<P, C, K> {
    type Target = C;

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
    type Target = P;

    fn join_on(&self) -> JoinOn {
        JoinOn {
            from: C::TABLE,
            from_column: self.foreign_key.index(),
            target: P::TABLE,
            target_column: self.parent_column.index(),
        }
    }
}

/// The joined load of `on` into `set`, with `as_select` for where it cannot be joined and
/// `next` run on the distinct objects it loaded. A row whose joined key is NULL has nothing
/// on the other side (NULL foreign key, one that points nowhere, or no child).
fn joined<T: Entity, U: Entity, K: ColumnType>(
    on: JoinOn,
    set: fn(&mut T, Reference<U>),
    as_select: Loader<T>,
    next: Next<U>,
    name: &'static str,
    unique_check: bool,
) -> Loader<T> {
    let after = after_joined(next);
    Loader {
        kind: LoaderKind::Joined(Joined {
            on,
            via: None,
            many: false,
            apply: Box::new(move |session, rows, offset, objects, sql| {
                let (linked, targets) =
                    joined_rows::<U, K>(session, rows, offset + on.target_column, offset, sql)?;
                let mut distinct: Vec<AnyObj> = Vec::new();
                let mut loaded: HashSet<u64, Hasher> = HashSet::default();
                let mut seen: HashMap<u64, u64, Hasher> = HashMap::default();
                let mut targets = targets.into_iter();
                for (obj, linked) in objects.iter().zip(linked) {
                    let reference = match linked.then(|| targets.next()).flatten() {
                        Some(target) => {
                            if loaded.insert(target.cell.id) {
                                distinct.push(target.erase());
                            }
                            let (me, it) = (obj.erase().id(), target.erase().id());
                            if unique_check && *seen.entry(me).or_insert(it) != it {
                                return Err(several(name, obj));
                            }
                            Reference::to(target)
                        }
                        None => Reference::none(),
                    };
                    obj.with_value(|o| set(o, reference));
                }
                Ok(distinct)
            }),
            after,
            as_select: as_select.into_select(),
        }),
    }
}

/// A one-to-one's parent joined to two different children.
fn several<T: Entity>(name: &str, obj: &Obj<T>) -> Error {
    Error::InvalidRequest(format!(
        "Multiple rows returned with uselist=False for eagerly-loaded attribute '{name}': \
         {obj:?} has more than one; a one-to-one allows one (make the foreign key \
         #[entity(unique)] so that the database refuses a second)"
    ))
}

impl<C, P, K> JoinLoader<C> for ManyToOne<C, P, K>
where
    C: Entity,
    P: Entity,
    K: ColumnType + Hash + Eq,
{
    fn joined_loader(self, next: Vec<Loader<P>>) -> Loader<C> {
        let (on, set, name) = (self.join_on(), self.set, self.name);
        let next = select_fns(next);
        let as_select = self.select_then(next.clone());
        joined::<C, P, K>(on, set, as_select, next, name, false)
    }
}

impl<P, C, K> JoinLoader<P> for OneToOne<P, C, K>
where
    P: Entity,
    C: Entity,
    K: ColumnType + Hash + Eq,
{
    fn joined_loader(self, next: Vec<Loader<C>>) -> Loader<P> {
        let (on, set, name) = (self.join_on(), self.set, self.name);
        let next = select_fns(next);
        let as_select = self.select_then(next.clone());
        joined::<P, C, K>(on, set, as_select, next, name, true)
    }
}

/// The options chained after a joined load, run on the distinct objects it loaded.
pub(super) fn after_joined<U: Entity>(next: Next<U>) -> Option<super::AfterFn> {
    if next.is_empty() {
        return None;
    }
    Some(Box::new(move |session, conn, loaded: Vec<AnyObj>| {
        let next = next.clone();
        Box::pin(async move {
            let objects: Vec<Obj<U>> = loaded.iter().filter_map(AnyObj::downcast).collect();
            run_next(session, conn, &next, &objects).await
        })
    }))
}

/// The rows of a joined load: which have the other side (column `at`, of type `V`, not NULL:
/// the row joined something) and, for those, the objects its columns from `offset` on hold.
pub(super) fn joined_rows<U: Entity, V: ColumnType>(
    session: &dyn crate::identity::LoadTarget,
    rows: &[tokio_postgres::Row],
    at: usize,
    offset: usize,
    sql: &str,
) -> Result<(Vec<bool>, Vec<Obj<U>>)> {
    let linked = rows
        .iter()
        .map(|row| row.try_get::<_, Option<V>>(at).map(|k| k.is_some()))
        .collect::<std::result::Result<Vec<bool>, _>>()
        .map_err(|e| Error::statement(e, sql))?;
    let objects = load_into::<U, _>(
        session,
        rows.iter()
            .zip(&linked)
            .filter(|(_, linked)| **linked)
            .map(|(row, _)| row),
        offset,
        sql,
        false,
    )?;
    Ok((linked, objects))
}
