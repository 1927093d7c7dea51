//! Observability: the spans an OpenTelemetry exporter would get (checkout, statement, flush,
//! commit, with the database conventions' fields), the pool's counters, and the slow-statement
//! warning. Spans are captured with a `tracing` layer on the test's thread.

use std::time::Duration;

use session_core::{AsyncSession, Engine, Entity, Obj};
use session_tests::spans::SpanCapture;
use session_tests::support::engine;

/// A note.
#[derive(Debug, Clone, Default, PartialEq, Entity)]
#[entity(table = "note")]
pub struct Note {
    #[entity(primary_key, generated)]
    id: i32,
    body: String,
}

async fn note_engine(prefix: &str, pool_size: u32) -> Engine {
    let engine = engine(prefix, pool_size).await;
    let mut conn = engine.connect().await.unwrap();
    conn.batch_execute("CREATE TABLE note (id serial PRIMARY KEY, body text NOT NULL)")
        .await
        .unwrap();
    conn.close().await;
    engine
}

fn port_of(engine: &Engine) -> String {
    let url = engine.url();
    let after = url.rsplit_once(':').unwrap().1;
    after.split('/').next().unwrap().to_string()
}

#[tokio::test]
async fn statement_flush_and_commit_spans_carry_the_database_conventions() {
    let engine = note_engine("spans", 2).await;
    let database = engine.url().rsplit('/').next().unwrap().to_string();
    let capture = SpanCapture::default();
    let _guard = capture.install();

    let session = AsyncSession::new(engine.clone());
    session
        .add(&Obj::new(Note {
            body: "a secret value 8731".into(),
            ..Default::default()
        }))
        .unwrap();
    session.flush().await.unwrap();
    session.commit().await.unwrap();
    let fresh = AsyncSession::new(engine.clone());
    let notes = fresh
        .scalars(session_core::select::<Note>())
        .await
        .unwrap()
        .all();
    assert_eq!(notes.len(), 1);
    fresh.close().await;

    let spans = capture.spans();
    for span in &spans {
        assert_eq!(span.field("db.system.name"), Some("postgresql"), "{span:?}");
        assert_eq!(
            span.field("db.namespace"),
            Some(database.as_str()),
            "{span:?}"
        );
        // Parameter values are never recorded.
        assert!(
            span.fields.values().all(|v| !v.contains("8731")),
            "a parameter value in {span:?}"
        );
        assert!(span.closed, "{span:?}");
    }
    let checkout = &capture.named("checkout")[0];
    assert_eq!(checkout.field("server.address"), Some("127.0.0.1"));
    assert_eq!(
        checkout.field("server.port"),
        Some(port_of(&engine).as_str())
    );

    let statements = capture.named("statement");
    let insert = statements
        .iter()
        .find(|s| s.field("db.operation.name") == Some("INSERT"))
        .unwrap_or_else(|| panic!("no INSERT span in {statements:#?}"));
    assert_eq!(insert.field("db.collection.name"), Some("note"));
    assert_eq!(insert.field("otel.name"), Some("INSERT note"));
    let text = insert.field("db.query.text").unwrap();
    assert!(text.starts_with("INSERT INTO \"note\""), "{text}");
    assert!(text.contains("$1"), "{text}");
    assert_eq!(insert.field("server.address"), Some("127.0.0.1"));
    assert_eq!(insert.field("server.port"), Some(port_of(&engine).as_str()));
    assert_eq!(insert.field("error.type"), None);
    // The INSERT ran inside the explicit flush's span.
    assert_eq!(insert.parent.as_deref(), Some("flush"));

    let commit = statements
        .iter()
        .find(|s| s.field("db.operation.name") == Some("COMMIT"))
        .expect("a COMMIT statement span");
    assert_eq!(commit.parent.as_deref(), Some("commit"));
    let select = statements
        .iter()
        .find(|s| s.field("db.operation.name") == Some("SELECT"))
        .expect("a SELECT span");
    assert_eq!(select.field("db.collection.name"), Some("note"));
    assert_eq!(capture.named("flush").len(), 1);
    assert_eq!(capture.named("commit").len(), 1);
    assert_eq!(capture.named("commit")[0].field("error.type"), None);
}

