//! Results with SQLAlchemy's API: [`ScalarResult`] (one value per row: `scalars()`),
//! [`EntityResult`] (what `execute(select(A))` returns), [`ColumnsResult`] (typed rows of
//! `select_columns` and `returning`), [`DmlResult`] (`rowcount` of an `INSERT` / `UPDATE` /
//! `DELETE`), and [`RowResult`] (rows of raw SQL).

use postgres_types::FromSqlOwned;
use tokio_postgres::Row;

use crate::error::{Error, Result};
use crate::from_row::FromRow;
use crate::model::Entity;
use crate::model::Obj;
use crate::statement::Columns;

/// One value per row (SQLAlchemy's `ScalarResult`).
#[derive(Debug, Clone)]
pub struct ScalarResult<T> {
    items: Vec<T>,
}

impl<T> ScalarResult<T> {
    pub(crate) fn new(items: Vec<T>) -> Self {
        ScalarResult { items }
    }

    /// Every value.
    pub fn all(self) -> Vec<T> {
        self.items
    }

    /// The first value, or `None` (the rest are discarded).
    pub fn first(self) -> Option<T> {
        self.items.into_iter().next()
    }

    /// Exactly one value.
    ///
    /// # Errors
    /// [`Error::NoResultFound`] ("No row was found when one was required") or
    /// [`Error::MultipleResultsFound`].
    pub fn one(self) -> Result<T> {
        self.one_or_none()?.ok_or(Error::NoResultFound)
    }

    /// At most one value.
    ///
    /// # Errors
    /// [`Error::MultipleResultsFound`].
    pub fn one_or_none(self) -> Result<Option<T>> {
        let mut items = self.items;
        match items.len() {
            0 => Ok(None),
            1 => Ok(items.pop()),
            _ => Err(Error::MultipleResultsFound),
        }
    }

