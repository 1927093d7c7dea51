//! Operators of `jsonb` and array columns, typed by the column: `contains` (`@>`) on both,
//! `has_key` (`?`), `get` (`->`) and `get_text` (`->>`) on `jsonb`, `overlaps` (`&&`) and
//! `any_eq` (`$1 = ANY(col)`) on arrays.
//!
//! ```
//! use session_core::select;
//! # #[derive(Debug, Clone, Default, session_core::Entity)]
//! # struct Book { #[entity(primary_key)] id: i32, tags: Vec<String>, meta: serde_json::Value }
//! let q = select::<Book>()
//!     .filter(Book::C.tags.any_eq("rust"))
//!     .filter(Book::C.meta.contains(serde_json::json!({"lang": "en"})))
//!     .filter(Book::C.meta.get_text("isbn").is_not_null());
//! assert!(format!("{q:?}").ends_with(
//!     r#"WHERE $1 = ANY("book"."tags") AND "book"."meta" @> $2 AND ("book"."meta" ->> $3::varchar) IS NOT NULL"#
//! ));
//! ```

use postgres_types::ToSql;

use super::expr::{Col, ColumnExpr, Expr, IntoColumn, Term, any_eq, compare};
use crate::model::{ArrayElement, ColumnType, Entity};

/// A column type with containment (`@>`): `jsonb` (against any JSON value) and arrays
/// (against an array of the same elements).
#[diagnostic::on_unimplemented(
    message = "`contains` (`@>`) needs a jsonb or array column, not one of `{Self}`",
    label = "neither jsonb nor an array"
)]
pub trait Containment: ColumnType {
    /// What the column is compared with.
    type Pattern: ToSql + Sync + Send + 'static;
}

/// A `jsonb` column type (`serde_json::Value`, `Json<T>`, `Option` of them).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is no jsonb column type",
    label = "not a jsonb column"
)]
pub trait JsonType: ColumnType {}

/// An array column type (`Vec<E>`, `Option<Vec<E>>`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is no array column type",
    label = "not an array column"
)]
pub trait ArrayType: ColumnType {
    /// The element type.
    type Element: ArrayElement;
}

impl<E: ArrayElement> Containment for Vec<E> {
    type Pattern = Vec<E>;
}

impl<E: ArrayElement> Containment for Option<Vec<E>> {
    type Pattern = Vec<E>;
}

impl<E: ArrayElement> ArrayType for Vec<E> {
    type Element = E;
}

impl<E: ArrayElement> ArrayType for Option<Vec<E>> {
    type Element = E;
}

#[cfg(feature = "json")]
mod json {
    use super::{Containment, JsonType};
    use crate::model::ColumnType;

    impl Containment for serde_json::Value {
        type Pattern = serde_json::Value;
    }

    impl Containment for Option<serde_json::Value> {
        type Pattern = serde_json::Value;
    }

    impl JsonType for serde_json::Value {}
    impl JsonType for Option<serde_json::Value> {}

    impl<T> Containment for postgres_types::Json<T>
    where
        postgres_types::Json<T>: ColumnType,
    {
        type Pattern = serde_json::Value;
    }

    impl<T> Containment for Option<postgres_types::Json<T>>
    where
        postgres_types::Json<T>: ColumnType,
    {
        type Pattern = serde_json::Value;
    }

    impl<T> JsonType for postgres_types::Json<T> where postgres_types::Json<T>: ColumnType {}
    impl<T> JsonType for Option<postgres_types::Json<T>> where postgres_types::Json<T>: ColumnType {}
}

/// The operators, on [`Col`] and on [`ColumnExpr`].
macro_rules! container_ops {
    ($([$($g:tt)*] $self_ty:ty, $v:ident);*) => {$(
        impl<$($g)* $v: Containment> $self_ty {
            /// `self @> pattern`: the jsonb value or array contains `pattern` (for jsonb, any
            /// JSON value: `json!({"lang": "en"})`; for an array, an array of its elements).
            pub fn contains(self, pattern: impl Into<$v::Pattern>) -> Expr {
                compare(self.term(), "@>", Box::new(pattern.into()))
            }
        }

        impl<$($g)* $v: JsonType> $self_ty {
            /// `self ? key`: the jsonb object has the top-level key (or the array the string).
            pub fn has_key(self, key: impl Into<String>) -> Expr {
                compare(self.term(), "?", Box::new(key.into()))
            }

            /// `(self ->> key)`: the member as text, NULL when absent.
            pub fn get_text(self, key: impl Into<String>) -> ColumnExpr<Option<String>> {
                ColumnExpr::new(Term::binary(self.term(), "->>", Term::param(key.into())))
            }

            /// `(self -> key)`: the member as jsonb, NULL when absent.
            #[cfg(feature = "json")]
            pub fn get(self, key: impl Into<String>) -> ColumnExpr<Option<serde_json::Value>> {
                ColumnExpr::new(Term::binary(self.term(), "->", Term::param(key.into())))
            }
        }

        impl<$($g)* $v: ArrayType> $self_ty {
            /// `self && values`: the array shares at least one element with `values`.
            pub fn overlaps(self, values: impl IntoIterator<Item = $v::Element>) -> Expr {
                let values: Vec<$v::Element> = values.into_iter().collect();
                compare(self.term(), "&&", Box::new(values))
            }

            /// `value = ANY(self)`: the array holds `value`.
            pub fn any_eq(self, value: impl Into<$v::Element>) -> Expr {
                any_eq(self.term(), Box::new(value.into()))
            }
        }
    )*};
}

container_ops!([T: Entity,] Col<T, V>, V; [] ColumnExpr<W>, W);
