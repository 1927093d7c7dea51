//! `back_populates`: both sides of a one-to-many kept in step in memory (SQLAlchemy's
//! `test/orm/test_backref_mutations.py`, `O2MCollectionTest`), then written as they read.

use session_core::{
    AsyncSession, Collection, Engine, Entity, MetaData, Obj, Reference, select, selectinload,
};
use session_tests::support::{create_schema, engine, kept_session as session};

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "users")]
struct User {
    #[entity(primary_key, generated)]
    id: i32,
    name: String,
    #[entity(relationship(foreign_key = "user_id", back_populates = "user"))]
    addresses: Collection<Address>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "addresses")]
struct Address {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(foreign_key = "users.id")]
    user_id: Option<i32>,
    email: String,
    #[entity(relationship(foreign_key = "user_id", back_populates = "addresses"))]
    user: Reference<User>,
}

fn user(name: &str) -> Obj<User> {
    Obj::new(User {
        name: name.into(),
        ..User::default()
    })
}

fn address(email: &str) -> Obj<Address> {
    Obj::new(Address {
        email: email.into(),
        ..Address::default()
    })
}

/// `a.user`, `None` for none.
fn owner(a: &Obj<Address>) -> Option<Obj<User>> {
    a.read().unwrap().user.get().unwrap().cloned()
}

fn holds(u: &Obj<User>, a: &Obj<Address>) -> bool {
    u.read()
        .unwrap()
        .addresses
        .get()
        .unwrap()
        .iter()
        .any(|x| x.ptr_eq(a))
}

async fn setup(prefix: &str) -> Engine {
    let engine = engine(prefix, 2).await;
    create_schema(&engine, MetaData::new().with::<User>().with::<Address>()).await;
    engine
}

