//! SQLAlchemy's session stack, in Rust, on tokio-postgres.
//!
//! This crate holds the engine (a bb8 pool of tokio-postgres connections), connections and
//! transactions, and the error type. The session, the identity map and the unit of work build on
//! them.
//!
//! ```no_run
//! # async fn demo() -> session_core::Result<()> {
//! let engine = session_core::create_async_engine("postgresql://postgres@localhost/test")?;
//! let mut conn = engine.connect().await?;
//! let tx = conn.begin().await?;
//! // ... statements through `tx` ...
//! tx.commit().await?;
//! let answer: i32 = conn.scalar("SELECT $1::int + 1", &[&41]).await?;
//! assert_eq!(answer, 42);
//! conn.close().await;
//! engine.dispose().await;
//! # Ok(()) }
//! ```
//!
//! # Behavior
//!
//! - Creating an [`Engine`] opens no connection; the pool connects on the first checkout.
//! - A checkout fails fast with [`Error::Connect`] when the server cannot be reached and the
//!   pool has no connection, and with [`Error::PoolTimeout`] when every connection stays
//!   checked out for the checkout timeout; it never hangs.
//! - Statements autocommit unless a transaction is open; [`AsyncConnection::commit`] without
//!   one does nothing (SQLAlchemy autobegins a transaction on a connection instead: here
//!   `rollback()` cannot undo statements that ran outside `begin()`).
//! - Each connection caches its prepared statements: a repeated statement costs one round trip.
//! - With [`EngineBuilder::echo`], every statement is logged through `tracing` at INFO under
//!   the target `session_core::echo`, with its parameters, row count and elapsed time.
//!
//! # Cancel safety
//!
//! Every future here may be dropped at any `.await`. No connection goes back to the pool with a
//! transaction open: a connection that may have one is rolled back before reuse, or discarded.

pub mod blocking;

mod connection;
mod engine;
mod error;
mod exec_options;
mod factory;
mod failover;
mod flush;
mod from_row;
mod identity;
mod mapper;
mod mapper_events;
mod metadata;
mod model;
mod pipeline;
mod pool;
pub mod replicas;
mod result;
mod retry;
mod session;
mod sql;
mod statement;
mod telemetry;
mod tenant;
mod tls;
mod transaction;
mod tx_options;
mod url;

pub use connection::{AsyncConnection, Param};
pub use engine::{Engine, EngineBuilder, PoolStatus, create_async_engine};
pub use error::{Error, Result};
pub use factory::{AsyncSessionMaker, SessionClass, SessionOptions, async_sessionmaker};
pub use from_row::FromRow;
pub use metadata::MetaData;
pub use model::{AnyObj, Obj, ObjectState, Ref, RefMut, WeakObj};
pub use model::{
    ArrayElement, Column, ColumnType, Entity, EnumType, ForeignKey, Index, OwnedParam, Table, Xid,
};
pub use model::{
    BackPopulates, CascadeKind, Cascades, Change, Collection, Dependent, DependentFns, Link,
    ManyBack, ParentSide, Reference, Secondary, SecondaryFn,
};
/// A `jsonb` (or `json`) column holding any serde type: `Json<Settings>`.
///
/// ```
/// # #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)] struct Settings { theme: String }
/// let column = session_core::Json(Settings { theme: "dark".into() });
/// assert_eq!(column.0.theme, "dark");
/// ```
#[cfg(feature = "json")]
pub use postgres_types::Json;
pub use result::{ColumnsResult, DmlResult, EntityResult, RowResult, ScalarResult};
pub use retry::{Retried, RetryPolicy};
pub use session::JoinTransactionMode;
pub use session::{
    AsyncSession, AsyncSessionBuilder, AsyncSessionTransaction, BindRouter, Executable,
    GET_MANY_CHUNK, GetOptions, IdentityKey, Info, NoAutoflush, ObjStream, ReturnsRows,
    STREAM_CHUNK, SessionConfig, SessionConnection, SharedConnection, TransactionInfo, Value,
};
pub use session::{Events, FlushInfo, OrmExecuteState, StatementKind, Transition};
pub use tenant::SchemaTranslateMap;

