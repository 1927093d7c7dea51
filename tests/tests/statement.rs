//! Statements and results against a real PostgreSQL: operators, Result API, loaders, streams.

use futures::StreamExt;
use session_core::{AsyncSession, Obj, select, selectinload, text};
use session_tests::model::{A, B, Item};
use session_tests::support::{idle_in_transaction, seeded, wait_pool_idle};

fn data(objs: Vec<Obj<A>>) -> Vec<String> {
    objs.iter()
        .map(|o| o.read().unwrap().data.clone())
        .collect()
}

#[tokio::test]
async fn every_operator_binds_its_value() {
    let engine = seeded("operators").await;
    let s = AsyncSession::new(engine.clone());
    let q = |sel: session_core::Select<A>| async { data(s.scalars(sel).await.unwrap().all()) };
    let by_id = |sel: session_core::Select<A>| sel.order_by(A::C.id.asc());
    assert_eq!(q(by_id(select::<A>().filter(A::C.id.eq(2)))).await, ["a2"]);
    assert_eq!(q(by_id(select::<A>().filter(A::C.id.ne(2)))).await.len(), 4);
    assert_eq!(q(by_id(select::<A>().filter(A::C.id.lt(2)))).await, ["a1"]);
    assert_eq!(
        q(by_id(select::<A>().filter(A::C.id.le(2)))).await,
        ["a1", "a2"]
    );
    assert_eq!(q(by_id(select::<A>().filter(A::C.id.gt(4)))).await, ["a5"]);
    assert_eq!(
        q(by_id(select::<A>().filter(A::C.id.ge(4)))).await,
        ["a4", "a5"]
    );
    assert_eq!(
        q(by_id(select::<A>().filter(A::C.id.in_([1, 3])))).await,
        ["a1", "a3"]
    );
    assert_eq!(
        q(by_id(select::<A>().filter(A::C.id.not_in([1, 3]))))
            .await
            .len(),
        3
    );
    assert_eq!(
        q(by_id(select::<A>().filter(A::C.id.between(2, 3)))).await,
        ["a2", "a3"]
    );
    assert_eq!(
        q(by_id(select::<A>().filter(A::C.data.like("a%"))))
            .await
            .len(),
        5
    );
    assert_eq!(
        q(by_id(select::<A>().filter(A::C.data.ilike("A1")))).await,
        ["a1"]
    );
    assert_eq!(
        q(by_id(select::<A>().filter(A::C.id.eq(1).or(A::C.id.eq(5))))).await,
        ["a1", "a5"]
    );
    assert_eq!(
        q(by_id(select::<A>().filter(
            A::C.id.gt(1).and(A::C.id.lt(4)).and(A::C.id.ne(2))
        )))
        .await,
        ["a3"]
    );
    assert_eq!(
        q(by_id(select::<A>().filter(A::C.id.le(4).not()))).await,
        ["a5"]
    );
    assert_eq!(
        q(select::<A>().order_by(A::C.id.desc()).limit(2)).await,
        ["a5", "a4"]
    );
    assert_eq!(
        q(select::<A>().order_by(A::C.id.asc()).limit(2).offset(3)).await,
        ["a4", "a5"]
    );
    assert_eq!(
        q(by_id(select::<A>().filter(A::C.create_date.is_not_null())))
            .await
            .len(),
        5
    );
    assert!(
        q(by_id(select::<A>().filter(A::C.create_date.is_null())))
            .await
            .is_empty()
    );

    let nulls = s
        .scalars(select::<Item>().filter(Item::C.price.is_null()))
        .await
        .unwrap()
        .all();
    assert_eq!(nulls.len(), 1);
    // SQL shape: quoted identifiers, values as parameters.
    let (sql, params) = select::<A>()
        .filter(A::C.data.eq("x'; DROP TABLE a; --"))
        .order_by(A::C.id.asc())
        .limit(1)
        .with_for_update()
        .to_sql();
    assert_eq!(
        sql,
        "SELECT \"a\".\"id\", \"a\".\"data\", \"a\".\"create_date\" FROM \"a\" WHERE \
         \"a\".\"data\" = $1 ORDER BY \"a\".\"id\" LIMIT 1 FOR UPDATE"
    );
    assert_eq!(params.len(), 1);
}

