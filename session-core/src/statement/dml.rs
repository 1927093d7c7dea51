//! `INSERT`, `UPDATE` and `DELETE` statements ([`insert`], [`update`], [`delete`]) with
//! `WHERE` and `RETURNING`. Run through a session, an `UPDATE` or `DELETE` keeps the identity map
//! true (SQLAlchemy's `synchronize_session="fetch"`): objects whose rows it changed get the new
//! values, objects whose rows it deleted become deleted.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use super::columns::Columns;
use super::expr::{Col, Expr, Term};
use crate::model::{ColumnType, Entity, OwnedParam, Table};
use crate::sql::quote;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DmlKind {
    Insert,
    Update,
    Delete,
}

/// What `INSERT`, `UPDATE` and `DELETE` share.
pub(crate) struct Dml<T: Entity> {
    pub(crate) kind: DmlKind,
    /// Columns set (INSERT values, UPDATE SET), by index into `T::TABLE.columns`.
    pub(crate) values: Vec<(usize, Arc<OwnedParam>)>,
    filters: Vec<Expr>,
    /// Keep the session's objects in step with the rows changed.
    pub(crate) synchronize: bool,
    error: Option<String>,
    _entity: PhantomData<fn() -> T>,
}

impl<T: Entity> Dml<T> {
    fn new(kind: DmlKind) -> Self {
        Dml {
            kind,
            values: Vec::new(),
            filters: Vec::new(),
            synchronize: kind != DmlKind::Insert,
            error: None,
            _entity: PhantomData,
        }
    }

    fn set<V: ColumnType>(&mut self, column: Col<T, V>, value: V) {
        let index = column.index();
        if self.values.iter().any(|(i, _)| *i == index) && self.error.is_none() {
            self.error = Some(format!(
                "column {}.{} is given a value twice",
                T::TABLE.name,
                column.name()
            ));
        }
        if let (Err(reason), None) = (crate::__private::check(&value), &self.error) {
            self.error = Some(
                crate::Error::Value {
                    column: format!("{}.{}", T::TABLE.name, column.name()),
                    reason,
                }
                .to_string(),
            );
        }
        self.values.push((index, Arc::new(Box::new(value))));
    }

    fn filter(&mut self, condition: Expr) {
        let mut tables = Vec::new();
        condition.tables(&mut tables);
        if let Some(other) = tables.iter().find(|t| !t.is(T::TABLE)) {
            if self.error.is_none() {
                self.error = Some(format!(
                    "this statement on {} filters on a column of {}; filter on {}'s own columns \
                     (e.g. with `in_` over keys selected first)",
                    T::TABLE.name,
                    other.name,
                    T::TABLE.name
                ));
            }
        }
        self.filters.push(condition);
    }

    /// Run unplanned-ahead (see `Expr::binds_array`).
    pub(crate) fn one_shot(&self) -> bool {
        self.filters.iter().any(Expr::binds_array)
    }

    /// The mistake found while building, if any.
    pub(crate) fn error(&self) -> Option<String> {
        if let Some(e) = &self.error {
            return Some(e.clone());
        }
        if self.kind == DmlKind::Update && self.synchronize {
            if let Some((c, _)) = self
                .values
                .iter()
                .find(|(c, _)| T::TABLE.columns[*c].primary_key)
            {
                return Some(format!(
                    "update of {table} sets its primary-key column {table}.{column}: the session \
                     cannot follow the rows to their new keys; add .synchronize_session(false) \
                     and expunge or refresh the objects you hold",
                    table = T::TABLE.name,
                    column = T::TABLE.columns[*c].name
                ));
            }
        }
        (self.kind == DmlKind::Update && self.values.is_empty()).then(|| {
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
        let mut sql = match self.kind {
            DmlKind::Insert if self.values.is_empty() => {
                format!("INSERT INTO {name} DEFAULT VALUES")
            }
            DmlKind::Insert => {
                let cols: Vec<String> = self
                    .values
                    .iter()
                    .map(|(i, _)| quote(table.columns[*i].name))
                    .collect();
                let marks: Vec<String> = self
                    .values
                    .iter()
                    .map(|(_, v)| {
                        params.push(v.clone());
                        format!("${}", params.len())
                    })
                    .collect();
                format!(
                    "INSERT INTO {name} ({}) VALUES ({})",
                    cols.join(", "),
                    marks.join(", ")
                )
            }
            DmlKind::Update => {
                let sets: Vec<String> = self
                    .values
                    .iter()
                    .map(|(i, v)| {
                        params.push(v.clone());
                        format!("{} = ${}", quote(table.columns[*i].name), params.len())
                    })
                    .collect();
                format!("UPDATE {name} SET {}", sets.join(", "))
            }
            DmlKind::Delete => format!("DELETE FROM {name}"),
        };
        if !self.filters.is_empty() {
            let parts: Vec<String> = self.filters.iter().map(|e| e.render(&mut params)).collect();
            sql.push_str(" WHERE ");
            sql.push_str(&parts.join(" AND "));
        }
        let mut list: Vec<String> = returning.iter().map(Term::sql).collect();
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
                }
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
}

impl<T: Entity> Update<T> {
    /// `SET column = value`.
    #[must_use]
    pub fn set<V: ColumnType>(mut self, column: Col<T, V>, value: impl Into<V>) -> Self {
        self.dml.set(column, value.into());
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
}

impl<S: DmlStatement, C: Columns> Returning<S, C> {
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
