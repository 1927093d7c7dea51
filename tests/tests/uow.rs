//! Regression tests for the unit of work's lost writes, wrong rows and hangs (the core issue):
//! each one failed on 427d4f2. Every check reads the database back on a connection of its own.

use std::time::Duration;

use session_core::{AsyncSession, Collection, Engine, Entity, Obj, ObjectState, Reference, text};
use session_tests::model::{A, B};
use session_tests::support::{a, count_rows, create_schema, engine, schema_engine};

/// Runs `f` on a thread of its own and fails (instead of hanging) when it does not finish.
fn within<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("{what}: deadlocked (no answer in 20 s)"))
}

async fn scalar_i64(engine: &Engine, sql: &str) -> i64 {
    let mut conn = engine.connect().await.unwrap();
    let n: i64 = conn.scalar(sql, &[]).await.unwrap();
    conn.close().await;
    n
}

async fn scalar_text(engine: &Engine, sql: &str) -> Option<String> {
    let mut conn = engine.connect().await.unwrap();
    let v: Option<String> = conn.scalar(sql, &[]).await.unwrap();
    conn.close().await;
    v
}

fn kept(engine: &Engine) -> AsyncSession {
    AsyncSession::builder()
        .bind(engine.clone())
        .expire_on_commit(false)
        .build()
}

// ---- 1: a write after an unchanged write and an autoflush is written ----

#[tokio::test]
async fn write_after_unchanged_write_and_autoflush_is_flushed() {
    let engine = schema_engine("uow_lost_update", 4).await;
    let session = kept(&engine);
    let obj = a("v0");
    session.add(&obj).unwrap();
    session.commit().await.unwrap();

    let same = obj.read().unwrap().data.clone();
    obj.write().unwrap().data = same; // changes nothing
    session.flush().await.unwrap(); // any autoflush
    obj.write().unwrap().data = "v1".into();
    assert!(session.is_modified(&obj));
    assert_eq!(session.dirty().len(), 1, "the changed object is dirty");
    session.commit().await.unwrap();
    assert_eq!(
        scalar_text(&engine, "SELECT data FROM a").await.as_deref(),
        Some("v1")
    );
}

#[tokio::test]
async fn a_change_made_while_detached_is_written_after_re_adding() {
    let engine = schema_engine("uow_detached", 4).await;
    let first = kept(&engine);
    let obj = a("v0");
    first.add(&obj).unwrap();
    first.commit().await.unwrap();
    first.close().await;
    assert_eq!(obj.state(), ObjectState::Detached);

    obj.write().unwrap().data = "changed while detached".into();
    let second = kept(&engine);
    second.add(&obj).unwrap();
    assert!(second.is_modified(&obj));
    second.commit().await.unwrap();
    assert_eq!(
        scalar_text(&engine, "SELECT data FROM a").await.as_deref(),
        Some("changed while detached")
    );
}

// ---- 2: children appended after two flushes are inserted ----

#[tokio::test]
async fn children_appended_to_a_persistent_parent_after_flushes_are_inserted() {
    let engine = schema_engine("uow_append", 4).await;
    let session = kept(&engine);
    let parent = a("p");
    session.add(&parent).unwrap();
    session.commit().await.unwrap();
    for i in 0..3 {
        let child = Obj::new(B {
            data: format!("c{i}"),
            ..B::default()
        });
        parent.write().unwrap().bs.push(child).unwrap();
        session.flush().await.unwrap();
    }
    session.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "b").await, 3);
    let pid = parent.read().unwrap().id;
    assert_eq!(
        scalar_i64(
            &engine,
            &format!("SELECT count(*) FROM b WHERE a_id = {pid}")
        )
        .await,
        3
    );
}

// ---- 3: self-referential rows in one flush ----

/// A category tree: `parent_id` refers to the same table.
#[derive(Debug, Clone, Default, PartialEq, Entity)]
#[entity(table = "category")]
pub struct Category {
    #[entity(primary_key, generated)]
    id: i32,
    name: String,
    #[entity(foreign_key = "category.id")]
    parent_id: Option<i32>,
    #[entity(relationship(foreign_key = "parent_id"))]
    children: Collection<Category>,
}

