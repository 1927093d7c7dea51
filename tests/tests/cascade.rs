//! What deleting a parent does to its children (SQLAlchemy's `test/orm/test_cascade.py` and
//! `test_unitofwork.py` scenarios that apply): `cascade = "delete"` deletes them, the
//! database's `ON DELETE CASCADE` is mirrored in the session, and without either their foreign
//! key is set to NULL (SQLAlchemy's default), or a NOT NULL key refuses the flush with a clear
//! error before anything is sent.

use session_core::{
    Collection, Engine, Entity, MetaData, Obj, ObjectState, Reference, select, selectinload,
};
use session_tests::support::{count_rows, create_schema, engine, kept_session as session};

/// `cascade = "delete"`, NOT NULL foreign key.
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
    name: String,
    #[entity(relationship(foreign_key = "file_id", cascade = "delete"))]
    versions: Collection<FileVersion>,
}

/// A grandchild, deleted through two levels of cascade.
#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "file_version")]
struct FileVersion {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(foreign_key = "file.id")]
    file_id: i32,
    n: i32,
}

/// No cascade, nullable foreign key: children are set to NULL.
#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "team")]
struct Team {
    #[entity(primary_key, generated)]
    id: i32,
    name: String,
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
    name: String,
    #[entity(relationship(foreign_key = "team_id"))]
    team: Reference<Team>,
}

/// No cascade, NOT NULL foreign key: deleting a parent with children is refused.
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
    amount: i64,
}

/// The database's ON DELETE CASCADE, no ORM cascade.
#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "post")]
struct Post {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(relationship(foreign_key = "post_id"))]
    comments: Collection<Comment>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "comment")]
struct Comment {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(foreign_key = "post.id", on_delete = "cascade")]
    post_id: i32,
    body: String,
}

async fn setup(prefix: &str) -> Engine {
    let engine = engine(prefix, 4).await;
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
            .with::<Post>()
            .with::<Comment>(),
    )
    .await;
    engine
}

#[tokio::test]
async fn delete_cascades_through_loaded_children_and_grandchildren() {
    let engine = setup("casc_delete").await;
    let s = session(&engine);
    let folder = Obj::new(Folder {
        name: "docs".into(),
        ..Folder::default()
    });
    for name in ["a", "b"] {
        let file = Obj::new(File {
            name: name.into(),
            ..File::default()
        });
        for n in 0..3 {
            file.write()
                .unwrap()
                .versions
                .push(Obj::new(FileVersion {
                    n,
                    ..FileVersion::default()
                }))
                .unwrap();
        }
        folder.write().unwrap().files.push(file).unwrap();
    }
    s.add(&folder).unwrap();
    s.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "file_version").await, 6);

    // A fresh session with the graph loaded (collections loaded by selectinload).
    let s = session(&engine);
    let folder = s
        .scalars(select::<Folder>().options(selectinload(Folder::C.files)))
        .await
        .unwrap()
        .one()
        .unwrap();
    let files = folder.read().unwrap().files.get().unwrap().to_vec();
    s.scalars(select::<File>().options(selectinload(File::C.versions)))
        .await
        .unwrap()
        .all();
    s.delete(&folder).unwrap();
    s.commit().await.unwrap();
    for table in ["folder", "file", "file_version"] {
        assert_eq!(count_rows(&engine, table).await, 0, "{table}");
    }
    assert!(files.iter().all(|f| f.state() == ObjectState::Detached));
}

#[tokio::test]
async fn children_in_the_identity_map_are_cascaded_when_the_collection_is_not_loaded() {
    let engine = setup("casc_identity").await;
    let s = session(&engine);
    let folder = Obj::new(Folder::default());
    folder
        .write()
        .unwrap()
        .files
        .push(Obj::new(File::default()))
        .unwrap();
    s.add(&folder).unwrap();
    s.commit().await.unwrap();

    let s = session(&engine);
    // The files are loaded by a query of their own; the folder's collection is not loaded.
    let files = s.scalars(select::<File>()).await.unwrap().all();
    let folder = s.scalars(select::<Folder>()).await.unwrap().one().unwrap();
    assert!(!folder.read().unwrap().files.is_loaded());
    s.delete(&folder).unwrap();
    s.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "file").await, 0);
    assert_eq!(files[0].state(), ObjectState::Detached);
}

