//! An [`AsyncConnection`]'s transaction levels (the transaction and its savepoints), used by
//! its guards and by the session, and the settling of a level left to roll back before the
//! next statement.

use super::{AsyncConnection, Lost, NEXT_LEVEL};
use crate::error::{Error, Result};
use crate::tx_options::TransactionOptions;

impl AsyncConnection {
    /// Refuses work on a connection lost in flight.
    pub(super) fn check_alive(&self) -> Result<()> {
        match self.lost {
            Some(_) => Err(self.gone()),
            None => Ok(()),
        }
    }

    /// Begins a transaction (at depth 0) or a savepoint; returns its level and id.
    pub(crate) async fn begin_level(&mut self) -> Result<(u32, u64)> {
        self.begin_level_with(TransactionOptions::new()).await
    }

    /// [`AsyncConnection::begin_level`]; a transaction begun at depth 0 has `options` over
    /// the engine's (a savepoint has its transaction's).
    pub(crate) async fn begin_level_with(
        &mut self,
        options: TransactionOptions,
    ) -> Result<(u32, u64)> {
        self.settle().await?;
        let level = self.levels.len() as u32 + 1;
        let id = NEXT_LEVEL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if level == 1 {
            // Marked dirty before anything can be sent; the BEGIN itself goes out with the
            // next statement.
            self.live()?.dirty = true;
            self.begin_sql = options.or(self.engine.transaction_options()).begin_sql();
            self.begin_unsent = true;
            self.aborted = None;
        } else {
            self.simple(&format!("SAVEPOINT sa_savepoint_{level}"))
                .await?;
        }
        self.levels.push(id);
        Ok((level, id))
    }

    /// Commits level `level` (COMMIT at 1, RELEASE SAVEPOINT above).
    pub(crate) async fn commit_level(&mut self, level: u32) -> Result<()> {
        self.check_alive()?;
        self.settle().await?;
        if self.transaction_depth() < level {
            return Err(Error::Closed("This transaction is inactive".to_string()));
        }
        if level == 1 && self.forget_unsent_begin() {
            return Ok(());
        }
        if level == 1 {
            if let Some(cause) = self.aborted.take() {
                self.rollback_level(1).await?;
                return Err(Error::RolledBack(format!(
                    "The database returned ROLLBACK instead of committing: an earlier \
                     statement of this transaction failed, so nothing of it was stored. That \
                     statement's error was: {cause}"
                )));
            }
        }
        let sql = if level == 1 {
            "COMMIT".to_string()
        } else {
            format!("RELEASE SAVEPOINT sa_savepoint_{level}")
        };
        let result = self.simple_as(&sql, Lost::Commit).await;
        match result {
            Ok(()) => {
                self.levels.truncate(level as usize - 1);
                if level == 1 {
                    self.live()?.dirty = false;
                }
                Ok(())
            }
            Err(e) => {
                if level == 1 {
                    // The server ended the transaction (or the connection is gone); a ROLLBACK
                    // before the next statement makes sure (the connection stays dirty).
                    self.levels.clear();
                    self.aborted = None;
                }
                Err(e)
            }
        }
    }

    /// Rolls back level `level` and everything inside it. Does nothing when it is not open.
    /// Ends a transaction in doubt (the connection is gone then: nothing is sent).
    pub(crate) async fn rollback_level(&mut self, level: u32) -> Result<()> {
        if self.lost.is_some() {
            if level == 1 {
                self.lost = None;
                self.relink = true;
                self.levels.clear();
                self.pending_rollback = None;
                self.aborted = None;
                self.begin_unsent = false;
                return Ok(());
            }
            return Err(self.gone());
        }
        if let Some(pending) = self.pending_rollback {
            if pending <= level {
                return self.settle().await;
            }
        }
        if (self.levels.len() as u32) < level {
            if level == 1 && self.conn.as_ref().is_some_and(|c| c.dirty) {
                return self.settle().await;
            }
            return Ok(());
        }
        self.pending_rollback = Some(level);
        self.settle().await
    }

    /// Marks level `level` for rollback before the next statement (a dropped guard).
    pub(crate) fn defer_rollback(&mut self, level: u32) {
        if self.levels.len() as u32 >= level {
            self.pending_rollback = Some(self.pending_rollback.map_or(level, |p| p.min(level)));
        }
    }

    /// Brings the server in line with what this connection believes, after an abandoned
    /// transaction guard or a transaction the server ended.
    pub(crate) async fn settle(&mut self) -> Result<()> {
        self.check_alive()?;
        if self.relink && self.conn.is_none() {
            self.conn = Some(Box::pin(self.engine.checkout()).await?);
            self.relink = false;
        }
        let target = match self.pending_rollback {
            Some(level) => Some(level),
            None => {
                if self.levels.is_empty() && self.conn.as_ref().is_some_and(|c| c.dirty) {
                    Some(1)
                } else {
                    None
                }
            }
        };
        let Some(level) = target else {
            return Ok(());
        };
        if level == 1 && self.forget_unsent_begin() {
            return Ok(());
        }
        self.pending_rollback = Some(level);
        let sql = if level == 1 {
            "ROLLBACK".to_string()
        } else {
            format!(
                "ROLLBACK TO SAVEPOINT sa_savepoint_{level}; RELEASE SAVEPOINT sa_savepoint_{level}"
            )
        };
        // Boxed: only after a failure, and it would ride in every statement's future.
        match Box::pin(self.simple(&sql)).await {
            Ok(()) => {
                self.pending_rollback = None;
                self.aborted = None;
                if level == 1 {
                    self.levels.clear();
                    self.live()?.dirty = false;
                } else {
                    self.levels.truncate(level as usize - 1);
                }
                Ok(())
            }
            Err(e) if level == 1 || e.is_disconnect() => {
                // The connection is gone: so is its transaction. The pool discards it.
                self.pending_rollback = None;
                self.aborted = None;
                self.levels.clear();
                Err(e)
            }
            Err(e) => {
                // The savepoint is not there: roll everything back next time.
                self.pending_rollback = Some(1);
                Err(e)
            }
        }
    }
}
