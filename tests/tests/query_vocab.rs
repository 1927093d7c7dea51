//! The query vocabulary real services need, against a real PostgreSQL: upserts with the
//! identity map kept true, expression updates and functions, jsonb and array operators, raw
//! fragments inside filters, row locks (NOWAIT, SKIP LOCKED, OF, FOR SHARE) seen from a second
//! session, and raw SQL with row counts and rows decoded into structs.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use session_core::tokio_postgres::error::SqlState;
use session_core::{
    AsyncSession, Engine, Entity, Error, FromRow, Json, MetaData, Reference, RowLock, func, insert,
    select, select_columns, sql_expr, text, update,
};
use session_tests::support::{create_schema, engine};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Spec {
    color: String,
    weight: u32,
}

#[derive(Debug, Clone, PartialEq, Entity)]
#[entity(table = "product")]
struct Product {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(unique)]
    sku: String,
    name: String,
    nick: Option<String>,
    stock: i32,
    price: Decimal,
    tags: Vec<String>,
    attrs: serde_json::Value,
    spec: Json<Spec>,
    updated: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Entity)]
#[entity(table = "bin")]
struct Bin {
    #[entity(primary_key)]
    id: i32,
    #[entity(foreign_key = "product.id")]
    product_id: i32,
    qty: i32,
    #[entity(relationship(foreign_key = "product_id"))]
    product: Reference<Product>,
}

fn product(sku: &str, name: &str, stock: i32, tags: &[&str], attrs: serde_json::Value) -> Product {
    Product {
        id: 0,
        sku: sku.into(),
        name: name.into(),
        nick: None,
        stock,
        price: Decimal::new(1050, 2),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        attrs,
        spec: Json(Spec {
            color: "red".into(),
            weight: 3,
        }),
        updated: None,
    }
}

/// A database with `product` rows 1 (`p1`, "Pen", 10, [office, blue]), 2 (`p2`, "Ink", 0,
/// [office]) and 3 (`p3`, "Mug", 5, [kitchen]) and one `bin` per product (`id` = product id).
async fn shop(prefix: &str) -> Engine {
    let engine = engine(prefix, 6).await;
    create_schema(&engine, MetaData::new().with::<Product>().with::<Bin>()).await;
    let s = AsyncSession::new(engine.clone());
    for p in [
        product(
            "p1",
            "Pen",
            10,
            &["office", "blue"],
            json!({"lang": "en", "isbn": "111"}),
        ),
        product("p2", "Ink", 0, &["office"], json!({"lang": "de"})),
        product("p3", "Mug", 5, &["kitchen"], json!({"lang": "en"})),
    ] {
        s.add(&session_core::Obj::new(p)).unwrap();
    }
    s.commit().await.unwrap();
    for id in 1..=3 {
        s.execute(text("INSERT INTO bin (id, product_id, qty) VALUES ($1, $1, 1)").bind(id))
            .await
            .unwrap();
    }
    s.commit().await.unwrap();
    s.close().await;
    engine
}

/// `SELECT <column> FROM product WHERE sku = $1` on a connection of its own.
async fn stored<T: session_core::tokio_postgres::types::FromSqlOwned>(
    engine: &Engine,
    column: &str,
    sku: &str,
) -> T {
    let mut conn = engine.connect().await.unwrap();
    let value = conn
        .scalar(
            &format!("SELECT {column} FROM product WHERE sku = $1"),
            &[&sku],
        )
        .await
        .unwrap();
    conn.close().await;
    value
}

