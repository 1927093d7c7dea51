//! Selects of columns and aggregates, joins along relationships, GROUP BY / HAVING, DISTINCT,
//! and `joinedload`, against a real PostgreSQL.

use futures::StreamExt;
use session_core::{
    AsyncSession, Entity, Error, Obj, Reference, func, joinedload, select, select_columns,
    selectinload,
};
use session_tests::model::{A, B, Item};
use session_tests::support::{
    LogCapture, create_schema, echo_schema_engine, echo_statements, engine, seed, seeded,
};

#[tokio::test]
async fn columns_decode_into_typed_rows() {
    let engine = seeded("columns").await;
    let s = AsyncSession::new(engine.clone());
    let rows = s
        .execute(select_columns((A::C.id, A::C.data)).order_by(A::C.id.asc()))
        .await
        .unwrap()
        .all();
    assert_eq!(
        rows,
        [
            (1, "a1".to_string()),
            (2, "a2".into()),
            (3, "a3".into()),
            (4, "a4".into()),
            (5, "a5".into())
        ]
    );
    // One column: values, not tuples; scalars / scalar / one as on SQLAlchemy's Result.
    let ids: Vec<i32> = s
        .scalars(select_columns(A::C.id).order_by(A::C.id.desc()).limit(2))
        .await
        .unwrap()
        .all();
    assert_eq!(ids, [5, 4]);
    let first: Option<String> = s
        .scalar(select_columns(A::C.data).filter(A::C.id.eq(3)))
        .await
        .unwrap();
    assert_eq!(first.as_deref(), Some("a3"));
    let one = s
        .execute(select_columns((A::C.data, A::C.id)).filter(A::C.id.eq(2)))
        .await
        .unwrap()
        .one()
        .unwrap();
    assert_eq!(one, ("a2".to_string(), 2));
    let err = s
        .execute(select_columns(A::C.id).filter(A::C.id.gt(100)))
        .await
        .unwrap()
        .one()
        .unwrap_err();
    assert_eq!(err.to_string(), "No row was found when one was required");
    let err = s
        .execute(select_columns(A::C.id))
        .await
        .unwrap()
        .one_or_none()
        .unwrap_err();
    assert!(matches!(err, Error::MultipleResultsFound), "{err}");
    // A nullable column decodes as Option; the composite-key table works the same.
    let prices: Vec<(String, i64, Option<f64>)> = s
        .execute(
            select_columns((Item::C.shop, Item::C.sku, Item::C.price)).order_by(Item::C.sku.asc()),
        )
        .await
        .unwrap()
        .all();
    assert_eq!(prices[1], ("x".to_string(), 2, None));
    assert_eq!(prices[2].2, Some(30.0));
    // No ORM object is made for a column select.
    assert!(s.identity_map().is_empty());
}

#[tokio::test]
async fn aggregates_follow_postgresqls_types() {
    let engine = seeded("aggregates").await;
    let s = AsyncSession::new(engine.clone());
    let n = s
        .scalar(select_columns(func::count()).select_from::<A>())
        .await
        .unwrap();
    assert_eq!(n, Some(5));
    let (count, max, min, sum, avg) = s
        .execute(select_columns((
            func::count_of(Item::C.price),
            func::max(Item::C.price),
            func::min(Item::C.sku),
            func::sum(Item::C.sku),
            func::avg(Item::C.price),
        )))
        .await
        .unwrap()
        .one()
        .unwrap();
    assert_eq!(count, 1 + 1, "count(col) skips NULLs");
    assert_eq!(max, Some(30.0));
    assert_eq!(min, Some(1));
    assert_eq!(sum, Some(6));
    assert_eq!(avg, Some(15.5), "avg ignores the NULL price");
    let shops = s
        .scalar(select_columns(func::count_distinct(Item::C.shop)))
        .await
        .unwrap();
    assert_eq!(shops, Some(2));
    // Over no rows: count is 0, max is NULL.
    let (count, max) = s
        .execute(select_columns((func::count(), func::max(A::C.id))).filter(A::C.id.gt(100)))
        .await
        .unwrap()
        .one()
        .unwrap();
    assert_eq!((count, max), (0, None));
}

