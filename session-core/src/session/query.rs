//! Running statements on a session: `execute`, `scalars`, `scalar`, `stream`,
//! `stream_scalars`. Queries autoflush first and return entities through the identity map.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::Stream;
use futures::future::BoxFuture;
use postgres_types::FromSqlOwned;
use tokio_postgres::Row;

use super::events::StatementKind;
use super::{AsyncSession, Bound, lock};
use crate::connection::{AsyncConnection, Param};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::exec_options::ExecutionOptions;
use crate::identity::load_into;
use crate::model::Obj;
use crate::model::Table;
use crate::model::{Entity, OwnedParam};
use crate::result::{ColumnsResult, EntityResult, RowResult, ScalarResult};
use crate::statement::{Columns, Select, SelectColumns, Text};
use crate::statement::{Loader, LoaderKind};

/// Rows fetched per round trip by `stream` / `stream_scalars`.
pub const STREAM_CHUNK: usize = 1000;

static NEXT_CURSOR: AtomicU64 = AtomicU64::new(1);

/// A statement a session can run: [`Select`] (entities), [`SelectColumns`] (typed rows),
/// [`Text`] (rows), [`Insert`](crate::Insert) / [`Update`](crate::Update) /
/// [`Delete`](crate::Delete) (a row count) and their [`Returning`](crate::Returning) forms.
pub trait Executable: Send + Sized {
    /// What `execute` returns.
    type Output: Send;

    /// Runs the statement on `session` (use [`AsyncSession::execute`]).
    #[doc(hidden)]
    fn run(self, session: &AsyncSession) -> BoxFuture<'_, Result<Self::Output>>;

    /// The statement's execution options (use `.execution_options(...)` or
    /// [`AsyncSession::execute_with`]).
    #[doc(hidden)]
    fn options_mut(&mut self) -> &mut ExecutionOptions;
}

/// A statement that returns rows, so that `scalar` and `scalars` apply. An `UPDATE` without
/// `RETURNING` is not one: where SQLAlchemy raises "This result object does not return rows"
/// at run time, here `session.scalar(update::<A>()...)` does not compile.
#[diagnostic::on_unimplemented(
    message = "`{Self}` returns no rows, so `scalar` / `scalars` cannot read one",
    label = "returns no rows",
    note = "add `.returning(...)` to an insert / update / delete, or run it with `execute(...)` and read `rowcount()`"
)]
pub trait ReturnsRows: Executable {
    /// What `scalar` returns.
    type Scalar: Send;
    /// What `scalars` returns.
    type Scalars: Send;

    /// The first value of the output.
    #[doc(hidden)]
    fn first(output: Self::Output) -> Result<Self::Scalar>;

    /// The first value of every row.
    #[doc(hidden)]
    fn scalars(output: Self::Output) -> Result<Self::Scalars>;
}

/// The first column of one row of raw SQL (what `scalar(text(...))` returns, and each item of
/// `scalars(text(...))`).
#[derive(Debug)]
pub struct Value(Option<Row>);

impl Value {
    /// The value.
    ///
    /// # Errors
    /// [`Error::NoResultFound`] without a row; the driver's error when it does not decode.
    pub fn get<T: FromSqlOwned>(self) -> Result<T> {
        self.opt()?.ok_or(Error::NoResultFound)
    }

    /// The value, `None` without a row.
    ///
    /// # Errors
    /// The driver's error when it does not decode as `T`.
    pub fn opt<T: FromSqlOwned>(self) -> Result<Option<T>> {
        self.0
            .map(|row| row.try_get(0))
            .transpose()
            .map_err(|e| Error::Statement {
                source: e,
                sql: None,
            })
    }
}

pub(crate) fn param_refs(params: &[Arc<OwnedParam>]) -> Vec<Param<'_>> {
    params.iter().map(|p| &***p as Param<'_>).collect()
}

