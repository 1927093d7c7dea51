//! The sqlx side: `query_as` into `#[derive(FromRow)]` structs, a `PgPool`, and the recipes of
//! sqlx's FAQ for PostgreSQL: bulk inserts as one `INSERT ... SELECT * FROM UNNEST($1, ...)`
//! with one array per column, and `= ANY($1)` for a list of keys. sqlx has no relationships,
//! no identity map and no change tracking: the eager load is two queries grouped by hand, and
//! changed rows are written back one `UPDATE` each (sqlx documents no batch update; an UNNEST
//! update written by hand is the hand-written side).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use session_tools::bench::peers;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{FromRow, Postgres, Transaction};

/// A row of `a`, with the `b`s an eager load attaches.
#[derive(Debug, Clone, FromRow)]
#[expect(
    dead_code,
    reason = "materialized like the other sides' objects; the benchmark only counts them"
)]
pub struct A {
    /// Key.
    pub id: i32,
    /// Payload.
    pub data: String,
    /// Server default.
    pub create_date: Option<NaiveDateTime>,
    /// Children (not a column).
    #[sqlx(skip)]
    pub bs: Vec<B>,
}

/// A row of `b`.
#[derive(Debug, Clone, FromRow)]
#[expect(
    dead_code,
    reason = "materialized like the other sides' objects; the benchmark only counts them"
)]
pub struct B {
    /// Key.
    pub id: i32,
    /// Parent.
    pub a_id: i32,
    /// Payload.
    pub data: String,
}

/// A row of `shelf` (graph_flush).
#[derive(Debug, Clone, FromRow)]
#[expect(
    dead_code,
    reason = "materialized like the other sides' objects; the benchmark only counts them"
)]
pub struct Shelf {
    /// Key.
    pub id: i32,
    /// Parent.
    pub store_id: i32,
    /// Payload.
    pub name: String,
}

/// A row of `slot` (graph_flush).
#[derive(Debug, Clone, FromRow)]
#[expect(
    dead_code,
    reason = "materialized like the other sides' objects; the benchmark only counts them"
)]
pub struct Slot {
    /// Key.
    pub id: i32,
    /// Parent.
    pub shelf_id: i32,
    /// Payload.
    pub name: String,
}

fn err(e: sqlx::Error) -> String {
    format!("sqlx: {e}")
}

/// The sqlx side on one database.
pub struct Side {
    pool: PgPool,
}

impl Side {
    /// A pool of 10 connections on `url`, not pinged on checkout (as the other sides).
    pub async fn new(url: &str) -> Result<Self, String> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .test_before_acquire(false)
            .connect(url)
            .await
            .map_err(err)?;
        Ok(Side { pool })
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
                    assert!(rows.iter().all(|a| a.bs.len() == 2));
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

    /// Opens all 10 connections (see `Side::warm` in main.rs).
    pub async fn warm(&self) -> Result<(), String> {
        crate::warm_sqlx(&self.pool).await
    }

    /// Closes the pool.
    pub async fn dispose(self) {
        self.pool.close().await;
    }
}

/// N parents with 2 children each: one UNNEST insert per table, rows returned.
async fn insert_flush(pool: &PgPool, n: usize) -> Result<Vec<A>, String> {
    let mut tx = pool.begin().await.map_err(err)?;
    let data: Vec<String> = (0..n).map(|i| format!("a{i}")).collect();
    let mut parents: Vec<A> = sqlx::query_as(
        "INSERT INTO a (data) SELECT * FROM UNNEST($1::varchar[]) \
         RETURNING id, data, create_date",
    )
    .bind(&data)
    .fetch_all(&mut *tx)
    .await
    .map_err(err)?;
    let a_ids: Vec<i32> = parents.iter().flat_map(|p| [p.id, p.id]).collect();
    let b_data: Vec<String> = (0..n)
        .flat_map(|i| [format!("b{i}.1"), format!("b{i}.2")])
        .collect();
    let children: Vec<B> = sqlx::query_as(
        "INSERT INTO b (a_id, data) SELECT * FROM UNNEST($1::integer[], $2::varchar[]) \
         RETURNING id, a_id, data",
    )
    .bind(&a_ids)
    .bind(&b_data)
    .fetch_all(&mut *tx)
    .await
    .map_err(err)?;
    let index: HashMap<i32, usize> = parents.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
    for b in children {
        parents[index[&b.a_id]].bs.push(b);
    }
    tx.commit().await.map_err(err)?;
    Ok(parents)
}

/// Every `a` with its `b`s: the parents, then their children by `= ANY($1)`, grouped.
async fn load_eager(pool: &PgPool) -> Result<Vec<A>, String> {
    let mut parents: Vec<A> = sqlx::query_as("SELECT id, data, create_date FROM a ORDER BY id")
        .fetch_all(pool)
        .await
        .map_err(err)?;
    let ids: Vec<i32> = parents.iter().map(|p| p.id).collect();
    let children: Vec<B> =
        sqlx::query_as("SELECT id, a_id, data FROM b WHERE a_id = ANY($1) ORDER BY id")
            .bind(&ids)
            .fetch_all(pool)
            .await
            .map_err(err)?;
    let index: HashMap<i32, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    for b in children {
        if let Some(&i) = index.get(&b.a_id) {
            parents[i].bs.push(b);
        }
    }
    Ok(parents)
}

