//! Transaction options: isolation level, read only, deferrable (PostgreSQL's
//! `BEGIN ISOLATION LEVEL ... READ ONLY DEFERRABLE`).
//!
//! They travel in the transaction's own `BEGIN`, which goes out with its first statement
//! (autoflush included), so they hold before anything runs in the transaction; a `SET
//! TRANSACTION` sent afterwards would fail with 25001 once a query has run. Set them on the
//! engine ([`EngineBuilder::transaction_options`](crate::EngineBuilder::transaction_options)),
//! a session or a factory (`transaction_options`), or for one transaction
//! ([`AsyncConnection::begin_with`](crate::AsyncConnection::begin_with),
//! [`AsyncSession::begin_with`](crate::AsyncSession::begin_with)); an option set closer to the
//! transaction wins, one left unset falls through to the next.

use std::fmt;

/// A transaction isolation level (PostgreSQL's; the default is `READ COMMITTED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IsolationLevel {
    /// `READ UNCOMMITTED` (PostgreSQL runs it as `READ COMMITTED`).
    ReadUncommitted,
    /// `READ COMMITTED`.
    ReadCommitted,
    /// `REPEATABLE READ`.
    RepeatableRead,
    /// `SERIALIZABLE`: a conflict fails with SQLSTATE 40001; retry the whole transaction.
    Serializable,
}

impl IsolationLevel {
    /// The SQL spelling, e.g. `REPEATABLE READ`.
    pub fn as_sql(self) -> &'static str {
        match self {
            IsolationLevel::ReadUncommitted => "READ UNCOMMITTED",
            IsolationLevel::ReadCommitted => "READ COMMITTED",
            IsolationLevel::RepeatableRead => "REPEATABLE READ",
            IsolationLevel::Serializable => "SERIALIZABLE",
        }
    }
}

impl fmt::Display for IsolationLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_sql())
    }
}

/// The options of a transaction; each unset one falls through to the engine's, then to
/// PostgreSQL's defaults.
///
/// ```
/// use session_core::{IsolationLevel, TransactionOptions};
/// let options = TransactionOptions::new()
///     .isolation_level(IsolationLevel::Serializable)
///     .read_only(true)
///     .deferrable(true);
/// assert_eq!(options.begin_sql(), "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TransactionOptions {
    isolation_level: Option<IsolationLevel>,
    read_only: Option<bool>,
    deferrable: Option<bool>,
}

impl TransactionOptions {
    /// No options: PostgreSQL's defaults (or the engine's).
    pub const fn new() -> Self {
        TransactionOptions {
            isolation_level: None,
            read_only: None,
            deferrable: None,
        }
    }

    /// `ISOLATION LEVEL ...`.
    #[must_use]
    pub const fn isolation_level(mut self, level: IsolationLevel) -> Self {
        self.isolation_level = Some(level);
        self
    }

    /// `READ ONLY` (true) or `READ WRITE` (false): writes fail with SQLSTATE 25006.
    #[must_use]
    pub const fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = Some(read_only);
        self
    }

    /// `DEFERRABLE` (true) or `NOT DEFERRABLE`; matters for `SERIALIZABLE READ ONLY`.
    #[must_use]
    pub const fn deferrable(mut self, deferrable: bool) -> Self {
        self.deferrable = Some(deferrable);
        self
    }

    /// The isolation level asked for, if any.
    pub fn get_isolation_level(&self) -> Option<IsolationLevel> {
        self.isolation_level
    }

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == TransactionOptions::new()
    }

    /// `self`'s options, with `base`'s where `self` sets none.
    #[must_use]
    pub fn or(self, base: TransactionOptions) -> Self {
        TransactionOptions {
            isolation_level: self.isolation_level.or(base.isolation_level),
            read_only: self.read_only.or(base.read_only),
            deferrable: self.deferrable.or(base.deferrable),
        }
    }

    /// The `BEGIN` statement that starts a transaction with these options.
    pub fn begin_sql(&self) -> String {
        let mut sql = String::from("BEGIN");
        if let Some(level) = self.isolation_level {
            sql.push_str(" ISOLATION LEVEL ");
            sql.push_str(level.as_sql());
        }
        match self.read_only {
            Some(true) => sql.push_str(" READ ONLY"),
            Some(false) => sql.push_str(" READ WRITE"),
            None => {}
        }
        match self.deferrable {
            Some(true) => sql.push_str(" DEFERRABLE"),
            Some(false) => sql.push_str(" NOT DEFERRABLE"),
            None => {}
        }
        sql
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closer_options_win_and_unset_ones_fall_through() {
        let engine = TransactionOptions::new()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true);
        let call = TransactionOptions::new().isolation_level(IsolationLevel::Serializable);
        assert_eq!(
            call.or(engine).begin_sql(),
            "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY"
        );
        assert_eq!(TransactionOptions::new().begin_sql(), "BEGIN");
        assert!(TransactionOptions::new().is_empty());
    }
}
