//! The diesel-async side, as diesel's guides write it: a `table!` schema, `Queryable` +
//! `Selectable` models with `Identifiable` and `Associations`, `Insertable` structs, a bb8 pool
//! of `AsyncPgConnection`s, `transaction(async |conn| ...)`. Bulk inserts are one
//! `insert_into(..).values(&vec)` per table (one multi-row VALUES, RETURNING), the eager load
//! `belonging_to(&parents)` + `grouped_by`, key lists `eq_any` (`= ANY($1)`). diesel has no
//! identity map and no change tracking: changed rows are written back with one
//! `update(&row).set(..)` each, the way its "All About Updates" guide shows.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::Error;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::bb8::Pool;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use session_tools::bench::peers;

/// The schema, as `diesel print-schema` writes it.
mod schema {
    diesel::table! {
        a (id) {
            id -> Int4,
            data -> Varchar,
            create_date -> Nullable<Timestamp>,
        }
    }

    diesel::table! {
        b (id) {
            id -> Int4,
            a_id -> Int4,
            data -> Varchar,
        }
    }

    diesel::table! {
        region (id) {
            id -> Int4,
            name -> Varchar,
        }
    }

    diesel::table! {
        store (id) {
            id -> Int4,
            region_id -> Int4,
            name -> Varchar,
        }
    }

    diesel::table! {
        shelf (id) {
            id -> Int4,
            store_id -> Int4,
            name -> Varchar,
        }
    }

    diesel::table! {
        slot (id) {
            id -> Int4,
            shelf_id -> Int4,
            name -> Varchar,
        }
    }

    diesel::joinable!(b -> a (a_id));
    diesel::joinable!(store -> region (region_id));
    diesel::joinable!(shelf -> store (store_id));
    diesel::joinable!(slot -> shelf (shelf_id));
    diesel::allow_tables_to_appear_in_same_query!(a, b, region, store, shelf, slot);
}

use schema::{a, b, region, shelf, slot, store};

/// A row of `a`.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = a, check_for_backend(diesel::pg::Pg))]
pub struct A {
    /// Key.
    pub id: i32,
    /// Payload.
    pub data: String,
    /// Server default.
    pub create_date: Option<NaiveDateTime>,
}

/// A row of `b`.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Associations)]
#[diesel(table_name = b, belongs_to(A), check_for_backend(diesel::pg::Pg))]
pub struct B {
    /// Key.
    pub id: i32,
    /// Parent.
    pub a_id: i32,
    /// Payload.
    pub data: String,
}

/// A new `a`.
#[derive(Insertable)]
#[diesel(table_name = a)]
struct NewA {
    data: String,
}

/// A new `b`.
#[derive(Insertable)]
#[diesel(table_name = b)]
struct NewB {
    a_id: i32,
    data: String,
}

/// A row of `shelf`.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = shelf, check_for_backend(diesel::pg::Pg))]
pub struct Shelf {
    /// Key.
    pub id: i32,
    /// Parent.
    pub store_id: i32,
    /// Payload.
    pub name: String,
}

/// A row of `slot`.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = slot, check_for_backend(diesel::pg::Pg))]
pub struct Slot {
    /// Key.
    pub id: i32,
    /// Parent.
    pub shelf_id: i32,
    /// Payload.
    pub name: String,
}

#[derive(Insertable)]
#[diesel(table_name = region)]
struct NewRegion {
    name: String,
}

#[derive(Insertable)]
#[diesel(table_name = store)]
struct NewStore {
    region_id: i32,
    name: String,
}

#[derive(Insertable)]
#[diesel(table_name = shelf)]
struct NewShelf {
    store_id: i32,
    name: String,
}

#[derive(Insertable)]
#[diesel(table_name = slot)]
struct NewSlot {
    shelf_id: i32,
    name: String,
}

fn err(e: impl std::fmt::Display) -> String {
    format!("diesel-async: {e}")
}

/// The diesel-async side on one database.
pub struct Side {
    pool: Pool<AsyncPgConnection>,
}

