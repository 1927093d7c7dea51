//! Replaying a whole unit of work on a transient failure: a serialization failure (SQLSTATE
//! 40001, what SERIALIZABLE and distributed PostgreSQL engines answer a conflict with) or a
//! deadlock (40P01), as EF Core's execution strategies and CockroachDB's SQLAlchemy dialect do.
//!
//! Each attempt runs the body in a **fresh session** from the factory, in one transaction that
//! commits when the body returns `Ok`. Only an attempt that the server rolled back is replayed:
//! a commit whose outcome is unknown ([`Error::InDoubt`]) is never replayed (it may have
//! committed), and any other error ends the run at once. Attempts are bounded, and the waits
//! between them grow exponentially with full jitter so that contending writers spread out.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::factory::{AsyncSessionMaker, SessionClass};
use crate::session::AsyncSession;
use crate::tx_options::TransactionOptions;

/// How often and how patiently [`AsyncSessionMaker::run_retrying`] replays.
///
/// ```
/// use std::time::Duration;
/// let policy = session_core::RetryPolicy::new(5).backoff(Duration::from_millis(5), Duration::from_millis(200));
/// assert_eq!(policy.max_attempts(), 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    base: Duration,
    max: Duration,
    options: TransactionOptions,
}

impl Default for RetryPolicy {
    /// 5 attempts, waits from 10 ms up to 1 s, no transaction options.
    fn default() -> Self {
        RetryPolicy::new(5)
    }
}

impl RetryPolicy {
    /// At most `max_attempts` attempts (at least 1), waits from 10 ms up to 1 s.
    pub fn new(max_attempts: u32) -> Self {
        RetryPolicy {
            max_attempts: max_attempts.max(1),
            base: Duration::from_millis(10),
            max: Duration::from_secs(1),
            options: TransactionOptions::new(),
        }
    }

    /// The first wait's upper bound and the cap: the wait before attempt `n + 1` is drawn from
    /// `0..=min(max, base * 2^(n-1))` (full jitter).
    #[must_use]
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.base = base;
        self.max = max.max(base);
        self
    }

    /// The options each attempt's transaction begins with, e.g. SERIALIZABLE.
    #[must_use]
    pub fn transaction_options(mut self, options: TransactionOptions) -> Self {
        self.options = options;
        self
    }

    /// The most attempts made.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    fn wait(&self, attempt: u32, salt: u64) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << (attempt - 1).min(20))
            .min(self.max);
        let nanos = ceiling.as_nanos() as u64;
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(jitter(salt, attempt) % (nanos + 1))
    }
}

/// A pseudo-random number from the clock, `salt` and `attempt` (enough to spread writers).
fn jitter(salt: u64, attempt: u32) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut h = foldhash::fast::RandomState::default().build_hasher();
    h.write_u64(now ^ salt);
    h.write_u32(attempt);
    h.finish()
}

/// What [`AsyncSessionMaker::run_retrying`] returns: the body's value and how it got there.
#[derive(Debug)]
pub struct Retried<T> {
    /// The value of the attempt that committed.
    pub value: T,
    /// Attempts made (1 when the first one committed).
    pub attempts: u32,
    /// The errors of the attempts that were replayed, in order.
    pub retried_errors: Vec<Error>,
}

impl Error {
    /// Whether replaying the whole transaction may succeed: a serialization failure (40001)
    /// or a deadlock (40P01) that the server rolled back. Never true for
    /// [`Error::InDoubt`].
    pub fn is_transient(&self) -> bool {
        matches!(self.code().map(|c| c.code()), Some("40001") | Some("40P01"))
    }
}

impl<S: SessionClass> AsyncSessionMaker<S> {
    /// Runs `body` in a transaction of a fresh session and commits it; replays the whole
    /// thing in a new session when it fails with a transient error ([`Error::is_transient`]),
    /// up to `policy`'s attempts, waiting a jittered, growing time between attempts. A commit
    /// in doubt and every other error are returned at once, never replayed. Each replay is
    /// logged at INFO (target `session_core::retry`).
    ///
    /// ```no_run
    /// # async fn demo(maker: session_core::AsyncSessionMaker) -> session_core::Result<()> {
    /// use session_core::{IsolationLevel, RetryPolicy, TransactionOptions, text};
    /// let policy = RetryPolicy::new(5).transaction_options(
    ///     TransactionOptions::new().isolation_level(IsolationLevel::Serializable),
    /// );
    /// let done = maker
    ///     .run_retrying(policy, async |session| {
    ///         session.execute(text("UPDATE account SET balance = balance - 10 WHERE id = 1")).await?;
    ///         Ok(())
    ///     })
    ///     .await?;
    /// println!("committed after {} attempt(s)", done.attempts);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The last attempt's error, a non-transient error, or a commit in doubt.
    pub async fn run_retrying<T, F>(&self, policy: RetryPolicy, mut body: F) -> Result<Retried<T>>
    where
        F: AsyncFnMut(&AsyncSession) -> Result<T>,
    {
        let mut retried_errors = Vec::new();
        let salt = std::ptr::from_ref(self) as usize as u64;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let session = self.session();
            let s = session.as_async_session();
            let out = s.run_block_with(policy.options, body(s)).await;
            s.close().await;
            match out {
                Ok(value) => {
                    return Ok(Retried {
                        value,
                        attempts: attempt,
                        retried_errors,
                    });
                }
                Err(e) if e.is_transient() && attempt < policy.max_attempts => {
                    let wait = policy.wait(attempt, salt);
                    tracing::info!(target: "session_core::retry", attempt, error = %e,
                        ?wait, "transient failure; replaying the unit of work");
                    retried_errors.push(e);
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_and_stay_under_the_cap() {
        let p = RetryPolicy::new(10).backoff(Duration::from_millis(10), Duration::from_millis(50));
        for attempt in 1..10 {
            let cap = Duration::from_millis((10u64 << (attempt - 1)).min(50));
            for salt in 0..20 {
                assert!(p.wait(attempt, salt) <= cap);
            }
        }
        assert_eq!(RetryPolicy::new(0).max_attempts(), 1);
    }
}
