//! Engine, connections and transactions against a real PostgreSQL (the foundation issue).

use std::time::{Duration, Instant};

use session_core::{Engine, Error, create_async_engine};
use session_tests::support::{
    LogCapture, count_rows, engine, fresh_database, idle_in_transaction, poll_then_drop,
    wait_pool_idle,
};
use tokio_postgres::error::SqlState;

async fn make_table(engine: &Engine) {
    let mut conn = engine.connect().await.expect("connect");
    conn.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY, note text NOT NULL, parent int REFERENCES t(id))",
    )
    .await
    .expect("create table");
    conn.close().await;
}

// ---- URLs and configuration ----

#[test]
fn urls_parse_and_never_show_the_password() {
    let e = create_async_engine("postgresql://scott:tiger@db.example:5433/test?application_name=x")
        .unwrap();
    assert_eq!(
        format!("{e:?}"),
        "Engine(postgresql://scott@db.example:5433/test)"
    );
    assert_eq!(e.url(), "postgresql://scott@db.example:5433/test");
    let e = create_async_engine("postgres://u@localhost/db").unwrap();
    assert_eq!(e.url(), "postgresql://u@localhost:5432/db");
    let e = create_async_engine("host=/run/pg user=me dbname=app password=secret").unwrap();
    assert_eq!(e.url(), "postgresql://me@/app?host=/run/pg");
    assert!(!format!("{e:?}").contains("secret"));
}

#[test]
fn bad_urls_name_the_bad_part() {
    let err = |url: &str| create_async_engine(url).unwrap_err().to_string();

    let e = err("postgresql+asyncpg://scott:tiger@localhost/test");
    assert!(
        e.contains("`+asyncpg`") && e.contains("postgresql://"),
        "{e}"
    );
    assert!(!e.contains("tiger"), "{e}");

    let e = err("mysql://u@h/db");
    assert!(e.contains("unsupported URL scheme `mysql`"), "{e}");

    let e = err("postgresql://scott:tiger@localhost:notaport/test");
    assert!(e.contains("port"), "{e}");
    assert!(!e.contains("tiger"), "password leaked: {e}");

    let e = err("postgresql://u@h/db?frobnicate=1");
    assert!(e.contains("frobnicate"), "{e}");

    let e = err("");
    assert!(e.contains("empty"), "{e}");

    let e = Engine::builder("postgresql://u@h/db")
        .pool_size(0)
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("pool_size"), "{e}");
}

#[tokio::test]
async fn unreachable_server_fails_fast_with_the_cause() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let engine = Engine::builder(format!("postgresql://postgres@127.0.0.1:{port}/x"))
        .checkout_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = engine.connect().await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "waited {:?}",
        started.elapsed()
    );
    assert!(err.is_disconnect(), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(text.to_lowercase().contains("refused"), "{text}");
    // The driver's error is the source (shared: an `Arc`); no server answered, so there is no
    // SQLSTATE.
    let source = std::error::Error::source(&err).expect("the driver's error");
    assert!(
        source
            .downcast_ref::<std::sync::Arc<tokio_postgres::Error>>()
            .is_some()
    );
    assert!(err.as_postgres().is_some());
    assert!(err.code().is_none());
}

