//! The unit of work's statements: batched INSERT, UPDATE and DELETE of one entity type.
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

use std::collections::HashMap;

use crate::connection::{AsyncConnection, Param};
use crate::error::{Error, Result};
use crate::model::{AnyObj, Obj, ObjectState, same_row};
use crate::model::{Entity, OwnedParam, Table};
use crate::sql::{self, quote};

mod text;

use text::{Binding, InsertShape, Matching, insert_one_sql, insert_sql, key_match, source};

/// Rows per statement.
pub(crate) const CHUNK: usize = 20_000;

fn typed<T: Entity>(objs: &[AnyObj]) -> Vec<Obj<T>> {
    objs.iter().filter_map(AnyObj::downcast::<T>).collect()
}

fn as_params(owned: &[OwnedParam]) -> Vec<Param<'_>> {
    owned.iter().map(|p| &**p as Param<'_>).collect()
}

/// The parameters of a batch over `cols` of `rows`: the arrays (kept in `owned`) or each
/// row's values.
fn bind<'a, T: Entity>(
    rows: &[&'a T],
    cols: &[usize],
    binding: Binding,
    owned: &'a mut Vec<OwnedParam>,
) -> Vec<Param<'a>> {
    match binding {
        Binding::Arrays => {
            *owned = cols.iter().map(|&c| T::column_array(rows, c)).collect();
            as_params(owned)
        }
        Binding::Rows(_) => rows
            .iter()
            .flat_map(|row| cols.iter().map(|&c| row.column_param(c)))
            .collect(),
    }
}

/// The statement for one row of an UPDATE / DELETE chunk: its text, and the columns of the
/// row it binds, in order.
type Single<'a> = (&'a str, &'a [usize]);

