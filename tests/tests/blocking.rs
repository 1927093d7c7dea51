//! The blocking `Session` / `sessionmaker`: one shared runtime for the process (no thread per
//! session or factory), connections that outlive the sessions and factories that opened them,
//! and a clear error, without a panic, when called from async code.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use session_core::blocking::{Session, sessionmaker};
use session_core::{Engine, create_async_engine};
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
