//! `INSERT`, `UPDATE` and `DELETE` statements ([`insert`], [`update`], [`delete`]) with
//! `WHERE` and `RETURNING`. Run through a session, an `UPDATE` or `DELETE` keeps the identity map
//! true (SQLAlchemy's `synchronize_session="fetch"`): objects whose rows it changed get the new
//! values, objects whose rows it deleted become deleted. An `INSERT ... ON CONFLICT DO UPDATE`
//! ([`Insert::on_conflict`]) does the same for the rows its `DO UPDATE` changed.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use super::columns::Columns;
use super::expr::{Col, Expr, Term};
use super::ops::Operand;
use super::upsert::{Conflict, ConflictAction};
use crate::model::{ColumnType, Entity, OwnedParam, Table};
use crate::sql::quote;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DmlKind {
    Insert,
    Update,
    Delete,
}

/// What a column is set to: a bound value or an expression.
#[derive(Clone)]
pub(crate) enum SetTo {
    Value(Arc<OwnedParam>),
    Expr(Term),
}

/// `SET` lists (of an `UPDATE`, an `INSERT`'s values, an `ON CONFLICT DO UPDATE`) and the
/// conditions beside them, with the first mistake found while building.
pub(crate) struct Assignments<T: Entity> {
    /// Columns set, by index into `T::TABLE.columns`.
    pub(crate) values: Vec<(usize, SetTo)>,
    pub(crate) filters: Vec<Expr>,
    pub(crate) error: Option<String>,
    _entity: PhantomData<fn() -> T>,
}

impl<T: Entity> Assignments<T> {
    pub(crate) fn new() -> Self {
        Assignments {
            values: Vec::new(),
            filters: Vec::new(),
            error: None,
            _entity: PhantomData,
        }
    }

    pub(crate) fn fail(&mut self, message: impl FnOnce() -> String) {
        if self.error.is_none() {
            self.error = Some(message());
        }
    }

    fn claim(&mut self, index: usize) {
        if self.values.iter().any(|(i, _)| *i == index) {
            self.fail(|| {
                format!(
                    "column {}.{} is given a value twice",
                    T::TABLE.name,
                    T::TABLE.columns[index].name
                )
            });
        }
    }

    pub(crate) fn set<V: ColumnType>(&mut self, column: Col<T, V>, value: V) {
        let index = column.index();
        self.claim(index);
        if let Err(reason) = crate::__private::check(&value) {
            self.fail(|| {
                crate::Error::Value {
                    column: format!("{}.{}", T::TABLE.name, column.name()),
                    reason,
                }
                .to_string()
            });
        }
        self.values
            .push((index, SetTo::Value(Arc::new(Box::new(value)))));
    }

    pub(crate) fn set_term(&mut self, index: usize, term: Term) {
        self.claim(index);
        self.check_tables(&term_tables(&term), "sets a column from");
        self.values.push((index, SetTo::Expr(term)));
    }

    fn check_tables(&mut self, tables: &[&'static Table], what: &str) {
        if let Some(other) = tables.iter().find(|t| !t.is(T::TABLE)) {
            let name = other.name;
            self.fail(|| {
                format!(
                    "this statement on {table} {what} a column of {name}; use {table}'s own \
                     columns (e.g. with `in_` over keys selected first)",
                    table = T::TABLE.name
                )
            });
        }
    }

    pub(crate) fn filter(&mut self, condition: Expr) {
        let mut tables = Vec::new();
        condition.tables(&mut tables);
        self.check_tables(&tables, "filters on");
        if let Some(e) = condition.error() {
            self.fail(|| e);
        }
        self.filters.push(condition);
    }

    /// `"col" = $n, ...`.
    pub(crate) fn render_sets(&self, params: &mut Vec<Arc<OwnedParam>>) -> String {
        let sets: Vec<String> = self
            .values
            .iter()
            .map(|(i, v)| {
                format!(
                    "{} = {}",
                    quote(T::TABLE.columns[*i].name),
                    v.render(params)
                )
            })
            .collect();
        sets.join(", ")
    }

    /// ` WHERE a AND b`, or nothing.
    pub(crate) fn render_where(&self, params: &mut Vec<Arc<OwnedParam>>) -> String {
        if self.filters.is_empty() {
            return String::new();
        }
        let parts: Vec<String> = self.filters.iter().map(|e| e.render(params)).collect();
        format!(" WHERE {}", parts.join(" AND "))
    }
}

impl SetTo {
    fn render(&self, params: &mut Vec<Arc<OwnedParam>>) -> String {
        match self {
            SetTo::Value(v) => {
                params.push(v.clone());
                format!("${}", params.len())
            }
            SetTo::Expr(term) => term.render(params),
        }
    }
}

fn term_tables(term: &Term) -> Vec<&'static Table> {
    let mut tables = Vec::new();
    term.tables(&mut tables);
    tables
}

