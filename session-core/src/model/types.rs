//! The Rust types a mapped column may have: [`ColumnType`], its implementations for the
//! scalar types PostgreSQL services use (each optional crate behind a cargo feature), and the
//! arrays of them ([`ArrayElement`]).
//!
//! | Rust | PostgreSQL | feature |
//! |---|---|---|
//! | `bool` | `boolean` | |
//! | `i16`, `i32`, `i64` | `smallint`, `integer`, `bigint` | |
//! | `f32`, `f64` | `real`, `double precision` | |
//! | `String` | `varchar` (any text type by `sql_type`) | |
//! | `Vec<u8>` | `bytea` | |
//! | `std::net::IpAddr` | `inet` | |
//! | `chrono::NaiveDateTime`, `DateTime<Utc>`, `DateTime<FixedOffset>` | `timestamp`, `timestamptz` | |
//! | `chrono::NaiveDate`, `chrono::NaiveTime` | `date`, `time` | |
//! | `time::PrimitiveDateTime`, `OffsetDateTime`, `Date`, `Time` | `timestamp`, `timestamptz`, `date`, `time` | `time` |
//! | `uuid::Uuid` | `uuid` | `uuid` |
//! | `serde_json::Value`, [`Json<T>`](crate::Json) | `jsonb` (`json` by `sql_type`) | `json` |
//! | `rust_decimal::Decimal` | `numeric` | `decimal` |
//! | `Vec<T>` of any of the above but `u8` (and of `Option<T>`) | `T[]` | |
//! | `Option<T>` of any of the above | the same, NULL allowed | |
//!
//! # Values PostgreSQL cannot hold exactly
//!
//! Such a value is an error at flush (and in `insert()` / `update()` values), never a silent
//! change: a timestamp or time with nanoseconds (PostgreSQL keeps microseconds; round it
//! first, e.g. chrono's `.trunc_subsecs(6)`), and a chrono leap second (`23:59:60`, which
//! PostgreSQL does not have). A `numeric(p, s)` column rounds a value with more than `s`
//! decimals to `s`, as PostgreSQL documents; an unconstrained `numeric` keeps every digit and
//! the scale (`1.0` and `1.00` are different values for change detection).
//!
//! Multi-dimensional arrays (`Vec<Vec<T>>`) are not column types: PostgreSQL's arrays are
//! rectangular, which a `Vec` of `Vec`s does not promise.

use std::fmt::Debug;

use postgres_types::{FromSqlOwned, ToSql};

/// A Rust type that maps to a PostgreSQL column type.
///
/// Implemented for the types in the [module table](self); for your own enums and newtypes
/// derive it (`#[derive(ColumnType)]`) instead of writing `ToSql` / `FromSql` by hand, or name
/// the SQL type per field with `#[entity(sql_type = "...")]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a mapped column: it does not implement `session_core::ColumnType`",
    label = "not a column type",
    note = "derive it (`#[derive(session_core::ColumnType)]` for an enum or a newtype), enable the cargo feature that maps it (uuid, json, decimal, time), or implement `session_core::ColumnType` (it also needs tokio-postgres's `ToSql` and `FromSql`)"
)]
pub trait ColumnType:
    ToSql + FromSqlOwned + Clone + PartialEq + Debug + Send + Sync + 'static
{
    /// The SQL type used in DDL and in array casts, e.g. `integer`.
    const SQL_TYPE: &'static str;
    /// Whether the column allows NULL (true for `Option<T>`).
    const NULLABLE: bool = false;
    /// Whether some values of the type cannot be stored exactly, so that writes call
    /// [`ColumnType::check`]. False skips the call.
    const CHECKED: bool = false;
    /// The PostgreSQL enum type the column has (`CREATE TYPE ... AS ENUM` in
    /// [`MetaData::create_all`](crate::MetaData::create_all)), for a
    /// `#[derive(ColumnType)] #[column(pg_enum = "...")]` enum; `None` for every other type.
    const ENUM_TYPE: Option<&'static EnumType> = None;

    /// Whether this value is SQL NULL (`None` of an `Option<T>`; false for every other type).
    /// `col.eq(value)` renders `col IS NULL` for it (and `col.ne(value)` `col IS NOT NULL`),
    /// as SQLAlchemy does for `col == None`: `col = NULL` would match no row.
    fn is_null(&self) -> bool {
        false
    }

    /// Whether `self` and `other` are the same value for change detection: a column whose
    /// value is not the same as the one loaded is written at flush. Defaults to `==`; `f32`
    /// and `f64` compare their bits instead, so that `0.0` -> `-0.0` is a change and a NaN is
    /// the same as itself (`==` says the opposite of both), a `Decimal` compares its scale too,
    /// and `Option<T>` and `Vec<T>` delegate to `T`. Override it for a type whose `==` is not
    /// an identity of stored values.
    fn same_as(&self, other: &Self) -> bool {
        self == other
    }

    /// Why PostgreSQL could not store this value exactly, or `Ok`. Called before the value is
    /// written when [`ColumnType::CHECKED`] is true; the session adds the column's name.
    ///
    /// # Errors
    /// A sentence saying what is lost and what to do.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// A PostgreSQL enum type: its name and labels, in order.
#[derive(Debug, PartialEq, Eq)]
pub struct EnumType {
    /// The type's SQL name.
    pub name: &'static str,
    /// The labels, in the enum's order (which `ORDER BY` and `max` follow).
    pub labels: &'static [&'static str],
}

