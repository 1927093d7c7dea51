//! AsyncSession against a real PostgreSQL: identity map, unit of work, transactions.

use session_core::{AsyncSession, Engine, Error, Obj, ObjectState};
use session_tests::model::{A, B, Item, metadata};
use session_tests::support::{
    LogCapture, a, count_rows, echo_schema_engine, echo_statements, idle_in_transaction,
    poll_then_drop, schema_engine, wait_pool_idle,
};

#[tokio::test]
async fn create_all_orders_tables_by_foreign_key() {
    let md = metadata();
    let names: Vec<&str> = md.tables().iter().map(|t| t.name).collect();
    let a = names.iter().position(|n| *n == "a").unwrap();
    let b = names.iter().position(|n| *n == "b").unwrap();
    assert!(a < b, "{names:?}");
    let ddl = md.create_statements().join(";\n");
    assert!(ddl.contains("\"id\" SERIAL"), "{ddl}");
    assert!(
        ddl.contains("\"create_date\" timestamp DEFAULT now()"),
        "{ddl}"
    );
    assert!(
        ddl.contains("\"a_id\" integer NOT NULL REFERENCES \"a\"(\"id\")"),
        "{ddl}"
    );
    assert!(ddl.contains("PRIMARY KEY (\"shop\", \"sku\")"), "{ddl}");

    let engine = schema_engine("create_all", 4).await;
    let mut conn = engine.connect().await.unwrap();
    md.create_all(&mut conn).await.unwrap(); // idempotent
    md.drop_all(&mut conn).await.unwrap();
    let left: i64 = conn
        .scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn a_session_is_lazy_and_autobegins() {
    let engine = schema_engine("lazy", 4).await;
    wait_pool_idle(&engine).await;
    let before = engine.status().checked_out;
    let session = AsyncSession::new(engine.clone());
    assert_eq!(engine.status().checked_out, before);
    assert!(!session.in_transaction());
    session.add(&a("x")).unwrap();
    assert!(session.in_transaction(), "add autobegins (no I/O)");
    assert_eq!(engine.status().checked_out, before);
    session.flush().await.unwrap();
    assert_eq!(engine.status().checked_out, before + 1);
    session.commit().await.unwrap();
    assert!(!session.in_transaction());
    wait_pool_idle(&engine).await;
}

#[tokio::test]
async fn insert_fetches_keys_and_server_defaults_in_one_batch() {
    let capture = LogCapture::default();
    let _g = capture.install("session_core::echo=info");
    let engine = echo_schema_engine("insert").await;
    let session = AsyncSession::new(engine.clone());
    let objs: Vec<Obj<A>> = (0..500).map(|i| a(&format!("a{i}"))).collect();
    session.add_all(&objs).unwrap();
    assert_eq!(session.new_objects().len(), 500);
    let before = echo_statements(&capture.text()).len();
    session.flush().await.unwrap();
    let log = capture.text();
    let flush: Vec<&str> = echo_statements(&log)[before..].to_vec();
    // BEGIN + one INSERT for 500 objects.
    assert_eq!(flush.len(), 2, "{flush:#?}");
    assert!(flush[1].contains("INSERT INTO \"a\""), "{}", flush[1]);
    let ids: Vec<i32> = objs.iter().map(|o| o.read().unwrap().id).collect();
    let expected: Vec<i32> = (1..=500).collect();
    assert_eq!(ids, expected, "keys matched back in add order");
    for o in &objs {
        assert_eq!(o.state(), ObjectState::Persistent);
        assert!(
            o.read().unwrap().create_date.is_some(),
            "server default fetched"
        );
    }
    // Children with their parent's generated key, in a second batch.
    let bs: Vec<Obj<B>> = objs
        .iter()
        .flat_map(|p| {
            let id = p.read().unwrap().id;
            (0..2).map(move |k| {
                Obj::new(B {
                    a_id: id,
                    data: format!("b{k}"),
                    ..B::default()
                })
            })
        })
        .collect();
    session.add_all(&bs).unwrap();
    session.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "a").await, 500);
    assert_eq!(count_rows(&engine, "b").await, 1000);
}

