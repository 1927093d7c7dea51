//! Raw SQL through the session: row counts, rows decoded into `#[derive(FromRow)]` structs.

use session_core::{AsyncSession, Error, FromRow, text};

use crate::shop::{shop, stored};

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
