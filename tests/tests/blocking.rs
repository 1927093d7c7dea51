//! The blocking `Session` / `sessionmaker`: one shared runtime for the process (no thread per
//! session or factory), connections that outlive the sessions and factories that opened them,
//! and a clear error, without a panic, when called from async code.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use session_core::blocking::{Session, sessionmaker};
use session_core::tokio_postgres::error::SqlState;
use session_core::{
    AsyncSession, Engine, Error, GetOptions, IsolationLevel, Obj, ObjectState, RowLock,
    SessionConfig, TransactionOptions, create_async_engine, select,
};
use session_tests::model::{A, metadata};
use session_tests::support::{a, count_rows, fresh_database};

/// The tests of this file run one at a time, so that the thread count is not disturbed by a
/// neighbour's runtime.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// An engine (built with `builder`) on a fresh database with the test schema.
fn blocking_engine(prefix: &str, builder: impl FnOnce(String) -> Engine) -> Engine {
    let rt = current_thread_runtime();
    let url = rt.block_on(fresh_database(prefix));
    let md = metadata();
    let setup = create_async_engine(&url).unwrap();
    rt.block_on(setup.transaction(async |conn| md.create_all(conn).await))
        .unwrap();
    rt.block_on(setup.dispose());
    builder(url)
}

/// This process's thread count (`Threads:` in /proc/self/status).
fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn many_blocking_sessions_and_factories_do_not_grow_the_thread_count() {
    let _serial = serial();
    let engine = blocking_engine("blocking_threads", |url| create_async_engine(&url).unwrap());
    let warm = sessionmaker(engine.clone()).unwrap();
    warm.begin(|s| s.add(&a("warm"))).unwrap();
    let before = threads();
    let mut alive = Vec::new();
    for i in 0..40 {
        let maker = sessionmaker(engine.clone()).unwrap();
        let session = maker.session();
        session.add(&a(&format!("s{i}"))).unwrap();
        session.commit().unwrap();
        let own = Session::new(engine.clone()).unwrap();
        assert!(own.get::<A>(1).unwrap().is_some());
        own.rollback().unwrap(); // gives its connection back; the session stays alive
        alive.push((maker, session, own));
    }
    let after = threads();
    assert!(
        after <= before + 3,
        "40 factories and 80 live sessions took {} more threads ({before} -> {after})",
        after.saturating_sub(before)
    );
    drop(alive);
}

#[test]
fn sessions_and_connections_outlive_the_factory_that_made_them() {
    let _serial = serial();
    // One connection, never pinged on checkout: a dead one would be handed out as it is.
    let engine = blocking_engine("blocking_outlive", |url| {
        Engine::builder(url)
            .pool_size(1)
            .test_on_checkout(false)
            .build()
            .unwrap()
    });
    let session = {
        let maker = sessionmaker(engine.clone()).unwrap();
        maker.session()
    };
    // The factory is gone; its session still works.
    session.add(&a("after the factory")).unwrap();
    session.commit().unwrap();
    assert!(session.get::<A>(1).unwrap().is_some());
    session.close().unwrap();
    drop(session);
    // The connection that session opened is still driven: the next session reuses it.
    let next = Session::new(engine.clone()).unwrap();
    let got = next.get::<A>(1).unwrap().expect("row");
    assert_eq!(got.read().unwrap().data, "after the factory");
    drop(next);
    // So can async code on a runtime of its own.
    let rt = current_thread_runtime();
    assert_eq!(rt.block_on(count_rows(&engine, "a")), 1);
}

