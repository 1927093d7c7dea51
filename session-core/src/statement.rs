//! Statements: typed columns and expressions, [`select`] of an entity, and [`text`].
//!
//! Every value travels as a bind parameter and every identifier is quoted. A comparison takes
//! a value of the column's own Rust type, so comparing a text column with a number does not
//! compile.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use postgres_types::ToSql;

use crate::entity::{ColumnType, Entity, OwnedParam};
use crate::flush::quote;
use crate::loader::Loader;

/// Column `index` of entity `T`, holding `V` (what `#[derive(Entity)]` generates as `A::id`).
pub struct Col<T, V> {
    index: usize,
    _types: PhantomData<fn() -> (T, V)>,
}

impl<T, V> Clone for Col<T, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T, V> Copy for Col<T, V> {}

impl<T, V> fmt::Debug for Col<T, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Col({})", self.index)
    }
}

/// A condition (SQLAlchemy's column expression): combine with [`Expr::and`], [`Expr::or`],
/// [`Expr::not`].
#[derive(Clone)]
pub struct Expr {
    node: Node,
}

#[derive(Clone)]
enum Node {
    Compare {
        table: &'static str,
        column: &'static str,
        op: &'static str,
        value: Arc<OwnedParam>,
    },
    Unary {
        table: &'static str,
        column: &'static str,
        op: &'static str,
    },
    Between {
        table: &'static str,
        column: &'static str,
        low: Arc<OwnedParam>,
        high: Arc<OwnedParam>,
    },
    InList {
        table: &'static str,
        column: &'static str,
        cast: &'static str,
        values: Arc<OwnedParam>,
        negated: bool,
    },
    All(Vec<Expr>),
    Any(Vec<Expr>),
    Not(Box<Expr>),
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut params = Vec::new();
        let sql = self.render(&mut params);
        write!(f, "{sql} {params:?}")
    }
}

impl<T: Entity, V: ColumnType> Col<T, V> {
    /// Column `index` of `T::TABLE` (for generated code).
    pub const fn new(index: usize) -> Self {
        Col {
            index,
            _types: PhantomData,
        }
    }

    /// The column's index in `T::TABLE.columns`.
    pub fn index(&self) -> usize {
        self.index
    }

    fn names(&self) -> (&'static str, &'static str) {
        (T::TABLE.name, T::TABLE.columns[self.index].name)
    }

    fn compare(self, op: &'static str, value: V) -> Expr {
        let (table, column) = self.names();
        Expr {
            node: Node::Compare {
                table,
                column,
                op,
                value: Arc::new(Box::new(value)),
            },
        }
    }

    /// `col = value`.
    pub fn eq(self, value: impl Into<V>) -> Expr {
        self.compare("=", value.into())
    }

    /// `col <> value`.
    pub fn ne(self, value: impl Into<V>) -> Expr {
        self.compare("<>", value.into())
    }

    /// `col < value`.
    pub fn lt(self, value: impl Into<V>) -> Expr {
        self.compare("<", value.into())
    }

    /// `col <= value`.
    pub fn le(self, value: impl Into<V>) -> Expr {
        self.compare("<=", value.into())
    }

    /// `col > value`.
    pub fn gt(self, value: impl Into<V>) -> Expr {
        self.compare(">", value.into())
    }

    /// `col >= value`.
    pub fn ge(self, value: impl Into<V>) -> Expr {
        self.compare(">=", value.into())
    }

    /// `col BETWEEN low AND high`.
    pub fn between(self, low: impl Into<V>, high: impl Into<V>) -> Expr {
        let (table, column) = self.names();
        Expr {
            node: Node::Between {
                table,
                column,
                low: Arc::new(Box::new(low.into())),
                high: Arc::new(Box::new(high.into())),
            },
        }
    }

    /// `col = ANY($1)`: SQLAlchemy's `in_`, as one array parameter however many values.
    pub fn in_(self, values: impl IntoIterator<Item = V>) -> Expr {
        self.in_list(values, false)
    }

    /// `NOT (col = ANY($1))`.
    pub fn not_in(self, values: impl IntoIterator<Item = V>) -> Expr {
        self.in_list(values, true)
    }

    fn in_list(self, values: impl IntoIterator<Item = V>, negated: bool) -> Expr {
        let (table, column) = self.names();
        let values: Vec<V> = values.into_iter().collect();
        Expr {
            node: Node::InList {
                table,
                column,
                cast: T::TABLE.columns[self.index].sql_type,
                values: Arc::new(Box::new(values)),
                negated,
            },
        }
    }

