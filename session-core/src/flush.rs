//! The unit of work's statements: batched INSERT, UPDATE and DELETE of one entity type.
//!
//! Every batch binds one array per column and expands it with `unnest`, so a batch is one
//! statement with a fixed SQL text (prepared once per connection) and a handful of parameters,
//! whatever its size: the 65,535-parameter limit never applies, and batches are still split
//! every [`CHUNK`] rows to bound memory.
//!
//! Generated keys are matched back to their objects deterministically: rows are inserted in
//! the objects' order (`WITH ORDINALITY ... ORDER BY`), and the returned rows are sorted by the
//! generated key, which a sequence hands out in insertion order (SQLAlchemy's
//! "insertmanyvalues" sentinel rule); with keys given by the application, rows are matched by
//! key.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::connection::{AsyncConnection, Param};
use crate::entity::{Entity, OwnedParam, Table};
use crate::error::{Error, Result};
use crate::object::{AnyObj, Obj, ObjectState};

/// Rows per statement.
pub(crate) const CHUNK: usize = 20_000;

/// Quotes an SQL identifier.
pub(crate) fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn typed<T: Entity>(objs: &[AnyObj]) -> Vec<Obj<T>> {
    objs.iter().filter_map(AnyObj::downcast::<T>).collect()
}

fn as_params(owned: &[OwnedParam]) -> Vec<Param<'_>> {
    owned.iter().map(|p| &**p as Param<'_>).collect()
}

fn array_cast(table: &Table, column: usize) -> String {
    format!("{}[]", table.columns[column].sql_type)
}

/// The single generated key column, if the key is one generated column.
fn generated_key(table: &Table) -> Option<usize> {
    let keys: Vec<usize> = table.key_columns().collect();
    match keys.as_slice() {
        [k] if table.columns[*k].server_filled() => Some(*k),
        _ => None,
    }
}

fn insert_sql(table: &Table, insert: &[usize], returning: bool) -> String {
    let t = quote(table.name);
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
        let arrays: Vec<String> = insert
            .iter()
            .enumerate()
            .map(|(n, &i)| format!("${}::{}", n + 1, array_cast(table, i)))
            .collect();
        let _ = write!(
            sql,
            "INSERT INTO {t} ({}) SELECT {} FROM unnest({}) WITH ORDINALITY AS \"t\"({}, \"ord\") \
             ORDER BY \"ord\"",
            cols.join(", "),
            vars.join(", "),
            arrays.join(", "),
            vars.join(", ")
        );
    }
    if returning {
        let all: Vec<String> = table.columns.iter().map(|c| quote(c.name)).collect();
        let _ = write!(sql, " RETURNING {}", all.join(", "));
        if let Some(k) = generated_key(table) {
            sql = format!(
                "WITH \"ins\" AS ({sql}) SELECT * FROM \"ins\" ORDER BY {}",
                quote(table.columns[k].name)
            );
        }
    }
    sql
}

/// `INSERT INTO t (cols) VALUES ($1, ...) RETURNING ...`: the plain form for one row.
fn insert_one_sql(table: &Table, insert: &[usize], returning: bool) -> String {
    let cols: Vec<String> = insert
        .iter()
        .map(|&i| quote(table.columns[i].name))
        .collect();
    let vals: Vec<String> = (1..=insert.len()).map(|n| format!("${n}")).collect();
    let mut sql = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        quote(table.name),
        cols.join(", "),
        vals.join(", ")
    );
    if returning {
        let all: Vec<String> = table.columns.iter().map(|c| quote(c.name)).collect();
        let _ = write!(sql, " RETURNING {}", all.join(", "));
    }
    sql
}

