//! Tracing spans after OpenTelemetry's database conventions, and the slow-statement warning.
//!
//! Every span has the target `session_core::span`, level INFO, and these fields (those that
//! do not apply stay empty):
//!
//! | span | covers | fields beyond `db.system.name = "postgresql"` and `db.namespace` |
//! |---|---|---|
//! | `checkout` | taking a connection from the pool (opening one when needed) | `server.address`, `server.port` (the URL's first host), `error.type` |
//! | `prepare` | preparing a statement on a connection (its first run there), before its `statement` span | as `statement` |
//! | `statement` | one statement on the server, with a deferred `BEGIN` sent in its flight | `db.operation.name` (`SELECT`, `INSERT`, ..., `COMMIT`), `db.collection.name` (the table, when one), `db.query.text` (the SQL, with `$n` placeholders, never the values), `server.address`, `server.port` (the server the connection is on), `error.type` and `db.response.status_code` (the SQLSTATE) on failure |
//! | `flush` | [`AsyncSession::flush`](crate::AsyncSession::flush) | `db.operation.name = "flush"`, `error.type` |
//! | `commit` | [`AsyncSession::commit`](crate::AsyncSession::commit): its flush and `COMMIT` | `db.operation.name = "commit"`, `error.type` |
//!
//! `otel.name` holds the span name the conventions ask for (`SELECT users`, `COMMIT`), and
//! `otel.kind = "client"`, `otel.status_code = "ERROR"` follow `tracing-opentelemetry`'s
//! spelling, so an OpenTelemetry layer exports them as the conventions say. With no subscriber
//! interested in the target a span is a disabled handle: nothing is parsed or formatted.
//!
//! A statement that takes at least the engine's
//! [`slow_statement_threshold`](crate::EngineBuilder::slow_statement_threshold) is logged at
//! WARN under the target `session_core::slow`, with its SQL (no values) and duration.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::field::Empty;
use tracing::{Instrument, Span};

/// Where a connection is: the host and port it reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Server {
    pub(crate) address: Option<Arc<str>>,
    pub(crate) port: Option<u16>,
}

/// What the spans of one engine carry, and its slow-statement threshold.
#[derive(Debug, Clone, Default)]
pub(crate) struct Telemetry {
    /// `db.namespace`: the database name.
    pub(crate) namespace: Arc<str>,
    /// The URL's first host, for `checkout` spans.
    pub(crate) first_server: Server,
    /// Statements at least this slow are logged at WARN.
    pub(crate) slow: Option<Duration>,
}

impl Telemetry {
    /// The telemetry of an engine on `config`.
    pub(crate) fn new(config: &tokio_postgres::Config, slow: Option<Duration>) -> Self {
        let namespace = config
            .get_dbname()
            .or(config.get_user())
            .unwrap_or("postgres");
        Telemetry {
            namespace: namespace.into(),
            first_server: configured_server(config, 0),
            slow,
        }
    }
}

/// Host `index` of `config`, with its port (libpq's rule: one port for every host, or one
/// each).
pub(crate) fn configured_server(config: &tokio_postgres::Config, index: usize) -> Server {
    use tokio_postgres::config::Host;
    let address = config.get_hosts().get(index).map(|host| match host {
        Host::Tcp(name) => Arc::<str>::from(name.as_str()),
        Host::Unix(path) => Arc::<str>::from(path.display().to_string()),
    });
    let ports = config.get_ports();
    let port = ports.get(index).or(ports.first()).copied().or(Some(5432));
    Server { address, port }
}

fn record_server(span: &Span, server: &Server) {
    if let Some(address) = &server.address {
        span.record("server.address", &**address);
    }
    if let Some(port) = server.port {
        span.record("server.port", port);
    }
}

/// The span of a pool checkout.
pub(crate) fn checkout_span(telemetry: &Telemetry) -> Span {
    let span = tracing::info_span!(target: "session_core::span", "checkout",
        "otel.name" = "checkout", "otel.kind" = "client", "otel.status_code" = Empty,
        "db.system.name" = "postgresql", "db.namespace" = Empty,
        "server.address" = Empty, "server.port" = Empty, "error.type" = Empty);
    if !span.is_disabled() {
        span.record("db.namespace", &*telemetry.namespace);
        record_server(&span, &telemetry.first_server);
    }
    span
}

/// The span of one statement on a connection to `server`.
pub(crate) fn statement_span(telemetry: &Telemetry, server: &Server, sql: &str) -> Span {
    if sql.is_empty() {
        // A flight with a span of its own around it (a prepare): no second span.
        return Span::none();
    }
    let span = tracing::info_span!(target: "session_core::span", "statement",
        "otel.name" = Empty, "otel.kind" = "client", "otel.status_code" = Empty,
        "db.system.name" = "postgresql", "db.namespace" = Empty,
        "db.operation.name" = Empty, "db.collection.name" = Empty, "db.query.text" = Empty,
        "server.address" = Empty, "server.port" = Empty,
        "error.type" = Empty, "db.response.status_code" = Empty);
    describe(span, telemetry, server, sql)
}

