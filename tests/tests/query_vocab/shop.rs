//! The shop schema the tests share: `product` and `bin`, three products, one bin each.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use session_core::{AsyncSession, Engine, Entity, Json, MetaData, Reference, text};
use session_tests::support::{create_schema, engine};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Spec {
    pub(crate) color: String,
    pub(crate) weight: u32,
}

#[derive(Debug, Clone, PartialEq, Entity)]
#[entity(table = "product")]
pub(crate) struct Product {
    #[entity(primary_key, generated)]
    pub(crate) id: i32,
    #[entity(unique)]
    pub(crate) sku: String,
    pub(crate) name: String,
    pub(crate) nick: Option<String>,
    pub(crate) stock: i32,
    pub(crate) price: Decimal,
    pub(crate) tags: Vec<String>,
    pub(crate) attrs: serde_json::Value,
    pub(crate) spec: Json<Spec>,
    pub(crate) updated: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Entity)]
#[entity(table = "bin")]
pub(crate) struct Bin {
    #[entity(primary_key)]
    pub(crate) id: i32,
    #[entity(foreign_key = "product.id")]
    pub(crate) product_id: i32,
    pub(crate) qty: i32,
    #[entity(relationship(foreign_key = "product_id"))]
    pub(crate) product: Reference<Product>,
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
pub(crate) async fn shop(prefix: &str) -> Engine {
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
pub(crate) async fn stored<T: session_core::tokio_postgres::types::FromSqlOwned>(
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
