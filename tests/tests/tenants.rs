//! Tenants through SQLAlchemy's `schema_translate_map`: two schemas holding the same table,
//! written and read through sessions of a factory per tenant and of one factory with a map per
//! session, checked with plain SQL against each schema; nothing stays on the pooled connection.

use session_core::{
    AsyncSession, Engine, Entity, ExecutionOptions, Obj, SessionOptions, async_sessionmaker,
    select, text,
};
use session_tests::support::engine;

/// A note, in whichever tenant's schema the session works in.
#[derive(Debug, Clone, Default, PartialEq, Entity)]
#[entity(table = "note")]
pub struct Note {
    #[entity(primary_key, generated)]
    id: i32,
    body: String,
}

fn tenant(schema: &str) -> ExecutionOptions {
    ExecutionOptions::new().schema_translate_map([(None, schema)])
}

/// One pooled connection, so every session and the checks reuse it; `note` in `tenant_a`,
/// `tenant_b` and `public` (which must never be touched).
async fn tenants_engine(prefix: &str) -> Engine {
    let engine = engine(prefix, 1).await;
    let mut conn = engine.connect().await.unwrap();
    conn.batch_execute(
        "CREATE SCHEMA tenant_a; CREATE SCHEMA tenant_b;
         CREATE TABLE tenant_a.note (id serial PRIMARY KEY, body text NOT NULL);
         CREATE TABLE tenant_b.note (id serial PRIMARY KEY, body text NOT NULL);
         CREATE TABLE public.note (id serial PRIMARY KEY, body text NOT NULL);
         CREATE TABLE tenant_b.only_b (x int); INSERT INTO tenant_b.only_b VALUES (7);
         INSERT INTO public.note (body) VALUES ('public row')",
    )
    .await
    .unwrap();
    conn.close().await;
    engine
}

async fn bodies(engine: &Engine, table: &str) -> Vec<String> {
    let mut conn = engine.connect().await.unwrap();
    let rows = conn
        .query(&format!("SELECT body FROM {table} ORDER BY id"), &[])
        .await
        .unwrap();
    conn.close().await;
    rows.iter().map(|r| r.get(0)).collect()
}

fn note(body: &str) -> Obj<Note> {
    Obj::new(Note {
        body: body.into(),
        ..Default::default()
    })
}

#[tokio::test]
async fn each_tenant_reads_and_writes_its_own_schema() {
    let engine = tenants_engine("tenants").await;
    // A factory per tenant, and one factory whose sessions are given their tenant.
    let factory_a = async_sessionmaker(engine.clone()).execution_options(tenant("tenant_a"));
    let shared = async_sessionmaker(engine.clone());

    let a = factory_a.session();
    let b = shared.session_with(SessionOptions::new().execution_options(tenant("tenant_b")));
    a.add_all(&[note("a1"), note("a2")]).unwrap();
    b.add(&note("b1")).unwrap();
    a.commit().await.unwrap();
    b.commit().await.unwrap();
    assert_eq!(bodies(&engine, "tenant_a.note").await, ["a1", "a2"]);
    assert_eq!(bodies(&engine, "tenant_b.note").await, ["b1"]);
    assert_eq!(bodies(&engine, "public.note").await, ["public row"]);

    // get, select, a change flushed, a delete: each in its own tenant's rows. Both schemas
    // have a row with id 1.
    let a = factory_a.session();
    let first = a.get::<Note>(1).await.unwrap().unwrap();
    assert_eq!(first.read().unwrap().body, "a1");
    first.write().unwrap().body = "a1 changed".into();
    let second = a.get::<Note>(2).await.unwrap().unwrap();
    a.delete(&second).unwrap();
    a.commit().await.unwrap();
    let b = shared.session_with(SessionOptions::new().execution_options(tenant("tenant_b")));
    let all: Vec<String> = b
        .scalars(select::<Note>())
        .await
        .unwrap()
        .all()
        .iter()
        .map(|n| n.read().unwrap().body.clone())
        .collect();
    assert_eq!(all, ["b1"]);
    assert!(b.get::<Note>(2).await.unwrap().is_none());
    // Plain SQL too, on a table that only tenant_b has (prepared after the search_path).
    let x: Option<i32> = b
        .execute(text("SELECT x FROM only_b"))
        .await
        .unwrap()
        .scalar()
        .unwrap();
    assert_eq!(x, Some(7));
    b.close().await;
    assert_eq!(bodies(&engine, "tenant_a.note").await, ["a1 changed"]);
    assert_eq!(bodies(&engine, "tenant_b.note").await, ["b1"]);
    assert_eq!(bodies(&engine, "public.note").await, ["public row"]);

    // The search_path ended with each transaction: the one pooled connection has the
    // server's default again, and a session without a map sees `public`.
    let mut conn = engine.connect().await.unwrap();
    let path: String = conn.scalar("SHOW search_path", &[]).await.unwrap();
    assert_eq!(path, "\"$user\", public");
    conn.close().await;
    let plain = AsyncSession::new(engine.clone());
    let got = plain.get::<Note>(1).await.unwrap().unwrap();
    assert_eq!(got.read().unwrap().body, "public row");
    plain.close().await;
    assert_eq!(engine.status().opened, 1);
}

#[tokio::test]
async fn a_tenant_without_the_table_fails_instead_of_reading_public() {
    let engine = tenants_engine("tenants_missing").await;
    let mut conn = engine.connect().await.unwrap();
    conn.batch_execute("CREATE SCHEMA tenant_c").await.unwrap();
    conn.close().await;
    let c = AsyncSession::builder()
        .bind(engine.clone())
        .execution_options(tenant("tenant_c"))
        .build();
    let err = c.get::<Note>(1).await.unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("42P01"), "{err}");
    c.close().await;
}

#[tokio::test]
async fn a_statement_cannot_switch_tenant_inside_a_session() {
    let engine = tenants_engine("tenants_switch").await;
    let a = AsyncSession::builder()
        .bind(engine.clone())
        .execution_options(tenant("tenant_a"))
        .build();
    // The session's own map on a statement is fine; another tenant's is refused.
    let same = a
        .scalars(select::<Note>().execution_options(tenant("tenant_a")))
        .await
        .unwrap()
        .all();
    assert!(same.is_empty());
    let err = a
        .scalars(select::<Note>().execution_options(tenant("tenant_b")))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("schema_translate_map"), "{err}");
    a.close().await;
    // An entry for a named schema can never apply: refused with what to write.
    let named = AsyncSession::builder()
        .bind(engine.clone())
        .execution_options(ExecutionOptions::new().schema_translate_map([(Some("x"), "y")]))
        .build();
    let err = named.get::<Note>(1).await.unwrap_err();
    assert!(err.to_string().contains("only the None entry"), "{err}");
}
