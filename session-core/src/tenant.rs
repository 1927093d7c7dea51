//! Tenants: SQLAlchemy's `schema_translate_map` execution option, one schema per tenant
//! holding the same tables.
//!
//! The mapped tables name no schema, so the map's `None` entry is the one that applies
//! (SQLAlchemy's `schema_translate_map={None: "tenant_a"}`): every statement of a session
//! whose execution options carry it (set on the engine, the factory or the session) reads and
//! writes that schema's tables: ORM selects, `get`, flushes, bulk DML and plain SQL alike.
//!
//! It works through PostgreSQL's `search_path`, set with `SET LOCAL` inside the session's
//! transaction as soon as it begins (one round trip, with the deferred `BEGIN` in the same
//! flight, before any statement is prepared, since PostgreSQL resolves table names when it
//! prepares), and it ends with the transaction, so nothing stays on the pooled connection. The path
//! holds the tenant's schema only (`pg_catalog` is always searched): a table missing there is
//! an error, never another tenant's or `public`'s table. Functions and types outside
//! `pg_catalog` need their schema written out.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// Schema names by the schema a table names (`None`: tables that name none, i.e. every
/// mapped table): SQLAlchemy's `schema_translate_map`, given to
/// [`ExecutionOptions::schema_translate_map`](crate::ExecutionOptions::schema_translate_map).
///
/// Only the `None` entry applies (mapped tables name no schema). A session's transactions
/// work in that schema: it is set with `SET LOCAL search_path` when each transaction begins
/// (one round trip, with the deferred `BEGIN`) and ends with it, so nothing stays on the
/// pooled connection. The path holds that schema only: a table missing there is an error,
/// never `public`'s; functions and types outside `pg_catalog` need their schema written out.
///
/// ```
/// use session_core::{ExecutionOptions, SchemaTranslateMap};
/// let options = ExecutionOptions::new().schema_translate_map([(None, "tenant_a")]);
/// let map: &SchemaTranslateMap = options.get_schema_translate_map().unwrap();
/// assert_eq!(map.get(None), Some("tenant_a"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaTranslateMap {
    map: BTreeMap<Option<String>, String>,
}

impl SchemaTranslateMap {
    /// An empty map.
    pub fn new() -> Self {
        SchemaTranslateMap::default()
    }

    /// Adds the entry `from` -> `to` (`from = None`: the tables that name no schema).
    #[must_use]
    pub fn with(mut self, from: Option<&str>, to: impl Into<String>) -> Self {
        self.map.insert(from.map(str::to_string), to.into());
        self
    }

    /// The schema `from` translates to.
    pub fn get(&self, from: Option<&str>) -> Option<&str> {
        self.map.get(&from.map(str::to_string)).map(String::as_str)
    }

    /// The entries, `None` first.
    pub fn entries(&self) -> impl Iterator<Item = (Option<&str>, &str)> {
        self.map.iter().map(|(k, v)| (k.as_deref(), v.as_str()))
    }

    /// The `SET LOCAL search_path` that applies the map to a transaction (`None` for an empty
    /// map).
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] for an entry keyed by a schema name: mapped tables name no
    /// schema, so it could never apply.
    pub(crate) fn set_local_sql(&self) -> Result<Option<String>> {
        if let Some(named) = self.map.keys().flatten().next() {
            return Err(Error::InvalidRequest(format!(
                "schema_translate_map has an entry for schema \"{named}\", but mapped tables \
                 name no schema, so only the None entry applies; write \
                 schema_translate_map([(None, \"...\")])"
            )));
        }
        Ok(self
            .map
            .get(&None)
            .map(|schema| format!("SET LOCAL search_path TO {}", crate::sql::quote(schema))))
    }
}

impl<'a> FromIterator<(Option<&'a str>, &'a str)> for SchemaTranslateMap {
    fn from_iter<I: IntoIterator<Item = (Option<&'a str>, &'a str)>>(entries: I) -> Self {
        entries
            .into_iter()
            .fold(SchemaTranslateMap::new(), |map, (from, to)| {
                map.with(from, to)
            })
    }
}