/// What `INSERT`, `UPDATE` and `DELETE` share.
pub(crate) struct Dml<T: Entity> {
    pub(crate) kind: DmlKind,
    /// INSERT values or UPDATE SET, and the WHERE conditions.
    pub(crate) sets: Assignments<T>,
    /// `ON CONFLICT ...` of an INSERT.
    pub(crate) conflict: Option<Conflict<T>>,
    /// Keep the session's objects in step with the rows changed.
    pub(crate) synchronize: bool,
    /// The statement's execution options.
    pub(crate) options: crate::ExecutionOptions,
}

impl<T: Entity> Dml<T> {
    fn new(kind: DmlKind) -> Self {
        Dml {
            kind,
            sets: Assignments::new(),
            conflict: None,
            synchronize: kind != DmlKind::Insert,
            options: crate::ExecutionOptions::new(),
        }
    }

    fn set<V: ColumnType>(&mut self, column: Col<T, V>, value: V) {
        self.sets.set(column, value);
    }

    fn filter(&mut self, condition: Expr) {
        self.sets.filter(condition);
    }

    /// The columns whose new values the session copies into the objects it holds: an
    /// UPDATE's SET, an upsert's DO UPDATE SET.
    pub(crate) fn synchronized_columns(&self) -> Vec<usize> {
        let sets = match (&self.kind, &self.conflict) {
            (DmlKind::Update, _) => &self.sets.values,
            (
                DmlKind::Insert,
                Some(Conflict {
                    action: ConflictAction::Update(update),
                    ..
                }),
            ) => &update.values,
            _ => return Vec::new(),
        };
        sets.iter().map(|(c, _)| *c).collect()
    }

    /// Run unplanned-ahead (see `Expr::binds_array`).
    pub(crate) fn one_shot(&self) -> bool {
        self.sets.filters.iter().any(Expr::binds_array)
    }

    /// The mistake found while building, if any.
    pub(crate) fn error(&self) -> Option<String> {
        if let Some(e) = &self.sets.error {
            return Some(e.clone());
        }
        if let Some(e) = self.conflict.as_ref().and_then(Conflict::error) {
            return Some(e);
        }
        if self.synchronize {
            if let Some(c) = self
                .synchronized_columns()
                .into_iter()
                .find(|c| T::TABLE.columns[*c].primary_key)
            {
                return Some(format!(
                    "update of {table} sets its primary-key column {table}.{column}: the session \
                     cannot follow the rows to their new keys; add .synchronize_session(false) \
                     and expunge or refresh the objects you hold",
                    table = T::TABLE.name,
                    column = T::TABLE.columns[c].name
                ));
            }
        }
        (self.kind == DmlKind::Update && self.sets.values.is_empty()).then(|| {
            format!(
                "update of {} has no values; add them with .set(column, value)",
                T::TABLE.name
            )
        })
    }

