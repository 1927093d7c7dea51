//! `#[derive(Entity)]` on the seed's `A` / `B` (with relationships), a composite key, renamed
//! and nullable columns, checked field by field and through a session on a real PostgreSQL.

use chrono::NaiveDateTime;
use session_core::{
    AsyncSession, Collection, ColumnType, Entity, MetaData, Obj, Reference, create_async_engine,
    select, selectinload,
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

/// Floating-point columns, for change detection by bits.
#[derive(Debug, Clone, Default, PartialEq, session_core::Entity)]
struct Reading {
    #[entity(primary_key)]
    id: i32,
    value: f64,
    low: Option<f32>,
}

#[test]
fn float_columns_compare_by_bits() {
    assert!(!0.0f64.same_as(&-0.0) && 0.0f64.same_as(&0.0));
    assert!(f64::NAN.same_as(&f64::NAN) && f32::NAN.same_as(&f32::NAN));
    assert!(!0.0f32.same_as(&-0.0));
    assert!(Some(f32::NAN).same_as(&Some(f32::NAN)) && !Some(0.0f32).same_as(&Some(-0.0)));
    assert!(!Some(0.0f32).same_as(&None) && None::<f32>.same_as(&None));
    assert!("a".to_string().same_as(&"a".to_string()) && !1i32.same_as(&2));

    let zero = Reading {
        id: 1,
        value: 0.0,
        low: Some(0.0),
    };
    let negative = Reading {
        value: -0.0,
        low: Some(-0.0),
        ..zero.clone()
    };
    assert_eq!(zero, negative, "== cannot tell them apart");
    assert!(!zero.column_eq(&negative, 1) && !zero.column_eq(&negative, 2));
    let nan = Reading {
        value: f64::NAN,
        low: Some(f32::NAN),
        ..zero.clone()
    };
    assert!(nan.column_eq(&nan.clone(), 1) && nan.column_eq(&nan.clone(), 2));
}

#[tokio::test]
async fn a_negative_zero_is_written_and_a_nan_is_not_modified() {
    let url = fresh_database("float_bits").await;
    let engine = create_async_engine(&url).unwrap();
    let md = MetaData::new().with::<Reading>();
    engine
        .transaction(async |conn| md.create_all(conn).await)
        .await
        .unwrap();
    let session = AsyncSession::new(engine.clone());
    session
        .add_all(&[
            Obj::new(Reading {
                id: 1,
                value: 0.0,
                low: Some(0.0),
            }),
            Obj::new(Reading {
                id: 2,
                value: f64::NAN,
                low: Some(f32::NAN),
            }),
        ])
        .unwrap();
    session.commit().await.unwrap();

    let zero = session.get_one::<Reading>(1).await.unwrap();
    {
        let mut z = zero.write().unwrap();
        z.value = -0.0;
        z.low = Some(-0.0);
    }
    assert!(session.is_modified(&zero), "0.0 -> -0.0 is a change");
    let nan = session.get_one::<Reading>(2).await.unwrap();
    assert!(
        !session.is_modified(&nan),
        "NaN is the value it was loaded with"
    );
    session.commit().await.unwrap();

    let mut conn = engine.connect().await.unwrap();
    let text: String = conn
        .scalar(
            "SELECT value::text || ' ' || low::text FROM reading WHERE id = 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(text, "-0 -0", "the negative zero was written");
    conn.close().await;
}

/// Server-filled columns of each kind: an `Option` key, a plain server default, a plain
/// generated column beside the key.
#[derive(Debug, Clone, Default, PartialEq, session_core::Entity)]
struct Ticket {
    #[entity(primary_key, generated)]
    id: Option<i64>,
    #[entity(server_default = "'open'")]
    status: String,
    #[entity(generated)]
    number: i32,
    title: String,
}

#[test]
fn server_filled_columns_are_unset_at_their_sentinel() {
    let a = A::default();
    assert!(a.column_is_unset(0), "id 0: the server generates it");
    assert!(!a.column_is_unset(1), "data is not server-filled");
    assert!(a.column_is_unset(2), "create_date None: the server default");
    let set = A {
        id: 7,
        create_date: Some(NaiveDateTime::default()),
        ..A::default()
    };
    assert!(!set.column_is_unset(0) && !set.column_is_unset(2));
    assert!(
        !a.column_is_unset(3) && !a.column_is_unset(99),
        "no such column"
    );

    let t = Ticket::default();
    assert_eq!(
        (0..5).map(|i| t.column_is_unset(i)).collect::<Vec<_>>(),
        [true, true, true, false, false]
    );
    let t = Ticket {
        id: Some(0),
        status: "closed".into(),
        number: -1,
        title: String::new(),
    };
    assert!(
        (0..4).all(|i| !t.column_is_unset(i)),
        "Some(0) is a value; only None is unset for an Option"
    );
    let s = StockLevel::default();
    assert!(
        (0..4).all(|i| !s.column_is_unset(i)),
        "nothing server-filled"
    );
}

#[test]
fn unload_relations_unloads_every_relationship() {
    let child = Obj::new(B::default());
    let mut a = A {
        bs: Collection::from_vec(vec![child.clone()]),
        data: "kept".into(),
        ..A::default()
    };
    a.unload_relations();
    assert!(!a.bs.is_loaded());
    assert_eq!(a.data, "kept", "columns untouched");
    let err = a.bs.get().unwrap_err().to_string();
    assert!(err.contains("A.bs"), "{err}");

    let mut b = B {
        a: Reference::to(Obj::new(A::default())),
        ..B::default()
    };
    b.unload_relations();
    assert!(!b.a.is_loaded());
    assert!(b.a.get().unwrap_err().to_string().contains("B.a"));
    let mut s = StockLevel::default();
    s.unload_relations();
    assert_eq!(s, StockLevel::default());
}

#[test]
fn relations_eq_compares_relationships_by_identity() {
    let child = Obj::new(B::default());
    let a = A {
        bs: Collection::from_vec(vec![child.clone()]),
        ..A::default()
    };
    assert!(a.relations_eq(&a.clone()));
    let other_columns = A {
        data: "other".into(),
        ..a.clone()
    };
    assert!(
        a.relations_eq(&other_columns),
        "columns are not relationships"
    );
    let equal_copy = A {
        bs: Collection::from_vec(vec![Obj::new(B::default())]),
        ..a.clone()
    };
    assert!(!a.relations_eq(&equal_copy), "an equal but distinct object");
    let mut unloaded = a.clone();
    unloaded.bs = Collection::unloaded("A.bs");
    assert!(!a.relations_eq(&unloaded));
    assert!(
        !A::default().relations_eq(&unloaded),
        "empty is not unloaded"
    );

    let parent = Obj::new(A::default());
    let b = B {
        a: Reference::to(parent.clone()),
        ..B::default()
    };
    assert!(b.relations_eq(&b.clone()));
    assert!(!b.relations_eq(&B::default()), "to a parent vs none");
    assert!(StockLevel::default().relations_eq(&StockLevel {
        sku: 1,
        ..StockLevel::default()
    }));
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
                .options(selectinload(A::C.bs))
                .order_by(A::C.id.asc()),
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
                .options(selectinload(B::C.a))
                .filter(B::C.data.like("b2%")),
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

#[test]
fn tables_match_the_attributes_exactly() {
    let column = |name: &str, ty: &str, extra: &str| {
        format!("Column {{ name: \"{name}\", field: \"{name}\", sql_type: \"{ty}\", {extra} }}")
    };
    let plain = "nullable: false, primary_key: false, generated: false, server_default: None, \
                 foreign_key: None, unique: false, enum_type: None, version: false, system: false";
    let expected_b = format!(
        "Table {{ name: \"b\", entity: \"B\", columns: [{}, {}, {}], indexes: [], uniques: [], checks: [] }}",
        column(
            "id",
            "integer",
            "nullable: false, primary_key: true, generated: true, server_default: None, \
             foreign_key: None, unique: false, enum_type: None, version: false, system: false"
        ),
        column(
            "a_id",
            "integer",
            "nullable: false, primary_key: false, generated: false, server_default: None, \
             foreign_key: Some(ForeignKey { table: \"a\", column: \"id\", on_delete: None, on_update: None }), unique: false, enum_type: None, version: false, system: false"
        ),
        column("data", "varchar", plain),
    );
    assert_eq!(format!("{:?}", B::TABLE), expected_b);
    let expected_a = format!(
        "Table {{ name: \"a\", entity: \"A\", columns: [{}, {}, {}], indexes: [], uniques: [], checks: [] }}",
        column(
            "id",
            "integer",
            "nullable: false, primary_key: true, generated: true, server_default: None, \
             foreign_key: None, unique: false, enum_type: None, version: false, system: false"
        ),
        column("data", "varchar", plain),
        column(
            "create_date",
            "timestamp",
            "nullable: true, primary_key: false, generated: false, \
             server_default: Some(\"now()\"), foreign_key: None, unique: false, enum_type: None, version: false, system: false"
        ),
    );
    assert_eq!(format!("{:?}", A::TABLE), expected_a);
    assert_eq!(
        StockLevel::TABLE.key_columns().collect::<Vec<_>>(),
        [0, 1],
        "composite key in field order"
    );

    let item = StockLevel {
        warehouse: "w1".into(),
        sku: 9,
        quantity: None,
        label: "x".into(),
    };
    assert_eq!(
        format!("{:?}", StockLevel::key_params(&item.key())),
        r#"["w1", 9]"#
    );
    let b = B {
        id: 3,
        a_id: 1,
        data: "d".into(),
        ..B::default()
    };
    assert_eq!(b.key(), 3);
    assert_eq!(format!("{:?}", B::key_params(&b.key())), "[3]");
    let params: Vec<String> = (0..4)
        .map(|i| format!("{:?}", item.column_param(i)))
        .collect();
    assert_eq!(params, [r#""w1""#, "9", "None", r#""x""#]);
    let more = StockLevel {
        quantity: Some(4),
        ..item.clone()
    };
    assert_eq!(
        format!("{:?}", StockLevel::column_array(&[&item, &more], 2)),
        "[None, Some(4)]"
    );
    assert_eq!(
        format!("{:?}", StockLevel::column_array(&[&item, &more], 0)),
        r#"["w1", "w1"]"#
    );
    assert!(item.column_eq(&more, 0) && item.column_eq(&more, 3) && !item.column_eq(&more, 2));
    assert!(
        item.column_eq(&more, 99),
        "an index out of range is harmless"
    );
}

#[tokio::test]
async fn rows_decode_into_fields() {
    let url = fresh_database("entity").await;
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(connection);

    // StockLevel's columns after one column of padding: from_row reads at an offset.
    let row = client
        .query_one(
            "SELECT 'pad'::text, 'w1'::varchar, 7::bigint, NULL::integer, 'lbl'::varchar",
            &[],
        )
        .await
        .unwrap();
    let stock = StockLevel::from_row(&row, 1).unwrap();
    let expected = StockLevel {
        warehouse: "w1".into(),
        sku: 7,
        quantity: None,
        label: "lbl".into(),
    };
    assert_eq!(stock, expected);
    assert_eq!(
        StockLevel::key_from_row(&row, 1).unwrap(),
        ("w1".to_string(), 7)
    );
    assert!(
        StockLevel::from_row(&row, 0).is_err(),
        "text where a bigint is expected"
    );

    let mut changed = stock.clone();
    let value = client.query_one("SELECT 42::integer", &[]).await.unwrap();
    changed.set_column(2, &value, 0).unwrap();
    assert_eq!(changed.quantity, Some(42));
    assert!(
        changed.set_column(1, &value, 0).is_err(),
        "integer into i64"
    );
    assert_eq!(changed.sku, 7, "unchanged after the failed decode");
    changed.set_column(99, &value, 0).unwrap();
    assert!(!stock.column_eq(&changed, 2));

    let row = client
        .query_one("SELECT 5, 'x'::varchar, now()::timestamp", &[])
        .await
        .unwrap();
    let a = A::from_row(&row, 0).unwrap();
    assert_eq!((a.id, a.data.as_str()), (5, "x"));
    assert!(a.create_date.is_some() && a.bs.get().is_err(), "not loaded");
    assert_eq!(A::key_from_row(&row, 0).unwrap(), 5);

    // Parameters and arrays bind as the server expects.
    let key = stock.key();
    let row = client
        .query_one(
            "SELECT $1::varchar || '/' || $2::bigint, $3::integer[], $4::varchar",
            &[
                StockLevel::key_params(&key)[0],
                StockLevel::key_params(&key)[1],
                &*StockLevel::column_array(&[&stock, &changed], 2),
                changed.column_param(3),
            ],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "w1/7");
    assert_eq!(row.get::<_, Vec<Option<i32>>>(1), [None, Some(42)]);
    assert_eq!(row.get::<_, String>(2), "lbl");

    drop(client);
    task.await.unwrap().unwrap();
}