#[tokio::test]
async fn result_methods_and_their_errors() {
    let engine = seeded("results").await;
    let s = AsyncSession::new(engine.clone());
    let all = s
        .scalars(select::<A>().order_by(A::C.id.asc()))
        .await
        .unwrap();
    assert_eq!(all.len(), 5);
    let parts = all.partitions(2);
    assert_eq!(parts.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);

    let one = s
        .scalars(select::<A>().filter(A::C.id.eq(1)))
        .await
        .unwrap()
        .one()
        .unwrap();
    assert_eq!(one.read().unwrap().data, "a1");
    let none = s
        .scalars(select::<A>().filter(A::C.id.eq(99)))
        .await
        .unwrap();
    assert_eq!(
        none.one().unwrap_err().to_string(),
        "No row was found when one was required"
    );
    let many = s.scalars(select::<A>()).await.unwrap();
    assert_eq!(
        many.one_or_none().unwrap_err().to_string(),
        "Multiple rows were found when exactly one was required"
    );
    assert!(
        s.scalars(select::<A>().filter(A::C.id.eq(99)))
            .await
            .unwrap()
            .one_or_none()
            .unwrap()
            .is_none()
    );
    let first = s
        .execute(select::<A>().order_by(A::C.id.desc()))
        .await
        .unwrap()
        .first()
        .unwrap();
    assert_eq!(first.read().unwrap().data, "a5");
    let scalar = s.scalar(select::<A>().filter(A::C.id.eq(3))).await.unwrap();
    assert!(
        scalar
            .unwrap()
            .ptr_eq(&s.get::<A>(3).await.unwrap().unwrap())
    );
    let twice = s
        .execute(select::<A>().filter(A::C.id.eq(1).or(A::C.id.eq(1))))
        .await
        .unwrap()
        .unique();
    assert_eq!(twice.len(), 1);

    // Raw SQL with bind parameters; injection strings stay values.
    let evil = "'); DROP TABLE a; --";
    let rows = s
        .execute(
            text("SELECT $1::text AS v, $2::int + 1 AS n")
                .bind(evil)
                .bind(41),
        )
        .await
        .unwrap();
    let row = rows.one().unwrap();
    assert_eq!(row.get::<_, String>("v"), evil);
    assert_eq!(row.get::<_, i32>("n"), 42);
    assert!(
        row.try_get::<_, i64>("n").is_err(),
        "typed get checks the type"
    );
    let n: i64 = s
        .scalar(text("SELECT count(*) FROM a"))
        .await
        .unwrap()
        .get()
        .unwrap();
    assert_eq!(n, 5);
    let ids = s
        .execute(text("SELECT id FROM a ORDER BY id"))
        .await
        .unwrap()
        .scalars::<i32>()
        .unwrap()
        .all();
    assert_eq!(ids, [1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn queries_autoflush_and_go_through_the_identity_map() {
    let engine = seeded("identity").await;
    let s = AsyncSession::builder()
        .bind(engine.clone())
        .expire_on_commit(false)
        .build();
    let loaded = s.get::<A>(1).await.unwrap().unwrap();
    loaded.write().unwrap().data = "changed, unflushed".into();
    // Autoflush makes the change visible to the query, and the same object comes back.
    let found = s
        .scalars(select::<A>().filter(A::C.data.eq("changed, unflushed")))
        .await
        .unwrap()
        .one()
        .unwrap();
    assert!(found.ptr_eq(&loaded));
    // A new pending object is flushed before the query too.
    s.add(&Obj::new(A {
        data: "pending".into(),
        ..A::default()
    }))
    .unwrap();
    let n = s
        .scalars(select::<A>().filter(A::C.data.eq("pending")))
        .await
        .unwrap()
        .len();
    assert_eq!(n, 1);

    // populate_existing overwrites the loaded state with the row.
    s.commit().await.unwrap();
    let mut conn = engine.connect().await.unwrap();
    conn.execute("UPDATE a SET data = 'outside' WHERE id = 1", &[])
        .await
        .unwrap();
    let again = s
        .scalars(select::<A>().filter(A::C.id.eq(1)))
        .await
        .unwrap()
        .one()
        .unwrap();
    assert_eq!(
        again.read().unwrap().data,
        "changed, unflushed",
        "identity map wins"
    );
    let fresh = s
        .scalars(select::<A>().filter(A::C.id.eq(1)).populate_existing())
        .await
        .unwrap()
        .one()
        .unwrap();
    assert!(fresh.ptr_eq(&loaded));
    assert_eq!(loaded.read().unwrap().data, "outside");
}

#[tokio::test]
async fn selectinload_fills_collections_and_references() {
    let engine = seeded("selectin").await;
    let s = AsyncSession::new(engine.clone());
    // One already in the identity map before the eager load.
    let b_first = s.get::<B>(1).await.unwrap().unwrap();
    let parents = s
        .scalars(
            select::<A>()
                .options(selectinload(A::C.bs))
                .order_by(A::C.id.asc()),
        )
        .await
        .unwrap()
        .all();
    let counts: Vec<usize> = parents
        .iter()
        .map(|a| a.read().unwrap().bs.get().unwrap().len())
        .collect();
    assert_eq!(counts, [1, 2, 0, 1, 2]);
    let a1 = parents[0].read().unwrap();
    let child = &a1.bs.get().unwrap()[0];
    assert!(
        child.ptr_eq(&b_first),
        "the loaded child is the identity-map object"
    );
    drop(a1);

    let children = s
        .scalars(
            select::<B>()
                .options(selectinload(B::C.a))
                .order_by(B::C.id.asc()),
        )
        .await
        .unwrap()
        .all();
    for b in &children {
        let b = b.read().unwrap();
        let parent = b.a.get().unwrap().unwrap();
        assert_eq!(parent.read().unwrap().id, b.a_id);
        assert!(
            parents.iter().any(|p| p.ptr_eq(parent)),
            "same parent objects"
        );
    }
    // Without the option, the relationship is not loaded, and says so.
    let plain = AsyncSession::new(engine.clone());
    let a = plain.get::<A>(2).await.unwrap().unwrap();
    assert!(a.read().unwrap().bs.get().is_err());
}

#[tokio::test]
async fn streaming_fetches_in_chunks_and_an_early_drop_is_clean() {
    let engine = seeded("stream").await;
    let s = AsyncSession::new(engine.clone());
    s.execute(text(
        "INSERT INTO a (data) SELECT 'gen' || g FROM generate_series(1, 2500) g",
    ))
    .await
    .unwrap();
    let mut stream = s
        .stream_scalars(
            select::<A>()
                .filter(A::C.data.like("gen%"))
                .order_by(A::C.id.asc()),
        )
        .await
        .unwrap();
    let mut n = 0;
    while let Some(obj) = stream.next().await {
        obj.unwrap();
        n += 1;
    }
    assert_eq!(n, 2500);
    drop(stream);

    // execute() asked to stream: SQLAlchemy's AsyncMethodRequired message.
    let err = s
        .execute(select::<A>().stream_results())
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "Can't use the AsyncSession.execute() method with a server-side cursor. Use the \
         AsyncSession.stream() method for an async streaming result set."
    );

    // Dropped after a few items: the session works on, and the connection comes back clean.
    let mut stream = s.stream(select::<A>()).await.unwrap();
    for _ in 0..3 {
        stream.next().await.unwrap().unwrap();
    }
    let busy = s.get::<A>(1_000_000).await.unwrap_err();
    assert!(
        busy.to_string()
            .contains("concurrent operations are not permitted")
    );
    drop(stream);
    s.commit().await.unwrap();
    wait_pool_idle(&engine).await;
    assert_eq!(idle_in_transaction(&engine).await, 0);
    let n: i64 = s
        .scalar(text("SELECT count(*) FROM a"))
        .await
        .unwrap()
        .get()
        .unwrap();
    assert_eq!(n, 2505);
    s.close().await;
}