/// The stored (email, user name) pairs.
async fn stored(engine: &Engine) -> Vec<(String, Option<String>)> {
    let mut conn = engine.connect().await.unwrap();
    let rows = conn
        .query(
            "SELECT a.email, u.name FROM addresses a LEFT JOIN users u ON u.id = a.user_id \
             ORDER BY a.email",
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

/// `test_collection_assignment_mutates_previous_one`, `test_del_from_collection`,
/// `test_straight_remove`, on transient objects: no session involved.
#[test]
fn appending_and_removing_set_and_clear_the_other_side_at_once() {
    let (u1, a1, a2) = (user("jack"), address("a1"), address("a2"));
    u1.write().unwrap().addresses.push(a1.clone()).unwrap();
    u1.write().unwrap().addresses.push(a2.clone()).unwrap();
    assert!(owner(&a1).unwrap().ptr_eq(&u1), "a1.user is u1");
    assert!(owner(&a2).unwrap().ptr_eq(&u1));
    assert!(u1.write().unwrap().addresses.remove(&a2).unwrap());
    assert!(owner(&a2).is_none(), "a2.user is None after the remove");
    assert!(owner(&a1).unwrap().ptr_eq(&u1), "a1 untouched");
    // The reverse: setting the reference puts the address into the loaded collection.
    a2.write().unwrap().user.set(Some(u1.clone()));
    assert!(holds(&u1, &a2));
    a2.write().unwrap().user.set(None);
    assert!(!holds(&u1, &a2), "del a1.user takes it out of u1.addresses");
    assert_eq!(u1.read().unwrap().addresses.len(), 1);
}

/// `test_collection_assignment_mutates_previous_one` / `_two`, `test_bulk_replace`.
#[test]
fn replacing_a_collection_moves_its_objects_from_their_previous_parent() {
    let (u1, u2, a1, a2) = (user("jack"), user("ed"), address("a1"), address("a2"));
    u1.write()
        .unwrap()
        .addresses
        .set(vec![a1.clone(), a2.clone()]);
    assert!(owner(&a1).unwrap().ptr_eq(&u1));
    u2.write().unwrap().addresses.set(vec![a1.clone()]);
    assert!(owner(&a1).unwrap().ptr_eq(&u2), "a1.user is u2");
    assert!(!holds(&u1, &a1), "u1.addresses lost a1");
    assert!(holds(&u1, &a2));
    u1.write().unwrap().addresses.set(Vec::new());
    assert!(
        owner(&a2).is_none(),
        "u1.addresses = [] sets a2.user to None"
    );
    assert!(owner(&a1).unwrap().ptr_eq(&u2), "a1 belongs to u2 still");
}

/// `User(name="jack", addresses=[a1])`: a new object's relationships point back at it.
#[test]
fn a_new_object_points_its_children_back_at_itself() {
    let a1 = address("a1");
    let u1 = Obj::new(User {
        name: "jack".into(),
        addresses: Collection::from_vec(vec![a1.clone()]),
        ..User::default()
    });
    assert!(owner(&a1).unwrap().ptr_eq(&u1));
    let a2 = Obj::new(Address {
        user: Reference::to(u1.clone()),
        ..Address::default()
    });
    assert!(holds(&u1, &a2), "Address(user=u1) joins u1.addresses");
}

/// A guard the thread holds on the other object defers its update (no deadlock) until that
/// guard is released.
#[test]
fn a_guard_held_on_the_other_side_defers_the_update_until_it_is_released() {
    let (u1, a1) = (user("jack"), address("a1"));
    {
        let read = a1.read().unwrap();
        u1.write().unwrap().addresses.push(a1.clone()).unwrap();
        assert!(
            read.user.get().unwrap().is_none(),
            "not yet: a1 is being read"
        );
    }
    assert!(
        owner(&a1).unwrap().ptr_eq(&u1),
        "done once the read guard went"
    );
    // A node appended to its own collection (one object, both sides).
    let u = user("self");
    u.write().unwrap().addresses.push(a1.clone()).unwrap();
    assert!(owner(&a1).unwrap().ptr_eq(&u));
    assert!(!holds(&u1, &a1));
}

/// `test_collection_move_preloaded` and `test_collection_move_commitfirst`: the foreign key
/// moves with the object in memory, and the flush writes it.
#[tokio::test]
async fn moving_a_child_between_loaded_collections_moves_its_key_and_row() {
    let engine = setup("br_move").await;
    let s = session(&engine);
    let (u1, u2, a1) = (user("jack"), user("ed"), address("a1"));
    u1.write().unwrap().addresses.push(a1.clone()).unwrap();
    s.add_all([&u1, &u2]).unwrap();
    s.commit().await.unwrap();
    let u2_id = u2.read().unwrap().id;
    assert_eq!(a1.read().unwrap().user_id, Some(u1.read().unwrap().id));

    u2.write().unwrap().addresses.push(a1.clone()).unwrap();
    assert!(
        owner(&a1).unwrap().ptr_eq(&u2),
        "backref fires: a1.user is u2"
    );
    assert!(!holds(&u1, &a1), "a1 left u1.addresses ([ticket:2789])");
    assert_eq!(a1.read().unwrap().user_id, Some(u2_id), "the key, at once");
    s.commit().await.unwrap();
    assert_eq!(stored(&engine).await, pairs(&[("a1", Some("ed"))]));
}

/// `test_scalar_move_preloaded`, `test_set_none`: setting the many-to-one moves the object
/// between the loaded collections and sets (or clears) the key.
#[tokio::test]
async fn setting_the_reference_moves_the_child_and_its_key() {
    let engine = setup("br_scalar").await;
    let s = session(&engine);
    let (u1, u2, a1) = (user("jack"), user("ed"), address("a1"));
    a1.write().unwrap().user.set(Some(u1.clone()));
    assert!(holds(&u1, &a1), "Address.user = u1 appends to u1.addresses");
    s.add_all([&u1, &u2]).unwrap();
    s.commit().await.unwrap();

    a1.write().unwrap().user.set(Some(u2.clone()));
    assert!(!holds(&u1, &a1) && holds(&u2, &a1));
    assert_eq!(a1.read().unwrap().user_id, Some(u2.read().unwrap().id));
    s.commit().await.unwrap();
    assert_eq!(stored(&engine).await, pairs(&[("a1", Some("ed"))]));

    a1.write().unwrap().user.set(None);
    assert!(!holds(&u2, &a1));
    assert_eq!(a1.read().unwrap().user_id, None, "the key is cleared too");
    s.commit().await.unwrap();
    assert_eq!(stored(&engine).await, pairs(&[("a1", None)]));
}

/// `test_straight_remove` against the database: a removed child is written with a NULL key,
/// and moves after a reload stay right.
#[tokio::test]
async fn a_child_taken_out_is_stored_without_a_parent() {
    let engine = setup("br_remove").await;
    let s = session(&engine);
    let u1 = user("jack");
    for e in ["a1", "a2", "a3"] {
        u1.write().unwrap().addresses.push(address(e)).unwrap();
    }
    s.add(&u1).unwrap();
    s.commit().await.unwrap();
    let a3 = u1.read().unwrap().addresses.get().unwrap()[2].clone();
    u1.write().unwrap().addresses.remove(&a3).unwrap();
    assert_eq!(a3.read().unwrap().user_id, None);
    assert!(owner(&a3).is_none());
    s.commit().await.unwrap();
    assert_eq!(
        stored(&engine).await,
        pairs(&[("a1", Some("jack")), ("a2", Some("jack")), ("a3", None)])
    );
}

/// Loading `u.addresses` with `selectinload` fills each address's `user` with the same
/// object, without another query (SQLAlchemy finds it in the identity map).
#[tokio::test]
async fn selectinload_fills_the_back_reference_too() {
    let engine = setup("br_load").await;
    let s = session(&engine);
    let u1 = user("jack");
    u1.write().unwrap().addresses.push(address("a1")).unwrap();
    s.add(&u1).unwrap();
    s.commit().await.unwrap();
    let fresh = AsyncSession::new(engine.clone());
    let u = fresh
        .scalars(select::<User>().options(selectinload(User::C.addresses)))
        .await
        .unwrap()
        .one()
        .unwrap();
    let a = u.read().unwrap().addresses.get().unwrap()[0].clone();
    assert!(owner(&a).unwrap().ptr_eq(&u));
    fresh.close().await;
}

/// No reference cycle outlives the session: a parent and child linked both ways are freed
/// once the session is closed and the caller lets go.
#[tokio::test]
async fn objects_linked_both_ways_are_freed_after_the_session_closes() {
    let engine = setup("br_cycle").await;
    let s = AsyncSession::new(engine.clone());
    let (u1, a1) = (user("jack"), address("a1"));
    u1.write().unwrap().addresses.push(a1.clone()).unwrap();
    assert!(owner(&a1).is_some());
    s.add(&u1).unwrap();
    s.commit().await.unwrap();
    let loaded = s
        .scalars(select::<User>().options(selectinload(User::C.addresses)))
        .await
        .unwrap()
        .one()
        .unwrap();
    let (weak_u, weak_a) = (loaded.downgrade(), a1.downgrade());
    s.close().await;
    drop((u1, a1, loaded));
    assert!(weak_u.upgrade().is_none(), "the user was freed");
    assert!(weak_a.upgrade().is_none(), "the address was freed");
}

/// With `delete-orphan`, a child taken out (its reference and key cleared at once) is
/// deleted at the flush; one moved to another parent is kept with the new key
/// (`test_cascade.py`'s `O2MCascadeDeleteOrphanTest` with a backref).
#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "basket")]
struct Basket {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(relationship(
        foreign_key = "basket_id",
        back_populates = "basket",
        cascade = "delete, delete-orphan"
    ))]
    fruit: Collection<Fruit>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "fruit")]