#[tokio::test]
async fn without_a_cascade_children_get_a_null_foreign_key() {
    let engine = setup("casc_null").await;
    let s = session(&engine);
    let team = Obj::new(Team {
        name: "red".into(),
        ..Team::default()
    });
    for name in ["ann", "bob"] {
        team.write()
            .unwrap()
            .members
            .push(Obj::new(Member {
                name: name.into(),
                ..Member::default()
            }))
            .unwrap();
    }
    s.add(&team).unwrap();
    s.commit().await.unwrap();
    let members = team.read().unwrap().members.get().unwrap().to_vec();
    s.delete(&team).unwrap();
    s.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "team").await, 0);
    let mut conn = engine.connect().await.unwrap();
    let nulls: i64 = conn
        .scalar("SELECT count(*) FROM member WHERE team_id IS NULL", &[])
        .await
        .unwrap();
    assert_eq!(nulls, 2, "both members kept, without a team");
    conn.close().await;
    for m in &members {
        assert_eq!(m.state(), ObjectState::Persistent);
        assert_eq!(m.read().unwrap().team_id, None);
    }
}

#[tokio::test]
async fn a_not_null_foreign_key_without_a_cascade_refuses_the_delete_before_sending_it() {
    let engine = setup("casc_refuse").await;
    let s = session(&engine);
    let invoice = Obj::new(Invoice::default());
    invoice
        .write()
        .unwrap()
        .lines
        .push(Obj::new(Line {
            amount: 5,
            ..Line::default()
        }))
        .unwrap();
    s.add(&invoice).unwrap();
    s.commit().await.unwrap();
    s.delete(&invoice).unwrap();
    let e = s.commit().await.unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(
            "line.invoice_id is set to NULL (SQLAlchemy's default), but that column is NOT NULL"
        ),
        "{text}"
    );
    assert!(text.contains("cascade = \"delete\""), "{text}");
    s.rollback().await.unwrap();
    assert_eq!(count_rows(&engine, "invoice").await, 1);
    assert_eq!(count_rows(&engine, "line").await, 1);
}

#[tokio::test]
async fn the_databases_on_delete_cascade_leaves_no_stale_child_in_the_session() {
    let engine = setup("casc_db").await;
    let s = session(&engine);
    let post = Obj::new(Post::default());
    for body in ["first", "second"] {
        post.write()
            .unwrap()
            .comments
            .push(Obj::new(Comment {
                body: body.into(),
                ..Comment::default()
            }))
            .unwrap();
    }
    s.add(&post).unwrap();
    s.commit().await.unwrap();
    let comments = post.read().unwrap().comments.get().unwrap().to_vec();
    s.delete(&post).unwrap();
    s.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "comment").await, 0);
    for c in &comments {
        assert_eq!(
            c.state(),
            ObjectState::Detached,
            "not a stale persistent object"
        );
    }
    // A comment the session never loaded goes by the database's cascade alone.
    let other = session(&engine);
    let post = Obj::new(Post::default());
    post.write()
        .unwrap()
        .comments
        .push(Obj::new(Comment::default()))
        .unwrap();
    other.add(&post).unwrap();
    other.commit().await.unwrap();
    let fresh = session(&engine);
    let post = fresh
        .scalars(select::<Post>())
        .await
        .unwrap()
        .one()
        .unwrap();
    fresh.delete(&post).unwrap();
    fresh.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "comment").await, 0);
}

#[tokio::test]
async fn a_parent_changed_then_deleted_does_not_hand_its_key_back_to_its_children() {
    let engine = setup("casc_touched").await;
    let s = session(&engine);
    let team = Obj::new(Team::default());
    team.write()
        .unwrap()
        .members
        .push(Obj::new(Member::default()))
        .unwrap();
    s.add(&team).unwrap();
    s.commit().await.unwrap();
    // Written to (so queued for the flush, with its loaded collection), then deleted.
    team.write().unwrap().name = "renamed".into();
    s.delete(&team).unwrap();
    s.commit().await.unwrap();
    let mut conn = engine.connect().await.unwrap();
    let nulls: i64 = conn
        .scalar("SELECT count(*) FROM member WHERE team_id IS NULL", &[])
        .await
        .unwrap();
    assert_eq!(nulls, 1);
    conn.close().await;
}

/// `delete-orphan`: a line taken out of its order is deleted.
#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "cart")]
struct Cart {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(relationship(foreign_key = "cart_id", cascade = "delete, delete-orphan"))]
    items: Collection<CartItem>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "cart_item")]
struct CartItem {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(foreign_key = "cart.id")]
    cart_id: i32,
    sku: String,
}

async fn cart_engine(prefix: &str) -> Engine {
    let engine = setup(prefix).await;
    create_schema(&engine, MetaData::new().with::<Cart>().with::<CartItem>()).await;
    engine
}