/// Objects for the rows of a select of `T`, with its eager loads done.
async fn materialize<T: Entity>(
    session: &AsyncSession,
    conn: &mut AsyncConnection,
    rows: &[Row],
    sql: &str,
    populate: bool,
    loaders: &[Loader<T>],
) -> Result<Vec<Obj<T>>> {
    let mut objects = load_into::<T, _>(session, rows, 0, sql, populate)?;
    let mut offset = T::TABLE.columns.len();
    let mut repeats = false;
    for loader in loaders {
        match &loader.kind {
            LoaderKind::Joined(joined) => {
                let loaded = (joined.apply)(session, rows, offset, &objects, sql)?;
                offset += joined.on.target.columns.len();
                repeats |= joined.many;
                if let Some(after) = &joined.after {
                    after(session, conn, loaded).await?;
                }
            }
            LoaderKind::Select(run) => run(session, conn, &objects).await?,
        }
    }
    if repeats {
        // A joined collection repeats each parent per child: each comes back once, in the
        // order of its first row (SQLAlchemy's `unique()`).
        let mut seen = std::collections::HashSet::new();
        objects.retain(|o| seen.insert(o.cell.id));
    }
    Ok(objects)
}

fn check_built(error: &Option<String>) -> Result<()> {
    match error {
        Some(message) => Err(Error::InvalidRequest(message.clone())),
        None => Ok(()),
    }
}

/// A select whose WHERE a `do_orm_execute` listener may extend.
trait SelectLike: Sync {
    fn core(&self) -> &crate::statement::QueryCore;
    fn core_mut(&mut self) -> &mut crate::statement::QueryCore;
    fn sql(&self) -> (String, Vec<Arc<OwnedParam>>);
}

impl<T: Entity> SelectLike for Select<T> {
    fn core(&self) -> &crate::statement::QueryCore {
        &self.core
    }
    fn core_mut(&mut self) -> &mut crate::statement::QueryCore {
        &mut self.core
    }
    fn sql(&self) -> (String, Vec<Arc<OwnedParam>>) {
        self.to_sql()
    }
}

impl<C: Columns> SelectLike for SelectColumns<C> {
    fn core(&self) -> &crate::statement::QueryCore {
        &self.core
    }
    fn core_mut(&mut self) -> &mut crate::statement::QueryCore {
        &mut self.core
    }
    fn sql(&self) -> (String, Vec<Arc<OwnedParam>>) {
        self.to_sql()
    }
}

/// [`AsyncSession::prepare_statement`] for a select: the criteria listeners add go into its
/// WHERE; returns its SQL, parameters and effective options.
async fn prepare_select<S: SelectLike>(
    session: &AsyncSession,
    conns: &mut Vec<Bound>,
    engine: &Engine,
    statement: &mut S,
    table: Option<&'static Table>,
) -> Result<(String, Vec<Arc<OwnedParam>>, ExecutionOptions)> {
    let (sql, params) = statement.sql();
    let mut criteria = Vec::new();
    let options = session
        .prepare_statement(
            conns,
            engine,
            &statement.core().options,
            About {
                sql: &|| sql.clone(),
                kind: StatementKind::Select,
                table,
            },
            Some(&mut criteria),
        )
        .await?;
    if criteria.is_empty() {
        return Ok((sql, params, options));
    }
    for condition in criteria {
        statement.core_mut().add_condition(condition, false);
    }
    check_built(&statement.core().error)?;
    let (sql, params) = statement.sql();
    Ok((sql, params, options))
}

impl<T: Entity> Executable for Select<T> {
    type Output = EntityResult<T>;

    fn run(mut self, session: &AsyncSession) -> BoxFuture<'_, Result<EntityResult<T>>> {
        Box::pin(async move {
            check_built(&self.core.error)?;
            check_built(&self.joined_collection_error(false))?;
            let mut conns = session.lock_conns()?;
            let engine =
                session.resolve_bind(Some(T::TABLE), Some(std::any::TypeId::of::<T>()), false)?;
            let (sql, params, options) =
                prepare_select(session, &mut conns, &engine, &mut self, Some(T::TABLE)).await?;
            if options.get_stream_results() == Some(true) {
                return Err(Error::InvalidRequest(
                    "Can't use the AsyncSession.execute() method with a server-side cursor. Use \
                     the AsyncSession.stream() method for an async streaming result set."
                        .into(),
                ));
            }
            let conn = session.conn_for_read(&mut conns, &engine, &sql).await?;
            let rows = conn
                .query_with(&sql, &param_refs(&params), !self.core.one_shot())
                .await?;
            let objects = materialize(
                session,
                conn,
                &rows,
                &sql,
                options.get_populate_existing().unwrap_or(false),
                &self.loaders,
            )
            .await?;
            Ok(EntityResult::new(objects))
        })
    }

    fn options_mut(&mut self) -> &mut ExecutionOptions {
        &mut self.core.options
    }
}

