//! The SQL texts of the flush's batches: how rows are bound ([`Binding`]: one array per
//! column through `unnest`, or a `VALUES` list for array columns), the INSERT shapes and how
//! their returned rows are matched ([`Matching`]), and the key conditions of UPDATE / DELETE.
//! No I/O: the statements run in the parent module.

use std::fmt::Write as _;

use crate::model::{Table, is_array_type};
use crate::sql::{self, quote};

use super::CHUNK;

pub(super) fn array_cast(table: &Table, column: usize) -> String {
    format!("{}[]", table.columns[column].sql_type)
}

/// PostgreSQL's limit on the parameters of one statement.
pub(super) const MAX_PARAMS: usize = 65_535;

/// How a batch statement binds its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Binding {
    /// One array per column, expanded with `unnest`: a fixed SQL text for any number of rows.
    Arrays,
    /// One parameter per row and column in a `VALUES` list of this many rows: for statements
    /// over array columns, whose arrays of arrays `unnest` would flatten.
    Rows(usize),
}

impl Binding {
    /// The binding of a batch over `cols` of `table`.
    pub(super) fn of(table: &Table, cols: &[usize]) -> Binding {
        if cols
            .iter()
            .any(|&c| is_array_type(table.columns[c].sql_type))
        {
            Binding::Rows(0)
        } else {
            Binding::Arrays
        }
    }

    /// The most rows one statement of this binding takes.
    pub(super) fn chunk(self, cols: usize) -> usize {
        match self {
            Binding::Arrays => CHUNK,
            Binding::Rows(_) => (MAX_PARAMS / cols.max(1)).clamp(1, CHUNK),
        }
    }

    /// This binding for a chunk of `rows` rows.
    pub(super) fn rows(self, rows: usize) -> Binding {
        match self {
            Binding::Arrays => Binding::Arrays,
            Binding::Rows(_) => Binding::Rows(rows),
        }
    }
}

/// The FROM item of a batch over `cols`: `unnest($1::t[], ...) [WITH ORDINALITY] AS
/// "alias"(vars.., ["ord"])`, or `(VALUES ($1::t, ..[, 1]), ...) AS "alias"(vars.., ["ord"])`.
/// Parameters start at `$1`, in `cols` order (row by row for [`Binding::Rows`]).
pub(super) fn source(
    table: &Table,
    cols: &[usize],
    vars: &[String],
    alias: &str,
    ordinality: bool,
    binding: Binding,
) -> String {
    let mut names = vars.join(", ");
    if ordinality {
        names.push_str(", \"ord\"");
    }
    match binding {
        Binding::Arrays => {
            let arrays: Vec<String> = cols
                .iter()
                .enumerate()
                .map(|(n, &c)| format!("${}::{}", n + 1, array_cast(table, c)))
                .collect();
            let ord = if ordinality { " WITH ORDINALITY" } else { "" };
            format!("unnest({}){ord} AS \"{alias}\"({names})", arrays.join(", "))
        }
        Binding::Rows(rows) => {
            let mut sql = String::from("(VALUES ");
            let mut n = 0;
            for r in 0..rows {
                if r > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                for (i, &c) in cols.iter().enumerate() {
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    n += 1;
                    let _ = write!(sql, "${n}::{}", table.columns[c].sql_type);
                }
                if ordinality {
                    let _ = write!(sql, ", {}", r + 1);
                }
                sql.push(')');
            }
            let _ = write!(sql, ") AS \"{alias}\"({names})");
            sql
        }
    }
}

/// How the rows of an INSERT come back to their objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Matching {
    /// Every key column is inserted: by key.
    Key,
    /// The unset key columns come from sequences: sort by them.
    Sequence,
    /// An unset key column has another server default: evaluate it in the input CTE.
    InputRow,
}

/// The columns an INSERT of objects with `unset` server-filled columns writes, and how its
/// rows are matched.
pub(super) struct InsertShape {
    pub(super) insert: Vec<usize>,
    pub(super) unset: Vec<usize>,
    pub(super) matching: Matching,
}

impl InsertShape {
    pub(super) fn new(table: &Table, unset: Vec<usize>) -> Self {
        let insert = (0..table.columns.len())
            .filter(|i| !unset.contains(i))
            .collect();
        let unset_keys: Vec<usize> = unset
            .iter()
            .copied()
            .filter(|&i| table.columns[i].primary_key)
            .collect();
        let matching = if unset_keys.is_empty() {
            Matching::Key
        } else if unset_keys.iter().all(|&k| table.columns[k].generated) {
            Matching::Sequence
        } else {
            Matching::InputRow
        };
        InsertShape {
            insert,
            unset,
            matching,
        }
    }

    pub(super) fn returning(&self) -> bool {
        !self.unset.is_empty()
    }
}

