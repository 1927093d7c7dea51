//! Scoped session registries: `ScopedRegistry`, scope functions, `async_scoped_session` and
//! the blocking `scoped_session`, whose delegating methods `#[proxy_methods]` writes.
//!
//! The crate is part of the workspace so the dependency graph is fixed from the start; its
//! contents arrive with the scoped-sessions issue, once the session core exists. It exports
//! nothing yet, so nothing here can be called by mistake.