#[tokio::test]
async fn ten_thousand_parents_with_children_take_a_bounded_number_of_echo_statements() {
    let capture = LogCapture::default();
    let _g = capture.install("session_core::echo=info");
    let engine = echo_schema_engine("bulk").await;
    let session = AsyncSession::new(engine.clone());
    let parents: Vec<Obj<A>> = (0..10_000).map(|i| a(&format!("p{i}"))).collect();
    session.add_all(&parents).unwrap();
    session.flush().await.unwrap();
    let children: Vec<Obj<B>> = parents
        .iter()
        .flat_map(|p| {
            let id = p.read().unwrap().id;
            [0, 1].map(|k| {
                Obj::new(B {
                    a_id: id,
                    data: format!("c{k}"),
                    ..B::default()
                })
            })
        })
        .collect();
    session.add_all(&children).unwrap();
    let before = echo_statements(&capture.text()).len();
    session.commit().await.unwrap();
    let n = echo_statements(&capture.text()).len() - before;
    assert!(
        n <= 3,
        "{n} statements for 20,000 children (INSERT + COMMIT expected)"
    );
    assert_eq!(count_rows(&engine, "b").await, 20_000);
}

#[tokio::test]
async fn get_answers_from_the_identity_map_without_sql() {
    let capture = LogCapture::default();
    let _g = capture.install("session_core::echo=info");
    let engine = echo_schema_engine("get").await;
    let s1 = AsyncSession::new(engine.clone());
    let obj = a("hello");
    s1.add(&obj).unwrap();
    s1.commit().await.unwrap();
    let id = 1;

    let session = AsyncSession::new(engine.clone());
    let first = session.get::<A>(id).await.unwrap().unwrap();
    let before = echo_statements(&capture.text()).len();
    let second = session.get::<A>(id).await.unwrap().unwrap();
    assert_eq!(
        echo_statements(&capture.text()).len(),
        before,
        "second get emitted SQL"
    );
    assert!(first.ptr_eq(&second), "two lookups give the same object");
    assert_eq!(first.read().unwrap().data, "hello");
    assert!(session.get::<A>(999).await.unwrap().is_none());
    let err = session.get_one::<A>(999).await.unwrap_err();
    assert_eq!(err.to_string(), "No row was found when one was required");
    assert!(session.contains(&first));
    assert_eq!(session.identity_map().len(), 1);
    assert!(session.identity_map()[0].is(&first));
    assert_eq!(AsyncSession::identity_key::<A>(5).key, 5);
    assert_eq!(
        AsyncSession::object_session(&first).unwrap().id(),
        session.id()
    );
}

