//! `insert` / `update` / `delete` statements through a session, against a real PostgreSQL:
//! WHERE, RETURNING, row counts, and the identity map kept in step (SQLAlchemy's
//! `synchronize_session="fetch"`), also across rollbacks and cancellation.

use session_core::{
    AsyncSession, Obj, ObjectState, delete, func, insert, select, select_columns, update,
};
use session_tests::model::{A, B, Item};
use session_tests::support::{
    a, count_rows, idle_in_transaction, poll_then_drop, seeded, wait_pool_idle,
};

#[tokio::test]
async fn insert_returns_keys_and_server_defaults() {
    let engine = seeded("insert_stmt").await;
    let s = AsyncSession::new(engine.clone());
    let (id, created) = s
        .execute(
            insert::<A>()
                .value(A::C.data, "inserted")
                .returning((A::C.id, A::C.create_date)),
        )
        .await
        .unwrap()
        .one()
        .unwrap();
    assert_eq!(id, 6);
    assert!(created.is_some(), "server default read back");
    let id = s
        .scalar(insert::<A>().value(A::C.data, "again").returning(A::C.id))
        .await
        .unwrap();
    assert_eq!(id, Some(7));
    let plain = s
        .execute(insert::<B>().value(B::C.a_id, 6).value(B::C.data, "child"))
        .await
        .unwrap();
    assert_eq!(plain.rowcount(), 1);
    // Injection strings are values.
    let evil = "x'); DROP TABLE a; --";
    s.execute(insert::<A>().value(A::C.data, evil))
        .await
        .unwrap();
    s.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "a").await, 8);
    let stored = s
        .scalar(select_columns(A::C.data).filter(A::C.id.eq(8)))
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some(evil));
    // A constraint violation is the database's error, and commits nothing.
    let err = s
        .execute(
            insert::<B>()
                .value(B::C.a_id, 999)
                .value(B::C.data, "orphan"),
        )
        .await
        .unwrap_err();
    assert!(err.is_foreign_key_violation(), "{err}");
    s.rollback().await.unwrap();
    assert_eq!(count_rows(&engine, "b").await, 7);
    // The same column twice is refused before anything runs.
    let err = s
        .execute(insert::<A>().value(A::C.data, "x").value(A::C.data, "y"))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "column a.data is given a value twice");
}

#[tokio::test]
async fn update_changes_rows_and_the_objects_the_session_holds() {
    let engine = seeded("update_stmt").await;
    let s = AsyncSession::new(engine.clone());
    let a1 = s.get::<A>(1).await.unwrap().unwrap();
    let a3 = s.get::<A>(3).await.unwrap().unwrap();
    let result = s
        .execute(update::<A>().set(A::C.data, "bulk").filter(A::C.id.le(2)))
        .await
        .unwrap();
    assert_eq!(result.rowcount(), 2);
    assert_eq!(a1.read().unwrap().data, "bulk", "synchronized");
    assert!(!s.is_modified(&a1), "the new value is the loaded state");
    assert!(s.dirty().is_empty());
    assert_eq!(
        a3.read().unwrap().data,
        "a3",
        "rows not matched are untouched"
    );
    // RETURNING with synchronization.
    let returned = s
        .scalars(
            update::<A>()
                .set(A::C.data, "returned")
                .filter(A::C.id.eq(3))
                .returning(A::C.data),
        )
        .await
        .unwrap()
        .all();
    assert_eq!(returned, ["returned"]);
    assert_eq!(a3.read().unwrap().data, "returned");
    // synchronize_session(false) leaves the objects as they were (SQLAlchemy's False).
    s.execute(
        update::<A>()
            .set(A::C.data, "unsynced")
            .filter(A::C.id.eq(1))
            .synchronize_session(false),
    )
    .await
    .unwrap();
    assert_eq!(a1.read().unwrap().data, "bulk");
    s.refresh(&a1, &[]).await.unwrap();
    assert_eq!(a1.read().unwrap().data, "unsynced");
    s.commit().await.unwrap();
    let other = AsyncSession::new(engine.clone());
    let names = other
        .scalars(select_columns(A::C.data).order_by(A::C.id.asc()).limit(3))
        .await
        .unwrap()
        .all();
    assert_eq!(names, ["unsynced", "bulk", "returned"]);

    // Unflushed changes are flushed first (autoflush), so the statement sees them.
    let s = AsyncSession::new(engine.clone());
    s.add(&a("pending")).unwrap();
    let n = s
        .execute(update::<A>().set(A::C.data, "everyone"))
        .await
        .unwrap()
        .rowcount();
    assert_eq!(n, 6);
    // Bad statements say what is wrong and run nothing.
    let err = s
        .execute(update::<A>().filter(A::C.id.eq(1)))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "update of a has no values; add them with .set(column, value)"
    );
    let err = s
        .execute(
            update::<A>()
                .set(A::C.data, "x")
                .filter(B::C.data.eq("b1.0")),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("this statement on a filters on a column of b"),
        "{err}"
    );
    s.rollback().await.unwrap();
}

