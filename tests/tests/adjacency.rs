//! Self-referential adjacency lists (SQLAlchemy's `Node.children` / `Node.parent` on one
//! table): a tree three levels deep added in one flush, loaded in both directions, re-parented,
//! and deleted with a cascade through the levels.

use session_core::{
    AsyncSession, Collection, Engine, Entity, MetaData, Obj, Reference, select, selectinload,
};
use session_tests::support::{count_rows, create_schema, engine};

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "node")]
struct Node {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(foreign_key = "node.id")]
    parent_id: Option<i32>,
    name: String,
    #[entity(relationship(foreign_key = "parent_id", cascade = "save-update, delete"))]
    children: Collection<Node>,
    #[entity(relationship(foreign_key = "parent_id"))]
    parent: Reference<Node>,
}

fn node(name: &str, children: Vec<Obj<Node>>) -> Obj<Node> {
    Obj::new(Node {
        name: name.into(),
        children: Collection::from_vec(children),
        ..Node::default()
    })
}

async fn setup(prefix: &str) -> Engine {
    let engine = engine(prefix, 2).await;
    create_schema(&engine, MetaData::new().with::<Node>()).await;
    engine
}

async fn tree(engine: &Engine) -> Vec<(String, Option<String>)> {
    let mut conn = engine.connect().await.unwrap();
    let rows = conn
        .query(
            "SELECT n.name, p.name FROM node n LEFT JOIN node p ON p.id = n.parent_id \
             ORDER BY n.name",
            &[],
        )
        .await
        .unwrap();
    conn.close().await;
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

fn pairs(list: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
    list.iter()
        .map(|(n, p)| (n.to_string(), p.map(str::to_string)))
        .collect()
}

#[tokio::test]
async fn a_tree_three_levels_deep_is_added_in_one_flush_and_loads_both_ways() {
    let engine = setup("adj_tree").await;
    let s = AsyncSession::new(engine.clone());
    let root = node(
        "root",
        vec![
            node("a", vec![node("a1", vec![]), node("a2", vec![])]),
            node("b", vec![node("b1", vec![])]),
        ],
    );
    s.add(&root).unwrap();
    s.commit().await.unwrap();
    assert_eq!(
        tree(&engine).await,
        pairs(&[
            ("a", Some("root")),
            ("a1", Some("a")),
            ("a2", Some("a")),
            ("b", Some("root")),
            ("b1", Some("b")),
            ("root", None),
        ])
    );

    // Both directions, from a fresh session.
    let fresh = AsyncSession::new(engine.clone());
    let all = fresh
        .scalars(
            select::<Node>()
                .options(selectinload(Node::C.children))
                .options(selectinload(Node::C.parent)),
        )
        .await
        .unwrap()
        .all();
    let by_name = |name: &str| {
        all.iter()
            .find(|n| n.read().unwrap().name == name)
            .unwrap()
            .clone()
    };
    let a = by_name("a");
    let kids: Vec<String> = a
        .read()
        .unwrap()
        .children
        .get()
        .unwrap()
        .iter()
        .map(|c| c.read().unwrap().name.clone())
        .collect();
    assert_eq!(kids.len(), 2);
    let a1 = by_name("a1");
    let parent = a1.read().unwrap().parent.get().unwrap().cloned().unwrap();
    assert!(parent.ptr_eq(&a), "the same object through both directions");
}

#[tokio::test]
async fn re_parenting_and_a_cascade_delete_through_the_levels() {
    let engine = setup("adj_delete").await;
    let s = AsyncSession::builder()
        .bind(engine.clone())
        .expire_on_commit(false)
        .build();
    let (a1, b) = (node("a1", vec![]), node("b", vec![]));
    let a = node("a", vec![a1.clone(), node("a2", vec![])]);
    let root = node("root", vec![a.clone(), b.clone()]);
    s.add(&root).unwrap();
    s.commit().await.unwrap();

    // Move a1 under b: taken out of a's collection, put into b's.
    {
        let mut w = a.write().unwrap();
        let kept: Vec<_> = w
            .children
            .get()
            .unwrap()
            .iter()
            .filter(|c| !c.ptr_eq(&a1))
            .cloned()
            .collect();
        w.children.set(kept);
    }
    b.write().unwrap().children.push(a1.clone()).unwrap();
    s.commit().await.unwrap();
    assert!(
        tree(&engine)
            .await
            .contains(&("a1".to_string(), Some("b".to_string())))
    );

    // Deleting `a` deletes its subtree (a2), and nothing else.
    s.delete(&a).unwrap();
    s.commit().await.unwrap();
    assert_eq!(
        tree(&engine).await,
        pairs(&[("a1", Some("b")), ("b", Some("root")), ("root", None)])
    );
    // Deleting the root cascades through two levels in one flush.
    s.delete(&root).unwrap();
    s.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "node").await, 0);
}
