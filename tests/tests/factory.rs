//! async_sessionmaker and the blocking sessionmaker / Session (SQLAlchemy's sessionmaker tests,
//! ported), against a real PostgreSQL.

use session_core::blocking::sessionmaker;
use session_core::{
    AsyncSession, AsyncSessionMaker, Engine, Error, Info, Obj, ObjectState, SessionClass,
    SessionConfig, SessionOptions, async_sessionmaker, create_async_engine,
};
use session_tests::model::{A, Item, metadata};
use session_tests::support::{a, count_rows, fresh_database, schema_engine, wait_pool_idle};

fn info(pairs: &[(&str, &str)]) -> Info {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn info_is_merged_per_session_and_never_shared() {
    let maker = async_sessionmaker(None).info(info(&[("global", "1"), ("shared", "maker")]));
    let s1 =
        maker.session_with(SessionOptions::new().info(info(&[("local", "2"), ("shared", "call")])));
    assert_eq!(
        s1.info(),
        info(&[("global", "1"), ("local", "2"), ("shared", "call")]),
        "call-time keys win"
    );
    s1.update_info(|i| {
        i.insert("mutated".into(), "yes".into());
    });
    let s2 = maker.session();
    assert_eq!(
        s2.info(),
        info(&[("global", "1"), ("shared", "maker")]),
        "factory untouched"
    );
    assert!(!s2.info().contains_key("mutated"));
    // configure replaces info (no merge), for later sessions only.
    maker.configure(SessionOptions::new().info(info(&[("new", "x")])));
    assert_eq!(maker.session().info(), info(&[("new", "x")]));
    assert_eq!(s2.info(), info(&[("global", "1"), ("shared", "maker")]));
}

#[test]
fn call_time_options_override_and_configure_affects_later_sessions_only() {
    let maker = async_sessionmaker(None);
    let default = maker.session();
    assert!(default.autoflush());
    let custom = maker.session_with(SessionOptions::new().autoflush(false));
    assert!(!custom.autoflush());

    let engine = create_async_engine("postgresql://scott:tiger@localhost/test").unwrap();
    let before = maker.session();
    maker.configure(SessionOptions::new().bind(engine).autoflush(false));
    let after = maker.session();
    assert!(
        before.bind().is_none(),
        "existing sessions keep their options"
    );
    assert!(before.autoflush());
    assert!(after.bind().is_some());
    assert!(!after.autoflush());
    let clone = maker.clone();
    clone.configure(SessionOptions::new().unbound());
    assert!(
        maker.session().bind().is_none(),
        "clones share the configuration"
    );
}

#[test]
fn repr_has_sqlalchemys_shape_and_no_password() {
    let engine = create_async_engine("postgresql://scott:tiger@db.local:5433/test").unwrap();
    let maker = async_sessionmaker(engine.clone());
    assert_eq!(
        format!("{maker:?}"),
        "async_sessionmaker(class_='AsyncSession', bind=Engine(postgresql://scott@db.local:5433/test), autoflush=true, expire_on_commit=true)"
    );
    let maker = maker.expire_on_commit(false).info(info(&[("a", "1")]));
    assert_eq!(
        format!("{maker:?}"),
        "async_sessionmaker(class_='AsyncSession', bind=Engine(postgresql://scott@db.local:5433/test), autoflush=true, expire_on_commit=false, info={\"a\": \"1\"})"
    );
    assert_eq!(
        format!("{:?}", async_sessionmaker(None)),
        "async_sessionmaker(class_='AsyncSession', bind=None, autoflush=true, expire_on_commit=true)"
    );
    // Every configured option shows (close_resets_only was missing).
    let configured = async_sessionmaker(None).transaction_options(
        session_core::TransactionOptions::new()
            .isolation_level(session_core::IsolationLevel::Serializable),
    );
    configured.configure(session_core::SessionOptions::new().close_resets_only(false));
    assert_eq!(
        format!("{configured:?}"),
        "async_sessionmaker(class_='AsyncSession', bind=None, autoflush=true, expire_on_commit=true, close_resets_only=false, transaction_options='BEGIN ISOLATION LEVEL SERIALIZABLE')"
    );
    let blocking = sessionmaker(engine).unwrap();
    assert_eq!(
        format!("{blocking:?}"),
        "sessionmaker(class_='Session', bind=Engine(postgresql://scott@db.local:5433/test), autoflush=true, expire_on_commit=true)"
    );
}

/// A user session type made by the factory (SQLAlchemy's `class_=`).
struct RequestSession(AsyncSession);

impl SessionClass for RequestSession {
    const NAME: &'static str = "RequestSession";
    fn from_config(config: SessionConfig) -> Self {
        RequestSession(AsyncSession::with_config(config))
    }
    fn as_async_session(&self) -> &AsyncSession {
        &self.0
    }
}

#[tokio::test]
async fn factories_make_user_session_types() {
    let engine = schema_engine("class", 10).await;
    let maker: AsyncSessionMaker<RequestSession> = async_sessionmaker(engine.clone()).class();
    assert!(format!("{maker:?}").starts_with("async_sessionmaker(class_='RequestSession'"));
    maker
        .begin(async |s: &RequestSession| s.0.add(&a("through a user type")))
        .await
        .unwrap();
    assert_eq!(count_rows(&engine, "a").await, 1);
}

#[tokio::test]
async fn begin_commits_rolls_back_and_always_closes() {
    let engine = schema_engine("begin", 10).await;
    let maker = async_sessionmaker(engine.clone());

    let obj = a("committed");
    let made = maker
        .begin(async |s| {
            s.add(&obj)?;
            Ok::<_, Error>(s.id())
        })
        .await
        .unwrap();
    assert!(made > 0);
    assert_eq!(count_rows(&engine, "a").await, 1);
    assert_eq!(obj.state(), ObjectState::Detached, "closed after commit");

    let kept = a("rolled back");
    let err = maker
        .begin(async |s| {
            s.add(&kept)?;
            s.flush().await?;
            Err::<(), _>(Error::InvalidRequest("body failed".into()))
        })
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "body failed");
    assert_eq!(count_rows(&engine, "a").await, 1);
    assert_ne!(kept.state(), ObjectState::Persistent);

    // The commit itself fails (duplicate key found at flush): rolled back AND closed, unlike
    // SQLAlchemy's async factory, which leaves the session open.
    let first = Obj::new(Item {
        shop: "s".into(),
        sku: 1,
        price: None,
    });
    maker.begin(async |s| s.add(&first)).await.unwrap();
    let dup = Obj::new(Item {
        shop: "s".into(),
        sku: 1,
        price: None,
    });
    let err = maker.begin(async |s| s.add(&dup)).await.unwrap_err();
    assert!(err.is_unique_violation(), "{err}");
    assert_eq!(
        dup.state(),
        ObjectState::Transient,
        "the failed session was closed"
    );
    wait_pool_idle(&engine).await;
}