#[tokio::test]
async fn unknown_database_is_a_connect_error_with_its_sqlstate() {
    let url = fresh_database("unknown_db").await;
    let bad = url.rsplit_once('/').unwrap().0.to_string() + "/no_such_database";
    let engine = create_async_engine(&bad).unwrap();
    let err = engine.connect().await.unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("could not connect to"), "{text}");
    assert!(text.contains("no_such_database"), "{text}");
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert_eq!(err.code(), Some(&SqlState::INVALID_CATALOG_NAME), "{err:?}");
    assert!(
        err.as_db_error()
            .unwrap()
            .message()
            .contains("does not exist"),
        "{err:?}"
    );
    assert!(
        std::error::Error::source(&err).is_some(),
        "the driver's error"
    );
    assert!(!err.is_disconnect(), "the server answered: {err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_a_connect_error_with_its_sqlstate() {
    // A private cluster where role `pw` must give a password (scram-sha-256): the shared one
    // trusts everybody.
    let cluster = tokio::task::spawn_blocking(session_tools::pg::Cluster::start_owned)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut admin = create_async_engine(cluster.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    admin
        .batch_execute(
            "SET password_encryption = 'scram-sha-256'; \
             CREATE ROLE pw LOGIN PASSWORD 'right'",
        )
        .await
        .unwrap();
    let hba: String = admin
        .scalar(
            "SELECT setting FROM pg_settings WHERE name = 'hba_file'",
            &[],
        )
        .await
        .unwrap();
    let rules = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!("host all pw 127.0.0.1/32 scram-sha-256\n{rules}"),
    )
    .unwrap();
    let _: bool = admin.scalar("SELECT pg_reload_conf()", &[]).await.unwrap();
    admin.close().await;
    let as_pw = |password: &str| {
        cluster
            .url()
            .replacen("postgres@", &format!("pw:{password}@"), 1)
    };
    // The right password gets in (so the rule is in force)...
    let mut conn = create_async_engine(&as_pw("right"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    assert_eq!(conn.scalar::<i32>("SELECT 1", &[]).await.unwrap(), 1);
    conn.close().await;
    // ...and a wrong one is 28P01, not a disconnect, and keeps its message.
    let engine = create_async_engine(&as_pw("wrong")).unwrap();
    let err = engine.connect().await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::INVALID_PASSWORD), "{err:?}");
    assert!(!err.is_disconnect(), "{err:?}");
    let text = err.to_string();
    assert!(text.starts_with("could not connect to"), "{text}");
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(!text.contains("wrong"), "never the password: {text}");
}

// ---- checkout, return, status, dispose ----

#[tokio::test]
async fn checkout_and_return() {
    let engine = engine("checkout", 3).await;
    assert_eq!(engine.status().connections, 0, "an engine connects lazily");
    let mut a = engine.connect().await.unwrap();
    let b = engine.connect().await.unwrap();
    assert_eq!(engine.status().checked_out, 2);
    assert_eq!(
        a.scalar::<i32>("SELECT $1::int + 1", &[&41]).await.unwrap(),
        42
    );
    a.close().await;
    drop(b);
    wait_pool_idle(&engine).await;
    let status = engine.status();
    assert_eq!((status.idle, status.checked_out), (2, 0), "{status}");
    assert_eq!(
        status.to_string(),
        "Pool size: 3  Connections in pool: 2  Checked out: 0"
    );
    // A returned connection is reused, with its statement cache.
    let mut c = engine.connect().await.unwrap();
    assert_eq!(engine.status().connections, 2);
    c.scalar::<i32>("SELECT 1", &[]).await.unwrap();
    c.scalar::<i32>("SELECT 1", &[]).await.unwrap();
    assert!(c.cached_statements() >= 1);
}

#[tokio::test]
async fn pool_exhaustion_times_out_naming_the_pool_size() {
    let url = fresh_database("exhaust").await;
    let engine = Engine::builder(url)
        .pool_size(2)
        .checkout_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let _a = engine.connect().await.unwrap();
    let _b = engine.connect().await.unwrap();
    let started = Instant::now();
    let err = engine.connect().await.unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(err.is_pool_timeout(), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("size 2") && text.contains("0.30"), "{text}");
}

#[tokio::test]
async fn dispose_closes_idle_connections_and_refuses_checkouts() {
    let engine = engine("dispose", 4).await;
    let mut held = engine.connect().await.unwrap();
    drop(engine.connect().await.unwrap());
    wait_until(|| engine.status().idle == 1).await;
    let clone = engine.clone();
    engine.dispose().await;
    assert!(clone.is_disposed());
    assert!(engine.status().disposed);
    let err = clone.connect().await.unwrap_err();
    assert!(matches!(err, Error::Disposed), "{err:?}");
    assert!(err.to_string().contains("disposed"));
    // A connection checked out before stays usable.
    assert_eq!(held.scalar::<i32>("SELECT 7", &[]).await.unwrap(), 7);
}

async fn wait_until(mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "condition not reached in 10 s");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

// ---- echo ----

