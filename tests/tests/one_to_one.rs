//! One-to-one (SQLAlchemy's `relationship(uselist=False)`): a `Reference` on the side
//! without the foreign key, loaded like a collection, with one row per parent enforced
//! (`test_backref_mutations.py`'s `O2OScalarBackrefMoveTest`, `test_cascade.py`'s
//! one-to-one delete cascade).

use session_core::{
    AsyncSession, Engine, Entity, MetaData, Obj, ObjectState, Reference, joinedload, select,
    selectinload,
};
use session_tests::support::{count_rows, create_schema, engine, kept_session as session};

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "account")]
struct Account {
    #[entity(primary_key, generated)]
    id: i32,
    name: String,
    #[entity(relationship(
        foreign_key = "account_id",
        uselist = false,
        back_populates = "account",
        cascade = "save-update, delete"
    ))]
    profile: Reference<Profile>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "profile")]
struct Profile {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(foreign_key = "account.id", unique)]
    account_id: Option<i32>,
    bio: String,
    #[entity(relationship(foreign_key = "account_id", back_populates = "profile"))]
    account: Reference<Account>,
}

fn account(name: &str) -> Obj<Account> {
    Obj::new(Account {
        name: name.into(),
        ..Account::default()
    })
}

fn profile(bio: &str) -> Obj<Profile> {
    Obj::new(Profile {
        bio: bio.into(),
        ..Profile::default()
    })
}

fn profile_of(a: &Obj<Account>) -> Option<Obj<Profile>> {
    a.read().unwrap().profile.get().unwrap().cloned()
}

fn account_of(p: &Obj<Profile>) -> Option<Obj<Account>> {
    p.read().unwrap().account.get().unwrap().cloned()
}

async fn setup(prefix: &str) -> Engine {
    let engine = engine(prefix, 2).await;
    create_schema(&engine, MetaData::new().with::<Account>().with::<Profile>()).await;
    engine
}

/// (bio, account name) as stored.
async fn stored(engine: &Engine) -> Vec<(String, Option<String>)> {
    let mut conn = engine.connect().await.unwrap();
    let rows = conn
        .query(
            "SELECT p.bio, a.name FROM profile p LEFT JOIN account a ON a.id = p.account_id \
             ORDER BY p.bio",
            &[],
        )
        .await
        .unwrap();
    conn.close().await;
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

fn pairs(list: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
    list.iter()
        .map(|(a, u)| (a.to_string(), u.map(str::to_string)))
        .collect()
}

#[test]
fn the_foreign_key_of_a_one_to_one_is_unique_in_the_ddl() {
    let ddl = MetaData::new()
        .with::<Account>()
        .with::<Profile>()
        .create_script();
    assert!(ddl.contains("\"account_id\" integer UNIQUE"), "{ddl}");
}

/// Added through the parent, written, then loaded by selectinload, joinedload and
/// `session.load`; a parent without a child reads `None`.
#[tokio::test]
async fn a_one_to_one_is_written_through_its_parent_and_loads_every_way() {
    let engine = setup("o2o_load").await;
    let s = session(&engine);
    let (ann, bob, p) = (account("ann"), account("bob"), profile("ann's"));
    ann.write().unwrap().profile.set(Some(p.clone()));
    assert!(
        account_of(&p).unwrap().ptr_eq(&ann),
        "back_populates: p.account"
    );
    s.add_all([&ann, &bob]).unwrap();
    s.commit().await.unwrap();
    assert_eq!(stored(&engine).await, pairs(&[("ann's", Some("ann"))]));
    assert_eq!(p.read().unwrap().account_id, Some(ann.read().unwrap().id));

    for how in ["selectin", "joined", "load"] {
        let fresh = AsyncSession::new(engine.clone());
        let stmt = select::<Account>().order_by(Account::C.name.asc());
        let accounts = match how {
            "selectin" => fresh
                .scalars(stmt.options(selectinload(Account::C.profile)))
                .await
                .unwrap()
                .all(),
            "joined" => fresh
                .scalars(stmt.options(joinedload(Account::C.profile)))
                .await
                .unwrap()
                .all(),
            _ => {
                let accounts = fresh.scalars(stmt).await.unwrap().all();
                assert!(!accounts[0].read().unwrap().profile.is_loaded());
                fresh
                    .load(&accounts, selectinload(Account::C.profile))
                    .await
                    .unwrap();
                accounts
            }
        };
        let p = profile_of(&accounts[0]).expect(how);
        assert_eq!(p.read().unwrap().bio, "ann's", "{how}");
        assert!(profile_of(&accounts[1]).is_none(), "{how}: bob has none");
        fresh.close().await;
    }
}

/// Two rows claiming one parent: the UNIQUE constraint refuses the second; with the
/// constraint gone, loading the relationship is an error naming it rather than a guess
/// (SQLAlchemy warns "Multiple rows returned with uselist=False" and keeps one).
#[tokio::test]
async fn two_children_of_one_parent_are_refused() {
    let engine = setup("o2o_unique").await;
    let s = session(&engine);
    let ann = account("ann");
    ann.write().unwrap().profile.set(Some(profile("first")));
    s.add(&ann).unwrap();
    s.commit().await.unwrap();
    let id = ann.read().unwrap().id;
    let mut conn = engine.connect().await.unwrap();
    let e = conn
        .execute(
            "INSERT INTO profile (account_id, bio) VALUES ($1, 'second')",
            &[&id],
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("unique"), "{e}");
    conn.batch_execute(
        "ALTER TABLE profile DROP CONSTRAINT profile_account_id_key; \
         INSERT INTO profile (account_id, bio) SELECT id, 'second' FROM account",
    )
    .await
    .unwrap();
    conn.close().await;
    for joined in [false, true] {
        let fresh = AsyncSession::new(engine.clone());
        let stmt = select::<Account>();
        let e = if joined {
            fresh
                .scalars(stmt.options(joinedload(Account::C.profile)))
                .await
        } else {
            fresh
                .scalars(stmt.options(selectinload(Account::C.profile)))
                .await
        }
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(
                "Multiple rows returned with uselist=False for eagerly-loaded attribute \
                 'Account.profile'"
            ),
            "{e}"
        );
        fresh.close().await;
    }
}

