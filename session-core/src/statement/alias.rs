//! [`aliased`]: a second copy of an entity's table in one statement, under a name of its own
//! (SQLAlchemy's `aliased(Category, name="parent")`), so that a self-referential model can be
//! queried against itself: a category joined to its parent.

use std::fmt;
use std::marker::PhantomData;

use super::expr::{Col, ColumnExpr, Kind, Term};
use crate::model::{ColumnType, Entity};

/// An aliased copy of `T`'s table (from [`aliased`]): join it with
/// `select::<T>().join_aliased(T::C.parent, &parent)` and name its columns with
/// [`Aliased::col`]. It loads no objects: select its columns with `select_columns`.
pub struct Aliased<T: Entity> {
    pub(crate) name: &'static str,
    _entity: PhantomData<fn() -> T>,
}

impl<T: Entity> Clone for Aliased<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Entity> Copy for Aliased<T> {}

impl<T: Entity> fmt::Debug for Aliased<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "aliased({}, name={:?})", T::TABLE.entity, self.name)
    }
}

/// A copy of `T`'s table under `name` (SQLAlchemy's `aliased(T, name=...)`), for a statement
/// that needs the table twice.
///
/// ```
/// # use session_core::{Entity, Reference, aliased, select_columns};
/// #[derive(Debug, Clone, Default, Entity)]
/// #[entity(table = "category")]
/// struct Category {
///     #[entity(primary_key)] id: i32,
///     #[entity(foreign_key = "category.id")] parent_id: Option<i32>,
///     name: String,
///     #[entity(relationship(foreign_key = "parent_id"))] parent: Reference<Category>,
/// }
/// let parent = aliased::<Category>("parent");
/// let stmt = select_columns((Category::C.name, parent.col(Category::C.name)))
///     .join_aliased(Category::C.parent, &parent)
///     .filter(parent.col(Category::C.name).eq("tools".to_string()));
/// assert_eq!(
///     format!("{stmt:?}"),
///     "SELECT \"category\".\"name\", \"parent\".\"name\" FROM \"category\" \
///      JOIN \"category\" AS \"parent\" ON \"parent\".\"id\" = \"category\".\"parent_id\" \
///      WHERE \"parent\".\"name\" = $1"
/// );
/// ```
pub fn aliased<T: Entity>(name: &'static str) -> Aliased<T> {
    Aliased {
        name,
        _entity: PhantomData,
    }
}

impl<T: Entity> Aliased<T> {
    /// The alias's copy of `column` (`"parent"."name"`), for select lists, filters and order.
    pub fn col<V: ColumnType>(&self, column: Col<T, V>) -> ColumnExpr<V> {
        ColumnExpr::new(Term(Kind::Aliased {
            alias: self.name,
            table: T::TABLE,
            index: column.index(),
        }))
    }

    /// The alias's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl<V: ColumnType> ColumnExpr<V> {
    /// The same expression read as `Option<V>`: for a column of the nullable side of an outer
    /// join (`outerjoin_aliased`), which is NULL where nothing matched.
    pub fn nullable(self) -> ColumnExpr<Option<V>>
    where
        Option<V>: ColumnType,
    {
        ColumnExpr::new(self.term)
    }
}