    /// The SQL, returning `returning` then (when `sync`) every column of `T`.
    pub(crate) fn render(&self, returning: &[Term], sync: bool) -> (String, Vec<Arc<OwnedParam>>) {
        let table: &Table = T::TABLE;
        let name = quote(table.name);
        let mut params: Vec<Arc<OwnedParam>> = Vec::new();
        let values = &self.sets.values;
        let mut sql = match self.kind {
            DmlKind::Insert if values.is_empty() => {
                format!("INSERT INTO {name} DEFAULT VALUES")
            }
            DmlKind::Insert => {
                let cols: Vec<String> = values
                    .iter()
                    .map(|(i, _)| quote(table.columns[*i].name))
                    .collect();
                let marks: Vec<String> =
                    values.iter().map(|(_, v)| v.render(&mut params)).collect();
                format!(
                    "INSERT INTO {name} ({}) VALUES ({})",
                    cols.join(", "),
                    marks.join(", ")
                )
            }
            DmlKind::Update => {
                format!("UPDATE {name} SET {}", self.sets.render_sets(&mut params))
            }
            DmlKind::Delete => format!("DELETE FROM {name}"),
        };
        sql.push_str(&self.sets.render_where(&mut params));
        if let Some(conflict) = &self.conflict {
            sql.push_str(&conflict.render(&mut params));
        }
        let mut list: Vec<String> = returning.iter().map(|t| t.render(&mut params)).collect();
        if sync {
            list.extend(
                table
                    .columns
                    .iter()
                    .map(|c| format!("{name}.{}", quote(c.name))),
            );
        }
        if !list.is_empty() {
            sql.push_str(" RETURNING ");
            sql.push_str(&list.join(", "));
        }
        (sql, params)
    }
}

macro_rules! dml_type {
    ($(#[$doc:meta])* $name:ident, $kind:ident, $ctor:ident, $ctor_doc:literal) => {
        $(#[$doc])*
        pub struct $name<T: Entity> {
            pub(crate) dml: Dml<T>,
        }

        #[doc = $ctor_doc]
        pub fn $ctor<T: Entity>() -> $name<T> {
            $name {
                dml: Dml::new(DmlKind::$kind),
            }
        }

        impl<T: Entity> $name<T> {
            /// Adds `RETURNING` columns: executing gives their rows
            /// ([`ColumnsResult`](crate::ColumnsResult)).
            pub fn returning<C: Columns>(self, columns: C) -> Returning<Self, C> {
                Returning {
                    statement: self,
                    columns,
                    options: crate::ExecutionOptions::new(),
                }
            }

            /// Execution options for this statement (SQLAlchemy's `execution_options(...)`).
            #[must_use]
            pub fn execution_options(mut self, options: crate::ExecutionOptions) -> Self {
                self.dml.options.absorb(options);
                self
            }

            /// The SQL and its parameters.
            pub fn to_sql(&self) -> (String, Vec<Arc<OwnedParam>>) {
                self.dml.render(&[], false)
            }
        }

        impl<T: Entity> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_sql().0)
            }
        }

        impl<T: Entity> DmlStatement for $name<T> {
            type Entity = T;

            #[allow(private_interfaces)]
            fn dml(&self) -> &Dml<T> {
                &self.dml
            }
        }
    };
}

dml_type!(
    /// `INSERT INTO t (...) VALUES (...)` (SQLAlchemy's `insert(A).values(...)`).
    Insert,
    Insert,
    insert,
    "`insert(A)`: add values with [`Insert::value`]; none gives `DEFAULT VALUES`."
);
dml_type!(
    /// `UPDATE t SET ... WHERE ...` (SQLAlchemy's `update(A).where(...).values(...)`).
    Update,
    Update,
    update,
    "`update(A)`: add values with [`Update::set`] and conditions with [`Update::filter`]."
);
dml_type!(
    /// `DELETE FROM t WHERE ...` (SQLAlchemy's `delete(A).where(...)`).
    Delete,
    Delete,
    delete,
    "`delete(A)`: add conditions with [`Delete::filter`]; none deletes every row."
);

impl<T: Entity> Insert<T> {
    /// Sets a column's value.
    #[must_use]
    pub fn value<V: ColumnType>(mut self, column: Col<T, V>, value: impl Into<V>) -> Self {
        self.dml.set(column, value.into());
        self
    }

    /// Sets a column to an expression, e.g. `.value_expr(Post::C.created, func::now())`;
    /// `VALUES` reads no table, so an expression of columns is refused when it runs.
    #[must_use]
    pub fn value_expr<V: ColumnType>(mut self, column: Col<T, V>, value: impl Operand<V>) -> Self {
        let term = value.operand();
        if let Some(table) = term_tables(&term).first() {
            let name = table.name;
            self.dml.sets.fail(|| {
                format!(
                    "insert into {} sets {} from a column of {name}: VALUES reads no table; \
                     select the value first, or use an expression of values and functions",
                    T::TABLE.name,
                    T::TABLE.columns[column.index()].name
                )
            });
        }
        self.dml.sets.set_term(column.index(), term);
        self
    }
}

