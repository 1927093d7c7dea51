//! Session events, mapper events, lifecycle events and `do_orm_execute` (SQLAlchemy's
//! `test/orm/test_events.py` scenarios that apply), on a real PostgreSQL.

use std::sync::{Arc, Mutex};

use session_core::events::ListenerResult;
use session_core::{
    AnyObj, AsyncSession, Engine, Entity, Error, ExecutionOptions, IsolationLevel, MetaData, Obj,
    StatementKind, async_sessionmaker, select, text,
};
use session_tests::model::A;
use session_tests::support::{
    a, count_rows, create_schema, engine, kept_session as session, schema_engine,
};

/// A shared list of what listeners heard, in order.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, s: impl Into<String>) {
        self.0.lock().unwrap().push(s.into());
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
    /// A listener of one argument that records `name`.
    fn hear<X: ?Sized>(&self, name: &'static str) -> impl Fn(&X) -> ListenerResult + use<X> {
        let log = self.clone();
        move |_| {
            log.push(name);
            Ok(())
        }
    }
}

#[tokio::test]
async fn a_commit_fires_sqlalchemys_events_in_order() {
    let engine = schema_engine("ev_order", 2).await;
    let s = session(&engine);
    let log = Log::default();
    let ev = s.events();
    ev.before_flush(log.hear("before_flush"))
        .before_commit(log.hear("before_commit"))
        .after_commit(log.hear("after_commit"))
        .after_rollback(log.hear("after_rollback"));
    let l = log.clone();
    ev.after_flush(move |_, info| {
        l.push(format!("after_flush inserted={}", info.inserted.len()));
        Ok(())
    });
    let l = log.clone();
    ev.after_flush_postexec(move |_, _| {
        l.push("after_flush_postexec");
        Ok(())
    });
    let l = log.clone();
    ev.after_transaction_create(move |_, t| {
        l.push(format!("after_transaction_create {}", t.level));
        Ok(())
    });
    let l = log.clone();
    ev.after_transaction_end(move |_, t| {
        l.push(format!("after_transaction_end {}", t.level));
        Ok(())
    });
    let l = log.clone();
    ev.after_begin(move |_, _, _| {
        l.push("after_begin");
        Ok(())
    });
    let l = log.clone();
    ev.before_attach(move |_, _| {
        l.push("before_attach");
        Ok(())
    })
    .after_attach({
        let l = log.clone();
        move |_, _| {
            l.push("after_attach");
            Ok(())
        }
    })
    .transient_to_pending({
        let l = log.clone();
        move |_, _| {
            l.push("transient_to_pending");
            Ok(())
        }
    })
    .pending_to_persistent({
        let l = log.clone();
        move |_, _| {
            l.push("pending_to_persistent");
            Ok(())
        }
    });

    s.add(&a("a1")).unwrap();
    s.commit().await.unwrap();
    assert_eq!(
        log.take(),
        [
            "before_attach",
            "after_transaction_create 1",
            "transient_to_pending",
            "after_attach",
            "before_commit",
            "before_flush",
            "after_begin",
            "pending_to_persistent",
            "after_flush inserted=1",
            "after_flush_postexec",
            "after_commit",
            "after_transaction_end 1",
        ]
    );
    assert_eq!(count_rows(&engine, "a").await, 1);

    // A rollback with a connection in the transaction: after_rollback; a commit with nothing
    // to flush: no flush events, still before_commit / after_commit.
    s.execute(text("SELECT 1")).await.unwrap();
    s.rollback().await.unwrap();
    assert_eq!(
        log.take(),
        [
            "after_transaction_create 1",
            "after_begin",
            "after_rollback",
            "after_transaction_end 1",
        ]
    );
    s.commit().await.unwrap();
    assert_eq!(log.take(), ["before_commit", "after_commit"]);
}

