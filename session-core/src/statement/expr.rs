//! Typed column expressions: [`Col`] (a mapped column), [`ColumnExpr`] (an aggregate or other
//! SQL expression with a known result type), the conditions they make ([`Expr`]) and
//! [`Order`] items.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use postgres_types::FromSqlOwned;

use crate::model::{ColumnType, Entity, OwnedParam, Table};
use crate::sql::quote;

/// A rendered column expression (the plumbing behind [`IntoColumn`]; not built by users).
#[derive(Clone, Debug)]
pub struct Term(pub(crate) Kind);

#[derive(Clone, Debug)]
pub(crate) enum Kind {
    Column {
        table: &'static Table,
        index: usize,
    },
    Star,
    Func {
        name: &'static str,
        distinct: bool,
        arg: Box<Term>,
        cast: Option<&'static str>,
    },
    /// A bound value, cast to its SQL type (`$n::integer`).
    Param {
        value: Arc<OwnedParam>,
        cast: &'static str,
    },
    /// `(left op right)`.
    Binary {
        left: Box<Term>,
        op: &'static str,
        right: Box<Term>,
    },
    /// `name(args, ...)`, cast when `cast` is given.
    Call {
        name: &'static str,
        args: Vec<Term>,
        cast: Option<&'static str>,
    },
    /// `EXCLUDED."col"`: the row an `INSERT ... ON CONFLICT DO UPDATE` proposed.
    Excluded {
        table: &'static Table,
        index: usize,
    },
    /// `"alias"."col"`: a column of an aliased copy of a table ([`aliased`](crate::aliased)),
    /// brought into the query by its join.
    Aliased {
        alias: &'static str,
        table: &'static Table,
        index: usize,
    },
}

impl Term {
    /// A bound value of column type `V`.
    pub(crate) fn param<V: ColumnType>(value: V) -> Term {
        Term(Kind::Param {
            value: Arc::new(Box::new(value)),
            cast: V::SQL_TYPE,
        })
    }

    /// `(left op right)`.
    pub(crate) fn binary(left: Term, op: &'static str, right: Term) -> Term {
        Term(Kind::Binary {
            left: Box::new(left),
            op,
            right: Box::new(right),
        })
    }

    /// The expression as SQL, columns qualified by their table, numbering its parameters after
    /// those already in `params`.
    pub(crate) fn render(&self, params: &mut Vec<Arc<OwnedParam>>) -> String {
        match &self.0 {
            Kind::Column { table, index } => {
                format!(
                    "{}.{}",
                    quote(table.name),
                    quote(table.columns[*index].name)
                )
            }
            Kind::Star => "*".to_string(),
            Kind::Func {
                name,
                distinct,
                arg,
                cast,
            } => {
                let distinct = if *distinct { "DISTINCT " } else { "" };
                let call = format!("{name}({distinct}{})", arg.render(params));
                match cast {
                    Some(ty) => format!("CAST({call} AS {ty})"),
                    None => call,
                }
            }
            Kind::Param { value, cast } => {
                params.push(value.clone());
                format!("${}::{cast}", params.len())
            }
            Kind::Binary { left, op, right } => {
                let left = left.render(params);
                format!("({left} {op} {})", right.render(params))
            }
            Kind::Call { name, args, cast } => {
                let args: Vec<String> = args.iter().map(|a| a.render(params)).collect();
                let call = format!("{name}({})", args.join(", "));
                match cast {
                    Some(ty) => format!("CAST({call} AS {ty})"),
                    None => call,
                }
            }
            Kind::Aliased {
                alias,
                table,
                index,
            } => format!("{}.{}", quote(alias), quote(table.columns[*index].name)),
            Kind::Excluded { table, index } => {
                format!("EXCLUDED.{}", quote(table.columns[*index].name))
            }
        }
    }

    /// The SQL alone, for `Debug` (parameters numbered from `$1`).
    pub(crate) fn sql(&self) -> String {
        self.render(&mut Vec::new())
    }