/// N lookups by key in one transaction (sqlx prepares and caches the statement), kept in a
/// map; then N lookups answered from the map (sqlx has no identity map).
async fn get_by_pk(pool: &PgPool, n: i32) -> Result<usize, String> {
    let mut tx = pool.begin().await.map_err(err)?;
    let mut held: HashMap<i32, Arc<A>> = HashMap::with_capacity(n as usize);
    for id in 1..=n {
        let a: A = sqlx::query_as("SELECT id, data, create_date FROM a WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(err)?;
        held.insert(id, Arc::new(a));
    }
    let hits = (1..=n).filter(|id| held.contains_key(id)).count();
    assert_eq!(hits, n as usize);
    tx.commit().await.map_err(err)?;
    Ok(hits)
}

/// Load every `a`, change `data`, write each changed row back with its own `UPDATE`.
async fn update_dirty(pool: &PgPool) -> Result<usize, String> {
    let mut tx = pool.begin().await.map_err(err)?;
    let mut rows: Vec<A> = sqlx::query_as("SELECT id, data, create_date FROM a")
        .fetch_all(&mut *tx)
        .await
        .map_err(err)?;
    for a in &mut rows {
        a.data.push('!');
        sqlx::query("UPDATE a SET data = $1 WHERE id = $2")
            .bind(&a.data)
            .bind(a.id)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
    }
    tx.commit().await.map_err(err)?;
    Ok(rows.len())
}

/// One request: read an `a` by key and change it, in a transaction.
async fn request(pool: &PgPool, id: i32) -> Result<(), String> {
    let mut tx = pool.begin().await.map_err(err)?;
    let mut a: A = sqlx::query_as("SELECT id, data, create_date FROM a WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(err)?;
    a.data = "r".into();
    sqlx::query("UPDATE a SET data = $1 WHERE id = $2")
        .bind(&a.data)
        .bind(a.id)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
    tx.commit().await.map_err(err)
}

/// The rows of `keys` by `= ANY($1)`, in key order, `None` for a missing key.
async fn get_many(pool: &PgPool, keys: &[i32]) -> Result<Vec<Option<Arc<A>>>, String> {
    let rows: Vec<A> = sqlx::query_as("SELECT id, data, create_date FROM a WHERE id = ANY($1)")
        .bind(keys)
        .fetch_all(pool)
        .await
        .map_err(err)?;
    let by_id: HashMap<i32, Arc<A>> = rows.into_iter().map(|a| (a.id, Arc::new(a))).collect();
    Ok(keys.iter().map(|k| by_id.get(k).cloned()).collect())
}

/// One UNNEST insert of `names` (and parents) into `table`, the new keys in input order.
async fn insert_level(
    tx: &mut Transaction<'static, Postgres>,
    table: &'static str,
    fk: Option<(&'static str, &[i32])>,
    names: &[String],
) -> Result<Vec<i32>, String> {
    let ids: Vec<(i32,)> = match fk {
        None => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {table} (name) SELECT * FROM UNNEST($1::varchar[]) RETURNING id"
            )))
            .bind(names)
            .fetch_all(&mut **tx)
            .await
        }
        Some((fk, parents)) => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {table} ({fk}, name) SELECT * FROM UNNEST($1::integer[], $2::varchar[]) \
             RETURNING id"
        )))
        .bind(parents)
        .bind(names)
        .fetch_all(&mut **tx)
        .await,
    }
    .map_err(err)?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// graph_flush: the shelves and the even slots loaded, `chains` new chains inserted level by
/// level, every shelf renamed (one `UPDATE` each), the even slots deleted by `= ANY($1)`.
async fn graph_flush(pool: &PgPool, chains: usize) -> Result<(), String> {
    let mut tx = pool.begin().await.map_err(err)?;
    let mut shelves: Vec<Shelf> = sqlx::query_as("SELECT id, store_id, name FROM shelf")
        .fetch_all(&mut *tx)
        .await
        .map_err(err)?;
    let slots: Vec<Slot> = sqlx::query_as("SELECT id, shelf_id, name FROM slot WHERE id % 2 = 0")
        .fetch_all(&mut *tx)
        .await
        .map_err(err)?;
    let names =
        |prefix: &str| -> Vec<String> { (0..chains).map(|i| format!("{prefix}{i}")).collect() };
    let regions = insert_level(&mut tx, "region", None, &names("nr")).await?;
    let stores = insert_level(
        &mut tx,
        "store",
        Some(("region_id", &regions)),
        &names("ns"),
    )
    .await?;
    let new_shelves =
        insert_level(&mut tx, "shelf", Some(("store_id", &stores)), &names("nh")).await?;
    insert_level(
        &mut tx,
        "slot",
        Some(("shelf_id", &new_shelves)),
        &names("nx"),
    )
    .await?;
    for shelf in &mut shelves {
        shelf.name.push('!');
        sqlx::query("UPDATE shelf SET name = $1 WHERE id = $2")
            .bind(&shelf.name)
            .bind(shelf.id)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
    }
    let gone: Vec<i32> = slots.iter().map(|s| s.id).collect();
    sqlx::query("DELETE FROM slot WHERE id = ANY($1)")
        .bind(&gone)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
    tx.commit().await.map_err(err)
}
