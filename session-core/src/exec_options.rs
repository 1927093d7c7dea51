//! Execution options (SQLAlchemy's `execution_options(...)`): `populate_existing`,
//! `autoflush`, `stream_results`, `yield_per`, `isolation_level`, `schema_translate_map`, and user keys that
//! `do_orm_execute` listeners read.
//!
//! Set them on the engine ([`EngineBuilder::execution_options`](crate::EngineBuilder::execution_options)),
//! a session or a factory (`execution_options`), a statement (`.execution_options(...)`), or
//! one call ([`AsyncSession::execute_with`](crate::AsyncSession::execute_with)). Each option
//! left unset falls through: the call beats the statement, which beats the session, which beats
//! the engine; user keys merge the same way, key by key.

use std::collections::BTreeMap;

use crate::tenant::SchemaTranslateMap;
use crate::tx_options::IsolationLevel;

/// Options for running a statement; every unset one falls through to the next level.
///
/// ```
/// use session_core::ExecutionOptions;
/// let session_level = ExecutionOptions::new().autoflush(false).set("tenant", "a");
/// let call = ExecutionOptions::new().populate_existing(true).set("tenant", "b");
/// let effective = call.over(&session_level);
/// assert_eq!(effective.get_autoflush(), Some(false));
/// assert_eq!(effective.get_populate_existing(), Some(true));
/// assert_eq!(effective.get("tenant"), Some("b"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutionOptions {
    populate_existing: Option<bool>,
    autoflush: Option<bool>,
    stream_results: Option<bool>,
    yield_per: Option<usize>,
    isolation_level: Option<IsolationLevel>,
    schema_translate_map: Option<SchemaTranslateMap>,
    user: BTreeMap<String, String>,
}

impl ExecutionOptions {
    /// No option set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Overwrite objects already in the identity map with the rows' values, unflushed
    /// changes included (SQLAlchemy's `populate_existing`).
    #[must_use]
    pub fn populate_existing(mut self, on: bool) -> Self {
        self.populate_existing = Some(on);
        self
    }

    /// Flush pending changes before this statement (the session's `autoflush` otherwise).
    #[must_use]
    pub fn autoflush(mut self, on: bool) -> Self {
        self.autoflush = Some(on);
        self
    }

    /// Ask for a server-side cursor: only `stream` / `stream_scalars` run such a statement.
    #[must_use]
    pub fn stream_results(mut self, on: bool) -> Self {
        self.stream_results = Some(on);
        self
    }

    /// Rows fetched per round trip by `stream` / `stream_scalars` (default
    /// [`STREAM_CHUNK`](crate::STREAM_CHUNK)); implies `stream_results`, as in SQLAlchemy.
    #[must_use]
    pub fn yield_per(mut self, rows: usize) -> Self {
        self.yield_per = Some(rows.max(1));
        self
    }

    /// The isolation level of the transaction this statement begins. A statement that runs in
    /// a transaction already begun at another level is refused (PostgreSQL cannot change it).
    #[must_use]
    pub fn isolation_level(mut self, level: IsolationLevel) -> Self {
        self.isolation_level = Some(level);
        self
    }

    /// The schema the session's tables are in (SQLAlchemy's `schema_translate_map`, e.g.
    /// `[(None, "tenant_a")]`): applied to the session's transaction when it begins, from the
    /// engine's, the factory's or the session's options (see [`SchemaTranslateMap`]). A
    /// statement's or a call's map must be the transaction's (a transaction reads one
    /// tenant's schema), else the statement is refused.
    #[must_use]
    pub fn schema_translate_map<'a>(
        mut self,
        map: impl IntoIterator<Item = (Option<&'a str>, &'a str)>,
    ) -> Self {
        self.schema_translate_map = Some(map.into_iter().collect());
        self
    }

    /// `schema_translate_map`, when set.
    pub fn get_schema_translate_map(&self) -> Option<&SchemaTranslateMap> {
        self.schema_translate_map.as_ref()
    }

    /// A user key, for `do_orm_execute` listeners (`orm_execute_state.execution_options`).
    #[must_use]
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.user.insert(key.into(), value.into());
        self
    }

    /// `populate_existing`, when set.
    pub fn get_populate_existing(&self) -> Option<bool> {
        self.populate_existing
    }

    /// `autoflush`, when set.
    pub fn get_autoflush(&self) -> Option<bool> {
        self.autoflush
    }

    /// `stream_results`, when set (`yield_per` implies it).
    pub fn get_stream_results(&self) -> Option<bool> {
        self.stream_results.or(self.yield_per.map(|_| true))
    }

    /// `yield_per`, when set.
    pub fn get_yield_per(&self) -> Option<usize> {
        self.yield_per
    }

    /// `isolation_level`, when set.
    pub fn get_isolation_level(&self) -> Option<IsolationLevel> {
        self.isolation_level
    }

    /// A user key's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.user.get(key).map(String::as_str)
    }

    /// Removes a user key (e.g. a `do_orm_execute` listener that consumed it).
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.user.remove(key)
    }

    /// The user keys.
    pub fn user_keys(&self) -> &BTreeMap<String, String> {
        &self.user
    }

    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// These options over `under`: each set here wins, each unset one comes from `under`.
    #[must_use]
    pub fn over(&self, under: &ExecutionOptions) -> ExecutionOptions {
        let mut user = under.user.clone();
        user.extend(self.user.iter().map(|(k, v)| (k.clone(), v.clone())));
        ExecutionOptions {
            populate_existing: self.populate_existing.or(under.populate_existing),
            autoflush: self.autoflush.or(under.autoflush),
            stream_results: self.stream_results.or(under.stream_results),
            yield_per: self.yield_per.or(under.yield_per),
            isolation_level: self.isolation_level.or(under.isolation_level),
            schema_translate_map: self
                .schema_translate_map
                .clone()
                .or_else(|| under.schema_translate_map.clone()),
            user,
        }
    }

    /// Merges `other` into these options, `other` winning.
    pub(crate) fn absorb(&mut self, other: ExecutionOptions) {
        if !other.is_empty() {
            *self = other.over(self);
        }
    }
}
