//! `SELECT`: [`select`] of an entity, [`select_columns`] of columns and expressions, with
//! joins along relationships, `WHERE`, `GROUP BY` / `HAVING`, `ORDER BY`, `LIMIT` / `OFFSET`,
//! `DISTINCT` and row locks (`FOR UPDATE` / `FOR SHARE`, see [`RowLock`]).

use std::fmt;
use std::sync::Arc;

use super::columns::Columns;
use super::expr::{Expr, IntoColumn, Order, Term};
use super::loader::{Loader, LoaderKind};
use super::lock::RowLock;
use crate::model::{Entity, OwnedParam, Table};
use crate::sql::quote;

/// How a relationship joins its two tables (from `A::C.bs` / `B::C.a`; plumbing).
#[derive(Debug, Clone, Copy)]
pub struct JoinOn {
    /// The side the relationship starts from.
    pub(crate) from: &'static Table,
    pub(crate) from_column: usize,
    /// The side it leads to.
    pub(crate) target: &'static Table,
    pub(crate) target_column: usize,
}

impl JoinOn {
    /// `"target_alias"."col" = "from"."col"`.
    pub(crate) fn condition(&self, target_alias: &str) -> String {
        self.condition_from(target_alias, self.from.name)
    }

    /// `"target_alias"."col" = "from_alias"."col"` (a hop from an aliased table).
    pub(crate) fn condition_from(&self, target_alias: &str, from_alias: &str) -> String {
        format!(
            "{}.{} = {}.{}",
            quote(target_alias),
            quote(self.target.columns[self.target_column].name),
            quote(from_alias),
            quote(self.from.columns[self.from_column].name)
        )
    }
}

/// A relationship a query can join along (`select::<A>().join(A::C.bs)`).
pub trait Relation {
    /// The entity the relationship leads to.
    type Target: Entity;

    /// The join condition (plumbing): of the first hop, for a many-to-many.
    #[doc(hidden)]
    fn join_on(&self) -> JoinOn;

    /// Every hop of the join, in order (plumbing): one, or two through a many-to-many's link
    /// table.
    #[doc(hidden)]
    fn join_path(&self) -> Vec<JoinOn> {
        vec![self.join_on()]
    }
}

