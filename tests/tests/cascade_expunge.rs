//! The `expunge` and `refresh-expire` cascades (SQLAlchemy's `test/orm/test_cascade.py`
//! expunge and refresh-expire cases): expunging or expiring an object does the same to the
//! objects its relationships with that cascade hold, and theirs in turn; without it they stay.

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
        cascade = "save-update, expunge, refresh-expire"
    ))]
    orders: Collection<Order>,
    /// No cascade beyond save-update.
    #[entity(relationship(foreign_key = "customer_id"))]
    notes: Collection<Note>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "orders")]
struct Order {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(foreign_key = "customer.id")]
    customer_id: i32,
    #[entity(relationship(foreign_key = "order_id", cascade = "expunge, refresh-expire"))]
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
