//! Transaction options (isolation level, read only, deferrable) on the engine, the factory,
//! the session, `begin_with` / `transaction_with` and a connection's `begin_with`: applied in
//! the transaction's `BEGIN`, before any statement of it (autoflush included), as
//! `SHOW transaction_isolation` shows inside the transaction.

use std::time::Duration;

use session_core::{
    AsyncSession, Engine, Error, IsolationLevel, Obj, TransactionOptions, async_sessionmaker, text,
};
use session_tests::support::{a, count_rows, fresh_database, schema_engine};

fn serializable() -> TransactionOptions {
    TransactionOptions::new().isolation_level(IsolationLevel::Serializable)
}

async fn show(session: &AsyncSession, setting: &str) -> String {
    session
        .scalar(text(format!("SHOW {setting}")))
        .await
        .unwrap()
        .get()
        .unwrap()
}

#[tokio::test]
async fn session_options_hold_from_the_first_statement_autoflush_included() {
    let engine = schema_engine("tx_session", 4).await;
    let session = AsyncSession::builder()
        .bind(engine.clone())
        .transaction_options(serializable())
        .build();
    // The first statement of the transaction is the autoflush's INSERT; a `SET TRANSACTION`
    // after it would fail with 25001. The BEGIN carries the level instead.
    session.add(&a("first")).unwrap();
    assert_eq!(
        show(&session, "transaction_isolation").await,
        "serializable"
    );
    session.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "a").await, 1);

    // begin_with beats the session's; unset options fall through to it.
    let tx = session
        .begin_with(TransactionOptions::new().read_only(true))
        .await
        .unwrap();
    assert_eq!(
        show(&session, "transaction_isolation").await,
        "serializable"
    );
    assert_eq!(show(&session, "transaction_read_only").await, "on");
    session.add(&a("refused")).unwrap();
    let e = session.flush().await.unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("25006"), "read-only: {e}");
    tx.rollback().await.unwrap();
    // The next transaction is back to the session's options.
    assert_eq!(show(&session, "transaction_read_only").await, "off");
    assert_eq!(
        show(&session, "transaction_isolation").await,
        "serializable"
    );
    session.close().await;
}

#[tokio::test]
async fn engine_and_factory_options_and_transaction_with() {
    let url = fresh_database("tx_engine").await;
    let engine = Engine::builder(url)
        .checkout_timeout(Duration::from_secs(5))
        .transaction_options(
            TransactionOptions::new().isolation_level(IsolationLevel::RepeatableRead),
        )
        .build()
        .unwrap();
    let plain = AsyncSession::new(engine.clone());
    assert_eq!(
        show(&plain, "transaction_isolation").await,
        "repeatable read"
    );
    plain.close().await;

    let maker = async_sessionmaker(engine.clone()).transaction_options(serializable());
    let s = maker.session();
    assert_eq!(show(&s, "transaction_isolation").await, "serializable");
    s.close().await;

    let s = AsyncSession::new(engine.clone());
    let level = s
        .transaction_with(
            TransactionOptions::new()
                .isolation_level(IsolationLevel::Serializable)
                .read_only(true)
                .deferrable(true),
            async |s| {
                let level = show(s, "transaction_isolation").await;
                let deferrable = show(s, "transaction_deferrable").await;
                Ok::<_, Error>(format!("{level} {deferrable}"))
            },
        )
        .await
        .unwrap();
    assert_eq!(level, "serializable on");
    s.close().await;

    // A connection's begin_with, and begin_with while a transaction is open.
    let mut conn = engine.connect().await.unwrap();
    let mut tx = conn
        .begin_with(TransactionOptions::new().isolation_level(IsolationLevel::ReadCommitted))
        .await
        .unwrap();
    let isolation: String = {
        let row = tx
            .query_one("SHOW transaction_isolation", &[])
            .await
            .unwrap();
        row.get(0)
    };
    assert_eq!(isolation, "read committed");
    tx.commit().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    let Err(e) = tx.begin_with(serializable()).await else {
        panic!("begin_with inside a transaction must be refused");
    };
    assert!(e.to_string().contains("already begun"), "{e}");
}

