//! Regression tests for transactions that committed what the caller ended, cancellation in doubt,
//! abandoned statements and hangs around held connections (the core issue): each failed on
//! 427d4f2. Every check reads the database back on a connection of its own.

use std::time::Duration;

use session_core::{AsyncSession, Engine, Error, Obj, async_sessionmaker, text};
use session_tests::model::A;
use session_tests::support::{a, poll_then_drop, schema_engine, wait_pool_idle};

async fn rows_named(engine: &Engine, like: &str) -> i64 {
    let mut conn = engine.connect().await.unwrap();
    let n: i64 = conn
        .scalar("SELECT count(*) FROM a WHERE data LIKE $1", &[&like])
        .await
        .unwrap();
    conn.close().await;
    n
}

// ---- 10: a transaction handle acts only on the transaction it began ----

#[tokio::test]
async fn a_handle_of_an_ended_transaction_does_not_commit_a_later_one() {
    let engine = schema_engine("tx_handle_epoch", 4).await;
    let session = AsyncSession::new(engine.clone());
    let t = session.begin().await.unwrap();
    session.rollback().await.unwrap();
    session.add(&a("later")).unwrap();
    let err = t
        .commit()
        .await
        .expect_err("the handle's transaction ended");
    assert!(
        err.to_string().contains("This transaction is closed"),
        "{err}"
    );
    assert!(err.is_closed(), "{err}");
    session.close().await;
    assert_eq!(rows_named(&engine, "later").await, 0);

    // The same for a savepoint handle whose level was rolled back with the root and begun again.
    let session = AsyncSession::new(engine.clone());
    let nested = session.begin_nested().await.unwrap();
    session.rollback().await.unwrap();
    let again = session.begin_nested().await.unwrap();
    session.add(&a("in-second-savepoint")).unwrap();
    let err = nested.rollback().await.expect_err("old savepoint handle");
    assert!(err.is_closed(), "{err}");
    again.commit().await.unwrap();
    session.commit().await.unwrap();
    assert_eq!(rows_named(&engine, "in-second-savepoint").await, 1);
}

// ---- 11: inside a transaction block, work after an explicit end is refused ----

#[tokio::test]
async fn work_after_an_explicit_commit_inside_a_transaction_block_is_refused() {
    let engine = schema_engine("tx_ctx_closed", 4).await;
    let session = AsyncSession::new(engine.clone());
    let result: Result<(), Error> = session
        .transaction(async |s| {
            s.add(&a("inside"))?;
            s.commit().await?;
            let err = s.add(&a("after-commit")).expect_err("add after commit");
            assert!(
                err.to_string().starts_with(
                    "Can't operate on closed transaction inside context manager.  Please \
                     complete the context manager before emitting further commands."
                ),
                "{err}"
            );
            let err = s.execute(text("SELECT 1")).await.expect_err("execute");
            assert!(err.to_string().contains("closed transaction"), "{err}");
            assert!(s.begin().await.is_err());
            Ok(())
        })
        .await;
    result.unwrap();
    assert_eq!(rows_named(&engine, "inside").await, 1);
    assert_eq!(rows_named(&engine, "after-commit").await, 0);
    // After the block the session works again.
    session.add(&a("after-block")).unwrap();
    session.commit().await.unwrap();
    assert_eq!(rows_named(&engine, "after-block").await, 1);

    // A factory block with an explicit rollback.
    let maker = async_sessionmaker(engine.clone());
    let result: Result<(), Error> = maker
        .begin(async |s| {
            s.add(&a("rolled"))?;
            s.rollback().await?;
            assert!(s.add(&a("after-rollback")).is_err());
            Ok(())
        })
        .await;
    result.unwrap();
    assert_eq!(rows_named(&engine, "rolled").await, 0);
    assert_eq!(rows_named(&engine, "after-rollback").await, 0);

    // A failed flush inside the block: #11297's message.
    let session = AsyncSession::new(engine.clone());
    let result: Result<(), Error> = session
        .transaction(async |s| {
            let dup = Obj::new(A {
                id: 1,
                data: "dup".into(),
                ..A::default()
            });
            s.add(&dup)?;
            let _ = s.flush().await.expect_err("duplicate key");
            let err = s.add(&a("after-failure")).expect_err("after failed flush");
            assert!(
                err.to_string()
                    .contains("The transaction was rolled back due to an exception: "),
                "{err}"
            );
            Err(err)
        })
        .await;
    assert!(result.is_err());
    assert_eq!(rows_named(&engine, "after-failure").await, 0);
}

// ---- 12: a failed flush inside a savepoint rolls back only the savepoint ----