#[tokio::test]
async fn echo_logs_statements_parameters_and_rows() {
    let url = fresh_database("echo").await;
    let capture = LogCapture::default();
    let _guard = capture.install("session_core::echo=info");
    let engine = Engine::builder(url).echo(true).build().unwrap();
    let mut conn = engine.connect().await.unwrap();
    let n: i64 = conn
        .scalar("SELECT count(*) FROM generate_series(1, $1::int)", &[&3i32])
        .await
        .unwrap();
    assert_eq!(n, 3);
    let _ = conn.execute("SELECT nonsense", &[]).await;
    let log = capture.text();
    assert!(
        log.contains("SELECT count(*) FROM generate_series(1, $1::int)"),
        "{log}"
    );
    assert!(log.contains("params=[3]"), "{log}");
    assert!(log.contains("rows=1"), "{log}");
    assert!(log.contains("elapsed="), "{log}");
    assert!(
        log.contains("SELECT nonsense") && log.contains("error="),
        "{log}"
    );

    // Without echo nothing is logged.
    let quiet = Engine::builder(engine.url()).build().unwrap();
    drop(quiet);
    let before = capture.text().len();
    let mut conn2 = create_async_engine(&fresh_database("echo_off").await)
        .unwrap()
        .connect()
        .await
        .unwrap();
    conn2.scalar::<i32>("SELECT 1", &[]).await.unwrap();
    assert_eq!(capture.text().len(), before);
}

// ---- transactions ----

#[tokio::test]
async fn begin_travels_with_the_first_statement() {
    let url = fresh_database("deferred_begin").await;
    let capture = LogCapture::default();
    let _guard = capture.install("session_core::echo=info");
    let engine = Engine::builder(url).echo(true).build().unwrap();
    let mut setup = engine.connect().await.unwrap();
    setup.batch_execute("CREATE TABLE t (v int)").await.unwrap();
    setup.close().await;

    // A transaction that runs nothing sends nothing.
    let before = capture.text().len();
    let conn = engine.begin().await.unwrap();
    assert!(conn.in_transaction());
    let mut conn = conn;
    conn.commit().await.unwrap();
    conn.close().await;
    assert_eq!(capture.text()[before..].trim(), "", "no BEGIN, no COMMIT");

    // A statement whose future is dropped before its first poll sent nothing, BEGIN included:
    // the next statement still runs inside the transaction, so the rollback undoes it.
    let mut conn = engine.begin().await.unwrap();
    assert!(
        poll_then_drop(conn.execute("INSERT INTO t VALUES (1)", &[]), 0)
            .await
            .is_none()
    );
    conn.execute("INSERT INTO t VALUES (2)", &[]).await.unwrap();
    conn.rollback().await.unwrap();
    conn.close().await;
    // Dropped after its first poll: BEGIN went out with it; the rollback undoes that too.
    for polls in 1..4 {
        let mut conn = engine.begin().await.unwrap();
        let done = poll_then_drop(conn.execute("INSERT INTO t VALUES (3)", &[]), polls).await;
        assert!(conn.in_transaction());
        // Dropped in flight, the statement's outcome is unknown: the transaction is in doubt
        // (its connection was discarded) until it is rolled back.
        match conn.execute("INSERT INTO t VALUES (5)", &[]).await {
            // Done, or dropped while it was still being prepared (nothing ran).
            Ok(_) => {}
            Err(e) => assert!(done.is_none() && e.is_in_doubt(), "{e}"),
        }
        conn.rollback().await.unwrap();
        conn.close().await;
        if done.is_some() {
            break;
        }
    }
    assert_eq!(count_rows(&engine, "t").await, 0);
    // And the order on the wire stays BEGIN, statement, COMMIT.
    let mut conn = engine.begin().await.unwrap();
    conn.execute("INSERT INTO t VALUES (4)", &[]).await.unwrap();
    conn.commit().await.unwrap();
    conn.close().await;
    let log = capture.text();
    let lines: Vec<&str> = log.lines().rev().take(3).collect();
    assert!(lines[2].contains("BEGIN"), "{lines:#?}");
    assert!(lines[1].contains("INSERT INTO t VALUES (4)"), "{lines:#?}");
    assert!(lines[0].contains("COMMIT"), "{lines:#?}");
    assert_eq!(count_rows(&engine, "t").await, 1);
    wait_pool_idle(&engine).await;
    assert_eq!(idle_in_transaction(&engine).await, 0);
}

