//! Aliased entities (SQLAlchemy's `aliased()`): a self-referential model queried against
//! itself, the same table twice in one statement (`test/orm/test_query.py` /
//! `test_joins.py`'s self-referential alias joins that apply).

use session_core::{
    Collection, Engine, Entity, MetaData, Obj, Reference, aliased, func, select, select_columns,
};
use session_tests::support::{create_schema, engine, kept_session as session};

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "category")]
struct Category {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(foreign_key = "category.id")]
    parent_id: Option<i32>,
    name: String,
    #[entity(relationship(foreign_key = "parent_id", back_populates = "parent"))]
    children: Collection<Category>,
    #[entity(relationship(foreign_key = "parent_id", back_populates = "children"))]
    parent: Reference<Category>,
}

fn category(name: &str, children: Vec<Obj<Category>>) -> Obj<Category> {
    Obj::new(Category {
        name: name.into(),
        children: Collection::from_vec(children),
        ..Category::default()
    })
}

/// tools -> (saws -> (hand saws), drills); garden -> (hoses)
async fn setup(prefix: &str) -> Engine {
    let engine = engine(prefix, 2).await;
    create_schema(&engine, MetaData::new().with::<Category>()).await;
    let s = session(&engine);
    let tools = category(
        "tools",
        vec![
            category("saws", vec![category("hand saws", vec![])]),
            category("drills", vec![]),
        ],
    );
    let garden = category("garden", vec![category("hoses", vec![])]);
    s.add_all([&tools, &garden]).unwrap();
    s.commit().await.unwrap();
    engine
}

#[tokio::test]
async fn a_category_is_joined_to_its_parent_under_an_alias() {
    let engine = setup("alias_parent").await;
    let s = session(&engine);
    let parent = aliased::<Category>("parent");
    let rows = s
        .execute(
            select_columns((Category::C.name, parent.col(Category::C.name)))
                .join_aliased(Category::C.parent, &parent)
                .order_by(Category::C.name.asc()),
        )
        .await
        .unwrap()
        .all();
    let got: Vec<(String, String)> = rows.into_iter().collect();
    let want = [
        ("drills", "tools"),
        ("hand saws", "saws"),
        ("hoses", "garden"),
        ("saws", "tools"),
    ];
    assert_eq!(
        got,
        want.map(|(a, b)| (a.to_string(), b.to_string())).to_vec()
    );

    // Entities filtered by their parent's column: the children of "tools".
    let kids = s
        .scalars(
            select::<Category>()
                .join_aliased(Category::C.parent, &parent)
                .filter(parent.col(Category::C.name).eq("tools".to_string()))
                .order_by(Category::C.name.asc()),
        )
        .await
        .unwrap()
        .all();
    let names: Vec<String> = kids
        .iter()
        .map(|k| k.read().unwrap().name.clone())
        .collect();
    assert_eq!(names, ["drills", "saws"]);
}

/// A count per parent through the alias, an outer join keeping the roots, and a taken alias
/// name refused.
#[tokio::test]
async fn an_alias_groups_an_outer_join_keeps_the_roots_and_a_taken_name_is_refused() {
    let engine = setup("alias_grand").await;
    let s = session(&engine);
    let parent = aliased::<Category>("parent");
    let rows = s
        .execute(
            select_columns((parent.col(Category::C.name), func::count()))
                .select_from::<Category>()
                .join_aliased(Category::C.parent, &parent)
                .group_by(parent.col(Category::C.name))
                .order_by(parent.col(Category::C.name).asc()),
        )
        .await
        .unwrap()
        .all();
    let got: Vec<(String, i64)> = rows.into_iter().collect();
    assert_eq!(
        got,
        [
            ("garden".to_string(), 1),
            ("saws".to_string(), 1),
            ("tools".to_string(), 2)
        ]
    );
    let rows = s
        .execute(
            select_columns((Category::C.name, parent.col(Category::C.name).nullable()))
                .outerjoin_aliased(Category::C.parent, &parent)
                .filter(Category::C.parent_id.is_null())
                .order_by(Category::C.name.asc()),
        )
        .await
        .unwrap()
        .all();
    let roots: Vec<(String, Option<String>)> = rows.into_iter().collect();
    assert_eq!(
        roots,
        [("garden".to_string(), None), ("tools".to_string(), None)]
    );
    // A second alias under a name already taken is refused with a message.
    let e = s
        .execute(
            select_columns((Category::C.name,))
                .join_aliased(Category::C.parent, &parent)
                .join_aliased(Category::C.parent, &aliased::<Category>("parent")),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("The alias name \"parent\" is already used"),
        "{e}"
    );
}
