//! `INSERT ... ON CONFLICT (cols) DO NOTHING` / `DO UPDATE SET ...` (SQLAlchemy's
//! `postgresql.insert(A).on_conflict_do_nothing(...)` / `on_conflict_do_update(...)`), with
//! `EXCLUDED.col` (SQLAlchemy's `stmt.excluded.col`) as [`Col::excluded`].

use std::sync::Arc;

use super::dml::{Assignments, Insert};
use super::expr::{Col, ColumnExpr, Expr, Kind, Term};
use super::ops::Operand;
use crate::model::{ColumnType, Entity, OwnedParam};
use crate::sql::quote;

/// The conflict target of [`Insert::on_conflict`]: one column of `T`, a tuple of up to four
/// (a composite unique constraint or primary key), or `()` for any conflict (only with
/// [`OnConflict::do_nothing`]).
pub trait ConflictTarget<T: Entity> {
    /// The column indexes (plumbing).
    #[doc(hidden)]
    fn columns(&self) -> Vec<usize>;
}

impl<T: Entity> ConflictTarget<T> for () {
    fn columns(&self) -> Vec<usize> {
        Vec::new()
    }
}

impl<T: Entity, V: ColumnType> ConflictTarget<T> for Col<T, V> {
    fn columns(&self) -> Vec<usize> {
        vec![self.index()]
    }
}

macro_rules! conflict_tuple {
    ($($v:ident $i:tt)*) => {
        impl<T: Entity, $($v: ColumnType),*> ConflictTarget<T> for ($(Col<T, $v>,)*) {
            fn columns(&self) -> Vec<usize> {
                vec![$(self.$i.index()),*]
            }
        }
    };
}

conflict_tuple!(A 0);
conflict_tuple!(A 0 B 1);
conflict_tuple!(A 0 B 1 C 2);
conflict_tuple!(A 0 B 1 C 2 D 3);

/// `ON CONFLICT ...` of an insert.
pub(crate) struct Conflict<T: Entity> {
    target: Vec<usize>,
    pub(crate) action: ConflictAction<T>,
}

pub(crate) enum ConflictAction<T: Entity> {
    Nothing,
    Update(Assignments<T>),
}

impl<T: Entity> Conflict<T> {
    pub(crate) fn error(&self) -> Option<String> {
        let ConflictAction::Update(update) = &self.action else {
            return None;
        };
        if let Some(e) = &update.error {
            return Some(e.clone());
        }
        if self.target.is_empty() {
            return Some(format!(
                "insert into {} ... on_conflict(()).do_update(...) names no conflict columns: \
                 PostgreSQL's DO UPDATE needs them (e.g. .on_conflict({}::C.<unique column>))",
                T::TABLE.name,
                T::TABLE.entity
            ));
        }
        update.values.is_empty().then(|| {
            format!(
                "insert into {} ... do_update(...) sets no column; add .set(...), \
                 .set_expr(...) or .set_excluded(...), or use .do_nothing()",
                T::TABLE.name
            )
        })
    }

    /// ` ON CONFLICT (...) DO ...`.
    pub(crate) fn render(&self, params: &mut Vec<Arc<OwnedParam>>) -> String {
        let mut sql = String::from(" ON CONFLICT");
        if !self.target.is_empty() {
            let cols: Vec<String> = self
                .target
                .iter()
                .map(|i| quote(T::TABLE.columns[*i].name))
                .collect();
            sql.push_str(&format!(" ({})", cols.join(", ")));
        }
        match &self.action {
            ConflictAction::Nothing => sql.push_str(" DO NOTHING"),
            ConflictAction::Update(update) => {
                sql.push_str(" DO UPDATE SET ");
                sql.push_str(&update.render_sets(params));
                sql.push_str(&update.render_where(params));
            }
        }
        sql
    }
}

impl<T: Entity, V: ColumnType> Col<T, V> {
    /// `EXCLUDED.col`: the value the insert proposed for this column, inside
    /// [`ConflictUpdate`] (SQLAlchemy's `stmt.excluded.col`).
    pub fn excluded(self) -> ColumnExpr<V> {
        ColumnExpr::new(Term(Kind::Excluded {
            table: T::TABLE,
            index: self.index(),
        }))
    }
}