/// The span of preparing a statement (its first run on a connection: one round trip before
/// the `statement` span), with the same fields.
pub(crate) fn prepare_span(telemetry: &Telemetry, server: &Server, sql: &str) -> Span {
    let span = tracing::info_span!(target: "session_core::span", "prepare",
        "otel.name" = Empty, "otel.kind" = "client", "otel.status_code" = Empty,
        "db.system.name" = "postgresql", "db.namespace" = Empty,
        "db.operation.name" = Empty, "db.collection.name" = Empty, "db.query.text" = Empty,
        "server.address" = Empty, "server.port" = Empty,
        "error.type" = Empty, "db.response.status_code" = Empty);
    describe(span, telemetry, server, sql)
}

fn describe(span: Span, telemetry: &Telemetry, server: &Server, sql: &str) -> Span {
    if span.is_disabled() {
        return span;
    }
    span.record("db.namespace", &*telemetry.namespace);
    record_server(&span, server);
    span.record("db.query.text", sql);
    let (operation, collection) = summarize(sql);
    match (operation, collection) {
        (Some(op), Some(table)) => {
            span.record("db.operation.name", op.as_str());
            span.record("db.collection.name", table.as_str());
            span.record("otel.name", format!("{op} {table}"));
        }
        (Some(op), None) => {
            span.record("db.operation.name", op.as_str());
            span.record("otel.name", op.as_str());
        }
        _ => {
            span.record("otel.name", "postgresql");
        }
    }
    span
}

/// Runs a statement's `work` inside `span`.
pub(crate) fn instrument<F: Future>(span: &Span, work: F) -> tracing::instrument::Instrumented<F> {
    work.instrument(span.clone())
}

/// Records a statement's outcome on its span, and warns when it was slow.
pub(crate) fn statement_done<T>(
    telemetry: &Telemetry,
    span: &Span,
    sql: &str,
    started: Instant,
    result: &Result<T, tokio_postgres::Error>,
) {
    if let Err(e) = result {
        if !span.is_disabled() {
            let kind = driver_error_type(e);
            span.record("error.type", kind.as_str());
            span.record("otel.status_code", "ERROR");
            if let Some(code) = e.code() {
                span.record("db.response.status_code", code.code());
            }
        }
    }
    if let Some(threshold) = telemetry.slow {
        let elapsed = started.elapsed();
        if elapsed >= threshold {
            tracing::warn!(target: "session_core::slow", elapsed = ?elapsed,
                threshold = ?threshold, sql, "slow statement");
        }
    }
}

/// `error.type` of a driver error: the SQLSTATE when the server answered, else what went
/// wrong on the client's side.
fn driver_error_type(e: &tokio_postgres::Error) -> String {
    match e.code() {
        Some(code) => code.code().to_string(),
        None if e.is_closed() => "connection_closed".into(),
        None => "tokio_postgres::Error".into(),
    }
}

/// The span of a session operation (`flush`, `commit`); `telemetry` is asked for only when
/// the span is enabled.
pub(crate) fn session_span(
    name: &'static str,
    telemetry: impl FnOnce() -> Option<Telemetry>,
) -> Span {
    let span = match name {
        "flush" => tracing::info_span!(target: "session_core::span", "flush",
            "otel.name" = "flush", "otel.status_code" = Empty, "db.system.name" = "postgresql",
            "db.namespace" = Empty, "db.operation.name" = "flush", "error.type" = Empty),
        _ => tracing::info_span!(target: "session_core::span", "commit",
            "otel.name" = "commit", "otel.status_code" = Empty, "db.system.name" = "postgresql",
            "db.namespace" = Empty, "db.operation.name" = "commit", "error.type" = Empty),
    };
    if span.is_disabled() {
        return span;
    }
    if let Some(t) = telemetry() {
        span.record("db.namespace", &*t.namespace);
    }
    span
}

/// Runs a session operation inside `span`, recording `error.type` (the error's variant) when
/// it fails.
pub(crate) async fn traced<T>(
    span: Span,
    work: impl Future<Output = crate::Result<T>>,
) -> crate::Result<T> {
    let result = work.instrument(span.clone()).await;
    if let Err(e) = &result {
        record_error(&span, e);
    }
    result
}

/// Records `error.type` for `e` on `span`: the SQLSTATE when the server gave one, else the
/// error's variant (`PoolTimeout`, `Connect`, ...).
pub(crate) fn record_error(span: &Span, e: &crate::Error) {
    if span.is_disabled() {
        return;
    }
    let kind = match e.code() {
        Some(code) => code.code().to_string(),
        None => {
            let debug = format!("{e:?}");
            debug
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .next()
                .unwrap_or("Error")
                .to_string()
        }
    };
    span.record("error.type", kind.as_str());
    span.record("otel.status_code", "ERROR");
}

