//! Read replicas on a real primary and its streaming hot standby (`pg_basebackup -R`), one
//! pair for this binary: where each statement ran (`pg_is_in_recovery()`, the spans'
//! `server.port`), a write then a read in one session, a lagging replica (replay paused with
//! `pg_wal_replay_pause()`), read-your-writes, and a replica stopped mid-run. The tests take
//! turns (they pause, stop and restart the standby).

use std::sync::OnceLock;
use std::time::Duration;

use session_core::{
    AsyncSession, Engine, EngineBuilder, Entity, Obj, SharedConnection, select, text,
};
use session_tests::spans::SpanCapture;
use session_tools::pg::{Cluster, ClusterOptions};

/// A note.
#[derive(Debug, Clone, Default, PartialEq, Entity)]
#[entity(table = "note")]
pub struct Note {
    #[entity(primary_key, generated)]
    id: i32,
    body: String,
}

static GATE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn pair() -> &'static (Cluster, Cluster) {
    static PAIR: OnceLock<(Cluster, Cluster)> = OnceLock::new();
    PAIR.get_or_init(|| {
        let primary = Cluster::start_owned_with(ClusterOptions::primary()).expect("primary");
        let standby = primary.start_standby().expect("standby");
        (primary, standby)
    })
}

/// A fresh database with a `note` table, replayed on the standby: (primary URL, standby URL).
async fn database(prefix: &str) -> (String, String) {
    let (primary, standby) = tokio::task::spawn_blocking(pair).await.unwrap();
    let url = primary.create_database(prefix).await.unwrap();
    let name = url.rsplit('/').next().unwrap().to_string();
    let engine = Engine::builder(url.clone()).build().unwrap();
    let mut conn = engine.connect().await.unwrap();
    conn.batch_execute(
        "CREATE TABLE note (id serial PRIMARY KEY, body text NOT NULL);
         INSERT INTO note (body) VALUES ('first')",
    )
    .await
    .unwrap();
    conn.close().await;
    engine.dispose().await;
    primary
        .wait_replayed(standby, Duration::from_secs(30))
        .await
        .unwrap();
    (url, standby.database_url(&name))
}

fn builder(primary: &str) -> EngineBuilder {
    Engine::builder(primary.to_string())
        .pool_size(4)
        .checkout_timeout(Duration::from_secs(10))
}

/// Whether `session`'s next statement runs on a standby.
async fn on_standby(session: &AsyncSession) -> session_core::Result<bool> {
    Ok(session
        .execute(text("SELECT pg_is_in_recovery()"))
        .await?
        .scalar::<bool>()?
        .unwrap())
}

async fn fresh_on_standby(engine: &Engine) -> bool {
    let s = AsyncSession::new(engine.clone());
    let answer = on_standby(&s).await.unwrap();
    s.close().await;
    answer
}

async fn standby_sql(sql: &str) {
    let (_, standby) = pair();
    let engine = Engine::builder(standby.url()).build().unwrap();
    let mut conn = engine.connect().await.unwrap();
    conn.batch_execute(sql).await.unwrap();
    conn.close().await;
    engine.dispose().await;
}

