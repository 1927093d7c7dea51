//! The README shows the demo program in full: the copy stays identical to `tools/src/demo.rs`.

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
