//! Round trips, counted on the wire by a relay in front of PostgreSQL (`support::wire`): a
//! flush costs one round trip per foreign-key level of new rows plus one for its UPDATEs and
//! DELETEs (statements that do not need each other's answers go out together), and `commit()`
//! sends COMMIT with the flush's last statements. Sending COMMIT before the answers are in must
//! never store what should not be stored: a stale UPDATE, a failing statement and a failing
//! COMMIT are tested here too.

use session_core::{AsyncSession, Collection, Engine, Entity, MetaData, Obj, select, selectinload};
use session_tests::support::fresh_database;
use session_tests::support::{count_rows, create_schema};
use session_tests::wire::RoundTrips;

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "org")]
struct Org {
    #[entity(primary_key, generated)]
    id: i32,
    name: String,
    #[entity(relationship(foreign_key = "org_id"))]
    depts: Collection<Dept>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "dept")]
struct Dept {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(foreign_key = "org.id")]
    org_id: i32,
    name: String,
    #[entity(relationship(foreign_key = "dept_id"))]
    squads: Collection<Squad>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "squad")]
struct Squad {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(foreign_key = "dept.id")]
    dept_id: i32,
    name: String,
    #[entity(relationship(foreign_key = "squad_id"))]
    people: Collection<Person>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "person")]
struct Person {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(foreign_key = "squad.id")]
    squad_id: i32,
    #[entity(unique)]
    name: String,
}

/// An engine through a fresh relay on a fresh database with the four tables. One pooled
/// connection, so that every session finds the statements an earlier one prepared (a service's
/// steady state: preparing a statement the first time costs a round trip of its own).
async fn setup(prefix: &str) -> (Engine, RoundTrips) {
    let url = fresh_database(prefix).await;
    let relay = RoundTrips::start(&url).await;
    // No ping at checkout (SQLAlchemy's default pool_pre_ping=False): it would be a round trip
    // of the pool's, not of the work counted here.
    let engine = Engine::builder(relay.url())
        .pool_size(1)
        .test_on_checkout(false)
        .build()
        .unwrap();
    create_schema(
        &engine,
        MetaData::new()
            .with::<Org>()
            .with::<Dept>()
            .with::<Squad>()
            .with::<Person>(),
    )
    .await;
    (engine, relay)
}

fn person(name: &str) -> Obj<Person> {
    Obj::new(Person {
        name: name.into(),
        ..Person::default()
    })
}

fn squad(name: &str, people: Vec<Obj<Person>>) -> Obj<Squad> {
    Obj::new(Squad {
        name: name.into(),
        people: Collection::from_vec(people),
        ..Squad::default()
    })
}

/// A new org with one dept, holding `squads`.
fn org(name: &str, squads: Vec<Obj<Squad>>) -> Obj<Org> {
    let dept = Obj::new(Dept {
        name: format!("{name}-dept"),
        squads: Collection::from_vec(squads),
        ..Dept::default()
    });
    Obj::new(Org {
        name: name.into(),
        depts: Collection::from_vec(vec![dept]),
        ..Org::default()
    })
}

async fn names(engine: &Engine, table: &str) -> Vec<String> {
    let mut conn = engine.connect().await.unwrap();
    let rows = conn
        .query(&format!("SELECT name FROM {table} ORDER BY name"), &[])
        .await
        .unwrap();
    conn.close().await;
    rows.iter().map(|r| r.get(0)).collect()
}

/// Commits org `o{n}` (squads `s{n}a` with `p{n}a`, `p{n}b`, and `s{n}b` empty).
async fn add_org(engine: &Engine, n: u32) {
    let s = AsyncSession::new(engine.clone());
    s.add(&org(
        &format!("o{n}"),
        vec![
            squad(
                &format!("s{n}a"),
                vec![person(&format!("p{n}a")), person(&format!("p{n}b"))],
            ),
            squad(&format!("s{n}b"), vec![]),
        ],
    ))
    .unwrap();
    s.commit().await.unwrap();
    s.close().await;
}

