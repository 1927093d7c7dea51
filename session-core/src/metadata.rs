//! [`MetaData`]: the mapped tables, created and dropped in foreign-key order.

use std::fmt::Write as _;

use crate::connection::AsyncConnection;
use crate::error::Result;
use crate::flush::dependency_order;
use crate::model::{Column, Entity, EnumType, Index, Table};
use crate::sql::quote;

/// A collection of mapped tables (SQLAlchemy's `Base.metadata`).
///
/// ```
/// # use session_core::MetaData;
/// let metadata = MetaData::new(); // .with::<A>().with::<B>()
/// assert!(metadata.tables().is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct MetaData {
    tables: Vec<&'static Table>,
}

impl MetaData {
    /// An empty collection.
    pub fn new() -> Self {
        MetaData::default()
    }

    /// Adds entity `T`'s table (once).
    #[must_use]
    pub fn with<T: Entity>(mut self) -> Self {
        self.add::<T>();
        self
    }

    /// Adds entity `T`'s table (once).
    pub fn add<T: Entity>(&mut self) {
        if !self.tables.iter().any(|t| std::ptr::eq(*t, T::TABLE)) {
            self.tables.push(T::TABLE);
        }
    }

    /// The tables, parents before the tables whose foreign keys reference them.
    pub fn tables(&self) -> Vec<&'static Table> {
        dependency_order(&self.tables)
            .into_iter()
            .map(|i| self.tables[i])
            .collect()
    }

    /// The PostgreSQL enum types the tables' columns use, each once, in first-use order.
    pub fn enum_types(&self) -> Vec<&'static EnumType> {
        let mut types: Vec<&'static EnumType> = Vec::new();
        for table in self.tables() {
            for t in table.columns.iter().filter_map(|c| c.enum_type) {
                if !types.iter().any(|k| k.name == t.name) {
                    types.push(t);
                }
            }
        }
        types
    }

    /// The DDL [`MetaData::create_all`] runs, in order, without running it (for a migration
    /// tool): `CREATE TYPE ... AS ENUM` for each enum type that does not exist yet, then for
    /// each table, parents first, `CREATE TABLE IF NOT EXISTS` (with its foreign keys' actions,
    /// UNIQUE and CHECK constraints) and its `CREATE INDEX IF NOT EXISTS`.
    ///
    /// ```
    /// let ddl = session_core::MetaData::new().create_statements();
    /// assert!(ddl.is_empty());
    /// ```
    pub fn create_statements(&self) -> Vec<String> {
        let mut out: Vec<String> = self.enum_types().into_iter().map(create_enum).collect();
        for table in self.tables() {
            out.push(create_table(table));
            out.extend(table.indexes.iter().map(|ix| create_index(table, ix)));
        }
        out
    }

    /// [`MetaData::create_statements`] as one script, each statement ended by `;`.
    pub fn create_script(&self) -> String {
        self.create_statements()
            .into_iter()
            .map(|s| s + ";\n")
            .collect()
    }

    /// The DDL [`MetaData::drop_all`] runs, in order: the tables, children first, then their
    /// enum types.
    pub fn drop_statements(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .tables()
            .into_iter()
            .rev()
            .map(|t| format!("DROP TABLE IF EXISTS {}", quote(t.name)))
            .collect();
        out.extend(
            self.enum_types()
                .into_iter()
                .map(|t| format!("DROP TYPE IF EXISTS {}", t.name)),
        );
        out
    }

    /// Creates every table that does not exist yet, parents first (SQLAlchemy's
    /// `metadata.create_all`). Runs on the given connection, so it joins its transaction:
    /// `engine.transaction(async |conn| metadata.create_all(conn).await)`.
    ///
    /// # Errors
    /// The server's error for a statement.
    pub async fn create_all(&self, conn: &mut AsyncConnection) -> Result<()> {
        for sql in self.create_statements() {
            conn.batch_execute(&sql).await?;
        }
        conn.clear_statement_cache();
        Ok(())
    }

    /// Drops every table that exists, children first (SQLAlchemy's `metadata.drop_all`).
    ///
    /// # Errors
    /// The server's error for a statement.
    pub async fn drop_all(&self, conn: &mut AsyncConnection) -> Result<()> {
        for sql in self.drop_statements() {
            conn.batch_execute(&sql).await?;
        }
        conn.clear_statement_cache();
        Ok(())
    }
}

