//! Workload graph_flush: one transaction over a schema four tables deep (region → store →
//! shelf → slot) that adds new chains of all four, renames existing shelves and deletes
//! existing slots, on the session and by hand.

use session_core::{Collection, Entity, MetaData, Obj, select, sql_expr};
use tokio_postgres::types::Type;

use super::hand::{HandResult, Pool};
use session_core::{AsyncSessionMaker, Result};

/// Level 1.
#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "region")]
pub(crate) struct Region {
    /// Generated key.
    #[entity(primary_key, generated)]
    pub(crate) id: i32,
    /// Payload.
    pub(crate) name: String,
    /// Level 2.
    #[entity(relationship(foreign_key = "region_id"))]
    pub(crate) stores: Collection<Store>,
}

/// Level 2.
#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "store")]
pub(crate) struct Store {
    /// Generated key.
    #[entity(primary_key, generated)]
    pub(crate) id: i32,
    /// Parent.
    #[entity(foreign_key = "region.id")]
    pub(crate) region_id: i32,
    /// Payload.
    pub(crate) name: String,
    /// Level 3.
    #[entity(relationship(foreign_key = "store_id"))]
    pub(crate) shelves: Collection<Shelf>,
}

/// Level 3.
#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "shelf")]
pub(crate) struct Shelf {
    /// Generated key.
    #[entity(primary_key, generated)]
    pub(crate) id: i32,
    /// Parent.
    #[entity(foreign_key = "store.id")]
    pub(crate) store_id: i32,
    /// Payload.
    pub(crate) name: String,
    /// Level 4.
    #[entity(relationship(foreign_key = "shelf_id"))]
    pub(crate) slots: Collection<Slot>,
}

/// Level 4.
#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "slot")]
pub(crate) struct Slot {
    /// Generated key.
    #[entity(primary_key, generated)]
    pub(crate) id: i32,
    /// Parent.
    #[entity(foreign_key = "shelf.id")]
    pub(crate) shelf_id: i32,
    /// Payload.
    pub(crate) name: String,
}

/// The four tables.
pub(crate) fn metadata() -> MetaData {
    MetaData::new()
        .with::<Region>()
        .with::<Store>()
        .with::<Shelf>()
        .with::<Slot>()
}

/// The rows both sides start from: `chains` regions, each with one store, one shelf and two
/// slots (ids 1.. in order on a fresh database).
pub(crate) fn seed_sql(chains: usize) -> String {
    format!(
        "INSERT INTO region (name) SELECT 'r' || g FROM generate_series(1, {chains}) g;
         INSERT INTO store (region_id, name) SELECT g, 's' || g FROM generate_series(1, {chains}) g;
         INSERT INTO shelf (store_id, name) SELECT g, 'h' || g FROM generate_series(1, {chains}) g;
         INSERT INTO slot (shelf_id, name) SELECT (g + 1) / 2, 'x' || g
             FROM generate_series(1, {} ) g",
        chains * 2
    )
}

/// Deleted slots: the even ids (one per shelf).
const EVEN: &str = "id % 2 = 0";

/// The session side: `chains` new chains, every shelf renamed, every even slot deleted, one
/// commit.
pub(crate) async fn ours(maker: &AsyncSessionMaker, chains: usize) -> Result<()> {
    maker
        .scope(async |s| {
            let shelves = s.scalars(select::<Shelf>()).await?.all();
            let slots = s
                .scalars(select::<Slot>().filter(sql_expr(EVEN, ())))
                .await?
                .all();
            for shelf in &shelves {
                shelf.write()?.name.push('!');
            }
            for slot in &slots {
                s.delete(slot)?;
            }
            for i in 0..chains {
                let slot = Obj::new(Slot {
                    name: format!("nx{i}"),
                    ..Slot::default()
                });
                let shelf = Obj::new(Shelf {
                    name: format!("nh{i}"),
                    slots: Collection::from_vec(vec![slot]),
                    ..Shelf::default()
                });
                let store = Obj::new(Store {
                    name: format!("ns{i}"),
                    shelves: Collection::from_vec(vec![shelf]),
                    ..Store::default()
                });
                s.add(&Obj::new(Region {
                    name: format!("nr{i}"),
                    stores: Collection::from_vec(vec![store]),
                    ..Region::default()
                }))?;
            }
            s.commit().await
        })
        .await
}

/// The same by hand: BEGIN, the two SELECTs, one array INSERT per level (keys returned in
/// input order), one array UPDATE, one array DELETE, COMMIT; each answer awaited.
pub(crate) async fn hand(pool: &Pool, chains: usize) -> HandResult<()> {
    let err = |e: tokio_postgres::Error| e.to_string();
    let mut client = pool.get().await.map_err(|e| e.to_string())?;
    let tx = client.transaction().await.map_err(err)?;
    let shelves = tx
        .query_typed("SELECT id, store_id, name FROM shelf", &[])
        .await
        .map_err(err)?;
    let slots = tx
        .query_typed(
            &format!("SELECT id, shelf_id, name FROM slot WHERE {EVEN}"),
            &[],
        )
        .await
        .map_err(err)?;
    let mut parents: Vec<i32> = Vec::new();
    for (table, fk, prefix) in [
        ("region", None, "nr"),
        ("store", Some("region_id"), "ns"),
        ("shelf", Some("store_id"), "nh"),
        ("slot", Some("shelf_id"), "nx"),
    ] {
        let names: Vec<String> = (0..chains).map(|i| format!("{prefix}{i}")).collect();
        let rows = match fk {
            None => {
                tx.query_typed(
                    &format!(
                        "WITH ins AS (INSERT INTO {table} (name) SELECT n FROM \
                         unnest($1::varchar[]) WITH ORDINALITY AS t(n, ord) ORDER BY ord \
                         RETURNING id) SELECT id FROM ins ORDER BY id"
                    ),
                    &[(&names, Type::VARCHAR_ARRAY)],
                )
                .await
            }
            Some(fk) => {
                tx.query_typed(
                    &format!(
                        "WITH ins AS (INSERT INTO {table} ({fk}, name) SELECT p, n FROM \
                         unnest($1::integer[], $2::varchar[]) WITH ORDINALITY AS t(p, n, ord) \
                         ORDER BY ord RETURNING id) SELECT id FROM ins ORDER BY id"
                    ),
                    &[(&parents, Type::INT4_ARRAY), (&names, Type::VARCHAR_ARRAY)],
                )
                .await
            }
        }
        .map_err(err)?;
        parents = rows.iter().map(|r| r.get(0)).collect();
    }
    let ids: Vec<i32> = shelves.iter().map(|r| r.get(0)).collect();
    let names: Vec<String> = shelves
        .iter()
        .map(|r| format!("{}!", r.get::<_, String>(2)))
        .collect();
    tx.query_typed(
        "UPDATE shelf SET name = t.n FROM unnest($1::integer[], $2::varchar[]) AS t(k, n) \
         WHERE shelf.id = t.k",
        &[(&ids, Type::INT4_ARRAY), (&names, Type::VARCHAR_ARRAY)],
    )
    .await
    .map_err(err)?;
    let gone: Vec<i32> = slots.iter().map(|r| r.get(0)).collect();
    tx.query_typed(
        "DELETE FROM slot WHERE id = ANY($1)",
        &[(&gone, Type::INT4_ARRAY)],
    )
    .await
    .map_err(err)?;
    tx.commit().await.map_err(err)?;
    Ok(())
}
