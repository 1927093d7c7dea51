//! AsyncSession against a real PostgreSQL: relationships, scopes, the weak identity map.

use session_core::{AsyncSession, Error, Obj, ObjectState};
use session_tests::model::{A, B};
use session_tests::support::{
    LogCapture, a, count_rows, echo_schema_engine, echo_statements, idle_in_transaction,
    schema_engine, wait_pool_idle,
};

// ---- relationships ----

#[tokio::test]
async fn children_added_through_a_collection_get_the_parents_generated_key_in_one_flush() {
    let capture = LogCapture::default();
    let _g = capture.install("session_core::echo=info");
    let engine = echo_schema_engine("relbulk").await;
    let session = AsyncSession::builder()
        .bind(engine.clone())
        .expire_on_commit(false)
        .build();
    let parents: Vec<Obj<A>> = (0..10_000)
        .map(|i| {
            Obj::new(A {
                data: format!("p{i}"),
                bs: session_core::Collection::from_vec(
                    (0..2)
                        .map(|k| {
                            Obj::new(B {
                                data: format!("c{i}-{k}"),
                                ..B::default()
                            })
                        })
                        .collect(),
                ),
                ..A::default()
            })
        })
        .collect();
    session.add_all(&parents).unwrap();
    assert_eq!(
        session.new_objects().len(),
        30_000,
        "children cascaded on add"
    );
    let before = echo_statements(&capture.text()).len();
    session.commit().await.unwrap();
    let log = capture.text();
    let sql: Vec<&str> = echo_statements(&log)[before..].to_vec();
    // BEGIN, INSERT a, INSERT b, COMMIT.
    assert_eq!(
        sql.len(),
        4,
        "{:#?}",
        sql.iter()
            .map(|l| &l[..l.len().min(80)])
            .collect::<Vec<_>>()
    );
    for p in parents.iter().take(50) {
        let p = p.read().unwrap();
        for child in p.bs.get().unwrap() {
            assert_eq!(child.read().unwrap().a_id, p.id);
        }
    }
    let mut conn = engine.connect().await.unwrap();
    let wrong: i64 = conn
        .scalar(
            "SELECT count(*) FROM b JOIN a ON a.id = b.a_id \
             WHERE b.data NOT LIKE 'c' || substr(a.data, 2) || '-%'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(wrong, 0, "every child points at its own parent");
    assert_eq!(count_rows(&engine, "b").await, 20_000);
}

#[tokio::test]
async fn many_to_one_reference_and_reparenting() {
    let engine = schema_engine("reparent", 4).await;
    let session = AsyncSession::builder()
        .bind(engine.clone())
        .expire_on_commit(false)
        .build();
    let p1 = a("p1");
    let child = Obj::new(B {
        data: "child".into(),
        a: session_core::Reference::to(p1.clone()),
        ..B::default()
    });
    session.add(&child).unwrap(); // cascades to the parent
    assert_eq!(p1.state(), ObjectState::Pending);
    session.commit().await.unwrap();
    assert_eq!(child.read().unwrap().a_id, p1.read().unwrap().id);

    // Moving a persistent child to a new parent updates its foreign key.
    let p2 = a("p2");
    child.write().unwrap().a.set(Some(p2.clone()));
    session.commit().await.unwrap();
    let p2_id = p2.read().unwrap().id;
    assert_eq!(child.read().unwrap().a_id, p2_id);
    let mut conn = engine.connect().await.unwrap();
    let a_id: i32 = conn.scalar("SELECT a_id FROM b", &[]).await.unwrap();
    assert_eq!(a_id, p2_id);

    // A loaded object's relationships are not loaded: reading them is a clear error.
    let other = AsyncSession::new(engine.clone());
    let loaded = other.get::<A>(p2_id).await.unwrap().unwrap();
    let err = loaded.read().unwrap().bs.get().unwrap_err().to_string();
    assert!(err.starts_with("A.bs is not loaded"), "{err}");
}

#[tokio::test]
async fn scopes_close_and_transactions_commit_or_roll_back() {
    let engine = schema_engine("scopes", 4).await;
    // `async with AsyncSession(engine) as session:` closes and never commits.
    let obj = a("scoped");
    let session = AsyncSession::new(engine.clone());
    let flushed: Result<(), Error> = session
        .scope(async |s| {
            s.add(&obj)?;
            s.flush().await
        })
        .await;
    flushed.unwrap();
    // As in SQLAlchemy, close() expunges first: the flushed object is detached.
    assert_eq!(obj.state(), ObjectState::Detached);
    wait_pool_idle(&engine).await;
    assert_eq!(count_rows(&engine, "a").await, 0);

    // `async with session.begin():` commits on Ok and rolls back on Err.
    let session = AsyncSession::new(engine.clone());
    session
        .transaction(async |s| s.add(&a("kept")))
        .await
        .unwrap();
    let err: Result<(), Error> = session
        .transaction(async |s| {
            s.add(&a("dropped"))?;
            s.flush().await?;
            Err(Error::InvalidRequest("body failed".into()))
        })
        .await;
    assert_eq!(err.unwrap_err().to_string(), "body failed");
    assert_eq!(count_rows(&engine, "a").await, 1);

    // begin() after autobegin is refused, with SQLAlchemy's message.
    session.add(&a("x")).unwrap();
    let err = session.begin().await.unwrap_err().to_string();
    assert_eq!(err, "A transaction is already begun on this Session.");
    session.rollback().await.unwrap();
    let tx = session.begin().await.unwrap();
    session.add(&a("explicit")).unwrap();
    tx.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "a").await, 2);
}

#[tokio::test]
async fn dropping_a_session_mid_transaction_returns_a_clean_connection() {
    let engine = schema_engine("dropsession", 4).await;
    let session = AsyncSession::new(engine.clone());
    session.add(&a("never committed")).unwrap();
    session.flush().await.unwrap();
    assert_eq!(engine.status().checked_out, 1);
    drop(session);
    wait_pool_idle(&engine).await;
    assert_eq!(idle_in_transaction(&engine).await, 0);
    assert_eq!(count_rows(&engine, "a").await, 0);
}

#[tokio::test]
async fn the_identity_map_holds_objects_weakly_but_keeps_unflushed_changes() {
    let engine = schema_engine("weakmap", 4).await;
    let seed = AsyncSession::new(engine.clone());
    seed.add_all(&[a("one"), a("two"), a("three")]).unwrap();
    seed.commit().await.unwrap();

    let session = AsyncSession::new(engine.clone());
    let kept = session.get::<A>(1).await.unwrap().unwrap();
    drop(session.get::<A>(2).await.unwrap().unwrap()); // nobody holds it: it leaves the map
    assert_eq!(session.identity_map().len(), 1);
    assert!(session.get::<A>(1).await.unwrap().unwrap().ptr_eq(&kept));

    // A changed object is held until it is flushed, even when the caller drops it.
    let changed = session.get::<A>(3).await.unwrap().unwrap();
    changed.write().unwrap().data = "changed and dropped".into();
    drop(changed);
    session.commit().await.unwrap();
    let mut conn = engine.connect().await.unwrap();
    let data: String = conn
        .scalar("SELECT data FROM a WHERE id = 3", &[])
        .await
        .unwrap();
    assert_eq!(data, "changed and dropped");
}