/// A column type that PostgreSQL arrays hold: `Vec<Self>` is a `SQL_TYPE[]` column.
///
/// Implemented for every scalar column type except `u8` (`Vec<u8>` is `bytea`), for
/// `Option<T>` of them (arrays with NULL elements), and by `#[derive(ColumnType)]`.
#[diagnostic::on_unimplemented(
    message = "`Vec<{Self}>` cannot be a mapped column: `{Self}` is no array element type",
    label = "not an array element",
    note = "arrays hold the scalar column types and derived enums and newtypes; nested `Vec`s are not columns (PostgreSQL's arrays are rectangular)"
)]
pub trait ArrayElement: ColumnType {
    /// The SQL type of an array of `Self`, e.g. `integer[]`.
    const ARRAY_TYPE: &'static str;
}

macro_rules! column_types {
    ($($t:ty => $sql:literal),* $(,)?) => {$(
        impl ColumnType for $t {
            const SQL_TYPE: &'static str = $sql;
        }
        impl ArrayElement for $t {
            const ARRAY_TYPE: &'static str = concat!($sql, "[]");
        }
    )*};
}

column_types! {
    bool => "boolean",
    i16 => "smallint",
    i32 => "integer",
    i64 => "bigint",
    String => "varchar",
    std::net::IpAddr => "inet",
    chrono::NaiveDate => "date",
}

impl ColumnType for Vec<u8> {
    const SQL_TYPE: &'static str = "bytea";
}

impl ArrayElement for Vec<u8> {
    const ARRAY_TYPE: &'static str = "bytea[]";
}

macro_rules! float_column_types {
    ($($t:ty => $sql:literal),* $(,)?) => {$(
        impl ColumnType for $t {
            const SQL_TYPE: &'static str = $sql;

            /// By bits: `0.0` and `-0.0` differ, a NaN is the same as itself.
            fn same_as(&self, other: &Self) -> bool {
                self.to_bits() == other.to_bits()
            }
        }
        impl ArrayElement for $t {
            const ARRAY_TYPE: &'static str = concat!($sql, "[]");
        }
    )*};
}

float_column_types! {
    f32 => "real",
    f64 => "double precision",
}

/// The sub-microsecond part of `nanos` (nanoseconds within a second, leap seconds at and
/// beyond 1e9) as the reason it cannot be stored, or `Ok`.
fn check_subsecond(nanos: u32, what: &str) -> Result<(), String> {
    if nanos >= 1_000_000_000 {
        return Err(format!(
            "the {what} is a leap second (`:60`), which PostgreSQL does not have; move it to \
             `:59.999999` or to the next second"
        ));
    }
    if nanos % 1_000 != 0 {
        return Err(format!(
            "the {what} has nanoseconds ({nanos} ns past the second), but PostgreSQL keeps \
             microseconds: round it first (chrono: `.trunc_subsecs(6)` or `.round_subsecs(6)`; \
             time: `.replace_nanosecond(ns / 1000 * 1000)`)"
        ));
    }
    Ok(())
}

macro_rules! checked_time_types {
    ($($t:ty => $sql:literal, $what:literal, |$v:ident| $nanos:expr);* $(;)?) => {$(
        impl ColumnType for $t {
            const SQL_TYPE: &'static str = $sql;
            const CHECKED: bool = true;

            fn check(&self) -> Result<(), String> {
                let $v = self;
                check_subsecond($nanos, $what)
            }
        }
        impl ArrayElement for $t {
            const ARRAY_TYPE: &'static str = concat!($sql, "[]");
        }
    )*};
}

checked_time_types! {
    chrono::NaiveDateTime => "timestamp", "timestamp", |v| chrono::Timelike::nanosecond(v);
    chrono::DateTime<chrono::Utc> => "timestamptz", "timestamp", |v| chrono::Timelike::nanosecond(v);
    chrono::DateTime<chrono::FixedOffset> => "timestamptz", "timestamp", |v| chrono::Timelike::nanosecond(v);
    chrono::NaiveTime => "time", "time", |v| chrono::Timelike::nanosecond(v);
}