    /// The values in chunks of `size` (SQLAlchemy's `partitions`).
    pub fn partitions(self, size: usize) -> Vec<Vec<T>> {
        let size = size.max(1);
        let mut out = Vec::new();
        let mut items = self.items.into_iter().peekable();
        while items.peek().is_some() {
            out.push(items.by_ref().take(size).collect());
        }
        out
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when there is no value.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl<T: Entity> ScalarResult<Obj<T>> {
    /// Drops repeated objects, keeping the first occurrence (SQLAlchemy's `unique()`).
    #[must_use]
    pub fn unique(mut self) -> Self {
        let mut kept: Vec<Obj<T>> = Vec::with_capacity(self.items.len());
        for obj in self.items.drain(..) {
            if !kept.iter().any(|k| k.ptr_eq(&obj)) {
                kept.push(obj);
            }
        }
        self.items = kept;
        self
    }
}

impl<T> IntoIterator for ScalarResult<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

/// The result of `execute(select(A))`: one entity per row (SQLAlchemy's `Result` of `(A,)`
/// rows); [`EntityResult::scalars`] is the usual way in.
#[derive(Debug, Clone)]
pub struct EntityResult<T: Entity> {
    objects: Vec<Obj<T>>,
}

impl<T: Entity> EntityResult<T> {
    pub(crate) fn new(objects: Vec<Obj<T>>) -> Self {
        EntityResult { objects }
    }

    /// The entities (SQLAlchemy's `result.scalars()`).
    pub fn scalars(self) -> ScalarResult<Obj<T>> {
        ScalarResult::new(self.objects)
    }

    /// The first row's entity (SQLAlchemy's `result.scalar()`).
    pub fn scalar(self) -> Option<Obj<T>> {
        self.objects.into_iter().next()
    }

    /// Every entity.
    pub fn all(self) -> Vec<Obj<T>> {
        self.objects
    }

    /// The first entity, or `None`.
    pub fn first(self) -> Option<Obj<T>> {
        self.scalar()
    }

    /// Exactly one entity.
    ///
    /// # Errors
    /// [`Error::NoResultFound`] or [`Error::MultipleResultsFound`].
    pub fn one(self) -> Result<Obj<T>> {
        self.scalars().one()
    }

    /// At most one entity.
    ///
    /// # Errors
    /// [`Error::MultipleResultsFound`].
    pub fn one_or_none(self) -> Result<Option<Obj<T>>> {
        self.scalars().one_or_none()
    }

    /// Drops repeated entities (SQLAlchemy's `unique()`).
    #[must_use]
    pub fn unique(self) -> Self {
        EntityResult {
            objects: self.scalars().unique().all(),
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// True when there is no row.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

/// Rows of raw SQL (`execute(text(...))`): read columns by index or name with `get` /
/// `try_get` on each [`Row`], decode them into structs with [`RowResult::rows_as`], and
/// read the number of rows a DML statement changed with [`RowResult::rowcount`].
#[derive(Debug)]
pub struct RowResult {
    rows: Vec<Row>,
    rowcount: u64,
}

impl RowResult {
    pub(crate) fn new(rows: Vec<Row>) -> Self {
        let rowcount = rows.len() as u64;
        RowResult { rows, rowcount }
    }

    pub(crate) fn with_rowcount(rows: Vec<Row>, rowcount: u64) -> Self {
        RowResult { rows, rowcount }
    }

    /// The number of rows the statement affected (SQLAlchemy's `result.rowcount`): for an
    /// `INSERT` / `UPDATE` / `DELETE` / `MERGE` without `RETURNING` the server's count, for
    /// one with `RETURNING` or a `SELECT` the number of rows returned, 0 for DDL.
    ///
    /// ```no_run
    /// # async fn demo(session: &session_core::AsyncSession) -> session_core::Result<()> {
    /// let done = session
    ///     .execute(session_core::text("UPDATE job SET state = 'done' WHERE state = $1").bind("ready"))
    ///     .await?;
    /// println!("{} jobs done", done.rowcount());
    /// # Ok(()) }
    /// ```
    pub fn rowcount(&self) -> u64 {
        self.rowcount
    }

    /// Every row decoded into `S` (a struct with `#[derive(FromRow)]`, fields matched to
    /// columns by name).
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] naming the column a field has no match for, or the column
    /// whose value does not decode as the field's type.
    ///
    /// ```no_run
    /// # async fn demo(session: &session_core::AsyncSession) -> session_core::Result<()> {
    /// #[derive(Debug, session_core::FromRow)]
    /// struct Sales {
    ///     author: String,
    ///     #[row(rename = "count")]
    ///     books: i64,
    /// }
    /// let sales: Vec<Sales> = session
    ///     .execute(session_core::text(
    ///         "SELECT a.name AS author, count(*) FROM author a JOIN book b ON b.author_id = a.id GROUP BY a.name",
    ///     ))
    ///     .await?
    ///     .rows_as::<Sales>()?;
    /// # Ok(()) }
    /// ```
    pub fn rows_as<S: FromRow>(&self) -> Result<Vec<S>> {
        self.rows.iter().map(S::from_row).collect()
    }

    /// Every row.
    pub fn all(self) -> Vec<Row> {
        self.rows
    }

    /// The first row, or `None`.
    pub fn first(self) -> Option<Row> {
        self.rows.into_iter().next()
    }

    /// Exactly one row.
    ///
    /// # Errors
    /// [`Error::NoResultFound`] or [`Error::MultipleResultsFound`].
    pub fn one(self) -> Result<Row> {
        ScalarResult::new(self.rows).one()
    }

    /// At most one row.
    ///
    /// # Errors
    /// [`Error::MultipleResultsFound`].
    pub fn one_or_none(self) -> Result<Option<Row>> {
        ScalarResult::new(self.rows).one_or_none()
    }

    /// The first column of the first row, or `None` without rows (SQLAlchemy's `scalar()`).
    ///
    /// # Errors
    /// The driver's error when the column does not decode as `T`.
    pub fn scalar<T: FromSqlOwned>(self) -> Result<Option<T>> {
        match self.rows.first() {
            Some(row) => row.try_get(0).map(Some).map_err(|e| Error::Statement {
                source: e,
                sql: None,
            }),
            None => Ok(None),
        }
    }

    /// The first column of every row (SQLAlchemy's `scalars()`).
    ///
    /// # Errors
    /// The driver's error when a value does not decode as `T`.
    pub fn scalars<T: FromSqlOwned>(self) -> Result<ScalarResult<T>> {
        self.rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<std::result::Result<Vec<T>, _>>()
            .map(ScalarResult::new)
            .map_err(|e| Error::Statement {
                source: e,
                sql: None,
            })
    }

    /// The rows in chunks of `size`.
    pub fn partitions(self, size: usize) -> Vec<Vec<Row>> {
        ScalarResult::new(self.rows).partitions(size)
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when there is no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Typed rows of [`select_columns`](crate::select_columns) or of a `returning(...)`: each row
/// is `C::Row`, a value or a tuple (SQLAlchemy's `Result` of `Row`s).
pub struct ColumnsResult<C: Columns> {
    rows: Vec<C::Row>,
}

impl<C: Columns> ColumnsResult<C> {
    pub(crate) fn new(rows: Vec<C::Row>) -> Self {
        ColumnsResult { rows }
    }

    /// Every row.
    pub fn all(self) -> Vec<C::Row> {
        self.rows
    }

    /// The first row, or `None`.
    pub fn first(self) -> Option<C::Row> {
        self.rows.into_iter().next()
    }

    /// Exactly one row.
    ///
    /// # Errors
    /// [`Error::NoResultFound`] or [`Error::MultipleResultsFound`].
    pub fn one(self) -> Result<C::Row> {
        ScalarResult::new(self.rows).one()
    }

    /// At most one row.
    ///
    /// # Errors
    /// [`Error::MultipleResultsFound`].
    pub fn one_or_none(self) -> Result<Option<C::Row>> {
        ScalarResult::new(self.rows).one_or_none()
    }

    /// The first column of the first row, or `None` without rows (SQLAlchemy's `scalar()`).
    pub fn scalar(self) -> Option<C::First> {
        self.first().map(C::first)
    }

    /// The first column of every row (SQLAlchemy's `scalars()`).
    pub fn scalars(self) -> ScalarResult<C::First> {
        ScalarResult::new(self.rows.into_iter().map(C::first).collect())
    }

    /// The rows in chunks of `size`.
    pub fn partitions(self, size: usize) -> Vec<Vec<C::Row>> {
        ScalarResult::new(self.rows).partitions(size)
    }

    /// Drops repeated rows, keeping the first occurrence (SQLAlchemy's `unique()`).
    #[must_use]
    pub fn unique(mut self) -> Self
    where
        C::Row: PartialEq,
    {
        let mut kept: Vec<C::Row> = Vec::with_capacity(self.rows.len());
        for row in self.rows.drain(..) {
            if !kept.contains(&row) {
                kept.push(row);
            }
        }
        self.rows = kept;
        self
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when there is no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

impl<C: Columns> IntoIterator for ColumnsResult<C> {
    type Item = C::Row;
    type IntoIter = std::vec::IntoIter<C::Row>;

    fn into_iter(self) -> Self::IntoIter {
        self.rows.into_iter()
    }
}

impl<C: Columns> std::fmt::Debug for ColumnsResult<C>
where
    C::Row: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.rows).finish()
    }
}

/// What an `INSERT`, `UPDATE` or `DELETE` without `RETURNING` gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmlResult {
    pub(crate) rowcount: u64,
}

impl DmlResult {
    /// The number of rows the statement matched (SQLAlchemy's `result.rowcount`).
    pub fn rowcount(&self) -> u64 {
        self.rowcount
    }
}