struct Fruit {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(foreign_key = "basket.id")]
    basket_id: Option<i32>,
    name: String,
    #[entity(relationship(foreign_key = "basket_id", back_populates = "fruit"))]
    basket: Reference<Basket>,
}

#[tokio::test]
async fn delete_orphan_with_back_populates_deletes_the_removed_and_keeps_the_moved() {
    let engine = engine("br_orphan", 2).await;
    create_schema(&engine, MetaData::new().with::<Basket>().with::<Fruit>()).await;
    let s = session(&engine);
    let (b1, b2) = (Obj::new(Basket::default()), Obj::new(Basket::default()));
    let fruit: Vec<Obj<Fruit>> = ["apple", "pear"]
        .iter()
        .map(|n| {
            Obj::new(Fruit {
                name: (*n).into(),
                basket: Reference::to(b1.clone()),
                ..Fruit::default()
            })
        })
        .collect();
    assert_eq!(
        b1.read().unwrap().fruit.len(),
        2,
        "Fruit(basket=b1) joined b1"
    );
    s.add_all([&b1, &b2]).unwrap();
    s.commit().await.unwrap();
    b1.write().unwrap().fruit.remove(&fruit[0]).unwrap();
    fruit[1].write().unwrap().basket.set(Some(b2.clone()));
    assert!(b1.read().unwrap().fruit.is_empty());
    s.commit().await.unwrap();
    let mut conn = engine.connect().await.unwrap();
    let rows = conn
        .query("SELECT name, basket_id FROM fruit ORDER BY name", &[])
        .await
        .unwrap();
    conn.close().await;
    let got: Vec<(String, Option<i32>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(got, [("pear".to_string(), Some(b2.read().unwrap().id))]);
}