#[tokio::test]
async fn updates_send_changed_columns_only_and_dirty_is_optimistic() {
    let capture = LogCapture::default();
    let _g = capture.install("session_core::echo=info");
    let engine = echo_schema_engine("update").await;
    let session = AsyncSession::builder()
        .bind(engine.clone())
        .expire_on_commit(false)
        .build();
    let objs: Vec<Obj<A>> = (0..3).map(|i| a(&format!("v{i}"))).collect();
    session.add_all(&objs).unwrap();
    session.commit().await.unwrap();

    // Same-value assignment: dirty (optimistic) but not modified, and no UPDATE.
    let same = objs[0].read().unwrap().data.clone();
    objs[0].write().unwrap().data = same;
    assert_eq!(session.dirty().len(), 1);
    assert!(!session.is_modified(&objs[0]));
    objs[1].write().unwrap().data = "changed".into();
    objs[2].write().unwrap().data = "changed".into();
    assert!(session.is_modified(&objs[1]));
    let before = echo_statements(&capture.text()).len();
    session.commit().await.unwrap();
    let log = capture.text();
    let sql: Vec<&str> = echo_statements(&log)[before..].to_vec();
    let updates: Vec<&&str> = sql.iter().filter(|l| l.contains("UPDATE")).collect();
    assert_eq!(updates.len(), 1, "one batched UPDATE: {sql:#?}");
    assert!(updates[0].contains("SET \"data\""), "{}", updates[0]);
    assert!(!updates[0].contains("create_date"), "{}", updates[0]);
    assert!(session.dirty().is_empty());
    let mut conn = engine.connect().await.unwrap();
    let n: i64 = conn
        .scalar("SELECT count(*) FROM a WHERE data = 'changed'", &[])
        .await
        .unwrap();
    assert_eq!(n, 2);
    // The object whose write changed nothing is not stuck as "modified": a later real change
    // is written (it was lost before: the flag that said "modified" also meant "queued").
    assert!(!session.is_modified(&objs[0]));
    objs[0].write().unwrap().data = "later".into();
    assert_eq!(session.dirty().len(), 1);
    session.commit().await.unwrap();
    let n: i64 = conn
        .scalar("SELECT count(*) FROM a WHERE data = 'later'", &[])
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn commit_expires_and_reading_expired_attributes_is_a_clear_error() {
    let engine = schema_engine("expire", 4).await;
    let session = AsyncSession::new(engine.clone());
    let obj = a("x");
    session.add(&obj).unwrap();
    session.commit().await.unwrap();
    let err = obj.read().unwrap_err();
    assert!(matches!(err, Error::Expired { .. }));
    let text = err.to_string();
    assert!(
        text.starts_with("A(1) has expired attributes (id, data, create_date)"),
        "{text}"
    );
    assert!(text.contains("session.refresh(&obj)") && text.contains("expire_on_commit(false)"));
    session.refresh(&obj, &[]).await.unwrap();
    assert_eq!(obj.read().unwrap().data, "x");

    // Partial expiry and refresh by typed attribute (a misspelled one does not compile: ui
    // statement/refresh_unknown_attribute).
    session.expire(&obj, &[&A::C.data]).unwrap();
    assert_eq!(obj.expired_attributes(), ["data"]);
    assert!(obj.read().is_err());
    session.refresh(&obj, &[&A::C.data]).await.unwrap();
    assert!(obj.read().is_ok());
    session
        .expire(&obj, &[&A::C.data, &A::C.create_date])
        .unwrap();
    assert_eq!(obj.expired_attributes(), ["data", "create_date"]);
    session
        .refresh(&obj, &[&A::C.create_date, &A::C.data])
        .await
        .unwrap();
    assert!(obj.expired_attributes().is_empty());

    // expire_on_commit(false) keeps loaded values.
    let keep = AsyncSession::builder()
        .bind(engine.clone())
        .expire_on_commit(false)
        .build();
    let o2 = a("kept");
    keep.add(&o2).unwrap();
    keep.commit().await.unwrap();
    assert_eq!(o2.read().unwrap().data, "kept");

    let transient = a("t");
    let err = session
        .refresh(&transient, &[])
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "Instance 'A(transient)' is not persistent within this Session"
    );
}

#[tokio::test]
async fn rollback_restores_attribute_values_and_expunges_pending() {
    let engine = schema_engine("rollback", 4).await;
    let session = AsyncSession::new(engine.clone());
    let jack = a("jack");
    session.add(&jack).unwrap();
    session.commit().await.unwrap();
    session.refresh(&jack, &[]).await.unwrap();

    jack.write().unwrap().data = "ed".into();
    session.flush().await.unwrap();
    let pending = a("new");
    session.add(&pending).unwrap();
    session.flush().await.unwrap();
    let unflushed = a("unflushed");
    session.add(&unflushed).unwrap();
    session.rollback().await.unwrap();

    assert_eq!(pending.state(), ObjectState::Transient);
    assert_eq!(unflushed.state(), ObjectState::Transient);
    assert!(!session.contains(&pending));
    assert!(jack.is_expired());
    session.refresh(&jack, &[]).await.unwrap();
    assert_eq!(
        jack.read().unwrap().data,
        "jack",
        "rollback restores the database value"
    );
    assert_eq!(count_rows(&engine, "a").await, 1);
}

#[tokio::test]
async fn savepoint_rollback_accounting() {
    let engine = schema_engine("savepoint", 4).await;
    let session = AsyncSession::builder()
        .bind(engine.clone())
        .expire_on_commit(false)
        .build();
    let u1 = a("u1");
    let u2 = a("u2");
    let doomed = a("doomed");
    session.add_all([&u1, &u2, &doomed]).unwrap();
    session.commit().await.unwrap();

    let sp = session.begin_nested().await.unwrap();
    assert!(session.in_nested_transaction());
    u2.write().unwrap().data = "u2 changed".into();
    let inner = a("inner");
    session.add(&inner).unwrap();
    session.delete(&doomed).unwrap();
    session.flush().await.unwrap();
    assert_eq!(doomed.state(), ObjectState::Deleted);
    assert!(!session.contains(&doomed));
    sp.rollback().await.unwrap();

    assert!(!session.in_nested_transaction());
    assert!(session.in_transaction());
    assert_eq!(
        inner.state(),
        ObjectState::Transient,
        "added inside: expunged"
    );
    assert_eq!(
        doomed.state(),
        ObjectState::Persistent,
        "deleted inside: restored"
    );
    assert!(session.contains(&doomed));
    assert!(!u1.is_expired(), "unchanged objects keep their state");
    assert!(u2.is_expired(), "changed inside: expired");
    session.refresh(&u2, &[]).await.unwrap();
    assert_eq!(u2.read().unwrap().data, "u2");

    // A released savepoint expires nothing; its work commits with the root.
    let sp = session.begin_nested().await.unwrap();
    let kept = a("kept");
    session.add(&kept).unwrap();
    sp.commit().await.unwrap();
    assert!(!u1.is_expired());
    session.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "a").await, 4);
}

