//! Developer tools for the session stack, as a library: the throwaway PostgreSQL that tests,
//! examples, the demo and the benchmarks run against, and the proxy expansion printer.
//!
//! The `session-tools` binary wraps these: `demo`, `pg`, `proxy expand`.

pub mod demo;
pub mod pg;
