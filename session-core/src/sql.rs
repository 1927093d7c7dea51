//! SQL text shared by every statement the session writes: identifier quoting, column lists and
//! the primary-key condition. Nothing here runs SQL.

use crate::model::Table;

/// Quotes an SQL identifier.
pub(crate) fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// `"c1", "c2", ...` for `columns` (indices into `table.columns`).
pub(crate) fn columns(table: &Table, columns: &[usize]) -> String {
    columns
        .iter()
        .map(|&i| quote(table.columns[i].name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `"c1" = $n, "c2" = $n+1, ...`, joined by `sep`, numbering from `$first`.
pub(crate) fn assignments(table: &Table, columns: &[usize], first: usize, sep: &str) -> String {
    columns
        .iter()
        .enumerate()
        .map(|(n, &c)| format!("{} = ${}", quote(table.columns[c].name), first + n))
        .collect::<Vec<_>>()
        .join(sep)
}

/// `"k1" = $first AND "k2" = $first+1 ...`: the primary key against parameters.
/// `SELECT "c1", ... FROM "table" WHERE <key> = $1, ...`: `columns` of one row by its key.
pub(crate) fn select_by_key(table: &Table, columns: &[usize]) -> String {
    format!(
        "SELECT {} FROM {} WHERE {}",
        self::columns(table, columns),
        quote(table.name),
        key_condition(table, 1)
    )
}

pub(crate) fn key_condition(table: &Table, first: usize) -> String {
    let keys: Vec<usize> = table.key_columns().collect();
    assignments(table, &keys, first, " AND ")
}
