//! `#[derive(Entity)]`: reading and checking the struct and its `#[entity(...)]` attributes.
//! Every mistake is collected, so one compile reports them all.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, GenericArgument, Ident, LitStr, PathArguments, Type};

use crate::suggest::did_you_mean;

/// A mapped column.
pub(crate) struct ColumnField {
    pub(crate) ident: Ident,
    pub(crate) ty: Type,
    /// The type inside `Option<...>`, for nullable columns.
    pub(crate) inner: Option<Type>,
    pub(crate) column: String,
    pub(crate) primary_key: bool,
    pub(crate) generated: bool,
    pub(crate) server_default: Option<String>,
    pub(crate) foreign_key: Option<(String, String)>,
    pub(crate) unique: bool,
    pub(crate) sql_type: Option<String>,
}

/// A relationship field.
pub(crate) struct Relationship {
    pub(crate) ident: Ident,
    pub(crate) many: bool,
    pub(crate) target: Type,
    pub(crate) foreign_key: LitStr,
}

/// The checked struct.
pub(crate) struct Model {
    pub(crate) ident: Ident,
    pub(crate) vis: syn::Visibility,
    pub(crate) table: String,
    pub(crate) columns: Vec<ColumnField>,
    pub(crate) relationships: Vec<Relationship>,
}

const STRUCT_ATTRS: &[&str] = &["table"];
const FIELD_ATTRS: &[&str] = &[
    "column",
    "primary_key",
    "generated",
    "server_default",
    "foreign_key",
    "unique",
    "sql_type",
    "relationship",
];

struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }
}

fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, ch) in name.chars().enumerate() {
        if ch.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(ch.to_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

/// `Option<T>` → `Some(T)`.
fn option_inner(ty: &Type) -> Option<Type> {
    generic_of(ty, "Option")
}

/// `Name<T>` (by the last path segment) → `Some(T)`.
fn generic_of(ty: &Type, name: &str) -> Option<Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(t) if args.args.len() == 1 => Some(t.clone()),
        _ => None,
    }
}

