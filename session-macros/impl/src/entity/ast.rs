//! `#[derive(Entity)]`, phase 1b: the struct's shape, read into a [`Model`] that borrows the
//! user's syntax (idents and types keep their spans for the generated code and the errors).

use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, GenericArgument, Ident, LitStr, PathArguments, Type};

use super::attr::{self, FieldAttrs};
use crate::signatures::Errors;

/// The struct being derived.
pub(crate) struct Model<'a> {
    pub(crate) input: &'a DeriveInput,
    pub(crate) ident: &'a Ident,
    /// SQL name of the table.
    pub(crate) table: String,
    /// Mapped columns, in field order.
    pub(crate) columns: Vec<ColumnField<'a>>,
    pub(crate) relationships: Vec<Relationship<'a>>,
    /// Indexes (struct `index` / `unique_index`, field `index`), columns by SQL name.
    pub(crate) indexes: Vec<IndexDef>,
    /// Multi-column UNIQUE constraints, columns by SQL name.
    pub(crate) uniques: Vec<Vec<String>>,
    /// CHECK constraints (struct and field `check`).
    pub(crate) checks: Vec<String>,
    /// Every field has a place in the expansion, so it is well-formed even beside errors
    /// (false for generic structs and for fields that cannot be read from a row).
    pub(crate) expandable: bool,
}

/// An index of the table.
pub(crate) struct IndexDef {
    pub(crate) name: String,
    pub(crate) columns: Vec<String>,
    pub(crate) unique: bool,
}

/// The SQL names of the fields a `"field, field"` list names; an unknown or repeated name
/// is an error at the literal.
fn column_list(lit: &LitStr, columns: &[ColumnField<'_>], errors: &mut Errors) -> Vec<String> {
    let mut out = Vec::new();
    for part in lit.value().split(',').map(str::trim) {
        match columns
            .iter()
            .find(|c| c.field_name() == part || c.name == part)
        {
            Some(c) if out.contains(&c.name) => errors.push(syn::Error::new(
                lit.span(),
                format!("column `{part}` is named twice"),
            )),
            Some(c) => out.push(c.name.clone()),
            None => errors.push(syn::Error::new(
                lit.span(),
                format!(
                    "`{part}` is not a column of this entity (write the field names, comma \
                     separated: \"{}\")",
                    columns
                        .iter()
                        .take(2)
                        .map(ColumnField::field_name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
    out
}

/// A field mapped to a column.
pub(crate) struct ColumnField<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) ty: &'a Type,
    /// The type inside `Option<...>` for a nullable column.
    pub(crate) inner: Option<&'a Type>,
    /// SQL name.
    pub(crate) name: String,
    pub(crate) attrs: FieldAttrs,
}

impl Relationship<'_> {
    /// The side without the foreign key (a `Collection`, or a `uselist = false` `Reference`):
    /// the foreign key is a field of the target.
    pub(crate) fn parent_side(&self) -> bool {
        self.many || self.one.is_some()
    }

    /// A many-to-many through a link entity (`secondary = "..."`), once validated.
    pub(crate) fn m2m(&self) -> Option<(&syn::Type, &LitStr)> {
        Some((self.link.as_ref()?, self.target_foreign_key.as_ref()?))
    }
}

impl ColumnField<'_> {
    /// The Rust field name without `r#`.
    pub(crate) fn field_name(&self) -> String {
        syn::ext::IdentExt::unraw(self.ident).to_string()
    }
}

/// A `Collection<Child>` or `Reference<Parent>` field with `relationship(...)`.
pub(crate) struct Relationship<'a> {
    pub(crate) ident: &'a Ident,
    /// `Collection` (one-to-many) rather than `Reference` (many-to-one).
    pub(crate) many: bool,
    /// The other entity.
    pub(crate) target: &'a Type,
    /// The field holding the parent's key.
    pub(crate) foreign_key: LitStr,
    /// `cascade = "delete"`: deleting the parent deletes its children (the literal's span).
    pub(crate) cascade_delete: Option<proc_macro2::Span>,
    /// `cascade = "delete-orphan"`: a child taken out of the collection is deleted.
    pub(crate) delete_orphan: Option<proc_macro2::Span>,
    /// `cascade = "expunge"`: expunging the object expunges the related ones.
    pub(crate) cascade_expunge: bool,
    /// `cascade = "refresh-expire"`: expiring (or refreshing) the object expires them.
    pub(crate) cascade_refresh: bool,
    /// `cascade = "merge"` (the default): merging the object merges them.
    pub(crate) cascade_merge: bool,
    /// A mistake in `cascade = "..."` (reported by validation).
    pub(crate) cascade_error: Option<syn::Error>,
    /// `back_populates = "field"`: the other side's relationship field.
    pub(crate) back_populates: Option<LitStr>,
    /// `uselist = false`: a one-to-one `Reference` whose foreign key is on the target (the
    /// parent side); its span.
    pub(crate) one: Option<proc_macro2::Span>,
    /// `secondary = "LinkEntity"`: a many-to-many through that entity's table (the literal;
    /// validation parses it into `link`).
    pub(crate) secondary: Option<LitStr>,
    /// The link entity's type, parsed from `secondary` (spanned at the literal).
    pub(crate) link: Option<syn::Type>,
    /// `target_foreign_key = "field"`: the link's field holding the target's key.
    pub(crate) target_foreign_key: Option<LitStr>,
    /// `passive_deletes = true`: rows not in the session are left to the database.
    pub(crate) passive_deletes: Option<proc_macro2::Span>,
    /// Column keys given on this field (an error: they mean nothing here).
    pub(crate) stray_keys: Vec<proc_macro2::Span>,
    /// Passed validation: its link and loader descriptor are generated. Otherwise the field
    /// is only initialised (unloaded) when an object is read.
    pub(crate) usable: bool,
}

/// `Name<T>` (by the last path segment) → `T`.
pub(crate) fn generic_arg<'t>(ty: &'t Type, name: &str) -> Option<&'t Type> {
    let Type::Path(path) = ty else { return None };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match (args.args.len(), args.args.first()?) {
        (1, GenericArgument::Type(t)) => Some(t),
        _ => None,
    }
}