/// A tree whose `parent_id` is NOT NULL: only row-by-row order can insert it in one flush.
#[derive(Debug, Clone, Default, PartialEq, Entity)]
#[entity(table = "node")]
pub struct Node {
    #[entity(primary_key, generated)]
    id: i32,
    name: String,
    #[entity(foreign_key = "node.id")]
    parent_id: i32,
    #[entity(relationship(foreign_key = "parent_id"))]
    parent: Reference<Node>,
}

fn category(name: &str, children: Vec<Obj<Category>>) -> Obj<Category> {
    Obj::new(Category {
        name: name.into(),
        children: Collection::from_vec(children),
        ..Category::default()
    })
}

#[tokio::test]
async fn a_self_referential_tree_is_stored_with_its_parent_keys_in_one_flush() {
    let engine = engine("uow_tree", 4).await;
    create_schema(
        &engine,
        session_core::MetaData::new()
            .with::<Category>()
            .with::<Node>(),
    )
    .await;
    let session = kept(&engine);
    let leaves: Vec<Obj<Category>> = (0..3).map(|i| category(&format!("l{i}"), vec![])).collect();
    let mid = category("mid", leaves.clone());
    let root = category("root", vec![mid.clone(), category("other", vec![])]);
    session.add(&root).unwrap();
    session.commit().await.unwrap();

    let mid_id = mid.read().unwrap().id;
    let root_id = root.read().unwrap().id;
    assert_eq!(mid.read().unwrap().parent_id, Some(root_id));
    for leaf in &leaves {
        assert_eq!(leaf.read().unwrap().parent_id, Some(mid_id));
    }
    assert_eq!(
        scalar_i64(
            &engine,
            &format!("SELECT count(*) FROM category WHERE parent_id = {mid_id}")
        )
        .await,
        3
    );
    assert_eq!(
        scalar_i64(
            &engine,
            "SELECT count(*) FROM category WHERE parent_id IS NULL"
        )
        .await,
        1,
        "only the root has no parent"
    );

    // NOT NULL self-reference: a root made by hand, then a chain of three new nodes.
    let mut conn = engine.connect().await.unwrap();
    conn.batch_execute("INSERT INTO node (id, name, parent_id) VALUES (1000, 'root', 1000)")
        .await
        .unwrap();
    conn.close().await;
    let top = session.get::<Node>(1000).await.unwrap().unwrap();
    let mut parent = top.clone();
    let mut chain = Vec::new();
    for i in 0..3 {
        let node = Obj::new(Node {
            name: format!("n{i}"),
            parent: Reference::to(parent.clone()),
            ..Node::default()
        });
        chain.push(node.clone());
        parent = node;
    }
    session.add(&chain[2]).unwrap();
    session.commit().await.unwrap();
    let mut expected = 1000;
    for node in &chain {
        let (id, pid) = {
            let v = node.read().unwrap();
            (v.id, v.parent_id)
        };
        assert_eq!(pid, expected);
        assert_eq!(
            scalar_i64(
                &engine,
                &format!("SELECT parent_id::bigint FROM node WHERE id = {id}")
            )
            .await,
            i64::from(expected)
        );
        expected = id;
    }
}

// ---- 4 and 5: server-filled columns ----

/// Server defaults that a user may also set, and a key from a non-sequence default.
#[derive(Debug, Clone, Default, PartialEq, Entity)]
#[entity(table = "token")]
pub struct Token {
    #[entity(primary_key, server_default = "md5(random()::text)")]
    key: String,
    data: String,
    #[entity(server_default = "'draft'")]
    status: String,
    #[entity(server_default = "7")]
    rank: Option<i32>,
}

/// A composite key with a generated part.
#[derive(Debug, Clone, Default, PartialEq, Entity)]
#[entity(table = "tenant_row")]
pub struct TenantRow {
    #[entity(primary_key)]
    tenant: String,
    #[entity(primary_key, generated)]
    id: i32,
    data: String,
}