#[tokio::test]
async fn delete_lifecycle() {
    let engine = schema_engine("delete", 4).await;
    let session = AsyncSession::new(engine.clone());
    let obj = a("x");
    session.add(&obj).unwrap();
    session.commit().await.unwrap();
    session.refresh(&obj, &[]).await.unwrap();

    let err = session.delete(&a("t")).unwrap_err().to_string();
    assert_eq!(err, "Instance 'A(transient)' is not persisted");

    session.delete(&obj).unwrap();
    assert_eq!(session.deleted().len(), 1);
    assert!(session.contains(&obj));
    session.flush().await.unwrap();
    assert!(!session.contains(&obj));
    assert_eq!(obj.state(), ObjectState::Deleted);
    assert_eq!(
        AsyncSession::object_session(&obj).unwrap().id(),
        session.id()
    );
    session.commit().await.unwrap();
    assert_eq!(obj.state(), ObjectState::Detached);
    assert!(AsyncSession::object_session(&obj).is_none());
    let err = session.add(&obj).unwrap_err().to_string();
    assert_eq!(
        err,
        "Instance 'A(1)' has been deleted.  Use the make_transient() function to send this \
         object back to the transient state."
    );
    AsyncSession::make_transient(&obj);
    session.add(&obj).unwrap();
    assert_eq!(obj.state(), ObjectState::Pending);
    assert_eq!(count_rows(&engine, "a").await, 0);
}

#[tokio::test]
async fn failed_flush_requires_rollback() {
    let engine = schema_engine("failed", 4).await;
    let session = AsyncSession::new(engine.clone());
    let ok = Obj::new(Item {
        shop: "s".into(),
        sku: 1,
        price: Some(1.5),
    });
    session.add(&ok).unwrap();
    session.commit().await.unwrap();

    let dup = Obj::new(Item {
        shop: "s".into(),
        sku: 1,
        price: None,
    });
    let fine = Obj::new(Item {
        shop: "s".into(),
        sku: 2,
        price: None,
    });
    session.add_all([&fine, &dup]).unwrap();
    let err = session.flush().await.unwrap_err();
    assert!(err.is_unique_violation(), "{err}");
    assert!(!session.is_active());
    wait_pool_idle(&engine).await;
    assert_eq!(idle_in_transaction(&engine).await, 0);

    let again = session.get::<Item>(("s".into(), 1)).await.unwrap_err();
    assert!(again.is_pending_rollback());
    let text = again.to_string();
    assert!(
        text.starts_with("This Session's transaction has been rolled back due to a previous exception during flush. To begin a new transaction with this Session, first issue Session.rollback(). Original exception was: database error 23505"),
        "{text}"
    );
    session.rollback().await.unwrap();
    assert!(session.is_active());
    assert_eq!(fine.state(), ObjectState::Transient);
    assert!(
        session
            .get::<Item>(("s".into(), 1))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        count_rows(&engine, "item").await,
        1,
        "nothing of the failed batch committed"
    );
}

#[tokio::test]
async fn composite_keys_round_trip() {
    let engine = schema_engine("composite", 4).await;
    let session = AsyncSession::new(engine.clone());
    let items: Vec<Obj<Item>> = (0..5)
        .map(|i| {
            Obj::new(Item {
                shop: format!("shop{}", i % 2),
                sku: i,
                price: (i % 2 == 0).then_some(i as f64),
            })
        })
        .collect();
    session.add_all(&items).unwrap();
    session.commit().await.unwrap();
    let found = session
        .get::<Item>(("shop0".into(), 2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.read().unwrap().price, Some(2.0));
    assert!(found.ptr_eq(&items[2]), "the same object comes back");
    found.write().unwrap().price = None;
    session.delete(&items[1]).unwrap();
    session.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "item").await, 4);
    let mut conn = engine.connect().await.unwrap();
    let nulls: i64 = conn
        .scalar("SELECT count(*) FROM item WHERE price IS NULL", &[])
        .await
        .unwrap();
    assert_eq!(nulls, 2, "item 3 and the changed item 2");
}