impl Side {
    /// A bb8 pool of 10 connections on `url`, not pinged on checkout (as the other sides).
    pub async fn new(url: &str) -> Result<Self, String> {
        let config = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url);
        let pool = Pool::builder()
            .max_size(10)
            .test_on_check_out(false)
            .build(config)
            .await
            .map_err(err)?;
        Ok(Side { pool })
    }

    /// Opens all 10 connections (see `Side::warm` in main.rs).
    pub async fn warm(&self) -> Result<(), String> {
        let conns = futures::future::try_join_all((0..10).map(|_| async {
            let mut conn = self.pool.get().await.map_err(err)?;
            diesel::sql_query("SELECT 1")
                .execute(&mut conn)
                .await
                .map_err(err)?;
            Ok::<_, String>(conn)
        }))
        .await?;
        drop(conns);
        Ok(())
    }

    /// Runs workload `step` (an index of [`peers::WORKLOADS`]); its time.
    pub async fn step(&self, step: usize, n: usize) -> Result<Duration, String> {
        let pool = &self.pool;
        match step {
            0 => peers::measure(insert_flush(pool, n)).await,
            1 => {
                peers::measure(async {
                    let rows = load_eager(pool).await?;
                    assert_eq!(rows.len(), n);
                    assert!(rows.iter().all(|(_, bs)| bs.len() == 2));
                    Ok(())
                })
                .await
            }
            2 => peers::measure(get_by_pk(pool, n as i32)).await,
            3 => peers::measure(update_dirty(pool)).await,
            4 => {
                let ids = peers::request_ids(n);
                peers::measure(crate::concurrently(ids, |id| {
                    let pool = pool.clone();
                    async move { request(&pool, id).await }
                }))
                .await
            }
            5 => {
                let keys = peers::many_keys(n);
                peers::measure(async {
                    let got = get_many(pool, &keys).await?;
                    assert!(got.iter().all(Option::is_some));
                    Ok(())
                })
                .await
            }
            _ => peers::measure(graph_flush(pool, peers::graph_chains(n))).await,
        }
    }
}

/// N parents with 2 children each: one multi-row insert per table, rows returned.
async fn insert_flush(pool: &Pool<AsyncPgConnection>, n: usize) -> Result<(), String> {
    let mut conn = pool.get().await.map_err(err)?;
    conn.transaction::<_, Error, _>(async |conn| {
        let new_as: Vec<NewA> = (0..n)
            .map(|i| NewA {
                data: format!("a{i}"),
            })
            .collect();
        let parents: Vec<A> = diesel::insert_into(a::table)
            .values(&new_as)
            .returning(A::as_returning())
            .get_results(conn)
            .await?;
        let new_bs: Vec<NewB> = parents
            .iter()
            .enumerate()
            .flat_map(|(i, p)| {
                [1, 2].map(|k| NewB {
                    a_id: p.id,
                    data: format!("b{i}.{k}"),
                })
            })
            .collect();
        let children: Vec<B> = diesel::insert_into(b::table)
            .values(&new_bs)
            .returning(B::as_returning())
            .get_results(conn)
            .await?;
        let groups = children.grouped_by(&parents);
        let grouped: Vec<(A, Vec<B>)> = parents.into_iter().zip(groups).collect();
        assert_eq!(grouped.len(), n);
        assert!(grouped.iter().all(|(_, bs)| bs.len() == 2));
        Ok(())
    })
    .await
    .map_err(err)
}

/// Every `a` with its `b`s: `belonging_to(&parents)` and `grouped_by`, as diesel's
/// "Relations" guide does.
async fn load_eager(pool: &Pool<AsyncPgConnection>) -> Result<Vec<(A, Vec<B>)>, String> {
    let mut conn = pool.get().await.map_err(err)?;
    let parents: Vec<A> = a::table
        .order(a::id)
        .select(A::as_select())
        .load(&mut conn)
        .await
        .map_err(err)?;
    let children: Vec<B> = B::belonging_to(&parents)
        .order(b::id)
        .select(B::as_select())
        .load(&mut conn)
        .await
        .map_err(err)?;
    Ok(parents
        .iter()
        .cloned()
        .zip(children.grouped_by(&parents))
        .collect())
}

/// N `find(id).first()` in one transaction (diesel caches the prepared statement), kept in a
/// map; then N lookups answered from the map (diesel has no identity map).
async fn get_by_pk(pool: &Pool<AsyncPgConnection>, n: i32) -> Result<usize, String> {
    let mut conn = pool.get().await.map_err(err)?;
    conn.transaction::<_, Error, _>(async |conn| {
        let mut held: HashMap<i32, Arc<A>> = HashMap::with_capacity(n as usize);
        for id in 1..=n {
            let row: A = a::table.find(id).select(A::as_select()).first(conn).await?;
            held.insert(id, Arc::new(row));
        }
        let hits = (1..=n).filter(|id| held.contains_key(id)).count();
        assert_eq!(hits, n as usize);
        Ok(hits)
    })
    .await
    .map_err(err)
}

