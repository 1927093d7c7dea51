//! Running `INSERT` / `UPDATE` / `DELETE` on a session, and keeping the identity map in step
//! with the rows they changed (SQLAlchemy's `synchronize_session="fetch"`).

use futures::future::BoxFuture;
use tokio_postgres::Row;

use super::AsyncSession;
use super::events::StatementKind;
use super::query::{decode_rows, param_refs};
use crate::error::{Error, Result};
use crate::model::Entity;
use crate::model::{Obj, ObjectState};
use crate::result::{ColumnsResult, DmlResult};
use crate::statement::{
    Columns, Delete, Dml, DmlKind, DmlStatement, Insert, Returning, Term, Update,
};

use super::query::{Executable, ReturnsRows};

/// Expires every object of `T` unless disarmed: a statement dropped after the server may
/// have run it leaves no stale object behind.
struct ExpireOnDrop<'s, T: Entity> {
    session: &'s AsyncSession,
    armed: bool,
    _entity: std::marker::PhantomData<fn() -> T>,
}

impl<T: Entity> Drop for ExpireOnDrop<'_, T> {
    fn drop(&mut self) {
        if self.armed {
            let objects = self.session.state().identity.objects();
            for obj in objects.iter().filter(|o| o.downcast::<T>().is_some()) {
                obj.cell.expire(None);
            }
        }
    }
}

impl AsyncSession {
    /// Runs `dml` (autoflushing first) and returns the row count and the rows of its
    /// `RETURNING` list.
    async fn run_dml<T: Entity>(
        &self,
        dml: &Dml<T>,
        returning: &[Term],
        options: &crate::ExecutionOptions,
    ) -> Result<(u64, Vec<Row>)> {
        if let Some(message) = dml.error() {
            return Err(Error::InvalidRequest(message));
        }
        let mut conns = self.lock_conns()?;
        let engine = self.resolve_bind(Some(T::TABLE), Some(std::any::TypeId::of::<T>()), true)?;
        let kind = match dml.kind {
            DmlKind::Insert => StatementKind::Insert,
            DmlKind::Update => StatementKind::Update,
            DmlKind::Delete => StatementKind::Delete,
        };
        let options = options.over(&dml.options);
        self.prepare_statement(
            &mut conns,
            &engine,
            &options,
            super::query::About {
                sql: &|| dml.render(returning, false).0,
                kind,
                table: Some(T::TABLE),
            },
            None,
        )
        .await?;
        let conn = self.conn_for(&mut conns, &engine).await?;
        let sync = dml.synchronize && self.state().identity.holds::<T>();
        let (sql, params) = dml.render(returning, sync);
        let (params, cached) = (param_refs(&params), !dml.one_shot());
        if !sync && returning.is_empty() {
            let count = conn.execute_with(&sql, &params, cached).await?;
            return Ok((count, Vec::new()));
        }
        let mut guard = ExpireOnDrop::<T> {
            session: self,
            armed: sync,
            _entity: std::marker::PhantomData,
        };
        let rows = conn.query_with(&sql, &params, cached).await?;
        if sync {
            self.synchronize(dml, &rows, returning.len(), &sql)?;
        }
        guard.armed = false;
        Ok((rows.len() as u64, rows))
    }

    /// Applies the rows an UPDATE, DELETE or upsert changed (every column of `T` from
    /// `offset`) to the objects the session holds for them.
    fn synchronize<T: Entity>(
        &self,
        dml: &Dml<T>,
        rows: &[Row],
        offset: usize,
        sql: &str,
    ) -> Result<()> {
        let set: Vec<(usize, usize)> = dml
            .synchronized_columns()
            .into_iter()
            .map(|c| (c, offset + c))
            .collect();
        let mut state = self.state();
        for row in rows {
            let key = T::key_from_row(row, offset).map_err(|e| Error::row(e, row, sql))?;
            let Some(cell) = state.identity.get::<T>(&key) else {
                continue;
            };
            if dml.kind != DmlKind::Delete {
                let changed = cell
                    .data
                    .write()
                    .load_columns(&set, row)
                    .map_err(|e| Error::row(e, row, sql))?;
                cell.meta().touched = changed;
            }
            let obj = Obj::from_cell(cell).erase();
            match dml.kind {
                DmlKind::Update | DmlKind::Insert => state.innermost().updated.push(obj),
                DmlKind::Delete => {
                    crate::mapper::of(&obj).identity_remove(&obj, &mut state.identity);
                    {
                        let mut m = obj.meta();
                        m.status = ObjectState::Deleted;
                        m.marked_deleted = false;
                    }
                    let id = obj.cell.object_id();
                    state.deleted.retain(|o| o.cell.object_id() != id);
                    state.innermost().deleted.push(obj);
                }
            }
        }
        Ok(())
    }
}

macro_rules! dml_executable {
    ($($name:ident),*) => {$(
        impl<T: Entity> Executable for $name<T> {
            type Output = DmlResult;

            fn run(self, session: &AsyncSession) -> BoxFuture<'_, Result<DmlResult>> {
                Box::pin(async move {
                    let none = crate::ExecutionOptions::new();
                    let (rowcount, _) = session.run_dml(&self.dml, &[], &none).await?;
                    Ok(DmlResult { rowcount })
                })
            }

            fn options_mut(&mut self) -> &mut crate::ExecutionOptions {
                &mut self.dml.options
            }
        }
    )*};
}

dml_executable!(Insert, Update, Delete);

impl<S: DmlStatement, C: Columns> Executable for Returning<S, C> {
    type Output = ColumnsResult<C>;

    fn run(self, session: &AsyncSession) -> BoxFuture<'_, Result<ColumnsResult<C>>> {
        Box::pin(async move {
            let terms = self.columns.terms();
            let (_, rows) = session
                .run_dml(self.statement.dml(), &terms, &self.options)
                .await?;
            decode_rows::<C>(&rows, "RETURNING")
        })
    }

    fn options_mut(&mut self) -> &mut crate::ExecutionOptions {
        &mut self.options
    }
}

impl<S: DmlStatement, C: Columns> ReturnsRows for Returning<S, C> {
    type Scalar = Option<C::First>;
    type Scalars = crate::ScalarResult<C::First>;

    fn first(output: ColumnsResult<C>) -> Result<Option<C::First>> {
        Ok(output.scalar())
    }

    fn scalars(output: ColumnsResult<C>) -> Result<crate::ScalarResult<C::First>> {
        Ok(output.scalars())
    }
}