#[tokio::test]
async fn before_flush_may_add_objects_and_they_are_flushed_with_the_rest() {
    let engine = schema_engine("ev_before_flush", 2).await;
    let s = session(&engine);
    s.events().before_flush(|s| {
        // An audit row for every batch of new objects (the docs' before_flush use).
        let new = s.new_objects().len();
        let audited = s.new_objects().iter().any(|o| {
            o.downcast::<A>()
                .is_some_and(|a| a.read().is_ok_and(|a| a.data.starts_with("audit")))
        });
        if new > 0 && !audited {
            s.add(&a(&format!("audit of {new}")))?;
        }
        Ok(())
    });
    s.add_all([&a("x"), &a("y")]).unwrap();
    s.commit().await.unwrap();
    let mut conn = engine.connect().await.unwrap();
    let audit: String = conn
        .scalar("SELECT data FROM a WHERE data LIKE 'audit%'", &[])
        .await
        .unwrap();
    assert_eq!(audit, "audit of 2");
    assert_eq!(count_rows(&engine, "a").await, 3);
}

#[derive(Debug, Clone, Default, PartialEq, Entity)]
#[entity(table = "doc")]
struct Doc {
    #[entity(primary_key, generated)]
    id: i32,
    body: String,
    created_by: Option<String>,
    revision: i32,
    #[entity(server_default = "0")]
    saved: i64,
}

async fn doc_engine(prefix: &str) -> Engine {
    let engine = engine(prefix, 2).await;
    create_schema(&engine, MetaData::new().with::<Doc>()).await;
    engine
}

#[tokio::test]
async fn before_update_changes_are_written_by_the_same_update() {
    let engine = doc_engine("ev_mapper").await;
    let s = session(&engine);
    let log = Log::default();
    let ev = s.events();
    ev.before_insert::<Doc>(|d| {
        d.created_by = Some("listener".into());
        Ok(())
    })
    .before_update::<Doc>(|d| {
        // The everyday updated_at hook: a revision counter here.
        d.revision += 1;
        Ok(())
    })
    .after_insert::<Doc>({
        let l = log.clone();
        move |d| {
            l.push(format!("after_insert {}", d.id));
            Ok(())
        }
    })
    .after_update::<Doc>({
        let l = log.clone();
        move |d| {
            l.push(format!("after_update rev {}", d.revision));
            Ok(())
        }
    })
    .before_delete::<Doc>({
        let l = log.clone();
        move |d| {
            l.push(format!("before_delete {}", d.body));
            Ok(())
        }
    })
    .after_delete::<Doc>({
        let l = log.clone();
        move |_| {
            l.push("after_delete");
            Ok(())
        }
    });
    // Listeners of another entity type never see Docs.
    ev.before_insert::<A>(|_| Err("not for docs".into()));

    let doc = Obj::new(Doc {
        body: "v1".into(),
        ..Doc::default()
    });
    s.add(&doc).unwrap();
    s.commit().await.unwrap();
    let id = doc.read().unwrap().id;
    assert_eq!(log.take(), [format!("after_insert {id}")]);
    doc.write().unwrap().body = "v2".into();
    s.commit().await.unwrap();
    assert_eq!(log.take(), ["after_update rev 1"]);
    // Nothing is left queued by the listener's own write.
    assert!(s.dirty().is_empty(), "{:?}", s.dirty());

    let mut conn = engine.connect().await.unwrap();
    let row = conn
        .query_one(
            "SELECT body, created_by, revision FROM doc WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "v2");
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("listener"));
    assert_eq!(row.get::<_, i32>(2), 1);

    s.delete(&doc).unwrap();
    s.commit().await.unwrap();
    assert_eq!(log.take(), ["before_delete v2", "after_delete"]);
    let left: i64 = conn.scalar("SELECT count(*) FROM doc", &[]).await.unwrap();
    assert_eq!(left, 0);
    conn.close().await;
}