#[tokio::test]
async fn commit_rollback_and_savepoints() {
    let engine = engine("tx", 2).await;
    make_table(&engine).await;
    let mut conn = engine.connect().await.unwrap();

    // Autocommit outside a transaction; commit() without one is a no-op.
    conn.execute("INSERT INTO t VALUES (1, 'auto')", &[])
        .await
        .unwrap();
    conn.commit().await.unwrap();
    assert!(!conn.in_transaction());

    // Rolled back.
    let mut tx = conn.begin().await.unwrap();
    assert!(tx.is_active() && !tx.is_nested());
    tx.execute("INSERT INTO t VALUES (2, 'rolled back')", &[])
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(count_rows(&engine, "t").await, 1);

    // Committed, with a released and a rolled-back savepoint inside.
    let mut tx = conn.begin().await.unwrap();
    tx.execute("INSERT INTO t VALUES (3, 'outer')", &[])
        .await
        .unwrap();
    {
        let mut sp = tx.begin_nested().await.unwrap();
        assert!(sp.is_nested());
        assert!(sp.in_nested_transaction());
        sp.execute("INSERT INTO t VALUES (4, 'kept')", &[])
            .await
            .unwrap();
        sp.commit().await.unwrap();
    }
    {
        let mut sp = tx.begin_nested().await.unwrap();
        sp.execute("INSERT INTO t VALUES (5, 'undone')", &[])
            .await
            .unwrap();
        sp.rollback().await.unwrap();
    }
    {
        // A failed statement inside a savepoint: rolling back the savepoint keeps the outer
        // transaction usable.
        let mut sp = tx.begin_nested().await.unwrap();
        let err = sp
            .execute("INSERT INTO t VALUES (3, 'dup')", &[])
            .await
            .unwrap_err();
        assert!(err.is_unique_violation());
        sp.rollback().await.unwrap();
    }
    assert_eq!(tx.transaction_depth(), 1);
    tx.commit().await.unwrap();
    let ids: Vec<i32> = conn
        .query("SELECT id FROM t ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, [1, 3, 4]);

    // begin() twice is refused; begin_nested() without a transaction begins one.
    let tx = conn.begin().await.unwrap();
    drop(tx);
    let mut sp = conn.begin_nested().await.unwrap();
    assert_eq!(sp.transaction_depth(), 2);
    let err = sp.begin().await.unwrap_err();
    assert!(err.to_string().contains("already begun"), "{err}");
    drop(sp);
    conn.rollback().await.unwrap();
    assert!(!conn.in_transaction());
}

#[tokio::test]
async fn dropped_guard_rolls_back_before_the_next_statement() {
    let engine = engine("dropguard", 2).await;
    make_table(&engine).await;
    let mut conn = engine.connect().await.unwrap();
    {
        let mut tx = conn.begin().await.unwrap();
        tx.execute("INSERT INTO t VALUES (1, 'x')", &[])
            .await
            .unwrap();
        // dropped: no commit
    }
    let n: i64 = conn.scalar("SELECT count(*) FROM t", &[]).await.unwrap();
    assert_eq!(n, 0);
    assert!(!conn.in_transaction());

    // A dropped savepoint guard rolls back only the savepoint.
    let mut tx = conn.begin().await.unwrap();
    tx.execute("INSERT INTO t VALUES (1, 'outer')", &[])
        .await
        .unwrap();
    {
        let mut sp = tx.begin_nested().await.unwrap();
        sp.execute("INSERT INTO t VALUES (2, 'inner')", &[])
            .await
            .unwrap();
    }
    tx.execute("INSERT INTO t VALUES (3, 'after')", &[])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let n: i64 = conn.scalar("SELECT count(*) FROM t", &[]).await.unwrap();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn engine_begin_and_transaction_closure() {
    let engine = engine("enginebegin", 2).await;
    make_table(&engine).await;

    let mut conn = engine.begin().await.unwrap();
    assert!(conn.in_transaction());
    conn.execute("INSERT INTO t VALUES (1, 'a')", &[])
        .await
        .unwrap();
    conn.commit().await.unwrap();
    conn.close().await;

    // Dropped without commit: rolled back, connection back in the pool clean.
    let mut conn = engine.begin().await.unwrap();
    conn.execute("INSERT INTO t VALUES (2, 'b')", &[])
        .await
        .unwrap();
    drop(conn);
    wait_pool_idle(&engine).await;
    assert_eq!(idle_in_transaction(&engine).await, 0);
    assert_eq!(count_rows(&engine, "t").await, 1);

    let n: i64 = engine
        .transaction(async |conn| {
            conn.execute("INSERT INTO t VALUES (3, 'c')", &[]).await?;
            conn.scalar("SELECT count(*) FROM t", &[]).await
        })
        .await
        .unwrap();
    assert_eq!(n, 2);

    let err: Result<(), Error> = engine
        .transaction(async |conn| {
            conn.execute("INSERT INTO t VALUES (4, 'd')", &[]).await?;
            conn.execute("INSERT INTO t VALUES (4, 'dup')", &[]).await?;
            Ok(())
        })
        .await;
    assert!(err.unwrap_err().is_unique_violation());
    assert_eq!(count_rows(&engine, "t").await, 2);
    wait_pool_idle(&engine).await;
    assert_eq!(idle_in_transaction(&engine).await, 0);
}

// ---- cancellation ----

/// Drops `scenario` after 0, 1, 2, ... polls until it completes, and checks after each drop
/// that no backend is left idle in transaction, the pool is usable, and uncommitted data is
/// absent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_matrix_leaves_no_open_transaction() {
    let engine = engine("cancel", 2).await;
    make_table(&engine).await;
    let mut completed = 0;
    for scenario in 0..4 {
        for polls in 0.. {
            let mut conn = engine.connect().await.unwrap();
            let id = scenario * 1000 + polls as i32;
            let done = match scenario {
                0 => poll_then_drop(
                    async {
                        let mut tx = conn.begin().await?;
                        tx.execute("INSERT INTO t VALUES ($1, 'x')", &[&id]).await?;
                        tx.commit().await
                    },
                    polls,
                )
                .await
                .map(|r| r.unwrap()),
                1 => poll_then_drop(
                    async {
                        let mut tx = conn.begin().await?;
                        tx.execute("INSERT INTO t VALUES ($1, 'x')", &[&id]).await?;
                        let mut sp = tx.begin_nested().await?;
                        sp.execute("INSERT INTO t VALUES ($1, 'y')", &[&(id + 500)])
                            .await?;
                        sp.commit().await?;
                        tx.commit().await
                    },
                    polls,
                )
                .await
                .map(|r| r.unwrap()),
                2 => poll_then_drop(
                    async {
                        let mut tx = conn.begin().await?;
                        tx.execute("INSERT INTO t VALUES ($1, 'x')", &[&id]).await?;
                        tx.rollback().await
                    },
                    polls,
                )
                .await
                .map(|r| r.unwrap()),
                _ => poll_then_drop(
                    engine.transaction(async |c| {
                        c.execute("INSERT INTO t VALUES ($1, 'x')", &[&id]).await?;
                        Ok::<_, Error>(())
                    }),
                    polls,
                )
                .await
                .map(|r| r.unwrap()),
            };
            // The same connection stays usable after a rollback.
            conn.rollback().await.unwrap();
            assert!(!conn.in_transaction());
            let present: i64 = conn
                .scalar("SELECT count(*) FROM t WHERE id = $1", &[&id])
                .await
                .unwrap();
            drop(conn);
            wait_pool_idle(&engine).await;
            assert_eq!(
                idle_in_transaction(&engine).await,
                0,
                "scenario {scenario}, dropped after {polls} polls"
            );
            match (scenario, done) {
                (2, _) => assert_eq!(present, 0, "rolled back data visible"),
                (_, Some(())) => {
                    assert_eq!(present, 1, "scenario {scenario}: committed data lost");
                    completed += 1;
                    break;
                }
                // Dropped before COMMIT was answered: either outcome is allowed, but never a
                // partial one (checked for scenario 1 below).
                (_, None) => {}
            }
            if scenario == 1 {
                let inner: i64 = engine
                    .connect()
                    .await
                    .unwrap()
                    .scalar("SELECT count(*) FROM t WHERE id = $1", &[&(id + 500)])
                    .await
                    .unwrap();
                assert_eq!(inner, present, "savepoint data without its transaction");
            }
            if scenario == 2 && done.is_some() {
                completed += 1;
                break;
            }
            assert!(polls < 200, "scenario {scenario} never completed");
        }
    }
    assert_eq!(completed, 4);
}

#[tokio::test]
async fn dropped_checkout_returns_nothing_lost() {
    let engine = engine("dropcheckout", 1).await;
    for polls in 0..5 {
        let _ = poll_then_drop(engine.connect(), polls).await;
    }
    let mut conn = engine.connect().await.unwrap();
    assert_eq!(conn.scalar::<i32>("SELECT 1", &[]).await.unwrap(), 1);
}

// ---- errors ----

#[tokio::test]
async fn errors_carry_sqlstate_and_predicates() {
    let engine = engine("errors", 2).await;
    make_table(&engine).await;
    let mut conn = engine.connect().await.unwrap();
    conn.execute("INSERT INTO t VALUES (1, 'a')", &[])
        .await
        .unwrap();

    let e = conn
        .execute("INSERT INTO t VALUES (1, 'a')", &[])
        .await
        .unwrap_err();
    assert!(e.is_unique_violation() && e.is_integrity_error());
    assert_eq!(e.code().unwrap().code(), "23505");
    assert_eq!(e.as_db_error().unwrap().constraint(), Some("t_pkey"));
    assert_eq!(e.as_db_error().unwrap().table(), Some("t"));
    assert!(e.to_string().contains("23505"), "{e}");
    assert!(
        e.to_string()
            .contains("[SQL: INSERT INTO t VALUES (1, 'a')]"),
        "{e}"
    );
    assert!(std::error::Error::source(&e).is_some());

    let e = conn
        .execute("INSERT INTO t VALUES (2, 'b', 99)", &[])
        .await
        .unwrap_err();
    assert!(e.is_foreign_key_violation(), "{e}");
    let e = conn
        .execute("INSERT INTO t (id) VALUES (3)", &[])
        .await
        .unwrap_err();
    assert!(e.is_not_null_violation(), "{e}");
    let e = conn.execute("SELEC 1", &[]).await.unwrap_err();
    assert_eq!(e.code().unwrap().code(), "42601", "{e}");
    assert!(e.to_string().contains("syntax error"), "{e}");
    assert!(!e.is_disconnect());

    // Wrong parameter count and type.
    let e = conn
        .execute("SELECT $1::int", &[])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("expected 1 parameters but got 0"), "{e}");
    let e = conn
        .execute("SELECT $1::int", &[&"not a number"])
        .await
        .unwrap_err();
    let text = format!("{e}");
    assert!(text.contains("error serializing parameter 0"), "{text}");

    // Result-shape errors with SQLAlchemy's messages.
    let e = conn
        .query_one("SELECT 1 WHERE false", &[])
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "No row was found when one was required");
    let e = conn
        .query_opt("SELECT generate_series(1, 2)", &[])
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Multiple rows were found when exactly one was required"
    );
}

