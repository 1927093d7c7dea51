//! `#[derive(ColumnType)]`: a Rust enum stored as text or as a PostgreSQL enum, or a newtype
//! stored as the type it wraps, without hand-written `ToSql` / `FromSql`.
//!
//! ```text
//! #[derive(Debug, Clone, Copy, PartialEq, session_core::ColumnType)]
//! #[column(rename_all = "snake_case")]            // stored as text: 'on_hold'
//! enum Status { Draft, OnHold, #[column(rename = "live")] Published }
//!
//! #[derive(Debug, Clone, Copy, PartialEq, session_core::ColumnType)]
//! #[column(pg_enum = "mood")]                     // CREATE TYPE mood AS ENUM ('Sad', 'Happy')
//! enum Mood { Sad, Happy }
//!
//! #[derive(Debug, Clone, PartialEq, session_core::ColumnType)]
//! struct Price(rust_decimal::Decimal);            // numeric, as Decimal is
//! ```
//!
//! Generated: `ToSql` and `FromSql` (an unknown label is a decode error naming the label and
//! the enum), `ColumnType`, `ArrayElement` (so `Vec<Status>` is a `text[]` column), and for a
//! newtype `max` / `min` / `sum` / `avg` whenever the wrapped type has them.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, LitStr};

use crate::signatures::Errors;

const PRIVATE: &str = "::session_core::__private";

/// `#[derive(ColumnType)]` on `input`.
///
/// # Errors
/// The item is a union, a struct that is no newtype, or an enum with data or no variants;
/// an attribute is unknown or malformed. Every mistake is reported, each at its token.
pub fn derive_column_type(input: TokenStream) -> syn::Result<TokenStream> {
    let input: DeriveInput = syn::parse2(input)?;
    let mut errors = Errors::default();
    if !input.generics.params.is_empty() {
        errors.push(syn::Error::new(
            input.generics.span(),
            "`#[derive(ColumnType)]` takes no generic parameters; derive it on a concrete \
             enum or newtype",
        ));
    }
    let attrs = read_attrs(&input.attrs, TYPE_KEYS, &mut errors);
    let out = match &input.data {
        Data::Enum(data) => expand_enum(&input, data, &attrs, &mut errors),
        Data::Struct(data) => expand_newtype(&input, &data.fields, &attrs, &mut errors),
        Data::Union(u) => {
            errors.push(syn::Error::new(
                u.union_token.span,
                "`#[derive(ColumnType)]` is for enums (stored as text or a PostgreSQL enum) and \
                 newtypes (`struct Price(Decimal);`), not unions",
            ));
            None
        }
    };
    match errors.finish() {
        Ok(()) => Ok(out.unwrap_or_default()),
        Err(e) => Err(e),
    }
}

const TYPE_KEYS: &[&str] = &["rename_all", "pg_enum", "sql_type"];
const VARIANT_KEYS: &[&str] = &["rename"];

#[derive(Default)]
struct Attrs {
    rename_all: Option<LitStr>,
    pg_enum: Option<LitStr>,
    sql_type: Option<LitStr>,
    rename: Option<LitStr>,
}