#[tokio::test]
async fn group_by_having_and_joins_along_relationships() {
    let engine = seeded("group_by").await;
    let s = AsyncSession::new(engine.clone());
    // Children per parent: 1, 2, 0, 1, 2. An inner join drops a3, an outer join keeps it.
    let inner = s
        .execute(
            select_columns((A::C.id, func::count_of(B::C.id)))
                .join(A::C.bs)
                .group_by(A::C.id)
                .order_by(A::C.id.asc()),
        )
        .await
        .unwrap()
        .all();
    assert_eq!(inner, [(1, 1), (2, 2), (4, 1), (5, 2)]);
    let outer = s
        .execute(
            select_columns((A::C.id, func::count_of(B::C.id)))
                .outerjoin(A::C.bs)
                .group_by(A::C.id)
                .order_by(A::C.id.asc()),
        )
        .await
        .unwrap()
        .all();
    assert_eq!(outer, [(1, 1), (2, 2), (3, 0), (4, 1), (5, 2)]);
    let busy = s
        .scalars(
            select_columns(A::C.data)
                .join(A::C.bs)
                .group_by(A::C.data)
                .having(func::count_of(B::C.id).gt(1))
                .order_by(A::C.data.asc()),
        )
        .await
        .unwrap()
        .all();
    assert_eq!(busy, ["a2", "a5"]);

    // Entities through a join: filter on the joined table; rows repeat per child, as in
    // SQLAlchemy 2.0, until unique() or distinct().
    let by_child = s
        .scalars(select::<A>().join(A::C.bs).filter(B::C.data.eq("b2.1")))
        .await
        .unwrap()
        .all();
    assert_eq!(by_child.len(), 1);
    assert_eq!(by_child[0].read().unwrap().data, "a2");
    let repeated = s
        .scalars(select::<A>().join(A::C.bs).filter(A::C.id.eq(2)))
        .await
        .unwrap();
    assert_eq!(repeated.len(), 2);
    let all = repeated.all();
    assert!(all[0].ptr_eq(&all[1]), "one object per identity");
    let unique = s
        .scalars(select::<A>().join(A::C.bs).filter(A::C.id.eq(2)))
        .await
        .unwrap()
        .unique();
    assert_eq!(unique.len(), 1);
    // An eager load on a joined query fills every copy of a repeated parent.
    let joined = s
        .scalars(
            select::<A>()
                .join(A::C.bs)
                .filter(A::C.id.eq(2))
                .options(selectinload(A::C.bs)),
        )
        .await
        .unwrap()
        .all();
    assert_eq!(joined.len(), 2);
    assert_eq!(joined[0].read().unwrap().bs.get().unwrap().len(), 2);
    let distinct = s
        .scalars(select::<A>().distinct().join(A::C.bs).filter(A::C.id.eq(2)))
        .await
        .unwrap();
    assert_eq!(distinct.len(), 1);
    // Many-to-one, and columns of both tables.
    let children = s
        .execute(
            select_columns((B::C.data, A::C.data))
                .join(B::C.a)
                .filter(A::C.data.eq("a5"))
                .order_by(B::C.id.asc()),
        )
        .await
        .unwrap()
        .all();
    assert_eq!(
        children,
        [
            ("b5.0".to_string(), "a5".to_string()),
            ("b5.1".into(), "a5".into())
        ]
    );
    let (sql, _) = select_columns((A::C.data, B::C.data))
        .join(A::C.bs)
        .to_sql();
    assert_eq!(
        sql,
        "SELECT \"a\".\"data\", \"b\".\"data\" FROM \"a\" JOIN \"b\" ON \"b\".\"a_id\" = \
         \"a\".\"id\""
    );
}