#[tokio::test]
async fn upsert_do_update_inserts_then_updates_and_keeps_held_objects_true() {
    let engine = shop("upsert_update").await;
    let s = AsyncSession::new(engine.clone());
    let upsert = |sku: &str, name: &str, stock: i32| {
        insert::<Product>()
            .value(Product::C.sku, sku)
            .value(Product::C.name, name)
            .value(Product::C.stock, stock)
            .value(Product::C.price, Decimal::new(200, 2))
            .value(Product::C.tags, Vec::<String>::new())
            .value(Product::C.attrs, json!({}))
            .value(
                Product::C.spec,
                Json(Spec {
                    color: "blue".into(),
                    weight: 1,
                }),
            )
            .on_conflict(Product::C.sku)
            .do_update(|u| {
                u.set_excluded(Product::C.name).set_expr(
                    Product::C.stock,
                    Product::C.stock + Product::C.stock.excluded(),
                )
            })
    };
    // No conflict: a new row, returned.
    let (id, stock) = s
        .execute(upsert("p9", "Clip", 4).returning((Product::C.id, Product::C.stock)))
        .await
        .unwrap()
        .one()
        .unwrap();
    assert_eq!((id, stock), (4, 4));
    // Conflict with a row whose object the session holds: the row is updated, and so is the
    // object, which stays clean (what it holds is what the database holds).
    let pen = s.get::<Product>(1).await.unwrap().unwrap();
    let (id, stock) = s
        .execute(upsert("p1", "Pen v2", 7).returning((Product::C.id, Product::C.stock)))
        .await
        .unwrap()
        .one()
        .unwrap();
    assert_eq!((id, stock), (1, 17), "10 in stock plus the 7 proposed");
    {
        let pen = pen.read().unwrap();
        assert_eq!((pen.name.as_str(), pen.stock), ("Pen v2", 17));
        assert_eq!(pen.price, Decimal::new(1050, 2), "columns not set stay");
    }
    assert!(!s.is_modified(&pen));
    assert!(s.dirty().is_empty());
    // Without RETURNING, the count of rows inserted or updated.
    let done = s.execute(upsert("p1", "Pen v3", 1)).await.unwrap();
    assert_eq!(done.rowcount(), 1);
    assert_eq!(pen.read().unwrap().stock, 18);
    s.commit().await.unwrap();
    assert_eq!(stored::<i32>(&engine, "stock", "p1").await, 18);
    assert_eq!(stored::<String>(&engine, "name", "p1").await, "Pen v3");
    assert_eq!(stored::<i32>(&engine, "stock", "p9").await, 4);
    // A rolled-back upsert leaves no stale value in the object: it is expired.
    s.refresh(&pen, &[]).await.unwrap();
    s.execute(upsert("p1", "Pen v4", 100)).await.unwrap();
    assert_eq!(pen.read().unwrap().stock, 118);
    s.rollback().await.unwrap();
    let err = pen.read().map(|p| p.stock).unwrap_err();
    assert!(matches!(err, Error::Expired { .. }), "{err:?}");
    s.refresh(&pen, &[]).await.unwrap();
    assert_eq!(pen.read().unwrap().stock, 18);
}

