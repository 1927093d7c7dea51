//! Statements: typed columns and expressions, [`select`] of an entity, [`select_columns`] of
//! columns and aggregates, [`insert`] / [`update`] / [`delete`] (with upserts,
//! [`Insert::on_conflict`]), value expressions (arithmetic, [`func`]), `jsonb` and array
//! operators, raw fragments ([`sql_expr`]), row locks ([`RowLock`]) and [`text`].
//!
//! Every value travels as a bind parameter and every identifier is quoted. A comparison takes
//! a value of the column's own Rust type, so comparing a text column with a number does not
//! compile.

use std::fmt;

use postgres_types::ToSql;

use crate::model::OwnedParam;

mod alias;
mod columns;
mod containers;
mod dml;
mod expr;
pub mod func;
mod keyset;
mod loader;
mod lock;
mod ops;
mod raw;
mod select;
mod upsert;

pub use alias::{Aliased, aliased};
pub use columns::Columns;
pub use containers::{ArrayType, Containment, JsonType};
pub use dml::{Delete, DmlStatement, Insert, Returning, Update, delete, insert, update};
pub(crate) use dml::{Dml, DmlKind};
pub use expr::Term;
pub use expr::{Attribute, Col, ColumnExpr, Expr, IntoColumn, Order};
pub use keyset::Keyset;
pub(crate) use loader::LoaderKind;
pub use loader::{
    IntoLoader, JoinLoader, Load, Loader, ManyToMany, ManyToOne, OneToMany, OneToOne, Unloaded,
    joinedload, noload, raiseload, selectinload,
};
pub use lock::RowLock;
pub use ops::{Numeric, Operand, TextType};
pub use raw::{SqlParams, sql_expr};
pub(crate) use select::QueryCore;
pub use select::{JoinOn, Relation, Select, SelectColumns, select, select_columns};
pub use upsert::{ConflictTarget, ConflictUpdate, OnConflict};

/// Raw SQL with bind parameters (SQLAlchemy's `text()`): `text("SELECT ... WHERE x = $1")
/// .bind(5)`.
pub struct Text {
    pub(crate) sql: String,
    pub(crate) params: Vec<OwnedParam>,
    pub(crate) options: crate::ExecutionOptions,
}

/// Raw SQL; add its `$n` parameters with [`Text::bind`].
pub fn text(sql: impl Into<String>) -> Text {
    Text {
        sql: sql.into(),
        params: Vec::new(),
        options: crate::ExecutionOptions::new(),
    }
}

impl Text {
    /// Binds the next parameter (`$1`, `$2`, ... in order).
    #[must_use]
    pub fn bind(mut self, value: impl ToSql + Sync + Send + 'static) -> Self {
        self.params.push(Box::new(value));
        self
    }

    /// Execution options for this statement (SQLAlchemy's `execution_options(...)`).
    #[must_use]
    pub fn execution_options(mut self, options: crate::ExecutionOptions) -> Self {
        self.options.absorb(options);
        self
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.sql, self.params)
    }
}