#[test]
fn blocking_calls_from_async_code_are_a_clear_error_without_a_panic() {
    let _serial = serial();
    let engine = blocking_engine("blocking_inside", |url| create_async_engine(&url).unwrap());
    let maker = sessionmaker(engine.clone()).unwrap();
    // Count panics: refusing must not go through one (a panic prints, or aborts the process
    // under panic=abort).
    static PANICS: AtomicUsize = AtomicUsize::new(0);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {
        PANICS.fetch_add(1, Ordering::SeqCst);
    }));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let m = maker.clone();
    let errors: Vec<String> = rt.block_on(async move {
        let session = m.session();
        session.add(&a("never flushed")).unwrap();
        let mut errors = vec![session.flush().unwrap_err().to_string()];
        errors.push(session.block_on(async {}).unwrap_err().to_string());
        // In a task on a worker.
        let m2 = m.clone();
        let in_task = tokio::spawn(async move { m2.session().commit().unwrap_err() });
        errors.push(in_task.await.unwrap().to_string());
        // tokio's own spawn_blocking keeps the runtime's context: refused too.
        let m3 = m.clone();
        let plain = tokio::task::spawn_blocking(move || m3.session().commit().unwrap_err());
        errors.push(plain.await.unwrap().to_string());
        errors
    });
    std::panic::set_hook(previous);
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "refused without a panic");
    for e in &errors {
        assert!(e.contains("use AsyncSession there"), "{e}");
        assert!(
            e.contains("session_core::blocking::spawn_blocking"),
            "names the way out: {e}"
        );
    }
    // The way out: session_core::blocking::spawn_blocking, or a plain thread.
    let m = maker.clone();
    let n = rt.block_on(async move {
        session_core::blocking::spawn_blocking(move || {
            let session = m.session();
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
        .unwrap()
    });
    assert_eq!(n, 1);
    rt.shutdown_timeout(Duration::from_secs(5));
    // Outside any runtime it just works.
    maker.begin(|s| s.add(&a("plain thread"))).unwrap();
    let rt = current_thread_runtime();
    assert_eq!(rt.block_on(count_rows(&engine, "a")), 2);
}

#[test]
fn work_after_an_explicit_commit_inside_a_blocking_transaction_block_is_refused() {
    let _serial = serial();
    let engine = blocking_engine("blocking_block", |url| {
        Engine::builder(url).build().unwrap()
    });
    let maker = sessionmaker(engine.clone()).unwrap();
    let result: Result<(), session_core::Error> = maker.begin(|s| {
        s.add(&a("inside"))?;
        s.commit()?;
        let err = s.add(&a("after-commit")).expect_err("add after commit");
        assert!(
            err.to_string()
                .starts_with("Can't operate on closed transaction inside context manager."),
            "{err}"
        );
        Ok(())
    });
    result.unwrap();
    let session = maker.session();
    let result: Result<(), session_core::Error> = session.transaction(|s| {
        s.add(&a("rolled"))?;
        s.rollback()?;
        assert!(s.add(&a("after-rollback")).is_err());
        Ok(())
    });
    result.unwrap();
    let rt = current_thread_runtime();
    assert_eq!(
        rt.block_on(count_rows(&engine, "a")),
        1,
        "only 'inside' is stored"
    );
}

/// The committed rows of `a`, counted by a blocking session of its own (a connection made
/// on a test runtime would have its background task there, stalled between `block_on`s,
/// once the pool hands it to a blocking session).
fn committed_rows(engine: &Engine) -> i64 {
    let probe = Session::new(engine.clone()).unwrap();
    let n = probe
        .connection()
        .unwrap()
        .scalar("SELECT count(*) FROM a", &[])
        .unwrap();
    probe.close().unwrap();
    n
}

/// The `data` of every `a` row, in id order, as the session's own transaction sees them.
fn data_seen(session: &Session) -> Vec<String> {
    let mut conn = session.connection().unwrap();
    conn.query("SELECT data FROM a ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn blocking_transactions_savepoints_connections_and_closures() {
    let _serial = serial();
    let engine = blocking_engine("blocking_tx", |url| create_async_engine(&url).unwrap());
    let session = Session::new(engine.clone()).unwrap();
    // begin(): a blocking handle; commit() blocks.
    let tx = session.begin().unwrap();
    assert!(!tx.nested() && tx.is_active(), "{tx:?}");
    session.add(&a("begun")).unwrap();
    let err = session.begin().unwrap_err();
    assert_eq!(
        err.to_string(),
        "A transaction is already begun on this Session."
    );
    tx.commit().unwrap();
    assert!(!session.in_transaction());
    assert_eq!(committed_rows(&engine), 1);
    // begin_nested(): its rollback undoes the savepoint only.
    session.add(&a("outer")).unwrap();
    let savepoint = session.begin_nested().unwrap();
    assert!(savepoint.nested());
    assert!(session.in_nested_transaction());
    assert_eq!(session.get_nested_transaction().unwrap().level, 2);
    assert_eq!(session.get_transaction().unwrap().level, 1);
    session.add(&a("in savepoint")).unwrap();
    session.flush().unwrap();
    savepoint.rollback().unwrap();
    assert!(session.in_transaction() && !session.in_nested_transaction());
    // nested_transaction(): released on Ok, rolled back on Err, the outer one stays open.
    let kept: Result<(), Error> = session.nested_transaction(|s| s.add(&a("kept")));
    kept.unwrap();
    let undone: Result<(), Error> = session.nested_transaction(|s| {
        s.add(&a("undone"))?;
        s.flush()?;
        assert_eq!(data_seen(s).last().map(String::as_str), Some("undone"));
        Err(Error::InvalidRequest("undo it".into()))
    });
    assert!(matches!(undone, Err(Error::InvalidRequest(m)) if m == "undo it"));
    assert!(session.in_transaction() && !session.in_nested_transaction());
    assert_eq!(data_seen(&session), ["begun", "outer", "kept"]);
    assert_eq!(committed_rows(&engine), 1, "not committed yet");
    // connection(): blocking calls in the session's transaction.
    let mut conn = session.connection().unwrap();
    assert_eq!(
        conn.execute("UPDATE a SET data = 'kept!' WHERE data = $1", &[&"kept"])
            .unwrap(),
        1
    );
    conn.batch_execute("SELECT 1; SELECT 2").unwrap();
    assert!(
        conn.query_opt("SELECT 1 WHERE false", &[])
            .unwrap()
            .is_none()
    );
    let n: i64 = conn
        .query_one("SELECT count(*) FROM a", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 3);
    assert!(conn.engine().url().contains("blocking_tx"), "{conn:?}");
    drop(conn);
    session.commit().unwrap();
    assert_eq!(committed_rows(&engine), 3);
    // begin_with / transaction_with: the options reach the server.
    let serializable = || TransactionOptions::new().isolation_level(IsolationLevel::Serializable);
    let tx = session.begin_with(serializable()).unwrap();
    let level: String = session
        .connection()
        .unwrap()
        .scalar("SHOW transaction_isolation", &[])
        .unwrap();
    assert_eq!(level, "serializable");
    tx.rollback().unwrap();
    let level: Result<String, Error> = session.transaction_with(serializable(), |s| {
        s.connection()?.scalar("SHOW transaction_isolation", &[])
    });
    assert_eq!(level.unwrap(), "serializable");
    // A handle whose transaction ended otherwise acts on nothing.
    let tx = session.begin().unwrap();
    session.rollback().unwrap();
    assert_eq!(
        tx.commit().unwrap_err().to_string(),
        "This transaction is closed"
    );
    // scope(): runs the body, then closes (never commits).
    let found = session
        .scope(|s| {
            s.add(&a("never committed")).unwrap();
            s.get::<A>(1).unwrap().is_some()
        })
        .unwrap();
    assert!(found);
    assert!(session.is_empty() && !session.in_transaction());
    assert_eq!(committed_rows(&engine), 3);
}

#[test]
fn blocking_session_has_the_async_surface_on_postgres() {
    let _serial = serial();
    let engine = blocking_engine("blocking_surface", |url| create_async_engine(&url).unwrap());
    let session = Session::with_config(SessionConfig {
        bind: Some(engine.clone()),
        ..SessionConfig::default()
    })
    .unwrap();
    assert_eq!(session.id(), session.async_session().id());
    // Attributes and their setters.
    assert!(session.bind().is_some());
    assert!(session.get_bind(None).is_ok() && session.get_bind_for::<A>().is_ok());
    session.set_bind(None);
    assert!(session.get_bind(None).is_err());
    session.set_bind(Some(engine.clone()));
    session.update_info(|info| {
        info.insert("k".into(), "v".into());
    });
    assert_eq!(session.info().get("k").map(String::as_str), Some("v"));
    session.set_info(Default::default());
    assert!(session.info().is_empty());
    assert!(session.autoflush() && session.is_active());
    session.set_autoflush(false);
    assert!(!session.autoflush());
    session.set_autoflush(true);
    {
        let _guard = session.no_autoflush();
        assert!(!session.autoflush());
    }
    assert!(session.autoflush());
    // Objects: add_any, the collections, iter, len, identity keys.
    for d in ["one", "two", "three"] {
        session.add_any(&a(d).erase()).unwrap();
    }
    assert_eq!(session.new_objects().len(), 3);
    assert_eq!(session.iter().count(), 3);
    session.commit().unwrap();
    assert!(
        session.is_empty(),
        "the identity map is weak: nobody holds those objects"
    );
    let one = session.get_one::<A>(1).unwrap();
    assert_eq!(session.len(), 1);
    assert_eq!(Session::identity_key::<A>(1).key, 1);
    assert_eq!(
        Session::object_session(&one).map(|s| s.id()),
        Some(session.id())
    );
    assert_eq!(session.identity_map().len(), 1);
    // execute / scalars / scalar / stream / stream_scalars.
    let all = session
        .execute(select::<A>().order_by(A::C.id.asc()))
        .unwrap()
        .all();
    assert_eq!(all.len(), 3);
    assert!(all[0].ptr_eq(&one), "through the identity map");
    let data: Vec<String> = session
        .scalars(select::<A>().order_by(A::C.id.desc()))
        .unwrap()
        .all()
        .iter()
        .map(|o| o.read().unwrap().data.clone())
        .collect();
    assert_eq!(data, ["three", "two", "one"]);
    let first = session
        .scalar(select::<A>().filter(A::C.data.eq("two")))
        .unwrap()
        .unwrap();
    assert_eq!(first.read().unwrap().id, 2);
    let streamed: Vec<Obj<A>> = session
        .stream(select::<A>().order_by(A::C.id.asc()))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(streamed.len(), 3);
    assert!(streamed[0].ptr_eq(&one));
    let mut it = session.stream_scalars(select::<A>()).unwrap();
    assert!(it.next().unwrap().is_ok());
    drop(it); // dropping a stream early is safe
    // Iterated from async code: one clear error, then the end.
    let mut it = session.stream_scalars(select::<A>()).unwrap();
    let (first, second) = current_thread_runtime().block_on(async { (it.next(), it.next()) });
    assert!(
        matches!(&first, Some(Err(Error::InvalidRequest(m))) if m.contains("use AsyncSession there")),
        "{first:?}"
    );
    assert!(second.is_none());
    drop(it);
    // expire_all / expunge_all / set_identity_map.
    session.expire_all();
    assert!(one.read().is_err(), "expired");
    session.refresh(&one, &[]).unwrap();
    session.expunge_all();
    assert!(session.is_empty());
    assert_eq!(one.state(), ObjectState::Detached);
    session.set_identity_map(vec![one.erase()]).unwrap();
    assert_eq!(session.len(), 1);
    // get_with / get_one_with / refresh_with: the row lock is held against another session.
    let other = Session::new(engine.clone()).unwrap();
    let nowait = || GetOptions::new().with_for_update(RowLock::update().nowait());
    let locked = session.get_one_with::<A>(1, nowait()).unwrap();
    assert!(locked.ptr_eq(&one));
    let err = other.get_with::<A>(1, nowait()).unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::LOCK_NOT_AVAILABLE), "{err:?}");
    other.rollback().unwrap();
    let two = other.get_one::<A>(2).unwrap();
    other
        .refresh_with(&two, &[], RowLock::update().nowait())
        .unwrap();
    let err = session.get_with::<A>(2, nowait()).unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::LOCK_NOT_AVAILABLE), "{err:?}");
    session.rollback().unwrap();
    other.rollback().unwrap();
    session.set_autoflush(false);
    let one = session.get_one::<A>(1).unwrap();
    one.write().unwrap().data = "unflushed".into();
    session
        .get_one_with::<A>(1, GetOptions::new().populate_existing())
        .unwrap();
    assert_eq!(
        one.read().unwrap().data,
        "one",
        "populate_existing discards it"
    );
    session.set_autoflush(true);
    // merge_all / delete_all / make_transient.
    let sources: Vec<Obj<A>> = (1..=2)
        .map(|id| {
            Obj::new(A {
                id,
                data: format!("merged {id}"),
                ..A::default()
            })
        })
        .collect();
    let merged = session.merge_all(&sources).unwrap();
    assert!(merged[0].ptr_eq(&one) && session.dirty().len() == 2);
    session.commit().unwrap();
    let three = session.get_one::<A>(3).unwrap();
    session.delete_all([&merged[0], &three]).unwrap();
    assert_eq!(session.deleted().len(), 2);
    session.commit().unwrap();
    assert_eq!(committed_rows(&engine), 1);
    Session::make_transient(&three);
    assert_eq!(three.state(), ObjectState::Transient);
    // reset / invalidate / close_all give the connections back; the session stays usable.
    assert!(session.get::<A>(2).unwrap().is_some());
    session.reset().unwrap();
    assert!(!session.in_transaction() && session.is_empty());
    assert!(session.get::<A>(2).unwrap().is_some());
    session.invalidate().unwrap();
    assert!(!session.in_transaction());
    assert!(other.get::<A>(2).unwrap().is_some());
    Session::close_all().unwrap();
    assert!(!other.in_transaction() && other.is_empty());
    // from_async: the blocking face of a session built by the async builder.
    let built = Session::from_async(AsyncSession::builder().bind(engine.clone()).build()).unwrap();
    assert_eq!(
        built.get_one::<A>(2).unwrap().read().unwrap().data,
        "merged 2"
    );
}