/// The clauses every `SELECT` shares.
#[derive(Default)]
pub(crate) struct QueryCore {
    from: Vec<&'static Table>,
    joins: Vec<(JoinOn, bool)>,
    /// Joins to aliased copies of a table ([`aliased`](crate::aliased)), with their alias.
    aliased_joins: Vec<(JoinOn, bool, &'static str)>,
    filters: Vec<Expr>,
    group_by: Vec<Term>,
    having: Vec<Expr>,
    order: Vec<Order>,
    limit: Option<i64>,
    offset: Option<i64>,
    lock: Option<RowLock>,
    distinct: bool,
    /// A mistake found while building (reported when the statement runs).
    pub(crate) error: Option<String>,
    /// The statement's execution options.
    pub(crate) options: crate::ExecutionOptions,
}

fn has(list: &[&'static Table], table: &'static Table) -> bool {
    list.iter().any(|t| t.is(table))
}

impl QueryCore {
    /// True when the statement has a `LIMIT` or an `OFFSET`.
    pub(crate) fn limits_rows(&self) -> bool {
        self.limit.is_some() || self.offset.is_some()
    }

    /// Run unplanned-ahead (see `Expr::binds_array`).
    pub(crate) fn one_shot(&self) -> bool {
        self.filters
            .iter()
            .chain(&self.having)
            .any(Expr::binds_array)
    }

    fn joined(&self) -> Vec<&'static Table> {
        self.joins.iter().map(|(on, _)| on.target).collect()
    }

    fn join(&mut self, on: JoinOn, outer: bool) {
        let joined = self.joined();
        let reachable = self.from.first().is_some_and(|t| t.is(on.from)) || has(&joined, on.from);
        if self.error.is_some() {
            return;
        }
        if !reachable {
            self.error = Some(format!(
                "Don't know how to join to {target}: the relationship starts at {from}, which is \
                 neither the first table of the FROM clause nor joined yet; select from {from} \
                 or join it first",
                target = on.target.name,
                from = on.from.name
            ));
        } else if on.target.is(on.from)
            || has(&joined, on.target)
            || self.from.first().is_some_and(|t| t.is(on.target))
        {
            self.error = Some(format!(
                "Can't join to {}: it is already in the FROM clause (a second copy of a table \
                 needs an alias: aliased::<T>(\"name\") and join_aliased)",
                on.target.name
            ));
        } else {
            self.from.retain(|t| !t.is(on.target));
            self.joins.push((on, outer));
        }
    }

    /// A join to the aliased copy `alias` of `on.target`, which may already be in the query
    /// (that is what the alias is for).
    fn join_aliased(&mut self, on: JoinOn, outer: bool, alias: &'static str) {
        if self.error.is_some() {
            return;
        }
        let joined = self.joined();
        let reachable = self.from.first().is_some_and(|t| t.is(on.from)) || has(&joined, on.from);
        let taken = self.aliased_joins.iter().any(|(_, _, a)| *a == alias)
            || self.from.iter().chain(&joined).any(|t| t.name == alias);
        if !reachable {
            self.error = Some(format!(
                "Don't know how to join to {alias}: the relationship starts at {from}, which is \
                 neither the first table of the FROM clause nor joined yet (a join from an \
                 alias is not supported)",
                from = on.from.name
            ));
        } else if taken {
            self.error = Some(format!(
                "The alias name {alias:?} is already used in this statement (by a table or \
                 another alias); give each alias its own name"
            ));
        } else {
            self.aliased_joins.push((on, outer, alias));
        }
    }

    /// Adds a `WHERE` (or, with `having`, a `HAVING`) condition, keeping the first mistake
    /// found in a raw fragment inside it.
    pub(crate) fn add_condition(&mut self, condition: Expr, having: bool) {
        if let (Some(e), None) = (condition.error(), &self.error) {
            self.error = Some(e);
        }
        if having {
            self.having.push(condition);
        } else {
            self.filters.push(condition);
        }
    }

    pub(crate) fn push_order(&mut self, order: Order) {
        self.order.push(order);
    }

    fn set_lock(&mut self, lock: RowLock) {
        if let (Some(e), None) = (lock.error(), &self.error) {
            self.error = Some(e);
        }
        self.lock = Some(lock);
    }

    /// `SELECT <list> FROM ...`, with `extra` joins (eager loads) after the query's own;
    /// `params` holds the parameters `list` already numbered.
    pub(crate) fn render(
        &self,
        list: &str,
        mut params: Vec<Arc<OwnedParam>>,
        list_tables: &[&'static Table],
        extra: &[String],
    ) -> (String, Vec<Arc<OwnedParam>>) {
        // Tables named anywhere but in neither FROM nor a join join the FROM (as in SQL and
        // SQLAlchemy: a cartesian product).
        let mut named: Vec<&'static Table> = list_tables.to_vec();
        self.filters.iter().for_each(|e| e.tables(&mut named));
        self.having.iter().for_each(|e| e.tables(&mut named));
        self.group_by.iter().for_each(|t| t.tables(&mut named));
        self.order.iter().for_each(|o| o.tables(&mut named));
        let joined = self.joined();
        let mut from = self.from.clone();
        for t in named {
            if !has(&from, t) && !has(&joined, t) {
                from.push(t);
            }
        }
        let mut sql = String::from("SELECT ");
        if self.distinct {
            sql.push_str("DISTINCT ");
        }
        sql.push_str(list);
        let mut items = from.iter().map(|t| quote(t.name));
        if let Some(first) = items.next() {
            sql.push_str(" FROM ");
            sql.push_str(&first);
            for (on, outer) in &self.joins {
                sql.push_str(if *outer {
                    " LEFT OUTER JOIN "
                } else {
                    " JOIN "
                });
                sql.push_str(&quote(on.target.name));
                sql.push_str(" ON ");
                sql.push_str(&on.condition(on.target.name));
            }
            for (on, outer, alias) in &self.aliased_joins {
                sql.push_str(if *outer {
                    " LEFT OUTER JOIN "
                } else {
                    " JOIN "
                });
                sql.push_str(&quote(on.target.name));
                sql.push_str(" AS ");
                sql.push_str(&quote(alias));
                sql.push_str(" ON ");
                sql.push_str(&on.condition(alias));
            }
            for join in extra {
                sql.push(' ');
                sql.push_str(join);
            }
            for item in items {
                sql.push_str(", ");
                sql.push_str(&item);
            }
        }
        let clause = |sql: &mut String,
                      params: &mut Vec<Arc<OwnedParam>>,
                      keyword: &str,
                      exprs: &[Expr],
                      sep: &str| {
            if !exprs.is_empty() {
                let parts: Vec<String> = exprs.iter().map(|e| e.render(params)).collect();
                sql.push_str(keyword);
                sql.push_str(&parts.join(sep));
            }
        };
        clause(&mut sql, &mut params, " WHERE ", &self.filters, " AND ");
        if !self.group_by.is_empty() {
            let parts: Vec<String> = self
                .group_by
                .iter()
                .map(|t| t.render(&mut params))
                .collect();
            sql.push_str(" GROUP BY ");
            sql.push_str(&parts.join(", "));
        }
        clause(&mut sql, &mut params, " HAVING ", &self.having, " AND ");
        if !self.order.is_empty() {
            let parts: Vec<String> = self.order.iter().map(|o| o.render(&mut params)).collect();
            sql.push_str(" ORDER BY ");
            sql.push_str(&parts.join(", "));
        }
        if let Some(n) = self.limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        if let Some(n) = self.offset {
            sql.push_str(&format!(" OFFSET {n}"));
        }
        if let Some(lock) = &self.lock {
            // PostgreSQL refuses to lock the nullable side of an outer join: unless the lock
            // names its tables, name every other table (SQLAlchemy's `with_for_update(of=...)`).
            let outer = !extra.is_empty() || self.joins.iter().any(|(_, outer)| *outer);
            let implied: Vec<&'static Table> = if outer && lock.of.is_empty() {
                from.iter()
                    .copied()
                    .chain(
                        self.joins
                            .iter()
                            .filter(|(_, outer)| !*outer)
                            .map(|(on, _)| on.target),
                    )
                    .collect()
            } else {
                Vec::new()
            };
            sql.push_str(&lock.sql(&implied));
        }
        (sql, params)
    }
}

/// The builder methods every `SELECT` has, delegating to its [`QueryCore`].
macro_rules! query_builders {
    () => {
        /// Execution options for this statement (SQLAlchemy's `execution_options(...)`),
        /// over the session's and the engine's; a call's (`execute_with`) win over these.
        #[must_use]
        pub fn execution_options(mut self, options: crate::ExecutionOptions) -> Self {
            self.core.options.absorb(options);
            self
        }

        /// Adds a `WHERE` condition (ANDed with the others; SQLAlchemy's `where` / `filter`).
        #[must_use]
        pub fn filter(mut self, condition: Expr) -> Self {
            self.core.add_condition(condition, false);
            self
        }

        /// Same as `filter`.
        #[must_use]
        pub fn where_(self, condition: Expr) -> Self {
            self.filter(condition)
        }

        /// `JOIN` along a relationship (SQLAlchemy's `join(A.bs)`): `select::<A>()
        /// .join(A::C.bs)` is `FROM a JOIN b ON b.a_id = a.id`. The relationship must start
        /// at the first table of the query or at one joined before.
        #[must_use]
        pub fn join(mut self, relationship: impl Relation) -> Self {
            for on in relationship.join_path() {
                self.core.join(on, false);
            }
            self
        }

        /// `LEFT OUTER JOIN` along a relationship (SQLAlchemy's `outerjoin`).
        #[must_use]
        pub fn outerjoin(mut self, relationship: impl Relation) -> Self {
            for on in relationship.join_path() {
                self.core.join(on, true);
            }
            self
        }

        /// `JOIN` along a relationship to an aliased copy of its target (SQLAlchemy's
        /// `join(parent_alias, Category.parent)`): `FROM category JOIN category AS parent ON
        /// parent.id = category.parent_id`. Name the alias's columns with
        /// [`Aliased::col`](crate::Aliased::col). The relationship must start at the first
        /// table of the query or at one joined before (not at an alias).
        #[must_use]
        pub fn join_aliased<R: Relation>(
            mut self,
            relationship: R,
            alias: &crate::Aliased<R::Target>,
        ) -> Self {
            let mut path = relationship.join_path();
            let last = path.pop();
            for on in path {
                self.core.join(on, false);
            }
            if let Some(on) = last {
                self.core.join_aliased(on, false, alias.name);
            }
            self
        }

        /// [`join_aliased`](Self::join_aliased) as a `LEFT OUTER JOIN`.
        #[must_use]
        pub fn outerjoin_aliased<R: Relation>(
            mut self,
            relationship: R,
            alias: &crate::Aliased<R::Target>,
        ) -> Self {
            let mut path = relationship.join_path();
            let last = path.pop();
            for on in path {
                self.core.join(on, true);
            }
            if let Some(on) = last {
                self.core.join_aliased(on, true, alias.name);
            }
            self
        }

        /// Adds a `GROUP BY` expression.
        #[must_use]
        pub fn group_by(mut self, column: impl IntoColumn) -> Self {
            self.core.group_by.push(column.term());
            self
        }

        /// Adds a `HAVING` condition (ANDed with the others).
        #[must_use]
        pub fn having(mut self, condition: Expr) -> Self {
            self.core.add_condition(condition, true);
            self
        }

        /// Adds an `ORDER BY` item.
        #[must_use]
        pub fn order_by(mut self, order: Order) -> Self {
            self.core.order.push(order);
            self
        }

        /// `LIMIT n`.
        #[must_use]
        pub fn limit(mut self, n: i64) -> Self {
            self.core.limit = Some(n);
            self
        }

        /// `OFFSET n`.
        #[must_use]
        pub fn offset(mut self, n: i64) -> Self {
            self.core.offset = Some(n);
            self
        }

        /// `SELECT DISTINCT`.
        #[must_use]
        pub fn distinct(mut self) -> Self {
            self.core.distinct = true;
            self
        }

        /// `FOR UPDATE` (SQLAlchemy's `with_for_update()`); [`with_lock`](Self::with_lock)
        /// takes `NOWAIT`, `SKIP LOCKED`, `OF` and `FOR SHARE`.
        #[must_use]
        pub fn with_for_update(self) -> Self {
            self.with_lock(RowLock::update())
        }

        /// A row lock clause (SQLAlchemy's `with_for_update(read=..., nowait=...,
        /// skip_locked=..., of=...)`), e.g. `.with_lock(RowLock::update().skip_locked())`
        /// or `.with_lock(RowLock::share().nowait())`.
        #[must_use]
        pub fn with_lock(mut self, lock: RowLock) -> Self {
            self.core.set_lock(lock);
            self
        }
    };
}

/// `SELECT` of entity `T` (SQLAlchemy's `select(A)`), built with chained calls.
pub struct Select<T: Entity> {
    pub(crate) core: QueryCore,
    pub(crate) loaders: Vec<Loader<T>>,
}

/// `select(A)`: every column of `T`, one object per row.
pub fn select<T: Entity>() -> Select<T> {
    Select {
        core: QueryCore {
            from: vec![T::TABLE],
            ..QueryCore::default()
        },
        loaders: Vec::new(),
    }
}

impl<T: Entity> Select<T> {
    query_builders!();

