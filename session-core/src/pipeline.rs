//! A deferred `BEGIN`, sent in the same flight as the statement that follows it.
//!
//! tokio-postgres queues requests in the order their futures are first polled and answers
//! them in that order, so `BEGIN` and the next statement can be in flight together: a
//! transaction costs no round trip of its own. A transaction that never runs a statement sends
//! nothing at all (its `COMMIT` or `ROLLBACK` is a no-op).

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;

use tokio_postgres::{Client, Error};

/// Runs `work`, with `begin_sql` (`BEGIN` and the transaction's options) queued ahead of it
/// when `*unsent`. `*unsent` is cleared as soon
/// as `BEGIN` is queued (its first poll), so a future dropped before that leaves it unsent and
/// one dropped after it leaves it sent: the flag is true exactly when the server has not been
/// asked to begin. Returns `BEGIN`'s outcome (when it was sent) and `work`'s.
pub(crate) fn with_begin<'a, T: Send + 'a>(
    client: &'a Client,
    unsent: &'a mut bool,
    begin_sql: &'a str,
    work: impl Future<Output = Result<T, Error>> + Send + 'a,
) -> impl Future<Output = (Option<Result<(), Error>>, Result<T, Error>)> + Send + 'a {
    // Not an `async fn`: its future would hold `work` twice (as the argument and as the
    // awaited future) next to the join, and every statement's future would be that large. The
    // BEGIN branch (once per transaction) is boxed, so the usual one is `work` and a tag.
    if !*unsent {
        return futures::future::Either::Left(futures::FutureExt::map(work, |r| (None, r)));
    }
    futures::future::Either::Right(Box::pin(async move {
        let mut begin = pin!(client.batch_execute(begin_sql));
        // The first poll writes BEGIN to the connection's queue before it can return.
        let first = poll_fn(|cx| Poll::Ready(begin.as_mut().poll(cx))).await;
        *unsent = false;
        let begun = async move {
            match first {
                Poll::Ready(result) => result,
                Poll::Pending => begin.await,
            }
        };
        let (begun, result) = futures::join!(begun, work);
        (Some(begun), result)
    }))
}

/// Runs `futures` concurrently and returns their outputs in order. Every poll polls them in
/// order, so each future of tokio-postgres queues its request (at its first poll) after the
/// ones before it: the server receives and answers them in this order, in one flight.
pub(crate) async fn in_order<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut all: Vec<_> = futures
        .into_iter()
        .map(|f| Box::pin(futures::future::maybe_done(f)))
        .collect();
    poll_fn(|cx| {
        let mut ready = true;
        for f in &mut all {
            ready &= f.as_mut().poll(cx).is_ready();
        }
        if ready {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    all.iter_mut()
        .filter_map(|f| f.as_mut().take_output())
        .collect()
}
