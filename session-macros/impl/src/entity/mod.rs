//! `#[derive(Entity)]`: maps a struct with named fields to a table and implements
//! `session_core::Entity` for it.
//!
//! One file per phase: `attr.rs` reads the `#[entity(...)]` keys, `ast.rs` the struct's
//! shape (into a [`ast::Model`] borrowing the user's tokens), `valid.rs` checks what needs
//! the whole struct, `expand.rs` writes the code. Every mistake is collected in [`Errors`]
//! and reported in one compile, each at the user's token; beside the errors the impls are
//! still generated whenever the struct's shape allows, so the rest of the crate does not
//! fail on "`Entity` is not implemented".
//!
//! # Example
//!
//! ```text
//! #[derive(Debug, Clone, session_core::Entity)]
//! #[entity(table = "b")]
//! struct B {
//!     #[entity(primary_key, generated)]
//!     id: i32,
//!     #[entity(foreign_key = "a.id")]
//!     a_id: i32,
//!     data: String,
//! }
//! ```
//!
//! expands to (abridged; `__private` is `::session_core::__private`):
//!
//! ```text
//! #[automatically_derived]
//! impl ::session_core::Entity for B {
//!     type Key = i32;
//!     const TABLE: &'static Table = &Table {
//!         name: "b",
//!         entity: "B",
//!         columns: &[
//!             Column { name: "id", field: "id", sql_type: <i32 as ColumnType>::SQL_TYPE,
//!                      nullable: <i32 as ColumnType>::NULLABLE, primary_key: true,
//!                      generated: true, server_default: None, foreign_key: None,
//!                      unique: false },
//!             Column { name: "a_id", /* ... */
//!                      foreign_key: Some(ForeignKey { table: "a", column: "id" }), /* ... */ },
//!             Column { name: "data", /* ... */ },
//!         ],
//!     };
//!     fn key(&self) -> i32 { Clone::clone(&self.id) }
//!     fn key_params(key: &i32) -> Vec<&(dyn ToSql + Sync)> { Vec::from([__private::param::<i32>(key)]) }
//!     fn column_param(&self, index: usize) -> &(dyn ToSql + Sync) {
//!         match index { 0 => __private::param::<i32>(&self.id), /* ... */ _ => __private::NO_PARAM }
//!     }
//!     fn column_array(objects: &[&Self], index: usize) -> OwnedParam {
//!         match index {
//!             0 => __private::array::<i32>(objects.iter().map(|o| o.id.clone()).collect()),
//!             /* ... */
//!             _ => __private::no_array(),
//!         }
//!     }
//!     fn from_row(row: &Row, offset: usize) -> Result<Self, Error> {
//!         Ok(Self { id: __private::get::<i32>(row, offset + 0)?, /* ... */ })
//!     }
//!     fn key_from_row(row: &Row, offset: usize) -> Result<i32, Error> {
//!         Ok(__private::get::<i32>(row, offset + 0)?)
//!     }
//!     fn set_column(&mut self, index: usize, row: &Row, at: usize) -> Result<(), Error> {
//!         match index { 0 => self.id = __private::get::<i32>(row, at)?, /* ... */ _ => {} }
//!         Ok(())
//!     }
//!     fn column_eq(&self, other: &Self, index: usize) -> bool {
//!         match index { 0 => __private::same_as::<i32>(&self.id, &other.id), /* ... */ _ => true }
//!     }
//!     // Only the `generated` / `server_default` columns; `is_unset` needs `Default`.
//!     fn column_is_unset(&self, index: usize) -> bool {
//!         match index { 0 => __private::is_unset::<i32>(&self.id), _ => false }
//!     }
//!     // With relationships: `unload_relations` sets each back to `unloaded("B.field")`,
//!     // `relations_eq` compares each with `PartialEq` (by identity).
//! }
//!
//! #[automatically_derived]
//! impl B {
//!     // hidden helpers for relationships only: `__session_col_a_id`, `__SESSION_KEY`, ...
//! }
//!
//! // `B::C`: the one public name the derive adds to `B`, so that nothing it generates
//! // collides with the user's own `fn data(&self)`; its struct cannot be named from outside.
//! const _: () = {
//!     struct __SessionColumns {
//!         /// The `id` column of `b`.
//!         id: Col<B, i32>,
//!         // ... one per column, then one loader descriptor per relationship (`B::C.a`)
//!     }
//!     impl B {
//!         /// The columns and relationships of `B` ...
//!         const C: __SessionColumns = __SessionColumns { id: Col::new(0), /* ... */ };
//!     }
//! };
//! ```