#[tokio::test]
async fn a_failed_flush_in_a_savepoint_leaves_the_outer_transaction_usable() {
    let engine = schema_engine("tx_savepoint_flush", 4).await;
    let session = AsyncSession::new(engine.clone());
    let first = a("kept");
    session.add(&first).unwrap();
    session.flush().await.unwrap();
    let taken = first.read().unwrap().id;
    let mut skipped = 0;
    for i in 0..3 {
        let nested = session.begin_nested().await.unwrap();
        let obj = Obj::new(A {
            id: if i == 1 { taken } else { 0 },
            data: format!("row{i}"),
            ..A::default()
        });
        session.add(&obj).unwrap();
        match session.flush().await {
            Ok(()) => nested.commit().await.unwrap(),
            Err(e) => {
                assert!(e.is_integrity_error(), "{e}");
                nested.rollback().await.unwrap();
                skipped += 1;
            }
        }
    }
    assert_eq!(skipped, 1);
    session.commit().await.unwrap();
    assert_eq!(rows_named(&engine, "kept").await, 1);
    assert_eq!(rows_named(&engine, "row%").await, 2);
}

// ---- 13: a COMMIT or RELEASE in doubt is an error, never a guess ----

#[tokio::test]
async fn a_dropped_release_savepoint_never_lets_work_run_outside_the_transaction() {
    let engine = schema_engine("tx_release_doubt", 4).await;
    let mut in_doubt = 0;
    for polls in 0..12 {
        let session = AsyncSession::new(engine.clone());
        session.add(&a(&format!("outer{polls}"))).unwrap();
        let nested = session.begin_nested().await.unwrap();
        session.add(&a(&format!("inner{polls}"))).unwrap();
        session.flush().await.unwrap();
        let dropped = poll_then_drop(nested.commit(), polls).await;
        let after = session.add(&a(&format!("after{polls}")));
        let flushed = match after {
            Ok(()) => session.flush().await,
            Err(e) => Err(e),
        };
        match (dropped, flushed) {
            (Some(Ok(())), Ok(())) => {
                // The release finished: everything commits together.
                session.commit().await.unwrap();
                assert_eq!(rows_named(&engine, &format!("%{polls}")).await, 3);
            }
            (None, Ok(())) => {
                // Dropped before it was sent: the savepoint is still open, and commits.
                session.commit().await.unwrap();
                assert_eq!(rows_named(&engine, &format!("%{polls}")).await, 3);
            }
            (None, Err(e)) => {
                in_doubt += 1;
                assert!(e.is_in_doubt(), "{e}");
                session.rollback().await.unwrap();
                assert_eq!(
                    rows_named(&engine, &format!("%{polls}")).await,
                    0,
                    "nothing of a transaction in doubt commits"
                );
            }
            (d, f) => panic!("polls {polls}: release {d:?}, later flush {f:?}"),
        }
        session.close().await;
    }
    assert!(in_doubt > 0, "no RELEASE was dropped in flight");
    wait_pool_idle(&engine).await;
}

#[tokio::test]
async fn a_retried_commit_after_a_dropped_commit_never_reports_a_failed_one_as_done() {
    let engine = schema_engine("tx_commit_doubt", 4).await;
    let mut conn = engine.connect().await.unwrap();
    conn.batch_execute(
        "CREATE TABLE deferred_child (id int PRIMARY KEY, parent int REFERENCES a(id) \
         DEFERRABLE INITIALLY DEFERRED)",
    )
    .await
    .unwrap();
    conn.close().await;
    let mut doubted = 0;
    for polls in 0..12 {
        let session = AsyncSession::new(engine.clone());
        session.add(&a(&format!("doubt{polls}"))).unwrap();
        session.flush().await.unwrap();
        // A deferred foreign-key violation: COMMIT fails on the server.
        session
            .execute(text(format!(
                "INSERT INTO deferred_child VALUES ({polls}, -1)"
            )))
            .await
            .unwrap();
        let first = poll_then_drop(session.commit(), polls).await;
        match first {
            Some(result) => assert!(result.is_err(), "the deferred check fails COMMIT"),
            None => {
                // Never Ok: in doubt when the COMMIT was in flight, else the server's error.
                let retry = session.commit().await;
                let err = retry.expect_err("a retried commit after a dropped one");
                if err.is_in_doubt() {
                    doubted += 1;
                    session.rollback().await.unwrap();
                } else {
                    assert!(err.is_foreign_key_violation(), "{err}");
                }
            }
        }
        assert_eq!(rows_named(&engine, &format!("doubt{polls}")).await, 0);
        session.close().await;
    }
    assert!(doubted > 0, "no COMMIT was dropped in flight");
    wait_pool_idle(&engine).await;
}

// ---- 15: a statement dropped while it runs does not keep running or hold its slot ----