#[tokio::test]
async fn a_value_set_on_a_server_default_column_is_inserted() {
    let engine = engine("uow_defaults", 4).await;
    create_schema(&engine, session_core::MetaData::new().with::<Token>()).await;
    let session = kept(&engine);
    let set = Obj::new(Token {
        key: "mine".into(),
        data: "set".into(),
        status: "published".into(),
        rank: Some(1),
    });
    let unset = Obj::new(Token {
        data: "unset".into(),
        ..Token::default()
    });
    session.add(&set).unwrap();
    session.add(&unset).unwrap();
    session.commit().await.unwrap();
    assert_eq!(set.read().unwrap().key, "mine");
    assert_eq!(
        scalar_text(&engine, "SELECT status FROM token WHERE data = 'set'")
            .await
            .as_deref(),
        Some("published")
    );
    assert_eq!(
        scalar_i64(&engine, "SELECT rank::bigint FROM token WHERE data = 'set'").await,
        1
    );
    assert_eq!(
        scalar_text(&engine, "SELECT status FROM token WHERE data = 'unset'")
            .await
            .as_deref(),
        Some("draft")
    );
    let unset_key = unset.read().unwrap().key.clone();
    assert_eq!(unset_key.len(), 32, "the server's md5 key came back");
    assert_eq!(unset.read().unwrap().status, "draft");
    assert_eq!(unset.read().unwrap().rank, Some(7));
}

#[tokio::test]
async fn merge_of_an_explicit_key_for_a_missing_row_inserts_that_key() {
    let engine = schema_engine("uow_merge_key", 4).await;
    let session = kept(&engine);
    let source = Obj::new(A {
        id: 42,
        data: "forty-two".into(),
        ..A::default()
    });
    let merged = session.merge(&source).await.unwrap();
    session.commit().await.unwrap();
    assert_eq!(merged.read().unwrap().id, 42);
    assert_eq!(
        scalar_text(&engine, "SELECT data FROM a WHERE id = 42")
            .await
            .as_deref(),
        Some("forty-two")
    );
}

#[tokio::test]
async fn keys_from_a_random_server_default_match_their_objects() {
    let engine = engine("uow_random_keys", 4).await;
    create_schema(
        &engine,
        session_core::MetaData::new()
            .with::<Token>()
            .with::<TenantRow>(),
    )
    .await;
    let session = kept(&engine);
    let tokens: Vec<Obj<Token>> = (0..200)
        .map(|i| {
            Obj::new(Token {
                data: format!("t{i}"),
                ..Token::default()
            })
        })
        .collect();
    session.add_all(&tokens).unwrap();
    let rows: Vec<Obj<TenantRow>> = (0..50)
        .map(|i| {
            Obj::new(TenantRow {
                tenant: if i % 2 == 0 { "x" } else { "y" }.into(),
                data: format!("r{i}"),
                ..TenantRow::default()
            })
        })
        .collect();
    session.add_all(&rows).unwrap();
    session.commit().await.unwrap();

    let mut conn = engine.connect().await.unwrap();
    let mut wrong = 0;
    for t in &tokens {
        let (key, data) = {
            let v = t.read().unwrap();
            (v.key.clone(), v.data.clone())
        };
        let stored: String = conn
            .scalar("SELECT data FROM token WHERE key = $1", &[&key])
            .await
            .unwrap();
        wrong += usize::from(stored != data);
    }
    assert_eq!(wrong, 0, "objects given another row's key");
    for r in &rows {
        let (tenant, id, data) = {
            let v = r.read().unwrap();
            (v.tenant.clone(), v.id, v.data.clone())
        };
        let stored: String = conn
            .scalar(
                "SELECT data FROM tenant_row WHERE tenant = $1 AND id = $2",
                &[&tenant, &id],
            )
            .await
            .unwrap();
        assert_eq!(stored, data);
    }
    conn.close().await;

    // Later UPDATEs hit the object's own row.
    tokens[7].write().unwrap().data = "seven".into();
    session.commit().await.unwrap();
    let key = tokens[7].read().unwrap().key.clone();
    assert_eq!(
        scalar_text(
            &engine,
            &format!("SELECT data FROM token WHERE key = '{key}'")
        )
        .await
        .as_deref(),
        Some("seven")
    );
    assert_eq!(
        scalar_i64(&engine, "SELECT count(*) FROM token WHERE data = 'seven'").await,
        1
    );
}