/// Runs one chunk of `rows`: a single row through the `single` statement; several as a batch
/// over `cols`, with the `fixed` text (prepared and cached), or for a `VALUES` list the text
/// `build` makes for this many rows (run unprepared: its text depends on the row count).
/// Returns the rows affected.
async fn execute_batch<T: Entity>(
    conn: &mut AsyncConnection,
    rows: &[&T],
    single: Single<'_>,
    cols: &[usize],
    binding: Binding,
    fixed: Option<&str>,
    build: impl Fn(Binding) -> String,
) -> Result<u64> {
    if let [row] = rows {
        let (sql, single_cols) = single;
        let params: Vec<Param<'_>> = single_cols.iter().map(|&i| row.column_param(i)).collect();
        return conn.execute(sql, &params).await;
    }
    let binding = binding.rows(rows.len());
    let built;
    let sql = match fixed {
        Some(sql) => sql,
        None => {
            built = build(binding);
            &built
        }
    };
    let mut owned = Vec::new();
    let params = bind(rows, cols, binding, &mut owned);
    conn.execute_with(sql, &params, fixed.is_some()).await
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

/// An object and a copy of its value as it is being written.
type Snapshot<T> = (Obj<T>, T);

/// INSERTs `objs` (pending objects of type `T`), fetching server-filled columns back, and makes
/// them persistent (the caller registers them in the identity map).
pub(crate) async fn insert_batch<T: Entity>(
    conn: &mut AsyncConnection,
    objs: &[AnyObj],
) -> Result<()> {
    let table = T::TABLE;
    let server_filled: Vec<usize> = (0..table.columns.len())
        .filter(|&i| table.columns[i].server_filled())
        .collect();
    // Group by which server-filled columns the object leaves to the server (a bit each;
    // objects almost always share one group).
    let mut groups: Vec<(Vec<bool>, Vec<Snapshot<T>>)> = Vec::new();
    let mut unset = vec![false; server_filled.len()];
    let versioned = table.version_column().is_some();
    for obj in typed::<T>(objs) {
        if versioned {
            // A new row starts at version 1 (SQLAlchemy's default generator).
            obj.cell.data.write().value.set_version(1);
        }
        let snapshot = obj.cell.data.read_recursive().value.clone();
        for (flag, &i) in unset.iter_mut().zip(&server_filled) {
            *flag = snapshot.column_is_unset(i);
        }
        match groups.iter_mut().find(|(u, _)| *u == unset) {
            Some((_, items)) => items.push((obj, snapshot)),
            None => groups.push((unset.clone(), vec![(obj, snapshot)])),
        }
    }
    for (flags, items) in groups {
        let unset: Vec<usize> = server_filled
            .iter()
            .zip(&flags)
            .filter(|(_, unset)| **unset)
            .map(|(&i, _)| i)
            .collect();
        let shape = InsertShape::new(table, unset);
        insert_group(conn, &shape, items).await?;
    }
    Ok(())
}

async fn insert_group<T: Entity>(
    conn: &mut AsyncConnection,
    shape: &InsertShape,
    items: Vec<Snapshot<T>>,
) -> Result<()> {
    let table = T::TABLE;
    let insert = &shape.insert;
    for (_, snapshot) in &items {
        check_columns(snapshot, insert)?;
    }
    let binding = Binding::of(table, insert);
    let fixed_sql = (binding == Binding::Arrays).then(|| insert_sql(table, shape, binding));
    let single_sql = insert_one_sql(table, shape);
    let mut items = items;
    while !items.is_empty() {
        let rest = items.split_off(items.len().min(binding.chunk(insert.len())));
        let chunk = std::mem::replace(&mut items, rest);
        let refs: Vec<&T> = chunk.iter().map(|(_, s)| s).collect();
        let single = chunk.len() == 1;
        // A VALUES list's text depends on its row count: run it unprepared, never cached.
        let cached = single || fixed_sql.is_some();
        let chunk_sql;
        let sql: &str = if single {
            &single_sql
        } else if let Some(sql) = &fixed_sql {
            sql
        } else {
            chunk_sql = insert_sql(table, shape, binding.rows(chunk.len()));
            &chunk_sql
        };
        let mut owned: Vec<OwnedParam> = Vec::new();
        let params: Vec<Param<'_>> = if single {
            insert.iter().map(|&i| refs[0].column_param(i)).collect()
        } else if insert.is_empty() {
            owned.push(Box::new(chunk.len() as i64));
            as_params(&owned)
        } else {
            bind(&refs, insert, binding.rows(chunk.len()), &mut owned)
        };
        let mut rows = Vec::new();
        let mut order: Vec<usize> = (0..chunk.len()).collect();
        if shape.returning() {
            rows = conn.query_with(sql, &params, cached).await?;
            if rows.len() != chunk.len() {
                return Err(Error::StaleData(format!(
                    "INSERT into table '{}' expected {} row(s); {} were returned",
                    table.name,
                    chunk.len(),
                    rows.len()
                )));
            }
            if shape.matching == Matching::Key && !single {
                order = match_by_key::<T>(&refs, &rows, sql)?;
            }
        } else {
            let n = conn.execute_with(sql, &params, cached).await?;
            if n != chunk.len() as u64 {
                return Err(Error::StaleData(format!(
                    "INSERT into table '{}' expected to insert {} row(s); {n} were inserted",
                    table.name,
                    chunk.len()
                )));
            }
        }
        drop(params);
        drop(owned);
        drop(refs);
        for (i, (obj, mut image)) in chunk.into_iter().enumerate() {
            let mut data = obj.cell.data.write();
            if shape.returning() {
                let row = &rows[order[i]];
                for &c in &shape.unset {
                    data.value
                        .set_column(c, row, c)
                        .map_err(|e| Error::row(e, row, sql))?;
                    image
                        .set_column(c, row, c)
                        .map_err(|e| Error::row(e, row, sql))?;
                }
            }
            data.expired.clear_all();
            let changed_meanwhile = !same_row(&data.value, &image);
            data.committed = changed_meanwhile.then(|| Box::new(image));
            drop(data);
            let mut meta = obj.cell.meta();
            meta.status = ObjectState::Persistent;
            meta.touched = false;
            if changed_meanwhile {
                meta.touch(|| obj.erase());
            }
        }
    }
    Ok(())
}

