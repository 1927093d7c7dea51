//! The demo the README's first command runs.
//!
//! Until the seed example (SQLAlchemy's asyncio ORM example, seed 001) is ported on top of the
//! session, the demo makes the engine round trip the example starts with: an engine, a table
//! created inside `engine.begin()`, rows inserted in a transaction, read back, and
//! `engine.dispose()`.

use std::io::Write;

use session_core::{Engine, Result};

/// Runs the demo against `url`, writing what it prints to `out`.
///
/// # Errors
/// Any database error, with its SQLSTATE.
pub async fn run(url: &str, echo: bool, out: &mut dyn Write) -> Result<()> {
    let engine = Engine::builder(url).echo(echo).build()?;

    engine
        .transaction(async |conn| {
            conn.batch_execute(
                "DROP TABLE IF EXISTS demo_a; \
                 CREATE TABLE demo_a (id serial PRIMARY KEY, data varchar NOT NULL, \
                 create_date timestamp NOT NULL DEFAULT now())",
            )
            .await
        })
        .await?;

    let mut conn = engine.connect().await?;
    let tx = conn.begin().await?;
    let mut tx = tx;
    for data in ["a1", "a2", "a3"] {
        tx.execute("INSERT INTO demo_a (data) VALUES ($1)", &[&data])
            .await?;
    }
    tx.commit().await?;

    for row in conn
        .query("SELECT id, data FROM demo_a ORDER BY id", &[])
        .await?
    {
        let id: i32 = row.get(0);
        let data: String = row.get(1);
        let _ = writeln!(out, "A(id={id}, data={data:?})");
    }
    let count: i64 = conn.scalar("SELECT count(*) FROM demo_a", &[]).await?;
    let _ = writeln!(out, "{count} rows; {}", engine.status());
    conn.close().await;
    engine.dispose().await;
    Ok(())
}
