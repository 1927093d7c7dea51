//! The README's Rust: its example is `tests/tests/readme/example.rs`, run here against a
//! throwaway PostgreSQL, and its copy of the demo program stays identical to `tools/src/demo.rs`
//! (which `tests/tests/engine.rs` runs).

#[test]
fn the_readme_shows_the_demo_program_in_full() {
    let root = session_tools::proxy::workspace_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let demo = std::fs::read_to_string(root.join("tools/src/demo.rs")).unwrap();
    let start = readme
        .find("## The demo, in full")
        .expect("the README has a section with the demo");
    let block = &readme[start..];
    let open = block.find("```rs\n").expect("the demo's code block") + "```rs\n".len();
    let close = block[open..]
        .find("\n```")
        .expect("the end of the code block");
    assert_eq!(
        block[open..open + close].trim_end(),
        demo.trim_end(),
        "the README's copy of tools/src/demo.rs is stale: paste the file into the block again"
    );
}

/// The README's example, kept as a file that the README quotes in full; `run` is called from
/// here (its `main` is for readers).
#[allow(dead_code)]
mod example {
    include!("readme/example.rs");

    pub(crate) async fn run_example(url: &str) -> Result<()> {
        run(url).await
    }
}

/// The README's first Rust block (the one after `## Example`).
fn readme_example_block() -> String {
    readme_block_after("## Example")
}

#[test]
fn the_readme_example_is_the_tested_file() {
    let root = session_tools::proxy::workspace_root();
    let file = std::fs::read_to_string(root.join("tests/tests/readme/example.rs")).unwrap();
    assert_eq!(
        readme_example_block().trim_end(),
        file.trim_end(),
        "the README's example differs from tests/tests/readme/example.rs: paste the file into \
         the block again"
    );
}

#[test]
fn the_readme_example_runs_against_postgresql() {
    // On a thread of its own with a deadline: an example that blocks must fail, not hang.
    let (done, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let result = rt.block_on(async {
            let url = session_tests::support::fresh_database("readme_example").await;
            example::run_example(&url).await?;
            // What it did: two Bs under a1, whose data the last commit changed.
            let engine = session_core::create_async_engine(&url)?;
            let mut conn = engine.connect().await?;
            let data: String = conn.scalar("SELECT data FROM a WHERE id = 1", &[]).await?;
            assert_eq!(data, "new data");
            let bs: i64 = conn
                .scalar("SELECT count(*) FROM b WHERE a_id = 1", &[])
                .await?;
            assert_eq!(bs, 2);
            let rank: String = conn
                .scalar("SELECT details->>'rank' FROM a WHERE id = 1", &[])
                .await?;
            assert_eq!(rank, "2", "the jsonb change was written");
            let kind: String = conn
                .scalar("SELECT pg_typeof(id)::text FROM b LIMIT 1", &[])
                .await?;
            assert_eq!(kind, "uuid");
            Ok::<_, session_core::Error>(())
        });
        let _ = done.send(result.map_err(|e| e.to_string()));
    });
    match wait.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(result) => result.expect("the README example failed"),
        Err(_) => panic!("the README example did not finish within 60 s (blocked?)"),
    }
}

/// The README's events example (`## Events, execution options and retries`), kept as a file
/// that the README quotes in full.
#[allow(dead_code)]
mod events_example {
    include!("readme/events.rs");

    pub(crate) async fn run_example(url: &str) -> Result<()> {
        run(url).await
    }
}

/// The first Rust block after `heading` in the README.
fn readme_block_after(heading: &str) -> String {
    let root = session_tools::proxy::workspace_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let start = readme
        .find(heading)
        .unwrap_or_else(|| panic!("the README has a section {heading:?}"));
    let block = &readme[start..];
    let open = block.find("```rust").expect("the section's code block");
    let open = open + block[open..].find('\n').unwrap() + 1;
    let close = block[open..]
        .find("\n```")
        .expect("the end of the code block");
    block[open..open + close].to_string()
}

#[test]
fn the_readme_events_example_is_the_tested_file() {
    let root = session_tools::proxy::workspace_root();
    let file = std::fs::read_to_string(root.join("tests/tests/readme/events.rs")).unwrap();
    assert_eq!(
        readme_block_after("## Events, execution options and retries").trim_end(),
        file.trim_end(),
        "the README's events example differs from tests/tests/readme/events.rs: paste the \
         file into the block again"
    );
}

#[tokio::test]
async fn the_readme_events_example_runs_against_postgresql() {
    let url = session_tests::support::fresh_database("readme_events").await;
    events_example::run_example(&url).await.unwrap();
    let engine = session_core::create_async_engine(&url).unwrap();
    let mut conn = engine.connect().await.unwrap();
    let rows = conn
        .query(
            "SELECT id, balance, updated_at IS NOT NULL FROM account ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(i32, i64, bool)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    // The transfer committed once, and the listener stamped both rows in its UPDATE.
    assert_eq!(got, [(1, 70, true), (2, 30, true)]);
    conn.close().await;
}

/// The README's many-to-many example (`## Many-to-many and association objects`).
#[allow(dead_code)]
mod many_example {
    include!("readme/many.rs");

    pub(crate) async fn run_example(url: &str) -> Result<()> {
        run(url).await
    }
}

#[test]
fn the_readme_many_to_many_example_is_the_tested_file() {
    let root = session_tools::proxy::workspace_root();
    let file = std::fs::read_to_string(root.join("tests/tests/readme/many.rs")).unwrap();
    assert_eq!(
        readme_block_after("## Many-to-many and association objects").trim_end(),
        file.trim_end(),
        "the README's many-to-many example differs from tests/tests/readme/many.rs: paste the \
         file into the block again"
    );
}

#[tokio::test]
async fn the_readme_many_to_many_example_runs_against_postgresql() {
    let url = session_tests::support::fresh_database("readme_many").await;
    many_example::run_example(&url).await.unwrap();
    let engine = session_core::create_async_engine(&url).unwrap();
    let mut conn = engine.connect().await.unwrap();
    let rows = conn
        .query(
            "SELECT t.name, l.note FROM book_tag l JOIN tag t ON t.id = l.tag_id",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, Option<String>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    // The book was linked to both tags, one link was taken out, the other got its note.
    assert_eq!(got, [("sql".to_string(), Some("the one left".to_string()))]);
    conn.close().await;
}