    /// Overwrite objects already in the identity map with the rows' values (SQLAlchemy's
    /// `execution_options(populate_existing=True)`).
    #[must_use]
    pub fn populate_existing(mut self) -> Self {
        self.core.options = self.core.options.clone().populate_existing(true);
        self
    }

    /// Ask for a server-side cursor (SQLAlchemy's `execution_options(stream_results=True)`):
    /// only [`AsyncSession::stream`](crate::AsyncSession::stream) runs such a statement.
    #[must_use]
    pub fn stream_results(mut self) -> Self {
        self.core.options = self.core.options.clone().stream_results(true);
        self
    }

    /// Adds a loader option: `selectinload(A::C.bs)`, `joinedload(B::C.a)`, a chain of them
    /// (`selectinload(A::C.bs).selectinload(B::C.cs)`), `raiseload(A::C.bs)`, `noload(...)`.
    #[must_use]
    pub fn options(mut self, loader: impl Into<Loader<T>>) -> Self {
        self.loaders.push(loader.into());
        self
    }

    /// Why this statement cannot load a collection with `joinedload` (a `LIMIT` / `OFFSET`
    /// counts the join's rows, not the parents), if it has one.
    pub(crate) fn joined_collection_error(&self, streamed: bool) -> Option<String> {
        let joined = self
            .loaders
            .iter()
            .any(|l| matches!(&l.kind, LoaderKind::Joined(j) if j.many));
        if !joined {
            return None;
        }
        if streamed {
            return Some(
                "joinedload of a collection cannot be streamed: a chunk of rows could split a \
                 parent's children; use selectinload, which loads each chunk's collections in \
                 one query"
                    .into(),
            );
        }
        self.core.limits_rows().then(|| {
            "joinedload of a collection with LIMIT / OFFSET would limit the join's rows, not the \
             parents (each parent comes once per child); use selectinload for the collection"
                .into()
        })
    }

