//! Scoped sessions (SQLAlchemy's test_scoping, ported) against a real PostgreSQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use session_core::{
    Error, Obj, ObjectState, SessionOptions, async_sessionmaker, create_async_engine,
};
use session_scoped::{ScopedRegistry, async_scoped_session, scope};
use session_tests::model::{A, metadata};
use session_tests::support::{
    LogCapture, a, fresh_database, idle_in_transaction, poll_then_drop, schema_engine,
    wait_pool_idle,
};

#[test]
fn registry_follows_sqlalchemys_verified_sequence() {
    let key = Arc::new(AtomicUsize::new(0));
    let made = Arc::new(AtomicUsize::new(0));
    let (k, m) = (key.clone(), made.clone());
    let r = ScopedRegistry::new(
        move || format!("value{}", m.fetch_add(1, Ordering::SeqCst)),
        move || k.load(Ordering::SeqCst),
    );
    assert!(Arc::ptr_eq(&r.call(), &r.call()));
    assert_eq!(made.load(Ordering::SeqCst), 1);
    assert!(r.has());
    key.store(1, Ordering::SeqCst);
    assert!(!r.has());
    assert_eq!(*r.call(), "value1");
    r.set("X".into());
    assert_eq!(*r.call(), "X");
    assert!(r.clear().is_some());
    assert!(!r.has());
    assert!(r.clear().is_none(), "a second clear does nothing");
    assert_eq!(r.len(), 1, "scope 0 still holds its value");

    let t = ScopedRegistry::thread_local(|| std::thread::current().id());
    let here = *t.call();
    let there = std::thread::spawn({
        let t = Arc::new(t);
        move || *t.call()
    })
    .join()
    .unwrap();
    assert_ne!(here, there, "one value per thread");
}

#[tokio::test]
async fn call_with_options_configure_and_remove() {
    let engine = schema_engine("scoped_cfg", 4).await;
    let scoped = async_scoped_session(async_sessionmaker(engine.clone()), scope::current_task);
    let first = scoped
        .call_with(SessionOptions::new().autoflush(false))
        .unwrap();
    assert!(!first.autoflush());
    assert!(
        Arc::ptr_eq(&first, &scoped.call()),
        "same scope, same session"
    );
    let err = scoped
        .call_with(SessionOptions::new().autoflush(true))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Scoped session is already present; no new arguments may be specified."
    );

    let capture = LogCapture::default();
    {
        let _g = capture.install("session_scoped=warn");
        scoped.configure(SessionOptions::new().expire_on_commit(false));
    }
    assert!(
        capture.text().contains(
            "At least one scoped session is already present.  configure() can not affect \
             sessions that have already been created."
        ),
        "{}",
        capture.text()
    );
    assert!(!first.autoflush(), "the existing session keeps its options");
    scoped.remove().await;
    assert!(!scoped.has());
    let second = scoped.call();
    assert!(
        !Arc::ptr_eq(&first, &second),
        "a new session after remove()"
    );
    assert_eq!(scoped.registered(), 1);
    scoped.remove().await;
    scoped.remove().await; // nothing present: a no-op
    assert_eq!(scoped.registered(), 0);
}

#[tokio::test]
async fn merge_all_delete_all_and_get_options_through_the_scoped_session() {
    use session_core::{AsyncSession, GetOptions, RowLock};
    let engine = schema_engine("scoped_21", 4).await;
    let scoped = async_scoped_session(async_sessionmaker(engine.clone()), scope::task_scope);
    scoped
        .scope(async {
            scoped.add_all([&a("one"), &a("two")]).unwrap();
            scoped.commit().await.unwrap();
            let sources = [1, 2].map(|id| {
                Obj::new(A {
                    id,
                    data: format!("merged {id}"),
                    ..A::default()
                })
            });
            let merged = scoped.merge_all(&sources).await.unwrap();
            assert_eq!(merged.len(), 2);
            assert_eq!(scoped.dirty().len(), 2, "one autoflush, before the first");
            scoped.commit().await.unwrap();
            // get_with: a NOWAIT row lock held by the scope's session.
            let nowait = || GetOptions::new().with_for_update(RowLock::update().nowait());
            let one = scoped.get_one_with::<A>(1, nowait()).await.unwrap();
            assert_eq!(one.read().unwrap().data, "merged 1");
            let other = AsyncSession::new(engine.clone());
            let err = other.get_with::<A>(1, nowait()).await.unwrap_err();
            assert_eq!(
                err.code(),
                Some(&session_core::tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE)
            );
            other.rollback().await.unwrap();
            scoped
                .refresh_with(&one, &[], RowLock::update())
                .await
                .unwrap();
            let two = scoped
                .get_with::<A>(2, GetOptions::new().populate_existing())
                .await
                .unwrap()
                .unwrap();
            scoped.delete_all([&one, &two]).unwrap();
            assert_eq!(scoped.deleted().len(), 2);
            scoped.commit().await.unwrap();
        })
        .await;
    let mut conn = engine.connect().await.unwrap();
    let left: i64 = conn.scalar("SELECT count(*) FROM a", &[]).await.unwrap();
    assert_eq!(left, 0);
    conn.close().await;
}

