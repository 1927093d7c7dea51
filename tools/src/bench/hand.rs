//! The hand-written baseline: the workloads on plain tokio-postgres, with a bb8 pool of its own
//! and none of this workspace's code, written as fast as they can be by hand: arrays (one
//! statement per table), `query_typed` (one unnamed statement in one round trip) for statements
//! run once, a statement prepared once for one run many times. Like most hand-written code it
//! waits for each answer before sending the next statement (`BEGIN` included).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDateTime;
use session_core::tokio_postgres::types::Type;
use session_core::tokio_postgres::{self, Client, NoTls, Row};

/// The baseline's errors: the driver's or the pool's.
pub(crate) type HandResult<T> = std::result::Result<T, String>;

/// Opens plain tokio-postgres connections for bb8.
pub(crate) struct Plain(tokio_postgres::Config);

impl bb8::ManageConnection for Plain {
    type Connection = Client;
    type Error = tokio_postgres::Error;

    async fn connect(&self) -> Result<Client, Self::Error> {
        let (client, connection) = self.0.connect(NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    }

    async fn is_valid(&self, client: &mut Client) -> Result<(), Self::Error> {
        client.simple_query("").await.map(|_| ())
    }

    fn has_broken(&self, client: &mut Client) -> bool {
        client.is_closed()
    }
}

/// The baseline's pool.
pub(crate) type Pool = bb8::Pool<Plain>;

/// A pool of `size` plain connections to `url`.
pub(crate) async fn pool(url: &str, size: u32) -> HandResult<Pool> {
    let config: tokio_postgres::Config = url.parse().map_err(|e| format!("{url}: {e}"))?;
    Ok(bb8::Pool::builder()
        .max_size(size)
        .test_on_check_out(false)
        .build_unchecked(Plain(config)))
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A row of `a` as hand-written code would keep it.
#[derive(Debug, Clone)]
#[expect(
    dead_code,
    reason = "materialized like the session's objects; the benchmark only counts them"
)]
pub(crate) struct RowA {
    pub(crate) id: i32,
    pub(crate) data: String,
    pub(crate) create_date: Option<NaiveDateTime>,
    pub(crate) bs: Vec<RowB>,
}

/// A row of `b`.
#[derive(Debug, Clone)]
#[expect(
    dead_code,
    reason = "materialized like the session's objects; the benchmark only counts them"
)]
pub(crate) struct RowB {
    pub(crate) id: i32,
    pub(crate) a_id: i32,
    pub(crate) data: String,
}

/// An `a` row (`id, data, create_date`) as a [`RowA`] without children.
fn row_a(r: &Row) -> RowA {
    RowA {
        id: r.get(0),
        data: r.get(1),
        create_date: r.get(2),
        bs: Vec::new(),
    }
}

/// N parents with 2 children each: one INSERT per table, keys and defaults returned.
pub(crate) async fn insert_flush(pool: &Pool, n: usize) -> HandResult<Vec<RowA>> {
    let mut client = pool.get().await.map_err(err)?;
    let tx = client.transaction().await.map_err(err)?;
    let data: Vec<String> = (0..n).map(|i| format!("a{i}")).collect();
    let rows = tx
        .query_typed(
            "WITH ins AS (INSERT INTO a (data) SELECT d FROM unnest($1::varchar[]) \
             WITH ORDINALITY AS t(d, ord) ORDER BY ord RETURNING id, data, create_date) \
             SELECT * FROM ins ORDER BY id",
            &[(&data, Type::VARCHAR_ARRAY)],
        )
        .await
        .map_err(err)?;
    let mut parents: Vec<RowA> = rows.iter().map(row_a).collect();
    let a_ids: Vec<i32> = parents.iter().flat_map(|p| [p.id, p.id]).collect();
    let b_data: Vec<String> = (0..n)
        .flat_map(|i| [format!("b{i}.1"), format!("b{i}.2")])
        .collect();
    let rows = tx
        .query_typed(
            "WITH ins AS (INSERT INTO b (a_id, data) SELECT a, d FROM \
             unnest($1::integer[], $2::varchar[]) WITH ORDINALITY AS t(a, d, ord) \
             ORDER BY ord RETURNING id, a_id, data) SELECT * FROM ins ORDER BY id",
            &[(&a_ids, Type::INT4_ARRAY), (&b_data, Type::VARCHAR_ARRAY)],
        )
        .await
        .map_err(err)?;
    for (i, r) in rows.iter().enumerate() {
        parents[i / 2].bs.push(RowB {
            id: r.get(0),
            a_id: r.get(1),
            data: r.get(2),
        });
    }
    tx.commit().await.map_err(err)?;
    Ok(parents)
}

