//! AsyncSession members added for SQLAlchemy parity, against a real PostgreSQL: `get` /
//! `get_one` / `refresh` options (populate_existing, with_for_update), 2.1's `merge_all` and
//! `delete_all`, and the closure form of `begin_nested`.

use session_core::tokio_postgres::error::SqlState;
use session_core::{AsyncSession, Engine, Error, GetOptions, Obj, RowLock};
use session_tests::model::A;
use session_tests::support::{a, count_rows, schema_engine};

fn lock_not_available(err: &Error) -> bool {
    err.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
}

/// An engine whose table `a` holds `data` rows with ids 1, 2, ...
async fn with_rows(prefix: &str, data: &[&str]) -> Engine {
    let engine = schema_engine(prefix, 4).await;
    let session = AsyncSession::new(engine.clone());
    for d in data {
        session.add(&a(d)).unwrap();
    }
    session.commit().await.unwrap();
    engine
}

/// `SELECT data FROM a WHERE id = $1`, on a connection of its own (committed state).
async fn committed_data(engine: &Engine, id: i32) -> Option<String> {
    let mut conn = engine.connect().await.unwrap();
    let row = conn
        .query_opt("SELECT data FROM a WHERE id = $1", &[&id])
        .await
        .unwrap();
    conn.close().await;
    row.map(|r| r.get(0))
}

/// Counts `a` rows with `data` inside `session`'s own transaction.
async fn seen_by(session: &AsyncSession, data: &str) -> i64 {
    let mut conn = session.connection().await.unwrap();
    conn.scalar("SELECT count(*) FROM a WHERE data = $1", &[&data])
        .await
        .unwrap()
}

#[tokio::test]
async fn get_with_for_update_locks_the_row_even_for_an_object_already_loaded() {
    let engine = with_rows("get_lock", &["one", "two"]).await;
    let holder = AsyncSession::new(engine.clone());
    let loaded = holder.get_one::<A>(1).await.unwrap();
    // In the identity map already: with_for_update still sends SELECT ... FOR UPDATE NOWAIT,
    // and answers with the same object.
    let locked = holder
        .get_one_with::<A>(
            1,
            GetOptions::new().with_for_update(RowLock::update().nowait()),
        )
        .await
        .unwrap();
    assert!(locked.ptr_eq(&loaded));
    let other = AsyncSession::new(engine.clone());
    // A plain read is not blocked by a row lock.
    assert!(other.get::<A>(1).await.unwrap().is_some());
    other.rollback().await.unwrap();
    let err = other
        .get_with::<A>(
            1,
            GetOptions::new().with_for_update(RowLock::update().nowait()),
        )
        .await
        .unwrap_err();
    assert!(lock_not_available(&err), "{err:?}");
    other.rollback().await.unwrap();
    // SKIP LOCKED leaves the held row out; an unlocked one is found (OF the entity's table).
    let skipped = other
        .get_with::<A>(
            1,
            GetOptions::new().with_for_update(RowLock::update().skip_locked()),
        )
        .await
        .unwrap();
    assert!(skipped.is_none());
    let free = other
        .get_with::<A>(
            2,
            GetOptions::new().with_for_update(RowLock::update().of::<A>().nowait()),
        )
        .await
        .unwrap();
    assert_eq!(free.unwrap().read().unwrap().data, "two");
    other.rollback().await.unwrap();
    // FOR SHARE conflicts with FOR UPDATE too.
    let err = other
        .get_with::<A>(
            1,
            GetOptions::new().with_for_update(RowLock::share().nowait()),
        )
        .await
        .unwrap_err();
    assert!(lock_not_available(&err), "{err:?}");
    other.rollback().await.unwrap();
    // Once the holder ends its transaction the row is free.
    holder.commit().await.unwrap();
    let now = other
        .get_one_with::<A>(
            1,
            GetOptions::new().with_for_update(RowLock::update().nowait()),
        )
        .await
        .unwrap();
    assert_eq!(now.read().unwrap().data, "one");
    other.rollback().await.unwrap();
    // A contradictory lock is refused before any SQL; a missing row is NoResultFound.
    let err = other
        .get_with::<A>(
            1,
            GetOptions::new().with_for_update(RowLock::update().nowait().skip_locked()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidRequest(m) if m.contains("NOWAIT or SKIP LOCKED")),
        "{err:?}"
    );
    assert!(matches!(
        other
            .get_one_with::<A>(99, GetOptions::new().populate_existing())
            .await,
        Err(Error::NoResultFound)
    ));
}