pub(super) fn column_list(table: &Table, prefix: &str) -> String {
    table
        .columns
        .iter()
        .map(|c| format!("{prefix}{}", quote(c.name)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The batched INSERT of `shape` (bound as [`source`] binds the inserted columns).
pub(super) fn insert_sql(table: &Table, shape: &InsertShape, binding: Binding) -> String {
    let t = quote(table.name);
    let insert = &shape.insert;
    if shape.matching == Matching::InputRow {
        return insert_by_input_row_sql(table, shape, binding);
    }
    let mut sql = String::with_capacity(256);
    if insert.is_empty() {
        let _ = write!(
            sql,
            "INSERT INTO {t} SELECT FROM generate_series(1, $1::bigint) AS g(ord) ORDER BY g.ord"
        );
    } else {
        let cols: Vec<String> = insert
            .iter()
            .map(|&i| quote(table.columns[i].name))
            .collect();
        let vars: Vec<String> = (0..insert.len()).map(|n| format!("\"c{n}\"")).collect();
        let _ = write!(
            sql,
            "INSERT INTO {t} ({}) SELECT {} FROM {} ORDER BY \"ord\"",
            cols.join(", "),
            vars.join(", "),
            source(table, insert, &vars, "t", true, binding),
        );
    }
    if shape.returning() {
        let _ = write!(sql, " RETURNING {}", column_list(table, ""));
        if shape.matching == Matching::Sequence {
            let order: Vec<String> = shape
                .unset
                .iter()
                .filter(|&&k| table.columns[k].primary_key)
                .map(|&k| quote(table.columns[k].name))
                .collect();
            sql = format!(
                "WITH \"ins\" AS ({sql}) SELECT * FROM \"ins\" ORDER BY {}",
                order.join(", ")
            );
        }
    }
    sql
}

/// The value an unset key column gets in the input CTE.
pub(super) fn key_default(table: &Table, column: usize) -> String {
    let col = &table.columns[column];
    match col.server_default {
        Some(expr) => format!("({expr})::{}", col.sql_type),
        None => format!(
            "nextval(pg_get_serial_sequence('{}', '{}'))::{}",
            quote(table.name).replace('\'', "''"),
            col.name.replace('\'', "''"),
            col.sql_type
        ),
    }
}

/// `WITH "t" AS MATERIALIZED (input rows with their key defaults), "ins" AS (INSERT ...
/// RETURNING ...) SELECT ... JOIN "t" ... ORDER BY "t"."ord"`: keys from a non-sequence default
/// are made once per input row and matched back by them.
pub(super) fn insert_by_input_row_sql(
    table: &Table,
    shape: &InsertShape,
    binding: Binding,
) -> String {
    let t = quote(table.name);
    let vars: Vec<String> = (0..shape.insert.len())
        .map(|n| format!("\"c{n}\""))
        .collect();
    let keys: Vec<usize> = shape
        .unset
        .iter()
        .copied()
        .filter(|&k| table.columns[k].primary_key)
        .collect();
    let key_vars: Vec<String> = (0..keys.len()).map(|n| format!("\"k{n}\"")).collect();
    let source = if shape.insert.is_empty() {
        "generate_series(1, $1::bigint) AS \"u\"(\"ord\")".to_string()
    } else {
        source(table, &shape.insert, &vars, "u", true, binding)
    };
    let mut select: Vec<String> = vars.clone();
    select.extend(
        keys.iter()
            .zip(&key_vars)
            .map(|(&k, v)| format!("{} AS {v}", key_default(table, k))),
    );
    select.push("\"ord\"".into());
    let mut cols: Vec<String> = shape
        .insert
        .iter()
        .map(|&i| quote(table.columns[i].name))
        .collect();
    cols.extend(keys.iter().map(|&k| quote(table.columns[k].name)));
    let mut values = vars.clone();
    values.extend(key_vars.iter().cloned());
    let join: Vec<String> = table
        .key_columns()
        .map(|k| {
            let name = quote(table.columns[k].name);
            match keys.iter().position(|&u| u == k) {
                Some(n) => format!("\"ins\".{name} = \"t\".{}", key_vars[n]),
                None => {
                    let n = shape.insert.iter().position(|&i| i == k).unwrap_or(0);
                    format!("\"ins\".{name} = \"t\".{}", vars[n])
                }
            }
        })
        .collect();
    format!(
        "WITH \"t\" AS MATERIALIZED (SELECT {} FROM {source}), \"ins\" AS (INSERT INTO {t} ({}) \
         SELECT {} FROM \"t\" ORDER BY \"ord\" RETURNING {}) SELECT {} FROM \"ins\" JOIN \"t\" ON {} \
         ORDER BY \"t\".\"ord\"",
        select.join(", "),
        cols.join(", "),
        values.join(", "),
        column_list(table, ""),
        column_list(table, "\"ins\"."),
        join.join(" AND ")
    )
}

/// `INSERT INTO t (cols) VALUES ($1, ...) RETURNING ...`: the plain form for one row.
pub(super) fn insert_one_sql(table: &Table, shape: &InsertShape) -> String {
    let vals: Vec<String> = (1..=shape.insert.len()).map(|n| format!("${n}")).collect();
    let mut sql = if shape.insert.is_empty() {
        format!("INSERT INTO {} DEFAULT VALUES", quote(table.name))
    } else {
        format!(
            "INSERT INTO {} ({}) VALUES ({})",
            quote(table.name),
            sql::columns(table, &shape.insert),
            vals.join(", ")
        )
    };
    if shape.returning() {
        let _ = write!(sql, " RETURNING {}", column_list(table, ""));
    }
    sql
}

/// `"t"."k" = "t"."k0" AND ...`: the table's key columns against the `unnest` rows' `k0`, `k1`.
pub(super) fn key_match(table: &Table, keys: &[usize]) -> String {
    let t = quote(table.name);
    keys.iter()
        .enumerate()
        .map(|(n, &k)| format!("{t}.{} = \"t\".\"k{n}\"", quote(table.columns[k].name)))
        .collect::<Vec<_>>()
        .join(" AND ")
}
