//! A version the server generates (SQLAlchemy's `version_id_col` on PostgreSQL's `xmin` with
//! `version_id_generator=False`, `test/orm/test_versioning.py`'s server-side cases):
//! `#[entity(version, system)] xmin: Xid` is read back after INSERT and UPDATE, every UPDATE
//! and DELETE matches the `xmin` loaded, and a write over another writer's change fails with
//! SQLAlchemy's StaleDataError message, leaving nothing of the flush behind.

use session_core::{AsyncSession, Engine, Entity, Error, MetaData, Obj, Xid, select, text};
use session_tests::support::{create_schema, engine, kept_session as session};

#[derive(Debug, Clone, Default, PartialEq, Entity)]
#[entity(table = "doc")]
struct Doc {
    #[entity(primary_key)]
    id: i32,
    body: String,
    #[entity(version, system)]
    xmin: Xid,
}

async fn setup(prefix: &str) -> Engine {
    let engine = engine(prefix, 4).await;
    create_schema(&engine, MetaData::new().with::<Doc>()).await;
    engine
}

fn doc(id: i32, body: &str) -> Obj<Doc> {
    Obj::new(Doc {
        id,
        body: body.into(),
        ..Doc::default()
    })
}

/// Another writer's UPDATE of every row, committed.
async fn someone_else_touches(engine: &Engine, ids: &str) {
    let s = AsyncSession::new(engine.clone());
    s.execute(text(format!(
        "UPDATE doc SET body = body || '!' WHERE id IN ({ids})"
    )))
    .await
    .unwrap();
    s.commit().await.unwrap();
}

async fn bodies(engine: &Engine) -> Vec<String> {
    let s = AsyncSession::new(engine.clone());
    let out = s
        .execute(text("SELECT body FROM doc ORDER BY id"))
        .await
        .unwrap()
        .scalars::<String>()
        .unwrap()
        .all();
    s.close().await;
    out
}

#[tokio::test]
async fn xmin_is_read_back_and_matched_by_every_update() {
    let engine = setup("xmin_basic").await;
    let s = session(&engine);
    let d = doc(1, "a");
    s.add(&d).unwrap();
    s.commit().await.unwrap();
    let first = d.read().unwrap().xmin;
    assert_ne!(first, Xid(0), "INSERT reads xmin back");
    // Two flushes and two commits in one session: each UPDATE matches the xmin the last one
    // returned (a stale one would match nothing).
    for body in ["b", "c"] {
        d.write().unwrap().body = body.into();
        s.flush().await.unwrap();
        d.write().unwrap().body.push('+');
        s.commit().await.unwrap();
    }
    assert_ne!(d.read().unwrap().xmin, first);
    assert_eq!(bodies(&engine).await, ["c+"]);
    // DDL has no xmin column of its own.
    let declared: Vec<i64> = AsyncSession::new(engine.clone())
        .execute(text(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'doc'",
        ))
        .await
        .unwrap()
        .scalars::<i64>()
        .unwrap()
        .all();
    assert_eq!(declared, [2]);
}

#[tokio::test]
async fn a_stale_xmin_fails_the_update_and_the_delete_and_stores_nothing() {
    let engine = setup("xmin_stale").await;
    let s = session(&engine);
    s.add_all(&[doc(1, "a"), doc(2, "b"), doc(3, "c")]).unwrap();
    s.commit().await.unwrap();

    let s = session(&engine);
    let docs = s
        .scalars(select::<Doc>().order_by(Doc::C.id.asc()))
        .await
        .unwrap()
        .all();
    someone_else_touches(&engine, "2").await;
    for d in &docs {
        d.write().unwrap().body.push_str("-mine");
    }
    let err = s.commit().await.unwrap_err();
    assert!(matches!(err, Error::StaleData(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "UPDATE statement on table 'doc' expected to update 3 row(s); 2 were matched."
    );
    s.rollback().await.unwrap();
    assert_eq!(bodies(&engine).await, ["a", "b!", "c"]);

    let s = session(&engine);
    let d3 = s.get::<Doc>(3).await.unwrap().unwrap();
    someone_else_touches(&engine, "3").await;
    s.delete(&d3).unwrap();
    let err = s.commit().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "DELETE statement on table 'doc' expected to delete 1 row(s); Only 0 were matched."
    );
    s.rollback().await.unwrap();
    assert_eq!(bodies(&engine).await, ["a", "b!", "c!"]);
}
