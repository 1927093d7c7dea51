//! The blocking `scoped_session` proxies the whole blocking `Session` (see proxy_blocking.rs
//! for the member lists): transactions, savepoints, the connection, queries, streams and
//! the get/refresh options run on the current thread's session, against a real PostgreSQL.

use std::sync::Arc;

use session_core::blocking::{Session, sessionmaker};
use session_core::tokio_postgres::error::SqlState;
use session_core::{
    Error, GetOptions, IsolationLevel, Obj, RowLock, TransactionOptions, create_async_engine,
    select,
};
use session_scoped::{ScopedSession, scoped_session};
use session_tests::model::{A, metadata};
use session_tests::support::{a, fresh_database};

/// A blocking scoped session on a fresh database with the test schema.
fn scoped(prefix: &str) -> ScopedSession {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = rt.block_on(fresh_database(prefix));
    let setup = create_async_engine(&url).unwrap();
    let md = metadata();
    rt.block_on(setup.transaction(async |conn| md.create_all(conn).await))
        .unwrap();
    rt.block_on(setup.dispose());
    drop(rt);
    scoped_session(sessionmaker(create_async_engine(&url).unwrap()).unwrap())
}

/// The committed `data` of `a`, in id order, read by a session of its own.
fn committed(scoped: &ScopedSession) -> Vec<String> {
    let probe = scoped.session_factory.session();
    let mut conn = probe.connection().unwrap();
    let rows = conn.query("SELECT data FROM a ORDER BY id", &[]).unwrap();
    drop(conn);
    probe.close().unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

#[test]
fn the_blocking_scoped_session_runs_the_whole_blocking_api_on_the_threads_session() {
    let scoped = scoped("scoped_blocking_api");
    // Transactions and savepoints, by handle and by closure.
    let tx = scoped.begin().unwrap();
    scoped.add_all([&a("one"), &a("two"), &a("three")]).unwrap();
    let savepoint = scoped.begin_nested().unwrap();
    assert!(scoped.in_nested_transaction() && savepoint.nested());
    scoped.add(&a("rolled back")).unwrap();
    savepoint.rollback().unwrap();
    let undone: Result<(), Error> = scoped.nested_transaction(|s| {
        s.add(&a("undone too"))?;
        s.flush()?;
        Err(Error::InvalidRequest("no".into()))
    });
    assert!(undone.is_err() && scoped.in_transaction());
    tx.commit().unwrap();
    assert_eq!(committed(&scoped), ["one", "two", "three"]);
    let level: Result<String, Error> = scoped.transaction_with(
        TransactionOptions::new().isolation_level(IsolationLevel::Serializable),
        |s| s.connection()?.scalar("SHOW transaction_isolation", &[]),
    );
    assert_eq!(level.unwrap(), "serializable");
    let level: String = {
        let tx = scoped
            .begin_with(TransactionOptions::new().isolation_level(IsolationLevel::RepeatableRead))
            .unwrap();
        let level = scoped
            .connection()
            .unwrap()
            .scalar("SHOW transaction_isolation", &[])
            .unwrap();
        tx.rollback().unwrap();
        level
    };
    assert_eq!(level, "repeatable read");
    // Queries, streams and the identity map of the thread's session.
    let one = scoped
        .scalar(select::<A>().filter(A::C.data.eq("one")))
        .unwrap()
        .unwrap();
    assert!(scoped.call().contains(&one));
    assert_eq!(
        Session::object_session(&one).map(|s| s.id()),
        Some(scoped.id())
    );
    let streamed: Vec<Obj<A>> = scoped
        .stream_scalars(select::<A>().order_by(A::C.id.asc()))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(streamed[0].ptr_eq(&one));
    assert_eq!(scoped.execute(select::<A>()).unwrap().all().len(), 3);
    assert_eq!(scoped.identity_map().len(), 3);
    scoped.expire_all();
    assert!(one.read().is_err());
    // get/refresh options: a row lock held by this thread's session against another thread's.
    let nowait = || GetOptions::new().with_for_update(RowLock::update().nowait());
    let locked = scoped.get_one_with::<A>(1, nowait()).unwrap();
    assert!(locked.ptr_eq(&one));
    let other = {
        let scoped = Arc::new(scoped);
        let theirs = scoped.clone();
        let code = std::thread::spawn(move || {
            let err = theirs.get_with::<A>(1, nowait()).unwrap_err();
            theirs.remove().unwrap();
            err.code().cloned()
        })
        .join()
        .unwrap();
        assert_eq!(code, Some(SqlState::LOCK_NOT_AVAILABLE));
        Arc::try_unwrap(scoped).unwrap()
    };
    let scoped = other;
    scoped.refresh_with(&one, &[], RowLock::update()).unwrap();
    // merge_all / delete_all through the proxy.
    let merged = scoped
        .merge_all(&[Obj::new(A {
            id: 2,
            data: "two*".into(),
            ..A::default()
        })])
        .unwrap();
    assert_eq!(scoped.dirty().len(), 1);
    let three = scoped.get_one::<A>(3).unwrap();
    scoped.delete_all([&three]).unwrap();
    scoped.commit().unwrap();
    assert_eq!(committed(&scoped), ["one", "two*"]);
    drop(merged);
    // scope(), reset() and remove().
    let n = scoped.scope(|s| s.len()).unwrap();
    assert!(n >= 1);
    assert!(scoped.is_empty());
    scoped.reset().unwrap();
    scoped.remove().unwrap();
    assert_eq!(scoped.registered(), 0);
}