/// Event listeners (SQLAlchemy's `event.listen`): [`Events`] registries on a session
/// ([`AsyncSession::events`]), a factory ([`AsyncSessionMaker::events`]) or the process
/// ([`events::global`](crate::events::global)).
pub mod events {
    pub use crate::mapper_events::{BoxError, ListenerResult};
    pub use crate::session::{
        Events, FlushInfo, OrmExecuteState, StatementKind, Transition, global,
    };
}
pub use exec_options::ExecutionOptions;
pub use model::VersionCounter;
/// `#[derive(ColumnType)]`: see [`session_macros::ColumnType`].
pub use session_macros::ColumnType;
/// `#[derive(Entity)]`: see [`session_macros::Entity`].
pub use session_macros::Entity;
/// `#[derive(FromRow)]`: see [`session_macros::FromRow`].
pub use session_macros::FromRow;
/// Plumbing of [`IntoColumn`]; not public API.
#[doc(hidden)]
pub use statement::Term;
#[doc(hidden)]
pub use statement::Unloaded;
pub use statement::{
    Aliased, Attribute, Col, ColumnExpr, Columns, Delete, DmlStatement, Expr, Insert, IntoColumn,
    IntoLoader, JoinLoader, JoinOn, Load, Loader, ManyToMany, ManyToOne, OneToMany, OneToOne,
    Order, Relation, Returning, Select, SelectColumns, Text, Update, aliased, delete, func, insert,
    joinedload, noload, raiseload, select, select_columns, selectinload, text, update,
};
pub use statement::{
    ArrayType, ConflictTarget, ConflictUpdate, Containment, JsonType, Keyset, Numeric, OnConflict,
    Operand, RowLock, SqlParams, TextType, sql_expr,
};
pub use tls::SslMode;
pub use transaction::AsyncTransaction;
pub use tx_options::{IsolationLevel, TransactionOptions};

/// The driver, re-exported so that users name the same `Row`, `ToSql` and `SqlState` types.
pub use tokio_postgres;

