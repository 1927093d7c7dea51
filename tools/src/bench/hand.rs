//! The hand-written tokio-postgres baseline: workloads 1–5 doing the same database work as the
//! session, as well as it can be done by hand (arrays, one statement per table, pipelined
//! round trips where the work allows), on the same pool settings.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDateTime;
use session_core::tokio_postgres::Row;
use session_core::{Engine, Result};

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
pub(crate) async fn insert_flush(engine: &Engine, n: usize) -> Result<Vec<RowA>> {
    let mut conn = engine.begin().await?;
    let data: Vec<String> = (0..n).map(|i| format!("a{i}")).collect();
    let rows = conn
        .query(
            "WITH ins AS (INSERT INTO a (data) SELECT d FROM unnest($1::varchar[]) \
             WITH ORDINALITY AS t(d, ord) ORDER BY ord RETURNING id, data, create_date) \
             SELECT * FROM ins ORDER BY id",
            &[&data],
        )
        .await?;
    let mut parents: Vec<RowA> = rows.iter().map(row_a).collect();
    let a_ids: Vec<i32> = parents.iter().flat_map(|p| [p.id, p.id]).collect();
    let b_data: Vec<String> = (0..n)
        .flat_map(|i| [format!("b{i}.1"), format!("b{i}.2")])
        .collect();
    let rows = conn
        .query(
            "WITH ins AS (INSERT INTO b (a_id, data) SELECT a, d FROM \
             unnest($1::integer[], $2::varchar[]) WITH ORDINALITY AS t(a, d, ord) \
             ORDER BY ord RETURNING id, a_id, data) SELECT * FROM ins ORDER BY id",
            &[&a_ids, &b_data],
        )
        .await?;
    for (i, r) in rows.iter().enumerate() {
        parents[i / 2].bs.push(RowB {
            id: r.get(0),
            a_id: r.get(1),
            data: r.get(2),
        });
    }
    conn.commit().await?;
    conn.close().await;
    Ok(parents)
}

/// Every A with its Bs: two SELECTs.
pub(crate) async fn load_eager(engine: &Engine) -> Result<Vec<RowA>> {
    let mut conn = engine.connect().await?;
    let rows = conn
        .query("SELECT id, data, create_date FROM a ORDER BY id", &[])
        .await?;
    let mut parents: Vec<RowA> = rows.iter().map(row_a).collect();
    let ids: Vec<i32> = parents.iter().map(|p| p.id).collect();
    let index: HashMap<i32, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let rows = conn
        .query(
            "SELECT id, a_id, data FROM b WHERE a_id = ANY($1::integer[]) ORDER BY id",
            &[&ids],
        )
        .await?;
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
    conn.close().await;
    Ok(parents)
}

/// The rows of `keys` in one `= ANY($1)` query (unnamed, planned with the keys), in key
/// order with `None` for a missing key: what `get_many` does for keys not in its map.
pub(crate) async fn get_many(engine: &Engine, keys: &[i32]) -> Result<Vec<Option<Arc<RowA>>>> {
    let mut conn = engine.begin().await?;
    let rows = conn
        .query_uncached(
            "SELECT id, data, create_date FROM a WHERE id = ANY($1)",
            &[&keys],
        )
        .await?;
    let mut by_id: HashMap<i32, Arc<RowA>> = HashMap::with_capacity(rows.len());
    for r in &rows {
        let a = RowA {
            id: r.get(0),
            data: r.get(1),
            create_date: r.get(2),
            bs: Vec::new(),
        };
        by_id.insert(a.id, Arc::new(a));
    }
    conn.commit().await?;
    conn.close().await;
    Ok(keys.iter().map(|k| by_id.get(k).cloned()).collect())
}

/// N lookups by key (one round trip each, in a transaction like the session's), then N hits
/// in a map of what was loaded.
pub(crate) async fn get_by_pk(engine: &Engine, n: i32) -> Result<usize> {
    let mut conn = engine.begin().await?;
    let mut cache: HashMap<i32, Arc<RowA>> = HashMap::with_capacity(n as usize);
    for id in 1..=n {
        let r = conn
            .query_one("SELECT id, data, create_date FROM a WHERE id = $1", &[&id])
            .await?;
        cache.insert(
            id,
            Arc::new(RowA {
                id: r.get(0),
                data: r.get(1),
                create_date: r.get(2),
                bs: Vec::new(),
            }),
        );
    }
    let mut hits = 0;
    for id in 1..=n {
        hits += usize::from(cache.contains_key(&id));
    }
    conn.commit().await?;
    conn.close().await;
    Ok(hits)
}

/// Load every A, change `data`, write back with one array UPDATE.
pub(crate) async fn update_dirty(engine: &Engine) -> Result<u64> {
    let mut conn = engine.begin().await?;
    let rows = conn
        .query("SELECT id, data, create_date FROM a", &[])
        .await?;
    let ids: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    let data: Vec<String> = rows
        .iter()
        .map(|r| format!("{}!", r.get::<_, String>(1)))
        .collect();
    let n = conn
        .execute(
            "UPDATE a SET data = t.d FROM unnest($1::integer[], $2::varchar[]) AS t(k, d) \
             WHERE a.id = t.k",
            &[&ids, &data],
        )
        .await?;
    conn.commit().await?;
    conn.close().await;
    Ok(n)
}

/// One request: read an A by key and change it, in a transaction.
pub(crate) async fn request(engine: &Engine, id: i32) -> Result<()> {
    let mut conn = engine.begin().await?;
    let row = conn
        .query_one("SELECT id, data, create_date FROM a WHERE id = $1", &[&id])
        .await?;
    let id: i32 = row.get(0);
    conn.execute("UPDATE a SET data = $2 WHERE id = $1", &[&id, &"r"])
        .await?;
    conn.commit().await?;
    conn.close().await;
    Ok(())
}
