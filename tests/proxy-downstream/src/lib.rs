//! A downstream crate proxying [`proxy_target::Repo`], a generic target of another crate whose
//! published signatures name its own private imports and aliases (`Id`, `Result`, `Rows`,
//! `Record`) and `Self`.
//!
//! This crate defines its own, different `Id`, `Result`, `Rows`, `Record` and `RepoError`
//! at the root, where the wrapper is: had the target's names resolved here (as they did before
//! `#[publish_signatures(scope = ...)]`), the generated members would not compile.

// The wrapper's scope: names that clash with the target's, on purpose.
/// Not the target's `Id`.
#[derive(Debug)]
pub struct Id;
/// Not the target's `Result` (which takes one parameter).
pub type Result<A, B, C> = (A, B, C);
/// Not the target's `Rows`.
pub type Rows = String;
/// Not the target's `Record`.
pub trait Record {}
/// Not the target's error.
pub struct RepoError;
/// Not the target's `Size`.
pub type Size = String;

/// A wrapper generic over its own parameter `U`, mapped onto the target's `T`.
#[derive(Debug)]
pub struct Store<U: proxy_target::Record> {
    repo: proxy_target::Repo<U>,
    /// How many times the wrapper reached the target (to see that the proxy goes through it).
    pub reached: std::cell::Cell<usize>,
}

#[session_macros::proxy_methods(
    proxy_target::Repo<U>,
    methods(put, get, all, filter, merge, extend, count, len, is_empty, expect, named, size, first_id),
    attributes(name),
    classmethods(new)
)]
impl<U: proxy_target::Record> Store<U> {
    /// Wraps `repo`.
    pub fn wrap(repo: proxy_target::Repo<U>) -> Self {
        Store {
            repo,
            reached: std::cell::Cell::new(0),
        }
    }

    fn proxied(&self) -> &proxy_target::Repo<U> {
        self.reached.set(self.reached.get() + 1);
        &self.repo
    }

    fn proxied_mut(&mut self) -> &mut proxy_target::Repo<U> {
        self.reached.set(self.reached.get() + 1);
        &mut self.repo
    }
}

mod imported {
    use proxy_target::Repo;

    /// The same target reached through an import, with a lifetime-free wrapper of one
    /// concrete record type.
    pub struct Names(pub Repo<super::Name>);

    #[session_macros::proxy_methods(Repo<super::Name>, methods(len, is_empty, get))]
    impl Names {
        fn proxied(&self) -> &Repo<super::Name> {
            &self.0
        }
    }
}

pub use imported::Names;

/// A record with a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    /// The key.
    pub id: proxy_target::Id,
    /// The name.
    pub name: String,
}

impl proxy_target::Record for Name {
    fn id(&self) -> proxy_target::Id {
        self.id
    }
}

impl From<(u32, &str)> for Name {
    fn from((id, name): (u32, &str)) -> Self {
        Name {
            id: proxy_target::Id(id),
            name: name.to_string(),
        }
    }
}
