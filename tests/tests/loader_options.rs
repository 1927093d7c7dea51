//! Chained and nested loader options, `raiseload` and `noload` (SQLAlchemy's strategy
//! options: `selectinload(A.bs).selectinload(B.cs)`, `joinedload(B.a).selectinload(A.bs)`,
//! `lazy="raise"`, `lazy="noload"`; `test/orm/test_eager_relations.py`,
//! `test_selectin_relations.py` and `test_ra_loading` scenarios that apply).

use session_core::{
    AsyncSession, Collection, Engine, Entity, GetOptions, MetaData, Obj, Reference, joinedload,
    noload, raiseload, select, selectinload,
};
use session_tests::support::{LogCapture, create_schema, echo_statements, fresh_database};

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "a")]
struct A {
    #[entity(primary_key, generated)]
    id: i32,
    name: String,
    #[entity(relationship(foreign_key = "a_id"))]
    bs: Collection<B>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "b")]
struct B {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(foreign_key = "a.id")]
    a_id: Option<i32>,
    name: String,
    #[entity(relationship(foreign_key = "a_id"))]
    a: Reference<A>,
    #[entity(relationship(foreign_key = "b_id"))]
    cs: Collection<C>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "c")]
struct C {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(foreign_key = "b.id")]
    b_id: Option<i32>,
    name: String,
    #[entity(relationship(foreign_key = "b_id"))]
    b: Reference<B>,
}

/// A `B` and the names of its `C`s.
type Branch = (&'static str, &'static [&'static str]);

/// An engine (logging every statement with `echo`: only one test of this binary does, since
/// `tracing` decides once per call site whether anyone listens), on a schema of two `A`s,
/// three `B`s and four `C`s: a1 -> (b1 -> c1, c2), (b2 -> c3); a2 -> (b3 -> c4).
async fn setup(prefix: &str, echo: bool) -> Engine {
    let url = fresh_database(prefix).await;
    let engine = Engine::builder(url)
        .echo(echo)
        .pool_size(2)
        .build()
        .unwrap();
    create_schema(&engine, MetaData::new().with::<A>().with::<B>().with::<C>()).await;
    let s = AsyncSession::new(engine.clone());
    let tree: [(&str, &[Branch]); 2] = [
        ("a1", &[("b1", &["c1", "c2"]), ("b2", &["c3"])]),
        ("a2", &[("b3", &["c4"])]),
    ];
    for (a, bs) in tree {
        let a = Obj::new(A {
            name: a.into(),
            ..A::default()
        });
        for (b, cs) in bs {
            let b = Obj::new(B {
                name: (*b).into(),
                ..B::default()
            });
            for c in *cs {
                b.write()
                    .unwrap()
                    .cs
                    .push(Obj::new(C {
                        name: (*c).into(),
                        ..C::default()
                    }))
                    .unwrap();
            }
            a.write().unwrap().bs.push(b).unwrap();
        }
        s.add(&a).unwrap();
    }
    s.commit().await.unwrap();
    engine
}

/// The SELECT statements of an echo log.
fn selects<'a>(lines: &[&'a str]) -> Vec<&'a str> {
    lines
        .iter()
        .copied()
        .filter(|l| l.contains("echo: SELECT"))
        .collect()
}

fn names_of_cs(b: &Obj<B>) -> Vec<String> {
    b.read()
        .unwrap()
        .cs
        .get()
        .unwrap()
        .iter()
        .map(|c| c.read().unwrap().name.clone())
        .collect()
}

/// `selectinload(A.bs).selectinload(B.cs)`: three levels in three queries, every level
/// readable without I/O; `raiseload` / `noload` send none (and a `raiseload` after a
/// `selectinload` of the same relationship leaves the loaded one alone).
#[tokio::test]
async fn a_chained_selectinload_loads_two_levels_in_one_query_each() {
    let engine = setup("lo_chain", true).await;
    let capture = LogCapture::default();
    let _guard = capture.install("session_core::echo=info");
    let s = AsyncSession::new(engine.clone());
    let before = echo_statements(&capture.text()).len();
    let a_s = s
        .scalars(
            select::<A>()
                .options(selectinload(A::C.bs).selectinload(B::C.cs))
                .order_by(A::C.id.asc()),
        )
        .await
        .unwrap()
        .all();
    let log = capture.text();
    let sql = selects(&echo_statements(&log)[before..]);
    assert_eq!(sql.len(), 3, "{sql:#?}");
    let bs = a_s[0].read().unwrap().bs.get().unwrap().to_vec();
    assert_eq!(names_of_cs(&bs[0]), ["c1", "c2"]);
    assert_eq!(names_of_cs(&bs[1]), ["c3"]);
    let b3 = a_s[1].read().unwrap().bs.get().unwrap()[0].clone();
    assert_eq!(names_of_cs(&b3), ["c4"]);
    s.close().await;

    // raiseload and noload send no query of their own.
    let s = AsyncSession::new(engine.clone());
    let before = echo_statements(&capture.text()).len();
    let a_s = s
        .scalars(
            select::<A>()
                .options(selectinload(A::C.bs).noload(B::C.cs))
                .options(raiseload(A::C.bs)),
        )
        .await
        .unwrap()
        .all();
    let log = capture.text();
    assert_eq!(selects(&echo_statements(&log)[before..]).len(), 2, "{log}");
    let b1 = a_s[0].read().unwrap().bs.get().unwrap()[0].clone();
    assert!(
        b1.read().unwrap().cs.get().unwrap().is_empty(),
        "noload: empty"
    );
    s.close().await;
}

