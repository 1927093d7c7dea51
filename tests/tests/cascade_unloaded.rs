//! What deleting a parent does to children the session does not hold (SQLAlchemy's
//! `test/orm/test_cascade.py` and `test_unitofwork.py` scenarios with an unloaded collection):
//! a delete cascade loads and deletes them, level by level; without one their foreign key is
//! set to NULL by one UPDATE, or a NOT NULL key makes the database refuse the parent's DELETE
//! and nothing is stored; the database's ON DELETE action and `passive_deletes = true` leave
//! them to the database.

use session_core::{AsyncSession, Collection, Engine, Entity, MetaData, Obj, select, text};
use session_tests::support::{
    LogCapture, count_rows, create_schema, echo_statements, fresh_database, kept_session as session,
};

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "folder")]
struct Folder {
    #[entity(primary_key, generated)]
    id: i32,
    name: String,
    #[entity(relationship(foreign_key = "folder_id", cascade = "save-update, delete"))]
    files: Collection<File>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "file")]
struct File {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(foreign_key = "folder.id")]
    folder_id: i32,
    #[entity(relationship(foreign_key = "file_id", cascade = "delete"))]
    versions: Collection<FileVersion>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "file_version")]
struct FileVersion {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(foreign_key = "file.id")]
    file_id: i32,
}

/// No cascade, nullable key.
#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "team")]
struct Team {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(relationship(foreign_key = "team_id"))]
    members: Collection<Member>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "member")]
struct Member {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(foreign_key = "team.id")]
    team_id: Option<i32>,
}

/// No cascade, NOT NULL key.
#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "invoice")]
struct Invoice {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(relationship(foreign_key = "invoice_id"))]
    lines: Collection<Line>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "line")]
struct Line {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(foreign_key = "invoice.id")]
    invoice_id: i32,
}

/// `passive_deletes = true`: the session leaves the children to the database.
#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "club")]
struct Club {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(relationship(foreign_key = "club_id", passive_deletes = true))]
    fans: Collection<Fan>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "fan")]
struct Fan {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(foreign_key = "club.id")]
    club_id: Option<i32>,
}

async fn setup(prefix: &str) -> Engine {
    let url = fresh_database(prefix).await;
    let engine = Engine::builder(url)
        .echo(true)
        .pool_size(4)
        .build()
        .expect("engine");
    create_schema(
        &engine,
        MetaData::new()
            .with::<Folder>()
            .with::<File>()
            .with::<FileVersion>()
            .with::<Team>()
            .with::<Member>()
            .with::<Invoice>()
            .with::<Line>()
            .with::<Club>()
            .with::<Fan>(),
    )
    .await;
    engine
}

/// Inserts rows by SQL, outside any session.
async fn sql(engine: &Engine, statements: &[&str]) {
    let s = AsyncSession::new(engine.clone());
    for st in statements {
        s.execute(text(*st)).await.unwrap();
    }
    s.commit().await.unwrap();
}

/// `cascade = "delete"` on an unloaded collection whose children are not in the session:
/// they are loaded (one query per level) and deleted with their own cascade.
#[tokio::test]
async fn a_delete_cascade_loads_and_deletes_children_the_session_does_not_hold() {
    let engine = setup("cu_cascade").await;
    sql(
        &engine,
        &[
            "INSERT INTO folder (id, name) VALUES (1, 'docs'), (2, 'keep')",
            "INSERT INTO file (id, folder_id) VALUES (1, 1), (2, 1), (3, 2)",
            "INSERT INTO file_version (id, file_id) VALUES (1, 1), (2, 1), (3, 2), (4, 3)",
        ],
    )
    .await;
    let s = session(&engine);
    let folder = s.get::<Folder>(1).await.unwrap().unwrap();
    assert!(!folder.read().unwrap().files.is_loaded());
    s.delete(&folder).unwrap();
    // Without the load the folder's DELETE would fail on file's foreign key.
    s.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "folder").await, 1);
    assert_eq!(count_rows(&engine, "file").await, 1);
    assert_eq!(count_rows(&engine, "file_version").await, 1);
}