#[tokio::test]
async fn a_join_that_cannot_be_made_says_why() {
    let engine = seeded("bad_join").await;
    let s = AsyncSession::new(engine.clone());
    let err = s
        .execute(select::<A>().join(B::C.a))
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "Don't know how to join to a: the relationship starts at b, which is neither the first \
         table of the FROM clause nor joined yet; select from b or join it first"
    );
    let err = s
        .execute(select::<A>().join(A::C.bs).join(A::C.bs))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("Can't join to b: it is already in the FROM clause"),
        "{err}"
    );
    // Nothing ran: the session holds no connection and no transaction.
    assert!(!s.in_transaction());
}

/// An owner and pets with a nullable foreign key, for a many-to-one that may be NULL.
#[derive(Debug, Clone, Default, PartialEq, Entity)]
#[entity(table = "owner")]
struct Owner {
    #[entity(primary_key, generated)]
    id: i32,
    name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Entity)]
#[entity(table = "pet")]
struct Pet {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(foreign_key = "owner.id")]
    owner_id: Option<i32>,
    name: String,
    #[entity(relationship(foreign_key = "owner_id"))]
    owner: Reference<Owner>,
}

#[tokio::test]
async fn joinedload_reads_the_parent_from_the_same_query() {
    let capture = LogCapture::default();
    let _g = capture.install("session_core::echo=info");
    let engine = echo_schema_engine("joinedload").await;
    seed(&engine).await;
    let s = AsyncSession::new(engine.clone());
    // a1 is in the identity map before the query: the joined row reuses it.
    let a1 = s.get::<A>(1).await.unwrap().unwrap();
    let before = echo_statements(&capture.text()).len();
    let children = s
        .scalars(
            select::<B>()
                .options(joinedload(B::C.a))
                .order_by(B::C.id.asc()),
        )
        .await
        .unwrap()
        .all();
    let log = capture.text();
    let statements = echo_statements(&log)[before..].to_vec();
    assert_eq!(statements.len(), 1, "one SELECT: {statements:#?}");
    assert!(
        statements[0]
            .contains("LEFT OUTER JOIN \"a\" AS \"a_1\" ON \"a_1\".\"id\" = \"b\".\"a_id\""),
        "{}",
        statements[0]
    );
    assert_eq!(children.len(), 6);
    for b in &children {
        let b = b.read().unwrap();
        let parent = b.a.get().unwrap().unwrap();
        assert_eq!(parent.read().unwrap().id, b.a_id);
        assert_eq!(parent.read().unwrap().data, format!("a{}", b.a_id));
    }
    let first = children[0].read().unwrap();
    assert!(first.a.get().unwrap().unwrap().ptr_eq(&a1));
    drop(first);
    // Parents shared by several children are one object.
    let b5: Vec<_> = children[4..]
        .iter()
        .map(|b| b.read().unwrap().a.get().unwrap().unwrap().clone())
        .collect();
    assert!(b5[0].ptr_eq(&b5[1]));
    // With LIMIT (a many-to-one join keeps one row per child).
    let last = s
        .scalars(
            select::<B>()
                .options(joinedload(B::C.a))
                .order_by(B::C.id.desc())
                .limit(1),
        )
        .await
        .unwrap()
        .one()
        .unwrap();
    assert_eq!(
        last.read()
            .unwrap()
            .a
            .get()
            .unwrap()
            .unwrap()
            .read()
            .unwrap()
            .data,
        "a5"
    );
    // FOR UPDATE with a joined load locks the children's rows only: PostgreSQL refuses to lock
    // the nullable side of an outer join.
    let locked = s
        .scalars(
            select::<B>()
                .options(joinedload(B::C.a))
                .filter(B::C.id.eq(1))
                .with_for_update(),
        )
        .await
        .unwrap()
        .one()
        .unwrap();
    assert!(locked.read().unwrap().a.get().unwrap().unwrap().ptr_eq(&a1));
    let (sql, _) = select::<B>()
        .options(joinedload(B::C.a))
        .with_for_update()
        .to_sql();
    assert!(sql.ends_with(" FOR UPDATE OF \"b\""), "{sql}");
    // Inner-joined tables stay locked beside an outer join.
    let (sql, _) = select::<B>()
        .join(B::C.a)
        .options(joinedload(B::C.a))
        .with_for_update()
        .to_sql();
    assert!(sql.ends_with(" FOR UPDATE OF \"b\", \"a\""), "{sql}");
}