#[tokio::test]
async fn upsert_do_nothing_and_conditional_do_update() {
    let engine = shop("upsert_nothing").await;
    let s = AsyncSession::new(engine.clone());
    let new = |sku: &str, name: &str| {
        insert::<Product>()
            .value(Product::C.sku, sku)
            .value(Product::C.name, name)
            .value(Product::C.stock, 1)
            .value(Product::C.price, Decimal::ONE)
            .value(Product::C.tags, vec!["new".to_string()])
            .value(Product::C.attrs, json!({}))
            .value(
                Product::C.spec,
                Json(Spec {
                    color: "green".into(),
                    weight: 2,
                }),
            )
    };
    // DO NOTHING returns only the rows inserted.
    let skipped = s
        .scalars(
            new("p2", "Other ink")
                .on_conflict(Product::C.sku)
                .do_nothing()
                .returning(Product::C.id),
        )
        .await
        .unwrap()
        .all();
    assert!(skipped.is_empty(), "{skipped:?}");
    let inserted = s
        .scalars(
            new("p8", "Glue")
                .on_conflict(())
                .do_nothing()
                .returning(Product::C.name),
        )
        .await
        .unwrap()
        .all();
    assert_eq!(inserted, ["Glue"]);
    // DO UPDATE ... WHERE: a conflicting row the condition rejects is left alone.
    let ink = s.get::<Product>(2).await.unwrap().unwrap();
    let changed = s
        .execute(
            new("p2", "Ink v2")
                .on_conflict(Product::C.sku)
                .do_update(|u| {
                    u.set_excluded(Product::C.name)
                        .filter(Product::C.stock.gt(0))
                }),
        )
        .await
        .unwrap();
    assert_eq!(changed.rowcount(), 0);
    assert_eq!(ink.read().unwrap().name, "Ink");
    // ... and one it accepts, comparing with the proposed row: keep the larger stock.
    let keep_larger = |stock: i32| {
        insert::<Product>()
            .value(Product::C.sku, "p3")
            .value(Product::C.name, "Mug")
            .value(Product::C.stock, stock)
            .value(Product::C.price, Decimal::ONE)
            .value(Product::C.tags, Vec::<String>::new())
            .value(Product::C.attrs, json!({}))
            .value(
                Product::C.spec,
                Json(Spec {
                    color: "red".into(),
                    weight: 3,
                }),
            )
            .value_expr(Product::C.updated, func::now())
            .on_conflict(Product::C.sku)
            .do_update(|u| {
                u.set_excluded(Product::C.stock)
                    .set_excluded(Product::C.updated)
                    .filter(Product::C.stock.lt_expr(Product::C.stock.excluded()))
            })
    };
    let mug = s.get::<Product>(3).await.unwrap().unwrap();
    let smaller = s.execute(keep_larger(2)).await.unwrap();
    assert_eq!(smaller.rowcount(), 0, "5 in stock is more than 2");
    assert_eq!(mug.read().unwrap().updated, None);
    let larger = s.execute(keep_larger(8)).await.unwrap();
    assert_eq!(larger.rowcount(), 1);
    assert_eq!(mug.read().unwrap().stock, 8);
    assert!(
        mug.read().unwrap().updated.is_some(),
        "EXCLUDED.updated was now()"
    );
    s.commit().await.unwrap();
    assert_eq!(stored::<String>(&engine, "name", "p2").await, "Ink");
    assert_eq!(stored::<String>(&engine, "name", "p8").await, "Glue");
    assert_eq!(stored::<i32>(&engine, "stock", "p3").await, 8);
    // Mistakes are refused before anything runs.
    let err = s
        .execute(
            new("p3", "x")
                .on_conflict(())
                .do_update(|u| u.set_excluded(Product::C.name)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(_)), "{err:?}");
    assert!(
        err.to_string().contains("names no conflict columns"),
        "{err}"
    );
    let err = s
        .execute(new("p3", "x").on_conflict(Product::C.sku).do_update(|u| u))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("sets no column"), "{err}");
    let err = s
        .execute(
            new("p3", "x")
                .on_conflict(Product::C.sku)
                .do_update(|u| u.set(Product::C.name, "a").set_excluded(Product::C.name)),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "column product.name is given a value twice"
    );
    assert_eq!(stored::<String>(&engine, "name", "p3").await, "Mug");
}