#[tokio::test]
async fn merge_returns_the_existing_object_with_the_new_state() {
    let engine = schema_engine("merge", 4).await;
    let session = AsyncSession::builder()
        .bind(engine.clone())
        .expire_on_commit(false)
        .build();
    let u1 = a("u1");
    session.add(&u1).unwrap();
    session.commit().await.unwrap();
    let detached = Obj::new(A {
        id: 1,
        data: "new u1".into(),
        create_date: u1.read().unwrap().create_date,
        ..A::default()
    });
    let merged = session.merge(&detached).await.unwrap();
    assert!(merged.ptr_eq(&u1));
    assert_eq!(u1.read().unwrap().data, "new u1");
    assert_eq!(
        detached.state(),
        ObjectState::Transient,
        "the source is never attached"
    );
    assert!(session.is_modified(&u1));
    let fresh = session.merge(&a("brand new")).await.unwrap();
    assert_eq!(fresh.state(), ObjectState::Pending);
    session.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "a").await, 2);
}

#[tokio::test]
async fn no_autoflush_is_restored_also_after_an_error() {
    let engine = schema_engine("noautoflush", 4).await;
    let session = AsyncSession::new(engine.clone());
    assert!(session.autoflush());
    let result: Result<(), Error> = async {
        let _guard = session.no_autoflush();
        assert!(!session.autoflush());
        session.add(&a("pending"))?;
        // With autoflush off, get() does not flush the pending object.
        assert!(session.get::<A>(1).await?.is_none());
        Err(Error::InvalidRequest("boom".into()))
    }
    .await;
    assert!(result.is_err());
    assert!(session.autoflush(), "restored after the error");
    assert!(
        session.get::<A>(1).await.unwrap().is_some(),
        "autoflush on again"
    );
}

#[tokio::test]
async fn close_and_reset() {
    let engine = schema_engine("close", 4).await;
    let session = AsyncSession::new(engine.clone());
    let obj = a("x");
    session.add(&obj).unwrap();
    session.flush().await.unwrap();
    session.close().await;
    assert_eq!(obj.state(), ObjectState::Detached);
    assert!(!session.in_transaction());
    wait_pool_idle(&engine).await;
    assert_eq!(count_rows(&engine, "a").await, 0, "close never commits");
    session.add(&a("y")).unwrap(); // still usable: close only resets by default

    let final_close = AsyncSession::builder()
        .bind(engine.clone())
        .close_resets_only(false)
        .build();
    final_close.close().await;
    let err = final_close.add(&a("z")).unwrap_err().to_string();
    assert_eq!(
        err,
        "This Session has been permanently closed and is unable to handle any more \
         transaction requests."
    );
    final_close.reset().await;
    assert!(
        final_close.add(&a("z")).is_err(),
        "reset does not reopen a closed session"
    );
    // close_all() closes every session of the process: it has a test binary of its own
    // (tests/tests/close_all.rs), so that it cannot close other tests' sessions.
}

#[tokio::test]
async fn add_refuses_an_object_of_another_live_session() {
    let engine = schema_engine("attached", 4).await;
    let s1 = AsyncSession::new(engine.clone());
    let s2 = AsyncSession::new(engine.clone());
    let obj = a("x");
    s1.add(&obj).unwrap();
    let err = s2.add(&obj).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "Object 'A(pending)' is already attached to session '{}' (this is '{}')",
            s1.id(),
            s2.id()
        )
    );
    drop(s1);
    s2.add(&obj).unwrap();
}

struct Router {
    leader: Engine,
    follower: Engine,
}

impl session_core::BindRouter for Router {
    fn get_bind(
        &self,
        table: Option<&'static session_core::Table>,
        writing: bool,
    ) -> Option<Engine> {
        if table.is_some_and(|t| t.name == "item") {
            return None; // falls back to binds / bind
        }
        Some(if writing {
            self.leader.clone()
        } else {
            self.follower.clone()
        })
    }
}

