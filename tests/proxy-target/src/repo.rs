//! A generic in-memory repository: the target. Its signatures name `Id`, `Result` (the
//! crate's, one parameter), `Rows` (a private alias), `Record` and `Self` as this module sees
//! them; none of them resolves the same way in the downstream crate.

use std::collections::BTreeMap;

use crate::error::{RepoError, Result};
use crate::ids::Id;

/// Several records, in key order. Private: only this module can name it.
type Rows<'a, T> = Vec<&'a T>;

/// What a repository stores.
pub trait Record: Clone {
    /// The record's key.
    fn id(&self) -> Id;
}

/// A repository of `T`s.
#[derive(Debug)]
pub struct Repo<T: Record> {
    rows: BTreeMap<Id, T>,
    name: String,
}

#[session_macros::publish_signatures(scope = crate::repo, parts(stats, display))]
impl<T: Record> Repo<T>
where
    T: std::fmt::Debug,
{
    /// An empty repository.
    pub fn new(name: &str) -> Self {
        Repo {
            rows: BTreeMap::new(),
            name: name.to_string(),
        }
    }

    /// Stores `record`, replacing the one with its key; returns the replaced one.
    pub fn put(&mut self, record: T) -> Option<T> {
        self.rows.insert(record.id(), record)
    }

    /// The record with key `id`.
    ///
    /// # Errors
    /// [`RepoError::Missing`] when there is none.
    #[must_use = "a lookup does nothing else"]
    pub fn get(&self, id: Id) -> Result<T> {
        self.rows.get(&id).cloned().ok_or(RepoError::Missing(id))
    }

    /// Every record, in key order.
    pub fn all(&self) -> Rows<'_, T> {
        self.rows.values().collect()
    }

    /// The records whose key passes `keep`.
    pub fn filter<F: Fn(Id) -> bool>(&self, keep: F) -> Rows<'_, T> {
        self.rows.values().filter(|r| keep(r.id())).collect()
    }

    /// Copies every record of `other` into this one; returns `self` for chaining.
    pub fn merge(&mut self, other: &Self) -> &mut Self {
        for (id, r) in &other.rows {
            self.rows.insert(*id, r.clone());
        }
        self
    }

    /// Adds every record that converts into a `T`.
    pub fn extend<R: Into<T>>(&mut self, records: impl IntoIterator<Item = R>) -> usize {
        for r in records {
            let r: T = r.into();
            self.rows.insert(r.id(), r);
        }
        self.rows.len()
    }

    /// The repository's name.
    #[proxy(attribute)]
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// Renames the repository.
    pub fn set_name(&mut self, name: String) {
        self.name = name;
    }

    /// The number of records (old spelling).
    #[deprecated(note = "use `len`")]
    pub fn count(&self) -> usize {
        self.rows.len()
    }

    /// The number of records.
    #[doc(alias = "size")]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The record with key `id`; panics, at the caller, when there is none.
    #[track_caller]
    pub fn expect(&self, id: Id) -> T {
        match self.rows.get(&id) {
            Some(r) => r.clone(),
            None => panic!("no record {id:?}"),
        }
    }

    /// Only with the `extra` feature... of no crate: never published.
    #[cfg(any())]
    pub fn never(&self) {}

    fn check(&self) -> bool {
        !self.name.is_empty()
    }

    /// Whether the repository has a name (calls a private helper).
    pub fn named(&self) -> bool {
        self.check()
    }
}

/// How a repository's size is described.
pub type Size = usize;

/// A second published block of the same type: its members are proxied like the first's.
#[session_macros::publish_signatures(scope = crate::repo, part = stats)]
impl<T: Record> Repo<T> {
    /// The number of records, as a [`Size`] (a type alias of this module).
    pub fn size(&self) -> Size {
        self.rows.len()
    }

    /// The smallest key.
    pub fn first_id(&self) -> Option<Id> {
        self.rows.keys().next().copied()
    }
}

/// A published trait impl: its methods are the target's trait items, which a wrapper cannot
/// proxy (the error says so).
#[session_macros::publish_signatures(part = display)]
impl<T: Record> std::fmt::Display for Repo<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} records)", self.name, self.rows.len())
    }
}