    /// Every table the expression reads, in order.
    pub(crate) fn tables(&self, out: &mut Vec<&'static Table>) {
        match &self.0 {
            Kind::Column { table, .. } => {
                if !out.iter().any(|t| t.is(table)) {
                    out.push(table);
                }
            }
            // An aliased table enters the query by its join only.
            Kind::Star | Kind::Param { .. } | Kind::Excluded { .. } | Kind::Aliased { .. } => {}
            Kind::Func { arg, .. } => arg.tables(out),
            Kind::Binary { left, right, .. } => {
                left.tables(out);
                right.tables(out);
            }
            Kind::Call { args, .. } => args.iter().for_each(|a| a.tables(out)),
        }
    }
}

/// Something that can be selected as one column and decoded as [`IntoColumn::Value`]: a
/// [`Col`] or a [`ColumnExpr`].
pub trait IntoColumn: Send + Sync + 'static {
    /// The Rust type of the selected value.
    type Value: FromSqlOwned + Send + 'static;

    /// The expression (plumbing).
    #[doc(hidden)]
    fn term(&self) -> Term;

    /// The entity the expression belongs to, if it is one entity's column (for the bind).
    #[doc(hidden)]
    fn entity(&self) -> Option<(&'static Table, std::any::TypeId)> {
        None
    }
}

/// Column `index` of entity `T`, holding `V` (what `#[derive(Entity)]` generates as `A::C.id`).
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

/// An attribute of entity `T`, named by its typed column (`A::C.data`), as
/// [`AsyncSession::refresh`](crate::AsyncSession::refresh) and
/// [`AsyncSession::expire`](crate::AsyncSession::expire) take them:
/// `session.refresh(&obj, &[&A::C.data, &A::C.id])`. A misspelled attribute, or one of
/// another entity, does not compile.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an attribute of `{T}`",
    label = "not a column of `{T}`",
    note = "name the attributes by the entity's columns: `&[&{T}::C.<field>]`"
)]
pub trait Attribute<T: Entity>: Sync {
    /// The column's index in `T::TABLE.columns` (plumbing).
    #[doc(hidden)]
    fn column_index(&self) -> usize;
}

impl<T: Entity, V: ColumnType> Attribute<T> for Col<T, V> {
    fn column_index(&self) -> usize {
        self.index
    }
}

impl<T, V> fmt::Debug for Col<T, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Col({})", self.index)
    }
}

/// A SQL expression whose value decodes as `V`, e.g. `func::count()` (an `i64`).
pub struct ColumnExpr<V> {
    pub(super) term: Term,
    _value: PhantomData<fn() -> V>,
}

impl<V> Clone for ColumnExpr<V> {
    fn clone(&self) -> Self {
        ColumnExpr {
            term: self.term.clone(),
            _value: PhantomData,
        }
    }
}

impl<V> fmt::Debug for ColumnExpr<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.term.sql())
    }
}

impl<V> ColumnExpr<V> {
    pub(crate) fn new(term: Term) -> Self {
        ColumnExpr {
            term,
            _value: PhantomData,
        }
    }
}

impl<T: Entity, V: ColumnType> IntoColumn for Col<T, V> {
    type Value = V;

    fn term(&self) -> Term {
        Term(Kind::Column {
            table: T::TABLE,
            index: self.index,
        })
    }

    fn entity(&self) -> Option<(&'static Table, std::any::TypeId)> {
        Some((T::TABLE, std::any::TypeId::of::<T>()))
    }
}

impl<V: ColumnType> IntoColumn for ColumnExpr<V> {
    type Value = V;