/// INSERTs `objs` (pending objects of type `T`), fetching server-filled columns back, and makes
/// them persistent (the caller registers them in the identity map).
pub(crate) async fn insert_batch<T: Entity>(
    conn: &mut AsyncConnection,
    objs: &[AnyObj],
) -> Result<()> {
    let table = T::TABLE;
    let objs = typed::<T>(objs);
    let insert: Vec<usize> = (0..table.columns.len())
        .filter(|&i| !table.columns[i].server_filled())
        .collect();
    let returning = insert.len() < table.columns.len();
    let batch_sql = insert_sql(table, &insert, returning);
    let single_sql = insert_one_sql(table, &insert, returning);
    for chunk in objs.chunks(CHUNK) {
        let mut snapshots: Vec<T> = chunk.iter().map(|o| o.cell.lock().value.clone()).collect();
        let refs: Vec<&T> = snapshots.iter().collect();
        let owned: Vec<OwnedParam> = if insert.is_empty() {
            vec![Box::new(chunk.len() as i64)]
        } else {
            insert.iter().map(|&i| T::column_array(&refs, i)).collect()
        };
        let single = chunk.len() == 1 && !insert.is_empty();
        let sql: &str = if single { &single_sql } else { &batch_sql };
        let params: Vec<Param<'_>> = if single {
            insert
                .iter()
                .map(|&i| snapshots[0].column_param(i))
                .collect()
        } else {
            as_params(&owned)
        };
        let mut rows = Vec::new();
        let mut order: Vec<usize> = Vec::new();
        if returning {
            rows = conn.query(sql, &params).await?;
            if rows.len() != chunk.len() {
                return Err(Error::StaleData(format!(
                    "INSERT into table '{}' expected {} row(s); {} were returned",
                    table.name,
                    chunk.len(),
                    rows.len()
                )));
            }
            order = if generated_key(table).is_some() {
                (0..chunk.len()).collect()
            } else {
                let by_key: HashMap<T::Key, usize> = snapshots
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (s.key(), i))
                    .collect();
                let mut order = vec![usize::MAX; chunk.len()];
                for (r, row) in rows.iter().enumerate() {
                    let key = T::key_from_row(row, 0).map_err(|e| Error::statement(e, sql))?;
                    match by_key.get(&key) {
                        Some(&i) => order[i] = r,
                        None => {
                            return Err(Error::StaleData(format!(
                                "INSERT into table '{}' returned the unknown key {key:?}",
                                table.name
                            )));
                        }
                    }
                }
                order
            };
            for (i, snapshot) in snapshots.iter_mut().enumerate() {
                let row = &rows[order[i]];
                for (c, col) in table.columns.iter().enumerate() {
                    if col.server_filled() {
                        snapshot
                            .set_column(c, row, c)
                            .map_err(|e| Error::statement(e, sql))?;
                    }
                }
            }
        } else {
            let n = conn.execute(sql, &params).await?;
            if n != chunk.len() as u64 {
                return Err(Error::StaleData(format!(
                    "INSERT into table '{}' expected to insert {} row(s); {n} were inserted",
                    table.name,
                    chunk.len()
                )));
            }
        }
        for (i, (obj, snapshot)) in chunk.iter().zip(snapshots).enumerate() {
            let mut state = obj.cell.lock();
            if returning {
                let row = &rows[order[i]];
                for (c, col) in table.columns.iter().enumerate() {
                    if col.server_filled() {
                        state
                            .value
                            .set_column(c, row, c)
                            .map_err(|e| Error::statement(e, sql))?;
                    }
                }
            }
            state.status = ObjectState::Persistent;
            state.modified = !columns_equal(&state.value, &snapshot);
            state.committed = state.modified.then(|| Box::new(snapshot));
            state.expired.clear_all();
        }
    }
    Ok(())
}

fn columns_equal<T: Entity>(a: &T, b: &T) -> bool {
    (0..T::TABLE.columns.len()).all(|i| a.column_eq(b, i))
}