// ---- 8: guards never deadlock the caller ----

#[tokio::test]
async fn two_read_guards_of_one_object_on_one_thread_do_not_deadlock() {
    let obj = a("x");
    let out = within("two read guards", move || {
        let first = obj.read().unwrap();
        let second = obj.read().unwrap();
        first.data == second.data
    });
    assert!(out);
}

#[tokio::test]
async fn session_calls_while_the_caller_holds_a_guard_fail_clearly_instead_of_hanging() {
    let engine = schema_engine("uow_guard_calls", 4).await;
    let session = std::sync::Arc::new(kept(&engine));
    let obj = a("x");
    session.add(&obj).unwrap();
    session.commit().await.unwrap();
    let handle = tokio::runtime::Handle::current();
    let (s, o) = (session.clone(), obj.clone());
    let outcome = within("flush under a write guard", move || {
        let mut guard = o.write().unwrap();
        guard.data = "y".into();
        let flushed = handle.block_on(s.flush());
        let contains = s.contains(&o);
        let modified = s.is_modified(&o);
        drop(guard);
        (flushed, contains, modified)
    });
    let err = outcome
        .0
        .expect_err("flush while the caller holds a write guard");
    assert!(err.is_object_locked(), "{err}");
    assert!(err.to_string().contains("drop the guard"), "{err}");
    assert!(outcome.1, "contains answers");
    assert!(outcome.2, "is_modified answers");

    // With a read guard held: queries returning the object, delete and expunge answer.
    let (s, o) = (session.clone(), obj.clone());
    let handle = tokio::runtime::Handle::current();
    let n = within("query under a read guard", move || {
        let guard = o.read().unwrap();
        let got = handle.block_on(s.scalars(session_core::select::<A>()));
        let deleted = s.delete(&o);
        drop(guard);
        (got.map(|r| r.all().len()), deleted.is_ok())
    });
    match n.0 {
        Ok(len) => assert_eq!(len, 1),
        Err(e) => assert!(e.is_object_locked(), "{e}"),
    }
    session.rollback().await.unwrap();
    session.close().await;
}

// ---- 16: add after a flushed delete; delete of a detached object ----

#[tokio::test]
async fn add_of_a_deleted_object_is_refused_and_delete_of_a_detached_one_attaches_it() {
    let engine = schema_engine("uow_deleted_add", 4).await;
    let session = kept(&engine);
    let obj = a("x");
    session.add(&obj).unwrap();
    session.commit().await.unwrap();
    session.delete(&obj).unwrap();
    session.flush().await.unwrap();
    assert_eq!(obj.state(), ObjectState::Deleted);
    let err = session.add(&obj).expect_err("add of a deleted object");
    assert!(err.to_string().contains("deleted"), "{err}");
    session.rollback().await.unwrap();

    let other = a("detached");
    session.add(&other).unwrap();
    session.commit().await.unwrap();
    session.close().await;
    assert_eq!(other.state(), ObjectState::Detached);
    let second = kept(&engine);
    second.delete(&other).unwrap();
    second.commit().await.unwrap();
    assert_eq!(
        scalar_i64(&engine, "SELECT count(*) FROM a WHERE data = 'detached'").await,
        0
    );
}

// ---- 17: relationships expire with the object; collection changes are modifications ----

#[tokio::test]
async fn commit_expires_relationships_and_collection_changes_count_as_modified() {
    let engine = schema_engine("uow_rel_expire", 4).await;
    let session = AsyncSession::new(engine.clone());
    let parent = a("p");
    session.add(&parent).unwrap();
    session.commit().await.unwrap();
    session.refresh(&parent, &[]).await.unwrap();
    // Loaded after refresh? No: a relationship expires with the object.
    let loaded = parent.read().unwrap().bs.is_loaded();
    assert!(!loaded, "commit expired the collection too");

    let kept_session = kept(&engine);
    let p2 = a("p2");
    kept_session.add(&p2).unwrap();
    kept_session.commit().await.unwrap();
    p2.write()
        .unwrap()
        .bs
        .push(Obj::new(B {
            data: "c".into(),
            ..B::default()
        }))
        .unwrap();
    assert!(
        kept_session.is_modified(&p2),
        "a collection change modifies"
    );
    kept_session.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "b").await, 1);
}