/// The operation (`SELECT`, `INSERT`, ...) and its table, when there is one table.
pub(crate) fn summarize(sql: &str) -> (Option<String>, Option<String>) {
    let tokens = tokens(sql);
    let mut top = tokens.iter().filter(|t| t.depth == 0).map(|t| &t.text);
    let Some(first) = top.next() else {
        return (None, None);
    };
    let first = first.to_ascii_uppercase();
    let verbs = ["SELECT", "INSERT", "UPDATE", "DELETE", "MERGE"];
    let operation = if first == "WITH" {
        // The statement after the common table expressions.
        tokens
            .iter()
            .filter(|t| t.depth == 0)
            .map(|t| t.text.to_ascii_uppercase())
            .find(|w| verbs.contains(&w.as_str()))
            .unwrap_or(first)
    } else {
        first
    };
    let top: Vec<&Token> = tokens.iter().filter(|t| t.depth == 0).collect();
    let after = |keyword: &str, from: usize| -> Option<(usize, String)> {
        let i = (from..top.len()).find(|&i| top[i].text.eq_ignore_ascii_case(keyword))?;
        let name = top.get(i + 1)?;
        (!name.text.starts_with('(')).then(|| (i + 1, unquote(&name.text)))
    };
    let start = top
        .iter()
        .position(|t| t.text.eq_ignore_ascii_case(&operation))
        .unwrap_or(0);
    let collection = match operation.as_str() {
        "INSERT" | "MERGE" => after("INTO", start).map(|(_, n)| n),
        "UPDATE" => top.get(start + 1).map(|t| unquote(&t.text)),
        "DELETE" => after("FROM", start).map(|(_, n)| n),
        "SELECT" => after("FROM", start).and_then(|(i, name)| {
            // One table only: no join, no second table after a comma.
            let rest = &top[i + 1..];
            let joined = rest.iter().any(|t| {
                t.text == "," && !rest.iter().any(|w| w.text.eq_ignore_ascii_case("WHERE"))
                    || t.text.eq_ignore_ascii_case("JOIN")
            });
            (!joined).then_some(name)
        }),
        _ => None,
    };
    (Some(operation), collection)
}

/// A word, a quoted name or a punctuation mark, and its parenthesis depth.
struct Token {
    text: String,
    depth: u32,
}

/// Splits SQL into words, quoted names and commas; skips string literals and comments.
fn tokens(sql: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let bytes = sql.as_bytes();
    let mut depth = 0u32;
    let mut i = 0;
    while i < bytes.len() && out.len() < 64 {
        let c = bytes[i];
        match c {
            b'(' => {
                if depth == 0 {
                    out.push(Token {
                        text: "(".into(),
                        depth,
                    });
                }
                depth += 1;
                i += 1;
            }
            b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'\'' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'\'' {
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b',' => {
                out.push(Token {
                    text: ",".into(),
                    depth,
                });
                i += 1;
            }
            b';' => break,
            _ if c == b'"' || c.is_ascii_alphanumeric() || c == b'_' => {
                let start = i;
                // A name: words and quoted parts joined by dots (`"s"."t"`).
                loop {
                    if i < bytes.len() && bytes[i] == b'"' {
                        i += 1;
                        while i < bytes.len() && bytes[i] != b'"' {
                            i += 1;
                        }
                        i += 1;
                    } else {
                        while i < bytes.len()
                            && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_')
                        {
                            i += 1;
                        }
                    }
                    if i < bytes.len() && bytes[i] == b'.' {
                        i += 1;
                        continue;
                    }
                    break;
                }
                out.push(Token {
                    text: sql[start..i.min(sql.len())].to_string(),
                    depth,
                });
            }
            _ => i += 1,
        }
    }
    out
}

/// `"s"."t"` -> `s.t`.
fn unquote(name: &str) -> String {
    name.replace('"', "")
}

#[cfg(test)]
mod tests {
    use super::summarize;

    fn s(sql: &str) -> (Option<String>, Option<String>) {
        summarize(sql)
    }

    #[test]
    fn operations_and_tables() {
        let some = |a: &str, b: Option<&str>| (Some(a.to_string()), b.map(str::to_string));
        assert_eq!(
            s("SELECT \"users\".\"id\" FROM \"users\" WHERE \"id\" = $1"),
            some("SELECT", Some("users"))
        );
        assert_eq!(
            s("INSERT INTO \"tenant_a\".\"t\" (a) VALUES ($1)"),
            some("INSERT", Some("tenant_a.t"))
        );
        assert_eq!(s("update items set x = 1"), some("UPDATE", Some("items")));
        assert_eq!(
            s("DELETE FROM \"items\" WHERE id = ANY($1)"),
            some("DELETE", Some("items"))
        );
        assert_eq!(
            s("SELECT a.x FROM a JOIN b ON a.id = b.a WHERE a.y = 'FROM c'"),
            some("SELECT", None)
        );
        assert_eq!(
            s("WITH v AS (SELECT 1 FROM x) UPDATE t SET a = v.a FROM v"),
            some("UPDATE", Some("t"))
        );
        assert_eq!(s("SELECT 1"), some("SELECT", None));
        assert_eq!(s("SELECT x FROM (SELECT 1) q"), some("SELECT", None));
        assert_eq!(s("COMMIT"), some("COMMIT", None));
        assert_eq!(s(""), (None, None));
    }
}