#[tokio::test]
async fn populate_existing_discards_an_unflushed_change_and_a_lock_alone_keeps_it() {
    let engine = with_rows("get_populate", &["one"]).await;
    let session = AsyncSession::new(engine.clone());
    session.set_autoflush(false);
    let obj = session.get_one::<A>(1).await.unwrap();
    obj.write().unwrap().data = "unflushed".into();
    // Plain get answers from the identity map: the change stays.
    let again = session.get_one::<A>(1).await.unwrap();
    assert_eq!(again.read().unwrap().data, "unflushed");
    // with_for_update alone reloads nothing of a loaded object (SQLAlchemy's).
    session
        .get_one_with::<A>(1, GetOptions::new().with_for_update(RowLock::update()))
        .await
        .unwrap();
    assert_eq!(obj.read().unwrap().data, "unflushed");
    // populate_existing overwrites it with the row.
    let reloaded = session
        .get_one_with::<A>(1, GetOptions::new().populate_existing())
        .await
        .unwrap();
    assert!(reloaded.ptr_eq(&obj));
    assert_eq!(obj.read().unwrap().data, "one");
    assert!(!session.is_modified(&obj));
    assert!(session.dirty().is_empty(), "{:?}", session.dirty());
    session.commit().await.unwrap();
    assert_eq!(committed_data(&engine, 1).await.as_deref(), Some("one"));
    // With autoflush on, the change is flushed before the reload, as in SQLAlchemy.
    let session = AsyncSession::new(engine.clone());
    let obj = session.get_one::<A>(1).await.unwrap();
    obj.write().unwrap().data = "flushed first".into();
    session
        .get_one_with::<A>(1, GetOptions::new().populate_existing())
        .await
        .unwrap();
    assert_eq!(obj.read().unwrap().data, "flushed first");
    session.commit().await.unwrap();
    assert_eq!(
        committed_data(&engine, 1).await.as_deref(),
        Some("flushed first")
    );
}

#[tokio::test]
async fn refresh_with_reloads_under_a_row_lock() {
    let engine = with_rows("refresh_lock", &["one"]).await;
    let holder = AsyncSession::new(engine.clone());
    let obj = holder.get_one::<A>(1).await.unwrap();
    holder.commit().await.unwrap();
    // Another session changes the row meanwhile.
    let writer = AsyncSession::new(engine.clone());
    writer.get_one::<A>(1).await.unwrap().write().unwrap().data = "changed".into();
    writer.commit().await.unwrap();
    holder
        .refresh_with(&obj, &[], RowLock::update().nowait())
        .await
        .unwrap();
    assert_eq!(obj.read().unwrap().data, "changed");
    let err = writer
        .get_with::<A>(
            1,
            GetOptions::new().with_for_update(RowLock::update().nowait()),
        )
        .await
        .unwrap_err();
    assert!(lock_not_available(&err), "{err:?}");
    writer.rollback().await.unwrap();
    let err = holder
        .refresh_with(&obj, &[&A::C.data], RowLock::share().nowait().skip_locked())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(_)), "{err:?}");
    holder.rollback().await.unwrap();
}

#[tokio::test]
async fn merge_all_merges_in_order_with_one_autoflush() {
    let engine = with_rows("merge_all", &["one", "two"]).await;
    let session = AsyncSession::new(engine.clone());
    let loaded = session.get_one::<A>(1).await.unwrap();
    let sources: Vec<Obj<A>> = [(1, "one*"), (2, "two*")]
        .into_iter()
        .map(|(id, data)| {
            Obj::new(A {
                id,
                data: data.into(),
                ..A::default()
            })
        })
        .collect();
    let merged = session.merge_all(&sources).await.unwrap();
    assert_eq!(merged.len(), 2);
    assert!(
        merged[0].ptr_eq(&loaded),
        "the session's own object for id 1"
    );
    assert_eq!(merged[1].read().unwrap().data, "two*");
    assert!(
        sources.iter().all(|s| !session.contains(s)),
        "never attached"
    );
    // Merging the second did not autoflush the first: both are still dirty.
    assert_eq!(session.dirty().len(), 2, "{:?}", session.dirty());
    assert!(session.autoflush(), "autoflush restored");
    session.commit().await.unwrap();
    assert_eq!(committed_data(&engine, 1).await.as_deref(), Some("one*"));
    assert_eq!(committed_data(&engine, 2).await.as_deref(), Some("two*"));
}

