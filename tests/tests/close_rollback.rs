//! Closing a session (or a connection) with a transaction open sends ROLLBACK without waiting
//! for its answer: the next statement on that connection goes out behind it, so a session
//! that only read costs no round trip to close, and nothing of the closed transaction is seen
//! or kept by the next user of the connection.

use std::time::Duration;

use session_core::{AsyncSession, Engine, Entity, MetaData, text};
use session_tests::support::{count_rows, create_schema, fresh_database, idle_in_transaction};
use session_tests::wire::RoundTrips;

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "note")]
struct Note {
    #[entity(primary_key, generated)]
    id: i32,
    body: String,
}

/// An engine with one pooled connection, through a relay that holds each answer of the
/// server for `latency`; the table `note` with one row.
async fn setup(prefix: &str, latency: Duration) -> (Engine, RoundTrips) {
    let url = fresh_database(prefix).await;
    let relay = RoundTrips::start_with_latency(&url, latency).await;
    let engine = Engine::builder(relay.url())
        .pool_size(1)
        .test_on_checkout(false)
        .build()
        .unwrap();
    create_schema(&engine, MetaData::new().with::<Note>()).await;
    let s = AsyncSession::new(engine.clone());
    s.add(&session_core::Obj::new(Note {
        body: "first".into(),
        ..Note::default()
    }))
    .unwrap();
    s.commit().await.unwrap();
    s.close().await;
    (engine, relay)
}

/// A read-only session: get the note, close.
async fn read_and_close(engine: &Engine) {
    let s = AsyncSession::new(engine.clone());
    assert_eq!(
        s.get_one::<Note>(1).await.unwrap().read().unwrap().body,
        "first"
    );
    s.close().await;
}

#[tokio::test]
async fn closing_a_session_that_only_read_waits_for_no_answer() {
    // Answers take 30 ms to arrive, so what is sent right after close() is certainly in the
    // same round trip as the ROLLBACK, if close() did not wait for it.
    let (engine, relay) = setup("close_rb_trips", Duration::from_millis(30)).await;
    read_and_close(&engine).await; // prepares the get's statement
    relay.take();
    read_and_close(&engine).await;
    read_and_close(&engine).await;
    // The last ROLLBACK goes out after close() returned: give the connection's task time to
    // send it and the server to answer.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // BEGIN + SELECT; then ROLLBACK with the second session's BEGIN + SELECT; then the
    // second ROLLBACK. Waiting for each ROLLBACK's answer made it 4.
    assert_eq!(relay.take(), 3);
    // Nothing is left open on the server.
    assert_eq!(idle_in_transaction(&engine).await, 0);
}

#[tokio::test]
async fn what_a_closed_session_wrote_without_commit_is_rolled_back_before_the_next_statement() {
    let (engine, _relay) = setup("close_rb_write", Duration::ZERO).await;
    // The pool has one connection: the next session runs on the same one, right behind the
    // ROLLBACK that close() sent.
    let s = AsyncSession::new(engine.clone());
    s.execute(text("INSERT INTO note (body) VALUES ('uncommitted')"))
        .await
        .unwrap();
    s.get_one::<Note>(1).await.unwrap().write().unwrap().body = "changed".into();
    s.flush().await.unwrap();
    s.close().await;

    // On the same connection, behind the ROLLBACK.
    assert_eq!(
        count_rows(&engine, "note").await,
        1,
        "the closed session's INSERT is gone"
    );
    let s = AsyncSession::new(engine.clone());
    assert_eq!(
        s.get_one::<Note>(1).await.unwrap().read().unwrap().body,
        "first"
    );
    // A new transaction, not the closed one: its writes commit.
    s.get_one::<Note>(1).await.unwrap().write().unwrap().body = "second".into();
    s.commit().await.unwrap();
    s.close().await;
    assert_eq!(count_rows(&engine, "note").await, 1);
    let s = AsyncSession::new(engine.clone());
    assert_eq!(
        s.get_one::<Note>(1).await.unwrap().read().unwrap().body,
        "second"
    );
    s.close().await;

    // A transaction that failed on the server (aborted) is closed the same way, and the
    // connection serves the next session.
    let s = AsyncSession::new(engine.clone());
    assert!(s.execute(text("SELECT 1 / 0")).await.is_err());
    s.close().await;
    let s = AsyncSession::new(engine.clone());
    assert_eq!(
        s.get_one::<Note>(1).await.unwrap().read().unwrap().body,
        "second"
    );
    s.close().await;
    assert_eq!(idle_in_transaction(&engine).await, 0);
    assert_eq!(engine.status().connections, 1, "the connection was kept");
}