impl<T: Entity> Insert<T> {
    /// `ON CONFLICT (columns)`: what to do when the row would violate the unique constraint
    /// (or primary key) on `columns`; finish with [`OnConflict::do_nothing`] or
    /// [`OnConflict::do_update`].
    ///
    /// Through a session, `DO UPDATE` keeps the identity map true as an `UPDATE` does: the
    /// objects held for the rows it updated get the values the database stored in the
    /// columns it sets. Add `.returning(...)` to read the rows inserted or updated
    /// (`DO NOTHING` returns only the rows inserted).
    ///
    /// ```
    /// use session_core::insert;
    /// # #[derive(Debug, Clone, Default, session_core::Entity)]
    /// # struct Stock { #[entity(primary_key, generated)] id: i32, #[entity(unique)] sku: String, count: i32 }
    /// let restock = insert::<Stock>()
    ///     .value(Stock::C.sku, "A-1")
    ///     .value(Stock::C.count, 5)
    ///     .on_conflict(Stock::C.sku)
    ///     .do_update(|u| u.set_expr(Stock::C.count, Stock::C.count + Stock::C.count.excluded()))
    ///     .returning(Stock::C.count);
    /// assert_eq!(
    ///     format!("{restock:?}"),
    ///     r#"INSERT INTO "stock" ("sku", "count") VALUES ($1, $2) ON CONFLICT ("sku") DO UPDATE SET "count" = ("stock"."count" + EXCLUDED."count") RETURNING "stock"."count""#
    /// );
    /// ```
    pub fn on_conflict(self, columns: impl ConflictTarget<T>) -> OnConflict<T> {
        OnConflict {
            insert: self,
            target: columns.columns(),
        }
    }
}

/// An insert with its conflict target, waiting for [`OnConflict::do_nothing`] or
/// [`OnConflict::do_update`].
#[must_use = "finish with .do_nothing() or .do_update(...)"]
pub struct OnConflict<T: Entity> {
    insert: Insert<T>,
    target: Vec<usize>,
}

impl<T: Entity> OnConflict<T> {
    /// `ON CONFLICT (...) DO NOTHING`: a conflicting row is left as it is and not returned.
    pub fn do_nothing(mut self) -> Insert<T> {
        self.insert.dml.conflict = Some(Conflict {
            target: self.target,
            action: ConflictAction::Nothing,
        });
        self.insert
    }

    /// `ON CONFLICT (...) DO UPDATE SET ...`, the assignments made by `build` on a
    /// [`ConflictUpdate`]: `.do_update(|u| u.set_excluded(T::C.price).set(T::C.note, "x"))`.
    pub fn do_update(
        mut self,
        build: impl FnOnce(ConflictUpdate<T>) -> ConflictUpdate<T>,
    ) -> Insert<T> {
        let update = build(ConflictUpdate {
            sets: Assignments::new(),
        });
        self.insert.dml.conflict = Some(Conflict {
            target: self.target,
            action: ConflictAction::Update(update.sets),
        });
        self.insert.dml.synchronize = true;
        self.insert
    }
}

/// The `DO UPDATE SET ... WHERE ...` of an upsert (built in [`OnConflict::do_update`]).
pub struct ConflictUpdate<T: Entity> {
    sets: Assignments<T>,
}

impl<T: Entity> ConflictUpdate<T> {
    /// `SET column = value`.
    #[must_use]
    pub fn set<V: ColumnType>(mut self, column: Col<T, V>, value: impl Into<V>) -> Self {
        self.sets.set(column, value.into());
        self
    }

    /// `SET column = expression` (of the existing row's columns, `col.excluded()`, functions).
    #[must_use]
    pub fn set_expr<V: ColumnType>(mut self, column: Col<T, V>, value: impl Operand<V>) -> Self {
        self.sets.set_term(column.index(), value.operand());
        self
    }

    /// `SET column = EXCLUDED.column`: take the value the insert proposed.
    #[must_use]
    pub fn set_excluded<V: ColumnType>(self, column: Col<T, V>) -> Self {
        self.set_expr(column, column.excluded())
    }

    /// `WHERE condition` of the `DO UPDATE`: rows where it is false are left alone (and not
    /// returned).
    #[must_use]
    pub fn filter(mut self, condition: Expr) -> Self {
        self.sets.filter(condition);
        self
    }
}