#[tokio::test]
async fn update_with_arithmetic_text_and_functions() {
    let engine = shop("expr_update").await;
    let s = AsyncSession::new(engine.clone());
    let pen = s.get::<Product>(1).await.unwrap().unwrap();
    let mug = s.get::<Product>(3).await.unwrap().unwrap();
    let result = s
        .execute(
            update::<Product>()
                .set_expr(Product::C.stock, Product::C.stock - 1)
                .set_expr(Product::C.price, Product::C.price * Decimal::new(2, 0))
                .set_expr(Product::C.name, Product::C.name.concat(" (sale)"))
                .set_expr(
                    Product::C.nick,
                    func::lower(Product::C.name).concat(Product::C.sku),
                )
                .set_expr(Product::C.updated, func::now())
                .filter(Product::C.stock.gt(0)),
        )
        .await
        .unwrap();
    assert_eq!(result.rowcount(), 2, "the pen and the mug are in stock");
    {
        let pen = pen.read().unwrap();
        assert_eq!(pen.stock, 9);
        assert_eq!(pen.price, Decimal::new(2100, 2));
        assert_eq!(pen.name, "Pen (sale)");
        assert_eq!(pen.nick.as_deref(), Some("penp1"));
        assert!(pen.updated.is_some(), "now() read back into the object");
    }
    assert_eq!(mug.read().unwrap().stock, 4);
    assert!(s.dirty().is_empty());
    // Integer division truncates, as in PostgreSQL; coalesce drops the Option.
    s.execute(
        update::<Product>()
            .set_expr(Product::C.stock, (Product::C.stock + 1) / 4)
            .set_expr(
                Product::C.name,
                func::upper(func::coalesce(Product::C.nick, "none")),
            )
            .filter(Product::C.sku.eq("p3")),
    )
    .await
    .unwrap();
    assert_eq!(mug.read().unwrap().stock, 1, "(4 + 1) / 4");
    assert_eq!(mug.read().unwrap().name, "MUGP3");
    let ink_name: Option<String> = s
        .scalar(
            select_columns(func::coalesce(Product::C.nick, "no nick"))
                .filter(Product::C.sku.eq("p2")),
        )
        .await
        .unwrap();
    assert_eq!(ink_name.as_deref(), Some("no nick"));
    // Expressions in the select list and in filters bind their own parameters.
    let rows = s
        .execute(
            select_columns((Product::C.sku, Product::C.stock * 10))
                .filter((Product::C.stock + 100).gt(101))
                .filter(Product::C.stock.ge_expr(Product::C.stock / 2))
                .order_by(Product::C.sku.asc()),
        )
        .await
        .unwrap()
        .all();
    assert_eq!(rows, [("p1".to_string(), 90)]);
    let pen_updated = pen.read().unwrap().updated;
    s.commit().await.unwrap();
    assert_eq!(stored::<i32>(&engine, "stock", "p1").await, 9);
    assert_eq!(stored::<String>(&engine, "name", "p1").await, "Pen (sale)");
    assert_eq!(
        stored::<Decimal>(&engine, "price", "p1").await,
        Decimal::new(2100, 2)
    );
    assert_eq!(stored::<String>(&engine, "name", "p3").await, "MUGP3");
    assert_eq!(
        stored::<i32>(&engine, "stock", "p2").await,
        0,
        "not matched"
    );
    let stamped: Option<DateTime<Utc>> = stored(&engine, "updated", "p1").await;
    assert_eq!(stamped, pen_updated);
}