/// Orgs 1 and 2 committed.
async fn seeded(prefix: &str) -> (Engine, RoundTrips) {
    let (engine, relay) = setup(prefix).await;
    add_org(&engine, 1).await;
    add_org(&engine, 2).await;
    (engine, relay)
}

/// One row of `T` by name.
async fn by_name<T: Entity>(
    s: &AsyncSession,
    name: &str,
    column: session_core::Col<T, String>,
) -> Obj<T> {
    s.scalars(select::<T>().filter(column.eq(name.to_string())))
        .await
        .unwrap()
        .one()
        .unwrap()
}

/// In org `n`: adds org `n + 10` (one dept, one squad, one person: four levels), renames
/// dept `o{n}-dept` and person `p{n}a`, deletes person `p{n}b` and the empty squad `s{n}b`;
/// then flushes, returning the round trips of the flush alone.
async fn change_and_flush(engine: &Engine, relay: &RoundTrips, n: u32) -> u64 {
    let s = AsyncSession::new(engine.clone());
    let dept = by_name(&s, &format!("o{n}-dept"), Dept::C.name).await;
    let pa = by_name(&s, &format!("p{n}a"), Person::C.name).await;
    let pb = by_name(&s, &format!("p{n}b"), Person::C.name).await;
    let sb = by_name(&s, &format!("s{n}b"), Squad::C.name).await;
    relay.take();
    let m = n + 10;
    s.add(&org(
        &format!("o{m}"),
        vec![squad(&format!("s{m}a"), vec![person(&format!("p{m}a"))])],
    ))
    .unwrap();
    dept.write().unwrap().name = format!("o{n}-dept-renamed");
    pa.write().unwrap().name = format!("p{n}a-renamed");
    s.delete(&pb).unwrap();
    s.delete(&sb).unwrap();
    s.flush().await.unwrap();
    let trips = relay.take();
    s.commit().await.unwrap();
    assert_eq!(relay.take(), 1, "COMMIT alone after the flush");
    s.close().await;
    trips
}

#[tokio::test]
async fn a_flush_costs_one_round_trip_per_foreign_key_level_and_one_for_updates_and_deletes() {
    let (engine, relay) = seeded("rt_graph").await;
    // The first time prepares the statements on the connection.
    change_and_flush(&engine, &relay, 2).await;
    assert_eq!(
        change_and_flush(&engine, &relay, 1).await,
        5,
        "4 INSERT levels (org, dept, squad, person) and 1 flight of UPDATEs and DELETEs"
    );
    assert_eq!(names(&engine, "org").await, ["o1", "o11", "o12", "o2"]);
    assert_eq!(
        names(&engine, "dept").await,
        ["o1-dept-renamed", "o11-dept", "o12-dept", "o2-dept-renamed"]
    );
    assert_eq!(
        names(&engine, "squad").await,
        ["s11a", "s12a", "s1a", "s2a"]
    );
    assert_eq!(
        names(&engine, "person").await,
        ["p11a", "p12a", "p1a-renamed", "p2a-renamed"]
    );
}

#[tokio::test]
async fn commit_sends_the_flushs_last_statements_and_commit_in_one_flight() {
    let (engine, relay) = seeded("rt_commit").await;
    // A request: read one row, change it, commit. BEGIN travels with the SELECT and COMMIT with
    // the UPDATE: two round trips (the first request also prepares its statements).
    for name in ["p2a", "p1a"] {
        let s = AsyncSession::new(engine.clone());
        relay.take();
        let p = by_name(&s, name, Person::C.name).await;
        p.write().unwrap().name = format!("{name}-x");
        s.commit().await.unwrap();
        let trips = relay.take();
        if name == "p1a" {
            assert_eq!(trips, 2, "BEGIN + SELECT, then UPDATE + COMMIT");
        }
        s.close().await;
    }
    assert_eq!(
        names(&engine, "person").await,
        ["p1a-x", "p1b", "p2a-x", "p2b"]
    );

    // A graph added and committed: one flight per level, COMMIT riding on the last.
    let mut trips = 0;
    for n in [3, 4] {
        relay.take();
        add_org(&engine, n).await;
        trips = relay.take();
    }
    assert_eq!(
        trips, 4,
        "BEGIN rides on the first INSERT, COMMIT on the last"
    );
    assert_eq!(count_rows(&engine, "person").await, 8);
}

