//! `join_transaction_mode` (SQLAlchemy's): what a session bound to a connection does with a
//! transaction already open on it, checked on the connection and from outside.

use session_core::{
    AsyncConnection, Engine, JoinTransactionMode, SharedConnection, async_sessionmaker,
};
use session_core::{SessionOptions, text};
use session_tests::support::{a, count_rows, schema_engine};

/// What one scenario leaves behind.
#[derive(Debug, PartialEq)]
struct Outcome {
    /// The outer transaction is still open after the session committed.
    open_after_commit: bool,
    /// Rows visible on the connection after the commit.
    inside_after_commit: i64,
    /// Rows visible from outside after the commit.
    outside_after_commit: i64,
    /// The outer transaction is still open after a second session flushed and rolled back.
    open_after_rollback: bool,
    /// Rows visible on the connection after that rollback.
    inside_after_rollback: i64,
}

async fn scenario(engine: &Engine, mode: JoinTransactionMode, in_savepoint: bool) -> Outcome {
    let mut outer = engine.begin().await.unwrap();
    outer
        .execute("INSERT INTO a (data) VALUES ('outer')", &[])
        .await
        .unwrap();
    if in_savepoint {
        // Leave a savepoint open on the connection (its guard would roll it back when dropped).
        let sp = outer.begin_nested().await.unwrap();
        std::mem::forget(sp);
    }
    let shared = SharedConnection::new(outer);
    let maker = async_sessionmaker(None);
    maker.configure(
        SessionOptions::new()
            .bind_connection(shared.clone())
            .join_transaction_mode(mode),
    );

    let session = maker.session();
    session.add(&a("committed by the session")).unwrap();
    session.commit().await.unwrap();
    let mut conn: AsyncConnection = shared.take().unwrap();
    let open_after_commit = conn.in_transaction();
    let inside_after_commit: i64 = conn.scalar("SELECT count(*) FROM a", &[]).await.unwrap();
    let outside_after_commit = count_rows(engine, "a").await;
    shared.put_back(conn);

    let rolled = maker.session();
    rolled.add(&a("rolled back by the session")).unwrap();
    rolled.flush().await.unwrap();
    rolled.execute(text("SELECT 1")).await.unwrap();
    rolled.rollback().await.unwrap();
    let mut conn = shared.take().unwrap();
    let open_after_rollback = conn.in_transaction();
    let inside_after_rollback: i64 = conn.scalar("SELECT count(*) FROM a", &[]).await.unwrap();
    if conn.in_transaction() {
        conn.rollback().await.unwrap();
    }
    conn.execute("DELETE FROM a", &[]).await.unwrap();
    conn.close().await;
    Outcome {
        open_after_commit,
        inside_after_commit,
        outside_after_commit,
        open_after_rollback,
        inside_after_rollback,
    }
}

#[tokio::test]
async fn each_join_mode_does_what_sqlalchemys_does() {
    let engine = schema_engine("join_modes", 4).await;
    // create_savepoint: the session commits and rolls back its own savepoint only.
    assert_eq!(
        scenario(&engine, JoinTransactionMode::CreateSavepoint, false).await,
        Outcome {
            open_after_commit: true,
            inside_after_commit: 2,
            outside_after_commit: 0,
            open_after_rollback: true,
            inside_after_rollback: 2,
        }
    );
    // rollback_only (and conservative_savepoint outside a savepoint): commit leaves the outer
    // transaction open; rollback rolls all of it back, the outer row included.
    for mode in [
        JoinTransactionMode::RollbackOnly,
        JoinTransactionMode::ConservativeSavepoint,
    ] {
        assert_eq!(
            scenario(&engine, mode, false).await,
            Outcome {
                open_after_commit: true,
                inside_after_commit: 2,
                outside_after_commit: 0,
                open_after_rollback: false,
                inside_after_rollback: 0,
            },
            "{mode:?}"
        );
    }
    // control_fully: the session's commit commits the outer transaction.
    assert_eq!(
        scenario(&engine, JoinTransactionMode::ControlFully, false).await,
        Outcome {
            open_after_commit: false,
            inside_after_commit: 2,
            outside_after_commit: 2,
            open_after_rollback: false,
            inside_after_rollback: 2,
        }
    );
    // conservative_savepoint inside a savepoint: like create_savepoint.
    assert_eq!(
        scenario(&engine, JoinTransactionMode::ConservativeSavepoint, true).await,
        Outcome {
            open_after_commit: true,
            inside_after_commit: 2,
            outside_after_commit: 0,
            open_after_rollback: true,
            inside_after_rollback: 2,
        }
    );
    assert!(
        format!(
            "{:?}",
            async_sessionmaker(None).join_transaction_mode(JoinTransactionMode::ControlFully)
        )
        .contains("join_transaction_mode='control_fully'")
    );
}