// ---- 18: loaded object graphs are freed after close ----

#[tokio::test]
async fn object_graphs_loaded_in_both_directions_are_freed_after_close() {
    let engine = schema_engine("uow_cycles", 4).await;
    let seed = AsyncSession::new(engine.clone());
    let parent = a("p");
    parent
        .write()
        .unwrap()
        .bs
        .push(Obj::new(B {
            data: "c".into(),
            ..B::default()
        }))
        .unwrap();
    seed.add(&parent).unwrap();
    seed.commit().await.unwrap();
    seed.close().await;
    drop(parent);

    let session = AsyncSession::new(engine.clone());
    let parents = session
        .scalars(session_core::select::<A>().options(session_core::selectinload(A::C.bs)))
        .await
        .unwrap()
        .all();
    let children = session
        .scalars(session_core::select::<B>().options(session_core::selectinload(B::C.a)))
        .await
        .unwrap()
        .all();
    let weak_parent = parents[0].downgrade();
    let weak_child = children[0].downgrade();
    drop((parents, children));
    session.close().await;
    assert!(
        weak_parent.upgrade().is_none(),
        "the parent outlived close()"
    );
    assert!(weak_child.upgrade().is_none(), "the child outlived close()");
}

// ---- 14: a failed statement aborts the transaction; commit says so ----