#[tokio::test]
async fn a_listener_error_stops_the_flush_and_nothing_is_written() {
    let engine = doc_engine("ev_error").await;
    let s = session(&engine);
    s.events().before_insert::<Doc>(|d| {
        if d.body == "bad" {
            Err(format!("refusing {}", d.body).into())
        } else {
            Ok(())
        }
    });
    s.add(&Obj::new(Doc {
        body: "good".into(),
        ..Doc::default()
    }))
    .unwrap();
    s.flush().await.unwrap();
    s.add(&Obj::new(Doc {
        body: "bad".into(),
        ..Doc::default()
    }))
    .unwrap();
    let e = s.commit().await.unwrap_err();
    match &e {
        Error::Listener { event, source } => {
            assert_eq!(*event, "before_insert");
            assert_eq!(source.to_string(), "refusing bad");
        }
        other => panic!("expected a listener error, got {other:?}"),
    }
    assert!(matches!(
        s.execute(text("SELECT 1")).await.unwrap_err(),
        Error::PendingRollback(_)
    ));
    s.rollback().await.unwrap();
    // The first, flushed Doc went with the transaction.
    assert_eq!(count_rows(&engine, "doc").await, 0);

    // before_commit refusing: nothing is committed, the transaction stays open.
    let s = session(&engine);
    s.events().before_commit(|_| Err("not now".into()));
    s.add(&Obj::new(Doc::default())).unwrap();
    let e = s.commit().await.unwrap_err();
    assert!(
        e.to_string()
            .contains("before_commit listener failed: not now"),
        "{e}"
    );
    assert!(s.in_transaction());
    s.rollback().await.unwrap();
    assert_eq!(count_rows(&engine, "doc").await, 0);
}