#[tokio::test]
async fn rollbacks_undo_what_a_statement_synchronized() {
    let engine = seeded("update_rollback").await;
    let s = AsyncSession::new(engine.clone());
    let a1 = s.get::<A>(1).await.unwrap().unwrap();
    let a2 = s.get::<A>(2).await.unwrap().unwrap();
    let savepoint = s.begin_nested().await.unwrap();
    s.execute(update::<A>().set(A::C.data, "inside").filter(A::C.id.eq(1)))
        .await
        .unwrap();
    assert_eq!(a1.read().unwrap().data, "inside");
    savepoint.rollback().await.unwrap();
    assert!(a1.is_expired(), "changed inside the savepoint: expired");
    assert!(!a2.is_expired(), "untouched objects stay loaded");
    s.refresh(&a1, &[]).await.unwrap();
    assert_eq!(a1.read().unwrap().data, "a1");

    // A synchronized DELETE makes the object deleted; the root rollback brings it back.
    let b1 = s.get::<B>(1).await.unwrap().unwrap();
    let gone = s
        .execute(delete::<B>().filter(B::C.a_id.eq(1)))
        .await
        .unwrap();
    assert_eq!(gone.rowcount(), 1);
    assert_eq!(b1.state(), ObjectState::Deleted);
    assert!(s.get::<B>(1).await.unwrap().is_none());
    s.rollback().await.unwrap();
    assert_eq!(b1.state(), ObjectState::Persistent);
    let again = s.get::<B>(1).await.unwrap().unwrap();
    assert!(again.ptr_eq(&b1));
    assert_eq!(again.read().unwrap().data, "b1.0");

    // Committed, it is detached and stays deleted.
    let ids = s
        .scalars(delete::<B>().filter(B::C.a_id.eq(1)).returning(B::C.id))
        .await
        .unwrap()
        .all();
    assert_eq!(ids, [1]);
    s.commit().await.unwrap();
    assert_eq!(b1.state(), ObjectState::Detached);
    assert_eq!(count_rows(&engine, "b").await, 5);
    let left = s
        .scalar(select_columns(func::count()).select_from::<B>())
        .await
        .unwrap();
    assert_eq!(left, Some(5));
}

#[tokio::test]
async fn delete_of_pending_marks_and_unsynchronized_deletes() {
    let engine = seeded("delete_stmt").await;
    let s = AsyncSession::new(engine.clone());
    let b2 = s.get::<B>(2).await.unwrap().unwrap();
    // Marked for deletion, then deleted by a statement: flushed first, so one DELETE of it.
    s.delete(&b2).unwrap();
    let n = s
        .execute(delete::<B>().filter(B::C.a_id.eq(2)))
        .await
        .unwrap()
        .rowcount();
    assert_eq!(n, 1, "b2 went in the autoflush, b3 in the statement");
    assert!(s.deleted().is_empty());
    // Without synchronization the object stays persistent in the session.
    let b4 = s.get::<B>(4).await.unwrap().unwrap();
    s.execute(
        delete::<B>()
            .filter(B::C.id.eq(4))
            .synchronize_session(false),
    )
    .await
    .unwrap();
    assert_eq!(b4.state(), ObjectState::Persistent);
    s.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "b").await, 3);
}

#[tokio::test]
async fn a_statement_dropped_mid_flight_leaves_the_pool_clean() {
    let engine = seeded("dml_cancel").await;
    let s = AsyncSession::new(engine.clone());
    let a1 = s.get::<A>(1).await.unwrap().unwrap();
    for polls in 0..6 {
        s.refresh(&a1, &[]).await.unwrap();
        let done = poll_then_drop(
            s.execute(
                update::<A>()
                    .set(A::C.data, format!("try{polls}"))
                    .filter(A::C.id.eq(1)),
            ),
            polls,
        )
        .await;
        if done.is_none() {
            // Dropped: the object may have missed the new value, so it is expired or it shows
            // what the database (in this transaction) holds, never a stale value.
            // A statement dropped in flight discards its connection: the transaction is then
            // in doubt until rolled back.
            match s
                .scalar(select_columns(A::C.data).filter(A::C.id.eq(1)))
                .await
            {
                Ok(held) => assert!(
                    a1.is_expired() || Some(a1.read().unwrap().data.clone()) == held,
                    "after {polls} polls: object {:?}, database {held:?}",
                    a1.peek(|a| a.data.clone())
                ),
                Err(e) => assert!(e.is_in_doubt(), "after {polls} polls: {e}"),
            }
        }
        s.rollback().await.unwrap();
        wait_pool_idle(&engine).await;
        assert_eq!(idle_in_transaction(&engine).await, 0, "after {polls} polls");
    }
    s.refresh(&a1, &[]).await.unwrap();
    assert_eq!(a1.read().unwrap().data, "a1", "every attempt rolled back");
    let obj = Obj::new(A {
        data: "after".into(),
        ..A::default()
    });
    s.add(&obj).unwrap();
    s.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "a").await, 6);
}

