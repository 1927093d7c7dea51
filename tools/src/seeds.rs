//! The seeds' other snippets, each ported as a function that an example runs
//! (`cargo run -p session-tools --example seed_002_sessionmaker`) and a test checks. The
//! Python they port is quoted in the comments.

use session_core::blocking::{Session, sessionmaker};
use session_core::{
    AsyncSessionMaker, Engine, Obj, Reference, Result, SessionOptions, SharedConnection,
    async_sessionmaker, create_async_engine, select, text,
};
use session_scoped::{async_scoped_session, scope};

use crate::model::{A, B, seed_metadata};

fn a(data: &str) -> Obj<A> {
    Obj::new(A {
        data: data.into(),
        ..A::default()
    })
}

/// Creates the seed's tables on `url` (SQLAlchemy's `Base.metadata.create_all`).
///
/// # Errors
/// Any database error.
pub async fn create_schema(url: &str) -> Result<()> {
    let engine = create_async_engine(url)?;
    let metadata = seed_metadata();
    engine
        .transaction(async |conn| metadata.create_all(conn).await)
        .await?;
    engine.dispose().await;
    Ok(())
}

/// Seed 000: an `async_sessionmaker` made once and passed to the functions that need sessions.
/// Returns how many objects `run_some_sql` stored.
///
/// # Errors
/// Any database error.
pub async fn seed_000_async_sessionmaker(url: &str) -> Result<i64> {
    // async def run_some_sql(async_session: async_sessionmaker[AsyncSession]) -> None:
    //     async with async_session() as session:
    //         session.add(SomeObject(data="object"))
    //         session.add(SomeOtherObject(name="other object"))
    //         await session.commit()
    async fn run_some_sql(async_session: &AsyncSessionMaker) -> Result<()> {
        async_session
            .scope(async |session| {
                let some_object = a("object");
                session.add(&some_object)?;
                session.add(&Obj::new(B {
                    data: "other object".into(),
                    a: Reference::to(some_object),
                    ..B::default()
                }))?;
                session.commit().await
            })
            .await
    }

    // engine = create_async_engine("postgresql+asyncpg://scott:tiger@localhost/")
    let engine = create_async_engine(url)?;
    // async_session = async_sessionmaker(engine)
    let async_session = async_sessionmaker(engine.clone());
    // await run_some_sql(async_session)
    run_some_sql(&async_session).await?;
    let n = async_session
        .scope(async |s| {
            s.scalar(text(
                "SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b)",
            ))
            .await?
            .get::<i64>()
        })
        .await?;
    // await engine.dispose()
    engine.dispose().await;
    Ok(n)
}

/// Seed 002: the blocking `sessionmaker` forms. Returns the data of every `a` row at the end.
/// Call it from synchronous code (not inside an async runtime).
///
/// # Errors
/// Any database error.
pub fn seed_002_sessionmaker(url: &str) -> Result<Vec<String>> {
    // engine = create_engine('postgresql://scott:tiger@localhost/')
    let engine = create_async_engine(url)?;
    // Session = sessionmaker(engine)
    let session_factory = sessionmaker(engine.clone())?;

    // with Session() as session:
    //     session.add(some_object); session.add(some_other_object); session.commit()
    session_factory.scope(|session| {
        session.add(&a("with Session()"))?;
        session.add(&a("with Session(), too"))?;
        session.commit()
    })??;

    // session = Session()
    // try: session.add(some_object); session.commit()
    // finally: session.close()
    let session: Session = session_factory.session();
    let result = (|| {
        session.add(&a("try/finally"))?;
        session.commit()
    })();
    session.close()?;
    result?;

    // with Session.begin() as session: session.add(some_object)
    // # commits transaction, closes session
    session_factory.begin(|session| session.add(&a("with Session.begin()")))?;

    // with engine.connect() as connection:
    //     with Session(bind=connection) as session:  # work with session
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| session_core::Error::Config(e.to_string()))?;
    let connection = runtime.block_on(engine.connect())?;
    let shared = SharedConnection::new(connection);
    let bound = session_factory.session_with(SessionOptions::new().bind_connection(shared.clone()));
    bound.add(&a("Session(bind=connection)"))?;
    bound.commit()?;
    bound.close()?;
    if let Some(connection) = shared.take() {
        runtime.block_on(connection.close());
    }

    // Session = sessionmaker()   # application starts, no engine bound yet
    // ... later: Session.configure(bind=engine); sess = Session()
    let late = sessionmaker(None)?;
    late.configure(SessionOptions::new().bind(engine.clone()));
    let sess = late.session();
    sess.add(&a("configure(bind=engine) later"))?;
    sess.commit()?;

    let rows = sess.block_on(
        sess.async_session()
            .scalars(select::<A>().order_by(A::C.id.asc())),
    )??;
    let data = rows
        .all()
        .iter()
        .map(|o| o.read().map(|a| a.data.clone()))
        .collect::<Result<Vec<_>>>()?;
    sess.close()?;
    Ok(data)
}

/// Seed 003: `async_scoped_session(async_sessionmaker(engine), scopefunc=current_task)`, used
/// from many tasks, each calling `remove()` at its end. Returns the registry size afterwards
/// (0) and the number of rows written.
///
/// # Errors
/// Any database error.
pub async fn seed_003_scoped_session(url: &str) -> Result<(usize, i64)> {
    let engine = create_async_engine(url)?;
    // AsyncScopedSession = async_scoped_session(async_session_factory, scopefunc=current_task)
    let scoped = std::sync::Arc::new(async_scoped_session(
        async_sessionmaker(engine.clone()),
        scope::current_task,
    ));
    let mut tasks = Vec::new();
    for i in 0..10 {
        let scoped = scoped.clone();
        tasks.push(tokio::spawn(async move {
            // some_async_session = AsyncScopedSession()
            let session = scoped.call();
            session.add(&a(&format!("task {i}")))?;
            session.commit().await?;
            // await AsyncScopedSession.remove()
            scoped.remove().await;
            Ok::<_, session_core::Error>(())
        }));
    }
    for task in tasks {
        task.await
            .map_err(|e| session_core::Error::InvalidRequest(e.to_string()))??;
    }
    let n = count_a(&engine).await?;
    let registered = scoped.registered();
    engine.dispose().await;
    Ok((registered, n))
}

async fn count_a(engine: &Engine) -> Result<i64> {
    let mut conn = engine.connect().await?;
    let n = conn.scalar("SELECT count(*) FROM a", &[]).await?;
    conn.close().await;
    Ok(n)
}
