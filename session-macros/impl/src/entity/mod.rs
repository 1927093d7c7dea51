//! `#[derive(Entity)]`: maps a struct to a table (parse and check in `parse.rs`, generated
//! code in `expand.rs`).

mod expand;
mod parse;

use proc_macro2::TokenStream;

/// Expands `#[derive(Entity)]` on `input`.
///
/// # Errors
/// Every mistake in the struct or its `#[entity(...)]` attributes, combined, at the user's
/// tokens.
pub fn derive_entity(input: TokenStream) -> syn::Result<TokenStream> {
    let input: syn::DeriveInput = syn::parse2(input)?;
    let model = parse::parse(&input)?;
    Ok(expand::expand(&model))
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::derive_entity;

    #[test]
    fn table_defaults_to_snake_case_and_keys_become_tuples() {
        let out = derive_entity(quote! {
            struct UserAccount {
                #[entity(primary_key)] org: i32,
                #[entity(primary_key)] login: String,
                name: Option<String>,
            }
        })
        .unwrap()
        .to_string();
        assert!(out.contains("name : \"user_account\""), "{out}");
        assert!(out.contains("type Key = (i32 , String)"), "{out}");
        assert!(
            out.contains("const name : :: session_core :: Col < UserAccount , Option < String > >"),
            "{out}"
        );
    }

    #[test]
    fn every_mistake_is_reported_at_once() {
        let err = derive_entity(quote! {
            #[entity(tabel = "x")]
            struct Broken {
                #[entity(unqiue)] a: i32,
                #[entity(column = "a")] b: i32,
            }
        })
        .unwrap_err();
        let messages: Vec<String> = err.into_iter().map(|e| e.to_string()).collect();
        assert!(
            messages.iter().any(|m| m.contains("did you mean `table`")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("did you mean `unique`")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("duplicate column `a`")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("has no primary key")),
            "{messages:?}"
        );
    }

    #[test]
    fn relationships_generate_links_and_descriptors() {
        let out = derive_entity(quote! {
            struct A {
                #[entity(primary_key, generated)] id: i32,
                #[entity(relationship(foreign_key = "a_id"))] bs: Collection<B>,
            }
        })
        .unwrap()
        .to_string();
        assert!(out.contains("fn bs ()"), "{out}");
        assert!(out.contains("B :: __session_col_a_id"), "{out}");
        assert!(out.contains("Collection :: unloaded (\"A.bs\")"), "{out}");
    }
}
