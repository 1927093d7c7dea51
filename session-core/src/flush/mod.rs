//! The unit of work's statements: batched INSERT, UPDATE and DELETE of one entity type, each
//! built as a [`Work`] whose statements the session sends in a flight with the other works that
//! do not need its answers (`connection::flight`), then finished with their answers.
//!
//! Every batch binds one array per column and expands it with `unnest`, so a batch is one
//! statement with a fixed SQL text (prepared once per connection) and a handful of parameters,
//! whatever its size: the 65,535-parameter limit never applies, and batches are still split
//! every [`CHUNK`] rows to bound memory. A statement over an array column (`text[]`) binds a
//! `VALUES` list instead, one parameter per row and column ([`Binding::Rows`]): an array of
//! arrays is two-dimensional to PostgreSQL, and `unnest` would flatten it.
//!
//! Before a value is sent, [`Entity::column_check`] refuses what PostgreSQL would change
//! (a timestamp with nanoseconds): [`Error::Value`] names the column.
//!
//! Server-filled columns (`generated`, `server_default`) are inserted when the object holds a
//! value for them and left to the server when it holds the "unset" value
//! ([`Entity::column_is_unset`]); objects are grouped by which ones they set. Rows come back
//! with `RETURNING` and are matched to their objects by input position, never by guessing:
//!
//! - one row: trivially;
//! - keys the application gave: by key;
//! - keys from a sequence (`generated`): rows are inserted in the objects' order
//!   (`WITH ORDINALITY ... ORDER BY`) and a sequence hands out increasing values in that order,
//!   so sorting by the generated key gives the input order (SQLAlchemy's "insertmanyvalues"
//!   sentinel rule);
//! - keys from any other server default (`gen_random_uuid()`, `md5(random()::text)`): the
//!   default is evaluated once per input row in a materialized CTE, inserted as a value, and
//!   the returned rows are joined back to their input row by it.

use std::ops::Range;

use crate::connection::{Answer, Param, Planned};
use crate::error::{Error, Result};
use crate::model::{AnyObj, Obj};
use crate::model::{Entity, OwnedParam, Table};

mod change;
mod insert;
mod links;
mod orphans;
mod text;

pub(crate) use change::{delete_work, update_work};
pub(crate) use insert::insert_work;
pub(crate) use links::LinkPlan;
pub(crate) use orphans::{NullChildren, null_children_work};

/// Rows per statement.
pub(crate) const CHUNK: usize = 20_000;

/// The statements of one batch (one entity type, one operation), built before anything is sent
/// and finished with their answers.
pub(crate) trait Work: Send {
    /// The statements, in order.
    fn planned(&self) -> Vec<Planned<'_>>;
    /// Checks the answers (one per statement) and brings the objects up to date; returns the
    /// objects whose changes were written (UPDATE), else none.
    fn finish(self: Box<Self>, answers: Vec<Answer>) -> Result<Vec<AnyObj>>;
    /// The error to report for `error`, raised by statement `statement` of this work.
    fn explain(&self, statement: usize, error: Error) -> Error {
        let _ = statement;
        error
    }
}

fn typed<T: Entity>(objs: &[AnyObj]) -> Vec<Obj<T>> {
    objs.iter().filter_map(AnyObj::downcast::<T>).collect()
}

/// One statement of a work: its text and where its parameters come from.
struct Step {
    sql: String,
    cached: bool,
    rows: bool,
    /// The objects (positions in the work's list) it writes.
    range: Range<usize>,
    /// Parameters bound ahead of the rows' own: one array per column (a batch), or the row
    /// count of an INSERT of defaults only.
    owned: Vec<OwnedParam>,
    /// The columns bound row by row, in order (a single row, or a `VALUES` list); empty for
    /// a batch bound by arrays.
    row_cols: Vec<usize>,
    /// The count a checked statement expects, compared on the server ([`checked_sql`]).
    expect: Option<OwnedParam>,
}

impl Step {
    /// A statement over the rows `range` of `images`: by arrays of `cols` when `arrays`, else
    /// row by row.
    fn new<T: Entity>(
        sql: String,
        cached: bool,
        images: &[T],
        range: Range<usize>,
        cols: &[usize],
        arrays: bool,
    ) -> Step {
        let (owned, row_cols) = if arrays {
            let refs: Vec<&T> = images[range.clone()].iter().collect();
            let owned = cols.iter().map(|&c| T::column_array(&refs, c)).collect();
            (owned, Vec::new())
        } else {
            (Vec::new(), cols.to_vec())
        };
        Step {
            sql,
            cached,
            rows: false,
            range,
            owned,
            row_cols,
            expect: None,
        }
    }