#[tokio::test]
async fn joinedload_of_a_null_foreign_key_is_a_loaded_none() {
    let engine = engine("joined_null", 4).await;
    create_schema(
        &engine,
        session_core::MetaData::new().with::<Owner>().with::<Pet>(),
    )
    .await;
    let s = AsyncSession::new(engine.clone());
    let owner = Obj::new(Owner {
        name: "ann".into(),
        ..Owner::default()
    });
    s.add(&owner).unwrap();
    s.flush().await.unwrap();
    let owner_id = owner.read().unwrap().id;
    for (name, owner_id) in [("rex", Some(owner_id)), ("stray", None)] {
        s.add(&Obj::new(Pet {
            name: name.into(),
            owner_id,
            ..Pet::default()
        }))
        .unwrap();
    }
    s.commit().await.unwrap();
    let s = AsyncSession::new(engine.clone());
    let pets = s
        .scalars(
            select::<Pet>()
                .options(joinedload(Pet::C.owner))
                .order_by(Pet::C.id.asc()),
        )
        .await
        .unwrap()
        .all();
    let rex = pets[0].read().unwrap();
    assert_eq!(
        rex.owner.get().unwrap().unwrap().read().unwrap().name,
        "ann"
    );
    let stray = pets[1].read().unwrap();
    assert!(stray.owner.is_loaded());
    assert!(stray.owner.get().unwrap().is_none());
}

#[tokio::test]
async fn streams_run_eager_loads_per_chunk() {
    let engine = seeded("stream_loads").await;
    let s = AsyncSession::new(engine.clone());
    let mut children = s
        .stream_scalars(
            select::<B>()
                .options(joinedload(B::C.a))
                .order_by(B::C.id.asc()),
        )
        .await
        .unwrap();
    let mut n = 0;
    while let Some(b) = children.next().await {
        let b = b.unwrap();
        let b = b.read().unwrap();
        assert_eq!(b.a.get().unwrap().unwrap().read().unwrap().id, b.a_id);
        n += 1;
    }
    drop(children);
    assert_eq!(n, 6);
    let mut parents = s
        .stream_scalars(
            select::<A>()
                .options(selectinload(A::C.bs))
                .order_by(A::C.id.asc()),
        )
        .await
        .unwrap();
    let mut counts = Vec::new();
    while let Some(a) = parents.next().await {
        counts.push(a.unwrap().read().unwrap().bs.get().unwrap().len());
    }
    assert_eq!(counts, [1, 2, 0, 1, 2]);
}

#[tokio::test]
async fn array_bound_queries_are_never_cached_into_generic_plans() {
    // PostgreSQL switches a cached statement to a generic plan after five runs, and there
    // `= ANY($1)` scans the whole array per row (20 ms became 450 ms in the benchmark). So
    // eager loads and `in_` filters run as unnamed statements, planned with their values.
    let engine = seeded("generic_plans").await;
    let s = AsyncSession::new(engine.clone());
    for _ in 0..7 {
        s.scalars(select::<A>().options(selectinload(A::C.bs)))
            .await
            .unwrap();
        s.scalars(select::<B>().options(selectinload(B::C.a)))
            .await
            .unwrap();
        s.scalars(select::<A>().filter(A::C.id.in_([1, 2])))
            .await
            .unwrap();
        s.scalars(select::<A>().filter(A::C.id.eq(1)))
            .await
            .unwrap();
    }
    // Same backend: the session still holds its connection (inside its transaction).
    let cached = s
        .execute(session_core::text(
            "SELECT statement FROM pg_prepared_statements ORDER BY statement",
        ))
        .await
        .unwrap()
        .scalars::<String>()
        .unwrap()
        .all();
    assert!(
        cached
            .iter()
            .any(|sql| sql.contains("WHERE \"a\".\"id\" = $1")),
        "plain statements are cached: {cached:#?}"
    );
    assert!(
        !cached.iter().any(|sql| sql.contains("ANY(")),
        "no array-bound statement is cached: {cached:#?}"
    );
}