impl<T: Entity> ReturnsRows for Select<T> {
    type Scalar = Option<Obj<T>>;
    type Scalars = ScalarResult<Obj<T>>;

    fn first(output: EntityResult<T>) -> Result<Option<Obj<T>>> {
        Ok(output.scalar())
    }

    fn scalars(output: EntityResult<T>) -> Result<ScalarResult<Obj<T>>> {
        Ok(output.scalars())
    }
}

impl<C: Columns> Executable for SelectColumns<C> {
    type Output = ColumnsResult<C>;

    fn run(mut self, session: &AsyncSession) -> BoxFuture<'_, Result<ColumnsResult<C>>> {
        Box::pin(async move {
            check_built(&self.core.error)?;
            let mut conns = session.lock_conns()?;
            let entity = self.columns.entity();
            let table = self.bind_table().or(entity.map(|(t, _)| t));
            let engine = session.resolve_bind(table, entity.map(|(_, id)| id), false)?;
            let (sql, params, _) =
                prepare_select(session, &mut conns, &engine, &mut self, table).await?;
            let conn = session.conn_for_read(&mut conns, &engine, &sql).await?;
            let rows = conn
                .query_with(&sql, &param_refs(&params), !self.core.one_shot())
                .await?;
            decode_rows::<C>(&rows, &sql)
        })
    }

    fn options_mut(&mut self) -> &mut ExecutionOptions {
        &mut self.core.options
    }
}

/// Decodes typed rows.
pub(crate) fn decode_rows<C: Columns>(rows: &[Row], sql: &str) -> Result<ColumnsResult<C>> {
    rows.iter()
        .map(|row| C::decode(row, 0).map_err(|e| Error::row(e, row, sql)))
        .collect::<Result<Vec<_>>>()
        .map(ColumnsResult::new)
}

impl<C: Columns> ReturnsRows for SelectColumns<C> {
    type Scalar = Option<C::First>;
    type Scalars = ScalarResult<C::First>;

    fn first(output: ColumnsResult<C>) -> Result<Option<C::First>> {
        Ok(output.scalar())
    }

    fn scalars(output: ColumnsResult<C>) -> Result<ScalarResult<C::First>> {
        Ok(output.scalars())
    }
}

impl Executable for Text {
    type Output = RowResult;

    fn run(self, session: &AsyncSession) -> BoxFuture<'_, Result<RowResult>> {
        Box::pin(async move {
            let mut conns = session.lock_conns()?;
            let engine = session.resolve_bind(None, None, false)?;
            session
                .prepare_statement(
                    &mut conns,
                    &engine,
                    &self.options,
                    About {
                        sql: &|| self.sql.clone(),
                        kind: StatementKind::Text,
                        table: None,
                    },
                    None,
                )
                .await?;
            let conn = session
                .conn_for_read(&mut conns, &engine, &self.sql)
                .await?;
            let params: Vec<Param<'_>> = self.params.iter().map(|p| &**p as Param<'_>).collect();
            // A statement without result columns (DML without RETURNING, DDL) runs as an
            // execute, whose command tag gives the row count; the prepare is cached, so this
            // costs no extra round trip the second time.
            let statement = conn.prepare(&self.sql).await?;
            if statement.columns().is_empty() {
                let rowcount = conn.execute(&self.sql, &params).await?;
                return Ok(RowResult::with_rowcount(Vec::new(), rowcount));
            }
            let rows = conn.query(&self.sql, &params).await?;
            Ok(RowResult::new(rows))
        })
    }

    fn options_mut(&mut self) -> &mut ExecutionOptions {
        &mut self.options
    }
}

impl ReturnsRows for Text {
    type Scalar = Value;
    type Scalars = ScalarResult<Value>;

