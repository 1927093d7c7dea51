//! Loader options (SQLAlchemy's `sqlalchemy.orm` strategy options): [`selectinload`] runs one
//! extra `... WHERE fk = ANY($1)` query per relationship for all the objects a query returned,
//! and fills their [`Collection`](crate::Collection)s or [`Reference`](crate::Reference)s;
//! [`joinedload`] reads a relationship from a `LEFT OUTER JOIN` in the query itself (a
//! collection's parents come back once each); [`raiseload`] and [`noload`] load nothing. Either way the relationship is
//! then read without I/O.
//!
//! Options chain along a path, as SQLAlchemy's do: `selectinload(A::C.bs).selectinload(B::C.cs)`
//! loads `a.bs` and then `b.cs` for every `b` loaded; `.options(...)` gives one step several
//! options. The chain is typed: each step must start at the entity the previous one leads to.

mod joined_many;
mod many;
mod strategies;

use std::marker::PhantomData;

use futures::future::BoxFuture;
use tokio_postgres::Row;

use super::JoinOn;
use crate::connection::AsyncConnection;
use crate::error::Result;
use crate::identity::LoadTarget;
use crate::model::{AnyObj, Entity, Obj};

pub use many::ManyToMany;
use strategies::Next;
pub use strategies::{ManyToOne, OneToMany, OneToOne};

pub(crate) type LoadFn<T> = Box<
    dyn for<'a> Fn(
            &'a dyn LoadTarget,
            &'a mut AsyncConnection,
            &'a [Obj<T>],
        ) -> BoxFuture<'a, Result<()>>
        + Send
        + Sync,
>;

/// Fills a joined relationship from the rows' columns `offset..`, one row per object; returns
/// the distinct objects it loaded (for the options chained after it).
type ApplyFn<T> = Box<
    dyn Fn(&dyn LoadTarget, &[Row], usize, &[Obj<T>], &str) -> Result<Vec<AnyObj>> + Send + Sync,
>;

/// Runs the options chained after a joined load on the objects it loaded.
type AfterFn = Box<
    dyn for<'a> Fn(
            &'a dyn LoadTarget,
            &'a mut AsyncConnection,
            Vec<AnyObj>,
        ) -> BoxFuture<'a, Result<()>>
        + Send
        + Sync,
>;

/// A loader option for a query of `T`, as the query keeps it (from [`selectinload`],
/// [`joinedload`], [`raiseload`], [`noload`], or a chain of them).
pub struct Loader<T: Entity> {
    pub(crate) kind: LoaderKind<T>,
}

pub(crate) enum LoaderKind<T: Entity> {
    /// Runs after the query, with the objects it returned.
    Select(LoadFn<T>),
    /// Adds a join and columns to the query.
    Joined(Joined<T>),
}

pub(crate) struct Joined<T: Entity> {
    pub(crate) on: JoinOn,
    /// A many-to-many's first hop, to the link table (`on` then starts at the link table).
    pub(crate) via: Option<JoinOn>,
    /// A collection: the query's rows repeat each parent once per child.
    pub(crate) many: bool,
    pub(crate) apply: ApplyFn<T>,
    /// The options chained after it, if any.
    pub(crate) after: Option<AfterFn>,
    /// The same load as a select-in (where no join can be added: nested under a select-in).
    pub(crate) as_select: LoadFn<T>,
}

impl<T: Entity> Loader<T> {
    /// The load as one that runs after its query (a joined one becomes a select-in: the same
    /// objects, from one more query).
    pub(crate) fn into_select(self) -> LoadFn<T> {
        match self.kind {
            LoaderKind::Select(run) => run,
            LoaderKind::Joined(joined) => joined.as_select,
        }
    }
}

impl<T: Entity> std::fmt::Debug for Loader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Loader")
    }
}

/// A loader option whose path so far leads from `T` to `L` (SQLAlchemy's `Load`): chain the
/// next step with [`Load::selectinload`], [`Load::joinedload`], [`Load::raiseload`] or
/// [`Load::noload`], give this step several with [`Load::options`], or pass it where a
/// [`Loader<T>`] goes (`select::<T>().options(...)`, `GetOptions::options`,
/// `AsyncSession::load`).
#[must_use = "a loader option does nothing until it is given to a query"]
pub struct Load<T: Entity, L: Entity> {
    build: Box<dyn FnOnce(Vec<Loader<L>>) -> Loader<T> + Send + Sync>,
    next: Vec<Loader<L>>,
    _path: PhantomData<fn() -> L>,
}

impl<T: Entity, L: Entity> std::fmt::Debug for Load<T, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Load({} -> {})", T::TABLE.entity, L::TABLE.entity)
    }
}

impl<T: Entity, L: Entity> Load<T, L> {
    fn step<R: Entity>(
        self,
        then: impl FnOnce(Vec<Loader<R>>) -> Loader<L> + Send + Sync + 'static,
    ) -> Load<T, R> {
        let Load {
            build, mut next, ..
        } = self;
        Load {
            build: Box::new(move |subs| {
                next.push(then(subs));
                build(next)
            }),
            next: Vec::new(),
            _path: PhantomData,
        }
    }

    /// Then loads `relationship` of the `L` objects this step loaded, with one more query
    /// (`selectinload(A::C.bs).selectinload(B::C.cs)`).
    pub fn selectinload<R: IntoLoader<L>>(self, relationship: R) -> Load<T, R::Target> {
        self.step(move |subs| relationship.select_loader(subs))
    }