#[tokio::test]
async fn delete_all_marks_every_object_and_stops_at_the_first_error() {
    let engine = with_rows("delete_all", &["one", "two", "three"]).await;
    let session = AsyncSession::new(engine.clone());
    let one = session.get_one::<A>(1).await.unwrap();
    let two = session.get_one::<A>(2).await.unwrap();
    session.delete_all([&one, &two]).unwrap();
    assert_eq!(session.deleted().len(), 2);
    session.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "a").await, 1);
    let three = session.get_one::<A>(3).await.unwrap();
    let transient = a("never stored");
    let err = session.delete_all([&three, &transient]).unwrap_err();
    assert!(err.to_string().contains("is not persisted"), "{err}");
    assert_eq!(session.deleted().len(), 1, "the one before the error");
    session.rollback().await.unwrap();
    assert_eq!(count_rows(&engine, "a").await, 1);
}

#[tokio::test]
async fn nested_transaction_keeps_the_savepoint_on_ok_and_undoes_it_on_err() {
    let engine = schema_engine("nested_block", 4).await;
    let session = AsyncSession::new(engine.clone());
    session.add(&a("outer")).unwrap();
    let kept: Result<i32, Error> = session
        .nested_transaction(async |s| {
            assert!(s.in_nested_transaction());
            s.add(&a("kept"))?;
            Ok(7)
        })
        .await;
    assert_eq!(kept.unwrap(), 7);
    assert!(!session.in_nested_transaction());
    let undone: Result<(), Error> = session
        .nested_transaction(async |s| {
            s.add(&a("gone"))?;
            s.flush().await?; // the INSERT reached the server inside the savepoint
            assert_eq!(seen_by(s, "gone").await, 1);
            Err(Error::InvalidRequest("body failed".into()))
        })
        .await;
    assert!(matches!(undone, Err(Error::InvalidRequest(m)) if m == "body failed"));
    // The savepoint's row is gone, the outer transaction is open with the rest.
    assert!(session.in_transaction());
    assert!(!session.in_nested_transaction());
    assert!(session.get_transaction().unwrap().is_active);
    assert_eq!(seen_by(&session, "gone").await, 0);
    assert_eq!(seen_by(&session, "kept").await, 1);
    assert_eq!(seen_by(&session, "outer").await, 1);
    assert_eq!(count_rows(&engine, "a").await, 0, "nothing committed yet");
    session.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "a").await, 2);
    // A body that ends the savepoint itself: nothing more is done.
    let by_hand: Result<(), Error> = session
        .nested_transaction(async |s| {
            s.add(&a("released by hand"))?;
            let sp = s.get_nested_transaction().unwrap();
            assert!(sp.nested);
            s.rollback().await?; // the whole transaction, savepoint included
            Ok(())
        })
        .await;
    by_hand.unwrap();
    assert!(!session.in_transaction());
    session.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "a").await, 2);
}

#[tokio::test]
async fn load_fills_a_relationship_of_loaded_objects_in_one_query_and_get_takes_loaders() {
    use session_core::{joinedload, select, selectinload};
    let engine = schema_engine("api_load", 4).await;
    let s = AsyncSession::builder()
        .bind(engine.clone())
        .expire_on_commit(false)
        .build();
    for i in 0..3 {
        let parent = a(&format!("p{i}"));
        for j in 0..=i {
            parent
                .write()
                .unwrap()
                .bs
                .push(Obj::new(session_tests::model::B {
                    data: format!("c{i}{j}"),
                    ..Default::default()
                }))
                .unwrap();
        }
        s.add(&parent).unwrap();
    }
    s.commit().await.unwrap();

    let fresh = AsyncSession::new(engine.clone());
    let parents = fresh.scalars(select::<A>()).await.unwrap().all();
    assert!(parents.iter().all(|p| !p.read().unwrap().bs.is_loaded()));
    fresh.load(&parents, selectinload(A::C.bs)).await.unwrap();
    let mut sizes: Vec<usize> = parents
        .iter()
        .map(|p| p.read().unwrap().bs.get().unwrap().len())
        .collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [1, 2, 3]);
    let e = fresh
        .load(&[], joinedload(session_tests::model::B::C.a))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("use selectinload"), "{e}");

    // get_with + a loader option: loaded also for an object from the identity map.
    let other = AsyncSession::new(engine.clone());
    let id = parents[0].read().unwrap().id;
    let plain = other.get::<A>(id).await.unwrap().unwrap();
    assert!(!plain.read().unwrap().bs.is_loaded());
    let same = other
        .get_one_with::<A>(id, GetOptions::new().options(selectinload(A::C.bs)))
        .await
        .unwrap();
    assert!(same.ptr_eq(&plain));
    assert!(same.read().unwrap().bs.is_loaded());
}
