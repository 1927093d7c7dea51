//! The UPDATE and DELETE works: persistent objects of one entity type, by primary key (and
//! version), each statement checked to match one row per object (SQLAlchemy's StaleDataError
//! otherwise).

use std::collections::HashMap;

use super::text::{Binding, key_match, source};
use super::{Step, Work, check_columns, stale_count, typed};
use crate::connection::{Answer, Planned};
use crate::error::{Error, Result};
use crate::model::{AnyObj, Entity, Obj, ObjectState, same_row};
use crate::sql::{self, quote};

/// Whether a statement is an UPDATE or a DELETE (for its messages).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Update,
    Delete,
}

impl Op {
    /// SQLAlchemy's StaleDataError message for `expected` objects and `matched` rows.
    fn stale(self, table: &str, expected: usize, matched: u64) -> Error {
        Error::StaleData(match self {
            Op::Update => format!(
                "UPDATE statement on table '{table}' expected to update {expected} row(s); \
                 {matched} were matched."
            ),
            Op::Delete => format!(
                "DELETE statement on table '{table}' expected to delete {expected} row(s); \
                 Only {matched} were matched."
            ),
        })
    }
}

/// UPDATEs or DELETEs of objects of type `T` ([`update_work`], [`delete_work`]).
struct ChangeWork<T: Entity> {
    op: Op,
    objs: Vec<Obj<T>>,
    /// What each statement binds: the value written (UPDATE), the row loaded (DELETE).
    images: Vec<T>,
    steps: Vec<Step>,
}

/// The statements of one chunk of `rows` objects from `from` on: the `single` statement for
/// one row, else a batch over `bound` with the `fixed` text (prepared and cached), or for a
/// `VALUES` list the text `build` makes for this many rows (run unprepared).
#[allow(clippy::too_many_arguments)]
fn chunk_step<T: Entity>(
    images: &[T],
    range: std::ops::Range<usize>,
    single: (&str, &[usize]),
    bound: &[usize],
    binding: Binding,
    fixed: Option<&str>,
    build: &dyn Fn(Binding) -> String,
    checked: bool,
) -> Step {
    let step = if range.len() == 1 {
        Step::new(single.0.to_string(), true, images, range, single.1, false)
    } else {
        let binding = binding.rows(range.len());
        match fixed {
            Some(sql) => Step::new(sql.to_string(), true, images, range, bound, true),
            None => Step::new(build(binding), false, images, range, bound, false),
        }
    };
    if checked { step.checked() } else { step }
}