/// Reads the struct. `None` when it is no struct with named fields (then nothing but the
/// errors is generated).
pub(crate) fn model<'a>(input: &'a DeriveInput, errors: &mut Errors) -> Option<Model<'a>> {
    let struct_attrs = attr::struct_attrs(&input.attrs, errors);
    let fields = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => Some(named),
            Fields::Unnamed(unnamed) => {
                errors.push(syn::Error::new(
                    unnamed.span(),
                    "#[derive(Entity)] needs named fields (one per column), not a tuple struct",
                ));
                None
            }
            Fields::Unit => {
                errors.push(syn::Error::new(
                    input.ident.span(),
                    "#[derive(Entity)] needs named fields (one per column), not a unit struct",
                ));
                None
            }
        },
        Data::Enum(e) => {
            errors.push(syn::Error::new(
                e.enum_token.span,
                "#[derive(Entity)] works on structs with named fields, not enums",
            ));
            None
        }
        Data::Union(u) => {
            errors.push(syn::Error::new(
                u.union_token.span,
                "#[derive(Entity)] works on structs with named fields, not unions",
            ));
            None
        }
    };
    let mut expandable = true;
    if !input.generics.params.is_empty() {
        errors.push(syn::Error::new(
            input.generics.params.span(),
            "#[derive(Entity)] does not support generic structs: a mapped type names one table \
             and owns its values",
        ));
        expandable = false;
    }
    let fields = fields?;

    let mut columns = Vec::new();
    let mut relationships = Vec::new();
    for field in &fields.named {
        let Some(ident) = field.ident.as_ref() else {
            continue;
        };
        let attrs = attr::field_attrs(&field.attrs, errors);
        if let Type::Reference(r) = &field.ty {
            errors.push(syn::Error::new(
                r.and_token.span,
                "entity fields own their values (a reference cannot be read from a row); use \
                 an owned type such as `String` or `Vec<u8>`",
            ));
            expandable = false;
            continue;
        }
        if let Some(rel) = &attrs.relationship {
            let (many, target) = match (
                generic_arg(&field.ty, "Collection"),
                generic_arg(&field.ty, "Reference"),
            ) {
                (Some(t), _) => (true, t),
                (_, Some(t)) => (false, t),
                _ => {
                    errors.push(syn::Error::new(
                        field.ty.span(),
                        "a `relationship` field is a `Collection<Child>` (one-to-many) or a \
                         `Reference<Parent>` (many-to-one)",
                    ));
                    expandable = false;
                    continue;
                }
            };
            relationships.push(Relationship {
                ident,
                many,
                target,
                foreign_key: rel.foreign_key.clone(),
                cascade_delete: rel.cascades.delete,
                delete_orphan: rel.cascades.delete_orphan,
                cascade_expunge: rel.cascades.expunge.is_some(),
                cascade_refresh: rel.cascades.refresh_expire.is_some(),
                cascade_merge: rel.cascades.merge,
                cascade_error: rel.cascade_error.clone(),
                back_populates: rel.back_populates.clone(),
                one: rel.uselist_false.as_ref().map(syn::LitBool::span),
                secondary: rel.secondary.clone(),
                link: None,
                target_foreign_key: rel.target_foreign_key.clone(),
                passive_deletes: rel.passive_deletes.as_ref().map(syn::LitBool::span),
                stray_keys: attrs.column_keys(),
                usable: true,
            });
            continue;
        }
        columns.push(ColumnField {
            ident,
            ty: &field.ty,
            inner: generic_arg(&field.ty, "Option"),
            name: attrs.column.as_ref().map_or_else(
                || syn::ext::IdentExt::unraw(ident).to_string(),
                LitStr::value,
            ),
            attrs,
        });
    }
    let table = struct_attrs
        .table
        .as_ref()
        .map_or_else(|| attr::snake_case(&input.ident), LitStr::value);
    let mut indexes: Vec<IndexDef> = columns
        .iter()
        .filter(|c| c.attrs.index.is_some())
        .map(|c| IndexDef {
            name: format!("ix_{table}_{}", c.name),
            columns: vec![c.name.clone()],
            unique: false,
        })
        .collect();
    for (lit, unique) in &struct_attrs.indexes {
        let cols = column_list(lit, &columns, errors);
        if !cols.is_empty() {
            let prefix = if *unique { "uq" } else { "ix" };
            indexes.push(IndexDef {
                name: format!("{prefix}_{table}_{}", cols.join("_")),
                columns: cols,
                unique: *unique,
            });
        }
    }
    let uniques = struct_attrs
        .uniques
        .iter()
        .map(|lit| column_list(lit, &columns, errors))
        .filter(|c| !c.is_empty())
        .collect();
    let mut checks: Vec<String> = columns
        .iter()
        .filter_map(|c| c.attrs.check.as_ref().map(LitStr::value))
        .collect();
    checks.extend(struct_attrs.checks.iter().map(LitStr::value));
    Some(Model {
        input,
        ident: &input.ident,
        table,
        columns,
        relationships,
        indexes,
        uniques,
        checks,
        expandable,
    })
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;

    #[test]
    fn reads_columns_and_relationships() {
        let input: DeriveInput = parse_quote! {
            struct UserAccount {
                #[entity(primary_key)] r#type: i32,
                #[entity(column = "full_name")] name: Option<String>,
                #[entity(relationship(foreign_key = "owner_id"))] notes: Collection<Note>,
                #[entity(relationship(foreign_key = "org_id"))] org: session_core::Reference<Org>,
            }
        };
        let mut errors = Errors::default();
        let m = model(&input, &mut errors).unwrap();
        assert!(errors.finish().is_ok());
        assert!(m.expandable);
        assert_eq!(m.table, "user_account");
        let names: Vec<(String, String)> = m
            .columns
            .iter()
            .map(|c| (c.field_name(), c.name.clone()))
            .collect();
        assert_eq!(
            names,
            [
                ("type".to_string(), "type".to_string()),
                ("name".into(), "full_name".into())
            ]
        );
        assert!(m.columns[0].inner.is_none());
        let inner = m.columns[1].inner.unwrap();
        assert_eq!(quote::quote!(#inner).to_string(), "String");
        assert_eq!(m.relationships.len(), 2);
        assert!(m.relationships[0].many && !m.relationships[1].many);
        let target = m.relationships[1].target;
        assert_eq!(quote::quote!(#target).to_string(), "Org");
    }

    #[test]
    fn unsupported_shapes() {
        let cases: [(DeriveInput, &str); 5] = [
            (
                parse_quote!(
                    enum E {
                        A,
                    }
                ),
                "not enums",
            ),
            (parse_quote!(union U { a: i32 }), "not unions"),
            (
                parse_quote!(
                    struct T(i32);
                ),
                "not a tuple struct",
            ),
            (
                parse_quote!(
                    struct Unit;
                ),
                "not a unit struct",
            ),
            (
                parse_quote!(
                    struct G<T> {
                        #[entity(primary_key)]
                        id: T,
                    }
                ),
                "generic structs",
            ),
        ];
        for (input, expected) in cases {
            let mut errors = Errors::default();
            let m = model(&input, &mut errors);
            assert!(m.is_none_or(|m| !m.expandable));
            let e = errors.finish().unwrap_err().to_string();
            assert!(e.contains(expected), "{e}");
        }
    }

    #[test]
    fn reference_fields_and_bad_relationship_types() {
        let input: DeriveInput = parse_quote! {
            struct S {
                #[entity(primary_key)] id: i32,
                name: &'static str,
                #[entity(relationship(foreign_key = "x"))] others: Vec<S>,
            }
        };
        let mut errors = Errors::default();
        let m = model(&input, &mut errors).unwrap();
        assert!(!m.expandable);
        let all: Vec<String> = errors
            .finish()
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(all.len(), 2);
        assert!(all[0].contains("own their values"));
        assert!(all[1].contains("`Collection<Child>`"));
    }
}