#[tokio::test]
async fn an_unbound_factory_gives_a_clear_error() {
    let maker = async_sessionmaker(None);
    let err = maker.bind().unwrap_err().to_string();
    assert!(err.contains("configure"), "{err}");
    let session = maker.session();
    let err = session.get::<A>(1).await.unwrap_err().to_string();
    assert!(
        err.starts_with("Could not locate a bind configured on mapper A(a)"),
        "{err}"
    );
    // configure(bind) later: sessions made afterwards work.
    let engine = schema_engine("unbound", 10).await;
    maker.configure(SessionOptions::new().bind(engine.clone()));
    maker.begin(async |s| s.add(&a("late bind"))).await.unwrap();
    assert_eq!(count_rows(&engine, "a").await, 1);
}

// ---- the blocking side (seed 002) ----

fn blocking_engine(prefix: &str) -> Engine {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = rt.block_on(fresh_database(prefix));
    let md = metadata();
    let setup = create_async_engine(&url).unwrap();
    rt.block_on(setup.transaction(async |conn| md.create_all(conn).await))
        .unwrap();
    rt.block_on(setup.dispose());
    create_async_engine(&url).unwrap()
}

#[test]
fn blocking_sessionmaker_forms_of_seed_002() {
    let engine = blocking_engine("blocking");
    // Session = sessionmaker(); Session.configure(bind=engine) later.
    let session_maker = sessionmaker(None).unwrap();
    session_maker.configure(SessionOptions::new().bind(engine.clone()));

    // with Session() as session: session.add(...); session.commit()
    session_maker
        .scope(|session| {
            session.add(&a("with Session()")).unwrap();
            session.commit().unwrap();
        })
        .unwrap();

    // with Session.begin() as session: session.add(...)  (commits, closes)
    session_maker
        .begin(|session| session.add(&a("with Session.begin()")))
        .unwrap();

    // Rolled back on error, closed.
    let err = session_maker
        .begin(|session| {
            session.add(&a("rolled back"))?;
            session.flush()?;
            Err::<(), _>(Error::InvalidRequest("nope".into()))
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "nope");

    let session = session_maker.session();
    let got = session.get::<A>(1).unwrap().unwrap();
    assert_eq!(got.read().unwrap().data, "with Session()");
    got.write().unwrap().data = "changed".into();
    assert!(session.is_modified(&got));
    session.commit().unwrap();
    session.refresh(&got, &[]).unwrap();
    assert_eq!(got.read().unwrap().data, "changed");
    let n: i64 = session
        .block_on(async {
            let mut conn = session.async_session().connection().await?;
            conn.scalar("SELECT count(*) FROM a", &[]).await
        })
        .unwrap()
        .unwrap();
    assert_eq!(n, 2);
    session.close().unwrap();
    assert!(format!("{session_maker:?}").starts_with("sessionmaker(class_='Session'"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_session_inside_async_code_is_a_clear_error_not_a_deadlock() {
    let engine = schema_engine("blockingasync", 10).await;
    let maker = sessionmaker(engine.clone()).unwrap();
    let session = maker.session();
    let err = session.flush().unwrap_err().to_string();
    assert!(err.contains("use AsyncSession there"), "{err}");
    // Through session_core::blocking::spawn_blocking it works.
    let n = session_core::blocking::spawn_blocking(move || {
        let session = maker.session();
        session.add(&a("from spawn_blocking")).unwrap();
        session.commit().unwrap();
        session
            .block_on(async {
                let mut conn = session.async_session().connection().await?;
                conn.scalar::<i64>("SELECT count(*) FROM a", &[]).await
            })
            .unwrap()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn a_session_bound_to_a_connection_joins_its_transaction() {
    use session_core::SharedConnection;
    let engine = schema_engine("external", 10).await;
    // The "join an external transaction" test recipe.
    let outer = engine.begin().await.unwrap();
    let shared = SharedConnection::new(outer);
    let maker = async_sessionmaker(None);
    maker.configure(
        SessionOptions::new()
            .bind_connection(shared.clone())
            .join_transaction_mode(session_core::JoinTransactionMode::CreateSavepoint),
    );

    let session = maker.session();
    session.add(&a("inside the outer transaction")).unwrap();
    session.commit().await.unwrap(); // releases the session's savepoint only
    let rolled = maker.session();
    rolled.add(&a("rolled back to its savepoint")).unwrap();
    rolled.flush().await.unwrap();
    rolled.rollback().await.unwrap();

    let mut conn = shared.take().expect("the connection came back");
    assert!(conn.in_transaction(), "the outer transaction is still open");
    let n: i64 = conn.scalar("SELECT count(*) FROM a", &[]).await.unwrap();
    assert_eq!(
        n, 1,
        "the committed session's row is visible inside the outer transaction"
    );
    assert_eq!(count_rows(&engine, "a").await, 0, "nothing visible outside");
    conn.rollback().await.unwrap();
    conn.close().await;
    assert_eq!(count_rows(&engine, "a").await, 0);
}