mod ast;
mod attr;
mod expand;
mod relations;
mod valid;

use proc_macro2::TokenStream;

use crate::signatures::Errors;

/// The expansion (when the struct's shape allows one) and the mistakes (when there are any).
fn derive(input: &syn::DeriveInput) -> (TokenStream, Option<syn::Error>) {
    let mut errors = Errors::default();
    let expansion = match ast::model(input, &mut errors) {
        Some(mut model) => {
            valid::check(&mut model, &mut errors);
            if model.expandable {
                expand::expand(&model)
            } else {
                TokenStream::new()
            }
        }
        None => TokenStream::new(),
    };
    (expansion, errors.finish().err())
}

/// Expands `#[derive(Entity)]` on `input`: the impls, and every mistake as a
/// `compile_error!` at the user's token beside them (the impls are still emitted when the
/// struct's shape allows, so that the errors do not cascade through the user's crate).
///
/// # Errors
/// `input` is not an item a derive can be applied to (never the case from the compiler).
pub fn derive_entity(input: TokenStream) -> syn::Result<TokenStream> {
    let input: syn::DeriveInput = syn::parse2(input)?;
    let (mut expansion, errors) = derive(&input);
    if let Some(errors) = errors {
        let mut out = errors.to_compile_error();
        out.extend(expansion);
        expansion = out;
    }
    Ok(expansion)
}

#[cfg(test)]
mod tests {
    use quote::quote;
    use syn::parse_quote;

    use super::{derive, derive_entity};

    fn expand_ok(input: syn::DeriveInput) -> String {
        let (out, errors) = derive(&input);
        assert!(errors.is_none(), "{errors:?}");
        out.to_string()
    }

    #[test]
    fn seed_entities_expand() {
        let a = expand_ok(parse_quote! {
            struct A {
                #[entity(primary_key, generated)] id: i32,
                data: String,
                #[entity(server_default = "now()")] create_date: Option<chrono::NaiveDateTime>,
            }
        });
        assert!(a.contains("type Key = i32 ;"), "{a}");
        assert!(a.contains("name : \"a\" , entity : \"A\""), "{a}");
        assert!(
            a.contains("server_default : :: core :: option :: Option :: Some (\"now()\")"),
            "{a}"
        );
        assert!(
            a.contains(":: session_core :: __private :: get :: < i32 > (row , offset + 0usize) ?"),
            "{a}"
        );
        assert!(
            a.contains(
                ":: session_core :: __private :: same_as :: < i32 > (& self . id , & other . id)"
            ),
            "change detection by ColumnType::same_as: {a}"
        );
        assert!(!a.contains("fn relations"), "no relationships, the default");
        assert!(
            a.contains("is_unset :: < i32 > (& self . id)")
                && a.contains(
                    "is_unset :: < Option < chrono :: NaiveDateTime > > (& self . create_date)"
                )
                && !a.contains("is_unset :: < String >"),
            "server-filled columns only: {a}"
        );
        assert!(
            !a.contains("fn unload_relations") && !a.contains("fn relations_eq"),
            "no relationships, the defaults"
        );
        let b = expand_ok(parse_quote! {
            struct B {
                #[entity(primary_key, generated)] id: i32,
                #[entity(foreign_key = "a.id")] a_id: i32,
                data: String,
            }
        });
        assert!(
            b.contains(
                "ForeignKey { table : \"a\" , column : \"id\" , on_delete : :: core :: option :: \
                 Option :: None , on_update : :: core :: option :: Option :: None , }"
            ),
            "{b}"
        );
    }

