//! [`FromRow`]: rows of raw SQL decoded into user structs, by column name.

use postgres_types::FromSqlOwned;
use tokio_postgres::Row;

use crate::error::{Error, Result};

/// A struct built from one row by column name: derive it with `#[derive(FromRow)]` and read
/// rows with [`RowResult::rows_as`](crate::RowResult::rows_as).
///
/// Each named field reads the column of its name (`#[row(rename = "sql_name")]` for
/// another); its type is any type the driver decodes (`Option<T>` for a nullable column).
/// Columns no field names are ignored.
///
/// ```
/// #[derive(Debug, session_core::FromRow)]
/// struct Report {
///     id: i32,
///     #[row(rename = "total_count")]
///     total: i64,
///     note: Option<String>,
/// }
/// ```
pub trait FromRow: Sized {
    /// The struct for `row`.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] naming the column a field has no match for (with the
    /// row's columns), or the column whose value does not decode as the field's type.
    fn from_row(row: &Row) -> Result<Self>;
}

/// Column `column` of `row` as field `field` of `target` (what the derive calls).
///
/// # Errors
/// As [`FromRow::from_row`].
pub fn column<T: FromSqlOwned>(row: &Row, column: &str, target: &str, field: &str) -> Result<T> {
    let Some(index) = row.columns().iter().position(|c| c.name() == column) else {
        let names: Vec<&str> = row.columns().iter().map(|c| c.name()).collect();
        return Err(Error::InvalidRequest(format!(
            "{target}::{field}: the row has no column \"{column}\" (its columns: {}); name the \
             column in the query (`AS {column}`) or map the field with #[row(rename = \"...\")]",
            names.join(", ")
        )));
    };
    row.try_get(index).map_err(|e| {
        let sql_type = row.columns()[index].type_().name();
        Error::InvalidRequest(format!(
            "{target}::{field}: column \"{column}\" ({sql_type}) does not decode as `{}`: {e}",
            std::any::type_name::<T>()
        ))
    })
}
