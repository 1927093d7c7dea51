//! Every seed snippet runs (the same functions the examples and the demo run).

use session_tests::support::fresh_database;
use session_tools::seeds;

#[tokio::test]
async fn seed_000_async_sessionmaker_passed_to_functions() {
    let url = fresh_database("seed000").await;
    seeds::create_schema(&url).await.unwrap();
    assert_eq!(seeds::seed_000_async_sessionmaker(&url).await.unwrap(), 2);
}

#[test]
fn seed_002_blocking_sessionmaker_forms() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = rt.block_on(fresh_database("seed002"));
    rt.block_on(seeds::create_schema(&url)).unwrap();
    drop(rt);
    let data = seeds::seed_002_sessionmaker(&url).unwrap();
    assert_eq!(
        data,
        [
            "with Session()",
            "with Session(), too",
            "try/finally",
            "with Session.begin()",
            "Session(bind=connection)",
            "configure(bind=engine) later",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_003_scoped_session_with_the_current_task() {
    let url = fresh_database("seed003").await;
    seeds::create_schema(&url).await.unwrap();
    assert_eq!(seeds::seed_003_scoped_session(&url).await.unwrap(), (0, 10));
}