    /// The SQL and its parameters. The entity's columns come first; each `joinedload` adds
    /// its table's columns after them, under the alias `table_N`.
    pub fn to_sql(&self) -> (String, Vec<Arc<OwnedParam>>) {
        let table = T::TABLE;
        let mut list: Vec<String> = table
            .columns
            .iter()
            .map(|c| format!("{}.{}", quote(table.name), quote(c.name)))
            .collect();
        let mut extra = Vec::new();
        for (n, loader) in self.loaders.iter().enumerate() {
            if let LoaderKind::Joined(joined) = &loader.kind {
                let target = joined.on.target;
                let alias = format!("{}_{}", target.name, n + 1);
                list.extend(
                    target
                        .columns
                        .iter()
                        .map(|c| format!("{}.{}", quote(&alias), quote(c.name))),
                );
                match &joined.via {
                    // A many-to-many: the link table, then the target from it.
                    Some(via) => {
                        let link = format!("{}_{}", via.target.name, n + 1);
                        extra.push(format!(
                            "LEFT OUTER JOIN {} AS {} ON {}",
                            quote(via.target.name),
                            quote(&link),
                            via.condition(&link)
                        ));
                        extra.push(format!(
                            "LEFT OUTER JOIN {} AS {} ON {}",
                            quote(target.name),
                            quote(&alias),
                            joined.on.condition_from(&alias, &link)
                        ));
                    }
                    None => extra.push(format!(
                        "LEFT OUTER JOIN {} AS {} ON {}",
                        quote(target.name),
                        quote(&alias),
                        joined.on.condition(&alias)
                    )),
                }
            }
        }
        self.core
            .render(&list.join(", "), Vec::new(), &[table], &extra)
    }
}

impl<T: Entity> fmt::Debug for Select<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_sql().0)
    }
}

