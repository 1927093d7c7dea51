//! `joinedload` of a collection (one-to-many, or many-to-many through its link table): the
//! query's `LEFT OUTER JOIN` repeats each parent once per child; the rows are grouped per parent
//! into its collection, and the query returns each parent once (`materialize`).

use std::collections::HashMap;
use std::hash::Hash;

use super::strategies::{Hasher, after_joined, fill_back, joined_rows, select_fns};
use super::{JoinLoader, Joined, Loader, LoaderKind, ManyToMany, Next, OneToMany};
use crate::model::{AnyObj, Collection, ColumnType, Entity, Obj};
use crate::statement::{JoinOn, Relation};

/// A parent's children from the rows, and their ids (each child once).
type Kids<C> = (Vec<Obj<C>>, std::collections::HashSet<u64, Hasher>);

/// The joined load of a collection along `on` (after `via`, the link-table hop of a
/// many-to-many), whose target column, of type `V`, is NULL in a row without a child; `place`
/// puts each parent's children on it.
fn joined_collection<P, C, V>(
    (on, via): (JoinOn, Option<JoinOn>),
    place: impl Fn(&Obj<P>, Vec<Obj<C>>) + Send + Sync + 'static,
    as_select: Loader<P>,
    next: Next<C>,
) -> Loader<P>
where
    P: Entity,
    C: Entity,
    V: ColumnType,
{
    Loader {
        kind: LoaderKind::Joined(Joined {
            on,
            via,
            many: true,
            apply: Box::new(move |session, rows, offset, parents, sql| {
                let (linked, children) =
                    joined_rows::<C, V>(session, rows, offset + on.target_column, offset, sql)?;
                let mut children = children.into_iter();
                // Per parent (in the rows' order): its children, each once (a second joined
                // collection repeats them).
                let mut order: Vec<&Obj<P>> = Vec::new();
                let mut of: HashMap<u64, Kids<C>, Hasher> = HashMap::default();
                let mut distinct: Vec<AnyObj> = Vec::new();
                let mut seen: std::collections::HashSet<u64, Hasher> = Default::default();
                for (parent, linked) in parents.iter().zip(linked) {
                    let entry = of.entry(parent.cell.id).or_insert_with(|| {
                        order.push(parent);
                        (Vec::new(), Default::default())
                    });
                    if let Some(child) = linked.then(|| children.next()).flatten() {
                        if entry.1.insert(child.cell.id) {
                            if seen.insert(child.cell.id) {
                                distinct.push(child.erase());
                            }
                            entry.0.push(child);
                        }
                    }
                }
                for parent in order {
                    if let Some((kids, _)) = of.remove(&parent.cell.id) {
                        place(parent, kids);
                    }
                }
                Ok(distinct)
            }),
            after: after_joined(next),
            as_select: as_select.into_select(),
        }),
    }
}

impl<P, C, K> JoinLoader<P> for OneToMany<P, C, K>
where
    P: Entity,
    C: Entity,
    K: ColumnType + Hash + Eq,
{
    fn joined_loader(self, next: Vec<Loader<C>>) -> Loader<P> {
        let (on, set, back) = (self.join_on(), self.set, self.back);
        let next = select_fns(next);
        let as_select = self.select_then(next.clone());
        joined_collection::<P, C, K>(
            (on, None),
            move |parent, children| {
                fill_back(back, parent, &children);
                parent.with_value(|p| set(p, Collection::from_vec(children)));
            },
            as_select,
            next,
        )
    }
}

impl<P, C, L, K, KC> JoinLoader<P> for ManyToMany<P, C, L, K, KC>
where
    P: Entity,
    C: Entity,
    L: Entity,
    K: ColumnType + Hash + Eq,
    KC: ColumnType,
{
    fn joined_loader(self, next: Vec<Loader<C>>) -> Loader<P> {
        let path = self.join_path();
        let set = self.set;
        let next = select_fns(next);
        let as_select = self.select_then(next.clone());
        joined_collection::<P, C, KC>(
            (path[1], Some(path[0])),
            move |parent, children| {
                // What the database holds: the value and the image the flush compares with.
                parent.fill(|p| set(p, Collection::from_vec(children.clone())));
            },
            as_select,
            next,
        )
    }
}