/// Runs `sql` on a connection of another engine (the session holds the only pooled one).
async fn other_writer(engine: &Engine, sql: &str) {
    let url = engine.url().to_string();
    let other = Engine::builder(url).pool_size(1).build().unwrap();
    let mut conn = other.connect().await.unwrap();
    conn.batch_execute(sql).await.unwrap();
    conn.close().await;
}

#[tokio::test]
async fn a_stale_update_sent_with_commit_commits_nothing() {
    let (engine, _relay) = seeded("rt_stale").await;
    let s = AsyncSession::new(engine.clone());
    let people = s
        .scalars(select::<Person>().filter(Person::C.name.like("p1%")))
        .await
        .unwrap()
        .all();
    assert_eq!(people.len(), 2);
    other_writer(&engine, "DELETE FROM person WHERE name = 'p1b'").await;
    for p in &people {
        let name = format!("{}-changed", p.read().unwrap().name);
        p.write().unwrap().name = name;
    }
    s.add(&org("o9", vec![])).unwrap();
    let err = s.commit().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "UPDATE statement on table 'person' expected to update 2 row(s); 1 were matched.",
        "{err:?}"
    );
    // Nothing of the transaction is stored: not the UPDATE that matched, not the INSERT.
    assert_eq!(names(&engine, "person").await, ["p1a", "p2a", "p2b"]);
    assert_eq!(names(&engine, "org").await, ["o1", "o2"]);
    // As after any failed flush, the session waits for rollback(), then works again.
    assert!(
        s.scalars(select::<Org>())
            .await
            .unwrap_err()
            .is_pending_rollback()
    );
    s.rollback().await.unwrap();
    assert_eq!(s.scalars(select::<Org>()).await.unwrap().all().len(), 2);
    s.close().await;
}

#[tokio::test]
async fn a_failing_statement_sent_with_commit_stores_nothing() {
    let (engine, _relay) = seeded("rt_fail").await;
    let s = AsyncSession::new(engine.clone());
    let pa = by_name(&s, "p1a", Person::C.name).await;
    let pb = by_name(&s, "p1b", Person::C.name).await;
    let squad = s
        .scalars(
            select::<Squad>()
                .filter(Squad::C.name.eq("s1b".to_string()))
                .options(selectinload(Squad::C.people)),
        )
        .await
        .unwrap()
        .one()
        .unwrap();
    pa.write().unwrap().name = "p1a-renamed".into();
    s.delete(&pb).unwrap();
    // The flush's last flight violates the unique name: its UPDATE takes the name a new
    // person took in the flight before.
    squad
        .write()
        .unwrap()
        .people
        .push(person("p1a-renamed"))
        .unwrap();
    let err = s.commit().await.unwrap_err();
    assert!(err.is_unique_violation(), "{err:?}");
    assert_eq!(names(&engine, "person").await, ["p1a", "p1b", "p2a", "p2b"]);
    assert!(s.flush().await.unwrap_err().is_pending_rollback());
    s.rollback().await.unwrap();
    s.close().await;
    assert_eq!(
        session_tests::support::idle_in_transaction(&engine).await,
        0
    );
}

/// A deferred foreign key fails at COMMIT itself, after every statement succeeded.
#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "late_child")]
struct LateChild {
    #[entity(primary_key)]
    id: i32,
    parent_id: i32,
}

