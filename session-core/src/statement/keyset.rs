//! Keyset pagination ([`Select::keyset`], [`Select::keyset_desc`]): order by a unique
//! combination of columns and continue after the last row seen, `WHERE (a, b) > ($1, $2)`,
//! which stays fast at any depth where `OFFSET` reads and discards every row before the page.

use postgres_types::ToSql;

use super::columns::Columns;
use super::expr::{IntoColumn, Order, Term, row_compare};
use super::select::{QueryCore, Select, SelectColumns};
use crate::model::{Entity, OwnedParam};

/// The columns a page is ordered and continued by: one column or a tuple of up to four
/// (end with a unique one, usually the key, so that no two rows tie); `Values` is the last
/// row's values of them. The columns should be `NOT NULL`: a row comparison with a NULL is
/// unknown, so such rows never come.
pub trait Keyset {
    /// The values of the columns in the last row of the previous page.
    type Values;

    /// The expressions (plumbing).
    #[doc(hidden)]
    fn terms(&self) -> Vec<Term>;

    /// The values as parameters (plumbing).
    #[doc(hidden)]
    fn params(values: Self::Values) -> Vec<OwnedParam>;
}

impl<X: IntoColumn> Keyset for X
where
    X::Value: ToSql + Sync,
{
    type Values = X::Value;

    fn terms(&self) -> Vec<Term> {
        vec![self.term()]
    }

    fn params(values: X::Value) -> Vec<OwnedParam> {
        vec![Box::new(values)]
    }
}

macro_rules! keyset_tuple {
    ($($name:ident $index:tt)*) => {
        impl<$($name: IntoColumn),*> Keyset for ($($name,)*)
        where
            $($name::Value: ToSql + Sync,)*
        {
            type Values = ($($name::Value,)*);

            fn terms(&self) -> Vec<Term> {
                vec![$(self.$index.term()),*]
            }

            fn params(values: Self::Values) -> Vec<OwnedParam> {
                vec![$(Box::new(values.$index) as OwnedParam),*]
            }
        }
    };
}

keyset_tuple!(A 0 B 1);
keyset_tuple!(A 0 B 1 C 2);
keyset_tuple!(A 0 B 1 C 2 D 3);

fn page<K: Keyset>(core: &mut QueryCore, columns: K, after: Option<K::Values>, desc: bool) {
    let terms = columns.terms();
    if let Some(values) = after {
        let op = if desc { "<" } else { ">" };
        core.add_condition(row_compare(terms.clone(), op, K::params(values)), false);
    }
    for term in terms {
        core.push_order(Order::new(term, desc));
    }
}

macro_rules! keyset_builders {
    () => {
        /// Keyset pagination, ascending: `ORDER BY columns ASC`, and with `after` (the last
        /// row's values) `WHERE (columns) > (after)`; add `.limit(page_size)`. Without
        /// `after` it is the first page.
        ///
        /// ```
        /// use session_core::select;
        /// # #[derive(Debug, Clone, Default, session_core::Entity)]
        /// # struct Post { #[entity(primary_key)] id: i32, score: i32 }
        /// let next = select::<Post>()
        ///     .keyset((Post::C.score, Post::C.id), Some((70, 12)))
        ///     .limit(20);
        /// assert!(format!("{next:?}").ends_with(
        ///     r#"WHERE ("post"."score", "post"."id") > ($1, $2) ORDER BY "post"."score", "post"."id" LIMIT 20"#
        /// ));
        /// ```
        #[must_use]
        pub fn keyset<K: Keyset>(mut self, columns: K, after: Option<K::Values>) -> Self {
            page(&mut self.core, columns, after, false);
            self
        }

        /// Keyset pagination, descending: `ORDER BY columns DESC`, and with `after`
        /// `WHERE (columns) < (after)`.
        #[must_use]
        pub fn keyset_desc<K: Keyset>(mut self, columns: K, after: Option<K::Values>) -> Self {
            page(&mut self.core, columns, after, true);
            self
        }
    };
}

impl<T: Entity> Select<T> {
    keyset_builders!();
}

impl<C: Columns> SelectColumns<C> {
    keyset_builders!();
}
