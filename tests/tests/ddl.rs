//! `MetaData::create_all` / `drop_all` say what the model declares: numeric(p, s) and
//! varchar(n) by `sql_type`, enum types, foreign-key actions, indexes, CHECK and multi-column
//! UNIQUE constraints; checked in PostgreSQL's catalog and by the behaviour they give.

use rust_decimal::Decimal;
use session_core::{AsyncSession, ColumnType, Engine, Entity, MetaData, Obj};
use session_tests::support::engine;

#[derive(Debug, Clone, Copy, PartialEq, ColumnType)]
#[column(pg_enum = "shelf_kind", rename_all = "lowercase")]
enum Kind {
    Paper,
    Ebook,
}

#[derive(Debug, Clone, PartialEq, Entity)]
#[entity(table = "store", unique = "city, name", check = "length(name) > 0")]
struct Store {
    #[entity(primary_key)]
    id: i32,
    #[entity(sql_type = "varchar(20)")]
    name: String,
    city: String,
}

#[derive(Debug, Clone, PartialEq, Entity)]
#[entity(table = "stock", index = "store_id, kind", unique_index = "sku")]
struct Stock {
    #[entity(primary_key)]
    id: i32,
    #[entity(foreign_key = "store.id", on_delete = "cascade", on_update = "CASCADE")]
    store_id: i32,
    #[entity(foreign_key = "store.id", on_delete = "set null")]
    backup_store: Option<i32>,
    sku: String,
    kind: Kind,
    #[entity(sql_type = "numeric(10,2)", check = "price >= 0", index)]
    price: Decimal,
}

fn metadata() -> MetaData {
    // Children first on purpose: the order of creation is the model's, not the caller's.
    MetaData::new().with::<Stock>().with::<Store>()
}

async fn scalar_text(engine: &Engine, sql: &str) -> String {
    let mut conn = engine.connect().await.unwrap();
    let v: String = conn.scalar(sql, &[]).await.unwrap();
    conn.close().await;
    v
}

#[test]
fn the_ddl_can_be_printed_without_running_it() {
    let script = metadata().create_script();
    let type_at = script
        .find("CREATE TYPE shelf_kind AS ENUM ('paper', 'ebook')")
        .unwrap();
    let store_at = script.find("CREATE TABLE IF NOT EXISTS \"store\"").unwrap();
    let stock_at = script.find("CREATE TABLE IF NOT EXISTS \"stock\"").unwrap();
    assert!(type_at < store_at && store_at < stock_at, "{script}");
    for part in [
        "\"name\" varchar(20) NOT NULL",
        "UNIQUE (\"city\", \"name\")",
        "CHECK (length(name) > 0)",
        "REFERENCES \"store\"(\"id\") ON DELETE CASCADE ON UPDATE CASCADE",
        "REFERENCES \"store\"(\"id\") ON DELETE SET NULL",
        "\"price\" numeric(10,2) NOT NULL",
        "CHECK (price >= 0)",
        "CREATE INDEX IF NOT EXISTS \"ix_stock_price\" ON \"stock\" (\"price\")",
        "CREATE INDEX IF NOT EXISTS \"ix_stock_store_id_kind\" ON \"stock\" (\"store_id\", \"kind\")",
        "CREATE UNIQUE INDEX IF NOT EXISTS \"uq_stock_sku\" ON \"stock\" (\"sku\")",
    ] {
        assert!(script.contains(part), "{part} in\n{script}");
    }
    assert_eq!(
        metadata().drop_statements(),
        [
            "DROP TABLE IF EXISTS \"stock\"",
            "DROP TABLE IF EXISTS \"store\"",
            "DROP TYPE IF EXISTS shelf_kind"
        ]
    );
}