#[tokio::test]
async fn a_commit_that_fails_after_its_statements_leaves_nothing_and_a_usable_session() {
    let (engine, _relay) = setup("rt_deferred").await;
    let mut conn = engine.connect().await.unwrap();
    conn.batch_execute(
        "CREATE TABLE late_parent (id integer PRIMARY KEY);
         CREATE TABLE late_child (id integer PRIMARY KEY, parent_id integer NOT NULL
             REFERENCES late_parent (id) DEFERRABLE INITIALLY DEFERRED)",
    )
    .await
    .unwrap();
    conn.close().await;
    let s = AsyncSession::new(engine.clone());
    s.add(&Obj::new(LateChild {
        id: 1,
        parent_id: 42,
    }))
    .unwrap();
    let err = s.commit().await.unwrap_err();
    assert!(err.is_foreign_key_violation(), "{err:?}");
    let mut conn = engine.connect().await.unwrap();
    let n: i64 = conn
        .scalar("SELECT count(*) FROM late_child", &[])
        .await
        .unwrap();
    conn.close().await;
    assert_eq!(n, 0);
    // A failed COMMIT ends the transaction (SQLAlchemy): the session is usable at once.
    assert!(!s.in_transaction());
    s.add(&Obj::new(Org {
        name: "after".into(),
        ..Org::default()
    }))
    .unwrap();
    s.commit().await.unwrap();
    assert_eq!(names(&engine, "org").await, ["after"]);
    s.close().await;
}

#[tokio::test]
async fn a_generated_key_the_identity_map_already_holds_replaces_the_stale_object() {
    let (engine, _relay) = seeded("rt_rekey").await;
    let s = session_tests::support::kept_session(&engine);
    let old = by_name(&s, "o1", Org::C.name).await;
    let old_id = old.read().unwrap().id;
    // Behind the session's back: the row goes and its key is handed out again.
    other_writer(
        &engine,
        &format!(
            "DELETE FROM person; DELETE FROM squad; DELETE FROM dept; \
             DELETE FROM org WHERE id = {old_id}; \
             SELECT setval(pg_get_serial_sequence('org', 'id'), {old_id}, false)"
        ),
    )
    .await;
    let new = Obj::new(Org {
        name: "reborn".into(),
        ..Org::default()
    });
    s.add(&new).unwrap();
    // Sent with COMMIT: the clash is resolved as SQLAlchemy does (the new object takes the
    // key in the identity map), never reported after the data was committed.
    s.commit().await.unwrap();
    assert_eq!(new.read().unwrap().id, old_id);
    assert_eq!(new.state(), session_core::ObjectState::Persistent);
    assert_eq!(old.state(), session_core::ObjectState::Detached);
    let again = s.get::<Org>(old_id).await.unwrap().unwrap();
    assert!(again.ptr_eq(&new));
    assert_eq!(again.read().unwrap().name, "reborn");
    s.close().await;
    assert_eq!(names(&engine, "org").await, ["o2", "reborn"]);
}

/// Statements bound to arrays run unnamed, their Parse, Bind and Execute in one flight
/// (tokio-postgres's `query_typed`, the array's type known from its `$1::integer[]` cast),
/// instead of a prepare, then an execute: each select-in load, `in_` and `get_many` costs one
/// round trip, not two.
#[tokio::test]
async fn statements_bound_to_arrays_cost_one_round_trip_each() {
    let (engine, relay) = seeded("rt_arrays").await;
    // The first time prepares the (cached) SELECT of the orgs.
    let mut trips = (0, 0, 0);
    for _ in 0..2 {
        let s = AsyncSession::new(engine.clone());
        relay.take();
        let orgs = s
            .scalars(
                select::<Org>()
                    .options(selectinload(Org::C.depts).selectinload(Dept::C.squads))
                    .order_by(Org::C.id.asc()),
            )
            .await
            .unwrap()
            .all();
        trips.0 = relay.take();
        assert_eq!(orgs.len(), 2);
        let depts = orgs[0].read().unwrap().depts.get().unwrap().to_vec();
        assert_eq!(depts.len(), 1);
        assert_eq!(depts[0].read().unwrap().squads.get().unwrap().len(), 2);

        let ids: Vec<i32> = s
            .scalars(select::<Person>())
            .await
            .unwrap()
            .all()
            .iter()
            .map(|p| p.read().unwrap().id)
            .collect();
        assert_eq!(ids.len(), 4);
        relay.take();
        let people = s
            .scalars(select::<Person>().filter(Person::C.id.in_(ids.clone())))
            .await
            .unwrap()
            .all();
        trips.1 = relay.take();
        assert_eq!(people.len(), 4);
        s.close().await;

        // Misses of the identity map: one `= ANY($1::integer[])` query.
        let s = AsyncSession::new(engine.clone());
        relay.take();
        let found = s.get_many::<Person>(&ids).await.unwrap();
        trips.2 = relay.take();
        assert!(found.iter().all(Option::is_some));
        s.close().await;
    }
    assert_eq!(
        trips,
        (3, 1, 1),
        "select-in loads: BEGIN + the orgs, then one flight per level (depts, squads); an \
         in_: one flight; get_many: BEGIN and its query in one flight"
    );
}