fn read_attrs(attrs: &[syn::Attribute], keys: &[&str], errors: &mut Errors) -> Attrs {
    let mut out = Attrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("column")) {
        let result = attr.parse_nested_meta(|meta| {
            let name = meta
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            if !keys.contains(&name.as_str()) {
                return Err(meta.error(format!(
                    "unknown `column` key `{name}` here; expected one of: {}",
                    keys.join(", ")
                )));
            }
            let value: LitStr = meta.value()?.parse()?;
            if value.value().trim().is_empty() {
                return Err(syn::Error::new(
                    value.span(),
                    format!("`{name}` must not be empty"),
                ));
            }
            let slot = match name.as_str() {
                "rename_all" => &mut out.rename_all,
                "pg_enum" => &mut out.pg_enum,
                "sql_type" => &mut out.sql_type,
                _ => &mut out.rename,
            };
            if slot.is_some() {
                return Err(meta.error(format!("`{name}` is given twice")));
            }
            *slot = Some(value);
            Ok(())
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    out
}

/// Applies `rename_all` (serde's spellings) to a variant name.
fn rename(name: &str, rule: &str) -> Option<String> {
    let words = split_words(name);
    let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
    Some(match rule {
        "lowercase" => name.to_lowercase(),
        "UPPERCASE" => name.to_uppercase(),
        "snake_case" => lower.join("_"),
        "SCREAMING_SNAKE_CASE" => lower.join("_").to_uppercase(),
        "kebab-case" => lower.join("-"),
        "SCREAMING-KEBAB-CASE" => lower.join("-").to_uppercase(),
        "camelCase" => {
            let mut out = String::new();
            for (i, w) in lower.iter().enumerate() {
                if i == 0 {
                    out.push_str(w);
                } else {
                    out.push_str(&capitalize(w));
                }
            }
            out
        }
        "PascalCase" => lower.iter().map(|w| capitalize(w)).collect(),
        _ => return None,
    })
}

const RULES: &str = "lowercase, UPPERCASE, snake_case, SCREAMING_SNAKE_CASE, kebab-case, \
                     SCREAMING-KEBAB-CASE, camelCase, PascalCase";

fn capitalize(w: &str) -> String {
    let mut c = w.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// `OnHold` -> [`On`, `Hold`]; `HTTPError` -> [`HTTP`, `Error`]; `v2_beta` -> [`v2`, `beta`].
fn split_words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut words = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            continue;
        }
        let boundary = c.is_uppercase()
            && !current.is_empty()
            && (chars[i - 1].is_lowercase()
                || chars[i - 1].is_ascii_digit()
                || chars.get(i + 1).is_some_and(|n| n.is_lowercase()));
        if boundary {
            words.push(std::mem::take(&mut current));
        }
        current.push(c);
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

fn expand_enum(
    input: &DeriveInput,
    data: &syn::DataEnum,
    attrs: &Attrs,
    errors: &mut Errors,
) -> Option<TokenStream> {
    if data.variants.is_empty() {
        errors.push(syn::Error::new(
            input.ident.span(),
            "an enum column needs at least one variant (PostgreSQL enums need a label)",
        ));
        return None;
    }
    if let Some(t) = &attrs.sql_type {
        errors.push(syn::Error::new(
            t.span(),
            "`sql_type` is for newtypes; an enum is stored as `text`, or as the PostgreSQL \
             enum `pg_enum = \"name\"` names",
        ));
    }
    let rule = attrs.rename_all.as_ref().map(|r| (r.value(), r.span()));
    if let Some((r, span)) = &rule {
        if rename("X", r).is_none() {
            errors.push(syn::Error::new(
                *span,
                format!("unknown `rename_all` rule `{r}`; expected one of: {RULES}"),
            ));
        }
    }
    let mut labels: Vec<(String, &syn::Ident, Span)> = Vec::new();
    for v in &data.variants {
        if !matches!(v.fields, Fields::Unit) {
            errors.push(syn::Error::new(
                v.fields.span(),
                format!(
                    "variant `{}` carries data; a column enum has unit variants only (store \
                     data in columns of their own, or in a `Json<T>` column)",
                    v.ident
                ),
            ));
            continue;
        }
        let own = read_attrs(&v.attrs, VARIANT_KEYS, errors);
        let label = match (&own.rename, &rule) {
            (Some(r), _) => r.value(),
            (None, Some((r, _))) => rename(&v.ident.to_string(), r).unwrap_or_default(),
            (None, None) => v.ident.to_string(),
        };
        let span = own.rename.as_ref().map_or(v.ident.span(), LitStr::span);
        if let Some((_, first, _)) = labels.iter().find(|(l, _, _)| *l == label) {
            errors.push(syn::Error::new(
                span,
                format!(
                    "variants `{first}` and `{}` are both stored as `{label}`",
                    v.ident
                ),
            ));
        }
        labels.push((label, &v.ident, span));
    }
    let ident = &input.ident;
    let p: TokenStream = PRIVATE.parse().ok()?;
    let label_strs: Vec<&str> = labels.iter().map(|(l, _, _)| l.as_str()).collect();
    let variants: Vec<&syn::Ident> = labels.iter().map(|(_, v, _)| *v).collect();
    let rust_name = ident.to_string();
    if let Some(name) = &attrs.pg_enum {
        let plain = name.value().split('.').all(|part| {
            part.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        });
        if !plain {
            errors.push(syn::Error::new(
                name.span(),
                "`pg_enum` must be a lower-case SQL identifier (`order_status`, or \
                 `schema.order_status`): it is written unquoted in casts and DDL",
            ));
        }
    }
    let (sql_type, array_type, pg_enum, enum_type) = match &attrs.pg_enum {
        Some(name) => {
            let n = name.value();
            let array = format!("{n}[]");
            (
                quote!(#name),
                quote!(#array),
                quote!(::core::option::Option::Some(#name)),
                quote!(::core::option::Option::Some(&::session_core::EnumType {
                    name: #name,
                    labels: &[#(#label_strs),*],
                })),
            )
        }
        None => (
            quote!("text"),
            quote!("text[]"),
            quote!(::core::option::Option::None),
            quote!(::core::option::Option::None),
        ),
    };
    let pt = quote!(#p::postgres_types);
    // A PostgreSQL enum orders by its labels' order, so `max` / `min` mean something; text
    // would order by spelling.
    let extremum = attrs.pg_enum.as_ref().map(|_| {
        quote! {
            #[automatically_derived]
            impl ::session_core::func::Extremum for #ident {
                type Out = ::core::option::Option<#ident>;
            }
        }
    });
    Some(quote! {
        #extremum

        #[automatically_derived]
        impl #pt::ToSql for #ident {
            fn to_sql(
                &self,
                _ty: &#pt::Type,
                out: &mut #pt::private::BytesMut,
            ) -> ::core::result::Result<#pt::IsNull, #p::BoxError> {
                #p::enum_to_sql(
                    match self { #(#ident::#variants => #label_strs,)* },
                    out,
                )
            }

            fn accepts(ty: &#pt::Type) -> bool {
                #p::enum_accepts(ty, #pg_enum)
            }

            #pt::to_sql_checked!();
        }

        #[automatically_derived]
        impl<'a> #pt::FromSql<'a> for #ident {
            fn from_sql(
                _ty: &#pt::Type,
                raw: &'a [u8],
            ) -> ::core::result::Result<Self, #p::BoxError> {
                match #p::enum_label(raw)? {
                    #(#label_strs => ::core::result::Result::Ok(#ident::#variants),)*
                    other => ::core::result::Result::Err(
                        #p::unknown_label(#rust_name, other, &[#(#label_strs),*]),
                    ),
                }
            }

            fn accepts(ty: &#pt::Type) -> bool {
                #p::enum_accepts(ty, #pg_enum)
            }
        }

        #[automatically_derived]
        impl ::session_core::ColumnType for #ident {
            const SQL_TYPE: &'static str = #sql_type;
            const ENUM_TYPE: ::core::option::Option<&'static ::session_core::EnumType> = #enum_type;
        }

        #[automatically_derived]
        impl ::session_core::ArrayElement for #ident {
            const ARRAY_TYPE: &'static str = #array_type;
        }
    })
}

