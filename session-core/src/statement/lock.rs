//! Row locks of a `SELECT` ([`RowLock`]): `FOR UPDATE`, `FOR NO KEY UPDATE`, `FOR SHARE`,
//! `FOR KEY SHARE`, with `OF <tables>` and `NOWAIT` or `SKIP LOCKED`.

use crate::model::{Entity, Table};
use crate::sql::quote;

/// A row lock clause for [`Select::with_lock`](crate::Select::with_lock) (SQLAlchemy's
/// `with_for_update(read=..., key_share=..., nowait=..., skip_locked=..., of=...)`).
///
/// ```
/// use session_core::{RowLock, select};
/// # #[derive(Debug, Clone, Default, session_core::Entity)]
/// # struct Job { #[entity(primary_key)] id: i32, state: String }
/// // A queue worker: take up to ten jobs no other worker holds.
/// let next = select::<Job>()
///     .filter(Job::C.state.eq("ready"))
///     .limit(10)
///     .with_lock(RowLock::update().skip_locked());
/// assert!(format!("{next:?}").ends_with("LIMIT 10 FOR UPDATE SKIP LOCKED"));
/// ```
#[derive(Debug, Clone)]
pub struct RowLock {
    strength: &'static str,
    nowait: bool,
    skip_locked: bool,
    pub(crate) of: Vec<&'static Table>,
}

impl RowLock {
    fn new(strength: &'static str) -> Self {
        RowLock {
            strength,
            nowait: false,
            skip_locked: false,
            of: Vec::new(),
        }
    }

    /// `FOR UPDATE`: the rows may be updated or deleted by this transaction only.
    pub fn update() -> Self {
        Self::new("UPDATE")
    }

    /// `FOR NO KEY UPDATE` (SQLAlchemy's `key_share=True`): as `FOR UPDATE`, but rows of
    /// other tables may still take `FOR KEY SHARE` locks (foreign-key checks do not wait).
    pub fn no_key_update() -> Self {
        Self::new("NO KEY UPDATE")
    }

    /// `FOR SHARE` (SQLAlchemy's `read=True`): other transactions may read and share-lock the
    /// rows, but not change them.
    pub fn share() -> Self {
        Self::new("SHARE")
    }

    /// `FOR KEY SHARE` (SQLAlchemy's `read=True, key_share=True`).
    pub fn key_share() -> Self {
        Self::new("KEY SHARE")
    }

    /// `NOWAIT`: fail at once (SQLSTATE 55P03, `lock_not_available`) instead of waiting for
    /// a row another transaction holds.
    #[must_use]
    pub fn nowait(mut self) -> Self {
        self.nowait = true;
        self
    }

    /// `SKIP LOCKED`: leave out the rows another transaction holds.
    #[must_use]
    pub fn skip_locked(mut self) -> Self {
        self.skip_locked = true;
        self
    }

    /// `OF t`: lock only the rows of `T`'s table (add several with repeated calls); the
    /// other tables of the query are read without locks.
    #[must_use]
    pub fn of<T: Entity>(mut self) -> Self {
        if !self.of.iter().any(|t| t.is(T::TABLE)) {
            self.of.push(T::TABLE);
        }
        self
    }

    /// A contradiction in the clause, if any.
    pub(crate) fn error(&self) -> Option<String> {
        (self.nowait && self.skip_locked).then(|| {
            "a row lock can be NOWAIT or SKIP LOCKED, not both: choose whether a held row \
             fails the query or is left out"
                .to_string()
        })
    }

    /// ` FOR <strength> [OF ...] [NOWAIT | SKIP LOCKED]`; `implied` names the tables to
    /// lock when the clause names none and the query needs them named.
    pub(crate) fn sql(&self, implied: &[&'static Table]) -> String {
        let mut sql = format!(" FOR {}", self.strength);
        let of = if self.of.is_empty() {
            implied
        } else {
            &self.of
        };
        if !of.is_empty() {
            let names: Vec<String> = of.iter().map(|t| quote(t.name)).collect();
            sql.push_str(" OF ");
            sql.push_str(&names.join(", "));
        }
        if self.nowait {
            sql.push_str(" NOWAIT");
        }
        if self.skip_locked {
            sql.push_str(" SKIP LOCKED");
        }
        sql
    }
}