/// The UPDATEs of the changed columns of `objs` (persistent objects of type `T`), one
/// statement per set of changed columns and chunk; `checked` makes the server check the row
/// counts (a COMMIT travels with them). Finishing returns the objects that had changes.
pub(crate) fn update_work<T: Entity>(objs: &[AnyObj], checked: bool) -> Result<Box<dyn Work>> {
    let table = T::TABLE;
    let keys: Vec<usize> = table.key_columns().collect();
    let version = table.version_column();
    // A version the server generates (`xmin`): matched as loaded, read back with RETURNING.
    let server = table.server_version();
    let checked = checked && server.is_none();
    let mut groups: HashMap<Vec<usize>, Vec<(Obj<T>, T)>> = HashMap::new();
    for obj in typed::<T>(objs) {
        let mut data = obj.cell.data.read_recursive();
        let mut changed = data.changed_columns();
        // System columns are never written.
        changed.retain(|&c| !table.columns[c].system);
        if changed.is_empty() {
            continue;
        }
        if let (Some(v), None) = (version, server) {
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
        let mut image = data.value.clone();
        if let (Some(loaded), Some(_)) = (data.committed.as_deref(), server) {
            // The WHERE matches the version loaded, whatever the field holds now.
            image.set_version(loaded.version().unwrap_or(0));
        }
        drop(data);
        groups.entry(changed).or_default().push((obj, image));
    }
    let mut work = ChangeWork {
        op: Op::Update,
        objs: Vec::new(),
        images: Vec::new(),
        steps: Vec::new(),
    };
    let mut sets: Vec<_> = groups.into_iter().collect();
    sets.sort_by(|a, b| a.0.cmp(&b.0));
    for (changed, items) in sets {
        for (_, image) in &items {
            check_columns(image, &changed)?;
        }
        let t = quote(table.name);
        let key_vars: Vec<String> = (0..keys.len()).map(|n| format!("\"k{n}\"")).collect();
        let col_vars: Vec<String> = (0..changed.len()).map(|n| format!("\"c{n}\"")).collect();
        let mut bound: Vec<usize> = keys.iter().chain(changed.iter()).copied().collect();
        let mut vars: Vec<String> = key_vars.iter().chain(col_vars.iter()).cloned().collect();
        let set: Vec<String> = changed
            .iter()
            .enumerate()
            .map(|(n, &c)| format!("{} = \"t\".\"c{n}\"", quote(table.columns[c].name)))
            .collect();
        let mut cond = key_match(table, &keys);
        let mut single_cond = sql::key_condition(table, changed.len() + 1);
        let mut single_cols: Vec<usize> = changed.iter().chain(keys.iter()).copied().collect();
        let mut returning = String::new();
        match (version, server) {
            (Some(v), Some(_)) => {
                let col = quote(table.columns[v].name);
                bound.push(v);
                vars.push("\"v\"".into());
                cond.push_str(&format!(" AND {t}.{col} = \"t\".\"v\""));
                single_cols.push(v);
                single_cond.push_str(&format!(" AND {col} = ${}", single_cols.len()));
                let back: Vec<String> = keys
                    .iter()
                    .chain([&v])
                    .map(|&c| format!("{t}.{}", quote(table.columns[c].name)))
                    .collect();
                returning = format!(" RETURNING {}", back.join(", "));
            }
            (Some(v), None) => {
                let n = changed.iter().position(|&c| c == v).unwrap_or(0);
                let col = quote(table.columns[v].name);
                cond.push_str(&format!(" AND {t}.{col} = \"t\".\"c{n}\" - 1"));
                single_cond.push_str(&format!(" AND {col} = ${} - 1", n + 1));
            }
            _ => {}
        }
        let batch_sql = |binding| {
            format!(
                "UPDATE {t} SET {} FROM {} WHERE {}{returning}",
                set.join(", "),
                source(table, &bound, &vars, "t", false, binding),
                cond
            )
        };
        let binding = Binding::of(table, &bound);
        let fixed_sql = (binding == Binding::Arrays).then(|| batch_sql(binding));
        let single_sql = format!(
            "UPDATE {t} SET {} WHERE {single_cond}{returning}",
            sql::assignments(table, &changed, 1, ", "),
        );
        let start = work.objs.len();
        for (obj, image) in items {
            work.objs.push(obj);
            work.images.push(image);
        }
        let first = work.steps.len();
        work.add_steps(
            start,
            (&single_sql, &single_cols),
            &bound,
            binding,
            fixed_sql.as_deref(),
            &batch_sql,
            checked,
        );
        if server.is_some() {
            for step in &mut work.steps[first..] {
                step.rows = true; // the keys and new versions come back
            }
        }
    }
    Ok(Box::new(work))
}

/// The DELETEs of `objs` (objects of type `T` marked with `session.delete`) by primary key
/// (and the version loaded); `checked` as for [`update_work`].
pub(crate) fn delete_work<T: Entity>(objs: &[AnyObj], checked: bool) -> Result<Box<dyn Work>> {
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
    let images = objs
        .iter()
        .map(|o| {
            let data = o.cell.data.read_recursive();
            data.committed.as_deref().unwrap_or(&data.value).clone()
        })
        .collect();
    let mut work = ChangeWork {
        op: Op::Delete,
        objs,
        images,
        steps: Vec::new(),
    };
    work.add_steps(
        0,
        (&single_sql, &bound),
        &bound,
        binding,
        fixed_sql.as_deref(),
        &batch_sql,
        checked,
    );
    Ok(Box::new(work))
}

impl<T: Entity> ChangeWork<T> {
    /// The chunks of the objects from `start` on (see [`chunk_step`]).
    #[allow(clippy::too_many_arguments)]
    fn add_steps(
        &mut self,
        start: usize,
        single: (&str, &[usize]),
        bound: &[usize],
        binding: Binding,
        fixed: Option<&str>,
        build: &dyn Fn(Binding) -> String,
        checked: bool,
    ) {
        let size = binding.chunk(bound.len());
        let end = self.objs.len();
        let mut from = start;
        while from < end {
            let to = (from + size).min(end);
            let step = chunk_step(
                &self.images,
                from..to,
                single,
                bound,
                binding,
                fixed,
                build,
                checked,
            );
            self.steps.push(step);
            from = to;
        }
    }
}

impl<T: Entity> Work for ChangeWork<T> {
    fn planned(&self) -> Vec<Planned<'_>> {
        self.steps.iter().map(|s| s.planned(&self.images)).collect()
    }

    fn finish(mut self: Box<Self>, answers: Vec<Answer>) -> Result<Vec<AnyObj>> {
        let table = T::TABLE.name;
        let mut updated = Vec::new();
        for (step, answer) in self.steps.iter().zip(answers) {
            let n = step.matched(&answer)?;
            if n != step.range.len() as u64 {
                return Err(self.op.stale(table, step.range.len(), n));
            }
            if let (Op::Update, Answer::Rows(rows)) = (self.op, &answer) {
                read_back_versions(&self.objs, &mut self.images, step, rows)?;
            }
            for at in step.range.clone() {
                let obj = &self.objs[at];
                match self.op {
                    Op::Update => {
                        let image = &self.images[at];
                        let mut data = obj.cell.data.write();
                        let changed_meanwhile = !same_row(&data.value, image);
                        data.committed = changed_meanwhile.then(|| Box::new(image.clone()));
                        drop(data);
                        if changed_meanwhile {
                            obj.cell.meta().enqueue(|| obj.erase());
                        }
                        updated.push(obj.erase());
                    }
                    Op::Delete => {
                        let mut meta = obj.cell.meta();
                        meta.status = ObjectState::Deleted;
                        meta.marked_deleted = false;
                    }
                }
            }
        }
        Ok(updated)
    }

    fn explain(&self, statement: usize, error: Error) -> Error {
        match (self.steps.get(statement), stale_count(&error)) {
            (Some(step), Some(matched)) if step.expect.is_some() => {
                self.op.stale(T::TABLE.name, step.range.len(), matched)
            }
            _ => error,
        }
    }
}

/// The versions the server generated (`xmin`), from the rows an UPDATE returned (keys, then the
/// version), into the objects it wrote and their images.
fn read_back_versions<T: Entity>(
    objs: &[Obj<T>],
    images: &mut [T],
    step: &Step,
    rows: &[tokio_postgres::Row],
) -> Result<()> {
    let Some(v) = T::TABLE.server_version() else {
        return Ok(());
    };
    let at = T::TABLE.key_columns().count();
    let mut index: HashMap<T::Key, usize> =
        step.range.clone().map(|i| (images[i].key(), i)).collect();
    for row in rows {
        let key = T::key_from_row(row, 0).map_err(|e| Error::row(e, row, &step.sql))?;
        let Some(i) = index.remove(&key) else {
            continue;
        };
        images[i]
            .set_column(v, row, at)
            .map_err(|e| Error::row(e, row, &step.sql))?;
        let mut data = objs[i].cell.data.write();
        data.value
            .set_column(v, row, at)
            .map_err(|e| Error::row(e, row, &step.sql))?;
    }
    Ok(())
}
