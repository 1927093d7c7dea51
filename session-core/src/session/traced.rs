//! The spans of the session's own operations (`flush`, `commit`; see `telemetry`).

use tracing::Span;

use super::AsyncSession;

impl AsyncSession {
    /// The span of operation `name` (`"flush"` or `"commit"`), with the database of the
    /// session's bind.
    pub(crate) fn operation_span(&self, name: &'static str) -> Span {
        crate::telemetry::session_span(name, || {
            self.bind_impl().map(|engine| engine.telemetry().clone())
        })
    }
}