/// No cascade, nullable key: the children the session does not hold get a NULL key from one
/// UPDATE, those it holds as well (their objects say so).
#[tokio::test]
async fn without_a_cascade_unloaded_children_get_a_null_key_without_being_loaded() {
    let engine = setup("cu_null").await;
    sql(
        &engine,
        &[
            "INSERT INTO team (id) VALUES (1), (2)",
            "INSERT INTO member (id, team_id) VALUES (1, 1), (2, 1), (3, 1), (4, 2)",
        ],
    )
    .await;
    let capture = LogCapture::default();
    let _guard = capture.install("session_core::echo=info");
    let s = session(&engine);
    let held = s.get::<Member>(1).await.unwrap().unwrap();
    let team = s.get::<Team>(1).await.unwrap().unwrap();
    let before = echo_statements(&capture.text()).len();
    s.delete(&team).unwrap();
    s.commit().await.unwrap();
    let log = capture.text();
    let lines = &echo_statements(&log)[before..];
    assert!(
        !lines.iter().any(|l| l.contains("echo: SELECT")),
        "{lines:#?}"
    );
    let nulled: Vec<i64> = session(&engine)
        .execute(text("SELECT count(*) FROM member WHERE team_id IS NULL"))
        .await
        .unwrap()
        .scalars::<i64>()
        .unwrap()
        .all();
    assert_eq!(nulled, [3]);
    assert_eq!(count_rows(&engine, "team").await, 1);
    let s = session(&engine);
    assert_eq!(
        s.get::<Member>(1)
            .await
            .unwrap()
            .unwrap()
            .read()
            .unwrap()
            .team_id,
        None
    );
    drop(held);
}

/// No cascade, NOT NULL key, children the session does not hold: the parent's DELETE fails on
/// the database's foreign key (which names the child table) and nothing of the flush is
/// stored; without children the delete goes through.
#[tokio::test]
async fn a_not_null_key_makes_the_delete_fail_and_stores_nothing() {
    let engine = setup("cu_refuse").await;
    sql(
        &engine,
        &[
            "INSERT INTO invoice (id) VALUES (1)",
            "INSERT INTO line (id, invoice_id) VALUES (1, 1)",
        ],
    )
    .await;
    let s = session(&engine);
    let invoice = s.get::<Invoice>(1).await.unwrap().unwrap();
    let lines = invoice.read().unwrap().lines.len();
    assert_eq!(lines, 0, "not loaded");
    s.delete(&invoice).unwrap();
    s.add(&Obj::new(Invoice {
        id: 3,
        ..Invoice::default()
    }))
    .unwrap();
    let err = s.commit().await.unwrap_err();
    assert!(err.is_foreign_key_violation(), "{err}");
    assert!(err.to_string().contains("\"line\""), "{err}");
    s.rollback().await.unwrap();
    assert_eq!(count_rows(&engine, "invoice").await, 1, "nothing stored");

    // No children: nothing stops the delete.
    let s = session(&engine);
    let empty = Obj::new(Invoice {
        id: 2,
        ..Invoice::default()
    });
    s.add(&empty).unwrap();
    s.commit().await.unwrap();
    let s = session(&engine);
    let invoice = s
        .scalars(select::<Invoice>().filter(Invoice::C.id.ne(1)))
        .await
        .unwrap()
        .one()
        .unwrap();
    s.delete(&invoice).unwrap();
    s.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "invoice").await, 1);
}

/// `passive_deletes = true`: the session neither loads nor updates the children it does not
/// hold; without an ON DELETE action on the key, the database refuses the delete.
#[tokio::test]
async fn passive_deletes_leaves_unloaded_children_to_the_database() {
    let engine = setup("cu_passive").await;
    sql(
        &engine,
        &[
            "INSERT INTO club (id) VALUES (1)",
            "INSERT INTO fan (id, club_id) VALUES (1, 1)",
        ],
    )
    .await;
    let s = session(&engine);
    let club = s.get::<Club>(1).await.unwrap().unwrap();
    s.delete(&club).unwrap();
    let err = s.commit().await.unwrap_err().to_string();
    assert!(err.contains("foreign key"), "{err}");
    s.rollback().await.unwrap();
    assert_eq!(count_rows(&engine, "club").await, 1);
}