#[tokio::test]
async fn a_serializable_conflict_is_40001_at_the_writer() {
    let engine = schema_engine("tx_conflict", 4).await;
    let seed = AsyncSession::new(engine.clone());
    let row = Obj::new(session_tools::model::A {
        data: "0".into(),
        ..Default::default()
    });
    seed.add(&row).unwrap();
    seed.commit().await.unwrap();
    seed.close().await;

    let maker = async_sessionmaker(engine.clone()).transaction_options(serializable());
    let (one, two) = (maker.session(), maker.session());
    // Both read, then both write what they read: SERIALIZABLE lets only one commit.
    let n1: i64 = one
        .scalar(text("SELECT count(*) FROM a"))
        .await
        .unwrap()
        .get()
        .unwrap();
    let n2: i64 = two
        .scalar(text("SELECT count(*) FROM a"))
        .await
        .unwrap()
        .get()
        .unwrap();
    one.add(&a(&format!("seen {n1}"))).unwrap();
    two.add(&a(&format!("seen {n2}"))).unwrap();
    one.commit().await.unwrap();
    let e = two.commit().await.unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("40001"), "{e}");
    two.rollback().await.unwrap();
    assert_eq!(
        count_rows(&engine, "a").await,
        2,
        "the seed and one writer's row"
    );
}

#[tokio::test]
async fn run_retrying_replays_a_serialization_failure_in_a_fresh_session() {
    use std::sync::atomic::{AtomicU32, Ordering};

    use session_core::RetryPolicy;

    let engine = schema_engine("tx_retry", 4).await;
    let maker = async_sessionmaker(engine.clone());
    let policy = RetryPolicy::new(5)
        .backoff(Duration::from_millis(1), Duration::from_millis(20))
        .transaction_options(serializable());
    let barrier = tokio::sync::Barrier::new(2);
    let (one_calls, two_calls) = (AtomicU32::new(0), AtomicU32::new(0));
    let writer = |name: &'static str, calls: &'static AtomicU32| {
        let (maker, barrier) = (&maker, &barrier);
        async move {
            maker
                .run_retrying(policy, async |s| {
                    let call = calls.fetch_add(1, Ordering::SeqCst) + 1;
                    let n: i64 = s.scalar(text("SELECT count(*) FROM a")).await?.get()?;
                    if call == 1 {
                        // Both read before either writes: a write skew SERIALIZABLE refuses.
                        barrier.wait().await;
                    }
                    s.add(&a(&format!("{name} saw {n}")))?;
                    Ok(n)
                })
                .await
                .unwrap()
        }
    };
    let one_calls: &'static AtomicU32 = Box::leak(Box::new(one_calls));
    let two_calls: &'static AtomicU32 = Box::leak(Box::new(two_calls));
    let (one, two) = tokio::join!(writer("one", one_calls), writer("two", two_calls));
    let mut attempts = [one.attempts, two.attempts];
    attempts.sort_unstable();
    assert_eq!(attempts, [1, 2], "one writer was replayed once");
    let replayed = if one.attempts == 2 { &one } else { &two };
    assert_eq!(replayed.retried_errors.len(), 1);
    assert_eq!(
        replayed.retried_errors[0].code().map(|c| c.code()),
        Some("40001")
    );
    assert_eq!(replayed.value, 1, "the replay saw the other writer's row");
    assert_eq!(
        one_calls.load(Ordering::SeqCst) + two_calls.load(Ordering::SeqCst),
        3
    );
    assert_eq!(count_rows(&engine, "a").await, 2);
}

#[tokio::test]
async fn run_retrying_gives_up_after_its_attempts_and_never_replays_other_errors() {
    use std::sync::atomic::{AtomicU32, Ordering};

    use session_core::RetryPolicy;

    let engine = schema_engine("tx_retry_bounds", 2).await;
    let maker = async_sessionmaker(engine.clone());
    let calls = AtomicU32::new(0);
    let policy = RetryPolicy::new(3).backoff(Duration::ZERO, Duration::ZERO);
    let e = maker
        .run_retrying(policy, async |s| {
            calls.fetch_add(1, Ordering::SeqCst);
            s.add(&a("never"))?;
            s.execute(text(
                "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$",
            ))
            .await?;
            Ok(())
        })
        .await
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("40001"));
    assert_eq!(calls.load(Ordering::SeqCst), 3, "bounded attempts");
    assert_eq!(
        count_rows(&engine, "a").await,
        0,
        "nothing of any attempt is there"
    );

    let calls = AtomicU32::new(0);
    let e = maker
        .run_retrying(RetryPolicy::new(3), async |s| {
            calls.fetch_add(1, Ordering::SeqCst);
            s.execute(text("SELECT 1/0")).await?;
            Ok(())
        })
        .await
        .unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("22012"));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "a non-transient error is not replayed"
    );
}
