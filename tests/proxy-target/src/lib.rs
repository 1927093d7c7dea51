//! A target crate for `tests/proxy-downstream`: [`repo::Repo`] is generic, lives in a module
//! of its own and publishes signatures that name things only that module can see (private
//! imports, a private type alias, a trait of the crate, `Self`), so that a wrapper in another
//! crate proves they resolve where the target is defined.

pub mod repo;

mod ids {
    /// A record's key. Reached from `repo` through a private import only.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct Id(pub u32);
}

mod error {
    /// What a repository call can fail with.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum RepoError {
        /// No record has this key.
        Missing(crate::ids::Id),
    }

    /// The crate's own one-parameter `Result`, which `repo` imports under the prelude's name.
    pub(crate) type Result<T> = std::result::Result<T, RepoError>;
}

pub use error::RepoError;
pub use ids::Id;
pub use repo::{Record, Repo};
