//! Leak check in a test binary of its own, so that resident memory measures this test alone.

use std::sync::Arc;

use session_core::async_sessionmaker;
use session_scoped::{async_scoped_session, scope};
use session_tests::model::A;
use session_tests::support::{a, idle_in_transaction, rss_kb, schema_engine, wait_pool_idle};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_task_scoped_requests_leak_nothing() {
    let engine = schema_engine("leaks", 10).await;
    let maker = async_sessionmaker(engine.clone()).expire_on_commit(false);
    maker.begin(async |s| s.add(&a("shared"))).await.unwrap();
    let scoped = Arc::new(async_scoped_session(maker, scope::task_scope));
    let run = |n: usize| {
        let scoped = scoped.clone();
        async move {
            // At most 16 requests in flight, as a server would run them (spawning all 10,000
            // at once would keep 10,000 pending futures alive and measure that instead).
            let gate = Arc::new(tokio::sync::Semaphore::new(16));
            let mut tasks = Vec::new();
            for _ in 0..n {
                let permit = gate.clone().acquire_owned().await.unwrap();
                let scoped = scoped.clone();
                tasks.push(tokio::spawn(async move {
                    let _p = permit;
                    scoped
                        .scope(async {
                            let s = scoped.proxied();
                            let obj = s.get_one::<A>(1).await?;
                            obj.write()?.data = "touched".into();
                            s.commit().await
                        })
                        .await
                }));
            }
            for t in tasks {
                t.await.unwrap().unwrap();
            }
        }
    };
    run(2_000).await; // warm up allocator and pool
    let before = rss_kb();
    run(10_000).await;
    let after = rss_kb();
    assert_eq!(scoped.registered(), 0, "registry empty");
    wait_pool_idle(&engine).await;
    assert!(engine.status().connections <= 10);
    assert_eq!(idle_in_transaction(&engine).await, 0);
    let growth_mb = after.saturating_sub(before) as f64 / 1024.0;
    println!("RSS growth over 10,000 requests: {growth_mb:.1} MB");
    assert!(growth_mb < 32.0, "RSS grew {growth_mb:.1} MB");
}
