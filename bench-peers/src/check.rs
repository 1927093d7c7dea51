//! What each workload leaves in the database, checked after every side's run (untimed), so
//! that a side which skips work cannot look fast.

use session_core::tokio_postgres::{self, NoTls};
use session_tools::bench::peers;

/// Untouched seed payloads of `a` (`a<i>`, no `!`).
const PLAIN: &str = "SELECT count(*) FROM a WHERE data LIKE 'a%' AND data NOT LIKE '%!'";
/// `a` rows changed exactly once by update_dirty.
const BANGED: &str = "SELECT count(*) FROM a WHERE data LIKE 'a%!' AND data NOT LIKE '%!!'";
/// `a` rows written by request_mix.
const REQUESTED: &str = "SELECT count(*) FROM a WHERE data = 'r'";

/// The queries and their expected counts after workload `step` (and the ones before it).
fn expectations(step: usize, n: usize) -> Vec<(&'static str, i64)> {
    let n = n as i64;
    let requested = {
        let mut ids = peers::request_ids(n as usize);
        ids.sort_unstable();
        ids.dedup();
        ids.len() as i64
    };
    let chains = peers::graph_chains(n as usize) as i64;
    match step {
        0 => vec![
            ("SELECT count(*) FROM a", n),
            ("SELECT count(*) FROM a WHERE create_date IS NOT NULL", n),
            ("SELECT count(*) FROM b", 2 * n),
            (
                "SELECT count(*) FROM b JOIN a ON a.id = b.a_id WHERE b.data IN \
                 ('b' || substr(a.data, 2) || '.1', 'b' || substr(a.data, 2) || '.2')",
                2 * n,
            ),
        ],
        1 | 2 => vec![("SELECT count(*) FROM a", n), (PLAIN, n)],
        3 => vec![("SELECT count(*) FROM a", n), (BANGED, n)],
        4 | 5 => vec![(REQUESTED, requested), (BANGED, n - requested)],
        _ => vec![
            ("SELECT count(*) FROM region", 2 * chains),
            ("SELECT count(*) FROM store", 2 * chains),
            ("SELECT count(*) FROM shelf", 2 * chains),
            ("SELECT count(*) FROM slot", 2 * chains),
            (
                "SELECT count(*) FROM shelf WHERE name LIKE 'h%!' AND name NOT LIKE '%!!'",
                chains,
            ),
            (
                "SELECT count(*) FROM shelf WHERE name LIKE 'nh%' AND name NOT LIKE '%!'",
                chains,
            ),
            ("SELECT count(*) FROM slot WHERE name LIKE 'x%'", chains),
            (
                "SELECT count(*) FROM slot WHERE name LIKE 'x%' AND id % 2 = 0",
                0,
            ),
            (
                "SELECT count(*) FROM slot x JOIN shelf h ON h.id = x.shelf_id \
                 JOIN store s ON s.id = h.store_id JOIN region r ON r.id = s.region_id \
                 WHERE x.name LIKE 'nx%' AND substr(x.name, 3) = substr(h.name, 3) \
                 AND substr(h.name, 3) = substr(s.name, 3) AND substr(s.name, 3) = substr(r.name, 3)",
                chains,
            ),
        ],
    }
}

/// Checks the database at `url` after `side` ran workload `step` at `n`.
pub async fn check(url: &str, side: &str, step: usize, n: usize) -> Result<(), String> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| format!("check: {e}"))?;
    let connection = tokio::spawn(connection);
    let workload = peers::WORKLOADS[step];
    for (sql, want) in expectations(step, n) {
        let got: i64 = client
            .query_one(sql, &[])
            .await
            .map_err(|e| format!("check `{sql}`: {e}"))?
            .get(0);
        if got != want {
            return Err(format!(
                "{side} did not do {workload}'s work: `{sql}` gave {got}, expected {want}"
            ));
        }
    }
    drop(client);
    let _ = connection.await;
    Ok(())
}