/// With the statement cache off (a transaction pooler), a statement whose parameters' types
/// are known runs unnamed in one flight: outside a transaction it needs no transaction of its
/// own to keep its Parse and its Execute on one server connection.
#[tokio::test]
async fn without_a_statement_cache_a_typed_statement_costs_one_round_trip() {
    let (engine, relay) = seeded("rt_nocache").await;
    let url = engine.url().to_string();
    drop(engine);
    let engine = Engine::builder(&url)
        .pool_size(1)
        .test_on_checkout(false)
        .statement_cache_size(0)
        .build()
        .unwrap();
    let mut conn = engine.connect().await.unwrap();
    relay.take();
    let n: i64 = conn
        .scalar("SELECT count(*) FROM person WHERE id > $1", &[&0i32])
        .await
        .unwrap();
    assert_eq!(n, 4);
    assert_eq!(relay.take(), 1, "Parse, Bind, Execute in one flight");
    // A string parameter could be text, varchar, bpchar...: prepared first (and run in a
    // transaction of its own), as before.
    let n: i64 = conn
        .scalar("SELECT count(*) FROM person WHERE name = $1", &[&"p1a"])
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert!(relay.take() > 1);
    assert_eq!(conn.cached_statements(), 0);
    conn.close().await;

    let s = AsyncSession::new(engine.clone());
    relay.take();
    let id = s
        .scalars(select::<Person>().order_by(Person::C.id.asc()))
        .await
        .unwrap()
        .all()[0]
        .read()
        .unwrap()
        .id;
    assert_eq!(relay.take(), 1, "BEGIN and the SELECT in one flight");
    s.expunge_all();
    let p = s.get::<Person>(id).await.unwrap().unwrap();
    assert_eq!(p.read().unwrap().id, id);
    assert_eq!(relay.take(), 1, "get by an integer key: one flight");
    s.close().await;

    // A request: get two rows, change both, commit. The flush's UPDATE of both (its arrays
    // cast in the SQL) runs unnamed with COMMIT in one flight, without a prepare before it.
    // (One row's UPDATE binds its new text unnamed, as `$1`: a string could be text, varchar,
    // bpchar... so it is prepared first.)
    for (a, b) in [("p2a", "p2b"), ("p1a", "p1b")] {
        let s = AsyncSession::new(engine.clone());
        let (pa, pb) = (
            by_name(&s, a, Person::C.name).await,
            by_name(&s, b, Person::C.name).await,
        );
        let ids = [pa.read().unwrap().id, pb.read().unwrap().id];
        s.expunge_all();
        s.commit().await.unwrap();
        relay.take();
        for p in s.get_many::<Person>(&ids).await.unwrap() {
            let p = p.unwrap();
            let name = format!("{}-x", p.read().unwrap().name);
            p.write().unwrap().name = name;
        }
        s.commit().await.unwrap();
        assert_eq!(
            relay.take(),
            2,
            "BEGIN + get_many, then the UPDATE + COMMIT"
        );
        s.close().await;
    }
    assert_eq!(
        names(&engine, "person").await,
        ["p1a-x", "p1b-x", "p2a-x", "p2b-x"]
    );
}
