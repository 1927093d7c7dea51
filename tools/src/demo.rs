//! The demo the README's first command runs: SQLAlchemy's asyncio ORM example (seed 001),
//! line for line, on the session. The Python it ports is quoted in the comments.

use std::io::Write;

use session_core::{
    AsyncSessionMaker, Collection, Engine, Obj, Result, async_sessionmaker, select, selectinload,
};

use crate::model::{A, B, seed_metadata};

fn b(data: &str) -> Obj<B> {
    Obj::new(B {
        data: data.into(),
        ..B::default()
    })
}

fn a(data: &str, bs: Vec<Obj<B>>) -> Obj<A> {
    Obj::new(A {
        data: data.into(),
        bs: Collection::from_vec(bs),
        ..A::default()
    })
}

/// `async def insert_objects(async_session: async_sessionmaker[AsyncSession]) -> None`
async fn insert_objects(async_session: &AsyncSessionMaker) -> Result<()> {
    // async with async_session() as session:
    //     async with session.begin():
    //         session.add_all([A(bs=[B(data="b1"), B(data="b2")], data="a1"), ...])
    async_session
        .begin(async |session| {
            session.add_all(&[
                a("a1", vec![b("b1"), b("b2")]),
                a("a2", vec![]),
                a("a3", vec![b("b3"), b("b4")]),
            ])
        })
        .await
}

/// `async def select_and_update_objects(async_session) -> None`
async fn select_and_update_objects(
    async_session: &AsyncSessionMaker,
    out: &mut dyn Write,
) -> Result<()> {
    // async with async_session() as session:
    async_session
        .scope(async |session| {
            // stmt = select(A).options(selectinload(A.bs))
            let stmt = select::<A>().options(selectinload(A::C.bs));
            // result = await session.execute(stmt)
            let result = session.execute(stmt).await?;
            // for a1 in result.scalars(): print(a1); print(f"created at: {a1.create_date}")
            //     for b1 in a1.bs: print(b1)
            for a1 in result.scalars() {
                let a1 = a1.read()?;
                let _ = writeln!(out, "{}", show_a(&a1));
                let created = a1.create_date.map(|d| d.to_string()).unwrap_or_default();
                let _ = writeln!(out, "created at: {created}");
                for b1 in a1.bs.get()? {
                    let _ = writeln!(out, "{}", show_b(&*b1.read()?));
                }
            }
            // result = await session.execute(select(A).order_by(A.id).limit(1))
            let result = session
                .execute(select::<A>().order_by(A::C.id.asc()).limit(1))
                .await?;
            // a1 = result.scalars().one()
            let a1 = result.scalars().one()?;
            // a1.data = "new data"
            a1.write()?.data = "new data".into();
            // await session.commit()
            session.commit().await?;
            // access attribute subsequent to commit; this is what expire_on_commit=False allows
            let _ = writeln!(out, "{}", a1.read()?.data);
            Ok(())
        })
        .await
}

fn show_a(a: &A) -> String {
    format!("A(id={}, data={:?})", a.id, a.data)
}

fn show_b(b: &B) -> String {
    format!("B(id={}, a_id={}, data={:?})", b.id, b.a_id, b.data)
}

/// `async def async_main() -> None`, against `url`, writing what it prints to `out`; with
/// `echo`, every statement is logged as `create_async_engine(..., echo=True)` does.
///
/// # Errors
/// Any database error, with its SQLSTATE.
pub async fn run(url: &str, echo: bool, out: &mut dyn Write) -> Result<()> {
    // engine = create_async_engine("postgresql+asyncpg://scott:tiger@localhost/test", echo=True)
    let engine = Engine::builder(url).echo(echo).build()?;

    // async_sessionmaker: a factory for new AsyncSession objects.
    // expire_on_commit - don't expire objects after transaction commit
    let async_session = async_sessionmaker(engine.clone()).expire_on_commit(false);

    // async with engine.begin() as conn: await conn.run_sync(Base.metadata.create_all)
    let metadata = seed_metadata();
    engine
        .transaction(async |conn| metadata.create_all(conn).await)
        .await?;

    insert_objects(&async_session).await?;
    select_and_update_objects(&async_session, out).await?;

    // for AsyncEngine created in function scope, close and clean-up pooled connections
    engine.dispose().await;
    Ok(())
}
