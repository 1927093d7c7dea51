//! `#[derive(Entity)]` on the seed's `A` / `B` (with relationships), a composite key, renamed
//! and nullable columns, checked field by field and through a session on a real PostgreSQL.

use chrono::NaiveDateTime;
use session_core::{
    AsyncSession, Collection, Entity, MetaData, Obj, Reference, create_async_engine, select,
    selectinload,
};
use session_tests::support::fresh_database;

/// The seed's `A`.
#[derive(Debug, Clone, Default, PartialEq, session_core::Entity)]
#[entity(table = "a")]
struct A {
    #[entity(primary_key, generated)]
    id: i32,
    data: String,
    #[entity(server_default = "now()")]
    create_date: Option<NaiveDateTime>,
    #[entity(relationship(foreign_key = "a_id"))]
    bs: Collection<B>,
}

/// The seed's `B`.
#[derive(Debug, Clone, Default, PartialEq, session_core::Entity)]
#[entity(table = "b")]
struct B {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(foreign_key = "a.id")]
    a_id: i32,
    data: String,
    #[entity(relationship(foreign_key = "a_id"))]
    a: Reference<A>,
}

/// A composite key, a renamed column, a nullable one and an explicit SQL type.
#[derive(Debug, Clone, Default, PartialEq, session_core::Entity)]
struct StockLevel {
    #[entity(primary_key)]
    warehouse: String,
    #[entity(primary_key, column = "product_sku")]
    sku: i64,
    quantity: Option<i32>,
    #[entity(unique, sql_type = "varchar(30)")]
    label: String,
}

#[test]
fn the_table_description_is_exact() {
    let t = A::TABLE;
    assert_eq!((t.name, t.entity, t.columns.len()), ("a", "A", 3));
    let id = &t.columns[0];
    assert!(id.primary_key && id.generated && !id.nullable);
    assert_eq!(id.sql_type, "integer");
    let cd = &t.columns[2];
    assert_eq!(
        (cd.server_default, cd.nullable, cd.sql_type),
        (Some("now()"), true, "timestamp")
    );
    let fk = B::TABLE.columns[1].foreign_key.as_ref().unwrap();
    assert_eq!((fk.table, fk.column), ("a", "id"));

    let s = StockLevel::TABLE;
    assert_eq!(s.name, "stock_level", "snake_case of the struct name");
    assert_eq!(s.columns[1].name, "product_sku");
    assert_eq!(s.columns[1].field, "sku");
    assert_eq!(s.columns[3].sql_type, "varchar(30)");
    assert!(s.columns[3].unique);
    let item = StockLevel {
        warehouse: "w1".into(),
        sku: 9,
        quantity: None,
        label: "x".into(),
    };
    assert_eq!(item.key(), ("w1".to_string(), 9));
    assert_eq!(StockLevel::key_params(&item.key()).len(), 2);
    assert_eq!(
        format!("{:?}", StockLevel::column_array(&[&item], 2)),
        "[None]"
    );
    let mut other = item.clone();
    other.quantity = Some(1);
    assert!(item.column_eq(&other, 0) && !item.column_eq(&other, 2));
}

#[tokio::test]
async fn derived_entities_work_through_a_session() {
    let engine = create_async_engine(&fresh_database("derive").await).unwrap();
    let md = MetaData::new().with::<B>().with::<A>().with::<StockLevel>();
    engine
        .transaction(async |conn| md.create_all(conn).await)
        .await
        .unwrap();
    let session = AsyncSession::builder()
        .bind(engine.clone())
        .expire_on_commit(false)
        .build();
    let parents: Vec<Obj<A>> = (0..3)
        .map(|i| {
            Obj::new(A {
                data: format!("a{i}"),
                bs: Collection::from_vec(
                    (0..i)
                        .map(|k| {
                            Obj::new(B {
                                data: format!("b{i}.{k}"),
                                ..B::default()
                            })
                        })
                        .collect(),
                ),
                ..A::default()
            })
        })
        .collect();
    session.add_all(&parents).unwrap();
    session
        .add(&Obj::new(StockLevel {
            warehouse: "w".into(),
            sku: 1,
            quantity: Some(5),
            label: "five".into(),
        }))
        .unwrap();
    session.commit().await.unwrap();
    let p2 = parents[2].read().unwrap();
    assert!(p2.create_date.is_some());
    for child in p2.bs.get().unwrap() {
        assert_eq!(
            child.read().unwrap().a_id,
            p2.id,
            "the parent's generated key"
        );
    }
    drop(p2);

    let fresh = AsyncSession::new(engine.clone());
    let loaded = fresh
        .scalars(
            select::<A>()
                .options(selectinload(A::bs()))
                .order_by(A::id.asc()),
        )
        .await
        .unwrap()
        .all();
    let counts: Vec<usize> = loaded
        .iter()
        .map(|a| a.read().unwrap().bs.get().unwrap().len())
        .collect();
    assert_eq!(counts, [0, 1, 2]);
    let bs = fresh
        .scalars(
            select::<B>()
                .options(selectinload(B::a()))
                .filter(B::data.like("b2%")),
        )
        .await
        .unwrap()
        .all();
    let parent = bs[0].read().unwrap().a.get().unwrap().unwrap().clone();
    assert!(parent.ptr_eq(&loaded[2]));
    let stock = fresh.get_one::<StockLevel>(("w".into(), 1)).await.unwrap();
    assert_eq!(stock.read().unwrap().quantity, Some(5));
    let missing = fresh.get::<StockLevel>(("w".into(), 2)).await.unwrap();
    assert!(missing.is_none());
}
