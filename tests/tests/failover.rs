//! Failover against a real primary and its streaming hot standby (`pg_basebackup -R`): an
//! engine on `host=primary,standby` with `target_session_attrs=read-write` writes to the
//! primary; after the primary stops and the standby is promoted, the session in flight gets a
//! disconnect error, the dead connections are discarded, and later sessions reach the new
//! primary. The pair is this binary's own (the test stops a server).

use std::time::Duration;

use session_core::{AsyncSession, Engine, text};
use session_tools::pg::{Cluster, ClusterOptions};

/// `(port, in recovery)` of the server a fresh session's statement runs on.
async fn where_it_runs(engine: &Engine) -> session_core::Result<(i32, bool)> {
    let session = AsyncSession::new(engine.clone());
    let row = session
        .execute(text("SELECT inet_server_port(), pg_is_in_recovery()"))
        .await?
        .one()?;
    session.close().await;
    Ok((row.get(0), row.get(1)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_follows_a_promoted_standby() {
    let (primary, standby) = tokio::task::spawn_blocking(|| {
        let primary = Cluster::start_owned_with(ClusterOptions::primary()).expect("primary");
        let standby = primary.start_standby().expect("standby");
        (primary, standby)
    })
    .await
    .unwrap();
    let (p, s) = (primary.port().unwrap(), standby.port().unwrap());
    // The standby first: read-write skips it while it is one.
    let url = format!(
        "postgresql://postgres@127.0.0.1:{s},127.0.0.1:{p}/postgres\
         ?target_session_attrs=read-write&connect_timeout=5"
    );
    let engine = Engine::builder(url)
        .pool_size(3)
        .checkout_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    assert_eq!(
        engine.url(),
        format!("postgresql://postgres@127.0.0.1:{s},127.0.0.1:{p}/postgres")
    );
    assert_eq!(where_it_runs(&engine).await.unwrap(), (i32::from(p), false));
    let setup = AsyncSession::new(engine.clone());
    setup
        .execute(text("CREATE TABLE event (id int PRIMARY KEY, what text)"))
        .await
        .unwrap();
    setup
        .execute(text("INSERT INTO event VALUES (1, 'before')"))
        .await
        .unwrap();
    setup.commit().await.unwrap();
    primary
        .wait_replayed(&standby, Duration::from_secs(30))
        .await
        .unwrap();

    // A session in flight on the primary: its transaction has written, not committed.
    let in_flight = AsyncSession::new(engine.clone());
    in_flight
        .execute(text("INSERT INTO event VALUES (2, 'lost')"))
        .await
        .unwrap();
    let before = engine.status();

    tokio::task::spawn_blocking(move || primary.stop_server().map(|()| primary))
        .await
        .unwrap()
        .expect("stop the primary");
    let err = in_flight.commit().await.unwrap_err();
    assert!(err.is_disconnect(), "{err:?}");
    in_flight.rollback().await.unwrap();
    in_flight.close().await;

    // No server takes writes now: a checkout says so instead of waiting.
    let err = engine.connect().await.unwrap_err();
    assert!(
        matches!(err, session_core::Error::Connect { .. }),
        "{err:?}"
    );

    let standby = tokio::task::spawn_blocking(move || standby.promote().map(|()| standby))
        .await
        .unwrap()
        .expect("promote the standby");
    assert_eq!(where_it_runs(&engine).await.unwrap(), (i32::from(s), false));
    let later = AsyncSession::new(engine.clone());
    later
        .execute(text("INSERT INTO event VALUES (3, 'after')"))
        .await
        .unwrap();
    later.commit().await.unwrap();
    let rows = AsyncSession::new(engine.clone())
        .execute(text("SELECT id, what FROM event ORDER BY id"))
        .await
        .unwrap()
        .all();
    let rows: Vec<(i32, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(rows, [(1, "before".into()), (3, "after".into())]);
    let after = engine.status();
    assert!(
        after.discarded > before.discarded,
        "{before:?} -> {after:?}"
    );
    assert!(after.opened > before.opened, "{before:?} -> {after:?}");
    drop(standby);
}