    fn first(output: RowResult) -> Result<Value> {
        Ok(Value(output.first()))
    }

    fn scalars(output: RowResult) -> Result<ScalarResult<Value>> {
        Ok(ScalarResult::new(
            output
                .all()
                .into_iter()
                .map(|row| Value(Some(row)))
                .collect(),
        ))
    }
}

/// What `do_orm_execute` listeners are told of a statement: its SQL (made only when a
/// listener asks), kind and entity table.
pub(crate) struct About<'a> {
    pub(crate) sql: &'a (dyn Fn() -> String + Sync),
    pub(crate) kind: StatementKind,
    pub(crate) table: Option<&'static Table>,
}

/// Objects streamed from a server-side cursor (from [`AsyncSession::stream_scalars`]).
pub type ObjStream<T> = Pin<Box<dyn Stream<Item = Result<Obj<T>>> + Send>>;

impl AsyncSession {
    /// The options a statement runs with: the engine's, under the session's, under the
    /// statement's (and the call's, merged into it), as `do_orm_execute` listeners leave them;
    /// then the autoflush they ask for, and their isolation level applied to the transaction.
    pub(crate) async fn prepare_statement(
        &self,
        conns: &mut Vec<Bound>,
        engine: &Engine,
        statement: &ExecutionOptions,
        about: About<'_>,
        criteria: Option<&mut Vec<crate::statement::Expr>>,
    ) -> Result<ExecutionOptions> {
        let About { sql, kind, table } = about;
        let options = {
            let config = lock(&self.inner.config);
            if statement.is_empty()
                && config.execution_options.is_empty()
                && engine.execution_options().is_empty()
            {
                ExecutionOptions::new()
            } else {
                statement.over(&config.execution_options.over(engine.execution_options()))
            }
        };
        let (options, added) = self.fire_execute(sql, kind, table, options)?;
        if !added.is_empty() {
            match criteria {
                Some(criteria) => criteria.extend(added),
                None => {
                    return Err(Error::InvalidRequest(format!(
                        "a do_orm_execute listener added criteria to a {kind:?} statement; \
                         add_criteria applies to selects only"
                    )));
                }
            }
        }
        self.check_statement_tenant(engine, &options)?;
        let flush = {
            let state = self.state();
            state.check_usable()?;
            state.autoflush && options.get_autoflush() != Some(false) && self.has_changes(&state)
        };
        if flush {
            self.flush_locked(conns).await?;
        }
        if let Some(level) = options.get_isolation_level() {
            self.apply_isolation(conns, engine, level)?;
        }
        Ok(options)
    }

    /// Makes `level` the isolation level of the transaction: set for its `BEGIN` when no
    /// connection has begun it yet; refused when it began at another level.
    fn apply_isolation(
        &self,
        conns: &[Bound],
        engine: &Engine,
        level: crate::IsolationLevel,
    ) -> Result<()> {
        let configured = lock(&self.inner.config).transaction_options;
        let mut state = self.state();
        state.check_autobegin()?;
        let current = state
            .root_options()
            .or(configured)
            .or(engine.transaction_options())
            .get_isolation_level();
        if conns.is_empty() {
            let root = &mut state.autobegin()[0];
            root.options = root.options.isolation_level(level);
            return Ok(());
        }
        let effective = current.unwrap_or(crate::IsolationLevel::ReadCommitted);
        if effective == level {
            return Ok(());
        }
        Err(Error::InvalidRequest(format!(
            "isolation_level {level} can't apply to this statement: the session's transaction \
             already began at {effective}, and PostgreSQL fixes the level at the transaction's \
             first statement; give it on the transaction's first statement, with \
             begin_with(...), or in the session's transaction_options"
        )))
    }

    /// Implements [`AsyncSession::execute`].
    pub(crate) async fn execute_impl<Q: Executable>(&self, statement: Q) -> Result<Q::Output> {
        let out = statement.run(self).await?;
        self.fire_pending()?;
        Ok(out)
    }

    /// Implements [`AsyncSession::execute_with`].
    pub(crate) async fn execute_with_impl<Q: Executable>(
        &self,
        mut statement: Q,
        options: ExecutionOptions,
    ) -> Result<Q::Output> {
        statement.options_mut().absorb(options);
        self.execute_impl(statement).await
    }