/// Every A with its Bs: two SELECTs (no transaction).
pub(crate) async fn load_eager(pool: &Pool) -> HandResult<Vec<RowA>> {
    let client = pool.get().await.map_err(err)?;
    let rows = client
        .query_typed("SELECT id, data, create_date FROM a ORDER BY id", &[])
        .await
        .map_err(err)?;
    let mut parents: Vec<RowA> = rows.iter().map(row_a).collect();
    let ids: Vec<i32> = parents.iter().map(|p| p.id).collect();
    let index: HashMap<i32, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let rows = client
        .query_typed(
            "SELECT id, a_id, data FROM b WHERE a_id = ANY($1) ORDER BY id",
            &[(&ids, Type::INT4_ARRAY)],
        )
        .await
        .map_err(err)?;
    for r in &rows {
        let b = RowB {
            id: r.get(0),
            a_id: r.get(1),
            data: r.get(2),
        };
        if let Some(&i) = index.get(&b.a_id) {
            parents[i].bs.push(b);
        }
    }
    Ok(parents)
}

/// The rows of `keys` in one `= ANY($1)` query, in key order with `None` for a missing key:
/// what `get_many` does for keys not in its map.
pub(crate) async fn get_many(pool: &Pool, keys: &[i32]) -> HandResult<Vec<Option<Arc<RowA>>>> {
    let client = pool.get().await.map_err(err)?;
    let rows = client
        .query_typed(
            "SELECT id, data, create_date FROM a WHERE id = ANY($1)",
            &[(&keys, Type::INT4_ARRAY)],
        )
        .await
        .map_err(err)?;
    let mut by_id: HashMap<i32, Arc<RowA>> = HashMap::with_capacity(rows.len());
    for r in &rows {
        let a = row_a(r);
        by_id.insert(a.id, Arc::new(a));
    }
    Ok(keys.iter().map(|k| by_id.get(k).cloned()).collect())
}

/// N lookups by key (one round trip each, one statement prepared once, in a transaction like
/// the session's), then N hits in a map of what was loaded.
pub(crate) async fn get_by_pk(pool: &Pool, n: i32) -> HandResult<usize> {
    let mut client = pool.get().await.map_err(err)?;
    let tx = client.transaction().await.map_err(err)?;
    let by_id = tx
        .prepare("SELECT id, data, create_date FROM a WHERE id = $1")
        .await
        .map_err(err)?;
    let mut cache: HashMap<i32, Arc<RowA>> = HashMap::with_capacity(n as usize);
    for id in 1..=n {
        let r = tx.query_one(&by_id, &[&id]).await.map_err(err)?;
        cache.insert(id, Arc::new(row_a(&r)));
    }
    let mut hits = 0;
    for id in 1..=n {
        hits += usize::from(cache.contains_key(&id));
    }
    tx.commit().await.map_err(err)?;
    Ok(hits)
}

/// Load every A, change `data`, write back with one array UPDATE.
pub(crate) async fn update_dirty(pool: &Pool) -> HandResult<usize> {
    let mut client = pool.get().await.map_err(err)?;
    let tx = client.transaction().await.map_err(err)?;
    let rows = tx
        .query_typed("SELECT id, data, create_date FROM a", &[])
        .await
        .map_err(err)?;
    let ids: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    let data: Vec<String> = rows
        .iter()
        .map(|r| format!("{}!", r.get::<_, String>(1)))
        .collect();
    tx.query_typed(
        "UPDATE a SET data = t.d FROM unnest($1::integer[], $2::varchar[]) AS t(k, d) \
         WHERE a.id = t.k",
        &[(&ids, Type::INT4_ARRAY), (&data, Type::VARCHAR_ARRAY)],
    )
    .await
    .map_err(err)?;
    tx.commit().await.map_err(err)?;
    Ok(ids.len())
}

/// One request: read an A by key and change it, in a transaction: BEGIN, SELECT, UPDATE and
/// COMMIT, each answer awaited.
pub(crate) async fn request(pool: &Pool, id: i32) -> HandResult<()> {
    let mut client = pool.get().await.map_err(err)?;
    let tx = client.transaction().await.map_err(err)?;
    let rows = tx
        .query_typed(
            "SELECT id, data, create_date FROM a WHERE id = $1",
            &[(&id, Type::INT4)],
        )
        .await
        .map_err(err)?;
    let id: i32 = rows.first().ok_or("no such row")?.get(0);
    tx.query_typed(
        "UPDATE a SET data = $2 WHERE id = $1",
        &[(&id, Type::INT4), (&"r", Type::VARCHAR)],
    )
    .await
    .map_err(err)?;
    tx.commit().await.map_err(err)?;
    Ok(())
}
