//! The children of deleted parents that are not in the session, when the relationship has no
//! delete cascade: their foreign key is set to NULL by one `UPDATE ... WHERE fk = ANY($1)` per
//! child table and column (SQLAlchemy's default of blanking the children's key, which it does
//! after loading the collection; the session does it without loading). Sent after the UPDATEs
//! of the children the session holds (a child moved to another parent no longer matches) and
//! before the parents' DELETEs.

use super::{CHUNK, Step, Work};
use crate::connection::{Answer, Planned};
use crate::error::Result;
use crate::model::{AnyObj, KeysFn, Table};
use crate::sql::quote;

/// The children of `parents` in `table` (foreign-key column `column`), set free.
pub(crate) struct NullChildren {
    pub(crate) table: &'static Table,
    pub(crate) child_type: std::any::TypeId,
    pub(crate) column: usize,
    pub(crate) parents: Vec<AnyObj>,
    pub(crate) keys: KeysFn,
}

/// The UPDATEs of one [`NullChildren`] (the parents' keys are read now: they have rows).
pub(crate) fn null_children_work(n: &NullChildren) -> Result<Box<dyn Work>> {
    let col = &n.table.columns[n.column];
    let sql = format!(
        "UPDATE {table} SET {c} = NULL WHERE {c} = ANY($1::{}[])",
        col.sql_type,
        table = quote(n.table.name),
        c = quote(col.name),
    );
    let mut steps = Vec::new();
    for chunk in n.parents.chunks(CHUNK) {
        steps.push(Step::bound(
            sql.clone(),
            vec![(n.keys)(chunk)?],
            chunk.len(),
        ));
    }
    Ok(Box::new(NullWork { steps }))
}

struct NullWork {
    steps: Vec<Step>,
}

impl Work for NullWork {
    fn planned(&self) -> Vec<Planned<'_>> {
        self.steps.iter().map(Step::planned_bound).collect()
    }

    fn finish(self: Box<Self>, _answers: Vec<Answer>) -> Result<Vec<AnyObj>> {
        // Any number of rows: those the session does not hold.
        Ok(Vec::new())
    }
}
