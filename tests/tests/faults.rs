//! Faults and bad input: nothing lost, nothing leaked, clear errors. Tests that restart their
//! server own a cluster of their own.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use session_core::{
    AsyncSession, Engine, Error, Obj, ObjectState, async_sessionmaker, select, text,
};
use session_scoped::{async_scoped_session, scope};
use session_tests::model::{A, B, Item, metadata};
use session_tests::odd::{Odd, Wide};
use session_tests::support::{
    a, create_schema, fresh_database, idle_in_transaction, poll_then_drop, wait_pool_idle,
};
use session_tools::pg::Cluster;

async fn schema(engine: &Engine) {
    create_schema(engine, metadata().with::<Odd>().with::<Wide>()).await;
}

async fn setup(prefix: &str, pool: u32) -> Engine {
    let engine = Engine::builder(fresh_database(prefix).await)
        .pool_size(pool)
        .checkout_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    schema(&engine).await;
    engine
}

async fn owned_cluster() -> Cluster {
    tokio::task::spawn_blocking(Cluster::start_owned)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn count(engine: &Engine, sql: &str) -> i64 {
    let mut conn = engine.connect().await.unwrap();
    conn.scalar(sql, &[]).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_stale_pool_and_session_mid_transaction() {
    let cluster = owned_cluster().await;
    let url = cluster.create_database("restart").await.unwrap();
    let engine = Engine::builder(url).pool_size(4).build().unwrap();
    schema(&engine).await;
    // Warm the pool with idle connections.
    let warm: Vec<_> = futures::future::join_all((0..3).map(|_| engine.connect())).await;
    drop(warm);
    wait_pool_idle(&engine).await;

    let session = AsyncSession::new(engine.clone());
    let obj = a("mid-transaction");
    session.add(&obj).unwrap();
    session.flush().await.unwrap();

    tokio::task::spawn_blocking({
        let cluster_url = cluster.url().to_string();
        move || cluster_url
    })
    .await
    .unwrap();
    let c = &cluster;
    tokio::task::block_in_place(|| {
        c.stop_server().unwrap();
        c.start_server().unwrap();
    });

    // The next checkout replaces the stale connections.
    assert_eq!(count(&engine, "SELECT 1::bigint").await, 1);
    // The session's connection is gone: a disconnect error, then it works again.
    let err = session.commit().await.unwrap_err();
    assert!(err.is_disconnect(), "{err:?}");
    assert_ne!(
        obj.state(),
        ObjectState::Persistent,
        "nothing pretends to be committed"
    );
    session.rollback().await.unwrap();
    session.add(&a("after restart")).unwrap();
    session.commit().await.unwrap();
    assert_eq!(count(&engine, "SELECT count(*) FROM a").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_backend_mid_flush_commits_nothing() {
    let engine = setup("terminate", 4).await;
    let session = Arc::new(AsyncSession::new(engine.clone()));
    let pid: i32 = {
        let mut conn = session.connection().await.unwrap();
        conn.scalar("SELECT pg_backend_pid()", &[]).await.unwrap()
    };
    let objs: Vec<Obj<A>> = (0..200_000).map(|i| a(&format!("{i}"))).collect();
    session.add_all(&objs).unwrap();
    let s = session.clone();
    let flush = tokio::spawn(async move { s.flush().await });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let killed: bool = {
        let mut conn = engine.connect().await.unwrap();
        conn.scalar("SELECT pg_terminate_backend($1)", &[&pid])
            .await
            .unwrap()
    };
    assert!(killed);
    let result = flush.await.unwrap();
    let err = match result {
        Err(e) => e,
        // The flush finished first: then the commit meets the dead connection.
        Ok(()) => session.commit().await.unwrap_err(),
    };
    assert!(err.is_disconnect() || err.is_pending_rollback(), "{err:?}");
    session.rollback().await.unwrap();
    wait_pool_idle(&engine).await;
    assert_eq!(count(&engine, "SELECT count(*) FROM a").await, 0);
    assert_eq!(idle_in_transaction(&engine).await, 0);
    // The pool recovered.
    session.add(&a("again")).unwrap();
    session.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_during_a_server_restart_are_all_or_nothing() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let cluster = owned_cluster().await;
    let url = cluster.create_database("crash").await.unwrap();
    let engine = Engine::builder(url)
        .pool_size(8)
        .checkout_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    schema(&engine).await;
    let maker = async_sessionmaker(engine.clone());
    // Committers that keep going until a few transactions after the restart, so that the
    // restart falls among their commits whatever the timing.
    let restarted = Arc::new(AtomicBool::new(false));
    let k = 8;
    let mut tasks = Vec::new();
    for t in 0..k {
        let maker = maker.clone();
        let restarted = restarted.clone();
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            let mut after = 0;
            for i in 0..2000 {
                if restarted.load(Ordering::SeqCst) {
                    after += 1;
                    if after > 3 {
                        break;
                    }
                }
                let tag = format!("t{t}-{i}-");
                let result = maker
                    .begin(async |s| {
                        for j in 0..5 {
                            s.add(&a(&format!("{tag}{j}")))?;
                        }
                        Ok::<_, Error>(())
                    })
                    .await;
                outcomes.push((tag, result.is_ok()));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            outcomes
        }));
    }
    // And one transaction known to be open when the server goes: its rows are flushed, its
    // COMMIT not yet sent. It must fail, and leave nothing behind.
    let held = maker.session();
    held.add_all(&(0..5).map(|j| a(&format!("held-{j}"))).collect::<Vec<_>>())
        .unwrap();
    held.flush().await.unwrap();
    assert!(held.in_transaction());
    tokio::time::sleep(Duration::from_millis(60)).await;
    let c = &cluster;
    tokio::task::block_in_place(|| {
        c.stop_server().unwrap();
        c.start_server().unwrap();
    });
    restarted.store(true, Ordering::SeqCst);
    let err = held.commit().await.unwrap_err();
    assert!(err.is_disconnect(), "{err:?}");
    held.rollback().await.unwrap();
    let mut outcomes = vec![("held-".to_string(), false)];
    for task in tasks {
        outcomes.extend(task.await.unwrap());
    }
    let mut ok = 0;
    let mut failed_absent = 0;
    let mut in_doubt_present = 0;
    for (tag, committed) in outcomes {
        let n = {
            let mut conn = engine.connect().await.unwrap();
            conn.scalar::<i64>("SELECT count(*) FROM a WHERE data LIKE $1 || '%'", &[&tag])
                .await
                .unwrap()
        };
        assert!(n == 0 || n == 5, "{tag}: partial commit ({n} of 5 rows)");
        if committed {
            assert_eq!(n, 5, "{tag}: commit returned Ok but its rows are missing");
            ok += 1;
        } else if n == 0 {
            failed_absent += 1;
        } else {
            // COMMIT reached the server but its answer was lost with the connection.
            in_doubt_present += 1;
        }
    }
    println!(
        "crash consistency: {ok} ok, {failed_absent} failed (absent), {in_doubt_present} in doubt (present)"
    );
    assert!(ok > 0, "commits went through before and after the restart");
    assert!(
        failed_absent + in_doubt_present > 0,
        "no commit met the restart, so nothing was tested"
    );
    assert!(
        failed_absent >= 1,
        "the transaction open across the restart failed and left nothing"
    );
    assert_eq!(idle_in_transaction(&engine).await, 0);
}

#[tokio::test]
async fn flush_errors_in_a_batch_of_ten_thousand() {
    let engine = setup("batcherr", 4).await;
    let mut conn = engine.connect().await.unwrap();
    conn.batch_execute("ALTER TABLE item ALTER COLUMN price SET NOT NULL")
        .await
        .unwrap();
    conn.execute("INSERT INTO item VALUES ('s', 5000, 1.0)", &[])
        .await
        .unwrap();
    conn.close().await;
    let item = |sku: i64, price: Option<f64>| {
        Obj::new(Item {
            shop: "s".into(),
            sku,
            price,
        })
    };
    let session = AsyncSession::new(engine.clone());
    // unique: one duplicate among 10,000
    session
        .add_all(&(0..10_000).map(|i| item(i, Some(1.0))).collect::<Vec<_>>())
        .unwrap();
    let err = session.flush().await.unwrap_err();
    assert!(err.is_unique_violation(), "{err}");
    let db = err.as_db_error().unwrap();
    assert_eq!(
        (db.table(), db.constraint()),
        (Some("item"), Some("item_pkey"))
    );
    assert!(
        session
            .get::<Item>(("s".into(), 1))
            .await
            .unwrap_err()
            .is_pending_rollback()
    );
    session.rollback().await.unwrap();
    // not-null
    session
        .add_all(
            &(10_000..20_000)
                .map(|i| item(i, (i != 15_000).then_some(2.0)))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let err = session.flush().await.unwrap_err();
    assert!(err.is_not_null_violation(), "{err}");
    assert_eq!(err.as_db_error().unwrap().column(), Some("price"));
    session.rollback().await.unwrap();
    // foreign key: children of a parent that does not exist
    let orphans: Vec<Obj<B>> = (0..10_000)
        .map(|i| {
            Obj::new(B {
                a_id: if i == 9_999 { 424_242 } else { 1 },
                data: "orphan".into(),
                ..B::default()
            })
        })
        .collect();
    session.add(&a("parent 1")).unwrap();
    session.add_all(&orphans).unwrap();
    let err = session.commit().await.unwrap_err();
    assert!(err.is_foreign_key_violation(), "{err}");
    assert_eq!(err.as_db_error().unwrap().constraint(), Some("b_a_id_fkey"));
    session.rollback().await.unwrap();
    assert_eq!(
        count(&engine, "SELECT count(*) FROM item").await,
        1,
        "no partial batch"
    );
    assert_eq!(count(&engine, "SELECT count(*) FROM b").await, 0);
    assert_eq!(count(&engine, "SELECT count(*) FROM a").await, 0);
}

const INJECTIONS: &[&str] = &[
    "'; DROP TABLE a; --",
    "\" OR 1=1 --",
    "$1",
    "\\x00' || pg_sleep(10) || '",
    "Robert'); DELETE FROM b; --",
    "%_\\",
    "🦀 ünïcödé",
];

#[tokio::test]
async fn injection_strings_are_stored_verbatim_and_odd_names_work() {
    let engine = setup("injection", 4).await;
    let session = AsyncSession::builder()
        .bind(engine.clone())
        .expire_on_commit(false)
        .build();
    let objs: Vec<Obj<A>> = INJECTIONS.iter().map(|s| a(s)).collect();
    session.add_all(&objs).unwrap();
    session.commit().await.unwrap();
    for s in INJECTIONS {
        let found = session
            .scalars(select::<A>().filter(A::C.data.eq(*s)))
            .await
            .unwrap()
            .one()
            .unwrap();
        assert_eq!(found.read().unwrap().data, *s);
        let echoed: String = session
            .scalar(text("SELECT $1::text").bind(s.to_string()))
            .await
            .unwrap()
            .get()
            .unwrap();
        assert_eq!(echoed, *s);
    }
    assert_eq!(
        count(&engine, "SELECT count(*) FROM a").await,
        INJECTIONS.len() as i64
    );

    // Table and column names that need quoting.
    let odd = Obj::new(Odd {
        id: 1,
        order: "keyword".into(),
        mixed: Some(1.5),
        quoted: INJECTIONS[0].into(),
    });
    session.add(&odd).unwrap();
    session.commit().await.unwrap();
    // The derive kept the names verbatim; the database has them exactly so.
    assert_eq!(
        count(
            &engine,
            "SELECT count(*) FROM \"select \"\"Odd\"\" Table\" \
             WHERE \"order\" = 'keyword' AND \"MixedCase\" = 1.5 AND \"quote\"\"d col\" <> ''"
        )
        .await,
        1
    );
    odd.write().unwrap().mixed = None;
    session.commit().await.unwrap();
    let back = AsyncSession::new(engine.clone());
    let got = back.get_one::<Odd>(1).await.unwrap();
    assert_eq!(got.read().unwrap().mixed, None);
    assert_eq!(got.read().unwrap().quoted, INJECTIONS[0]);
    back.delete(&got).unwrap();
    back.commit().await.unwrap();
}

#[tokio::test]
async fn a_flush_beyond_the_parameter_limit_is_split_correctly() {
    let engine = setup("wide", 4).await;
    let session = AsyncSession::new(engine.clone());
    let n = 100_000i64;
    let rows: Vec<Obj<Wide>> = (0..n)
        .map(|i| {
            Obj::new(Wide {
                id: i,
                c1: i * 2,
                c2: -i,
                c3: format!("r{i}"),
                c4: String::new(),
                c5: (i % 3 == 0).then_some(i as i32),
                c6: i % 2 == 0,
                c7: i as f64 / 3.0,
                c8: "x".repeat((i % 7) as usize),
                c9: None,
            })
        })
        .collect();
    session.add_all(&rows).unwrap();
    session.commit().await.unwrap();
    // 100k objects x 10 columns = 1M values, far beyond 65,535 parameters.
    assert_eq!(count(&engine, "SELECT count(*) FROM wide").await, n);
    assert_eq!(
        count(&engine, "SELECT sum(c1)::bigint FROM wide").await,
        (0..n).map(|i| i * 2).sum::<i64>()
    );
    assert_eq!(
        count(&engine, "SELECT count(*) FROM wide WHERE c5 IS NOT NULL").await,
        (n + 2) / 3
    );
}

#[tokio::test]
async fn extreme_values_round_trip_or_fail_clearly() {
    let engine = setup("extreme", 4).await;
    let session = AsyncSession::builder()
        .bind(engine.clone())
        .expire_on_commit(false)
        .build();
    let prices = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE,
        -0.0,
    ];
    for (i, (sku, price)) in [i64::MIN, i64::MAX, 0, -1, 1]
        .into_iter()
        .zip(prices)
        .enumerate()
    {
        session
            .add(&Obj::new(Item {
                shop: format!("x{i}"),
                sku,
                price: Some(price),
            }))
            .unwrap();
    }
    let big = "é".repeat(512 * 1024); // 1 MB of UTF-8
    session.add(&a("")).unwrap();
    session.add(&a(&big)).unwrap();
    session.commit().await.unwrap();
    let fresh = AsyncSession::new(engine.clone());
    let items = fresh.scalars(select::<Item>()).await.unwrap().all();
    assert_eq!(items.len(), 5);
    let min = fresh
        .get_one::<Item>(("x0".into(), i64::MIN))
        .await
        .unwrap();
    assert!(min.read().unwrap().price.unwrap().is_nan());
    let max = fresh
        .get_one::<Item>(("x1".into(), i64::MAX))
        .await
        .unwrap();
    assert_eq!(max.read().unwrap().price, Some(f64::INFINITY));
    let strings = fresh
        .scalars(select::<A>().order_by(A::C.id.asc()))
        .await
        .unwrap()
        .all();
    assert_eq!(strings[0].read().unwrap().data, "");
    assert_eq!(strings[1].read().unwrap().data.len(), big.len());

    // A NUL byte cannot be stored in PostgreSQL text: a clear error, nothing committed.
    fresh.add(&a("nul\0byte")).unwrap();
    let err = fresh.commit().await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("22021") || text.to_lowercase().contains("invalid byte sequence"),
        "{text}"
    );
    fresh.rollback().await.unwrap();
    assert_eq!(count(&engine, "SELECT count(*) FROM a").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_of_execute_stream_begin_nested_and_remove() {
    let engine = setup("cancelmatrix", 4).await;
    let seed = AsyncSession::new(engine.clone());
    seed.add_all(&(0..3000).map(|i| a(&format!("{i}"))).collect::<Vec<_>>())
        .unwrap();
    seed.commit().await.unwrap();
    for op in 0..4 {
        for polls in 0..60 {
            let session = AsyncSession::new(engine.clone());
            session.add(&a("uncommitted")).unwrap();
            let done = match op {
                0 => poll_then_drop(session.execute(select::<A>()), polls)
                    .await
                    .map(|r| r.map(|_| ())),
                1 => {
                    poll_then_drop(
                        async {
                            let mut s = session.stream_scalars(select::<A>()).await?;
                            while let Some(o) = s.next().await {
                                o?;
                            }
                            Ok(())
                        },
                        polls,
                    )
                    .await
                }
                2 => {
                    poll_then_drop(
                        async {
                            let sp = session.begin_nested().await?;
                            sp.commit().await
                        },
                        polls,
                    )
                    .await
                }
                _ => {
                    let scoped = async_scoped_session(
                        async_sessionmaker(engine.clone()),
                        scope::current_task,
                    );
                    scoped.call().add(&a("scoped, uncommitted")).unwrap();
                    scoped.call().flush().await.unwrap();
                    let r = poll_then_drop(scoped.remove(), polls).await;
                    if polls == 0 {
                        // Never polled: like any future, it did nothing.
                        assert_eq!(scoped.registered(), 1);
                        scoped.remove().await;
                    }
                    assert_eq!(
                        scoped.registered(),
                        0,
                        "remove() clears once polled, even when dropped"
                    );
                    r.map(Ok)
                }
            };
            if let Some(r) = &done {
                assert!(r.is_ok(), "op {op}: {r:?}");
            }
            session.rollback().await.unwrap();
            session.add(&a("usable")).unwrap();
            session.rollback().await.unwrap();
            drop(session);
            wait_pool_idle(&engine).await;
            assert_eq!(
                idle_in_transaction(&engine).await,
                0,
                "op {op} polls {polls}"
            );
            if done.is_some() {
                break;
            }
        }
    }
    assert_eq!(
        count(&engine, "SELECT count(*) FROM a").await,
        3000,
        "uncommitted data absent"
    );
}