impl<T: Entity> Update<T> {
    /// `SET column = value`.
    #[must_use]
    pub fn set<V: ColumnType>(mut self, column: Col<T, V>, value: impl Into<V>) -> Self {
        self.dml.set(column, value.into());
        self
    }

    /// `SET column = expression`: a typed expression of the column's type, e.g.
    /// `.set_expr(Item::C.stock, Item::C.stock - 1)` or `.set_expr(Item::C.seen,
    /// func::now())` (SQLAlchemy's `values(stock=Item.stock - 1)`). Through a session the
    /// objects held for the changed rows get the values the database computed.
    ///
    /// ```
    /// use session_core::update;
    /// # #[derive(Debug, Clone, Default, session_core::Entity)]
    /// # struct Item { #[entity(primary_key)] id: i32, stock: i32 }
    /// let restock = update::<Item>().set_expr(Item::C.stock, Item::C.stock * 2 + 10);
    /// assert_eq!(
    ///     format!("{restock:?}"),
    ///     r#"UPDATE "item" SET "stock" = (("item"."stock" * $1::integer) + $2::integer)"#
    /// );
    /// ```
    #[must_use]
    pub fn set_expr<V: ColumnType>(mut self, column: Col<T, V>, value: impl Operand<V>) -> Self {
        self.dml.sets.set_term(column.index(), value.operand());
        self
    }
}

/// `filter` / `where_` / `synchronize_session`, shared by `UPDATE` and `DELETE`; `$sync` says
/// what synchronizing does to the session's objects.
macro_rules! filtered {
    ($name:ident, $sync:literal) => {
        impl<T: Entity> $name<T> {
            /// Adds a `WHERE` condition on `T`'s columns (ANDed with the others).
            #[must_use]
            pub fn filter(mut self, condition: Expr) -> Self {
                self.dml.filter(condition);
                self
            }

            /// Same as `filter`.
            #[must_use]
            pub fn where_(self, condition: Expr) -> Self {
                self.filter(condition)
            }

            #[doc = $sync]
            #[must_use]
            pub fn synchronize_session(mut self, synchronize: bool) -> Self {
                self.dml.synchronize = synchronize;
                self
            }
        }
    };
}

filtered!(
    Update,
    "Whether the session updates the objects it holds for the changed rows (default `true`, \
     SQLAlchemy's `synchronize_session=\"fetch\"`; `false` is its `False`: those objects keep \
     their old values until expired or refreshed)."
);
filtered!(
    Delete,
    "Whether the session marks the objects it holds for the deleted rows as deleted (default \
     `true`; `false` leaves them persistent in the session until expired or refreshed)."
);

/// An `INSERT`, `UPDATE` or `DELETE` (plumbing for [`Returning`] and the session).
pub trait DmlStatement: Send + Sync + 'static {
    /// The entity whose table the statement changes.
    type Entity: Entity;

    /// The statement (plumbing).
    #[doc(hidden)]
    #[allow(private_interfaces)]
    fn dml(&self) -> &Dml<Self::Entity>;
}

/// A statement with `RETURNING` columns (from `.returning(...)`).
pub struct Returning<S, C> {
    pub(crate) statement: S,
    pub(crate) columns: C,
    pub(crate) options: crate::ExecutionOptions,
}

impl<S: DmlStatement, C: Columns> Returning<S, C> {
    /// Execution options for this statement (SQLAlchemy's `execution_options(...)`).
    #[must_use]
    pub fn execution_options(mut self, options: crate::ExecutionOptions) -> Self {
        self.options.absorb(options);
        self
    }

    /// The SQL and its parameters.
    pub fn to_sql(&self) -> (String, Vec<Arc<OwnedParam>>) {
        self.statement.dml().render(&self.columns.terms(), false)
    }
}

impl<S: DmlStatement, C: Columns> fmt::Debug for Returning<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_sql().0)
    }
}
