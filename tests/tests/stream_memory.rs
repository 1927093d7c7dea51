//! Streaming many rows keeps memory bounded: the identity map holds streamed objects weakly and
//! drops the entries of those nobody holds any more (a binary of its own, so that resident
//! memory measures this test alone).

use futures::StreamExt;
use session_core::{AsyncSession, select, text};
use session_tests::model::A;
use session_tests::support::{rss_kb, schema_engine};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_300k_rows_keeps_memory_bounded() {
    const ROWS: usize = 300_000;
    let engine = schema_engine("stream_memory", 2).await;
    let s = AsyncSession::new(engine.clone());
    s.execute(text(format!(
        "INSERT INTO a (data) SELECT 'row ' || g FROM generate_series(1, {ROWS}) g"
    )))
    .await
    .unwrap();
    s.commit().await.unwrap();
    let mut stream = s.stream_scalars(select::<A>()).await.unwrap();
    let (mut seen, mut before) = (0, 0);
    while let Some(obj) = stream.next().await {
        let obj = obj.unwrap();
        assert!(obj.read().unwrap().data.starts_with("row "));
        seen += 1;
        if seen == 20_000 {
            // Past the first chunks: buffers and the map's first growth are in.
            before = rss_kb();
        }
    }
    drop(stream);
    let grown_mb = rss_kb().saturating_sub(before) / 1024;
    assert_eq!(seen, ROWS);
    // Each streamed object kept (or its allocation, held by a dead identity-map entry) would
    // be over 200 bytes: some 60 MB for the 280,000 rows after the first reading.
    assert!(
        grown_mb < 25,
        "resident memory grew {grown_mb} MB while streaming"
    );
    s.close().await;
}