#[tokio::test]
async fn one_scope_begin_add_flush_connection_count_delete() {
    // SQLAlchemy's test_scoping flow, through the generated proxy members.
    let engine = schema_engine("scoped_flow", 4).await;
    let scoped = async_scoped_session(async_sessionmaker(engine.clone()), scope::task_scope);
    scoped
        .scope(async {
            let tx = scoped.begin().await?;
            let obj = a("in scope");
            scoped.add(&obj)?;
            scoped.flush().await?;
            let n: i64 = {
                let mut conn = scoped.connection().await?;
                conn.scalar("SELECT count(*) FROM a", &[]).await?
            };
            assert_eq!(n, 1);
            let n: i64 = scoped
                .scalar(session_core::text("SELECT count(*) FROM a"))
                .await?
                .get()?;
            assert_eq!(n, 1);
            scoped.delete(&obj)?;
            scoped.flush().await?;
            let n: i64 = scoped
                .scalar(session_core::text("SELECT count(*) FROM a"))
                .await?
                .get()?;
            assert_eq!(n, 0);
            tx.commit().await?;
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    assert_eq!(scoped.registered(), 0);
}

#[tokio::test]
async fn every_proxied_member_works_on_the_current_scopes_session() {
    use session_core::{AsyncSession, select};
    let engine = schema_engine("scoped_members", 4).await;
    let scoped = async_scoped_session(async_sessionmaker(engine.clone()), scope::current_task);
    // Touching an attribute creates the scope's session, as in SQLAlchemy.
    assert!(!scoped.has());
    assert!(scoped.autoflush());
    assert!(scoped.has());
    let session = scoped.call();

    // Attributes and their setters reach the same session.
    scoped.set_autoflush(false);
    assert!(!session.autoflush());
    scoped.set_autoflush(true);
    assert!(scoped.bind().is_some());
    assert!(scoped.is_active());
    assert!(scoped.info().is_empty());
    {
        let _guard = scoped.no_autoflush();
        assert!(!session.autoflush());
    }
    assert!(session.autoflush());

    let objs: Vec<Obj<A>> = (0..3).map(|i| a(&format!("m{i}"))).collect();
    scoped.add_all(&objs).unwrap();
    assert_eq!(scoped.new_objects().len(), 3);
    assert!(scoped.contains(&objs[0]));
    assert_eq!(scoped.iter().count(), 3);
    scoped.commit().await.unwrap();
    assert_eq!(scoped.identity_map().len(), 3);
    scoped.refresh(&objs[0], &[]).await.unwrap();
    objs[0].write().unwrap().data = "changed".into();
    assert_eq!(scoped.dirty().len(), 1);
    assert!(scoped.is_modified(&objs[0]));
    scoped.expire(&objs[1], &[]).unwrap();
    assert!(objs[1].is_expired());
    let got = scoped.get_one::<A>(2).await.unwrap();
    assert!(got.ptr_eq(&objs[1]));
    assert!(scoped.get::<A>(99).await.unwrap().is_none());
    let all = scoped.scalars(select::<A>()).await.unwrap().all();
    assert_eq!(all.len(), 3);
    let first = scoped
        .execute(select::<A>().filter(A::C.id.eq(1)))
        .await
        .unwrap()
        .one()
        .unwrap();
    assert!(first.ptr_eq(&objs[0]));
    let mut stream = scoped.stream_scalars(select::<A>()).await.unwrap();
    let mut n = 0;
    while let Some(o) = futures::StreamExt::next(&mut stream).await {
        o.unwrap();
        n += 1;
    }
    drop(stream);
    assert_eq!(n, 3);
    let merged = scoped
        .merge(&Obj::new(A {
            id: 3,
            data: "merged".into(),
            ..A::default()
        }))
        .await
        .unwrap();
    assert!(merged.ptr_eq(&objs[2]));
    scoped.delete(&objs[2]).unwrap();
    assert_eq!(scoped.deleted().len(), 1);
    let sp = scoped.begin_nested().await.unwrap();
    sp.rollback().await.unwrap();
    scoped.expunge(&objs[1]).unwrap();
    assert!(!scoped.contains(&objs[1]));
    scoped.expire_all();
    scoped.rollback().await.unwrap();
    scoped.expunge_all();
    assert!(scoped.identity_map().is_empty());
    assert!(scoped.get_bind(None).is_ok());

    // Classmethods call AsyncSession directly.
    type Scoped = session_scoped::AsyncScopedSession<AsyncSession, session_scoped::ScopeKey>;
    assert_eq!(Scoped::identity_key::<A>(5).key, 5);
    let mine = scoped.get_one::<A>(1).await.unwrap();
    assert_eq!(Scoped::object_session(&mine).unwrap().id(), session.id());
    // Scoped::close_all() is checked in tests/tests/close_all.rs (it closes every session of
    // the process, so it runs alone).
    scoped.expunge(&mine).unwrap();
    assert!(!scoped.contains(&mine));
    scoped.reset().await;
    scoped.aclose().await;
    scoped.invalidate().await;
    scoped.close().await;
    scoped.remove().await;
    assert_eq!(scoped.registered(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_task_scopes_leave_nothing_behind() {
    let engine = schema_engine("scoped_many", 10).await;
    let scoped = Arc::new(async_scoped_session(
        async_sessionmaker(engine.clone()).expire_on_commit(false),
        scope::task_scope,
    ));
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let scoped = scoped.clone();
        tasks.push(tokio::spawn(async move {
            scoped
                .scope(async {
                    let session = scoped.proxied();
                    session.add(&a(&format!("task {i}")))?;
                    session.commit().await
                })
                .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(scoped.registered(), 0, "every scope removed its session");
    wait_pool_idle(&engine).await;
    assert!(engine.status().idle <= 10);
    assert_eq!(idle_in_transaction(&engine).await, 0);
    let mut conn = engine.connect().await.unwrap();
    let n: i64 = conn.scalar("SELECT count(*) FROM a", &[]).await.unwrap();
    assert_eq!(n, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_scope_without_remove_keeps_its_entry() {
    let engine = schema_engine("scoped_leak", 4).await;
    let scoped = Arc::new(async_scoped_session(
        async_sessionmaker(engine.clone()),
        scope::current_task,
    ));
    let s = scoped.clone();
    tokio::spawn(async move {
        s.call().add(&a("forgot remove()")).unwrap();
    })
    .await
    .unwrap();
    // As in SQLAlchemy: the finished task's session stays registered until someone removes it.
    assert_eq!(scoped.registered(), 1);
    let s = scoped.clone();
    tokio::spawn(async move {
        s.call();
        s.remove().await;
    })
    .await
    .unwrap();
    assert_eq!(
        scoped.registered(),
        1,
        "remove() only reaches its own task's entry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_task_cancelled_mid_flush_leaves_the_pool_clean() {
    let engine = schema_engine("scoped_cancel", 4).await;
    let scoped = async_scoped_session(async_sessionmaker(engine.clone()), scope::task_scope);
    for polls in 0..40 {
        let done = poll_then_drop(
            scoped.scope(async {
                let session = scoped.proxied();
                let objs: Vec<Obj<A>> = (0..200).map(|i| a(&format!("{i}"))).collect();
                session.add_all(&objs)?;
                session.flush().await?;
                Ok::<_, Error>(objs)
            }),
            polls,
        )
        .await;
        assert_eq!(
            scoped.registered(),
            0,
            "the dropped scope removed its session"
        );
        wait_pool_idle(&engine).await;
        assert_eq!(idle_in_transaction(&engine).await, 0, "after {polls} polls");
        if let Some(objs) = done {
            // Completed: flushed but never committed, then closed by the scope.
            assert_eq!(objs.unwrap()[0].state(), ObjectState::Detached);
            break;
        }
    }
    let mut conn = engine.connect().await.unwrap();
    let n: i64 = conn.scalar("SELECT count(*) FROM a", &[]).await.unwrap();
    assert_eq!(n, 0, "nothing was committed");
}

#[test]
fn blocking_scoped_session_is_thread_local() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = rt.block_on(fresh_database("scoped_blocking"));
    let setup = create_async_engine(&url).unwrap();
    let md = metadata();
    rt.block_on(setup.transaction(async |conn| md.create_all(conn).await))
        .unwrap();
    drop(rt);
    let maker = session_core::blocking::sessionmaker(create_async_engine(&url).unwrap()).unwrap();
    let scoped = Arc::new(session_scoped::scoped_session(maker));
    let mine = scoped.call();
    // The generated blocking proxies run on this thread's session.
    scoped.add(&a("main thread")).unwrap();
    assert_eq!(scoped.new_objects().len(), 1);
    assert!(scoped.in_transaction());
    let other = {
        let scoped = scoped.clone();
        std::thread::spawn(move || {
            let s = scoped.call();
            s.add(&a("other thread")).unwrap();
            s.commit().unwrap();
            scoped.remove().unwrap();
            Arc::as_ptr(&s) as usize
        })
        .join()
        .unwrap()
    };
    assert_ne!(other, Arc::as_ptr(&mine) as usize);
    scoped.commit().unwrap();
    assert!(scoped.get::<A>(1).unwrap().is_some() || scoped.get::<A>(2).unwrap().is_some());
    assert_eq!(mine.new_objects().len(), 0);
    scoped.remove().unwrap();
    assert_eq!(scoped.registered(), 0);
}

/// The text of a task's panic.
fn panic_text(err: tokio::task::JoinError) -> String {
    let payload = err.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_spawned_inside_a_scope_leaks_no_session() {
    let engine = schema_engine("scoped_spawned", 4).await;
    let scoped = Arc::new(async_scoped_session(
        async_sessionmaker(engine.clone()),
        scope::task_scope,
    ));
    // A bare tokio::spawn inside a scope does not inherit it. Before, the task fell back to its
    // task id and its session (here with a transaction open) stayed registered for ever.
    let s = scoped.clone();
    let joined = scoped
        .scope(async move {
            tokio::spawn(async move {
                s.add(&a("spawned without a scope"))?;
                s.flush().await
            })
            .await
        })
        .await;
    assert_eq!(scoped.registered(), 0, "no entry left for the ended task");
    wait_pool_idle(&engine).await;
    assert_eq!(engine.status().checked_out, 0);
    assert_eq!(idle_in_transaction(&engine).await, 0);
    // It is refused, saying what to do instead.
    let text = panic_text(joined.expect_err("refused"));
    assert!(text.contains("scoped.spawn"), "{text}");

    // scoped.spawn: each task gets its own session (as with current_task), closed and removed
    // when the task ends, even with a transaction left open or by a panic.
    let s = scoped.clone();
    scoped
        .scope(async {
            let outer = scoped.call();
            let mut tasks = Vec::new();
            for i in 0..20 {
                let s = s.clone();
                tasks.push(scoped.spawn(async move {
                    let mine = s.call();
                    assert!(Arc::ptr_eq(&mine, &s.call()), "one session per task");
                    s.add(&a(&format!("spawned {i}")))?;
                    s.flush().await?; // left uncommitted: rolled back at the task's end
                    if i == 7 {
                        panic!("task 7 fails");
                    }
                    Ok::<_, Error>(Arc::as_ptr(&mine) as usize)
                }));
            }
            let mut seen = std::collections::HashSet::new();
            for (i, task) in tasks.into_iter().enumerate() {
                match task.await {
                    Ok(session) => {
                        let session = session.unwrap();
                        assert_ne!(session, Arc::as_ptr(&outer) as usize);
                        seen.insert(session);
                    }
                    Err(e) => assert_eq!(i, 7, "{e}"),
                }
            }
            assert_eq!(
                scoped.registered(),
                1,
                "only the enclosing scope's session is left"
            );
        })
        .await;
    assert_eq!(scoped.registered(), 0);
    wait_pool_idle(&engine).await;
    assert_eq!(engine.status().checked_out, 0);
    assert_eq!(idle_in_transaction(&engine).await, 0);
    // With current_task too: the spawned task's entry goes with it.
    let by_task = Arc::new(async_scoped_session(
        async_sessionmaker(engine.clone()),
        scope::current_task,
    ));
    let s = by_task.clone();
    by_task
        .spawn(async move { s.add(&a("by task")) })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_task.registered(), 0);
}

#[tokio::test]
async fn scope_closes_only_the_session_it_made() {
    let engine = schema_engine("scoped_own", 4).await;
    let scoped = async_scoped_session(async_sessionmaker(engine.clone()), scope::current_task);
    // The enclosing code's session (keyed by this thread: no task here).
    let outer = scoped.call();
    outer.add(&a("pending outside the scope")).unwrap();
    scoped
        .scope(async {
            // Same key as outside: the same session, which the scope did not make.
            assert!(Arc::ptr_eq(&scoped.call(), &outer));
        })
        .await;
    assert!(scoped.has(), "the enclosing session is still registered");
    assert!(Arc::ptr_eq(&scoped.call(), &outer));
    assert_eq!(outer.new_objects().len(), 1, "and was not closed");
    // Nor when the scope is dropped half-way.
    let dropped = poll_then_drop(
        scoped.scope(async {
            scoped.call();
            std::future::pending::<()>().await
        }),
        2,
    )
    .await;
    assert!(dropped.is_none());
    assert!(Arc::ptr_eq(&scoped.call(), &outer));
    assert_eq!(outer.new_objects().len(), 1);

    // A session the scope made is removed and closed at its end.
    scoped.remove().await;
    let made = scoped
        .scope(async {
            let session = scoped.call();
            session.add(&a("made in the scope")).unwrap();
            session
        })
        .await;
    assert!(!scoped.has());
    assert!(made.new_objects().is_empty(), "closed");
    // Also when a session the scope found was replaced inside it.
    let first = scoped.call();
    let replaced = scoped
        .scope(async {
            scoped.remove().await;
            scoped.call()
        })
        .await;
    assert!(!Arc::ptr_eq(&first, &replaced));
    assert!(!scoped.has(), "the scope's own replacement was removed");
    assert_eq!(scoped.registered(), 0);
}

#[test]
fn thread_local_entries_are_freed_when_their_threads_exit() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let live = Arc::new(AtomicUsize::new(0));
    let made = live.clone();
    let registry = Arc::new(ScopedRegistry::thread_local(move || {
        made.fetch_add(1, Ordering::SeqCst);
        Counted(made.clone())
    }));
    for _ in 0..20 {
        let r = registry.clone();
        std::thread::spawn(move || {
            r.call();
            r.call();
        })
        .join()
        .unwrap();
    }
    assert_eq!(registry.len(), 0, "exited threads' entries are gone");
    assert_eq!(live.load(Ordering::SeqCst), 0, "and their values dropped");
    // A thread that cleared and remade its value many times is freed once.
    let r = registry.clone();
    std::thread::spawn(move || {
        for _ in 0..100 {
            r.call();
            r.clear();
        }
        r.call();
    })
    .join()
    .unwrap();
    assert_eq!(registry.len(), 0);
    assert_eq!(live.load(Ordering::SeqCst), 0);
    // A living thread keeps its value.
    registry.call();
    assert_eq!(registry.len(), 1);

    // Registries keyed by `scope::current_thread` (the blocking scoped_session's default) too.
    let by_thread = Arc::new(ScopedRegistry::new(|| 7u8, scope::current_thread));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let r = by_thread.clone();
            std::thread::spawn(move || *r.call())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 7);
    }
    assert_eq!(by_thread.len(), 0);
}