#[tokio::test]
async fn a_failing_statement_records_its_sqlstate_as_error_type() {
    let engine = note_engine("spans_err", 1).await;
    let capture = SpanCapture::default();
    let _guard = capture.install();
    let mut conn = engine.connect().await.unwrap();
    let err = conn
        .query("SELECT * FROM no_such_table WHERE id = $1", &[&1_i32])
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("42P01"));
    conn.close().await;

    let session = AsyncSession::new(engine.clone());
    session
        .add(&Obj::new(Note {
            id: 1,
            body: "x".into(),
        }))
        .unwrap();
    session.commit().await.unwrap();
    let dup = AsyncSession::new(engine.clone());
    dup.add(&Obj::new(Note {
        id: 1,
        body: "y".into(),
    }))
    .unwrap();
    assert!(dup.commit().await.unwrap_err().is_unique_violation());

    // The unknown table fails when the statement is prepared; the duplicate key when the
    // INSERT runs.
    let failed: Vec<_> = capture
        .spans()
        .into_iter()
        .filter(|s| s.name != "commit" && s.field("error.type").is_some())
        .collect();
    assert_eq!(failed.len(), 2, "{failed:#?}");
    assert_eq!(failed[0].name, "prepare");
    assert_eq!(failed[0].field("error.type"), Some("42P01"));
    assert_eq!(failed[0].field("db.response.status_code"), Some("42P01"));
    assert_eq!(failed[0].field("otel.status_code"), Some("ERROR"));
    assert_eq!(failed[0].field("db.collection.name"), Some("no_such_table"));
    assert_eq!(failed[1].name, "statement");
    assert_eq!(failed[1].field("error.type"), Some("23505"));
    assert_eq!(failed[1].field("db.operation.name"), Some("INSERT"));
    let commits = capture.named("commit");
    assert_eq!(commits.last().unwrap().field("error.type"), Some("23505"));
}

#[tokio::test]
async fn pool_counters_show_waits_and_timeouts() {
    let url = session_tests::support::fresh_database("pool_metrics").await;
    let engine = Engine::builder(url)
        .pool_size(1)
        .checkout_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let held = engine.connect().await.unwrap();
    let status = engine.status();
    assert_eq!((status.size, status.checked_out, status.idle), (1, 1, 0));
    assert_eq!(status.opened, 1);
    // The only connection is out: a second checkout waits, then times out.
    let err = engine.connect().await.unwrap_err();
    assert!(err.is_pool_timeout(), "{err}");
    let status = engine.status();
    assert_eq!(status.wait_timeouts, 1);
    // A checkout that waits while the connection is given back gets it. (On this
    // current-thread runtime the spawned checkout starts waiting at our first await.)
    let waiter = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.connect().await.map(|c| c.is_closed()) })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiter.is_finished());
    drop(held);
    assert!(!waiter.await.unwrap().unwrap());
    let status = engine.status();
    assert_eq!(status.wait_timeouts, 1);
    assert!(status.waits >= 1, "{status:?}");
    assert_eq!(status.checkouts, 2, "{status:?}");
    assert!(status.wait_time >= Duration::from_millis(300), "{status:?}");
    assert_eq!(status.opened, 1);
    assert_eq!(status.discarded, 0);
}

#[tokio::test]
async fn slow_statements_are_logged_at_warn_with_their_sql() {
    let url = session_tests::support::fresh_database("slow").await;
    let engine = Engine::builder(url)
        .slow_statement_threshold(Duration::from_millis(250))
        .build()
        .unwrap();
    assert_eq!(
        engine.slow_statement_threshold(),
        Some(Duration::from_millis(250))
    );
    let capture = SpanCapture::default();
    let _guard = capture.install();
    let mut conn = engine.connect().await.unwrap();
    let _: i32 = conn.scalar("SELECT $1::int + 1", &[&41_i32]).await.unwrap();
    conn.execute("SELECT pg_sleep($1)", &[&0.4_f64])
        .await
        .unwrap();
    conn.close().await;
    let slow: Vec<_> = capture
        .events()
        .into_iter()
        .filter(|e| e["target"] == "session_core::slow")
        .collect();
    assert_eq!(slow.len(), 1, "{slow:#?}");
    assert_eq!(slow[0]["level"], "WARN");
    assert_eq!(slow[0]["sql"], "SELECT pg_sleep($1)");
    assert_eq!(slow[0]["message"], "slow statement");
    assert!(
        !slow[0].values().any(|v| v.contains("0.4")),
        "{:?}",
        slow[0]
    );
}
