//! The README's "Running in production" example: `tests/tests/readme/production.rs`, quoted in
//! full by the README and run here against a throwaway PostgreSQL with its subscriber writing
//! into a capture, so that what it prints is checked.

use session_tests::support::LogCapture;

#[allow(dead_code)]
mod production {
    include!("readme/production.rs");

    pub(crate) fn subscriber_into(
        capture: super::LogCapture,
    ) -> impl tracing::Subscriber + Send + Sync + 'static {
        subscriber(move || capture.clone())
    }

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
fn the_readme_production_example_is_the_tested_file() {
    let root = session_tools::proxy::workspace_root();
    let file = std::fs::read_to_string(root.join("tests/tests/readme/production.rs")).unwrap();
    assert_eq!(
        readme_block_after("## Running in production").trim_end(),
        file.trim_end(),
        "the README's production example differs from tests/tests/readme/production.rs: \
         paste the file into the block again"
    );
}

#[tokio::test]
async fn the_readme_production_example_prints_its_spans() {
    let url = session_tests::support::fresh_database("readme_production").await;
    let capture = LogCapture::default();
    let _guard = tracing::subscriber::set_default(production::subscriber_into(capture.clone()));
    production::run_example(&url).await.unwrap();
    let log = capture.text();
    // `parent{..}:span{..}: session_core::span: close ...`: the innermost span closed.
    let closed = |name: &str| {
        log.lines()
            .filter_map(|l| l.split_once(": session_core::span: close"))
            .filter(|(spans, _)| {
                let start = spans
                    .rfind("}:")
                    .map(|i| i + 2)
                    .or_else(|| spans.find("INFO ").map(|i| i + 5))
                    .unwrap_or(0);
                spans[start..].starts_with(&format!("{name}{{"))
            })
            .count()
    };
    assert!(closed("checkout") >= 1, "{log}");
    assert_eq!(closed("commit"), 1, "{log}");
    let insert = log
        .lines()
        .find(|l| l.contains("statement{") && l.contains("db.operation.name=\"INSERT\""))
        .unwrap_or_else(|| panic!("no INSERT span in:\n{log}"));
    assert!(insert.contains("db.collection.name=\"note\""), "{insert}");
    assert!(insert.contains("db.system.name=\"postgresql\""), "{insert}");
    assert!(
        !insert.contains("hello"),
        "a parameter value was printed: {insert}"
    );
    let slow = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains("slow statement"))
        .unwrap_or_else(|| panic!("no slow-statement warning in:\n{log}"));
    assert!(slow.contains("SELECT pg_sleep(0.3)"), "{slow}");
    // The tenant's schema got the row.
    let engine = session_core::create_async_engine(&url).unwrap();
    let mut conn = engine.connect().await.unwrap();
    let body: String = conn
        .scalar("SELECT body FROM tenant_a.note", &[])
        .await
        .unwrap();
    assert_eq!(body, "hello");
}