#[test]
fn the_blocking_factorys_listeners_hear_its_sessions() {
    let _serial = serial();
    let engine = blocking_engine("blocking_events", |url| {
        Engine::builder(url).pool_size(2).build().unwrap()
    });
    let maker = sessionmaker(engine.clone()).unwrap();
    let commits = std::sync::Arc::new(AtomicUsize::new(0));
    let heard = commits.clone();
    maker.events().after_commit(move |_| {
        heard.fetch_add(1, Ordering::SeqCst);
        Ok(())
    });
    maker.events().before_update::<A>(|a| {
        a.data.push_str(" (stamped)");
        Ok(())
    });
    let s = maker.session();
    let obj = a("x");
    s.add(&obj).unwrap();
    s.commit().unwrap();
    s.refresh(&obj, &[]).unwrap();
    obj.write().unwrap().data = "y".into();
    s.commit().unwrap();
    assert_eq!(commits.load(Ordering::SeqCst), 2);
    // Another factory's sessions are not heard.
    let other = sessionmaker(engine.clone()).unwrap().session();
    other.commit().unwrap();
    assert_eq!(commits.load(Ordering::SeqCst), 2);
    let row = maker
        .session()
        .scalars(select::<A>())
        .unwrap()
        .one()
        .unwrap();
    assert_eq!(row.read().unwrap().data, "y (stamped)");
}