/// Load every `a`, change `data`, one `update(&row).set(..)` per changed row.
async fn update_dirty(pool: &Pool<AsyncPgConnection>) -> Result<usize, String> {
    let mut conn = pool.get().await.map_err(err)?;
    conn.transaction::<_, Error, _>(async |conn| {
        let mut rows: Vec<A> = a::table.select(A::as_select()).load(conn).await?;
        for row in &mut rows {
            row.data.push('!');
            diesel::update(&*row)
                .set(a::data.eq(&row.data))
                .execute(conn)
                .await?;
        }
        Ok(rows.len())
    })
    .await
    .map_err(err)
}

/// One request: read an `a` by key and change it, in a transaction.
async fn request(pool: &Pool<AsyncPgConnection>, id: i32) -> Result<(), String> {
    let mut conn = pool.get().await.map_err(err)?;
    conn.transaction::<_, Error, _>(async |conn| {
        let mut row: A = a::table.find(id).select(A::as_select()).first(conn).await?;
        row.data = "r".into();
        diesel::update(&row)
            .set(a::data.eq(&row.data))
            .execute(conn)
            .await?;
        Ok(())
    })
    .await
    .map_err(err)
}

/// The rows of `keys` by `eq_any`, in key order, `None` for a missing key.
async fn get_many(
    pool: &Pool<AsyncPgConnection>,
    keys: &[i32],
) -> Result<Vec<Option<Arc<A>>>, String> {
    let mut conn = pool.get().await.map_err(err)?;
    let rows: Vec<A> = a::table
        .filter(a::id.eq_any(keys))
        .select(A::as_select())
        .load(&mut conn)
        .await
        .map_err(err)?;
    let by_id: HashMap<i32, Arc<A>> = rows.into_iter().map(|r| (r.id, Arc::new(r))).collect();
    Ok(keys.iter().map(|k| by_id.get(k).cloned()).collect())
}

/// graph_flush: the shelves and the even slots loaded, `chains` new chains inserted one
/// multi-row insert per level, every shelf renamed (one `update` each), the even slots deleted
/// with one `delete(.. eq_any ..)`.
async fn graph_flush(pool: &Pool<AsyncPgConnection>, chains: usize) -> Result<(), String> {
    let mut conn = pool.get().await.map_err(err)?;
    conn.transaction::<_, Error, _>(async |conn| {
        let mut shelves: Vec<Shelf> = shelf::table.select(Shelf::as_select()).load(conn).await?;
        let slots: Vec<Slot> = slot::table
            .filter(diesel::dsl::sql::<diesel::sql_types::Bool>("id % 2 = 0"))
            .select(Slot::as_select())
            .load(conn)
            .await?;
        let regions: Vec<NewRegion> = (0..chains)
            .map(|i| NewRegion {
                name: format!("nr{i}"),
            })
            .collect();
        let region_ids: Vec<i32> = diesel::insert_into(region::table)
            .values(&regions)
            .returning(region::id)
            .get_results(conn)
            .await?;
        let stores: Vec<NewStore> = region_ids
            .iter()
            .enumerate()
            .map(|(i, &region_id)| NewStore {
                region_id,
                name: format!("ns{i}"),
            })
            .collect();
        let store_ids: Vec<i32> = diesel::insert_into(store::table)
            .values(&stores)
            .returning(store::id)
            .get_results(conn)
            .await?;
        let new_shelves: Vec<NewShelf> = store_ids
            .iter()
            .enumerate()
            .map(|(i, &store_id)| NewShelf {
                store_id,
                name: format!("nh{i}"),
            })
            .collect();
        let shelf_ids: Vec<i32> = diesel::insert_into(shelf::table)
            .values(&new_shelves)
            .returning(shelf::id)
            .get_results(conn)
            .await?;
        let new_slots: Vec<NewSlot> = shelf_ids
            .iter()
            .enumerate()
            .map(|(i, &shelf_id)| NewSlot {
                shelf_id,
                name: format!("nx{i}"),
            })
            .collect();
        diesel::insert_into(slot::table)
            .values(&new_slots)
            .execute(conn)
            .await?;
        for row in &mut shelves {
            row.name.push('!');
            diesel::update(&*row)
                .set(shelf::name.eq(&row.name))
                .execute(conn)
                .await?;
        }
        let gone: Vec<i32> = slots.iter().map(|s| s.id).collect();
        diesel::delete(slot::table.filter(slot::id.eq_any(&gone)))
            .execute(conn)
            .await?;
        Ok(())
    })
    .await
    .map_err(err)
}
