//! Prints the sizes of the futures of the session's and the connection's main calls: a large
//! future costs a memcpy wherever it moves (`tokio::spawn`, `Box::pin`, every `async` block
//! around it), so the hot calls keep theirs small by boxing their rare paths.
//!
//! `cargo run --release -p session-tools --example future_sizes`

use session_core::{AsyncSession, Engine, select, selectinload};
use session_tools::model::A;
use session_tools::pg::Cluster;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = tokio::task::spawn_blocking(Cluster::start).await??;
    let url = cluster.create_database("future_sizes").await?;
    let engine = Engine::builder(url).build()?;
    let s = AsyncSession::new(engine.clone());
    let obj = session_core::Obj::new(A::default());
    let mut conn = engine.connect().await?;
    let mut sizes = Vec::new();
    sizes.push((
        "conn.query",
        std::mem::size_of_val(&conn.query("SELECT 1", &[])),
    ));
    sizes.push((
        "conn.execute",
        std::mem::size_of_val(&conn.execute("SELECT 1", &[])),
    ));
    sizes.push(("conn.commit", std::mem::size_of_val(&conn.commit())));
    sizes.extend([
        ("engine.connect", std::mem::size_of_val(&engine.connect())),
        ("get", std::mem::size_of_val(&s.get::<A>(1))),
        ("get_one", std::mem::size_of_val(&s.get_one::<A>(1))),
        ("get_many", std::mem::size_of_val(&s.get_many::<A>(&[1]))),
        ("commit", std::mem::size_of_val(&s.commit())),
        ("flush", std::mem::size_of_val(&s.flush())),
        ("rollback", std::mem::size_of_val(&s.rollback())),
        ("refresh", std::mem::size_of_val(&s.refresh(&obj, &[]))),
        ("close", std::mem::size_of_val(&s.close())),
        (
            "scalars",
            std::mem::size_of_val(&s.scalars(select::<A>().options(selectinload(A::C.bs)))),
        ),
        ("execute", std::mem::size_of_val(&s.execute(select::<A>()))),
    ]);
    let config: session_core::tokio_postgres::Config = engine.url().parse()?;
    let (client, driver) = config.connect(session_core::tokio_postgres::NoTls).await?;
    tokio::spawn(driver);
    let st = client.prepare("SELECT 1").await?;
    sizes.push(("pg.query", std::mem::size_of_val(&client.query(&st, &[]))));
    sizes.push((
        "pg.query_typed",
        std::mem::size_of_val(&client.query_typed("SELECT 1", &[])),
    ));
    sizes.push((
        "pg.batch_execute",
        std::mem::size_of_val(&client.batch_execute("BEGIN")),
    ));
    sizes.push((
        "pg.prepare",
        std::mem::size_of_val(&client.prepare("SELECT 1")),
    ));
    conn.query("SELECT 1", &[]).await?;
    for (name, size) in sizes {
        println!("{name:14} {size:7} bytes");
    }
    Ok(())
}