    /// `col IS NULL`.
    pub fn is_null(self) -> Expr {
        let (table, column) = self.names();
        Expr {
            node: Node::Unary {
                table,
                column,
                op: "IS NULL",
            },
        }
    }

    /// `col IS NOT NULL`.
    pub fn is_not_null(self) -> Expr {
        let (table, column) = self.names();
        Expr {
            node: Node::Unary {
                table,
                column,
                op: "IS NOT NULL",
            },
        }
    }

    /// `ORDER BY col ASC`.
    pub fn asc(self) -> Order {
        let (table, column) = self.names();
        Order {
            table,
            column,
            desc: false,
        }
    }

    /// `ORDER BY col DESC`.
    pub fn desc(self) -> Order {
        let (table, column) = self.names();
        Order {
            table,
            column,
            desc: true,
        }
    }
}

impl<T: Entity> Col<T, String> {
    /// `col LIKE pattern`.
    pub fn like(self, pattern: impl Into<String>) -> Expr {
        self.compare("LIKE", pattern.into())
    }

    /// `col ILIKE pattern` (case-insensitive).
    pub fn ilike(self, pattern: impl Into<String>) -> Expr {
        self.compare("ILIKE", pattern.into())
    }
}

impl<T: Entity> Col<T, Option<String>> {
    /// `col LIKE pattern`.
    pub fn like(self, pattern: impl Into<String>) -> Expr {
        self.compare("LIKE", Some(pattern.into()))
    }
}

impl Expr {
    /// `self AND other`.
    pub fn and(self, other: Expr) -> Expr {
        match self.node {
            Node::All(mut list) => {
                list.push(other);
                Expr {
                    node: Node::All(list),
                }
            }
            node => Expr {
                node: Node::All(vec![Expr { node }, other]),
            },
        }
    }

    /// `self OR other`.
    pub fn or(self, other: Expr) -> Expr {
        match self.node {
            Node::Any(mut list) => {
                list.push(other);
                Expr {
                    node: Node::Any(list),
                }
            }
            node => Expr {
                node: Node::Any(vec![Expr { node }, other]),
            },
        }
    }

    /// `NOT self`.
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Expr {
        Expr {
            node: Node::Not(Box::new(self)),
        }
    }

    /// Renders the condition, numbering parameters after those already in `params`.
    pub(crate) fn render(&self, params: &mut Vec<Arc<OwnedParam>>) -> String {
        let col = |t: &str, c: &str| format!("{}.{}", quote(t), quote(c));
        match &self.node {
            Node::Compare {
                table,
                column,
                op,
                value,
            } => {
                params.push(value.clone());
                format!("{} {op} ${}", col(table, column), params.len())
            }
            Node::Unary { table, column, op } => format!("{} {op}", col(table, column)),
            Node::Between {
                table,
                column,
                low,
                high,
            } => {
                params.push(low.clone());
                params.push(high.clone());
                format!(
                    "{} BETWEEN ${} AND ${}",
                    col(table, column),
                    params.len() - 1,
                    params.len()
                )
            }
            Node::InList {
                table,
                column,
                cast,
                values,
                negated,
            } => {
                params.push(values.clone());
                let sql = format!("{} = ANY(${}::{cast}[])", col(table, column), params.len());
                if *negated {
                    format!("NOT ({sql})")
                } else {
                    sql
                }
            }
            Node::All(list) => join(list, " AND ", params),
            Node::Any(list) => join(list, " OR ", params),
            Node::Not(inner) => format!("NOT ({})", inner.render(params)),
        }
    }
}

fn join(list: &[Expr], sep: &str, params: &mut Vec<Arc<OwnedParam>>) -> String {
    let parts: Vec<String> = list
        .iter()
        .map(|e| format!("({})", e.render(params)))
        .collect();
    parts.join(sep)
}

/// An `ORDER BY` item.
#[derive(Debug, Clone, Copy)]
pub struct Order {
    table: &'static str,
    column: &'static str,
    desc: bool,
}

/// `SELECT` of entity `T` (SQLAlchemy's `select(A)`), built with chained calls.
pub struct Select<T: Entity> {
    filters: Vec<Expr>,
    order: Vec<Order>,
    limit: Option<i64>,
    offset: Option<i64>,
    for_update: bool,
    pub(crate) populate_existing: bool,
    pub(crate) stream_results: bool,
    pub(crate) loaders: Vec<Loader<T>>,
}