/// Waits until the standby has received WAL that it has not replayed (replay is paused).
async fn until_standby_is_behind() {
    let (_, standby) = pair();
    let engine = Engine::builder(standby.url()).build().unwrap();
    let mut conn = engine.connect().await.unwrap();
    for _ in 0..2000 {
        let behind: bool = conn
            .scalar(
                "SELECT pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()",
                &[],
            )
            .await
            .unwrap();
        if behind {
            conn.close().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the standby never received the primary's new WAL");
}

#[tokio::test]
async fn reads_go_to_replicas_until_the_transaction_writes() {
    let _turn = GATE.lock().await;
    let (primary, replica) = database("replica_routing").await;
    // The same standby twice: two pools, taken in turn.
    let engine = builder(&primary)
        .read_replica(replica.clone())
        .read_replica(replica)
        .build()
        .unwrap();
    assert_eq!(engine.replicas().len(), 2);
    let (_, standby) = pair();
    let standby_port = standby.port().unwrap().to_string();

    let capture = SpanCapture::default();
    let guard = capture.install();
    let session = AsyncSession::new(engine.clone());
    assert!(
        on_standby(&session).await.unwrap(),
        "a read goes to a replica"
    );
    let notes = session.scalars(select::<Note>()).await.unwrap().all();
    assert_eq!(notes.len(), 1);
    let got = session.get::<Note>(1).await.unwrap();
    assert!(got.is_some());
    // A write: the flush and every later statement of this transaction use the primary,
    // which sees the unflushed-then-flushed row.
    session
        .add(&Obj::new(Note {
            body: "second".into(),
            ..Default::default()
        }))
        .unwrap();
    session.flush().await.unwrap();
    assert!(
        !on_standby(&session).await.unwrap(),
        "after a flush: the primary"
    );
    let n: Option<i64> = session
        .execute(text("SELECT count(*) FROM note"))
        .await
        .unwrap()
        .scalar()
        .unwrap();
    assert_eq!(n, Some(2));
    session.commit().await.unwrap();
    drop(guard);
    let select_span = capture
        .named("statement")
        .into_iter()
        .find(|s| s.field("db.collection.name") == Some("note"))
        .unwrap();
    assert_eq!(
        select_span.field("server.port"),
        Some(standby_port.as_str())
    );

    // The next transaction reads from a replica again; FOR UPDATE and writing SQL do not.
    assert!(on_standby(&session).await.unwrap());
    session.commit().await.unwrap();
    let locked = AsyncSession::new(engine.clone());
    let row = locked
        .execute(text(
            "SELECT pg_is_in_recovery() FROM note WHERE id = 1 FOR UPDATE",
        ))
        .await
        .unwrap()
        .scalar::<bool>()
        .unwrap();
    assert_eq!(row, Some(false));
    assert!(
        !on_standby(&locked).await.unwrap(),
        "the lock keeps it on the primary"
    );
    locked.close().await;

    // A session bound to a connection of the primary stays in that connection's transaction.
    let shared = SharedConnection::new(engine.connect().await.unwrap());
    let bound = AsyncSession::builder()
        .bind(engine.clone())
        .bind_connection(shared.clone())
        .build();
    assert!(!on_standby(&bound).await.unwrap());
    bound.close().await;

    // Spread: each replica's pool served transactions.
    for _ in 0..4 {
        assert!(fresh_on_standby(&engine).await);
    }
    for r in engine.replicas() {
        assert!(r.status().checkouts >= 2, "{}", r.status());
    }
}

#[tokio::test]
async fn a_lagging_replica_is_skipped_until_it_catches_up() {
    let _turn = GATE.lock().await;
    let (primary, replica) = database("replica_lag").await;
    let engine = builder(&primary)
        .read_replica(replica)
        .replica_max_lag(Duration::from_millis(300))
        .build()
        .unwrap();
    assert!(fresh_on_standby(&engine).await);

    standby_sql("SELECT pg_wal_replay_pause()").await;
    let writer = AsyncSession::new(engine.clone());
    writer
        .add(&Obj::new(Note {
            body: "while paused".into(),
            ..Default::default()
        }))
        .unwrap();
    writer.commit().await.unwrap();
    until_standby_is_behind().await;
    // Let the lag grow past the bound (and the last probe expire).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !fresh_on_standby(&engine).await,
        "a lagging replica is skipped"
    );

    standby_sql("SELECT pg_wal_replay_resume()").await;
    let (p, s) = pair();
    p.wait_replayed(s, Duration::from_secs(30)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(
        fresh_on_standby(&engine).await,
        "caught up: reads return to it"
    );
}

#[tokio::test]
async fn read_your_writes_waits_for_the_replica_or_reads_the_primary() {
    let _turn = GATE.lock().await;
    let (primary, replica) = database("replica_ryw").await;
    let engine = builder(&primary)
        .read_replica(replica)
        .read_your_writes(Duration::from_millis(200))
        .build()
        .unwrap();
    // (rows, on a standby) as one transaction of `s` sees them.
    let count = async |s: &AsyncSession| {
        let row = s
            .execute(text("SELECT count(*), pg_is_in_recovery() FROM note"))
            .await
            .unwrap()
            .one()
            .unwrap();
        s.commit().await.unwrap();
        (row.get::<_, i64>(0), row.get::<_, bool>(1))
    };
    let writer = AsyncSession::new(engine.clone());
    let other = AsyncSession::new(engine.clone());
    assert_eq!(count(&writer).await, (1, true));

    standby_sql("SELECT pg_wal_replay_pause()").await;
    writer
        .add(&Obj::new(Note {
            body: "mine".into(),
            ..Default::default()
        }))
        .unwrap();
    writer.commit().await.unwrap();
    until_standby_is_behind().await;
    // The writer's read waits for the replica, which has not replayed the commit, then goes to
    // the primary and sees it; another session has nothing to wait for and reads the replica.
    assert_eq!(count(&writer).await, (2, false));
    assert_eq!(count(&other).await, (1, true));

    standby_sql("SELECT pg_wal_replay_resume()").await;
    // Replayed (soon): the writer reads the replica again, and sees its write there.
    let mut seen = count(&writer).await;
    for _ in 0..50 {
        if seen.1 {
            break;
        }
        seen = count(&writer).await;
    }
    assert_eq!(seen, (2, true));
}

#[tokio::test]
async fn a_replica_stopped_mid_run_sends_reads_to_the_primary() {
    let _turn = GATE.lock().await;
    let (primary, replica) = database("replica_down").await;
    let engine = builder(&primary).read_replica(replica).build().unwrap();
    let in_flight = AsyncSession::new(engine.clone());
    assert!(on_standby(&in_flight).await.unwrap());

    tokio::task::spawn_blocking(|| pair().1.stop_server())
        .await
        .unwrap()
        .expect("stop the standby");
    // Started again however this test ends, for the other tests.
    let _restart = Restart;
    let err = on_standby(&in_flight).await.unwrap_err();
    assert!(err.is_disconnect(), "{err:?}");
    // The rollback may report the closed connection too; the transaction is over either way.
    if let Err(e) = in_flight.rollback().await {
        assert!(e.is_disconnect(), "{e:?}");
    }
    // Later sessions (and this one, after its rollback) read from the primary.
    assert!(!on_standby(&in_flight).await.unwrap());
    in_flight.close().await;
    for _ in 0..3 {
        assert!(!fresh_on_standby(&engine).await);
    }
    let notes = AsyncSession::new(engine.clone())
        .scalars(select::<Note>())
        .await
        .unwrap()
        .all();
    assert_eq!(notes.len(), 1);
}

/// Starts the standby again when dropped.
struct Restart;

impl Drop for Restart {
    fn drop(&mut self) {
        pair().1.start_server().expect("restart the standby");
    }
}