#[tokio::test]
async fn create_all_builds_what_the_model_declares_and_drop_all_removes_it() {
    let engine = engine("ddl", 4).await;
    for _ in 0..2 {
        // Twice: creating what exists is a no-op.
        engine
            .transaction(async |conn| metadata().create_all(conn).await)
            .await
            .unwrap();
    }
    let indexes = scalar_text(
        &engine,
        "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes \
         WHERE tablename = 'stock'",
    )
    .await;
    assert_eq!(
        indexes,
        "ix_stock_price,ix_stock_store_id_kind,stock_pkey,uq_stock_sku"
    );
    let price = scalar_text(
        &engine,
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
         WHERE attrelid = 'stock'::regclass AND attname = 'price'",
    )
    .await;
    assert_eq!(price, "numeric(10,2)");

    let session = AsyncSession::new(engine.clone());
    let store = |id: i32, name: &str| {
        Obj::new(Store {
            id,
            name: name.into(),
            city: "Oslo".into(),
        })
    };
    session
        .add_all(&[store(1, "North"), store(2, "South")])
        .unwrap();
    session.commit().await.unwrap();
    let stock = |id: i32, sku: &str, price: Decimal| {
        Obj::new(Stock {
            id,
            store_id: 1,
            backup_store: Some(2),
            sku: sku.into(),
            kind: Kind::Ebook,
            price,
        })
    };
    session
        .add_all(&[
            stock(1, "a", Decimal::new(1_005, 3)),
            stock(2, "b", Decimal::ONE),
        ])
        .unwrap();
    session.commit().await.unwrap();
    // numeric(10,2) rounds to its scale, as PostgreSQL documents.
    assert_eq!(
        scalar_text(&engine, "SELECT price::text FROM stock WHERE id = 1").await,
        "1.01"
    );

    // The constraints hold.
    session.add(&stock(3, "c", Decimal::new(-1, 0))).unwrap();
    let e = session.commit().await.unwrap_err();
    assert!(e.is_check_violation(), "{e}");
    session.rollback().await.unwrap();
    session.add(&stock(4, "a", Decimal::ONE)).unwrap();
    let e = session.commit().await.unwrap_err();
    assert!(e.is_unique_violation(), "{e}");
    session.rollback().await.unwrap();
    session.add(&store(3, "North")).unwrap();
    let e = session.commit().await.unwrap_err();
    assert!(e.is_unique_violation(), "the (city, name) constraint: {e}");
    session.rollback().await.unwrap();
    session.add(&store(4, "")).unwrap();
    assert!(session.commit().await.unwrap_err().is_check_violation());
    session.rollback().await.unwrap();
    session.add(&store(5, "a name longer than twenty")).unwrap();
    let e = session.commit().await.unwrap_err();
    assert_eq!(
        e.code().map(|c| c.code()),
        Some("22001"),
        "varchar(20) refuses: {e}"
    );
    session.rollback().await.unwrap();
    session.close().await;

    // The actions: ON UPDATE CASCADE, ON DELETE SET NULL, ON DELETE CASCADE.
    let mut conn = engine.connect().await.unwrap();
    conn.batch_execute("UPDATE store SET id = 10 WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(
        scalar_text(&engine, "SELECT string_agg(store_id::text, ',') FROM stock").await,
        "10,10"
    );
    conn.batch_execute("DELETE FROM store WHERE id = 2")
        .await
        .unwrap();
    assert_eq!(
        scalar_text(
            &engine,
            "SELECT count(*)::text FROM stock WHERE backup_store IS NULL"
        )
        .await,
        "2"
    );
    conn.batch_execute("DELETE FROM store WHERE id = 10")
        .await
        .unwrap();
    assert_eq!(
        scalar_text(&engine, "SELECT count(*)::text FROM stock").await,
        "0"
    );
    conn.close().await;

    engine
        .transaction(async |conn| metadata().drop_all(conn).await)
        .await
        .unwrap();
    assert_eq!(
        scalar_text(
            &engine,
            "SELECT (count(*) FILTER (WHERE relname IN ('store', 'stock')))::text || ',' || \
             (SELECT count(*) FROM pg_type WHERE typname = 'shelf_kind')::text FROM pg_class"
        )
        .await,
        "0,0"
    );
}