fn expand_newtype(
    input: &DeriveInput,
    fields: &Fields,
    attrs: &Attrs,
    errors: &mut Errors,
) -> Option<TokenStream> {
    for (key, lit) in [
        ("rename_all", &attrs.rename_all),
        ("pg_enum", &attrs.pg_enum),
    ] {
        if let Some(l) = lit {
            errors.push(syn::Error::new(
                l.span(),
                format!("`{key}` is for enums; a newtype is stored as the type it wraps"),
            ));
        }
    }
    let field = match fields.iter().collect::<Vec<_>>().as_slice() {
        [one] => *one,
        _ => {
            errors.push(syn::Error::new(
                if fields.is_empty() {
                    input.ident.span()
                } else {
                    fields.span()
                },
                "`#[derive(ColumnType)]` on a struct needs exactly one field (a newtype such as \
                 `struct Price(Decimal);`); map a struct of several fields as an entity, or \
                 store it in a `Json<T>` column",
            ));
            return None;
        }
    };
    let ident = &input.ident;
    let inner = &field.ty;
    let (access, build) = match &field.ident {
        Some(name) => (quote!(#name), quote!(|v| #ident { #name: v })),
        None => (quote!(0), quote!(#ident)),
    };
    let p: TokenStream = PRIVATE.parse().ok()?;
    let pt = quote!(#p::postgres_types);
    let ct = quote!(<#inner as ::session_core::ColumnType>);
    let (sql_type, array_type) = match &attrs.sql_type {
        Some(t) => {
            let array = format!("{}[]", t.value());
            (quote!(#t), quote!(#array))
        }
        None => (
            quote!(#ct::SQL_TYPE),
            quote!(<#inner as ::session_core::ArrayElement>::ARRAY_TYPE),
        ),
    };
    // A higher-ranked bound is never "trivially false": the impl simply does not apply
    // when the wrapped type lacks the trait.
    let lt = format_ident!("__session_a");
    let lt = syn::Lifetime::new(&format!("'{lt}"), Span::call_site());
    Some(quote! {
        #[automatically_derived]
        impl #pt::ToSql for #ident {
            fn to_sql(
                &self,
                ty: &#pt::Type,
                out: &mut #pt::private::BytesMut,
            ) -> ::core::result::Result<#pt::IsNull, #p::BoxError> {
                #pt::ToSql::to_sql(&self.#access, ty, out)
            }

            fn accepts(ty: &#pt::Type) -> bool {
                <#inner as #pt::ToSql>::accepts(ty)
            }

            #pt::to_sql_checked!();
        }

        #[automatically_derived]
        impl<'a> #pt::FromSql<'a> for #ident {
            fn from_sql(
                ty: &#pt::Type,
                raw: &'a [u8],
            ) -> ::core::result::Result<Self, #p::BoxError> {
                <#inner as #pt::FromSql<'a>>::from_sql(ty, raw).map(#build)
            }

            fn from_sql_null(ty: &#pt::Type) -> ::core::result::Result<Self, #p::BoxError> {
                <#inner as #pt::FromSql<'a>>::from_sql_null(ty).map(#build)
            }

            fn accepts(ty: &#pt::Type) -> bool {
                <#inner as #pt::FromSql<'a>>::accepts(ty)
            }
        }

        #[automatically_derived]
        impl ::session_core::ColumnType for #ident {
            const SQL_TYPE: &'static str = #sql_type;
            const NULLABLE: bool = #ct::NULLABLE;
            const CHECKED: bool = #ct::CHECKED;
            const ENUM_TYPE: ::core::option::Option<&'static ::session_core::EnumType> =
                #ct::ENUM_TYPE;

            fn is_null(&self) -> bool {
                ::session_core::ColumnType::is_null(&self.#access)
            }

            fn same_as(&self, other: &Self) -> bool {
                ::session_core::ColumnType::same_as(&self.#access, &other.#access)
            }

            fn check(&self) -> ::core::result::Result<(), #p::String> {
                ::session_core::ColumnType::check(&self.#access)
            }
        }

        #[automatically_derived]
        impl ::session_core::ArrayElement for #ident
        where
            for<#lt> #inner: ::session_core::ArrayElement,
        {
            const ARRAY_TYPE: &'static str = #array_type;
        }

        #[automatically_derived]
        impl ::session_core::func::Extremum for #ident
        where
            for<#lt> #inner: ::session_core::func::Extremum,
        {
            type Out = ::core::option::Option<#ident>;
        }

        #[automatically_derived]
        impl ::session_core::func::Summable for #ident
        where
            for<#lt> #inner: ::session_core::func::Summable,
        {
            type Sum = <#inner as ::session_core::func::Summable>::Sum;
            const SUM_TYPE: &'static str = <#inner as ::session_core::func::Summable>::SUM_TYPE;
            type Avg = <#inner as ::session_core::func::Summable>::Avg;
            const AVG_TYPE: &'static str = <#inner as ::session_core::func::Summable>::AVG_TYPE;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_rules_follow_serde() {
        assert_eq!(rename("OnHold", "snake_case").unwrap(), "on_hold");
        assert_eq!(rename("OnHold", "kebab-case").unwrap(), "on-hold");
        assert_eq!(rename("OnHold", "camelCase").unwrap(), "onHold");
        assert_eq!(rename("HTTPError", "snake_case").unwrap(), "http_error");
        assert_eq!(rename("OnHold", "SCREAMING_SNAKE_CASE").unwrap(), "ON_HOLD");
        assert_eq!(rename("on_hold", "PascalCase").unwrap(), "OnHold");
        assert!(rename("X", "Title Case").is_none());
    }

    #[test]
    fn misuse_is_reported_at_the_token() {
        let e = derive_column_type(quote!(
            enum E {
                A(i32),
                B,
            }
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("variant `A` carries data"), "{e}");
        let e = derive_column_type(quote!(
            struct P(i32, i32);
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("exactly one field"), "{e}");
        let e = derive_column_type(quote!(
            #[column(rename_all = "Title")]
            enum E {
                A,
            }
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown `rename_all` rule"), "{e}");
        let e = derive_column_type(quote!(
            enum E {
                #[column(rename = "x")]
                A,
                #[column(rename = "x")]
                B,
            }
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("both stored as `x`"), "{e}");
    }
}
