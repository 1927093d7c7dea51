//! [`Columns`]: what a [`select_columns`](crate::select_columns) or a `returning(...)` selects
//! (one [`IntoColumn`] or a tuple of them) and the Rust row it decodes into.

use tokio_postgres::Row;

use super::expr::{IntoColumn, Term};
use crate::model::Table;

/// One column expression or a tuple of up to eight, decoded as one value or a tuple.
pub trait Columns: Send + Sync + 'static {
    /// One decoded row: the value, or a tuple of values.
    type Row: Send + 'static;
    /// The first column's value (what `scalars()` returns).
    type First: Send + 'static;

    /// The expressions, in order (plumbing).
    #[doc(hidden)]
    fn terms(&self) -> Vec<Term>;

    /// The first entity column's table and type, for the session's bind.
    #[doc(hidden)]
    fn entity(&self) -> Option<(&'static Table, std::any::TypeId)>;

    /// Decodes the row's columns `offset..`.
    ///
    /// # Errors
    /// The driver's error when a value does not decode.
    #[doc(hidden)]
    fn decode(row: &Row, offset: usize) -> Result<Self::Row, tokio_postgres::Error>;

    /// The first value of a decoded row.
    #[doc(hidden)]
    fn first(row: Self::Row) -> Self::First;
}

impl<X: IntoColumn> Columns for X {
    type Row = X::Value;
    type First = X::Value;

    fn terms(&self) -> Vec<Term> {
        vec![self.term()]
    }

    fn entity(&self) -> Option<(&'static Table, std::any::TypeId)> {
        IntoColumn::entity(self)
    }

    fn decode(row: &Row, offset: usize) -> Result<X::Value, tokio_postgres::Error> {
        row.try_get(offset)
    }

    fn first(row: X::Value) -> X::Value {
        row
    }
}

macro_rules! tuple_columns {
    ($first:ident $($name:ident)*; $($index:tt)*) => {
        impl<$first: IntoColumn, $($name: IntoColumn),*> Columns for ($first, $($name,)*) {
            type Row = ($first::Value, $($name::Value,)*);
            type First = $first::Value;

            fn terms(&self) -> Vec<Term> {
                vec![$(self.$index.term()),*]
            }

            #[allow(non_snake_case)]
            fn entity(&self) -> Option<(&'static Table, std::any::TypeId)> {
                let ($first, $($name,)*) = self;
                IntoColumn::entity($first)$(.or_else(|| IntoColumn::entity($name)))*
            }

            fn decode(row: &Row, offset: usize) -> Result<Self::Row, tokio_postgres::Error> {
                Ok(($(row.try_get(offset + $index)?,)*))
            }

            fn first(row: Self::Row) -> Self::First {
                row.0
            }
        }
    };
}

tuple_columns!(A; 0);
tuple_columns!(A B; 0 1);
tuple_columns!(A B C; 0 1 2);
tuple_columns!(A B C D; 0 1 2 3);
tuple_columns!(A B C D E; 0 1 2 3 4);
tuple_columns!(A B C D E F; 0 1 2 3 4 5);
tuple_columns!(A B C D E F G; 0 1 2 3 4 5 6);
tuple_columns!(A B C D E F G H; 0 1 2 3 4 5 6 7);
