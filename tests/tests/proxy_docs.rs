//! The docs `#[proxy_methods]` writes, checked on the expansion of the run-pass wrappers
//! (`proxy_delegation.rs` over `session_tests::proxy_targets`), through the same expansion
//! code the proc macros run: the target's summary, the "Proxied for" line, the rest; a proxy
//! of a proxy stacks the lines newest first, as SQLAlchemy's generated `scoping.py` does.

use std::path::PathBuf;

fn parse(relative: &str) -> syn::File {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative);
    let text = std::fs::read_to_string(&path).expect("read the source");
    syn::parse_file(&text).expect("parse the source")
}

/// The doc lines of `method` in the generated impl block of `wrapper`.
fn generated_docs(wrapper: &str, method: &str) -> Vec<String> {
    let targets = parse("src/proxy_targets.rs");
    let expansions =
        session_macros_impl::expand_source(&parse("tests/proxy_delegation.rs"), &[targets])
            .expect("the wrappers expand");
    let expansion = expansions
        .iter()
        .find(|e| e.label == format!("#[proxy_methods] impl {wrapper}"))
        .expect("the wrapper's expansion");
    let file: syn::File = syn::parse2(expansion.tokens.clone()).expect("the expansion parses");
    let generated = file
        .items
        .iter()
        .filter_map(|item| match item {
            syn::Item::Impl(block) => Some(block),
            _ => None,
        })
        .find(|block| {
            block
                .attrs
                .iter()
                .any(|a| a.path().is_ident("automatically_derived"))
        })
        .expect("the generated impl block");
    let function = generated
        .items
        .iter()
        .filter_map(|item| match item {
            syn::ImplItem::Fn(f) => Some(f),
            _ => None,
        })
        .find(|f| f.sig.ident == method)
        .expect("the generated method");
    function
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => s.value(),
                _ => panic!("a generated doc is not a string literal"),
            },
            _ => panic!("a generated doc is not `#[doc = ...]`"),
        })
        .collect()
}

#[test]
fn the_proxied_line_follows_the_summary() {
    assert_eq!(
        generated_docs("ByRef<'a>", "increment"),
        [
            " Adds one and returns the new value.",
            "",
            " Proxied for [`Counter`] on behalf of [`ByRef`].",
            "",
            " Saturates at `i64::MAX`.",
        ]
    );
}

#[test]
fn a_one_paragraph_doc_gets_the_line_after_it() {
    assert_eq!(
        generated_docs("ByMutex", "get"),
        [
            " The current value.",
            "",
            " Proxied for [`Counter`] on behalf of [`ByMutex`]."
        ]
    );
}

#[test]
fn a_proxy_of_a_proxy_stacks_the_lines_newest_first() {
    assert_eq!(
        generated_docs("Outer", "increment"),
        [
            " Adds one and returns the new value.",
            "",
            " Proxied for [`Boxed`] on behalf of [`Outer`].",
            "",
            " Proxied for [`Counter`] on behalf of [`Boxed`].",
            "",
            " Saturates at `i64::MAX`.",
        ]
    );
    assert_eq!(
        generated_docs("Outer", "describe"),
        [
            " \"label=value\".",
            "",
            " Proxied for [`Boxed`] on behalf of [`Outer`]."
        ],
        "Boxed's own method has one line"
    );
}