#[tokio::test]
async fn routing_get_bind() {
    let leader = schema_engine("leader", 4).await;
    let follower = schema_engine("follower", 4).await;
    let default = schema_engine("default", 4).await;
    let session = AsyncSession::builder()
        .bind(default.clone())
        .router(Router {
            leader: leader.clone(),
            follower: follower.clone(),
        })
        .build();
    assert!(format!("{:?}", session.get_bind_for::<A>().unwrap()).contains("follower"));
    assert!(format!("{:?}", session.get_bind_for::<Item>().unwrap()).contains("default"));
    session.add(&a("written to the leader")).unwrap();
    session.commit().await.unwrap();
    assert_eq!(count_rows(&leader, "a").await, 1);
    assert_eq!(count_rows(&follower, "a").await, 0);
    // Reads go to the follower, which has no row.
    let fresh = AsyncSession::builder()
        .router(Router { leader, follower })
        .build();
    assert!(fresh.get::<A>(1).await.unwrap().is_none());

    let unbound = AsyncSession::builder().build();
    let err = unbound.get::<A>(1).await.unwrap_err().to_string();
    assert!(
        err.starts_with("Could not locate a bind configured on mapper A(a)"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_use_of_one_session_is_refused() {
    let engine = schema_engine("concurrent", 4).await;
    let session = std::sync::Arc::new(AsyncSession::new(engine.clone()));
    session.add(&a("pending")).unwrap();
    // One task runs a long statement on the session...
    let s1 = session.clone();
    let long = tokio::spawn(async move {
        s1.execute(session_core::text("SELECT pg_sleep(0.5)"))
            .await
            .map(|_| ())
    });
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let s2 = session.clone();
    // ...and another task uses the same session meanwhile: refused, never corrupted or stuck.
    let err = tokio::spawn(async move { s2.flush().await })
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.is_concurrent_use(), "{err}");
    long.await.unwrap().unwrap();
    let mut held = session.connection().await.unwrap();
    assert_eq!(
        err.to_string(),
        "This session is provisioning a new connection; concurrent operations are not \
         permitted (an AsyncSession must not be used by two tasks at once: give each task its \
         own session, e.g. through async_scoped_session)"
    );
    let one: i32 = held.scalar("SELECT 1", &[]).await.unwrap();
    assert_eq!(one, 1);
    drop(held);
    // Once the first operation is over, the session works normally.
    session.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "a").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_flush_and_commit_leave_the_pool_clean() {
    let engine = schema_engine("cancel", 4).await;
    for op in 0..2 {
        for polls in 0.. {
            let session = AsyncSession::new(engine.clone());
            let objs: Vec<Obj<A>> = (0..50).map(|i| a(&format!("{op}-{polls}-{i}"))).collect();
            session.add_all(&objs).unwrap();
            let done = if op == 0 {
                poll_then_drop(session.flush(), polls).await
            } else {
                poll_then_drop(session.commit(), polls).await
            };
            let finished = done.is_some();
            match done {
                Some(r) => r.unwrap(),
                None => {
                    // The session is usable again after rollback().
                    session.rollback().await.unwrap();
                    assert!(session.is_active());
                    assert_eq!(objs[0].state(), ObjectState::Transient);
                }
            }
            session.rollback().await.unwrap();
            drop(session);
            wait_pool_idle(&engine).await;
            assert_eq!(
                idle_in_transaction(&engine).await,
                0,
                "op {op} polls {polls}"
            );
            if finished {
                break;
            }
            assert!(polls < 200);
        }
    }
    // Every attempt is all or nothing: flushes (rolled back) left nothing; a commit whose
    // future was dropped after COMMIT was sent is in doubt and may have landed, but whole; the
    // commit that finished is there.
    let mut conn = engine.connect().await.unwrap();
    let rows = conn
        .query(
            "SELECT split_part(data, '-', 1)::int, split_part(data, '-', 2)::int, count(*) \
             FROM a GROUP BY 1, 2",
            &[],
        )
        .await
        .unwrap();
    for row in &rows {
        let (op, polls, n): (i32, i32, i64) = (row.get(0), row.get(1), row.get(2));
        assert_eq!(op, 1, "a rolled-back flush left rows (attempt {polls})");
        assert_eq!(n, 50, "commit attempt {polls} landed partially");
    }
    assert!(!rows.is_empty(), "the finished commit is missing");
}
