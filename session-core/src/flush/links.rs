//! The link rows of many-to-many relationships (SQLAlchemy's `secondary` tables): what a
//! flush adds to and takes out of the objects' collections ([`LinkPlan`], from each object's
//! [`Secondary`]s), written as one statement per link table and operation ([`LinkWork`]):
//!
//! 1. `DELETE ... WHERE (a, b) IN (SELECT * FROM unnest($1, $2))`: pairs taken out, checked
//!    to match one row each (SQLAlchemy's "DELETE statement on table 'x' expected to delete
//!    2 row(s); Only 1 were matched.");
//! 2. `DELETE ... WHERE a = ANY($1)`: every row of a deleted object (whether its collection
//!    is loaded or not), and of a collection replaced while it was not loaded;
//! 3. `INSERT ... SELECT * FROM unnest($1, $2)`: pairs added.
//!
//! The two sides of a `back_populates` pair both see a new pair; it is written once. The same
//! object appended twice to one collection is two rows, as in SQLAlchemy (a link table with a
//! primary key refuses the second). Pairs with an object being deleted are not inserted (its
//! rows are deleted with it). The statements go in the flight of the UPDATEs and DELETEs, after
//! the INSERTs of the objects (their keys are known then) and before the DELETEs of objects
//! (whose rows they reference).

use std::collections::HashMap;

use super::{Step, Work};
use crate::connection::{Answer, Planned};
use crate::error::{Error, Result};
use crate::model::{AnyObj, Before, KeysFn, Secondary, Table};
use crate::sql::quote;

/// Rows per link statement.
const CHUNK: usize = super::CHUNK;