/// `select(A)`.
pub fn select<T: Entity>() -> Select<T> {
    Select {
        filters: Vec::new(),
        order: Vec::new(),
        limit: None,
        offset: None,
        for_update: false,
        populate_existing: false,
        stream_results: false,
        loaders: Vec::new(),
    }
}

impl<T: Entity> Select<T> {
    /// Adds a `WHERE` condition (ANDed with the others; SQLAlchemy's `where` / `filter`).
    #[must_use]
    pub fn filter(mut self, condition: Expr) -> Self {
        self.filters.push(condition);
        self
    }

    /// Same as [`Select::filter`].
    #[must_use]
    pub fn where_(self, condition: Expr) -> Self {
        self.filter(condition)
    }

    /// Adds an `ORDER BY` item.
    #[must_use]
    pub fn order_by(mut self, order: Order) -> Self {
        self.order.push(order);
        self
    }

    /// `LIMIT n`.
    #[must_use]
    pub fn limit(mut self, n: i64) -> Self {
        self.limit = Some(n);
        self
    }

    /// `OFFSET n`.
    #[must_use]
    pub fn offset(mut self, n: i64) -> Self {
        self.offset = Some(n);
        self
    }

    /// `FOR UPDATE`.
    #[must_use]
    pub fn with_for_update(mut self) -> Self {
        self.for_update = true;
        self
    }

    /// Overwrite objects already in the identity map with the rows' values (SQLAlchemy's
    /// `execution_options(populate_existing=True)`).
    #[must_use]
    pub fn populate_existing(mut self) -> Self {
        self.populate_existing = true;
        self
    }

    /// Ask for a server-side cursor (SQLAlchemy's `execution_options(stream_results=True)`):
    /// only [`AsyncSession::stream`](crate::AsyncSession::stream) runs such a statement.
    #[must_use]
    pub fn stream_results(mut self) -> Self {
        self.stream_results = true;
        self
    }

    /// Adds a loader option, e.g. `selectinload(A::bs())`.
    #[must_use]
    pub fn options(mut self, loader: Loader<T>) -> Self {
        self.loaders.push(loader);
        self
    }

    /// The SQL and its parameters.
    pub fn to_sql(&self) -> (String, Vec<Arc<OwnedParam>>) {
        let table = T::TABLE;
        let cols: Vec<String> = table
            .columns
            .iter()
            .map(|c| format!("{}.{}", quote(table.name), quote(c.name)))
            .collect();
        let mut sql = format!("SELECT {} FROM {}", cols.join(", "), quote(table.name));
        let mut params = Vec::new();
        if !self.filters.is_empty() {
            let parts: Vec<String> = self.filters.iter().map(|e| e.render(&mut params)).collect();
            sql.push_str(" WHERE ");
            sql.push_str(&parts.join(" AND "));
        }
        if !self.order.is_empty() {
            let parts: Vec<String> = self
                .order
                .iter()
                .map(|o| {
                    format!(
                        "{}.{}{}",
                        quote(o.table),
                        quote(o.column),
                        if o.desc { " DESC" } else { "" }
                    )
                })
                .collect();
            sql.push_str(" ORDER BY ");
            sql.push_str(&parts.join(", "));
        }
        if let Some(n) = self.limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        if let Some(n) = self.offset {
            sql.push_str(&format!(" OFFSET {n}"));
        }
        if self.for_update {
            sql.push_str(" FOR UPDATE");
        }
        (sql, params)
    }
}

impl<T: Entity> fmt::Debug for Select<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_sql().0)
    }
}

/// Raw SQL with bind parameters (SQLAlchemy's `text()`): `text("SELECT ... WHERE x = $1")
/// .bind(5)`.
pub struct Text {
    pub(crate) sql: String,
    pub(crate) params: Vec<OwnedParam>,
}

/// Raw SQL; add its `$n` parameters with [`Text::bind`].
pub fn text(sql: impl Into<String>) -> Text {
    Text {
        sql: sql.into(),
        params: Vec::new(),
    }
}

impl Text {
    /// Binds the next parameter (`$1`, `$2`, ... in order).
    #[must_use]
    pub fn bind(mut self, value: impl ToSql + Sync + Send + 'static) -> Self {
        self.params.push(Box::new(value));
        self
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.sql, self.params)
    }
}
