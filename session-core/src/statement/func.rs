//! SQL functions (SQLAlchemy's `func.count()`, `func.max(col)`, ...), typed by what
//! PostgreSQL returns: `count` is an `i64`; `max` / `min` are `Option<V>` (NULL over no rows);
//! `sum` of integers is an `Option<i64>` and `avg` an `Option<f64>`; [`coalesce`] drops the
//! `Option`; [`lower`] / [`upper`] keep the text type; [`now`] is a `timestamptz`.
//!
//! ```
//! use session_core::{func, update};
//! # #[derive(Debug, Clone, Default, session_core::Entity)]
//! # struct Author { #[entity(primary_key)] id: i32, name: String, nick: Option<String>,
//! #   seen: Option<chrono::DateTime<chrono::Utc>> }
//! let tidy = update::<Author>()
//!     .set_expr(Author::C.name, func::coalesce(func::lower(Author::C.nick), "anonymous"))
//!     .set_expr(Author::C.seen, func::now());
//! assert_eq!(
//!     format!("{tidy:?}"),
//!     r#"UPDATE "author" SET "name" = coalesce(lower("author"."nick"), $1::varchar), "seen" = now()"#
//! );
//! ```

use super::expr::{ColumnExpr, IntoColumn, Kind, Term};
use super::ops::{Operand, TextType};
use crate::model::ColumnType;

/// `coalesce(value, fallback)`: `value` unless it is NULL, then `fallback` (a value or an
/// expression of the non-`Option` type); the result is no longer an `Option`.
pub fn coalesce<X, R>(value: X, fallback: R) -> ColumnExpr<<X::Value as Nullable>::Inner>
where
    X: IntoColumn,
    X::Value: Nullable,
    R: Operand<<X::Value as Nullable>::Inner>,
{
    function("coalesce", vec![value.term(), fallback.operand()], None)
}

/// `lower(text)`.
pub fn lower<X>(text: X) -> ColumnExpr<X::Value>
where
    X: IntoColumn,
    X::Value: TextType,
{
    function("lower", vec![text.term()], None)
}

/// `upper(text)`.
pub fn upper<X>(text: X) -> ColumnExpr<X::Value>
where
    X: IntoColumn,
    X::Value: TextType,
{
    function("upper", vec![text.term()], None)
}

/// `now()`, the transaction's start time, a `timestamptz` (`DateTime<Utc>`; it also sets an
/// `Option<DateTime<Utc>>` column). For a `timestamp` column use [`localtimestamp`], for
/// other timestamp types [`now_as`].
pub fn now() -> ColumnExpr<chrono::DateTime<chrono::Utc>> {
    function("now", Vec::new(), None)
}

/// `CAST(now() AS timestamp)` (SQL's `LOCALTIMESTAMP`): the transaction's start time in the
/// session's time zone, without a zone (`NaiveDateTime`).
pub fn localtimestamp() -> ColumnExpr<chrono::NaiveDateTime> {
    now_as()
}

/// `now()` cast to the timestamp type `V` (e.g. `now_as::<time::OffsetDateTime>()`).
pub fn now_as<V: Timestamp>() -> ColumnExpr<V> {
    function("now", Vec::new(), Some(V::SQL_TYPE))
}

fn function<V>(name: &'static str, args: Vec<Term>, cast: Option<&'static str>) -> ColumnExpr<V> {
    ColumnExpr::new(Term(Kind::Call { name, args, cast }))
}

/// A nullable column type (`Option<T>`): what [`coalesce`] takes.
#[diagnostic::on_unimplemented(
    message = "`coalesce` takes a nullable (`Option`) column or expression, not one of `{Self}`",
    label = "never NULL"
)]
pub trait Nullable: ColumnType {
    /// The type without `Option`.
    type Inner: ColumnType;
}

impl<T: ColumnType> Nullable for Option<T> {
    type Inner = T;
}

/// A timestamp column type: what [`now_as`] gives.
#[diagnostic::on_unimplemented(
    message = "`now()` gives a timestamp, not a `{Self}`",
    label = "not a timestamp type"
)]
pub trait Timestamp: ColumnType {}

macro_rules! timestamp {
    ($($t:ty),*) => {$(
        impl Timestamp for $t {}
        impl Timestamp for Option<$t> {}
    )*};
}

timestamp!(
    chrono::NaiveDateTime,
    chrono::DateTime<chrono::Utc>,
    chrono::DateTime<chrono::FixedOffset>
);

#[cfg(feature = "time")]
timestamp!(time::PrimitiveDateTime, time::OffsetDateTime);

/// `count(*)` (SQLAlchemy's `func.count()`); use with
/// [`SelectColumns::select_from`](crate::SelectColumns::select_from) when no column names the
/// table.
pub fn count() -> ColumnExpr<i64> {
    call("count", false, Term(Kind::Star), None)
}