/// The statements of one link table, with the table and its entity type (for its bind).
pub(crate) type LinkBatch = (&'static Table, std::any::TypeId, Box<dyn Work>);

/// The link-row changes of one flush, per link table.
#[derive(Default)]
pub(crate) struct LinkPlan {
    tables: Vec<LinkTable>,
}

/// A pair of objects for one link row, in the link table's column order.
type Pair = [AnyObj; 2];

struct LinkTable {
    table: &'static Table,
    link_type: std::any::TypeId,
    /// The two columns, in table order.
    cols: [usize; 2],
    /// The key arrays of the objects in each column.
    keys: [KeysFn; 2],
    /// New pairs in first-seen order, and how often each side added each.
    inserts: Vec<(Pair, [usize; 2])>,
    insert_at: HashMap<(u64, u64), usize>,
    deletes: Vec<(Pair, [usize; 2])>,
    delete_at: HashMap<(u64, u64), usize>,
    /// Objects whose every row (by column 0, by column 1) is deleted.
    clears: [Vec<AnyObj>; 2],
}

impl LinkTable {
    fn record(
        list: &mut Vec<(Pair, [usize; 2])>,
        at: &mut HashMap<(u64, u64), usize>,
        pair: Pair,
        side: usize,
    ) {
        let id = (pair[0].id(), pair[1].id());
        match at.get(&id) {
            Some(&i) => list[i].1[side] += 1,
            None => {
                at.insert(id, list.len());
                let mut counts = [0; 2];
                counts[side] = 1;
                list.push((pair, counts));
            }
        }
    }
}

/// The pairs of `list`, each as often as the side that added it most (both sides of a
/// `back_populates` pair see the same change).
fn expand(list: Vec<(Pair, [usize; 2])>, keep: impl Fn(&Pair) -> bool) -> Vec<Pair> {
    let mut out = Vec::new();
    for (pair, counts) in list {
        if keep(&pair) {
            for _ in 0..counts[0].max(counts[1]) {
                out.push(pair.clone());
            }
        }
    }
    out
}

/// `now` minus `before`, and `before` minus `now`, counting repeats (by object identity).
fn difference(now: &[AnyObj], before: &[AnyObj]) -> (Vec<AnyObj>, Vec<AnyObj>) {
    let mut left: HashMap<u64, usize> = HashMap::new();
    for b in before {
        *left.entry(b.id()).or_default() += 1;
    }
    let mut added = Vec::new();
    for n in now {
        match left.get_mut(&n.id()) {
            Some(c) if *c > 0 => *c -= 1,
            _ => added.push(n.clone()),
        }
    }
    let mut removed = Vec::new();
    for b in before {
        if let Some(c) = left.get_mut(&b.id()) {
            if *c > 0 {
                *c -= 1;
                removed.push(b.clone());
            }
        }
    }
    (added, removed)
}

impl LinkPlan {
    /// True when no link row changes.
    pub(crate) fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    fn table_for(&mut self, s: &Secondary) -> (&mut LinkTable, usize) {
        let at = match self.tables.iter().position(|t| t.table.is(s.table)) {
            Some(at) => at,
            None => {
                let (cols, keys) = if s.owner_column < s.other_column {
                    (
                        [s.owner_column, s.other_column],
                        [s.owner_keys, s.other_keys],
                    )
                } else {
                    (
                        [s.other_column, s.owner_column],
                        [s.other_keys, s.owner_keys],
                    )
                };
                self.tables.push(LinkTable {
                    table: s.table,
                    link_type: s.link_type,
                    cols,
                    keys,
                    inserts: Vec::new(),
                    insert_at: HashMap::new(),
                    deletes: Vec::new(),
                    delete_at: HashMap::new(),
                    clears: [Vec::new(), Vec::new()],
                });
                self.tables.len() - 1
            }
        };
        let t = &mut self.tables[at];
        let side = usize::from(t.cols[0] != s.owner_column);
        (t, side)
    }

    /// Adds what `s` changed; `deleted` when its owner is being deleted (then every row of
    /// the owner goes, whatever its collection holds).
    pub(crate) fn add(&mut self, s: Secondary, deleted: bool) {
        if deleted && s.passive_deletes {
            return; // the database's ON DELETE CASCADE removes them
        }
        let changes = if deleted {
            None
        } else {
            match (&s.now, &s.before) {
                (None, _) => return, // not loaded: nothing changed through it
                (Some(now), Before::Nothing) => Some((now.clone(), Vec::new(), false)),
                (Some(now), Before::Known(before)) => {
                    let (added, removed) = difference(now, before);
                    if added.is_empty() && removed.is_empty() {
                        return;
                    }
                    Some((added, removed, false))
                }
                (Some(now), Before::Replaced) => Some((now.clone(), Vec::new(), true)),
            }
        };
        let owner = s.owner.clone();
        let (t, side) = self.table_for(&s);
        let pair = |other: AnyObj| -> Pair {
            if side == 0 {
                [owner.clone(), other]
            } else {
                [other, owner.clone()]
            }
        };
        match changes {
            None => t.clears[side].push(owner.clone()),
            Some((added, removed, replaced)) => {
                if replaced {
                    t.clears[side].push(owner.clone());
                }
                for other in removed {
                    LinkTable::record(&mut t.deletes, &mut t.delete_at, pair(other), side);
                }
                for other in added {
                    LinkTable::record(&mut t.inserts, &mut t.insert_at, pair(other), side);
                }
            }
        }
    }

    /// The statements, one [`LinkWork`] per link table (built once the objects' INSERTs ran:
    /// the keys are read now). `checked` makes the server check the pair DELETEs' counts (a
    /// COMMIT travels with them). Returns each work with its link table and link entity type.
    pub(crate) fn works(self, checked: bool) -> Result<Vec<LinkBatch>> {
        let mut out = Vec::new();
        for t in self.tables {
            let cleared = |col: usize, obj: &AnyObj| t.clears[col].iter().any(|c| c.ptr_eq(obj));
            let deletes = expand(t.deletes, |p| !cleared(0, &p[0]) && !cleared(1, &p[1]));
            let inserts = expand(t.inserts, |p| !p.iter().any(|o| o.meta().marked_deleted));
            let mut work = LinkWork {
                table: t.table,
                steps: Vec::new(),
            };
            let (c0, c1) = (
                quote(t.table.columns[t.cols[0]].name),
                quote(t.table.columns[t.cols[1]].name),
            );
            let cast = |i: usize| format!("{}[]", t.table.columns[t.cols[i]].sql_type);
            let name = quote(t.table.name);
            let pairs_of = |pairs: &[Pair]| -> Result<Vec<crate::model::OwnedParam>> {
                let mut params = Vec::with_capacity(2);
                for (col, keys) in t.keys.iter().enumerate() {
                    let objs: Vec<AnyObj> = pairs.iter().map(|p| p[col].clone()).collect();
                    check_rows(t.table, &objs)?;
                    params.push(keys(&objs)?);
                }
                Ok(params)
            };
            for chunk in deletes.chunks(CHUNK) {
                let sql = format!(
                    "DELETE FROM {name} WHERE ({c0}, {c1}) IN (SELECT * FROM unnest($1::{}, $2::{}))",
                    cast(0),
                    cast(1)
                );
                let step = Step::bound(sql, pairs_of(chunk)?, chunk.len());
                work.steps
                    .push((Kind::Delete, if checked { step.checked() } else { step }));
            }
            for (col, objs) in t.clears.iter().enumerate() {
                for chunk in objs.chunks(CHUNK) {
                    let column = if col == 0 { &c0 } else { &c1 };
                    let sql = format!("DELETE FROM {name} WHERE {column} = ANY($1::{})", cast(col));
                    check_rows(t.table, chunk)?;
                    let step = Step::bound(sql, vec![(t.keys[col])(chunk)?], chunk.len());
                    work.steps.push((Kind::Clear, step));
                }
            }
            for chunk in inserts.chunks(CHUNK) {
                let sql = format!(
                    "INSERT INTO {name} ({c0}, {c1}) SELECT * FROM unnest($1::{}, $2::{})",
                    cast(0),
                    cast(1)
                );
                work.steps.push((
                    Kind::Insert,
                    Step::bound(sql, pairs_of(chunk)?, chunk.len()),
                ));
            }
            if !work.steps.is_empty() {
                out.push((t.table, t.link_type, Box::new(work) as Box<dyn Work>));
            }
        }
        Ok(out)
    }
}

/// Refuses objects that have no row (their key is not known): every object of a link row
/// is inserted before it, or was loaded.
fn check_rows(table: &Table, objs: &[AnyObj]) -> Result<()> {
    match objs.iter().find(|o| !o.meta().has_row()) {
        None => Ok(()),
        Some(obj) => Err(Error::InvalidRequest(format!(
            "{obj:?} is in a many-to-many collection written to {}, but it has no row: add it \
             to the session (the collection's save-update cascade adds it when its owner is \
             added) so that it is inserted first",
            table.name
        ))),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Delete,
    Clear,
    Insert,
}

/// The link-row statements of one link table.
struct LinkWork {
    table: &'static Table,
    steps: Vec<(Kind, Step)>,
}

impl LinkWork {
    fn stale(&self, expected: usize, matched: u64) -> Error {
        Error::StaleData(format!(
            "DELETE statement on table '{}' expected to delete {expected} row(s); Only \
             {matched} were matched.",
            self.table.name
        ))
    }
}

impl Work for LinkWork {
    fn planned(&self) -> Vec<Planned<'_>> {
        self.steps.iter().map(|(_, s)| s.planned_bound()).collect()
    }

    fn finish(self: Box<Self>, answers: Vec<Answer>) -> Result<Vec<AnyObj>> {
        for ((kind, step), answer) in self.steps.iter().zip(answers) {
            let n = step.matched(&answer)?;
            let expected = step.range.len() as u64;
            match kind {
                Kind::Delete if n != expected => return Err(self.stale(step.range.len(), n)),
                Kind::Insert if n != expected => {
                    return Err(Error::InvalidRequest(format!(
                        "INSERT into link table '{}' wrote {n} of {expected} row(s)",
                        self.table.name
                    )));
                }
                _ => {}
            }
        }
        Ok(Vec::new())
    }

    fn explain(&self, statement: usize, error: Error) -> Error {
        match (self.steps.get(statement), super::stale_count(&error)) {
            (Some((Kind::Delete, step)), Some(matched)) if step.expect.is_some() => {
                self.stale(step.range.len(), matched)
            }
            _ => error,
        }
    }
}