/// `"t"."k" = "t"."k0" AND ...`: the table's key columns against the `unnest` rows' `k0`, `k1`.
fn key_match(table: &Table, keys: &[usize]) -> String {
    let t = quote(table.name);
    keys.iter()
        .enumerate()
        .map(|(n, &k)| format!("{t}.{} = \"t\".\"k{n}\"", quote(table.columns[k].name)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// UPDATEs the changed columns of `objs` (persistent objects of type `T`), one statement per
/// set of changed columns. Returns how many objects had changes.
pub(crate) async fn update_batch<T: Entity>(
    conn: &mut AsyncConnection,
    objs: &[AnyObj],
) -> Result<Vec<AnyObj>> {
    let table = T::TABLE;
    let keys: Vec<usize> = table.key_columns().collect();
    let mut groups: HashMap<Vec<usize>, Vec<(Obj<T>, T)>> = HashMap::new();
    for obj in typed::<T>(objs) {
        let state = obj.cell.lock();
        let changed = state.changed_columns();
        if changed.is_empty() {
            continue;
        }
        if let Some(k) = changed.iter().find(|c| table.columns[**c].primary_key) {
            return Err(Error::InvalidRequest(format!(
                "the primary key column '{}.{}' of {} was changed; changing the primary key of \
                 a persistent object is not supported: delete it and add a new object",
                table.name,
                table.columns[*k].name,
                state.describe()
            )));
        }
        let snapshot = state.value.clone();
        drop(state);
        groups.entry(changed).or_default().push((obj, snapshot));
    }
    let mut updated = Vec::new();
    let mut sets: Vec<_> = groups.into_iter().collect();
    sets.sort_by(|a, b| a.0.cmp(&b.0));
    for (changed, items) in sets {
        let t = quote(table.name);
        let key_vars: Vec<String> = (0..keys.len()).map(|n| format!("\"k{n}\"")).collect();
        let col_vars: Vec<String> = (0..changed.len()).map(|n| format!("\"c{n}\"")).collect();
        let mut arrays = Vec::new();
        for (n, &k) in keys.iter().chain(changed.iter()).enumerate() {
            arrays.push(format!("${}::{}", n + 1, array_cast(table, k)));
        }
        let set: Vec<String> = changed
            .iter()
            .enumerate()
            .map(|(n, &c)| format!("{} = \"t\".\"c{n}\"", quote(table.columns[c].name)))
            .collect();
        let cond = key_match(table, &keys);
        let sql = format!(
            "UPDATE {t} SET {} FROM unnest({}) AS \"t\"({}) WHERE {}",
            set.join(", "),
            arrays.join(", "),
            key_vars
                .iter()
                .chain(col_vars.iter())
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            cond
        );
        let single_sql = format!(
            "UPDATE {t} SET {} WHERE {}",
            changed
                .iter()
                .enumerate()
                .map(|(n, &c)| format!("{} = ${}", quote(table.columns[c].name), n + 1))
                .collect::<Vec<_>>()
                .join(", "),
            keys.iter()
                .enumerate()
                .map(|(n, &k)| format!(
                    "{} = ${}",
                    quote(table.columns[k].name),
                    changed.len() + n + 1
                ))
                .collect::<Vec<_>>()
                .join(" AND ")
        );
        for chunk in items.chunks(CHUNK) {
            let n = if let [(_, snapshot)] = chunk {
                let params: Vec<Param<'_>> = changed
                    .iter()
                    .chain(keys.iter())
                    .map(|&i| snapshot.column_param(i))
                    .collect();
                conn.execute(&single_sql, &params).await?
            } else {
                let refs: Vec<&T> = chunk.iter().map(|(_, s)| s).collect();
                let owned: Vec<OwnedParam> = keys
                    .iter()
                    .chain(changed.iter())
                    .map(|&i| T::column_array(&refs, i))
                    .collect();
                conn.execute(&sql, &as_params(&owned)).await?
            };
            if n != chunk.len() as u64 {
                return Err(Error::StaleData(format!(
                    "UPDATE statement on table '{}' expected to update {} row(s); {n} were \
                     matched.",
                    table.name,
                    chunk.len()
                )));
            }
            for (obj, snapshot) in chunk {
                let mut state = obj.cell.lock();
                state.modified = !columns_equal(&state.value, snapshot);
                state.committed = state.modified.then(|| Box::new(snapshot.clone()));
                updated.push(obj.erase());
            }
        }
    }
    Ok(updated)
}

/// DELETEs `objs` (objects of type `T` marked with `session.delete`) by primary key.
pub(crate) async fn delete_batch<T: Entity>(
    conn: &mut AsyncConnection,
    objs: &[AnyObj],
) -> Result<()> {
    let table = T::TABLE;
    let keys: Vec<usize> = table.key_columns().collect();
    let t = quote(table.name);
    let vars: Vec<String> = (0..keys.len()).map(|n| format!("\"k{n}\"")).collect();
    let arrays: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(n, &k)| format!("${}::{}", n + 1, array_cast(table, k)))
        .collect();
    let sql = format!(
        "DELETE FROM {t} USING unnest({}) AS \"t\"({}) WHERE {}",
        arrays.join(", "),
        vars.join(", "),
        key_match(table, &keys)
    );
    let single_sql = format!(
        "DELETE FROM {t} WHERE {}",
        keys.iter()
            .enumerate()
            .map(|(n, &k)| format!("{} = ${}", quote(table.columns[k].name), n + 1))
            .collect::<Vec<_>>()
            .join(" AND ")
    );
    let objs = typed::<T>(objs);
    for chunk in objs.chunks(CHUNK) {
        let snapshots: Vec<T> = chunk
            .iter()
            .map(|o| {
                let state = o.cell.lock();
                state.committed.as_deref().unwrap_or(&state.value).clone()
            })
            .collect();
        let n = if let [snapshot] = snapshots.as_slice() {
            let params: Vec<Param<'_>> = keys.iter().map(|&i| snapshot.column_param(i)).collect();
            conn.execute(&single_sql, &params).await?
        } else {
            let refs: Vec<&T> = snapshots.iter().collect();
            let owned: Vec<OwnedParam> = keys.iter().map(|&i| T::column_array(&refs, i)).collect();
            conn.execute(&sql, &as_params(&owned)).await?
        };
        if n != chunk.len() as u64 {
            return Err(Error::StaleData(format!(
                "DELETE statement on table '{}' expected to delete {} row(s); Only {n} were \
                 matched.",
                table.name,
                chunk.len()
            )));
        }
        for obj in chunk {
            let mut state = obj.cell.lock();
            state.status = ObjectState::Deleted;
            state.marked_deleted = false;
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