    fn term(&self) -> Term {
        self.term.clone()
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
        term: Term,
        op: &'static str,
        value: Arc<OwnedParam>,
    },
    Unary {
        term: Term,
        op: &'static str,
    },
    Between {
        term: Term,
        low: Arc<OwnedParam>,
        high: Arc<OwnedParam>,
    },
    InList {
        term: Term,
        cast: &'static str,
        values: Arc<OwnedParam>,
        negated: bool,
    },
    /// `$n = ANY(term)`.
    AnyEq {
        term: Term,
        value: Arc<OwnedParam>,
    },
    /// A raw SQL fragment whose `$1..$k` are renumbered after the statement's parameters.
    Sql {
        sql: Arc<str>,
        params: Vec<Arc<OwnedParam>>,
        error: Option<String>,
    },
    /// `left op right`, both expressions.
    CompareTerms {
        left: Term,
        op: &'static str,
        right: Term,
    },
    /// `(a, b) op ($n, $m)`: a row comparison (keyset pagination).
    RowCompare {
        terms: Vec<Term>,
        op: &'static str,
        values: Vec<Arc<OwnedParam>>,
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

pub(crate) fn compare(term: Term, op: &'static str, value: OwnedParam) -> Expr {
    Expr {
        node: Node::Compare {
            term,
            op,
            value: Arc::new(value),
        },
    }
}

/// `term op $n`, or `term null_op` when `value` is NULL (a bound NULL compares as unknown, so
/// `= NULL` matches nothing).
fn compare_or_null<V: ColumnType>(
    term: Term,
    op: &'static str,
    null_op: &'static str,
    value: V,
) -> Expr {
    if value.is_null() {
        unary(term, null_op)
    } else {
        compare_value(term, op, value)
    }
}

/// `term op $n`, refused (see [`inexact`]) when PostgreSQL would change the value.
fn compare_value<V: ColumnType>(term: Term, op: &'static str, value: V) -> Expr {
    match inexact(&term, [&value]) {
        Some(refused) => refused,
        None => compare(term, op, Box::new(value)),
    }
}

/// A condition that makes its statement refuse to run (its `error`), when one of `values`
/// cannot be stored exactly ([`ColumnType::check`]): PostgreSQL would round a nanosecond
/// timestamp before comparing, which silently changes what the filter means.
fn inexact<'v, V: ColumnType + 'v>(
    term: &Term,
    values: impl IntoIterator<Item = &'v V>,
) -> Option<Expr> {
    if !V::CHECKED {
        return None;
    }
    let reason = values.into_iter().find_map(|v| v.check().err())?;
    let column = match &term.0 {
        Kind::Column { table, index } => format!("{}.{}", table.name, table.columns[*index].name),
        Kind::Aliased {
            alias,
            table,
            index,
        } => format!("{alias}.{}", table.columns[*index].name),
        _ => "an expression".to_string(),
    };
    Some(Expr {
        node: Node::Sql {
            sql: Arc::from("FALSE"),
            params: Vec::new(),
            error: Some(crate::Error::Value { column, reason }.to_string() + " (a filter value)"),
        },
    })
}

fn unary(term: Term, op: &'static str) -> Expr {
    Expr {
        node: Node::Unary { term, op },
    }
}

/// `$n = ANY(term)`.
pub(crate) fn any_eq(term: Term, value: OwnedParam) -> Expr {
    Expr {
        node: Node::AnyEq {
            term,
            value: Arc::new(value),
        },
    }
}

/// `left op right`.
pub(crate) fn compare_terms(left: Term, op: &'static str, right: Term) -> Expr {
    Expr {
        node: Node::CompareTerms { left, op, right },
    }
}

/// `(terms) op (values)`.
pub(crate) fn row_compare(terms: Vec<Term>, op: &'static str, values: Vec<OwnedParam>) -> Expr {
    Expr {
        node: Node::RowCompare {
            terms,
            op,
            values: values.into_iter().map(Arc::new).collect(),
        },
    }
}

/// A raw fragment (see [`sql_expr`](crate::sql_expr)); `error` is what its check found.
pub(crate) fn raw(sql: String, params: Vec<OwnedParam>, error: Option<String>) -> Expr {
    Expr {
        node: Node::Sql {
            sql: sql.into(),
            params: params.into_iter().map(Arc::new).collect(),
            error,
        },
    }
}

/// The comparisons and orderings shared by [`Col`] and [`ColumnExpr`] (`$v` is the value type).
macro_rules! comparisons {
    ($v:ty) => {
        /// `self = value`, or `self IS NULL` when `value` is `None` (SQLAlchemy's
        /// `col == None`).
        pub fn eq(self, value: impl Into<$v>) -> Expr {
            compare_or_null(self.term(), "=", "IS NULL", value.into())
        }

        /// `self <> value`, or `self IS NOT NULL` when `value` is `None` (SQLAlchemy's
        /// `col != None`).
        pub fn ne(self, value: impl Into<$v>) -> Expr {
            compare_or_null(self.term(), "<>", "IS NOT NULL", value.into())
        }

        /// `self < value`.
        pub fn lt(self, value: impl Into<$v>) -> Expr {
            compare_value(self.term(), "<", value.into())
        }

        /// `self <= value`.
        pub fn le(self, value: impl Into<$v>) -> Expr {
            compare_value(self.term(), "<=", value.into())
        }

        /// `self > value`.
        pub fn gt(self, value: impl Into<$v>) -> Expr {
            compare_value(self.term(), ">", value.into())
        }

        /// `self >= value`.
        pub fn ge(self, value: impl Into<$v>) -> Expr {
            compare_value(self.term(), ">=", value.into())
        }

        /// `self IS NULL`.
        pub fn is_null(self) -> Expr {
            unary(self.term(), "IS NULL")
        }

        /// `self IS NOT NULL`.
        pub fn is_not_null(self) -> Expr {
            unary(self.term(), "IS NOT NULL")
        }

        /// `ORDER BY self ASC`.
        pub fn asc(self) -> Order {
            Order {
                term: self.term(),
                desc: false,
            }
        }

        /// `ORDER BY self DESC`.
        pub fn desc(self) -> Order {
            Order {
                term: self.term(),
                desc: true,
            }
        }
    };
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
    pub const fn index(&self) -> usize {
        self.index
    }

    /// The column's SQL name.
    pub fn name(&self) -> &'static str {
        T::TABLE.columns[self.index].name
    }

    comparisons!(V);

    /// `col BETWEEN low AND high`.
    pub fn between(self, low: impl Into<V>, high: impl Into<V>) -> Expr {
        let (low, high) = (low.into(), high.into());
        if let Some(refused) = inexact(&self.term(), [&low, &high]) {
            return refused;
        }
        Expr {
            node: Node::Between {
                term: self.term(),
                low: Arc::new(Box::new(low)),
                high: Arc::new(Box::new(high)),
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
        let values: Vec<V> = values.into_iter().collect();
        if let Some(refused) = inexact(&self.term(), &values) {
            return refused;
        }
        Expr {
            node: Node::InList {
                term: self.term(),
                cast: T::TABLE.columns[self.index].sql_type,
                values: Arc::new(Box::new(values)),
                negated,
            },
        }
    }
}

impl<V: ColumnType> ColumnExpr<V> {
    comparisons!(V);
}

impl<T: Entity> Col<T, String> {
    /// `col LIKE pattern`.
    pub fn like(self, pattern: impl Into<String>) -> Expr {
        compare(self.term(), "LIKE", Box::new(pattern.into()))
    }

    /// `col ILIKE pattern` (case-insensitive).
    pub fn ilike(self, pattern: impl Into<String>) -> Expr {
        compare(self.term(), "ILIKE", Box::new(pattern.into()))
    }
}

impl<T: Entity> Col<T, Option<String>> {
    /// `col LIKE pattern`.
    pub fn like(self, pattern: impl Into<String>) -> Expr {
        compare(self.term(), "LIKE", Box::new(Some(pattern.into())))
    }

    /// `col ILIKE pattern` (case-insensitive).
    pub fn ilike(self, pattern: impl Into<String>) -> Expr {
        compare(self.term(), "ILIKE", Box::new(Some(pattern.into())))
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

    /// True when the condition binds an array (`in_` / `not_in`). Such a statement runs as an
    /// unnamed statement, planned with its values every time: a cached one would switch to
    /// PostgreSQL's generic plan after five runs, where `= ANY($1)` scans the array once per
    /// row (measured: 20 ms became 450 ms for 20,000 rows against 10,000 keys).
    pub(crate) fn binds_array(&self) -> bool {
        match &self.node {
            Node::InList { .. } => true,
            Node::Compare { .. }
            | Node::Unary { .. }
            | Node::Between { .. }
            | Node::AnyEq { .. }
            | Node::RowCompare { .. }
            | Node::CompareTerms { .. }
            | Node::Sql { .. } => false,
            Node::All(list) | Node::Any(list) => list.iter().any(Expr::binds_array),
            Node::Not(inner) => inner.binds_array(),
        }
    }

    /// Every table the condition reads.
    pub(crate) fn tables(&self, out: &mut Vec<&'static Table>) {
        match &self.node {
            Node::Compare { term, .. }
            | Node::Unary { term, .. }
            | Node::Between { term, .. }
            | Node::InList { term, .. }
            | Node::AnyEq { term, .. } => term.tables(out),
            Node::Sql { .. } => {}
            Node::RowCompare { terms, .. } => terms.iter().for_each(|t| t.tables(out)),
            Node::CompareTerms { left, right, .. } => {
                left.tables(out);
                right.tables(out);
            }
            Node::All(list) | Node::Any(list) => list.iter().for_each(|e| e.tables(out)),
            Node::Not(inner) => inner.tables(out),
        }
    }

    /// The mistake found while building a raw fragment inside, if any.
    pub(crate) fn error(&self) -> Option<String> {
        match &self.node {
            Node::Sql { error, .. } => error.clone(),
            Node::All(list) | Node::Any(list) => list.iter().find_map(Expr::error),
            Node::Not(inner) => inner.error(),
            _ => None,
        }
    }

    /// Renders the condition, numbering parameters after those already in `params`.
    pub(crate) fn render(&self, params: &mut Vec<Arc<OwnedParam>>) -> String {
        match &self.node {
            Node::Compare { term, op, value } => {
                let term = term.render(params);
                params.push(value.clone());
                format!("{term} {op} ${}", params.len())
            }
            Node::Unary { term, op } => format!("{} {op}", term.render(params)),
            Node::AnyEq { term, value } => {
                let term = term.render(params);
                params.push(value.clone());
                format!("${} = ANY({term})", params.len())
            }
            Node::Sql {
                sql, params: own, ..
            } => {
                let base = params.len();
                params.extend(own.iter().cloned());
                format!("({})", super::raw::renumber(sql, base))
            }
            Node::CompareTerms { left, op, right } => {
                let left = left.render(params);
                format!("{left} {op} {}", right.render(params))
            }
            Node::RowCompare { terms, op, values } => {
                let terms: Vec<String> = terms.iter().map(|t| t.render(params)).collect();
                let marks: Vec<String> = values
                    .iter()
                    .map(|v| {
                        params.push(v.clone());
                        format!("${}", params.len())
                    })
                    .collect();
                format!("({}) {op} ({})", terms.join(", "), marks.join(", "))
            }
            Node::Between { term, low, high } => {
                let term = term.render(params);
                params.push(low.clone());
                params.push(high.clone());
                format!("{term} BETWEEN ${} AND ${}", params.len() - 1, params.len())
            }
            Node::InList {
                term,
                cast,
                values,
                negated,
            } => {
                let term = term.render(params);
                params.push(values.clone());
                let sql = format!("{term} = ANY(${}::{cast}[])", params.len());
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

/// `((a) OR (b))`: the group is bracketed as a whole too, so that it stays one operand when
/// the statement ANDs it with its other conditions.
fn join(list: &[Expr], sep: &str, params: &mut Vec<Arc<OwnedParam>>) -> String {
    let parts: Vec<String> = list
        .iter()
        .map(|e| format!("({})", e.render(params)))
        .collect();
    format!("({})", parts.join(sep))
}

/// An `ORDER BY` item (from `asc()` / `desc()`).
#[derive(Debug, Clone)]
pub struct Order {
    term: Term,
    desc: bool,
}

impl Order {
    pub(crate) fn new(term: Term, desc: bool) -> Self {
        Order { term, desc }
    }

    pub(crate) fn render(&self, params: &mut Vec<Arc<OwnedParam>>) -> String {
        format!(
            "{}{}",
            self.term.render(params),
            if self.desc { " DESC" } else { "" }
        )
    }

    pub(crate) fn tables(&self, out: &mut Vec<&'static Table>) {
        self.term.tables(out);
    }
}
