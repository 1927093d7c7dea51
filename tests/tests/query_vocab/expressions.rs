//! Expression updates, functions, jsonb and array operators, raw fragments, keyset pages.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::json;
use session_core::{
    AsyncSession, Error, Json, func, insert, select, select_columns, sql_expr, update,
};

use crate::shop::{Product, Spec, shop, stored};

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