fn cart_with(skus: &[&str]) -> Obj<Cart> {
    let cart = Obj::new(Cart::default());
    for sku in skus {
        cart.write()
            .unwrap()
            .items
            .push(Obj::new(CartItem {
                sku: (*sku).into(),
                ..CartItem::default()
            }))
            .unwrap();
    }
    cart
}

async fn skus(engine: &Engine, table_sql: &str) -> Vec<String> {
    let mut conn = engine.connect().await.unwrap();
    let rows = conn.query(table_sql, &[]).await.unwrap();
    conn.close().await;
    rows.iter().map(|r| r.get(0)).collect()
}

#[tokio::test]
async fn delete_orphan_deletes_a_child_taken_out_of_the_collection() {
    let engine = cart_engine("casc_orphan").await;
    let s = session(&engine);
    let cart = cart_with(&["apple", "pear", "plum"]);
    s.add(&cart).unwrap();
    s.commit().await.unwrap();
    let pear = cart.read().unwrap().items.get().unwrap()[1].clone();
    {
        let mut c = cart.write().unwrap();
        let kept: Vec<_> = c
            .items
            .get()
            .unwrap()
            .iter()
            .filter(|i| !i.ptr_eq(&pear))
            .cloned()
            .collect();
        c.items.set(kept);
    }
    s.commit().await.unwrap();
    assert_eq!(
        skus(&engine, "SELECT sku FROM cart_item ORDER BY sku").await,
        ["apple", "plum"]
    );
    assert_eq!(pear.state(), ObjectState::Detached);
}

#[tokio::test]
async fn a_child_moved_to_another_parent_is_neither_orphaned_nor_nulled() {
    let engine = cart_engine("casc_move").await;
    let s = session(&engine);
    let (first, second) = (cart_with(&["apple", "pear"]), cart_with(&[]));
    s.add_all([&first, &second]).unwrap();
    s.commit().await.unwrap();
    let pear = first.read().unwrap().items.get().unwrap()[1].clone();
    {
        let mut f = first.write().unwrap();
        let kept = vec![f.items.get().unwrap()[0].clone()];
        f.items.set(kept);
    }
    second.write().unwrap().items.push(pear.clone()).unwrap();
    s.commit().await.unwrap();
    let second_id = second.read().unwrap().id;
    let mut conn = engine.connect().await.unwrap();
    let cart_of_pear: i32 = conn
        .scalar("SELECT cart_id FROM cart_item WHERE sku = 'pear'", &[])
        .await
        .unwrap();
    conn.close().await;
    assert_eq!(cart_of_pear, second_id);
    assert_eq!(pear.state(), ObjectState::Persistent);
}

#[tokio::test]
async fn a_child_taken_out_without_delete_orphan_gets_a_null_key_or_a_clear_error() {
    let engine = setup("casc_release").await;
    let s = session(&engine);
    let team = Obj::new(Team::default());
    for name in ["ann", "bob"] {
        team.write()
            .unwrap()
            .members
            .push(Obj::new(Member {
                name: name.into(),
                ..Member::default()
            }))
            .unwrap();
    }
    s.add(&team).unwrap();
    s.commit().await.unwrap();
    {
        let mut t = team.write().unwrap();
        let kept = vec![t.members.get().unwrap()[0].clone()];
        t.members.set(kept);
    }
    s.commit().await.unwrap();
    // Before, bob kept his team_id and came back in the collection on the next load.
    assert_eq!(
        skus(&engine, "SELECT name FROM member WHERE team_id IS NULL").await,
        ["bob"]
    );
    let fresh = session(&engine);
    let team = fresh
        .scalars(select::<Team>().options(selectinload(Team::C.members)))
        .await
        .unwrap()
        .one()
        .unwrap();
    assert_eq!(team.read().unwrap().members.len(), 1);

    // A NOT NULL key: refused, nothing sent.
    let invoice = Obj::new(Invoice::default());
    invoice
        .write()
        .unwrap()
        .lines
        .push(Obj::new(Line::default()))
        .unwrap();
    s.add(&invoice).unwrap();
    s.commit().await.unwrap();
    invoice.write().unwrap().lines.set(Vec::new());
    let e = s.commit().await.unwrap_err();
    assert!(
        e.to_string().contains("line.invoice_id is set to NULL"),
        "{e}"
    );
    s.rollback().await.unwrap();
    assert_eq!(count_rows(&engine, "line").await, 1);
}
