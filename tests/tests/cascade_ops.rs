//! The cascades of session operations (SQLAlchemy's `test/orm/test_cascade.py` and
//! `test_merge.py` cases): expunging, expiring or merging an object does the same to the
//! objects its relationships with the `expunge`, `refresh-expire` or `merge` cascade hold, and
//! theirs in turn; without it they stay as they are.

use session_core::{Collection, Engine, Entity, MetaData, Obj, ObjectState, select, selectinload};
use session_tests::support::{create_schema, engine, kept_session as session};

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "customer")]
struct Customer {
    #[entity(primary_key, generated)]
    id: i32,
    name: String,
    #[entity(relationship(
        foreign_key = "customer_id",
        cascade = "save-update, merge, expunge, refresh-expire"
    ))]
    orders: Collection<Order>,
    /// No cascade beyond save-update.
    #[entity(relationship(foreign_key = "customer_id", cascade = "save-update"))]
    notes: Collection<Note>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "orders")]
struct Order {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(foreign_key = "customer.id")]
    customer_id: i32,
    /// SQLAlchemy's `all`.
    #[entity(relationship(foreign_key = "order_id", cascade = "all"))]
    lines: Collection<OrderLine>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "order_line")]
struct OrderLine {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(foreign_key = "orders.id")]
    order_id: i32,
    sku: String,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "note")]
struct Note {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(foreign_key = "customer.id")]
    customer_id: i32,
}

async fn setup(prefix: &str) -> Engine {
    let engine = engine(prefix, 4).await;
    create_schema(
        &engine,
        MetaData::new()
            .with::<Customer>()
            .with::<Order>()
            .with::<OrderLine>()
            .with::<Note>(),
    )
    .await;
    let s = session(&engine);
    let c = Obj::new(Customer {
        name: "c".into(),
        ..Customer::default()
    });
    let o = Obj::new(Order::default());
    o.write()
        .unwrap()
        .lines
        .push(Obj::new(OrderLine {
            sku: "x".into(),
            ..OrderLine::default()
        }))
        .unwrap();
    c.write().unwrap().orders.push(o).unwrap();
    c.write()
        .unwrap()
        .notes
        .push(Obj::new(Note::default()))
        .unwrap();
    s.add(&c).unwrap();
    s.commit().await.unwrap();
    engine
}

/// The customer with its orders, their lines and its notes loaded.
async fn graph(
    s: &session_core::AsyncSession,
) -> (Obj<Customer>, Obj<Order>, Obj<OrderLine>, Obj<Note>) {
    let c = s
        .scalars(
            select::<Customer>()
                .options(selectinload(Customer::C.orders).selectinload(Order::C.lines))
                .options(selectinload(Customer::C.notes)),
        )
        .await
        .unwrap()
        .one()
        .unwrap();
    let o = c.read().unwrap().orders.get().unwrap()[0].clone();
    let l = o.read().unwrap().lines.get().unwrap()[0].clone();
    let n = c.read().unwrap().notes.get().unwrap()[0].clone();
    (c, o, l, n)
}

#[tokio::test]
async fn expunge_follows_the_expunge_cascade_two_levels_down() {
    let engine = setup("casc_expunge").await;
    let s = session(&engine);
    let (c, o, l, n) = graph(&s).await;
    s.expunge(&c).unwrap();
    for state in [c.state(), o.state(), l.state()] {
        assert_eq!(state, ObjectState::Detached);
    }
    // No expunge cascade: the note stays.
    assert_eq!(n.state(), ObjectState::Persistent);
    assert!(s.contains(&n));
}