/// `SELECT` of columns and expressions (SQLAlchemy's `select(A.id, func.count(B.id))`): rows
/// decode into `C::Row`, a value or a tuple.
pub struct SelectColumns<C: Columns> {
    pub(crate) core: QueryCore,
    pub(crate) columns: C,
    terms: Vec<Term>,
}

/// `select(A.id, A.data)`: one column expression or a tuple of up to eight, e.g.
/// `select_columns((A::C.id, A::C.data))` (rows are `(i32, String)`) or
/// `select_columns(func::count()).select_from::<A>()`.
pub fn select_columns<C: Columns>(columns: C) -> SelectColumns<C> {
    let terms = columns.terms();
    let mut from = Vec::new();
    terms.iter().for_each(|t| t.tables(&mut from));
    SelectColumns {
        core: QueryCore {
            from,
            ..QueryCore::default()
        },
        columns,
        terms,
    }
}

impl<C: Columns> SelectColumns<C> {
    query_builders!();

    /// Puts `T`'s table first in the `FROM` clause (SQLAlchemy's `select_from(A)`), for
    /// expressions that name no table (`func::count()`) or to start joins from it.
    #[must_use]
    pub fn select_from<T: Entity>(mut self) -> Self {
        self.core.from.retain(|t| !t.is(T::TABLE));
        self.core.from.insert(0, T::TABLE);
        self
    }

    /// The table the session picks its bind by.
    pub(crate) fn bind_table(&self) -> Option<&'static Table> {
        self.core.from.first().copied()
    }

    /// The SQL and its parameters.
    pub fn to_sql(&self) -> (String, Vec<Arc<OwnedParam>>) {
        let mut params = Vec::new();
        let list: Vec<String> = self.terms.iter().map(|t| t.render(&mut params)).collect();
        self.core.render(&list.join(", "), params, &[], &[])
    }
}

impl<C: Columns> fmt::Debug for SelectColumns<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_sql().0)
    }
}
