//! Helpers shared by the integration tests: the throwaway PostgreSQL (one cluster per test
//! binary, a fresh database per test), engines on it, pool probes, the cancellation driver and
//! a log capture.

pub mod m2m;
pub mod odd;
pub mod proxy_targets;
pub mod spans;
pub mod support;

/// The seed's schema, shared with the demo and the benchmarks.
pub use session_tools::model;
pub mod wire;
