//! The INSERT work: pending objects of one entity type, grouped by which server-filled
//! columns they leave to the server, chunked, and made persistent from the answers.

use std::collections::HashMap;

use super::text::{Binding, InsertShape, Matching, insert_one_sql, insert_sql};
use super::{Step, Work, check_columns, typed};
use crate::connection::{Answer, Planned};
use crate::error::{Error, Result};
use crate::model::{AnyObj, Entity, Obj, ObjectState, same_row};

/// Objects that leave the same server-filled columns to the server (a flag per column), each
/// with a copy of its value as written.
type Group<T> = (Vec<bool>, Vec<(Obj<T>, T)>);

/// A chunk of one group: its statement and the group's shape.
struct Chunk {
    step: Step,
    shape: usize,
}

/// INSERTs of pending objects of type `T` ([`insert_work`]).
struct InsertWork<T: Entity> {
    objs: Vec<Obj<T>>,
    /// A copy of each object's value as it is written.
    images: Vec<T>,
    shapes: Vec<InsertShape>,
    chunks: Vec<Chunk>,
}

/// The INSERTs of `objs` (pending objects of type `T`), fetching server-filled columns back;
/// finishing makes them persistent (the caller registers them in the identity map).
pub(crate) fn insert_work<T: Entity>(objs: &[AnyObj]) -> Result<Box<dyn Work>> {
    let table = T::TABLE;
    let server_filled: Vec<usize> = (0..table.columns.len())
        .filter(|&i| table.columns[i].server_filled())
        .collect();
    // Group by which server-filled columns the object leaves to the server (a bit each;
    // objects almost always share one group).
    let mut groups: Vec<Group<T>> = Vec::new();
    let mut unset = vec![false; server_filled.len()];
    // A counter the session keeps (a server-generated one comes back with RETURNING).
    let versioned = table.version_column().is_some() && table.server_version().is_none();
    for obj in typed::<T>(objs) {
        if versioned {
            // A new row starts at version 1 (SQLAlchemy's default generator).
            obj.cell.data.write().value.set_version(1);
        }
        let image = obj.cell.data.read_recursive().value.clone();
        for (flag, &i) in unset.iter_mut().zip(&server_filled) {
            *flag = image.column_is_unset(i);
        }
        match groups.iter_mut().find(|(u, _)| *u == unset) {
            Some((_, items)) => items.push((obj, image)),
            None => groups.push((unset.clone(), vec![(obj, image)])),
        }
    }
    let mut work = InsertWork {
        objs: Vec::new(),
        images: Vec::new(),
        shapes: Vec::new(),
        chunks: Vec::new(),
    };
    for (flags, items) in groups {
        let unset: Vec<usize> = server_filled
            .iter()
            .zip(&flags)
            .filter(|(_, unset)| **unset)
            .map(|(&i, _)| i)
            .collect();
        let shape = InsertShape::new(table, unset);
        for (_, image) in &items {
            check_columns(image, &shape.insert)?;
        }
        let start = work.objs.len();
        for (obj, image) in items {
            work.objs.push(obj);
            work.images.push(image);
        }
        work.add_chunks(&shape, start);
        work.shapes.push(shape);
    }
    Ok(Box::new(work))
}

impl<T: Entity> InsertWork<T> {
    /// The statements for the objects from `start` on, all of `shape` (the next shape).
    fn add_chunks(&mut self, shape: &InsertShape, start: usize) {
        let table = T::TABLE;
        let insert = &shape.insert;
        let binding = Binding::of(table, insert);
        let fixed_sql = (binding == Binding::Arrays).then(|| insert_sql(table, shape, binding));
        let end = self.objs.len();
        let size = binding.chunk(insert.len());
        let mut from = start;
        while from < end {
            let to = (from + size).min(end);
            let rows = to - from;
            let step = if rows == 1 {
                Step::new(
                    insert_one_sql(table, shape),
                    true,
                    &self.images,
                    from..to,
                    insert,
                    false,
                )
            } else if insert.is_empty() {
                // Every column left to the server: the statement takes the row count.
                let mut step = Step::new(
                    fixed_sql.clone().unwrap_or_default(),
                    true,
                    &self.images,
                    from..to,
                    &[],
                    true,
                );
                step.owned.push(Box::new(rows as i64));
                step
            } else if let Some(sql) = &fixed_sql {
                Step::new(sql.clone(), true, &self.images, from..to, insert, true)
            } else {
                // A VALUES list's text depends on its row count: run it unprepared.
                let sql = insert_sql(table, shape, binding.rows(rows));
                Step::new(sql, false, &self.images, from..to, insert, false)
            };
            let mut step = step;
            step.rows = shape.returning();
            self.chunks.push(Chunk {
                step,
                shape: self.shapes.len(),
            });
            from = to;
        }
    }

    /// Checks one chunk's answer and makes its objects persistent.
    fn finish_chunk(&mut self, chunk: &Chunk, answer: Answer) -> Result<()> {
        let table = T::TABLE;
        let shape = &self.shapes[chunk.shape];
        let step = &chunk.step;
        let range = step.range.clone();
        let sql = step.sql.as_str();
        let mut order: Vec<usize> = (0..range.len()).collect();
        let rows = match answer {
            Answer::Rows(rows) => {
                if rows.len() != range.len() {
                    return Err(Error::StaleData(format!(
                        "INSERT into table '{}' expected {} row(s); {} were returned",
                        table.name,
                        range.len(),
                        rows.len()
                    )));
                }
                if shape.matching == Matching::Key && range.len() > 1 {
                    order = match_by_key(&self.images[range.clone()], &rows, sql)?;
                }
                rows
            }
            Answer::Count(n) => {
                if n != range.len() as u64 {
                    return Err(Error::StaleData(format!(
                        "INSERT into table '{}' expected to insert {} row(s); {n} were inserted",
                        table.name,
                        range.len()
                    )));
                }
                Vec::new()
            }
        };
        for (i, at) in range.enumerate() {
            let obj = &self.objs[at];
            let image = &mut self.images[at];
            let mut data = obj.cell.data.write();
            if let Some(row) = rows.get(order[i]) {
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
            let changed_meanwhile = !same_row(&data.value, image);
            data.committed = changed_meanwhile.then(|| Box::new(image.clone()));
            drop(data);
            let mut meta = obj.cell.meta();
            meta.status = ObjectState::Persistent;
            meta.touched = false;
            if changed_meanwhile {
                meta.touch(|| obj.erase());
            }
        }
        Ok(())
    }
}

impl<T: Entity> Work for InsertWork<T> {
    fn planned(&self) -> Vec<Planned<'_>> {
        self.chunks
            .iter()
            .map(|c| c.step.planned(&self.images))
            .collect()
    }

    fn finish(mut self: Box<Self>, answers: Vec<Answer>) -> Result<Vec<AnyObj>> {
        let chunks = std::mem::take(&mut self.chunks);
        for (chunk, answer) in chunks.iter().zip(answers) {
            self.finish_chunk(chunk, answer)?;
        }
        Ok(Vec::new())
    }
}

/// For rows returned by an INSERT of explicit keys: `order[i]` is the row of object `i`.
fn match_by_key<T: Entity>(
    images: &[T],
    rows: &[tokio_postgres::Row],
    sql: &str,
) -> Result<Vec<usize>> {
    let table = T::TABLE;
    let by_key: HashMap<T::Key, usize> = images
        .iter()
        .enumerate()
        .map(|(i, s)| (s.key(), i))
        .collect();
    let mut order = vec![usize::MAX; images.len()];
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
