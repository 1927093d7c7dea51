//! Upserts: ON CONFLICT DO UPDATE / DO NOTHING, EXCLUDED, the identity map kept true.

use rust_decimal::Decimal;
use serde_json::json;
use session_core::{AsyncSession, Error, Json, func, insert};

use crate::shop::{Product, Spec, shop, stored};

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