/// What `#[derive(Entity)]`'s generated code names. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::from_row::column as row_column;
    pub use crate::mapper::handle as mapper;
    pub use crate::model::{TrackedBytes, tracked_bytes};
    pub use postgres_types::ToSql;
    pub use std::boxed::Box;
    pub use std::string::String;
    pub use std::vec::Vec;
    pub use tokio_postgres::{Error, Row};

    use crate::{ColumnType, OwnedParam};

    /// A field as a statement parameter. The bound (not the cast) carries the requirement, so
    /// a field type that is no `ColumnType` is reported with that trait's message.
    #[inline]
    pub fn param<T: ColumnType>(value: &T) -> &(dyn ToSql + Sync) {
        value
    }

    /// One field of many objects as an array parameter.
    #[inline]
    pub fn array<T: ColumnType>(values: Vec<T>) -> OwnedParam {
        Box::new(values)
    }

    /// Column `index` of `row`, decoded as a field.
    ///
    /// # Errors
    /// The driver's error when the column does not decode as `T`.
    #[inline]
    pub fn get<T: ColumnType>(row: &Row, index: usize) -> Result<T, Error> {
        row.try_get(index)
    }

    /// [`ColumnType::check`] when the type is [`ColumnType::CHECKED`] (the derive's
    /// `column_check`); compiles to `Ok(())` for every other type.
    ///
    /// # Errors
    /// Why the value cannot be stored exactly.
    #[inline]
    pub fn check<T: ColumnType>(value: &T) -> Result<(), String> {
        if T::CHECKED { value.check() } else { Ok(()) }
    }

    /// Whether two strings are equal, at compile time (the derive's `back_populates` check).
    pub const fn str_eq(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }

    /// A collection's logged changes as (added, removed) objects.
    pub fn split_changes<T: crate::Entity>(
        changes: Vec<crate::Change<T>>,
    ) -> (Vec<crate::Obj<T>>, Vec<crate::Obj<T>>) {
        let (mut added, mut removed) = (Vec::new(), Vec::new());
        for change in changes {
            match change {
                crate::Change::Added(o) => added.push(o),
                crate::Change::Removed(o) => removed.push(o),
            }
        }
        (added, removed)
    }

    /// A one-to-one reference's move from `old` to `now` as (added, removed) objects.
    pub fn one_change<T: crate::Entity>(
        old: Option<crate::Obj<T>>,
        now: Option<crate::Obj<T>>,
    ) -> (Vec<crate::Obj<T>>, Vec<crate::Obj<T>>) {
        let same =
            |a: &Option<crate::Obj<T>>, b: &crate::Obj<T>| a.as_ref().is_some_and(|a| a.ptr_eq(b));
        let removed = old.clone().filter(|o| !same(&now, o));
        let added = now.filter(|n| !same(&old, n));
        (added.into_iter().collect(), removed.into_iter().collect())
    }

    /// The version counter's value, spanned at the field's type (`#[entity(version)]`).
    #[inline]
    pub fn version_get<T: crate::VersionCounter>(value: &T) -> i64 {
        value.to_version()
    }

    /// Sets the version counter, spanned at the field's type.
    #[inline]
    pub fn version_set<T: crate::VersionCounter>(field: &mut T, version: i64) {
        *field = T::from_version(version);
    }

    /// [`ColumnType::same_as`], spanned at a field's type by the derive's `column_eq`.
    #[inline]
    pub fn same_as<T: ColumnType>(a: &T, b: &T) -> bool {
        a.same_as(b)
    }

    /// The type of a `generated` / `server_default` field: a column type with an "unset"
    /// value (`Default::default()`, `None` for an `Option`) that leaves the column to the
    /// server.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be a `generated` or `server_default` column: it has no `Default` (\"unset\") value",
        label = "server-filled column without an \"unset\" value",
        note = "a server-filled field is left to the server when it holds `Default::default()` (e.g. `id: 0`), and inserted otherwise",
        note = "implement `Default` for `{Self}`, or make the field an `Option<{Self}>` (unset when `None`)"
    )]
    pub trait ServerFilled: ColumnType + Default {}

    impl<T: ColumnType + Default> ServerFilled for T {}

    /// Whether a server-filled field holds its "unset" value: `Default::default()` (`None`
    /// for an `Option`). The bound is the requirement the derive puts on the type of every
    /// `generated` / `server_default` field, reported at that type.
    #[inline]
    pub fn is_unset<T: ServerFilled>(value: &T) -> bool {
        value.same_as(&T::default())
    }

    pub use postgres_types;

    /// What `ToSql` / `FromSql` return on failure.
    pub type BoxError = Box<dyn std::error::Error + Sync + Send>;

    /// Writes an enum's label (the binary form of both `text` and PostgreSQL enums).
    ///
    /// # Errors
    /// Never; the signature is `ToSql::to_sql`'s.
    #[inline]
    pub fn enum_to_sql(
        label: &str,
        out: &mut postgres_types::private::BytesMut,
    ) -> Result<postgres_types::IsNull, BoxError> {
        out.extend_from_slice(label.as_bytes());
        Ok(postgres_types::IsNull::No)
    }

    /// Whether a derived enum binds to / decodes from `ty`: the named PostgreSQL enum type, or
    /// the text types when it is stored as text.
    pub fn enum_accepts(ty: &postgres_types::Type, pg_enum: Option<&str>) -> bool {
        match pg_enum {
            Some(name) => ty.name() == name.rsplit('.').next().unwrap_or(name),
            None => <&str as ToSql>::accepts(ty),
        }
    }

    /// The label a row holds.
    ///
    /// # Errors
    /// The bytes are not UTF-8.
    #[inline]
    pub fn enum_label(raw: &[u8]) -> Result<&str, BoxError> {
        Ok(std::str::from_utf8(raw)?)
    }

    /// The error for a label that names no variant.
    pub fn unknown_label(rust: &str, label: &str, labels: &[&str]) -> BoxError {
        format!(
            "`{label}` is not a label of {rust} (expected one of: {}); the column holds a value \
             the Rust enum does not have",
            labels.join(", ")
        )
        .into()
    }

    /// The parameter answered for a column index the session never passes (an empty text).
    pub const NO_PARAM: &(dyn ToSql + Sync) = &"";

    /// The array answered for a column index the session never passes (an empty one).
    pub fn no_array() -> OwnedParam {
        Box::new(Vec::<bool>::new())
    }
}

/// The README's example, compiled as a doc test so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