#[tokio::test]
async fn or_groups_stay_one_condition_beside_other_filters() {
    let engine = seeded("or_groups").await;
    let s = AsyncSession::new(engine.clone());
    // Children of a5 are b5.0 and b5.1; b2.1 belongs to a2 and must survive.
    let statement = delete::<B>()
        .filter(B::C.a_id.eq(5))
        .filter(B::C.data.eq("b5.0").or(B::C.data.eq("b2.1")));
    let (sql, _) = statement.to_sql();
    assert_eq!(
        sql,
        "DELETE FROM \"b\" WHERE \"b\".\"a_id\" = $1 AND ((\"b\".\"data\" = $2) OR \
         (\"b\".\"data\" = $3))"
    );
    let n = s.execute(statement).await.unwrap().rowcount();
    assert_eq!(n, 1, "only b5.0");
    s.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "b").await, 5);
}

#[tokio::test]
async fn a_synchronized_update_of_a_primary_key_is_refused() {
    let engine = seeded("pk_update").await;
    let s = AsyncSession::new(engine.clone());
    let err = s
        .execute(update::<A>().set(A::C.id, 100).filter(A::C.id.eq(3)))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("update of a sets its primary-key column a.id"),
        "{err}"
    );
    assert!(!s.in_transaction(), "nothing ran");
}

#[tokio::test]
async fn inserted_then_deleted_in_one_transaction_stays_transient_after_rollback() {
    let engine = seeded("insert_delete_rollback").await;
    let s = AsyncSession::new(engine.clone());
    let obj = a("short-lived");
    s.add(&obj).unwrap();
    s.flush().await.unwrap();
    s.execute(delete::<A>().filter(A::C.data.eq("short-lived")))
        .await
        .unwrap();
    assert_eq!(obj.state(), ObjectState::Deleted);
    s.rollback().await.unwrap();
    assert_eq!(obj.state(), ObjectState::Transient, "its row never existed");
    assert!(s.identity_map().is_empty());
}

#[tokio::test]
async fn eq_none_and_ne_none_compare_with_null() {
    // SQLAlchemy renders `col == None` as `col IS NULL` and `col != None` as `col IS NOT NULL`:
    // `= NULL` would match no row at all.
    let engine = seeded("eq_none").await;
    let s = AsyncSession::new(engine.clone());
    let (sql, params) = select::<Item>().filter(Item::C.price.eq(None)).to_sql();
    assert!(sql.ends_with("WHERE \"item\".\"price\" IS NULL"), "{sql}");
    assert!(params.is_empty());
    let (sql, _) = select::<Item>().filter(Item::C.price.ne(None)).to_sql();
    assert!(
        sql.ends_with("WHERE \"item\".\"price\" IS NOT NULL"),
        "{sql}"
    );
    // A value still binds.
    let (sql, params) = select::<Item>()
        .filter(Item::C.price.eq(Some(1.0)))
        .to_sql();
    assert!(sql.ends_with("WHERE \"item\".\"price\" = $1"), "{sql}");
    assert_eq!(params.len(), 1);

    // Seeded items: x/1 at 1.0, x/2 without a price, y/3 at 30.0.
    let skus = |objs: Vec<Obj<Item>>| {
        let mut skus: Vec<i64> = objs.iter().map(|o| o.read().unwrap().sku).collect();
        skus.sort_unstable();
        skus
    };
    let null = s
        .scalars(select::<Item>().filter(Item::C.price.eq(None)))
        .await
        .unwrap()
        .all();
    assert_eq!(skus(null), [2]);
    let priced = s
        .scalars(select::<Item>().filter(Item::C.price.ne(None)))
        .await
        .unwrap()
        .all();
    assert_eq!(skus(priced), [1, 3]);
    // Beside other conditions, in NOT and OR groups.
    let n = s
        .scalars(
            select::<Item>()
                .filter(Item::C.shop.eq("x"))
                .filter(Item::C.price.eq(None).not().or(Item::C.sku.eq(3))),
        )
        .await
        .unwrap()
        .all();
    assert_eq!(skus(n), [1]);

    let updated = s
        .execute(
            update::<Item>()
                .set(Item::C.price, 2.0)
                .filter(Item::C.price.eq(None)),
        )
        .await
        .unwrap()
        .rowcount();
    assert_eq!(updated, 1, "the item without a price");
    let deleted = s
        .execute(
            delete::<Item>()
                .filter(Item::C.price.ne(None))
                .filter(Item::C.sku.ne(2)),
        )
        .await
        .unwrap()
        .rowcount();
    assert_eq!(deleted, 2, "x/1 and y/3");
    s.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "item").await, 1);
    let left = s
        .scalar(select_columns(Item::C.price).filter(Item::C.sku.eq(2)))
        .await
        .unwrap();
    assert_eq!(left, Some(Some(2.0)));
}
