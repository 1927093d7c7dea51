//! Optimistic concurrency (SQLAlchemy's `version_id_col`, `test/orm/test_versioning.py`):
//! `#[entity(version)]` counts the row's versions, and every UPDATE and DELETE matches the
//! version the session loaded, so a write over another writer's change fails with SQLAlchemy's
//! StaleDataError message and leaves nothing of the flush behind.

use session_core::{Engine, Entity, Error, MetaData, Obj, select};
use session_tests::support::{create_schema, engine, kept_session as session};

#[derive(Debug, Clone, Default, PartialEq, Entity)]
#[entity(table = "page")]
struct Page {
    #[entity(primary_key)]
    id: i32,
    body: String,
    #[entity(version)]
    version_id: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Entity)]
#[entity(table = "log_line")]
struct LogLine {
    #[entity(primary_key, generated)]
    id: i32,
    text: String,
}

async fn setup(prefix: &str) -> Engine {
    let engine = engine(prefix, 4).await;
    create_schema(&engine, MetaData::new().with::<Page>().with::<LogLine>()).await;
    engine
}

fn page(id: i32, body: &str) -> Obj<Page> {
    Obj::new(Page {
        id,
        body: body.into(),
        ..Page::default()
    })
}

async fn db_rows(engine: &Engine) -> Vec<(i32, String, i32)> {
    let mut conn = engine.connect().await.unwrap();
    let rows = conn
        .query("SELECT id, body, version_id FROM page ORDER BY id", &[])
        .await
        .unwrap();
    conn.close().await;
    rows.iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[tokio::test]
async fn the_version_starts_at_one_and_grows_with_each_update() {
    let engine = setup("ver_basic").await;
    let s = session(&engine);
    let p = page(1, "v1");
    s.add(&p).unwrap();
    s.commit().await.unwrap();
    assert_eq!(p.read().unwrap().version_id, 1);
    p.write().unwrap().body = "v2".into();
    s.commit().await.unwrap();
    assert_eq!(p.read().unwrap().version_id, 2);
    // A write that changes nothing sends no UPDATE and keeps the version.
    let same = p.read().unwrap().body.clone();
    p.write().unwrap().body = same;
    s.commit().await.unwrap();
    assert_eq!(db_rows(&engine).await, [(1, "v2".to_string(), 2)]);
    // Setting the counter by hand does not steer it: the session counts.
    {
        let mut w = p.write().unwrap();
        w.version_id = 40;
        w.body = "v3".into();
    }
    s.commit().await.unwrap();
    assert_eq!(db_rows(&engine).await, [(1, "v3".to_string(), 3)]);
}

#[tokio::test]
async fn a_stale_update_fails_with_sqlalchemys_message_and_nothing_partial() {
    let engine = setup("ver_stale").await;
    let seed = session(&engine);
    seed.add_all([&page(1, "a"), &page(2, "b"), &page(3, "c")])
        .unwrap();
    seed.commit().await.unwrap();

    let mine = session(&engine);
    let theirs = session(&engine);
    let my_pages = mine.scalars(select::<Page>()).await.unwrap().all();
    let their_page = theirs.get_one::<Page>(2).await.unwrap();
    their_page.write().unwrap().body = "theirs".into();
    theirs.commit().await.unwrap();

    // One UPDATE batch for the three pages, one of them stale; an INSERT in the same flush.
    for p in &my_pages {
        p.write().unwrap().body.push_str(" (mine)");
    }
    mine.add(&Obj::new(LogLine {
        text: "edited three pages".into(),
        ..LogLine::default()
    }))
    .unwrap();
    let e = mine.commit().await.unwrap_err();
    assert!(matches!(e, Error::StaleData(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        "UPDATE statement on table 'page' expected to update 3 row(s); 2 were matched."
    );
    mine.rollback().await.unwrap();
    assert_eq!(
        db_rows(&engine).await,
        [
            (1, "a".to_string(), 1),
            (2, "theirs".to_string(), 2),
            (3, "c".to_string(), 1)
        ]
    );
    assert_eq!(
        session_tests::support::count_rows(&engine, "log_line").await,
        0
    );

    // One object alone (the single-row statement) is checked the same way.
    let stale = session(&engine);
    let p = stale.get_one::<Page>(1).await.unwrap();
    let other = session(&engine);
    other
        .get_one::<Page>(1)
        .await
        .unwrap()
        .write()
        .unwrap()
        .body = "other".into();
    other.commit().await.unwrap();
    p.write().unwrap().body = "stale".into();
    let e = stale.commit().await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "UPDATE statement on table 'page' expected to update 1 row(s); 0 were matched."
    );
    stale.rollback().await.unwrap();
    // After the rollback the object reloads the current row and its version, and can write.
    stale.refresh(&p, &[]).await.unwrap();
    assert_eq!(p.read().unwrap().version_id, 2);
    p.write().unwrap().body = "fresh".into();
    stale.commit().await.unwrap();
    assert_eq!(db_rows(&engine).await[0], (1, "fresh".to_string(), 3));
}

#[tokio::test]
async fn a_stale_delete_fails_and_keeps_the_row() {
    let engine = setup("ver_delete").await;
    let seed = session(&engine);
    seed.add_all([&page(1, "a"), &page(2, "b")]).unwrap();
    seed.commit().await.unwrap();

    let mine = session(&engine);
    let pages = mine.scalars(select::<Page>()).await.unwrap().all();
    let theirs = session(&engine);
    theirs
        .get_one::<Page>(1)
        .await
        .unwrap()
        .write()
        .unwrap()
        .body = "changed".into();
    theirs.commit().await.unwrap();

    for p in &pages {
        mine.delete(p).unwrap();
    }
    let e = mine.commit().await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "DELETE statement on table 'page' expected to delete 2 row(s); Only 1 were matched."
    );
    mine.rollback().await.unwrap();
    assert_eq!(db_rows(&engine).await.len(), 2, "nothing was deleted");

    // An up-to-date delete goes through.
    let fresh = session(&engine);
    for p in fresh.scalars(select::<Page>()).await.unwrap().all() {
        fresh.delete(&p).unwrap();
    }
    fresh.commit().await.unwrap();
    assert!(db_rows(&engine).await.is_empty());
}

#[tokio::test]
async fn thousands_of_versioned_rows_update_in_batches() {
    let engine = setup("ver_batch").await;
    let s = session(&engine);
    let pages: Vec<Obj<Page>> = (0..5000).map(|i| page(i, "x")).collect();
    s.add_all(&pages).unwrap();
    s.commit().await.unwrap();
    for p in &pages {
        p.write().unwrap().body = "y".into();
    }
    s.commit().await.unwrap();
    let mut conn = engine.connect().await.unwrap();
    let (n, min, max): (i64, i32, i32) = {
        let row = conn
            .query_one(
                "SELECT count(*), min(version_id), max(version_id) FROM page WHERE body = 'y'",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1), row.get(2))
    };
    assert_eq!((n, min, max), (5000, 2, 2));
    conn.close().await;
}