/// `CREATE TYPE name AS ENUM (...)`, skipped when the type exists (PostgreSQL has no
/// `CREATE TYPE IF NOT EXISTS`).
fn create_enum(t: &EnumType) -> String {
    let labels: Vec<String> = t
        .labels
        .iter()
        .map(|l| format!("'{}'", l.replace('\'', "''")))
        .collect();
    // The name as written, as the column type and casts spell it (the derive allows plain,
    // optionally schema-qualified, lower-case identifiers only).
    format!(
        "DO $ddl$ BEGIN CREATE TYPE {} AS ENUM ({}); EXCEPTION WHEN duplicate_object THEN NULL; \
         END $ddl$",
        t.name,
        labels.join(", ")
    )
}

fn column_type(column: &Column) -> String {
    if column.generated {
        match column.sql_type {
            "integer" | "int" | "int4" => return "SERIAL".into(),
            "bigint" | "int8" => return "BIGSERIAL".into(),
            "smallint" | "int2" => return "SMALLSERIAL".into(),
            other => return format!("{other} GENERATED BY DEFAULT AS IDENTITY"),
        }
    }
    column.sql_type.to_string()
}

/// The `CREATE TABLE IF NOT EXISTS` statement of one table.
pub(crate) fn create_table(table: &Table) -> String {
    let mut sql = format!("CREATE TABLE IF NOT EXISTS {} (", quote(table.name));
    let keys: Vec<String> = table
        .key_columns()
        .map(|i| quote(table.columns[i].name))
        .collect();
    let mut first = true;
    // System columns (`xmin`) exist in every table already.
    for column in table.columns.iter().filter(|c| !c.system) {
        if !first {
            sql.push_str(", ");
        }
        first = false;
        let _ = write!(sql, "{} {}", quote(column.name), column_type(column));
        if !column.nullable && !column.primary_key {
            sql.push_str(" NOT NULL");
        }
        if let Some(default) = column.server_default {
            let _ = write!(sql, " DEFAULT {default}");
        }
        if column.unique {
            sql.push_str(" UNIQUE");
        }
        if let Some(fk) = &column.foreign_key {
            let _ = write!(sql, " REFERENCES {}({})", quote(fk.table), quote(fk.column));
            if let Some(action) = fk.on_delete {
                let _ = write!(sql, " ON DELETE {action}");
            }
            if let Some(action) = fk.on_update {
                let _ = write!(sql, " ON UPDATE {action}");
            }
        }
    }
    let _ = write!(sql, ", PRIMARY KEY ({})", keys.join(", "));
    for unique in table.uniques {
        let cols: Vec<String> = unique.iter().map(|c| quote(c)).collect();
        let _ = write!(sql, ", UNIQUE ({})", cols.join(", "));
    }
    for check in table.checks {
        let _ = write!(sql, ", CHECK ({check})");
    }
    sql.push(')');
    sql
}

/// `CREATE [UNIQUE] INDEX IF NOT EXISTS name ON table (columns)`.
fn create_index(table: &Table, index: &Index) -> String {
    let cols: Vec<String> = index.columns.iter().map(|c| quote(c)).collect();
    format!(
        "CREATE {}INDEX IF NOT EXISTS {} ON {} ({})",
        if index.unique { "UNIQUE " } else { "" },
        quote(index.name),
        quote(table.name),
        cols.join(", ")
    )
}
