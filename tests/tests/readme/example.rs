use session_core::{
    async_sessionmaker, create_async_engine, select, selectinload, Collection, Entity, MetaData,
    Obj, Reference, Result,
};

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "a")]
struct A {
    #[entity(primary_key, generated)]
    id: i32,
    data: String,
    #[entity(server_default = "now()")]
    create_date: Option<chrono::NaiveDateTime>,
    details: serde_json::Value, // jsonb
    #[entity(relationship(foreign_key = "a_id"))]
    bs: Collection<B>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "b")]
struct B {
    // A uuid key made by the server; the nil uuid (the default) means "not set yet".
    #[entity(primary_key, server_default = "gen_random_uuid()")]
    id: uuid::Uuid,
    #[entity(foreign_key = "a.id")]
    a_id: i32,
    data: String,
    #[entity(relationship(foreign_key = "a_id"))]
    a: Reference<A>,
}

#[tokio::main]
async fn main() -> Result<()> {
    run("postgresql://scott:tiger@localhost/test").await
}

async fn run(url: &str) -> Result<()> {
    // create_async_engine("postgresql+asyncpg://scott:tiger@localhost/test"): no I/O yet
    let engine = create_async_engine(url)?;
    // async with engine.begin() as conn: await conn.run_sync(Base.metadata.create_all)
    let metadata = MetaData::new().with::<A>().with::<B>();
    engine.transaction(async |conn| metadata.create_all(conn).await).await?;

    // async_session = async_sessionmaker(engine, expire_on_commit=False)
    let async_session = async_sessionmaker(engine.clone()).expire_on_commit(false);

    // async with async_session.begin() as session: session.add_all([A(bs=[B(), B()], ...)])
    let b = |data: &str| Obj::new(B { data: data.into(), ..B::default() });
    let a1 = Obj::new(A {
        data: "a1".into(),
        details: serde_json::json!({"tags": ["new"], "rank": 1}),
        bs: Collection::from_vec(vec![b("b1"), b("b2")]),
        ..A::default()
    });
    async_session.begin(async |session| session.add(&a1)).await?;
    // One INSERT per table; keys, server defaults and the children's a_id came back.
    // (Read into locals: one guard of an object at a time.)
    let a1_id = a1.read()?.id;
    let (b1_id, b1_a_id) = {
        let a = a1.read()?;
        let b1 = a.bs.get()?[0].read()?;
        (b1.id, b1.a_id)
    };
    assert_eq!(b1_a_id, a1_id);
    assert!(!b1_id.is_nil(), "the server's uuid came back");

    // async with async_session() as session:
    let session = async_session.session();
    let stmt = select::<A>().options(selectinload(A::C.bs)).order_by(A::C.id.asc());
    for a in session.scalars(stmt).await?.all() {
        let a = a.read()?; // an expired attribute would be an error here, never a hidden query
        println!("{} created at {:?} with {} Bs", a.data, a.create_date, a.bs.get()?.len());
    }
    let a = session.scalars(select::<A>().order_by(A::C.id.asc()).limit(1)).await?.one()?;
    assert!(a.ptr_eq(&session.get::<A>(1).await?.unwrap())); // identity map: no SQL
    a.write()?.data = "new data".into(); // UPDATE of the changed columns at commit
    a.write()?.details["rank"] = 2.into();
    session.commit().await?;
    session.close().await;

    engine.dispose().await;
    Ok(())
}