#[tokio::test]
async fn expire_and_refresh_follow_the_refresh_expire_cascade() {
    let engine = setup("casc_expire").await;
    let s = session(&engine);
    let (c, o, l, n) = graph(&s).await;
    s.expire(&c, &[]).unwrap();
    assert!(c.is_expired() && o.is_expired() && l.is_expired());
    assert!(!n.is_expired());

    let s = session(&engine);
    let (c, o, l, n) = graph(&s).await;
    s.refresh(&c, &[]).await.unwrap();
    assert!(!c.is_expired(), "refreshed");
    assert!(o.is_expired() && l.is_expired(), "expired by the cascade");
    assert!(!n.is_expired());
    // Expired objects load again when asked for.
    s.refresh(&l, &[]).await.unwrap();
    assert_eq!(l.read().unwrap().sku, "x");

    // Expiring some attributes does not cascade (SQLAlchemy's).
    let s = session(&engine);
    let (c, o, _, _) = graph(&s).await;
    s.expire(&c, &[&Customer::C.name]).unwrap();
    assert!(!o.is_expired());
}

/// `test_merge.py`'s detached graph: merging a detached customer merges its loaded orders and
/// their lines (changed, and one new order) into the session's own objects; the notes, without
/// a merge cascade, stay as the session has them; the detached objects stay detached.
#[tokio::test]
async fn merge_follows_the_merge_cascade_into_the_sessions_objects() {
    let engine = setup("casc_merge").await;
    let a = session(&engine);
    let (c, o, l, _) = graph(&a).await;
    a.close().await;
    assert_eq!(c.state(), ObjectState::Detached);
    c.write().unwrap().name = "c2".into();
    l.write().unwrap().sku = "y".into();
    c.write()
        .unwrap()
        .orders
        .push(Obj::new(Order::default()))
        .unwrap();
    c.write().unwrap().notes.set(Vec::new()); // not merged: the session's notes stay

    let b = session(&engine);
    let merged = b.merge(&c).await.unwrap();
    assert!(!merged.ptr_eq(&c));
    assert_eq!(merged.state(), ObjectState::Persistent);
    let orders = merged.read().unwrap().orders.get().unwrap().to_vec();
    assert_eq!(orders.len(), 2);
    assert!(
        !orders[0].ptr_eq(&o),
        "the session's copy, not the detached order"
    );
    assert_eq!(orders[0].state(), ObjectState::Persistent);
    assert_eq!(orders[1].state(), ObjectState::Pending);
    let line = orders[0].read().unwrap().lines.get().unwrap()[0].clone();
    assert!(!line.ptr_eq(&l));
    assert_eq!(line.read().unwrap().sku, "y");
    assert!(
        !merged.read().unwrap().notes.is_loaded(),
        "the session's own, not loaded"
    );
    b.commit().await.unwrap();
    for obj in [c.state(), o.state(), l.state()] {
        assert_eq!(obj, ObjectState::Detached);
    }

    let s = session(&engine);
    let (c, _, l, _) = graph(&s).await;
    assert_eq!(c.read().unwrap().name, "c2");
    assert_eq!(c.read().unwrap().orders.len(), 2);
    assert_eq!(c.read().unwrap().notes.len(), 1);
    assert_eq!(l.read().unwrap().sku, "y");
}

/// A transient graph merged: new pending copies, linked to each other, inserted together.
#[tokio::test]
async fn merging_a_transient_graph_adds_copies() {
    let engine = setup("casc_merge_new").await;
    let c = Obj::new(Customer {
        name: "new".into(),
        ..Customer::default()
    });
    let o = Obj::new(Order::default());
    o.write()
        .unwrap()
        .lines
        .push(Obj::new(OrderLine {
            sku: "z".into(),
            ..OrderLine::default()
        }))
        .unwrap();
    c.write().unwrap().orders.push(o.clone()).unwrap();
    let s = session(&engine);
    let merged = s.merge(&c).await.unwrap();
    assert!(!merged.ptr_eq(&c) && c.state() == ObjectState::Transient);
    s.commit().await.unwrap();
    assert_eq!(o.state(), ObjectState::Transient, "the source is not added");
    let s = session(&engine);
    let skus: Vec<String> = s
        .scalars(select::<OrderLine>().order_by(OrderLine::C.id.asc()))
        .await
        .unwrap()
        .all()
        .iter()
        .map(|l| l.read().unwrap().sku.clone())
        .collect();
    assert_eq!(skus, ["x", "z"]);
}