    /// Then loads `relationship` of the `L` objects this step
    /// loaded. Nested under a select-in step, where no join can be added to the query, it is
    /// loaded as a select-in: the same objects, from one more query.
    pub fn joinedload<R: JoinLoader<L>>(self, relationship: R) -> Load<T, R::Target> {
        self.step(move |subs| relationship.joined_loader(subs))
    }

    /// Then makes `relationship` of the `L` objects refuse to be read ([`raiseload`]).
    pub fn raiseload<R: IntoLoader<L>>(self, relationship: R) -> Load<T, L> {
        self.options(raiseload(relationship))
    }

    /// Then loads `relationship` of the `L` objects as empty, without SQL ([`noload`]).
    pub fn noload<R: IntoLoader<L>>(self, relationship: R) -> Load<T, L> {
        self.options(noload(relationship))
    }

    /// Adds options that start at `L` to this step (SQLAlchemy's
    /// `selectinload(A.bs).options(selectinload(B.cs), joinedload(B.d))`).
    pub fn options(mut self, loader: impl Into<Loader<L>>) -> Self {
        self.next.push(loader.into());
        self
    }
}

impl<T: Entity, L: Entity> From<Load<T, L>> for Loader<T> {
    fn from(load: Load<T, L>) -> Self {
        (load.build)(load.next)
    }
}

fn start<T: Entity, L: Entity>(
    build: impl FnOnce(Vec<Loader<L>>) -> Loader<T> + Send + Sync + 'static,
) -> Load<T, L> {
    Load {
        build: Box::new(build),
        next: Vec::new(),
        _path: PhantomData,
    }
}

/// Loads a relationship of every object a query returns with one extra query per chunk of
/// keys (SQLAlchemy's `selectinload`). Chain further steps on the result.
pub fn selectinload<T: Entity, R: IntoLoader<T>>(relationship: R) -> Load<T, R::Target> {
    start(move |subs| relationship.select_loader(subs))
}

/// Loads a relationship in the same query, from a `LEFT OUTER JOIN` of the other table under
/// the alias `table_N` (through the link table `link_N` for a many-to-many; SQLAlchemy's
/// `joinedload(B.a)`, `joinedload(A.bs)`). Objects already in the identity map are reused.
/// A collection's join repeats each parent once per child: the query returns each parent once
/// (SQLAlchemy's `unique()`, done for you), and a `LIMIT` / `OFFSET`, which would count rows
/// rather than parents, is refused with it (use [`selectinload`] there, which is also what
/// SQLAlchemy recommends for collections); a stream refuses it too (a chunk could split a
/// parent's children).
pub fn joinedload<T: Entity, R: JoinLoader<T>>(relationship: R) -> Load<T, R::Target> {
    start(move |subs| relationship.joined_loader(subs))
}

/// Leaves `relationship` unloaded on the objects a query returns, and makes reading it an
/// [`Error::RaiseLoad`](crate::Error::RaiseLoad) naming it (SQLAlchemy's `raiseload`:
/// "'A.bs' is not available due to lazy='raise'"), so that a code path which should not need
/// it is caught. An object whose relationship is loaded already keeps it.
pub fn raiseload<T: Entity, R: IntoLoader<T>>(relationship: R) -> Loader<T> {
    relationship.unloaded_loader(Unloaded::Raise)
}

/// Loads `relationship` as empty (an empty collection, a `None` reference) without SQL
/// (SQLAlchemy's `noload`). An object whose relationship is loaded already keeps it. Objects
/// added to such a collection are written as usual; deleting the parent then sees no
/// children but those, as with SQLAlchemy.
pub fn noload<T: Entity, R: IntoLoader<T>>(relationship: R) -> Loader<T> {
    relationship.unloaded_loader(Unloaded::Empty)
}

/// What [`raiseload`] and [`noload`] put in an unloaded relationship.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unloaded {
    /// Reading it is an error.
    Raise,
    /// Loaded, empty.
    Empty,
}

/// A relationship that can be loaded for objects of `T` (the derive's descriptors `A::C.bs`).
pub trait IntoLoader<T: Entity>: Send + Sync + 'static {
    /// The entity the relationship leads to.
    type Target: Entity;

    /// The select-in load, then `next` on the objects it loaded (plumbing).
    #[doc(hidden)]
    fn select_loader(self, next: Vec<Loader<Self::Target>>) -> Loader<T>;

    /// The raise / empty load (plumbing).
    #[doc(hidden)]
    fn unloaded_loader(self, how: Unloaded) -> Loader<T>;
}

/// A relationship [`joinedload`] can load from a join: every kind (a collection's parents come
/// back once each, however many children the join repeats them for).
pub trait JoinLoader<T: Entity>: IntoLoader<T> {
    /// The joined load, then `next` on the objects it loaded (plumbing).
    #[doc(hidden)]
    fn joined_loader(self, next: Vec<Loader<Self::Target>>) -> Loader<T>;
}

/// Runs `next` (options chained after a step) on the distinct `objects` the step loaded.
pub(crate) async fn run_next<C: Entity>(
    session: &dyn LoadTarget,
    conn: &mut AsyncConnection,
    next: &[LoadFn<C>],
    objects: &[Obj<C>],
) -> Result<()> {
    if objects.is_empty() {
        return Ok(());
    }
    for run in next {
        run(session, conn, objects).await?;
    }
    Ok(())
}