/// Runs a statement on `s` from inside a listener (which cannot `.await`): the future is polled
/// on the spot; its first poll answers at once when the session refuses.
fn try_sql(s: &AsyncSession) -> String {
    match futures::executor::block_on(s.execute(text("SELECT 1"))) {
        Ok(_) => "ran".into(),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn sql_from_after_commit_after_rollback_and_a_flush_is_refused_with_sqlalchemys_messages() {
    let engine = schema_engine("ev_sql", 2).await;
    let s = session(&engine);
    let log = Log::default();
    let l = log.clone();
    s.events().after_commit(move |s| {
        l.push(try_sql(s));
        Ok(())
    });
    let l = log.clone();
    s.events().after_rollback(move |s| {
        l.push(try_sql(s));
        Ok(())
    });
    let l = log.clone();
    s.events().before_flush(move |s| {
        l.push(try_sql(s));
        Ok(())
    });
    s.add(&a("x")).unwrap();
    s.commit().await.unwrap();
    s.execute(text("SELECT 1")).await.unwrap();
    s.rollback().await.unwrap();
    assert_eq!(
        log.take(),
        [
            "Session is already flushing",
            "This session is in 'committed' state; no further SQL can be emitted within this \
             transaction.",
            "This session is in 'inactive' state, due to the SQL transaction being rolled back; \
             no further SQL can be emitted within this transaction.",
        ]
    );
    // After the listeners, the session works again.
    let one: i32 = s.scalar(text("SELECT 1")).await.unwrap().get().unwrap();
    assert_eq!(one, 1);
}

#[tokio::test]
async fn factory_listeners_hear_only_its_sessions_and_global_ones_hear_all() {
    let engine = schema_engine("ev_factory", 4).await;
    let first = async_sessionmaker(engine.clone());
    let second = async_sessionmaker(engine.clone());
    let heard = Log::default();
    first.events().before_commit(heard.hear("first"));
    // The process-wide registry (shared with the other tests of this binary): this listener
    // answers only sessions marked for it.
    let l = heard.clone();
    session_core::events::global().before_commit(move |s| {
        if s.info().contains_key("global-test") {
            l.push("global");
        }
        Ok(())
    });
    let marked = |maker: &session_core::AsyncSessionMaker| {
        let s = maker.session();
        s.update_info(|i| {
            i.insert("global-test".into(), "1".into());
        });
        s
    };
    marked(&first).commit().await.unwrap();
    assert_eq!(heard.take(), ["first", "global"]);
    marked(&second).commit().await.unwrap();
    assert_eq!(heard.take(), ["global"]);
    // A clone of the factory shares its registry; the session's own comes first.
    let s = first.clone().session();
    s.events().before_commit(heard.hear("own"));
    s.commit().await.unwrap();
    assert_eq!(heard.take(), ["own", "first"]);

    // A scoped session listens on its factory: every scope's session hears it.
    let scoped = Arc::new(session_scoped::async_scoped_session(
        async_sessionmaker(engine.clone()),
        session_scoped::scope::current_task,
    ));
    scoped.events().before_commit(heard.hear("scoped"));
    for _ in 0..2 {
        let scoped2 = scoped.clone();
        scoped
            .spawn(async move { scoped2.commit().await.unwrap() })
            .await
            .unwrap();
    }
    assert_eq!(heard.take(), ["scoped", "scoped"]);
}

/// Transitions heard, with the object each was about.
#[derive(Clone, Default)]
struct Heard(Arc<Mutex<Vec<(&'static str, AnyObj)>>>);

impl Heard {
    /// Listens to every lifecycle event of `s`.
    fn on(&self, s: &AsyncSession) {
        macro_rules! hear_all {
            ($($name:ident),*) => {$(
                let h = self.clone();
                s.events().$name(move |_, o| {
                    h.0.lock().unwrap().push((stringify!($name), o.clone()));
                    Ok(())
                });
            )*};
        }
        hear_all!(
            transient_to_pending,
            pending_to_transient,
            pending_to_persistent,
            persistent_to_transient,
            persistent_to_detached,
            persistent_to_deleted,
            deleted_to_detached,
            deleted_to_persistent,
            detached_to_persistent,
            loaded_as_persistent
        );
    }

    /// What was heard since the last call, each object named by its label in `known`.
    fn take(&self, known: &[(&str, &AnyObj)]) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
            .into_iter()
            .map(|(event, obj)| {
                let label = known
                    .iter()
                    .find(|(_, k)| k.ptr_eq(&obj))
                    .map_or("?", |(l, _)| l);
                format!("{event} {label}")
            })
            .collect()
    }
}

#[tokio::test]
async fn lifecycle_events_follow_each_objects_state() {
    let engine = schema_engine("ev_lifecycle", 2).await;
    let s = session(&engine);
    let heard = Heard::default();
    heard.on(&s);
    let (kept, gone, flushed) = (a("kept"), a("gone"), a("flushed"));
    let (k, g, f) = (kept.erase(), gone.erase(), flushed.erase());
    let known = [("kept", &k), ("gone", &g), ("flushed", &f)];
    s.add(&kept).unwrap();
    s.commit().await.unwrap();
    assert_eq!(
        heard.take(&known),
        ["transient_to_pending kept", "pending_to_persistent kept"]
    );
    // Pending then rolled back; inserted then rolled back.
    s.add(&gone).unwrap();
    s.rollback().await.unwrap();
    s.add(&flushed).unwrap();
    s.flush().await.unwrap();
    s.rollback().await.unwrap();
    assert_eq!(
        heard.take(&known),
        [
            "transient_to_pending gone",
            "pending_to_transient gone",
            "transient_to_pending flushed",
            "pending_to_persistent flushed",
            "persistent_to_transient flushed",
        ]
    );
    // A delete flushed then rolled back, then committed.
    s.refresh(&kept, &[]).await.unwrap();
    s.delete(&kept).unwrap();
    s.flush().await.unwrap();
    s.rollback().await.unwrap();
    s.refresh(&kept, &[]).await.unwrap();
    s.delete(&kept).unwrap();
    s.commit().await.unwrap();
    assert_eq!(
        heard.take(&known),
        [
            "persistent_to_deleted kept",
            "deleted_to_persistent kept",
            "persistent_to_deleted kept",
            "deleted_to_detached kept",
        ]
    );
    // Loaded by another session, expunged, added back, closed.
    s.add(&a("other")).unwrap();
    s.commit().await.unwrap();
    assert_eq!(
        heard.take(&known),
        ["transient_to_pending ?", "pending_to_persistent ?"]
    );
    let other = session(&engine);
    heard.on(&other);
    let loaded = other.scalars(select::<A>()).await.unwrap().all();
    assert_eq!(loaded.len(), 1);
    // A second load of the same row is the same object: no second event.
    other.scalars(select::<A>()).await.unwrap().all();
    let o = loaded[0].erase();
    other.expunge(&loaded[0]).unwrap();
    other.add(&loaded[0]).unwrap();
    other.close().await;
    assert_eq!(
        heard.take(&[("other", &o)]),
        [
            "loaded_as_persistent other",
            "persistent_to_detached other",
            "detached_to_persistent other",
            "persistent_to_detached other",
        ]
    );
}

#[tokio::test]
async fn savepoints_fire_create_soft_rollback_and_end_per_level() {
    let engine = schema_engine("ev_savepoint", 2).await;
    let s = session(&engine);
    let log = Log::default();
    for (name, which) in [("create", 0), ("end", 1), ("soft_rollback", 2)] {
        let l = log.clone();
        let f = move |_: &AsyncSession, t: &session_core::TransactionInfo| {
            l.push(format!("{name} {} nested={}", t.level, t.nested));
            Ok(())
        };
        match which {
            0 => s.events().after_transaction_create(f),
            1 => s.events().after_transaction_end(f),
            _ => s.events().after_soft_rollback(f),
        };
    }
    let outer = s.begin().await.unwrap();
    let sp = s.begin_nested().await.unwrap();
    s.add(&a("in savepoint")).unwrap();
    sp.rollback().await.unwrap();
    let sp = s.begin_nested().await.unwrap();
    sp.commit().await.unwrap();
    outer.commit().await.unwrap();
    assert_eq!(
        log.take(),
        [
            "create 1 nested=false",
            "create 2 nested=true",
            "soft_rollback 2 nested=true",
            "end 2 nested=true",
            "create 2 nested=true",
            "end 2 nested=true",
            "end 1 nested=false",
        ]
    );
}

#[tokio::test]
async fn an_after_flush_hook_that_always_adds_work_stops_commit_after_100_flushes() {
    let engine = schema_engine("ev_100", 2).await;
    let s = session(&engine);
    s.events().after_flush(|s, _| {
        s.add(&a("again"))?;
        Ok(())
    });
    s.add(&a("first")).unwrap();
    let e = s.commit().await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "Over 100 subsequent flushes have occurred within session.commit() - is an \
         after_flush() hook creating new objects?"
    );
    s.rollback().await.unwrap();
    assert_eq!(count_rows(&engine, "a").await, 0);
}

#[tokio::test]
async fn do_orm_execute_sees_the_statement_and_changes_its_options() {
    let engine = schema_engine("ev_execute", 2).await;
    let s = session(&engine);
    let seen = Log::default();
    let l = seen.clone();
    s.events().do_orm_execute(move |state| {
        l.push(format!(
            "{:?} {} tenant={:?}",
            state.kind(),
            state.table().map_or("-", |t| t.name),
            state.execution_options().get("tenant")
        ));
        // A user key turns into a real option (SQLAlchemy's recipe for "fresh" reads).
        if state.execution_options().get("fresh").is_some() {
            let opts = state.execution_options_mut();
            opts.remove("fresh");
            *opts = opts.clone().populate_existing(true);
        }
        Ok(())
    });
    let obj = a("stored");
    s.add(&obj).unwrap();
    s.commit().await.unwrap();
    obj.write().unwrap().data = "unflushed".into();
    // Without the key, autoflush(false) keeps the change in memory and the load keeps it.
    let stmt = || select::<A>().execution_options(ExecutionOptions::new().set("tenant", "t1"));
    s.execute_with(stmt(), ExecutionOptions::new().autoflush(false))
        .await
        .unwrap();
    assert_eq!(obj.read().unwrap().data, "unflushed");
    // With it, populate_existing overwrites the unflushed change with the row.
    s.execute_with(
        stmt(),
        ExecutionOptions::new().autoflush(false).set("fresh", "1"),
    )
    .await
    .unwrap();
    assert_eq!(obj.read().unwrap().data, "stored");
    s.execute(text("SELECT 1")).await.unwrap();
    s.execute(session_core::update::<A>().set(A::C.data, "all".to_string()))
        .await
        .unwrap();
    assert_eq!(
        seen.take(),
        [
            "Select a tenant=Some(\"t1\")",
            "Select a tenant=Some(\"t1\")",
            "Text - tenant=None",
            "Update a tenant=None",
        ]
    );
    assert_eq!(StatementKind::Select, StatementKind::Select);
}

#[tokio::test]
async fn execution_options_fall_through_call_statement_session_engine() {
    let url = session_tests::support::fresh_database("ev_exec_levels").await;
    let engine = Engine::builder(url)
        .pool_size(2)
        .execution_options(ExecutionOptions::new().set("level", "engine"))
        .build()
        .unwrap();
    create_schema(&engine, session_tools::model::metadata()).await;
    let maker = async_sessionmaker(engine.clone())
        .execution_options(ExecutionOptions::new().autoflush(false));
    assert!(
        format!("{maker:?}").contains("execution_options="),
        "{maker:?}"
    );
    let s = maker.session();
    let levels = Log::default();
    let l = levels.clone();
    s.events().do_orm_execute(move |st| {
        l.push(
            st.execution_options()
                .get("level")
                .unwrap_or("-")
                .to_string(),
        );
        Ok(())
    });
    // The factory's autoflush(false): the pending object is not flushed by the query.
    s.add(&a("pending")).unwrap();
    assert_eq!(s.scalars(select::<A>()).await.unwrap().all().len(), 0);
    // The statement's autoflush(true) beats the session's.
    let flushing = select::<A>().execution_options(
        ExecutionOptions::new()
            .autoflush(true)
            .set("level", "statement"),
    );
    assert_eq!(s.scalars(flushing).await.unwrap().all().len(), 1);
    // The call's beat the statement's.
    s.add(&a("second")).unwrap();
    let flushing = select::<A>().execution_options(ExecutionOptions::new().autoflush(true));
    let n = s
        .execute_with(
            flushing,
            ExecutionOptions::new()
                .autoflush(false)
                .set("level", "call"),
        )
        .await
        .unwrap()
        .scalars()
        .all()
        .len();
    assert_eq!(n, 1);
    assert_eq!(levels.take(), ["engine", "statement", "call"]);
    s.rollback().await.unwrap();
}

#[tokio::test]
async fn an_isolation_level_option_applies_to_the_transaction_it_begins() {
    let engine = schema_engine("ev_isolation", 2).await;
    let s = session(&engine);
    let serializable = ExecutionOptions::new().isolation_level(IsolationLevel::Serializable);
    let level: String = s
        .execute_with(text("SHOW transaction_isolation"), serializable.clone())
        .await
        .unwrap()
        .first()
        .unwrap()
        .get(0);
    assert_eq!(level, "serializable");
    // The same level again is fine; another one cannot apply to a begun transaction.
    s.execute_with(text("SELECT 1"), serializable)
        .await
        .unwrap();
    let e = s
        .execute_with(
            text("SELECT 1"),
            ExecutionOptions::new().isolation_level(IsolationLevel::RepeatableRead),
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("already began at SERIALIZABLE"),
        "{e}"
    );
    s.rollback().await.unwrap();
    // The next transaction is back to the default.
    let level: String = s
        .scalar(text("SHOW transaction_isolation"))
        .await
        .unwrap()
        .get()
        .unwrap();
    assert_eq!(level, "read committed");
}

#[tokio::test]
async fn stream_with_yield_per_reads_every_row() {
    let engine = schema_engine("ev_yield", 2).await;
    let s = session(&engine);
    for i in 0..7 {
        s.add(&a(&format!("r{i}"))).unwrap();
    }
    s.commit().await.unwrap();
    use futures::StreamExt;
    let stream = s
        .stream(select::<A>().execution_options(ExecutionOptions::new().yield_per(3)))
        .await
        .unwrap();
    let got: Vec<_> = stream.collect().await;
    assert_eq!(got.len(), 7);
    assert!(got.iter().all(Result::is_ok));
}

#[tokio::test]
async fn autobegin_false_refuses_implicit_transactions_with_sqlalchemys_message() {
    let engine = schema_engine("ev_autobegin", 2).await;
    let maker = async_sessionmaker(engine.clone()).autobegin(false);
    assert!(format!("{maker:?}").contains("autobegin=false"));
    let s = maker.session();
    const MESSAGE: &str = "Autobegin is disabled on this Session; please call session.begin() \
                           to start a new transaction";
    assert_eq!(s.add(&a("x")).unwrap_err().to_string(), MESSAGE);
    assert_eq!(
        s.execute(text("SELECT 1")).await.unwrap_err().to_string(),
        MESSAGE
    );
    assert!(!s.in_transaction());
    let tx = s.begin().await.unwrap();
    s.add(&a("x")).unwrap();
    tx.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "a").await, 1);
    // After the commit, again only begin() starts one.
    assert_eq!(
        s.execute(text("SELECT 1")).await.unwrap_err().to_string(),
        MESSAGE
    );
    s.transaction(async |s| {
        s.add(&a("y"))?;
        Ok::<_, Error>(())
    })
    .await
    .unwrap();
    assert_eq!(count_rows(&engine, "a").await, 2);
}