fn unknown(errors: &mut Errors, ident: &syn::Path, valid: &[&str]) {
    let name = ident
        .get_ident()
        .map(Ident::to_string)
        .unwrap_or_else(|| quote::quote!(#ident).to_string());
    let hint = did_you_mean(&name, valid.iter().copied())
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default();
    errors.push(syn::Error::new(
        ident.span(),
        format!(
            "unknown entity attribute `{name}`{hint} (valid: {})",
            valid.join(", ")
        ),
    ));
}

/// Reads and checks the struct.
pub(crate) fn parse(input: &DeriveInput) -> syn::Result<Model> {
    let mut errors = Errors(None);
    let ident = input.ident.clone();
    if !input.generics.params.is_empty() {
        errors.push(syn::Error::new(
            input.generics.span(),
            "#[derive(Entity)] does not support generic structs: a mapped type names one table",
        ));
    }
    let fields = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => Some(named),
            other => {
                errors.push(syn::Error::new(
                    other.span(),
                    "#[derive(Entity)] needs a struct with named fields (one per column)",
                ));
                None
            }
        },
        Data::Enum(e) => {
            errors.push(syn::Error::new(
                e.enum_token.span,
                "#[derive(Entity)] works on structs, not enums",
            ));
            None
        }
        Data::Union(u) => {
            errors.push(syn::Error::new(
                u.union_token.span,
                "#[derive(Entity)] works on structs, not unions",
            ));
            None
        }
    };

    let mut table = snake_case(&ident.to_string());
    let mut seen_struct: Vec<String> = Vec::new();
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("entity")) {
        let result = attr.parse_nested_meta(|meta| {
            let name = meta
                .path
                .get_ident()
                .map(Ident::to_string)
                .unwrap_or_default();
            if seen_struct.contains(&name) {
                return Err(meta.error(format!("duplicate entity attribute `{name}`")));
            }
            seen_struct.push(name.clone());
            if meta.path.is_ident("table") {
                table = meta.value()?.parse::<LitStr>()?.value();
                Ok(())
            } else {
                unknown(&mut errors, &meta.path, STRUCT_ATTRS);
                if meta.input.peek(syn::Token![=]) {
                    let _: syn::Expr = meta.value()?.parse()?;
                }
                Ok(())
            }
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }

    let mut columns = Vec::new();
    let mut relationships = Vec::new();
    for field in fields.map(|f| f.named.iter()).into_iter().flatten() {
        let Some(fident) = field.ident.clone() else {
            continue;
        };
        if let Type::Reference(r) = &field.ty {
            errors.push(syn::Error::new(
                r.span(),
                "entity fields must own their values (a reference cannot be loaded from a row); \
                 use an owned type such as `String`",
            ));
            continue;
        }
        let mut col = ColumnField {
            column: fident.to_string(),
            ident: fident.clone(),
            ty: field.ty.clone(),
            inner: option_inner(&field.ty),
            primary_key: false,
            generated: false,
            server_default: None,
            foreign_key: None,
            unique: false,
            sql_type: None,
        };
        let mut relationship: Option<LitStr> = None;
        let mut rel_span = Span::call_site();
        let mut seen: Vec<String> = Vec::new();
        let mut default_span = None;
        for attr in field.attrs.iter().filter(|a| a.path().is_ident("entity")) {
            let result = attr.parse_nested_meta(|meta| {
                let name = meta
                    .path
                    .get_ident()
                    .map(Ident::to_string)
                    .unwrap_or_default();
                if seen.contains(&name) {
                    return Err(meta.error(format!("duplicate entity attribute `{name}`")));
                }
                seen.push(name.clone());
                match name.as_str() {
                    "column" => col.column = meta.value()?.parse::<LitStr>()?.value(),
                    "primary_key" => col.primary_key = true,
                    "generated" => col.generated = true,
                    "unique" => col.unique = true,
                    "server_default" => {
                        let lit: LitStr = meta.value()?.parse()?;
                        default_span = Some(lit.span());
                        col.server_default = Some(lit.value());
                    }
                    "sql_type" => col.sql_type = Some(meta.value()?.parse::<LitStr>()?.value()),
                    "foreign_key" => {
                        let lit: LitStr = meta.value()?.parse()?;
                        match lit.value().split_once('.') {
                            Some((t, c)) if !t.is_empty() && !c.is_empty() && !c.contains('.') => {
                                col.foreign_key = Some((t.to_string(), c.to_string()));
                            }
                            _ => {
                                return Err(syn::Error::new(
                                    lit.span(),
                                    "foreign_key must name `table.column`, e.g. \"a.id\"",
                                ));
                            }
                        }
                    }
                    "relationship" => {
                        rel_span = meta.path.span();
                        meta.parse_nested_meta(|inner| {
                            if inner.path.is_ident("foreign_key") {
                                relationship = Some(inner.value()?.parse()?);
                                Ok(())
                            } else {
                                Err(inner.error(
                                    "relationship takes `foreign_key = \"field\"`: the field \
                                     holding the parent's key (on the child for a collection, \
                                     on this struct for a reference)",
                                ))
                            }
                        })?;
                        if relationship.is_none() {
                            return Err(meta.error(
                                "relationship needs `foreign_key = \"field\"` naming the field \
                                 that holds the parent's key",
                            ));
                        }
                    }
                    _ => {
                        unknown(&mut errors, &meta.path, FIELD_ATTRS);
                        if meta.input.peek(syn::Token![=]) {
                            let _: syn::Expr = meta.value()?.parse()?;
                        }
                    }
                }
                Ok(())
            });
            if let Err(e) = result {
                errors.push(e);
            }
        }
        if col.generated && col.server_default.is_some() {
            errors.push(syn::Error::new(
                default_span.unwrap_or_else(|| fident.span()),
                "a column is either `generated` (SERIAL / IDENTITY) or has a `server_default`, \
                 not both",
            ));
        }
        if let Some(fk) = relationship {
            let (many, target) = match (
                generic_of(&field.ty, "Collection"),
                generic_of(&field.ty, "Reference"),
            ) {
                (Some(t), _) => (true, t),
                (_, Some(t)) => (false, t),
                _ => {
                    errors.push(syn::Error::new(
                        field.ty.span(),
                        "a relationship field is `Collection<Child>` (one-to-many) or \
                         `Reference<Parent>` (many-to-one)",
                    ));
                    continue;
                }
            };
            let _ = rel_span;
            relationships.push(Relationship {
                ident: fident,
                many,
                target,
                foreign_key: fk,
            });
        } else {
            columns.push(col);
        }
    }

    for (i, c) in columns.iter().enumerate() {
        if let Some(first) = columns[..i].iter().find(|o| o.column == c.column) {
            let mut e = syn::Error::new(
                c.ident.span(),
                format!(
                    "duplicate column `{}` (fields map to one SQL name each)",
                    c.column
                ),
            );
            e.combine(syn::Error::new(first.ident.span(), "first mapped here"));
            errors.push(e);
        }
    }
    let keys = columns.iter().filter(|c| c.primary_key).count();
    if fields.is_some() && keys == 0 {
        errors.push(syn::Error::new(
            ident.span(),
            format!("`{ident}` has no primary key; mark a field with #[entity(primary_key)]"),
        ));
    }
    for rel in &relationships {
        if rel.many && keys != 1 {
            errors.push(syn::Error::new(
                rel.ident.span(),
                "a collection relationship needs a single-column primary key on this entity",
            ));
        }
        if !rel.many && !columns.iter().any(|c| c.ident == rel.foreign_key.value()) {
            let names: Vec<String> = columns.iter().map(|c| c.ident.to_string()).collect();
            let hint = did_you_mean(&rel.foreign_key.value(), names.iter().map(String::as_str))
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            errors.push(syn::Error::new(
                rel.foreign_key.span(),
                format!(
                    "no column field `{}` on `{ident}` to hold the parent's key{hint}",
                    rel.foreign_key.value()
                ),
            ));
        }
    }
    match errors.0 {
        Some(e) => Err(e),
        None => Ok(Model {
            ident,
            vis: input.vis.clone(),
            table,
            columns,
            relationships,
        }),
    }
}