/// `joinedload(C.b).joinedload(B.a)` nested, and `joinedload(B.a).selectinload(A.bs)`: the
/// first join in the query, what follows it in later queries.
#[tokio::test]
async fn a_joinedload_followed_by_a_selectinload_loads_the_parents_collections() {
    let engine = setup("lo_joined", false).await;
    let s = AsyncSession::new(engine.clone());
    let bs = s
        .scalars(
            select::<B>()
                .options(joinedload(B::C.a).selectinload(A::C.bs))
                .order_by(B::C.id.asc()),
        )
        .await
        .unwrap()
        .all();
    let a1 = bs[0].read().unwrap().a.get().unwrap().cloned().unwrap();
    let siblings: Vec<String> = a1
        .read()
        .unwrap()
        .bs
        .get()
        .unwrap()
        .iter()
        .map(|b| b.read().unwrap().name.clone())
        .collect();
    assert_eq!(siblings, ["b1", "b2"]);
    assert!(
        a1.read().unwrap().bs.get().unwrap()[0].ptr_eq(&bs[0]),
        "the same b1 object"
    );
    let cs = s
        .scalars(
            select::<C>()
                .options(joinedload(C::C.b).joinedload(B::C.a))
                .order_by(C::C.id.asc()),
        )
        .await
        .unwrap()
        .all();
    let b = cs[3].read().unwrap().b.get().unwrap().cloned().unwrap();
    let a = b.read().unwrap().a.get().unwrap().cloned().unwrap();
    assert_eq!(a.read().unwrap().name, "a2");
    s.close().await;
}

/// `.options(...)` gives one step several options; a chain also works on `get` and
/// `session.load`.
#[tokio::test]
async fn one_step_takes_several_options_and_chains_work_on_get_and_load() {
    let engine = setup("lo_options", false).await;
    let s = AsyncSession::new(engine.clone());
    let b1 = s
        .get_with::<B>(
            1,
            GetOptions::new()
                .options(selectinload(B::C.a).options(selectinload(A::C.bs)))
                .options(selectinload(B::C.cs).joinedload(C::C.b)),
        )
        .await
        .unwrap()
        .unwrap();
    let a1 = b1.read().unwrap().a.get().unwrap().cloned().unwrap();
    assert_eq!(a1.read().unwrap().bs.len(), 2);
    let c1 = b1.read().unwrap().cs.get().unwrap()[0].clone();
    assert!(c1.read().unwrap().b.get().unwrap().unwrap().ptr_eq(&b1));

    let a_s = s.scalars(select::<A>()).await.unwrap().all();
    s.load(&a_s, selectinload(A::C.bs).selectinload(B::C.cs))
        .await
        .unwrap();
    let total: usize = a_s
        .iter()
        .flat_map(|a| a.read().unwrap().bs.get().unwrap().to_vec())
        .map(|b| b.read().unwrap().cs.len())
        .sum();
    assert_eq!(total, 4);
    s.close().await;
}

/// `raiseload`: reading the relationship is an error with SQLAlchemy's message, naming it;
/// `noload`: empty without SQL. Neither touches a relationship already loaded.
#[tokio::test]
async fn raiseload_refuses_the_read_and_noload_leaves_it_empty() {
    let engine = setup("lo_raise", false).await;
    let s = AsyncSession::new(engine.clone());
    let a_s = s
        .scalars(select::<A>().options(raiseload(A::C.bs)))
        .await
        .unwrap()
        .all();
    let e = a_s[0].read().unwrap().bs.get().unwrap_err().to_string();
    assert!(
        e.starts_with("'A.bs' is not available due to lazy='raise'"),
        "{e}"
    );
    let e = a_s[0]
        .write()
        .unwrap()
        .bs
        .push(Obj::new(B::default()))
        .unwrap_err();
    assert!(e.to_string().contains("lazy='raise'"), "{e}");
    // Loading it explicitly afterwards works.
    s.load(&a_s, selectinload(A::C.bs)).await.unwrap();
    assert_eq!(a_s[0].read().unwrap().bs.len(), 2);

    let bs = s
        .scalars(
            select::<B>()
                .options(raiseload(B::C.a))
                .options(noload(B::C.cs)),
        )
        .await
        .unwrap()
        .all();
    let e = bs[0].read().unwrap().a.get().unwrap_err().to_string();
    assert!(
        e.contains("'B.a' is not available due to lazy='raise'"),
        "{e}"
    );
    assert!(bs[0].read().unwrap().cs.get().unwrap().is_empty(), "noload");

    // An object already loaded keeps what it has: a1.bs stays loaded under raiseload.
    let again = s
        .scalars(
            select::<A>()
                .options(raiseload(A::C.bs))
                .order_by(A::C.id.asc()),
        )
        .await
        .unwrap()
        .all();
    assert!(again[0].ptr_eq(&a_s[0]));
    assert_eq!(again[0].read().unwrap().bs.len(), 2);
    // Chained: raise one level down.
    let s2 = AsyncSession::new(engine.clone());
    let a_s = s2
        .scalars(select::<A>().options(selectinload(A::C.bs).raiseload(B::C.cs)))
        .await
        .unwrap()
        .all();
    let b = a_s[0].read().unwrap().bs.get().unwrap()[0].clone();
    let e = b.read().unwrap().cs.get().unwrap_err().to_string();
    assert!(
        e.contains("'B.cs' is not available due to lazy='raise'"),
        "{e}"
    );
    s2.close().await;
    s.close().await;
}