    #[test]
    fn composite_keys_are_tuples_in_field_order() {
        let out = expand_ok(parse_quote! {
            struct UserAccount {
                #[entity(primary_key)] org: i32,
                name: Option<String>,
                #[entity(primary_key, column = "user_login")] login: String,
            }
        });
        assert!(out.contains("name : \"user_account\""), "{out}");
        assert!(out.contains("type Key = (i32 , String)"), "{out}");
        assert!(out.contains("(:: core :: clone :: Clone :: clone (& self . org) , :: core :: clone :: Clone :: clone (& self . login))"), "{out}");
        assert!(out.contains("param :: < String > (& key . 1)"), "{out}");
        assert!(
            out.contains("get :: < String > (row , offset + 2usize) ?"),
            "{out}"
        );
        assert!(
            out.contains("name : \"user_login\" , field : \"login\""),
            "{out}"
        );
        assert!(
            out.contains("name : :: session_core :: Col < UserAccount , Option < String > >")
                && out.contains("const C : __SessionColumns"),
            "{out}"
        );
        assert!(!out.contains("__SESSION_KEY"), "only for single keys");
    }

    #[test]
    fn sql_type_overrides_and_raw_field_names() {
        let out = expand_ok(parse_quote! {
            struct T {
                #[entity(primary_key, sql_type = "varchar(30)", unique)] r#type: String,
            }
        });
        assert!(out.contains("sql_type : \"varchar(30)\""), "{out}");
        assert!(out.contains("name : \"type\" , field : \"type\""), "{out}");
        assert!(out.contains("unique : true"), "{out}");
    }

    #[test]
    fn relationships_generate_links_and_descriptors() {
        let out = expand_ok(parse_quote! {
            struct A {
                #[entity(primary_key, generated)] id: i32,
                #[entity(relationship(foreign_key = "a_id"))] bs: Collection<B>,
            }
        });
        assert!(
            out.contains("bs : :: session_core :: OneToMany < A , B ,"),
            "the descriptor is a field of A::C: {out}"
        );
        assert!(
            !out.contains("fn bs"),
            "nothing named after a field on A: {out}"
        );
        assert!(
            out.contains("const _ : () = {"),
            "the struct of A::C is hidden: {out}"
        );
        assert!(out.contains("< B > :: __session_col_a_id"), "{out}");
        assert!(out.contains("Collection :: unloaded (\"A.bs\")"), "{out}");
        assert!(out.contains("fn relations"), "{out}");
        assert!(
            out.contains("fn unload_relations (& mut self) { self . bs = :: session_core :: Collection :: unloaded (\"A.bs\") ; }"),
            "{out}"
        );
        assert!(
            out.contains(":: core :: cmp :: PartialEq :: eq (& self . bs , & other . bs)"),
            "{out}"
        );
        assert!(
            out.contains(
                "0usize => :: session_core :: __private :: is_unset :: < i32 > (& self . id)"
            ),
            "only the generated column: {out}"
        );
    }

    #[test]
    fn mistakes_come_with_a_fallback_expansion() {
        let out = derive_entity(quote! {
            #[entity(tabel = "x")]
            struct Broken {
                #[entity(unqiue)] a: i32,
                #[entity(column = "a")] b: i32,
                #[entity(relationship(foreign_key = "nope"))] p: Reference<P>,
            }
        })
        .unwrap()
        .to_string();
        for expected in [
            "did you mean `table`",
            "did you mean `unique`",
            "duplicate column `a`",
            "has no primary key",
            "no column field `nope`",
        ] {
            assert!(out.contains(expected), "{expected}: {out}");
        }
        assert!(out.contains("type Key = ()"), "{out}");
        assert!(
            out.contains("Reference :: unloaded (\"Broken.p\")"),
            "{out}"
        );
        assert!(
            !out.contains("p : :: session_core :: ManyToOne"),
            "unusable relationship: no descriptor"
        );
    }

    #[test]
    fn shapes_without_an_expansion_give_only_errors() {
        let out = derive_entity(quote!(
            enum E {
                A,
            }
        ))
        .unwrap()
        .to_string();
        assert!(out.contains("compile_error"), "{out}");
        assert!(!out.contains("impl"), "{out}");
        assert!(
            derive_entity(quote!(
                fn f() {}
            ))
            .is_err()
        );
    }
}