/// `count(col)`: the rows where `col` is not NULL.
pub fn count_of<X: IntoColumn>(column: X) -> ColumnExpr<i64> {
    call("count", false, column.term(), None)
}

/// `count(DISTINCT col)`.
pub fn count_distinct<X: IntoColumn>(column: X) -> ColumnExpr<i64> {
    call("count", true, column.term(), None)
}

/// `max(col)`.
pub fn max<X>(column: X) -> ColumnExpr<<X::Value as Extremum>::Out>
where
    X: IntoColumn,
    X::Value: Extremum,
{
    call("max", false, column.term(), None)
}

/// `min(col)`.
pub fn min<X>(column: X) -> ColumnExpr<<X::Value as Extremum>::Out>
where
    X: IntoColumn,
    X::Value: Extremum,
{
    call("min", false, column.term(), None)
}

/// `sum(col)`, cast back to a type Rust decodes (`bigint` for integers, so a sum beyond the
/// `i64` range is an error, never a wrong number).
pub fn sum<X>(column: X) -> ColumnExpr<<X::Value as Summable>::Sum>
where
    X: IntoColumn,
    X::Value: Summable,
{
    call(
        "sum",
        false,
        column.term(),
        Some(<X::Value as Summable>::SUM_TYPE),
    )
}

/// `avg(col)`: `double precision` for integers and floats, `numeric` for `Decimal`.
pub fn avg<X>(column: X) -> ColumnExpr<<X::Value as Summable>::Avg>
where
    X: IntoColumn,
    X::Value: Summable,
{
    call(
        "avg",
        false,
        column.term(),
        Some(<X::Value as Summable>::AVG_TYPE),
    )
}

fn call<V>(
    name: &'static str,
    distinct: bool,
    arg: Term,
    cast: Option<&'static str>,
) -> ColumnExpr<V> {
    ColumnExpr::new(Term(Kind::Func {
        name,
        distinct,
        arg: Box::new(arg),
        cast,
    }))
}

/// A column type `max` / `min` apply to; the result is `Option` of the plain type.
#[diagnostic::on_unimplemented(
    message = "`max` / `min` do not apply to a column of `{Self}`",
    label = "not an ordered column type",
    note = "`max` / `min` take numbers, text, inet and date/time columns, and derived newtypes of them"
)]
pub trait Extremum {
    /// What `max` / `min` return.
    type Out: crate::ColumnType;
}

/// A numeric column type `sum` / `avg` apply to.
#[diagnostic::on_unimplemented(
    message = "`sum` / `avg` need a numeric column, not one of `{Self}`",
    label = "not a numeric column",
    note = "`sum` / `avg` take smallint, integer, bigint, real, double precision and numeric columns, and derived newtypes of them"
)]
pub trait Summable {
    /// What `sum` returns.
    type Sum: crate::ColumnType;
    /// The SQL type `sum` is cast to.
    const SUM_TYPE: &'static str;
    /// What `avg` returns.
    type Avg: crate::ColumnType;
    /// The SQL type `avg` is cast to.
    const AVG_TYPE: &'static str;
}

macro_rules! extremum {
    ($($t:ty),*) => {$(
        impl Extremum for $t { type Out = Option<$t>; }
    )*};
}

impl<T: Extremum> Extremum for Option<T> {
    type Out = T::Out;
}

extremum!(
    std::net::IpAddr,
    i16,
    i32,
    i64,
    f32,
    f64,
    String,
    chrono::NaiveDateTime,
    chrono::DateTime<chrono::Utc>,
    chrono::NaiveDate,
    chrono::NaiveTime,
    chrono::DateTime<chrono::FixedOffset>
);

#[cfg(feature = "time")]
extremum!(
    time::PrimitiveDateTime,
    time::OffsetDateTime,
    time::Date,
    time::Time
);

#[cfg(feature = "decimal")]
extremum!(rust_decimal::Decimal);

macro_rules! summable {
    ($($t:ty => $sum:ty, $sql:literal, $avg:ty, $avg_sql:literal);* $(;)?) => {$(
        impl Summable for $t {
            type Sum = Option<$sum>;
            const SUM_TYPE: &'static str = $sql;
            type Avg = Option<$avg>;
            const AVG_TYPE: &'static str = $avg_sql;
        }
    )*};
}

impl<T: Summable> Summable for Option<T> {
    type Sum = T::Sum;
    const SUM_TYPE: &'static str = T::SUM_TYPE;
    type Avg = T::Avg;
    const AVG_TYPE: &'static str = T::AVG_TYPE;
}

summable!(
    i16 => i64, "bigint", f64, "double precision";
    i32 => i64, "bigint", f64, "double precision";
    i64 => i64, "bigint", f64, "double precision";
    f32 => f64, "double precision", f64, "double precision";
    f64 => f64, "double precision", f64, "double precision";
);

#[cfg(feature = "decimal")]
summable!(
    rust_decimal::Decimal => rust_decimal::Decimal, "numeric", rust_decimal::Decimal, "numeric";
);