#[tokio::test]
async fn statements_dropped_by_a_timeout_are_cancelled_and_free_their_pool_slot() {
    let engine = schema_engine("tx_cancel_running", 2).await;
    let sessions: Vec<AsyncSession> = (0..2).map(|_| AsyncSession::new(engine.clone())).collect();
    for s in &sessions {
        let r = tokio::time::timeout(
            Duration::from_millis(200),
            s.execute(text("SELECT pg_sleep(3)")),
        )
        .await;
        assert!(r.is_err(), "timed out");
    }
    let started = std::time::Instant::now();
    let mut conn = engine.connect().await.expect("a slot came back");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "checkout waited {:?}",
        started.elapsed()
    );
    // The server stops the abandoned statements.
    let mut active = i64::MAX;
    for _ in 0..100 {
        active = conn
            .scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(3)%' \
                 AND state = 'active' AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        if active == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(active, 0, "abandoned statements still run");
    conn.close().await;
    // The sessions say what happened and recover after rollback.
    for s in &sessions {
        let err = s.execute(text("SELECT 1")).await.expect_err("lost");
        assert!(err.is_in_doubt() || err.is_disconnect(), "{err}");
        s.rollback().await.unwrap();
        s.execute(text("SELECT 1")).await.unwrap();
        s.close().await;
    }
}

// ---- 9: a held connection or stream never hangs close(), and the holder keeps working ----

#[tokio::test]
async fn close_while_the_same_task_holds_the_session_connection_does_not_hang() {
    let engine = schema_engine("tx_close_held", 4).await;
    let session = AsyncSession::new(engine.clone());
    let mut conn = session.connection().await.unwrap();
    conn.batch_execute("SELECT 1").await.unwrap();
    // The holder keeps using the session.
    session
        .execute(text("SELECT 1"))
        .await
        .expect("the holder of connection() may use the session too");
    let closed = tokio::time::timeout(Duration::from_secs(5), session.close()).await;
    assert!(closed.is_ok(), "close() waited for the held connection");
    drop(conn);
    wait_pool_idle(&engine).await;
}

#[tokio::test]
async fn close_and_scoped_remove_while_the_same_task_holds_a_live_stream_do_not_hang() {
    use futures::StreamExt;
    let engine = schema_engine("tx_close_stream", 4).await;
    let seed = AsyncSession::new(engine.clone());
    for i in 0..3 {
        seed.add(&a(&format!("s{i}"))).unwrap();
    }
    seed.commit().await.unwrap();
    seed.close().await;

    let session = AsyncSession::new(engine.clone());
    let mut stream = session
        .stream_scalars(session_core::select::<A>())
        .await
        .unwrap();
    assert!(stream.next().await.unwrap().is_ok());
    let closed = tokio::time::timeout(Duration::from_secs(5), session.close()).await;
    assert!(closed.is_ok(), "close() waited for its own task's stream");
    // The stream says the session was closed (rows already fetched may come first).
    let mut closed_error = None;
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            closed_error = Some(e);
            break;
        }
    }
    drop(stream);
    if let Some(e) = closed_error {
        assert!(e.is_closed(), "{e}");
    }
    wait_pool_idle(&engine).await;

    // The scoped registry's remove() goes through the same close.
    let scoped = session_scoped::async_scoped_session(
        async_sessionmaker(engine.clone()),
        session_scoped::scope::current_task,
    );
    let held = scoped
        .scope(async {
            let mut stream = scoped
                .stream_scalars(session_core::select::<A>())
                .await
                .unwrap();
            assert!(stream.next().await.unwrap().is_ok());
            let removed = tokio::time::timeout(Duration::from_secs(5), scoped.remove()).await;
            drop(stream);
            removed.is_ok()
        })
        .await;
    assert!(held, "remove() waited for its own task's stream");
    wait_pool_idle(&engine).await;
}

#[tokio::test]
async fn a_dropped_flush_leaves_the_session_waiting_for_rollback_and_then_exact_rows() {
    let engine = schema_engine("tx_flush_drop", 4).await;
    let mut dropped = 0;
    for polls in 0..10 {
        let session = AsyncSession::new(engine.clone());
        let objs: Vec<Obj<A>> = (0..50).map(|i| a(&format!("f{polls}-{i}"))).collect();
        session.add_all(&objs).unwrap();
        let done = poll_then_drop(session.flush(), polls).await;
        // Go on using the session: add more, then commit.
        session.add(&a(&format!("f{polls}-later"))).unwrap_or(());
        let commit = session.commit().await;
        match (done, commit) {
            (Some(Ok(())), Ok(())) | (None, Ok(())) => {
                // Finished, or dropped before anything was sent: all 51 rows are stored.
                assert_eq!(rows_named(&engine, &format!("f{polls}-%")).await, 51);
            }
            (None, Err(e)) => {
                dropped += 1;
                assert!(e.is_pending_rollback() || e.is_in_doubt(), "{e}");
                assert_eq!(
                    rows_named(&engine, &format!("f{polls}-%")).await,
                    0,
                    "a cancelled flush commits nothing"
                );
                session.rollback().await.unwrap();
                session.add(&a(&format!("f{polls}-after"))).unwrap();
                session.commit().await.unwrap();
                assert_eq!(rows_named(&engine, &format!("f{polls}-%")).await, 1);
            }
            (d, c) => panic!("polls {polls}: flush {d:?}, commit {c:?}"),
        }
        session.close().await;
    }
    assert!(dropped > 0, "no flush was dropped in flight");
    wait_pool_idle(&engine).await;
}
