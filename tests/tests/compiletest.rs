//! trybuild cases for `#[proxy_methods]`, `#[publish_signatures]`, `#[derive(Entity)]` and
//! `#[derive(FromRow)]`: one compile-fail case per mistake under `tests/ui/<category>/`, and
//! run-pass cases under `tests/ui/pass/`.
//! Regenerate the `.stderr` files with `TRYBUILD=overwrite` and review the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    for category in [
        "accessor",
        "blocking",
        "entity",
        "forwarded",
        "generics",
        "from_row",
        "many",
        "names",
        "publish",
        "sections",
        "statement",
        "target",
    ] {
        t.compile_fail(format!("ui/{category}/*.rs"));
    }
    t.pass("ui/pass/*.rs");
}
