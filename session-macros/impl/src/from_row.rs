//! `#[derive(FromRow)]`: decodes a struct with named fields from a row of raw SQL, each field
//! from the column of its name (`#[row(rename = "sql_name")]` for another).
//!
//! ```text
//! #[derive(session_core::FromRow)]
//! struct Sales {
//!     author: String,
//!     #[row(rename = "count")]
//!     books: i64,
//! }
//! ```
//!
//! expands to:
//!
//! ```text
//! #[automatically_derived]
//! impl ::session_core::FromRow for Sales {
//!     fn from_row(row: &::session_core::tokio_postgres::Row) -> ::session_core::Result<Self> {
//!         Ok(Self {
//!             author: ::session_core::__private::row_column::<String>(row, "author", "Sales", "author")?,
//!             books: ::session_core::__private::row_column::<i64>(row, "count", "Sales", "books")?,
//!         })
//!     }
//! }
//! ```
//!
//! Every mistake (an enum, a union, a tuple or unit struct, a lifetime parameter, an unknown
//! or malformed `#[row(...)]` key, a repeated one) is a compile error at the user's token,
//! all of them in one compile.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, LitStr};

/// The `impl ::session_core::FromRow` for `input`.
///
/// # Errors
/// Every mistake in the input, combined.
pub fn derive_from_row(input: TokenStream) -> syn::Result<TokenStream> {
    let input: DeriveInput = syn::parse2(input)?;
    let name = &input.ident;
    let fields = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(named) => &named.named,
            Fields::Unnamed(unnamed) => {
                return Err(syn::Error::new(
                    unnamed.span(),
                    "#[derive(FromRow)] needs named fields (each reads the column of its name), \
                     not a tuple struct; name the fields, or read tuples with `row.get(i)`",
                ));
            }
            Fields::Unit => {
                return Err(syn::Error::new(
                    name.span(),
                    "#[derive(FromRow)] needs named fields (each reads the column of its name), \
                     not a unit struct",
                ));
            }
        },
        Data::Enum(data) => {
            return Err(syn::Error::new(
                data.enum_token.span(),
                "#[derive(FromRow)] works on structs with named fields, not enums",
            ));
        }
        Data::Union(data) => {
            return Err(syn::Error::new(
                data.union_token.span(),
                "#[derive(FromRow)] works on structs with named fields, not unions",
            ));
        }
    };
    let mut errors: Option<syn::Error> = None;
    let mut push = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };
    if let Some(lifetime) = input.generics.lifetimes().next() {
        push(syn::Error::new(
            lifetime.span(),
            "#[derive(FromRow)] builds owned values from a row: a struct with a lifetime cannot \
             borrow from it; use owned types such as `String`",
        ));
    }
    let target = name.to_string();
    let mut inits = Vec::new();
    let mut bounds = Vec::new();
    for field in fields {
        let ident = field.ident.as_ref().expect("named field");
        let field_name = ident.unraw().to_string();
        let column = match rename(field) {
            Ok(Some(renamed)) => renamed,
            Ok(None) => field_name.clone(),
            Err(e) => {
                push(e);
                field_name.clone()
            }
        };
        let ty = &field.ty;
        inits.push(quote_spanned! {ty.span()=>
            #ident: ::session_core::__private::row_column::<#ty>(row, #column, #target, #field_name)?
        });
        bounds.push(quote_spanned! {ty.span()=>
            #ty: ::session_core::tokio_postgres::types::FromSqlOwned
        });
    }
    if let Some(errors) = errors {
        return Err(errors);
    }
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    // Generic field types need the bound spelled out; concrete ones are checked where they
    // are decoded, with the error at the field's type.
    let where_clause = if input.generics.type_params().next().is_some() {
        let existing = where_clause.into_iter().flat_map(|w| w.predicates.iter());
        quote!(where #(#existing,)* #(#bounds,)*)
    } else {
        quote!(#where_clause)
    };
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics ::session_core::FromRow for #name #ty_generics #where_clause {
            fn from_row(
                row: &::session_core::tokio_postgres::Row,
            ) -> ::session_core::Result<Self> {
                ::core::result::Result::Ok(Self { #(#inits,)* })
            }
        }
    })
}

/// The field's `#[row(rename = "...")]`, if any.
fn rename(field: &syn::Field) -> syn::Result<Option<String>> {
    let mut renamed: Option<String> = None;
    let mut errors: Option<syn::Error> = None;
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("row")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                let lit: LitStr = meta.value()?.parse()?;
                if renamed.is_some() {
                    return Err(meta.error("`rename` is given twice"));
                }
                if lit.value().is_empty() {
                    return Err(syn::Error::new(lit.span(), "the column name is empty"));
                }
                renamed = Some(lit.value());
                Ok(())
            } else {
                Err(meta
                    .error("unknown #[row(...)] key; the one key is `rename = \"column_name\"`"))
            }
        });
        if let Err(e) = result {
            match &mut errors {
                Some(all) => all.combine(e),
                None => errors = Some(e),
            }
        }
    }
    match errors {
        Some(e) => Err(e),
        None => Ok(renamed),
    }
}