#[tokio::test]
async fn terminated_backend_is_a_disconnect_and_the_pool_recovers() {
    let engine = engine("terminate", 2).await;
    let mut victim = engine.connect().await.unwrap();
    let pid: i32 = victim.scalar("SELECT pg_backend_pid()", &[]).await.unwrap();
    let mut tx = victim.begin().await.unwrap();
    tx.execute("CREATE TABLE lost (id int)", &[]).await.unwrap();
    let mut killer = engine.connect().await.unwrap();
    let _: bool = killer
        .scalar("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    killer.close().await;
    let err = tx.execute("SELECT 1", &[]).await.unwrap_err();
    assert!(err.is_disconnect(), "{err:?}");
    drop(tx);
    drop(victim);
    // The dead connection is discarded; the next checkout works, and nothing was committed.
    let mut conn = engine.connect().await.unwrap();
    let exists: bool = conn
        .scalar("SELECT to_regclass('lost') IS NOT NULL", &[])
        .await
        .unwrap();
    assert!(!exists);
}

// ---- the demo the README's first command runs ----

#[tokio::test]
async fn demo_prints_what_sqlalchemys_example_prints() {
    let url = fresh_database("demo").await;
    let mut out = Vec::new();
    session_tools::demo::run(&url, false, &mut out)
        .await
        .unwrap();
    let out = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    // Three As, each with its created-at line and its Bs, then the updated value.
    assert_eq!(lines.len(), 3 * 2 + 4 + 1, "{out}");
    for expected in [
        "A(id=1, data=\"a1\")",
        "A(id=2, data=\"a2\")",
        "A(id=3, data=\"a3\")",
        "B(id=1, a_id=1, data=\"b1\")",
        "B(id=2, a_id=1, data=\"b2\")",
        "B(id=3, a_id=3, data=\"b3\")",
        "B(id=4, a_id=3, data=\"b4\")",
    ] {
        assert!(lines.contains(&expected), "missing {expected}:\n{out}");
    }
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("created at: 20"))
            .count(),
        3,
        "{out}"
    );
    // Each B follows its own A.
    let a1 = lines.iter().position(|l| l.starts_with("A(id=1")).unwrap();
    assert!(lines[a1 + 2].starts_with("B(id=1"), "{out}");
    assert_eq!(lines.last(), Some(&"new data"));
}