#[tokio::test]
async fn commit_after_a_failed_statement_in_the_transaction_is_an_error() {
    let engine = schema_engine("uow_aborted", 4).await;
    let failing = [
        "SELECT 1/0",
        "INSERT INTO a (id, data) VALUES (1, 'dup')",
        "SET LOCAL statement_timeout = '10ms'; SELECT pg_sleep(1)",
    ];
    for sql in failing {
        let session = AsyncSession::new(engine.clone());
        let objs: Vec<Obj<A>> = (0..4).map(|i| a(&format!("aborted{i}"))).collect();
        session.add_all(&objs).unwrap();
        session.flush().await.unwrap();
        let first = objs[0].read().unwrap().id;
        let sql = sql.replace("(1,", &format!("({first},"));
        let result = if sql.contains(';') {
            let mut conn = session.connection().await.unwrap();
            conn.batch_execute(&sql).await.map(|_| ())
        } else {
            session.execute(text(sql.as_str())).await.map(|_| ())
        };
        assert!(result.is_err(), "{sql} fails");
        let commit = session.commit().await;
        let err = commit.expect_err("commit of an aborted transaction");
        assert!(err.to_string().contains("ROLLBACK"), "{sql}: {err}");
        assert_eq!(
            scalar_i64(&engine, "SELECT count(*) FROM a WHERE data LIKE 'aborted%'").await,
            0,
            "{sql}"
        );
        for obj in &objs {
            assert_ne!(obj.state(), ObjectState::Persistent, "{sql}");
        }
        session.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_of_a_deadlock_victim_is_an_error() {
    let engine = schema_engine("uow_deadlock", 4).await;
    let seed = kept(&engine);
    let rows: Vec<Obj<A>> = (0..2).map(|i| a(&format!("row{i}"))).collect();
    seed.add_all(&rows).unwrap();
    seed.commit().await.unwrap();
    let (first, second) = (rows[0].read().unwrap().id, rows[1].read().unwrap().id);
    seed.close().await;

    let lock = |id: i32, data: &str| text(format!("UPDATE a SET data = '{data}' WHERE id = {id}"));
    let one = std::sync::Arc::new(AsyncSession::new(engine.clone()));
    let two = std::sync::Arc::new(AsyncSession::new(engine.clone()));
    one.add(&a("one's new row")).unwrap();
    one.flush().await.unwrap();
    two.add(&a("two's new row")).unwrap();
    two.flush().await.unwrap();
    one.execute(lock(first, "one")).await.unwrap();
    two.execute(lock(second, "two")).await.unwrap();
    let (o, t) = (one.clone(), two.clone());
    let a_side = tokio::spawn(async move { o.execute(lock(second, "one")).await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let b_side = tokio::spawn(async move { t.execute(lock(first, "two")).await.map(|_| ()) });
    let (ra, rb) = (a_side.await.unwrap(), b_side.await.unwrap());
    let (victim, survivor) = match (&ra, &rb) {
        (Err(e), Ok(())) => {
            assert!(e.is_serialization_failure(), "{e}");
            (one, two)
        }
        (Ok(()), Err(e)) => {
            assert!(e.is_serialization_failure(), "{e}");
            (two, one)
        }
        other => panic!("expected one deadlock victim: {other:?}"),
    };
    let err = victim
        .commit()
        .await
        .expect_err("commit of the deadlock victim");
    assert!(err.is_rolled_back(), "{err}");
    survivor.commit().await.unwrap();
    assert_eq!(
        scalar_i64(&engine, "SELECT count(*) FROM a WHERE data LIKE '%new row'").await,
        1,
        "only the survivor's flushed row is stored"
    );
}

// ---- review findings: savepoints ended from outside, partial reloads, foreign rollbacks ----

#[tokio::test]
async fn rolling_back_an_outer_savepoint_undoes_the_inner_ones_too() {
    let engine = schema_engine("uow_outer_savepoint", 4).await;
    let session = kept(&engine);
    let (c, a2) = (a("c"), a("a2"));
    session.add_all([&c, &a2]).unwrap();
    session.commit().await.unwrap();

    let sp1 = session.begin_nested().await.unwrap();
    let x = a("x");
    session.add(&x).unwrap();
    session.delete(&c).unwrap();
    a2.write().unwrap().data = "new".into();
    let sp2 = session.begin_nested().await.unwrap(); // flushes into sp1's level
    sp1.rollback().await.unwrap();
    assert!(!session.in_nested_transaction());
    assert_eq!(x.state(), ObjectState::Transient);
    assert_eq!(c.state(), ObjectState::Persistent);
    assert!(sp2.commit().await.expect_err("inner handle").is_closed());
    session.commit().await.unwrap();
    assert_eq!(
        scalar_i64(&engine, "SELECT count(*) FROM a WHERE data IN ('c', 'a2')").await,
        2
    );
    assert_eq!(count_rows(&engine, "a").await, 2, "x is not stored");
    session.refresh(&a2, &[]).await.unwrap();
    assert_eq!(a2.read().unwrap().data, "a2");
}

#[tokio::test]
async fn reloading_a_partly_expired_object_keeps_its_unflushed_changes() {
    let engine = schema_engine("uow_partial_reload", 4).await;
    let session = AsyncSession::builder()
        .bind(engine.clone())
        .expire_on_commit(false)
        .autoflush(false)
        .build();
    let obj = a("before");
    session.add(&obj).unwrap();
    session.commit().await.unwrap();
    obj.write().unwrap().data = "changed".into();
    session.expire(&obj, &[&A::C.create_date]).unwrap();
    let loaded = session
        .scalars(session_core::select::<A>())
        .await
        .unwrap()
        .all();
    assert!(loaded[0].ptr_eq(&obj));
    assert!(!obj.is_expired());
    assert_eq!(obj.read().unwrap().data, "changed");
    session.commit().await.unwrap();
    assert_eq!(
        scalar_text(&engine, "SELECT data FROM a").await.as_deref(),
        Some("changed")
    );
}

#[tokio::test]
async fn a_rollback_leaves_an_object_that_moved_to_another_session_alone() {
    let engine = schema_engine("uow_moved_object", 4).await;
    let (first, second) = (kept(&engine), kept(&engine));
    let x = a("x");
    first.add(&x).unwrap();
    first.expunge(&x).unwrap();
    second.add(&x).unwrap();
    first.rollback().await.unwrap();
    assert_eq!(x.state(), ObjectState::Pending);
    second.commit().await.unwrap();
    x.write().unwrap().data = "later".into();
    second.commit().await.unwrap();
    assert_eq!(
        scalar_text(&engine, "SELECT data FROM a").await.as_deref(),
        Some("later")
    );
}