#[tokio::test]
async fn jsonb_and_array_operators_filter_rows() {
    let engine = shop("containers").await;
    let s = AsyncSession::new(engine.clone());
    let skus = async |q: session_core::Select<Product>| -> Vec<String> {
        s.scalars(q.order_by(Product::C.sku.asc()))
            .await
            .unwrap()
            .all()
            .iter()
            .map(|p| p.read().unwrap().sku.clone())
            .collect()
    };
    let q = select::<Product>;
    assert_eq!(
        skus(q().filter(Product::C.attrs.contains(json!({"lang": "en"})))).await,
        ["p1", "p3"]
    );
    assert_eq!(
        skus(q().filter(Product::C.attrs.has_key("isbn"))).await,
        ["p1"]
    );
    assert_eq!(
        skus(q().filter(Product::C.attrs.get_text("lang").eq(Some("de".to_string())))).await,
        ["p2"]
    );
    assert_eq!(
        skus(q().filter(Product::C.spec.contains(json!({"color": "red"})))).await,
        ["p1", "p2", "p3"]
    );
    assert!(
        skus(q().filter(Product::C.spec.contains(json!({"weight": 4}))))
            .await
            .is_empty()
    );
    assert_eq!(
        skus(q().filter(Product::C.tags.contains(vec!["office".to_string()]))).await,
        ["p1", "p2"]
    );
    assert_eq!(
        skus(
            q().filter(
                Product::C
                    .tags
                    .overlaps(["blue".to_string(), "kitchen".to_string()])
            )
        )
        .await,
        ["p1", "p3"]
    );
    assert_eq!(
        skus(q().filter(Product::C.tags.any_eq("kitchen"))).await,
        ["p3"]
    );
    assert_eq!(
        skus(q().filter(Product::C.tags.any_eq("garden").not())).await,
        ["p1", "p2", "p3"]
    );
    // `->>` is a typed text expression: selectable, NULL when the key is absent.
    let isbns = s
        .execute(
            select_columns((Product::C.sku, Product::C.attrs.get_text("isbn")))
                .order_by(Product::C.sku.asc()),
        )
        .await
        .unwrap()
        .all();
    assert_eq!(
        isbns,
        [
            ("p1".to_string(), Some("111".to_string())),
            ("p2".into(), None),
            ("p3".into(), None)
        ]
    );
    let member = s
        .scalar(select_columns(Product::C.attrs.get("lang")).filter(Product::C.id.eq(2)))
        .await
        .unwrap();
    assert_eq!(member, Some(Some(json!("de"))));
}

#[tokio::test]
async fn raw_fragments_bind_their_own_parameters_inside_filters() {
    let engine = shop("sql_expr").await;
    let s = AsyncSession::new(engine.clone());
    let found = s
        .scalars(
            select_columns(Product::C.sku)
                .filter(Product::C.stock.ge(0))
                .filter(sql_expr(
                    "lower(name) = $1 OR stock > $2",
                    ("mug".to_string(), 9),
                ))
                .filter(Product::C.sku.ne("p9"))
                .order_by(Product::C.sku.asc()),
        )
        .await
        .unwrap()
        .all();
    assert_eq!(found, ["p1", "p3"], "Mug by name, Pen by stock");
    // Inside OR and NOT, in an UPDATE's WHERE, and quoted `$1` left alone.
    let n = s
        .execute(
            update::<Product>()
                .set(Product::C.nick, Some("$1".to_string()))
                .filter(
                    Product::C
                        .sku
                        .eq("p2")
                        .or(sql_expr("name = $1 AND '$2' = '$2'", ("Mug",))),
                ),
        )
        .await
        .unwrap();
    assert_eq!(n.rowcount(), 2);
    s.commit().await.unwrap();
    assert_eq!(
        stored::<Option<String>>(&engine, "nick", "p3")
            .await
            .as_deref(),
        Some("$1")
    );
    // A placeholder without a value, or a value without a placeholder, is refused.
    let err = s
        .execute(select::<Product>().filter(sql_expr("stock > $2", (1,))))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(_)), "{err:?}");
    assert!(err.to_string().contains("refers to $2"), "{err}");
    let err = s
        .execute(
            update::<Product>()
                .set(Product::C.stock, 0)
                .filter(sql_expr("true", (1,))),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("never uses $1"), "{err}");
    assert_eq!(stored::<i32>(&engine, "stock", "p1").await, 10);
}

