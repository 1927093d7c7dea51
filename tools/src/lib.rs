//! Developer tools for the session stack, as a library: the throwaway PostgreSQL that tests,
//! examples, the demo and the benchmarks run against, the seed's schema they share, and the
//! proxy expansion printer.
//!
//! The `session-tools` binary wraps these: `demo`, `pg`, `proxy expand`.

pub mod bench;
pub mod demo;
pub mod model;
pub mod pg;
pub mod proxy;
pub mod seeds;
