//! A flight: statements that do not need each other's answers, sent together and answered
//! together (one round trip, however many statements), optionally with `COMMIT` behind them.
//!
//! PostgreSQL runs a connection's statements in the order they arrive, so sending them
//! together changes no outcome: a statement that fails aborts the transaction, every later
//! one fails with "current transaction is aborted", and a `COMMIT` behind them answers
//! `ROLLBACK`. What was reported by the first failing statement is what the caller gets; with
//! `COMMIT` in the flight, the transaction is over either way. A statement whose success
//! depends on a row count (the unit of work's stale-row check) must check that count on the
//! server when `COMMIT` travels with it, or a mismatch would be committed.

use std::collections::HashMap;
use std::time::Instant;

use postgres_types::Type;
use tokio_postgres::{Row, Statement};

use super::{AsyncConnection, InFlight, Lost, Param, typed};
use crate::error::{Error, Result};
use crate::pipeline::in_order;

/// One statement of a flight.
pub(crate) struct Planned<'a> {
    /// Its text.
    pub(crate) sql: &'a str,
    /// Its parameters.
    pub(crate) params: Vec<Param<'a>>,
    /// Prepared once per connection and kept (else run unnamed when the types of its
    /// parameters are known, see `typed`, or prepared for this run and closed).
    pub(crate) cached: bool,
    /// Whether its rows are wanted (else only the count of rows it affected).
    pub(crate) rows: bool,
}

