//! Value expressions on typed columns: arithmetic (`+ - * /` through `std::ops` on numeric
//! [`Col`]s and [`ColumnExpr`]s), text concatenation ([`Col::concat`], SQL's `||`), and the
//! [`Operand`] trait that lets a value or a typed expression stand where a `V` is expected
//! (in [`Update::set_expr`](crate::Update::set_expr), arithmetic and
//! [`func::coalesce`](crate::func::coalesce)).
//!
//! ```
//! use session_core::update;
//! # #[derive(Debug, Clone, Default, session_core::Entity)]
//! # struct Item { #[entity(primary_key)] id: i32, stock: i32, name: String }
//! let sell = update::<Item>()
//!     .set_expr(Item::C.stock, Item::C.stock - 1)
//!     .set_expr(Item::C.name, Item::C.name.concat(" (sold)"))
//!     .filter(Item::C.id.eq(7));
//! assert_eq!(
//!     format!("{sell:?}"),
//!     r#"UPDATE "item" SET "stock" = ("item"."stock" - $1::integer), "name" = ("item"."name" || $2::varchar) WHERE "item"."id" = $3"#
//! );
//! ```

use std::ops::{Add, Div, Mul, Sub};

use super::expr::{Col, ColumnExpr, Expr, IntoColumn, Term, compare_terms};
use crate::model::{ColumnType, Entity};

/// A value or typed expression that can stand where a `V` is expected: a plain value of the
/// type (bound as a parameter), a [`Col`] holding `V`, or a [`ColumnExpr<V>`] (and, where
/// `V` is an `Option<W>`, a value, column or expression of `W`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is no `{V}` value or expression",
    label = "expected a `{V}`, a column of `{V}` or an expression of `{V}`",
    note = "plain values are numbers, text, booleans, uuids and decimals of the column's own type"
)]
pub trait Operand<V> {
    /// The expression (plumbing).
    #[doc(hidden)]
    fn operand(self) -> Term;
}

impl<T: Entity, V: ColumnType> Operand<V> for Col<T, V> {
    fn operand(self) -> Term {
        self.term()
    }
}

impl<V: ColumnType> Operand<V> for ColumnExpr<V> {
    fn operand(self) -> Term {
        self.term()
    }
}

/// A column that is never NULL stands where a nullable value is expected.
impl<T: Entity, V: ColumnType> Operand<Option<V>> for Col<T, V> {
    fn operand(self) -> Term {
        self.term()
    }
}

/// An expression that is never NULL stands where a nullable value is expected.
impl<V: ColumnType> Operand<Option<V>> for ColumnExpr<V> {
    fn operand(self) -> Term {
        self.term()
    }
}

macro_rules! value_operands {
    ($($t:ty),* $(,)?) => {$(
        impl Operand<$t> for $t {
            fn operand(self) -> Term {
                Term::param::<$t>(self)
            }
        }
        impl Operand<Option<$t>> for $t {
            fn operand(self) -> Term {
                Term::param::<Option<$t>>(Some(self))
            }
        }
        impl Operand<Option<$t>> for Option<$t> {
            fn operand(self) -> Term {
                Term::param::<Option<$t>>(self)
            }
        }
    )*};
}

value_operands!(bool, i16, i32, i64, f32, f64, String);

#[cfg(feature = "decimal")]
value_operands!(rust_decimal::Decimal);

#[cfg(feature = "uuid")]
value_operands!(uuid::Uuid);

impl Operand<String> for &str {
    fn operand(self) -> Term {
        Term::param::<String>(self.to_string())
    }
}

impl Operand<Option<String>> for &str {
    fn operand(self) -> Term {
        Term::param::<Option<String>>(Some(self.to_string()))
    }
}

/// A numeric column type: `+ - * /` apply to its columns and expressions and keep the type
/// (integer division truncates, as in PostgreSQL).
#[diagnostic::on_unimplemented(
    message = "arithmetic needs a numeric column, not one of `{Self}`",
    label = "not a numeric column",
    note = "`+ - * /` take smallint, integer, bigint, real, double precision and numeric columns; text concatenates with `.concat(...)`"
)]
pub trait Numeric: ColumnType {}

/// A text column type: [`Col::concat`], [`func::lower`](crate::func::lower) and
/// [`func::upper`](crate::func::upper) apply to it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is no text column type",
    label = "not a text column"
)]
pub trait TextType: ColumnType {}

impl TextType for String {}
impl TextType for Option<String> {}

macro_rules! numeric {
    ($($t:ty),*) => {$(
        impl Numeric for $t {}
        impl Numeric for Option<$t> {}
    )*};
}

numeric!(i16, i32, i64, f32, f64);

#[cfg(feature = "decimal")]
numeric!(rust_decimal::Decimal);

macro_rules! arithmetic {
    ($($trait:ident $method:ident $op:literal),*) => {$(
        impl<T: Entity, V: Numeric, R: Operand<V>> $trait<R> for Col<T, V> {
            type Output = ColumnExpr<V>;

            #[doc = concat!("`(self ", $op, " rhs)`.")]
            fn $method(self, rhs: R) -> ColumnExpr<V> {
                ColumnExpr::new(Term::binary(self.term(), $op, rhs.operand()))
            }
        }

        impl<V: Numeric, R: Operand<V>> $trait<R> for ColumnExpr<V> {
            type Output = ColumnExpr<V>;

            #[doc = concat!("`(self ", $op, " rhs)`.")]
            fn $method(self, rhs: R) -> ColumnExpr<V> {
                ColumnExpr::new(Term::binary(self.term(), $op, rhs.operand()))
            }
        }
    )*};
}

arithmetic!(Add add "+", Sub sub "-", Mul mul "*", Div div "/");

impl<T: Entity, V: TextType> Col<T, V> {
    /// `(self || other)`: text concatenation (SQLAlchemy's `col + "x"` on a string column).
    pub fn concat(self, other: impl Operand<V>) -> ColumnExpr<V> {
        ColumnExpr::new(Term::binary(self.term(), "||", other.operand()))
    }
}

impl<V: TextType> ColumnExpr<V> {
    /// `(self || other)`: text concatenation.
    pub fn concat(self, other: impl Operand<V>) -> ColumnExpr<V> {
        ColumnExpr::new(Term::binary(self.term(), "||", other.operand()))
    }
}

/// Comparisons with another column or expression (the value comparisons `eq`, `lt`, ...
/// take plain values), e.g. `Item::C.stock.lt_expr(Item::C.reserved)` or, in an upsert's
/// `DO UPDATE ... WHERE`, `Item::C.price.lt_expr(Item::C.price.excluded())`.
macro_rules! expr_comparisons {
    ($($method:ident $op:literal),*) => {$(
        #[doc = concat!("`self ", $op, " other`, `other` a column, an expression or a value.")]
        pub fn $method(self, other: impl Operand<V>) -> Expr {
            compare_terms(self.term(), $op, other.operand())
        }
    )*};
}

impl<T: Entity, V: ColumnType> Col<T, V> {
    expr_comparisons!(eq_expr "=", ne_expr "<>", lt_expr "<", le_expr "<=", gt_expr ">", ge_expr ">=");
}

impl<V: ColumnType> ColumnExpr<V> {
    expr_comparisons!(eq_expr "=", ne_expr "<>", lt_expr "<", le_expr "<=", gt_expr ">", ge_expr ">=");
}