/// `O2OScalarBackrefMoveTest.test_scalar_move_*` / `test_collection_move_*`: giving the
/// profile to another account takes it from the first, in memory and in the database.
#[tokio::test]
async fn moving_the_child_to_another_parent_lets_the_first_go() {
    let engine = setup("o2o_move").await;
    let s = session(&engine);
    let (ann, bob, p) = (account("ann"), account("bob"), profile("p"));
    ann.write().unwrap().profile.set(Some(p.clone()));
    s.add_all([&ann, &bob]).unwrap();
    s.commit().await.unwrap();

    // The parent side: bob.profile = p.
    bob.write().unwrap().profile.set(Some(p.clone()));
    assert!(account_of(&p).unwrap().ptr_eq(&bob), "backref fires");
    assert!(profile_of(&ann).is_none(), "ann lost it");
    assert_eq!(p.read().unwrap().account_id, Some(bob.read().unwrap().id));
    s.commit().await.unwrap();
    assert_eq!(stored(&engine).await, pairs(&[("p", Some("bob"))]));

    // Letting go from the parent side: bob.profile = None clears p's key.
    bob.write().unwrap().profile.set(None);
    assert!(account_of(&p).is_none());
    assert_eq!(p.read().unwrap().account_id, None);
    s.commit().await.unwrap();
    assert_eq!(stored(&engine).await, pairs(&[("p", None)]));
    // The child side: q.account = bob.
    let q = profile("q");
    q.write().unwrap().account.set(Some(bob.clone()));
    assert!(profile_of(&bob).unwrap().ptr_eq(&q));
    assert_eq!(q.read().unwrap().account_id, Some(bob.read().unwrap().id));
    s.commit().await.unwrap();
    assert_eq!(
        stored(&engine).await,
        pairs(&[("p", None), ("q", Some("bob"))])
    );
}

/// `O2OScalarBackrefMoveTest.test_scalar_move_preloaded`: a second child set on the child
/// side replaces the first, which lets go of the parent (SQLAlchemy leaves the first pointing
/// at the parent until the flush; here both sides agree at once).
#[test]
fn a_second_child_replaces_the_first_in_memory() {
    let (ann, p, q) = (account("ann"), profile("p"), profile("q"));
    p.write().unwrap().account.set(Some(ann.clone()));
    assert!(profile_of(&ann).unwrap().ptr_eq(&p));
    q.write().unwrap().account.set(Some(ann.clone()));
    assert!(profile_of(&ann).unwrap().ptr_eq(&q), "ann.profile is q");
    assert!(account_of(&p).is_none(), "p let go of ann");
    assert!(account_of(&q).unwrap().ptr_eq(&ann));
}

/// `cascade = "delete"` on the one-to-one deletes the child with the parent.
#[tokio::test]
async fn deleting_the_parent_deletes_its_one_child() {
    let engine = setup("o2o_delete").await;
    let s = session(&engine);
    let ann = account("ann");
    let p = profile("p");
    ann.write().unwrap().profile.set(Some(p.clone()));
    s.add(&ann).unwrap();
    s.commit().await.unwrap();
    s.delete(&ann).unwrap();
    s.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "profile").await, 0);
    assert_eq!(p.state(), ObjectState::Detached);
}