/// For rows returned by an INSERT of explicit keys: `order[i]` is the row of object `i`.
fn match_by_key<T: Entity>(
    snapshots: &[&T],
    rows: &[tokio_postgres::Row],
    sql: &str,
) -> Result<Vec<usize>> {
    let table = T::TABLE;
    let by_key: HashMap<T::Key, usize> = snapshots
        .iter()
        .enumerate()
        .map(|(i, s)| (s.key(), i))
        .collect();
    let mut order = vec![usize::MAX; snapshots.len()];
    for (r, row) in rows.iter().enumerate() {
        let key = T::key_from_row(row, 0).map_err(|e| Error::row(e, row, sql))?;
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
    Ok(order)
}

/// UPDATEs the changed columns of `objs` (persistent objects of type `T`), one statement per
/// set of changed columns. Returns how many objects had changes.
pub(crate) async fn update_batch<T: Entity>(
    conn: &mut AsyncConnection,
    objs: &[AnyObj],
) -> Result<Vec<AnyObj>> {
    let table = T::TABLE;
    let keys: Vec<usize> = table.key_columns().collect();
    let version = table.version_column();
    let mut groups: HashMap<Vec<usize>, Vec<(Obj<T>, T)>> = HashMap::new();
    for obj in typed::<T>(objs) {
        let mut data = obj.cell.data.read_recursive();
        let mut changed = data.changed_columns();
        if changed.is_empty() {
            continue;
        }
        if let Some(v) = version {
            // The UPDATE sets the row's version one past the one loaded, and matches only
            // that one (below): a row another writer changed meanwhile matches nothing.
            drop(data);
            let mut write = obj.cell.data.write();
            let loaded = write
                .committed
                .as_deref()
                .unwrap_or(&write.value)
                .version()
                .unwrap_or(0);
            write.value.set_version(loaded + 1);
            drop(write);
            data = obj.cell.data.read_recursive();
            if !changed.contains(&v) {
                changed.push(v);
                changed.sort_unstable();
            }
        }
        if let Some(k) = changed.iter().find(|c| table.columns[**c].primary_key) {
            return Err(Error::InvalidRequest(format!(
                "the primary key column '{}.{}' of {} was changed; changing the primary key of \
                 a persistent object is not supported: delete it and add a new object",
                table.name,
                table.columns[*k].name,
                data.describe(ObjectState::Persistent)
            )));
        }
        let snapshot = data.value.clone();
        drop(data);
        groups.entry(changed).or_default().push((obj, snapshot));
    }
    let mut updated = Vec::new();
    let mut sets: Vec<_> = groups.into_iter().collect();
    sets.sort_by(|a, b| a.0.cmp(&b.0));
    for (changed, items) in sets {
        for (_, snapshot) in &items {
            check_columns(snapshot, &changed)?;
        }
        let t = quote(table.name);
        let key_vars: Vec<String> = (0..keys.len()).map(|n| format!("\"k{n}\"")).collect();
        let col_vars: Vec<String> = (0..changed.len()).map(|n| format!("\"c{n}\"")).collect();
        let bound: Vec<usize> = keys.iter().chain(changed.iter()).copied().collect();
        let vars: Vec<String> = key_vars.iter().chain(col_vars.iter()).cloned().collect();
        let set: Vec<String> = changed
            .iter()
            .enumerate()
            .map(|(n, &c)| format!("{} = \"t\".\"c{n}\"", quote(table.columns[c].name)))
            .collect();
        let mut cond = key_match(table, &keys);
        let mut single_cond = sql::key_condition(table, changed.len() + 1);
        if let Some(v) = version {
            let n = changed.iter().position(|&c| c == v).unwrap_or(0);
            let col = quote(table.columns[v].name);
            cond.push_str(&format!(" AND {t}.{col} = \"t\".\"c{n}\" - 1"));
            single_cond.push_str(&format!(" AND {col} = ${} - 1", n + 1));
        }
        let batch_sql = |binding| {
            format!(
                "UPDATE {t} SET {} FROM {} WHERE {}",
                set.join(", "),
                source(table, &bound, &vars, "t", false, binding),
                cond
            )
        };
        let binding = Binding::of(table, &bound);
        let fixed_sql = (binding == Binding::Arrays).then(|| batch_sql(binding));
        let single_sql = format!(
            "UPDATE {t} SET {} WHERE {single_cond}",
            sql::assignments(table, &changed, 1, ", "),
        );
        let single_cols: Vec<usize> = changed.iter().chain(keys.iter()).copied().collect();
        for chunk in items.chunks(binding.chunk(bound.len())) {
            let refs: Vec<&T> = chunk.iter().map(|(_, s)| s).collect();
            let n = execute_batch(
                conn,
                &refs,
                (&single_sql, &single_cols),
                &bound,
                binding,
                fixed_sql.as_deref(),
                &batch_sql,
            )
            .await?;
            if n != chunk.len() as u64 {
                return Err(Error::StaleData(format!(
                    "UPDATE statement on table '{}' expected to update {} row(s); {n} were \
                     matched.",
                    table.name,
                    chunk.len()
                )));
            }
            for (obj, snapshot) in chunk {
                let mut data = obj.cell.data.write();
                let changed_meanwhile = !same_row(&data.value, snapshot);
                data.committed = changed_meanwhile.then(|| Box::new(snapshot.clone()));
                drop(data);
                if changed_meanwhile {
                    obj.cell.meta().enqueue(|| obj.erase());
                }
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
    // With a version counter, the DELETE matches the version loaded too.
    let mut bound = keys.clone();
    let mut vars: Vec<String> = (0..keys.len()).map(|n| format!("\"k{n}\"")).collect();
    let mut cond = key_match(table, &keys);
    let mut single_cond = sql::key_condition(table, 1);
    if let Some(v) = table.version_column() {
        let col = quote(table.columns[v].name);
        bound.push(v);
        vars.push("\"v\"".into());
        cond.push_str(&format!(" AND {t}.{col} = \"t\".\"v\""));
        single_cond.push_str(&format!(" AND {col} = ${}", keys.len() + 1));
    }
    let batch_sql = |binding| {
        format!(
            "DELETE FROM {t} USING {} WHERE {cond}",
            source(table, &bound, &vars, "t", false, binding),
        )
    };
    let binding = Binding::of(table, &bound);
    let fixed_sql = (binding == Binding::Arrays).then(|| batch_sql(binding));
    let single_sql = format!("DELETE FROM {t} WHERE {single_cond}");
    let objs = typed::<T>(objs);
    for chunk in objs.chunks(binding.chunk(bound.len())) {
        let snapshots: Vec<T> = chunk
            .iter()
            .map(|o| {
                let data = o.cell.data.read_recursive();
                data.committed.as_deref().unwrap_or(&data.value).clone()
            })
            .collect();
        let refs: Vec<&T> = snapshots.iter().collect();
        let n = execute_batch(
            conn,
            &refs,
            (&single_sql, &bound),
            &bound,
            binding,
            fixed_sql.as_deref(),
            &batch_sql,
        )
        .await?;
        if n != chunk.len() as u64 {
            return Err(Error::StaleData(format!(
                "DELETE statement on table '{}' expected to delete {} row(s); Only {n} were \
                 matched.",
                table.name,
                chunk.len()
            )));
        }
        for obj in chunk {
            let mut meta = obj.cell.meta();
            meta.status = ObjectState::Deleted;
            meta.marked_deleted = false;
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