/// How one [`Planned`] statement runs: prepared (named), or unnamed with its parameters' types
/// (`typed`: Parse, Bind and Execute in the flight itself, no prepare before it).
enum Ready<'a> {
    Named(Statement),
    Typed(Vec<(Param<'a>, Type)>),
}

/// The answer to one [`Planned`] statement.
pub(crate) enum Answer {
    /// Its rows ([`Planned::rows`]).
    Rows(Vec<Row>),
    /// The rows it affected.
    Count(u64),
}

impl Answer {
    fn len(&self) -> u64 {
        match self {
            Answer::Rows(rows) => rows.len() as u64,
            Answer::Count(n) => *n,
        }
    }
}

/// A flight that failed: the first error, and which statement raised it (`None`: the flight
/// as a whole, its `BEGIN` or its `COMMIT`).
pub(crate) struct FlightError {
    pub(crate) statement: Option<usize>,
    /// The statements all succeeded and `COMMIT` failed: the transaction is over, nothing of
    /// it stored.
    pub(crate) commit: bool,
    pub(crate) error: Error,
}

impl FlightError {
    fn whole(error: Error) -> Self {
        FlightError {
            statement: None,
            commit: false,
            error,
        }
    }
}

/// What the server said to a flight: each statement's answer, and `COMMIT`'s when it was sent.
type Said = (
    Vec<std::result::Result<Answer, tokio_postgres::Error>>,
    Option<std::result::Result<(), tokio_postgres::Error>>,
);

impl AsyncConnection {
    /// Runs `statements` in one flight (a first flight prepares those not prepared yet), with
    /// `COMMIT` behind them when `commit` (only at transaction depth 1). Returns the answers in
    /// order, or the first error.
    pub(crate) async fn run_flight(
        &mut self,
        statements: &[Planned<'_>],
        commit: bool,
    ) -> std::result::Result<Vec<Answer>, FlightError> {
        self.settle().await.map_err(FlightError::whole)?;
        if commit && self.levels.len() != 1 {
            return Err(FlightError::whole(Error::InvalidRequest(
                "COMMIT can only travel with a flight at transaction depth 1".into(),
            )));
        }
        if statements.is_empty() {
            // Nothing to send but COMMIT (or nothing at all): as a plain commit.
            if commit {
                return self
                    .commit_level(1)
                    .await
                    .map(|()| Vec::new())
                    .map_err(|error| FlightError {
                        statement: None,
                        commit: true,
                        error,
                    });
            }
            return Ok(Vec::new());
        }
        let prepared = self.prepare_flight(statements).await?;
        let started = Instant::now();
        let (answers, committed) = self
            .send_flight(statements, &prepared, commit)
            .await
            .map_err(FlightError::whole)?;
        let mut failed: Option<FlightError> = None;
        let mut out = Vec::with_capacity(answers.len());
        for (i, (planned, answer)) in statements.iter().zip(answers).enumerate() {
            match answer {
                Ok(answer) => {
                    self.echo(planned.sql, &planned.params, answer.len(), started);
                    out.push(answer);
                }
                // Later statements fail only because this one aborted the transaction.
                Err(e) if failed.is_none() => {
                    let error = self
                        .finish(planned.sql, &planned.params, started, Err::<(), _>(e))
                        .err()
                        .unwrap_or_else(|| Error::InvalidRequest("statement failed".into()));
                    failed = Some(FlightError {
                        statement: Some(i),
                        commit: false,
                        error,
                    });
                }
                Err(_) => {}
            }
        }
        if let Some(committed) = committed {
            let ended = self.finish("COMMIT", &[], started, committed);
            // The server has ended the transaction either way: COMMIT in an aborted one
            // answers ROLLBACK. A failed COMMIT leaves the connection dirty, so the next
            // statement rolls back first.
            self.levels.clear();
            self.aborted = None;
            match ended {
                Ok(()) => {
                    if let Some(conn) = self.conn.as_mut() {
                        conn.dirty = false;
                    }
                    self.echo("COMMIT", &[], 0, started);
                }
                Err(error) => {
                    failed.get_or_insert(FlightError {
                        statement: None,
                        commit: true,
                        error,
                    });
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// How each of `statements` runs: a statement not cached (or with the cache off) whose
    /// parameters' types are all known runs unnamed; the others are prepared, from the cache,
    /// else now, all in one flight (the cached ones are kept).
    async fn prepare_flight<'p>(
        &mut self,
        statements: &[Planned<'p>],
    ) -> std::result::Result<Vec<Ready<'p>>, FlightError> {
        let conn = self.live().map_err(FlightError::whole)?;
        let caching = conn.statements.capacity() > 0;
        let mut known: HashMap<&str, Statement> = HashMap::new();
        let mut missing: Vec<(usize, &str)> = Vec::new();
        let mut unnamed: Vec<Option<Vec<(Param<'p>, Type)>>> = Vec::with_capacity(statements.len());
        for planned in statements {
            unnamed.push(if planned.cached && caching {
                None
            } else {
                typed::bind(planned.sql, &planned.params)
            });
        }
        for (i, planned) in statements.iter().enumerate() {
            if unnamed[i].is_some()
                || known.contains_key(planned.sql)
                || missing.iter().any(|(_, s)| *s == planned.sql)
            {
                continue;
            }
            match planned.cached.then(|| conn.statements.get(planned.sql)) {
                Some(Some(statement)) => {
                    known.insert(planned.sql, statement);
                }
                _ => missing.push((i, planned.sql)),
            }
        }
        if !missing.is_empty() {
            let started = Instant::now();
            let sqls: Vec<&str> = missing.iter().map(|(_, sql)| *sql).collect();
            let results = self.prepare_many(&sqls).await.map_err(FlightError::whole)?;
            for ((i, sql), result) in missing.iter().zip(results) {
                let statement =
                    self.finish(sql, &[], started, result)
                        .map_err(|error| FlightError {
                            statement: Some(*i),
                            commit: false,
                            error,
                        })?;
                if statements[*i].cached {
                    self.live()
                        .map_err(FlightError::whole)?
                        .statements
                        .insert(sql, statement.clone());
                }
                known.insert(sql, statement);
            }
        }
        statements
            .iter()
            .zip(unnamed)
            .map(|(planned, unnamed)| match unnamed {
                Some(typed) => Ok(Ready::Typed(typed)),
                None => known
                    .get(planned.sql)
                    .cloned()
                    .map(Ready::Named)
                    .ok_or_else(|| {
                        FlightError::whole(Error::InvalidRequest(format!(
                            "statement not prepared: {}",
                            planned.sql
                        )))
                    }),
            })
            .collect()
    }

    /// Prepares `sqls` in one flight, the deferred `BEGIN` ahead of them (so that they are
    /// prepared inside the transaction that runs them).
    async fn prepare_many(
        &mut self,
        sqls: &[&str],
    ) -> Result<Vec<std::result::Result<Statement, tokio_postgres::Error>>> {
        on_client!(self, client => async {
            Ok::<_, tokio_postgres::Error>(in_order(sqls.iter().map(|sql| client.prepare(sql))).await)
        })
        .map_err(|e| Error::statement(e, "(prepare)"))
    }

    /// Sends the flight (the deferred `BEGIN` ahead of it, `COMMIT` behind it) and collects
    /// what the server said to each part.
    async fn send_flight(
        &mut self,
        statements: &[Planned<'_>],
        prepared: &[Ready<'_>],
        commit: bool,
    ) -> Result<Said> {
        let what = if commit {
            Lost::Commit
        } else {
            Lost::Statement
        };
        // The flight's span is named after its first statement (telemetry).
        let first = statements.first().map_or("", |p| p.sql);
        // The first failing statement's error is handed to the span (which records its
        // SQLSTATE) and put back into its place afterwards.
        let mut kept: Option<(usize, Said)> = None;
        let flown = on_client!(self, what, sql first, client => async {
            let sends = statements.iter().zip(prepared).map(|(planned, ready)| async move {
                match (ready, planned.rows) {
                    (Ready::Named(statement), true) => {
                        client.query(statement, &planned.params).await.map(Answer::Rows)
                    }
                    (Ready::Named(statement), false) => {
                        client.execute(statement, &planned.params).await.map(Answer::Count)
                    }
                    (Ready::Typed(typed), true) => {
                        client.query_typed(planned.sql, typed).await.map(Answer::Rows)
                    }
                    (Ready::Typed(typed), false) => {
                        client.execute_typed(planned.sql, typed).await.map(Answer::Count)
                    }
                }
            });
            let all = in_order(sends);
            let said: Said = if commit {
                // Polled after every statement was queued: COMMIT goes out last.
                let (answers, committed) = futures::join!(all, client.batch_execute("COMMIT"));
                (answers, Some(committed))
            } else {
                (all.await, None)
            };
            let (mut answers, committed) = said;
            match answers.iter().position(std::result::Result::is_err) {
                Some(i) => {
                    let failed = std::mem::replace(&mut answers[i], Ok(Answer::Count(0)));
                    kept = Some((i, (answers, committed)));
                    failed.map(|_| (Vec::new(), None))
                }
                None => Ok::<_, tokio_postgres::Error>((answers, committed)),
            }
        });
        match (flown, kept) {
            (Err(e), Some((i, (mut answers, committed)))) => {
                answers[i] = Err(e);
                Ok((answers, committed))
            }
            (flown, _) => flown.map_err(|e| Error::statement(e, "(flight)")),
        }
    }
}