#[tokio::test]
async fn do_orm_execute_adds_criteria_to_every_select_of_a_table() {
    let engine = schema_engine("ev_criteria", 2).await;
    let s = session(&engine);
    for d in ["visible", "hidden", "visible too"] {
        s.add(&a(d)).unwrap();
    }
    s.commit().await.unwrap();
    // SQLAlchemy's with_loader_criteria recipe: a global filter for one table.
    s.events().do_orm_execute(|state| {
        if state.is_select() && state.table().is_some_and(|t| t.name == "a") {
            state.add_criteria(A::C.data.ne("hidden".to_string()));
        }
        Ok(())
    });
    let seen: Vec<String> = s
        .scalars(select::<A>())
        .await
        .unwrap()
        .all()
        .iter()
        .map(|o| o.read().unwrap().data.clone())
        .collect();
    assert_eq!(seen.len(), 2);
    assert!(!seen.contains(&"hidden".to_string()));
    let n: i64 = s
        .scalar(session_core::select_columns(session_core::func::count()).select_from::<A>())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 2, "column selects get it too");
    {
        use futures::StreamExt;
        let streamed = s.stream(select::<A>()).await.unwrap().count().await;
        assert_eq!(streamed, 2, "and streams");
    }
    // Criteria on a statement that is not a select: an error, not a silent no-op.
    s.events().do_orm_execute(|state| {
        if state.kind() == StatementKind::Update {
            state.add_criteria(A::C.id.gt(0));
        }
        Ok(())
    });
    let e = s
        .execute(session_core::update::<A>().set(A::C.data, "x".to_string()))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("add_criteria applies to selects only"),
        "{e}"
    );
}
