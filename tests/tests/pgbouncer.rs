//! Every session feature through a real PgBouncer (Debian's `pgbouncer`, 1.18: no protocol
//! prepared statements) in `pool_mode = transaction`, with fewer server connections than
//! sessions, so that the transactions of different sessions share server connections. The
//! engine turns its statement cache off (`statement_cache_size(0)`), which is what this
//! needs: each statement is prepared inside its transaction and closed before it ends.

use std::sync::{Arc, OnceLock};

use futures::StreamExt;
use session_core::{
    AsyncSession, Collection, Engine, Entity, MetaData, Obj, select, selectinload, text,
};
use session_tests::support::{create_schema, fresh_database, kept_session};
use session_tools::pg::{self, pgbouncer::PgBouncer};

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "account")]
struct Account {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(unique)]
    name: String,
    balance: i64,
    #[entity(relationship(foreign_key = "account_id"))]
    entries: Collection<Entry>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "entry")]
struct Entry {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(foreign_key = "account.id")]
    account_id: i32,
    amount: i64,
}

/// The binary's PgBouncer, in front of the shared cluster.
fn bouncer() -> &'static PgBouncer {
    static BOUNCER: OnceLock<PgBouncer> = OnceLock::new();
    BOUNCER.get_or_init(|| {
        let cluster = pg::shared().unwrap_or_else(|e| panic!("{e}"));
        PgBouncer::start(cluster).unwrap_or_else(|e| panic!("{e}"))
    })
}

/// A fresh database with the two tables, and an engine on it through PgBouncer (and one
/// direct, to check what was stored).
async fn setup(prefix: &str, pool: u32) -> (Engine, Engine) {
    let url = fresh_database(prefix).await;
    let direct = Engine::builder(url.clone()).pool_size(2).build().unwrap();
    create_schema(&direct, MetaData::new().with::<Account>().with::<Entry>()).await;
    let bouncer = tokio::task::spawn_blocking(bouncer).await.unwrap();
    let through = Engine::builder(bouncer.through(&url))
        .pool_size(pool)
        .statement_cache_size(0)
        .build()
        .unwrap();
    (through, direct)
}

async fn balances(direct: &Engine) -> Vec<(String, i64)> {
    let mut conn = direct.connect().await.unwrap();
    let rows = conn
        .query("SELECT name, balance FROM account ORDER BY name", &[])
        .await
        .unwrap();
    conn.close().await;
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

fn account(name: &str, balance: i64, entries: &[i64]) -> Obj<Account> {
    Obj::new(Account {
        name: name.into(),
        balance,
        entries: Collection::from_vec(
            entries
                .iter()
                .map(|&amount| {
                    Obj::new(Entry {
                        amount,
                        ..Entry::default()
                    })
                })
                .collect(),
        ),
        ..Account::default()
    })
}

#[tokio::test]
async fn the_unit_of_work_loads_savepoints_and_streams_work_through_pgbouncer() {
    let (engine, direct) = setup("pgb_features", 4).await;
    // Flush of a graph, batched (arrays) and single-row statements.
    let s = kept_session(&engine);
    s.add_all(&[
        account("ann", 10, &[1, 2, 3]),
        account("bob", 20, &[4]),
        account("cid", 30, &[]),
    ])
    .unwrap();
    s.commit().await.unwrap();
    s.close().await;
    assert_eq!(
        balances(&direct).await,
        [("ann".into(), 10), ("bob".into(), 20), ("cid".into(), 30)]
    );

    // Loads with parameters, an eager load, get, get_many, an UPDATE, a savepoint rolled
    // back and one released, in one transaction.
    let s = kept_session(&engine);
    let accounts = s
        .scalars(
            select::<Account>()
                .filter(Account::C.balance.gt(5))
                .options(selectinload(Account::C.entries))
                .order_by(Account::C.name.asc()),
        )
        .await
        .unwrap()
        .all();
    assert_eq!(accounts.len(), 3);
    assert_eq!(accounts[0].read().unwrap().entries.get().unwrap().len(), 3);
    let ids: Vec<i32> = accounts.iter().map(|a| a.read().unwrap().id).collect();
    let got = s.get_many::<Account>(&ids).await.unwrap();
    assert!(got.iter().all(Option::is_some));
    accounts[0].write().unwrap().balance = 11;
    let savepoint = s.begin_nested().await.unwrap();
    accounts[1].write().unwrap().balance = 999;
    s.flush().await.unwrap();
    savepoint.rollback().await.unwrap();
    s.nested_transaction(async |s| {
        s.add(&account("dan", 40, &[5]))?;
        Ok::<_, session_core::Error>(())
    })
    .await
    .unwrap();
    s.commit().await.unwrap();
    s.close().await;
    assert_eq!(
        balances(&direct).await,
        [
            ("ann".into(), 11),
            ("bob".into(), 20),
            ("cid".into(), 30),
            ("dan".into(), 40)
        ]
    );

    // A stream inside a transaction (a server-side cursor, FETCHed in chunks).
    let s = AsyncSession::new(engine.clone());
    let mut stream = s
        .stream_scalars(
            select::<Entry>().execution_options(session_core::ExecutionOptions::new().yield_per(2)),
        )
        .await
        .unwrap();
    let mut amounts = Vec::new();
    while let Some(entry) = stream.next().await {
        amounts.push(entry.unwrap().read().unwrap().amount);
    }
    drop(stream);
    amounts.sort_unstable();
    assert_eq!(amounts, [1, 2, 3, 4, 5]);
    s.close().await;

    // Plain SQL with parameters outside a transaction (each runs in one of its own).
    let mut conn = engine.connect().await.unwrap();
    for n in 0..5i64 {
        let got: i64 = conn.scalar("SELECT $1::bigint + 1", &[&n]).await.unwrap();
        assert_eq!(got, n + 1);
    }
    conn.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_sessions_at_once_share_four_server_connections() {
    let (engine, direct) = setup("pgb_concurrent", 20).await;
    let s = AsyncSession::new(engine.clone());
    for i in 0..20 {
        s.add(&account(&format!("acct{i:02}"), 0, &[])).unwrap();
    }
    s.commit().await.unwrap();
    s.close().await;

    let engine = Arc::new(engine);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..10i64 {
                let s = AsyncSession::new((*engine).clone());
                let a = s
                    .scalars(
                        select::<Account>()
                            .filter(Account::C.name.eq(format!("acct{i:02}")))
                            .options(selectinload(Account::C.entries)),
                    )
                    .await?
                    .one()?;
                a.write()?.balance += round;
                a.write()?.entries.push(Obj::new(Entry {
                    amount: round,
                    ..Entry::default()
                }))?;
                // Each statement text once per transaction, interleaved with other sessions'
                // on the same server connections.
                let n: i64 = s
                    .scalar(text("SELECT count(*) FROM entry WHERE amount >= $1").bind(0i64))
                    .await?
                    .get()?;
                assert!(n >= 0);
                s.commit().await?;
                s.close().await;
            }
            Ok::<_, session_core::Error>(())
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let rows = balances(&direct).await;
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().all(|(_, b)| *b == 45), "{rows:?}");
    let mut conn = direct.connect().await.unwrap();
    let entries: i64 = conn
        .scalar("SELECT count(*) FROM entry", &[])
        .await
        .unwrap();
    conn.close().await;
    assert_eq!(entries, 200);
}