#[tokio::test]
async fn keyset_pages_continue_after_the_last_row() {
    let engine = shop("keyset").await;
    let s = AsyncSession::new(engine.clone());
    // A fourth product ties with the mug on stock: the key breaks the tie.
    s.execute(
        insert::<Product>()
            .value(Product::C.sku, "p4")
            .value(Product::C.name, "Cup")
            .value(Product::C.stock, 5)
            .value(Product::C.price, Decimal::ONE)
            .value(Product::C.tags, Vec::<String>::new())
            .value(Product::C.attrs, json!({}))
            .value(
                Product::C.spec,
                Json(Spec {
                    color: "white".into(),
                    weight: 1,
                }),
            ),
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    let mut after: Option<(i32, i32)> = None;
    loop {
        let page = s
            .execute(
                select_columns((Product::C.stock, Product::C.id, Product::C.sku))
                    .keyset((Product::C.stock, Product::C.id), after)
                    .limit(2),
            )
            .await
            .unwrap()
            .all();
        let Some((stock, id, _)) = page.last().cloned() else {
            break;
        };
        after = Some((stock, id));
        seen.push(page.into_iter().map(|(_, _, sku)| sku).collect::<Vec<_>>());
    }
    assert_eq!(seen, [vec!["p2", "p3"], vec!["p4", "p1"]]);
    // Descending, on entities.
    let first: Vec<String> = s
        .scalars(
            select::<Product>()
                .keyset_desc((Product::C.stock, Product::C.id), Some((5, 4)))
                .limit(10),
        )
        .await
        .unwrap()
        .all()
        .iter()
        .map(|p| p.read().unwrap().sku.clone())
        .collect();
    assert_eq!(
        first,
        ["p3", "p2"],
        "after (5, 4) going down: (5, 3), (0, 2)"
    );
}

fn lock_not_available(err: &Error) -> bool {
    err.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
}

#[tokio::test]
async fn row_locks_nowait_skip_locked_of_and_share() {
    let engine = shop("locks").await;
    let holder = AsyncSession::new(engine.clone());
    // The holder locks product 1 (its transaction stays open until it commits).
    let locked = holder
        .scalars(
            select::<Product>()
                .filter(Product::C.id.eq(1))
                .with_for_update(),
        )
        .await
        .unwrap()
        .all();
    assert_eq!(locked.len(), 1);
    // NOWAIT: 55P03 at once, instead of waiting.
    let other = AsyncSession::new(engine.clone());
    let err = other
        .execute(select::<Product>().with_lock(RowLock::update().nowait()))
        .await
        .unwrap_err();
    assert!(lock_not_available(&err), "{err:?}");
    other.rollback().await.unwrap();
    // SKIP LOCKED: the rows nobody holds.
    let free: Vec<i32> = other
        .scalars(
            select::<Product>()
                .order_by(Product::C.id.asc())
                .with_lock(RowLock::update().skip_locked()),
        )
        .await
        .unwrap()
        .all()
        .iter()
        .map(|p| p.read().unwrap().id)
        .collect();
    assert_eq!(free, [2, 3]);
    other.rollback().await.unwrap();
    // FOR SHARE waits for (here: fails on) an exclusive lock too.
    let err = other
        .execute(
            select::<Product>()
                .filter(Product::C.id.eq(1))
                .with_lock(RowLock::share().nowait()),
        )
        .await
        .unwrap_err();
    assert!(lock_not_available(&err), "{err:?}");
    other.rollback().await.unwrap();
    holder.commit().await.unwrap();

    // Two FOR SHARE locks coexist; FOR UPDATE NOWAIT on a shared row fails.
    holder
        .execute(
            select::<Product>()
                .filter(Product::C.id.eq(2))
                .with_lock(RowLock::share()),
        )
        .await
        .unwrap();
    other
        .execute(
            select::<Product>()
                .filter(Product::C.id.eq(2))
                .with_lock(RowLock::share().nowait()),
        )
        .await
        .unwrap();
    let third = AsyncSession::new(engine.clone());
    let err = third
        .execute(
            select::<Product>()
                .filter(Product::C.id.eq(2))
                .with_lock(RowLock::update().nowait()),
        )
        .await
        .unwrap_err();
    assert!(lock_not_available(&err), "{err:?}");
    third.rollback().await.unwrap();
    holder.commit().await.unwrap();
    other.commit().await.unwrap();

    // OF bin: a join locks only the bins, so the products stay free.
    holder
        .execute(
            select::<Bin>()
                .join(Bin::C.product)
                .filter(Product::C.id.eq(3))
                .with_lock(RowLock::update().of::<Bin>()),
        )
        .await
        .unwrap();
    other
        .execute(
            select::<Product>()
                .filter(Product::C.id.eq(3))
                .with_lock(RowLock::update().nowait()),
        )
        .await
        .expect("product 3 is not locked");
    let err = third
        .execute(
            select::<Bin>()
                .filter(Bin::C.id.eq(3))
                .with_lock(RowLock::update().nowait()),
        )
        .await
        .unwrap_err();
    assert!(lock_not_available(&err), "{err:?}");
    // NOWAIT and SKIP LOCKED together are refused before anything runs.
    let err = AsyncSession::new(engine.clone())
        .execute(select::<Bin>().with_lock(RowLock::update().nowait().skip_locked()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not both"), "{err}");
    for s in [holder, other, third] {
        s.rollback().await.unwrap();
        s.close().await;
    }
}

#[derive(Debug, PartialEq, FromRow)]
struct StockLine {
    sku: String,
    #[row(rename = "in_stock")]
    stock: i32,
    nick: Option<String>,
}

#[derive(Debug, FromRow)]
struct Missing {
    #[allow(dead_code)]
    weight: i32,
}

#[derive(Debug, FromRow)]
struct WrongType {
    #[allow(dead_code)]
    stock: String,
}

#[tokio::test]
async fn raw_sql_counts_rows_and_decodes_structs() {
    let engine = shop("raw_sql").await;
    let s = AsyncSession::new(engine.clone());
    let result = s
        .execute(text("UPDATE product SET stock = stock + $1 WHERE stock > 0").bind(5))
        .await
        .unwrap();
    assert_eq!(result.rowcount(), 2);
    assert!(result.is_empty());
    let result = s
        .execute(text("DELETE FROM bin WHERE id = 99"))
        .await
        .unwrap();
    assert_eq!(result.rowcount(), 0);
    let result = s
        .execute(text("UPDATE bin SET qty = qty + 1 RETURNING id"))
        .await
        .unwrap();
    assert_eq!(result.rowcount(), 3);
    s.commit().await.unwrap();
    assert_eq!(stored::<i32>(&engine, "stock", "p1").await, 15);

    let lines = s
        .execute(text(
            "SELECT nick, stock AS in_stock, sku, id FROM product ORDER BY sku",
        ))
        .await
        .unwrap()
        .rows_as::<StockLine>()
        .unwrap();
    assert_eq!(
        lines,
        [
            StockLine {
                sku: "p1".into(),
                stock: 15,
                nick: None
            },
            StockLine {
                sku: "p2".into(),
                stock: 0,
                nick: None
            },
            StockLine {
                sku: "p3".into(),
                stock: 10,
                nick: None
            },
        ]
    );
    let err = s
        .execute(text("SELECT sku, stock FROM product"))
        .await
        .unwrap()
        .rows_as::<Missing>()
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::InvalidRequest(_)), "{err:?}");
    assert!(
        message.contains(
            "Missing::weight: the row has no column \"weight\" (its columns: sku, stock)"
        ),
        "{message}"
    );
    let err = s
        .execute(text("SELECT stock FROM product"))
        .await
        .unwrap()
        .rows_as::<WrongType>()
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(
            "WrongType::stock: column \"stock\" (int4) does not decode as `alloc::string::String`"
        ),
        "{message}"
    );
    let err = s
        .execute(text(
            "SELECT NULL::int AS in_stock, 'x' AS sku, NULL AS nick",
        ))
        .await
        .unwrap()
        .rows_as::<StockLine>()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("StockLine::stock: column \"in_stock\""),
        "{err}"
    );
}