    /// Implements [`AsyncSession::scalars`].
    pub(crate) async fn scalars_impl<Q: ReturnsRows>(&self, statement: Q) -> Result<Q::Scalars> {
        Q::scalars(self.execute(statement).await?)
    }

    /// Implements [`AsyncSession::scalar`].
    pub(crate) async fn scalar_impl<Q: ReturnsRows>(&self, statement: Q) -> Result<Q::Scalar> {
        Q::first(self.execute(statement).await?)
    }

    /// Implements [`AsyncSession::stream_scalars`].
    pub(crate) async fn stream_scalars_impl<T: Entity>(
        &self,
        mut statement: Select<T>,
    ) -> Result<ObjStream<T>> {
        check_built(&statement.core.error)?;
        check_built(&statement.joined_collection_error(true))?;
        let mut conns = self.lock_conns()?;
        let engine = self.resolve_bind(Some(T::TABLE), Some(std::any::TypeId::of::<T>()), false)?;
        let (sql, params, options) =
            prepare_select(self, &mut conns, &engine, &mut statement, Some(T::TABLE)).await?;
        let chunk = options.get_yield_per().unwrap_or(STREAM_CHUNK);
        self.conn_for(&mut conns, &engine).await?;
        let index = conns
            .iter()
            .position(|b| b.engine.same_pool(&engine))
            .unwrap_or(0);
        let conn = &mut conns[index].conn;
        let cursor = format!("sa_cursor_{}", NEXT_CURSOR.fetch_add(1, Ordering::Relaxed));
        let declare = format!("DECLARE {cursor} NO SCROLL CURSOR WITHOUT HOLD FOR {sql}");
        conn.execute_uncached(&declare, &param_refs(&params))
            .await?;
        let fetch = format!("FETCH {chunk} FROM {cursor}");
        struct State<T: Entity> {
            conns: super::ConnsGuard,
            index: usize,
            session: AsyncSession,
            fetch: String,
            populate: bool,
            chunk: usize,
            loaders: Vec<Loader<T>>,
            buffer: VecDeque<Obj<T>>,
            done: bool,
        }
        let state = State {
            conns,
            index,
            session: self.handle(),
            fetch,
            populate: options.get_populate_existing().unwrap_or(false),
            chunk,
            loaders: statement.loaders,
            buffer: VecDeque::new(),
            done: false,
        };
        let stream = futures::stream::unfold(state, |mut st| async move {
            loop {
                if let Some(obj) = st.buffer.pop_front() {
                    return Some((Ok(obj), st));
                }
                if st.done {
                    return None;
                }
                if st
                    .session
                    .inner
                    .close_requested
                    .load(std::sync::atomic::Ordering::Acquire)
                {
                    st.done = true;
                    return Some((
                        Err(Error::Closed(
                            "the session was closed while this stream was open".into(),
                        )),
                        st,
                    ));
                }
                // Loading the next rows locks their objects: never while the caller holds a
                // guard (drop it and poll again).
                if let Err(e) = crate::model::check_none_held("ObjStream::next") {
                    return Some((Err(e), st));
                }
                let conn = &mut st.conns[st.index].conn;
                let rows = match conn.query_uncached(&st.fetch, &[]).await {
                    Ok(rows) => rows,
                    Err(e) => {
                        st.done = true;
                        return Some((Err(e), st));
                    }
                };
                if rows.len() < st.chunk {
                    st.done = true;
                }
                let conn = &mut st.conns[st.index].conn;
                let loaded = materialize(
                    &st.session,
                    conn,
                    &rows,
                    &st.fetch,
                    st.populate,
                    &st.loaders,
                )
                .await;
                match loaded {
                    Ok(objs) => st.buffer.extend(objs),
                    Err(e) => {
                        st.done = true;
                        return Some((Err(e), st));
                    }
                }
            }
        });
        Ok(Box::pin(stream))
    }

    /// Implements [`AsyncSession::stream`].
    pub(crate) async fn stream_impl<T: Entity>(
        &self,
        statement: Select<T>,
    ) -> Result<ObjStream<T>> {
        self.stream_scalars(statement).await
    }
}