#[cfg(feature = "time")]
checked_time_types! {
    time::PrimitiveDateTime => "timestamp", "timestamp", |v| v.nanosecond();
    time::OffsetDateTime => "timestamptz", "timestamp", |v| v.nanosecond();
    time::Time => "time", "time", |v| v.nanosecond();
}

#[cfg(feature = "time")]
column_types! {
    time::Date => "date",
}

#[cfg(feature = "uuid")]
column_types! {
    uuid::Uuid => "uuid",
}

#[cfg(feature = "json")]
column_types! {
    serde_json::Value => "jsonb",
}

#[cfg(feature = "json")]
impl<T> ColumnType for postgres_types::Json<T>
where
    T: serde::Serialize
        + serde::de::DeserializeOwned
        + Clone
        + PartialEq
        + Debug
        + Send
        + Sync
        + 'static,
{
    const SQL_TYPE: &'static str = "jsonb";
}

#[cfg(feature = "json")]
impl<T> ArrayElement for postgres_types::Json<T>
where
    T: serde::Serialize
        + serde::de::DeserializeOwned
        + Clone
        + PartialEq
        + Debug
        + Send
        + Sync
        + 'static,
{
    const ARRAY_TYPE: &'static str = "jsonb[]";
}

#[cfg(feature = "decimal")]
impl ColumnType for rust_decimal::Decimal {
    const SQL_TYPE: &'static str = "numeric";

    /// By value and scale: `1.0` -> `1.00` is a change (an unconstrained `numeric` keeps it).
    fn same_as(&self, other: &Self) -> bool {
        self == other && self.scale() == other.scale()
    }
}

#[cfg(feature = "decimal")]
impl ArrayElement for rust_decimal::Decimal {
    const ARRAY_TYPE: &'static str = "numeric[]";
}

impl<T: ColumnType> ColumnType for Option<T> {
    const SQL_TYPE: &'static str = T::SQL_TYPE;
    const NULLABLE: bool = true;
    const CHECKED: bool = T::CHECKED;
    const ENUM_TYPE: Option<&'static EnumType> = T::ENUM_TYPE;

    fn is_null(&self) -> bool {
        self.is_none()
    }

    fn same_as(&self, other: &Self) -> bool {
        match (self, other) {
            (Some(a), Some(b)) => a.same_as(b),
            (None, None) => true,
            _ => false,
        }
    }

    fn check(&self) -> Result<(), String> {
        self.as_ref().map_or(Ok(()), ColumnType::check)
    }
}

impl<T: ArrayElement> ArrayElement for Option<T> {
    const ARRAY_TYPE: &'static str = T::ARRAY_TYPE;
}

impl<T: ArrayElement> ColumnType for Vec<T> {
    const SQL_TYPE: &'static str = T::ARRAY_TYPE;
    const CHECKED: bool = T::CHECKED;
    const ENUM_TYPE: Option<&'static EnumType> = T::ENUM_TYPE;

    fn same_as(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a.same_as(b))
    }

    fn check(&self) -> Result<(), String> {
        for (i, v) in self.iter().enumerate() {
            v.check().map_err(|why| format!("element {i}: {why}"))?;
        }
        Ok(())
    }
}

/// Whether the SQL type is an array (`text[]`, `integer[3]`, `integer ARRAY`).
pub(crate) fn is_array_type(sql_type: &str) -> bool {
    let t = sql_type.trim_end();
    t.ends_with(']') || t.to_ascii_uppercase().ends_with(" ARRAY")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_types_name_their_element() {
        assert_eq!(<Vec<i32> as ColumnType>::SQL_TYPE, "integer[]");
        assert_eq!(<Vec<Option<String>> as ColumnType>::SQL_TYPE, "varchar[]");
        assert_eq!(<Vec<u8> as ColumnType>::SQL_TYPE, "bytea");
        assert_eq!(<Option<Vec<bool>> as ColumnType>::SQL_TYPE, "boolean[]");
        assert!(is_array_type("text[]") && is_array_type("integer ARRAY"));
        assert!(!is_array_type("bytea"));
    }

    #[test]
    fn sub_microsecond_times_are_refused() {
        let t = chrono::NaiveTime::from_hms_nano_opt(1, 2, 3, 123_456_789).unwrap();
        let e = t.check().unwrap_err();
        assert!(
            e.contains("nanoseconds") && e.contains("trunc_subsecs"),
            "{e}"
        );
        let ok = chrono::NaiveTime::from_hms_micro_opt(1, 2, 3, 123_456).unwrap();
        assert!(ok.check().is_ok());
        let leap = chrono::NaiveTime::from_hms_nano_opt(23, 59, 59, 1_500_000_000).unwrap();
        assert!(leap.check().unwrap_err().contains("leap second"));
        assert!(vec![Some(t)].check().unwrap_err().starts_with("element 0"));
        const { assert!(<Option<Vec<chrono::NaiveTime>> as ColumnType>::CHECKED) };
    }
}