    /// A statement over `rows` rows that binds only `owned` (arrays or keys), cached.
    fn bound(sql: String, owned: Vec<OwnedParam>, rows: usize) -> Step {
        Step {
            sql,
            cached: true,
            rows: false,
            range: 0..rows,
            owned,
            row_cols: Vec::new(),
            expect: None,
        }
    }

    /// Makes the server check that the statement (an UPDATE or DELETE) matched one row per
    /// object: a mismatch raises an error, so that a COMMIT sent behind it rolls back.
    fn checked(mut self) -> Step {
        let bound = self.owned.len() + self.range.len() * self.row_cols.len();
        self.sql = checked_sql(&self.sql, bound);
        self.rows = true;
        self.expect = Some(Box::new(self.range.len() as i64));
        self
    }

    fn planned<'a, T: Entity>(&'a self, images: &'a [T]) -> Planned<'a> {
        let mut params: Vec<Param<'a>> = self.owned.iter().map(|p| &**p as Param<'_>).collect();
        if !self.row_cols.is_empty() {
            for image in &images[self.range.clone()] {
                params.extend(self.row_cols.iter().map(|&c| image.column_param(c)));
            }
        }
        if let Some(expect) = &self.expect {
            params.push(&**expect);
        }
        Planned {
            sql: &self.sql,
            params,
            cached: self.cached,
            rows: self.rows,
        }
    }

    /// The statement of a step that binds only its own parameters (no row columns).
    fn planned_bound(&self) -> Planned<'_> {
        let mut params: Vec<Param<'_>> = self.owned.iter().map(|p| &**p as Param<'_>).collect();
        if let Some(expect) = &self.expect {
            params.push(&**expect);
        }
        Planned {
            sql: &self.sql,
            params,
            cached: self.cached,
            rows: self.rows,
        }
    }

    /// The rows an UPDATE or DELETE matched, from its answer.
    fn matched(&self, answer: &Answer) -> Result<u64> {
        match answer {
            Answer::Count(n) => Ok(*n),
            // RETURNING rows (a server-generated version): one per row matched.
            Answer::Rows(rows) if self.expect.is_none() => Ok(rows.len() as u64),
            Answer::Rows(rows) => rows
                .first()
                .and_then(|row| row.try_get::<_, i64>(0).ok())
                .map(|n| n as u64)
                .ok_or_else(|| {
                    Error::InvalidRequest(format!("no row count came back from {}", self.sql))
                }),
        }
    }
}

/// What a checked statement's error says when the count did not match.
const STALE_MARK: &str = "session_core stale: ";

/// `sql` (an UPDATE or DELETE binding `bound` parameters) made to fail on the server unless it
/// matched as many rows as its last parameter says: the count goes through a cast that
/// cannot succeed, whose error message carries it.
fn checked_sql(sql: &str, bound: usize) -> String {
    format!(
        "WITH \"w\" AS ({sql} RETURNING 1) SELECT CASE count(*) WHEN ${} THEN count(*) \
         ELSE concat('{STALE_MARK}', count(*))::bigint END FROM \"w\"",
        bound + 1
    )
}

/// The rows a checked statement matched, when `error` is its count check failing.
fn stale_count(error: &Error) -> Option<u64> {
    let db = error.as_db_error()?;
    let (_, rest) = db.message().split_once(STALE_MARK)?;
    rest.trim_end_matches('"').parse().ok()
}

/// Refuses `value` when a column of `cols` holds what PostgreSQL cannot store exactly.
fn check_columns<T: Entity>(value: &T, cols: &[usize]) -> Result<()> {
    for &c in cols {
        if let Err(reason) = value.column_check(c) {
            return Err(Error::Value {
                column: format!("{}.{}", T::TABLE.name, T::TABLE.columns[c].name),
                reason,
            });
        }
    }
    Ok(())
}

/// Orders `tables` so that every table comes after the tables its foreign keys reference
/// (parents first). Self-references and cycles keep their input order.
pub(crate) fn dependency_order(tables: &[&'static Table]) -> Vec<usize> {
    let mut order = Vec::with_capacity(tables.len());
    let mut state = vec![0u8; tables.len()]; // 0 new, 1 visiting, 2 done
    fn visit(i: usize, tables: &[&'static Table], state: &mut [u8], order: &mut Vec<usize>) {
        if state[i] != 0 {
            return;
        }
        state[i] = 1;
        for col in tables[i].columns {
            if let Some(fk) = &col.foreign_key {
                if let Some(j) = tables.iter().position(|t| t.name == fk.table) {
                    if j != i {
                        visit(j, tables, state, order);
                    }
                }
            }
        }
        state[i] = 2;
        order.push(i);
    }
    for i in 0..tables.len() {
        visit(i, tables, &mut state, &mut order);
    }
    order
}
