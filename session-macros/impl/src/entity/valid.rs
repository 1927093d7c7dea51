//! `#[derive(Entity)]`, phase 2: checks that need the whole struct (a primary key, distinct
//! column names, consistent column options, relationships that resolve). Each mistake is
//! pushed to [`Errors`]; a relationship that fails is marked unusable so that the expansion
//! beside the errors stays well-formed.

use super::ast::{Model, Relationship};
use crate::signatures::Errors;
use crate::suggest::did_you_mean;

/// Checks `model`, recording every mistake.
pub(crate) fn check(model: &mut Model<'_>, errors: &mut Errors) {
    let ident = model.ident;
    let keys = model
        .columns
        .iter()
        .filter(|c| c.attrs.primary_key.is_some())
        .count();
    if keys == 0 {
        errors.push(syn::Error::new(
            ident.span(),
            format!("`{ident}` has no primary key; mark a field with #[entity(primary_key)]"),
        ));
    }

    for (i, c) in model.columns.iter().enumerate() {
        if let Some(first) = model.columns[..i].iter().find(|o| o.name == c.name) {
            let at = c.attrs.column.as_ref().map_or(c.ident.span(), |l| l.span());
            let mut e = syn::Error::new(
                at,
                format!(
                    "duplicate column `{}`: `{}` and `{}` both map to it; give one of them \
                     another name with #[entity(column = \"...\")]",
                    c.name,
                    first.field_name(),
                    c.field_name()
                ),
            );
            let first_at = first
                .attrs
                .column
                .as_ref()
                .map_or(first.ident.span(), |l| l.span());
            e.combine(syn::Error::new(
                first_at,
                format!("note: column `{}` first mapped here", c.name),
            ));
            errors.push(e);
        }
        if c.attrs.foreign_key.is_none() {
            for (key, action) in [
                ("on_delete", &c.attrs.on_delete),
                ("on_update", &c.attrs.on_update),
            ] {
                if let Some((_, lit)) = action {
                    errors.push(syn::Error::new(
                        lit.span(),
                        format!(
                            "`{key}` is the action of a foreign key, and `{}` has none: add \
                             `foreign_key = \"table.column\"`",
                            c.field_name()
                        ),
                    ));
                }
            }
        }
        if let (Some(_), Some(default)) = (c.attrs.generated, &c.attrs.server_default) {
            errors.push(syn::Error::new(
                default.span(),
                format!(
                    "`{}` is `generated` (SERIAL / IDENTITY) and has a `server_default`: a \
                     column takes one of them",
                    c.field_name()
                ),
            ));
        }
    }

    for c in model.columns.iter() {
        let Some(span) = c.attrs.system else { continue };
        for (key, set) in [
            ("primary_key", c.attrs.primary_key.is_some()),
            ("generated", c.attrs.generated.is_some()),
            ("server_default", c.attrs.server_default.is_some()),
            ("foreign_key", c.attrs.foreign_key.is_some()),
        ] {
            if set {
                errors.push(syn::Error::new(
                    span,
                    format!(
                        "`{}` is a system column (such as `xmin`, which every table has) and \
                         `{key}`: a system column is only read, never declared or written; \
                         remove one of them",
                        c.field_name()
                    ),
                ));
            }
        }
    }

    let versions: Vec<_> = model
        .columns
        .iter()
        .filter_map(|c| c.attrs.version.map(|span| (c, span)))
        .collect();
    for (c, span) in &versions {
        let clash = [
            ("primary_key", c.attrs.primary_key.is_some()),
            ("generated", c.attrs.generated.is_some()),
            ("server_default", c.attrs.server_default.is_some()),
        ];
        for (key, set) in clash {
            if set {
                errors.push(syn::Error::new(
                    *span,
                    format!(
                        "`{}` is the version counter and `{key}`: the session sets the version \
                         itself (1 on insert, +1 on every UPDATE); remove one of them",
                        c.field_name()
                    ),
                ));
            }
        }
    }
    if let [_, (second, span), ..] = versions.as_slice() {
        errors.push(syn::Error::new(
            *span,
            format!(
                "`{}` is a second version counter; an entity has at most one \
                 #[entity(version)] field",
                second.field_name()
            ),
        ));
    }

    let column_names: Vec<String> = model.columns.iter().map(|c| c.field_name()).collect();
    for rel in &mut model.relationships {
        for span in &rel.stray_keys {
            errors.push(syn::Error::new(
                *span,
                format!(
                    "`{}` is a relationship, not a column: only `relationship(...)` applies \
                     to it",
                    rel.ident
                ),
            ));
        }
        if let Some(e) = rel.cascade_error.take() {
            errors.push(e);
        }
        if let (true, Some(span)) = (rel.many, rel.one) {
            errors.push(syn::Error::new(
                span,
                format!(
                    "`uselist = false` makes a one-to-one: declare `{}` as a `Reference<...>` \
                     (it holds at most one object), not a `Collection`",
                    rel.ident
                ),
            ));
            rel.usable = false;
        }
        check_secondary(rel, errors);
        if let (false, Some(span)) = (rel.parent_side(), rel.passive_deletes) {
            errors.push(syn::Error::new(
                span,
                format!(
                    "`passive_deletes` is about the children of a deleted parent: put it on \
                     the parent's `Collection` (or its `uselist = false` `Reference`), not on \
                     the many-to-one `{}`",
                    rel.ident
                ),
            ));
        }
        if let (false, Some(span)) = (rel.parent_side(), rel.cascade_delete.or(rel.delete_orphan)) {
            errors.push(syn::Error::new(
                span,
                format!(
                    "cascade `delete` / `delete-orphan` on the many-to-one `{}` would delete \
                     the parent with a child; it is not supported: put it on the parent's \
                     `Collection` (or its `uselist = false` `Reference`)",
                    rel.ident
                ),
            ));
        }
        if rel.parent_side() && keys > 1 {
            errors.push(syn::Error::new(
                rel.ident.span(),
                format!(
                    "the relationship `{}` needs a single-column primary key on `{ident}`, \
                     which has {keys}",
                    rel.ident
                ),
            ));
            rel.usable = false;
        }
        if rel.parent_side() && keys == 0 {
            rel.usable = false;
        }
        let fk = rel.foreign_key.value();
        if !rel.parent_side() && rel.secondary.is_none() && !column_names.contains(&fk) {
            let hint = did_you_mean(&fk, column_names.iter().map(String::as_str))
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            errors.push(syn::Error::new(
                rel.foreign_key.span(),
                format!("no column field `{fk}` on `{ident}` to hold the parent's key{hint}"),
            ));
            rel.usable = false;
        }
        // The child's field of a collection lives on another struct: the compiler checks it
        // in the generated code, at this literal.
        if !syn::parse_str::<syn::Ident>(&fk).is_ok_and(|_| !fk.starts_with("r#")) {
            errors.push(syn::Error::new(
                rel.foreign_key.span(),
                format!("`foreign_key` names a field, and \"{fk}\" is not a field name"),
            ));
            rel.usable = false;
        }
        // The other side's field is checked by the compiler in the generated code, at this
        // literal; only its spelling as a field name is checked here.
        if let Some(back) = &rel.back_populates {
            let name = back.value();
            if !syn::parse_str::<syn::Ident>(&name).is_ok_and(|_| !name.starts_with("r#")) {
                errors.push(syn::Error::new(
                    back.span(),
                    format!(
                        "`back_populates` names the other side's relationship field, and \
                         \"{name}\" is not a field name"
                    ),
                ));
                rel.usable = false;
            }
        }
    }
}

/// `secondary = "Link"` with `target_foreign_key = "field"` on a `Collection`: a
/// many-to-many. Parses the link type into `rel.link`; refuses what cannot work.
fn check_secondary(rel: &mut Relationship<'_>, errors: &mut Errors) {
    let (secondary, target_fk) = (rel.secondary.clone(), rel.target_foreign_key.clone());
    let Some(lit) = secondary else {
        if let Some(t) = target_fk {
            errors.push(syn::Error::new(
                t.span(),
                "`target_foreign_key` belongs to a many-to-many: give the relationship \
                 `secondary = \"LinkEntity\"` too, or remove it",
            ));
            rel.usable = false;
        }
        return;
    };
    let mut fail = |span: proc_macro2::Span, message: String| {
        errors.push(syn::Error::new(span, message));
    };
    let mut ok = true;
    if !rel.many {
        fail(
            lit.span(),
            format!(
                "a many-to-many is a `Collection<...>`: declare `{}` as one (a `Reference` \
                 holds at most one object)",
                rel.ident
            ),
        );
        ok = false;
    }
    match &target_fk {
        None => {
            fail(
                lit.span(),
                format!(
                    "the many-to-many `{}` needs `target_foreign_key = \"field\"`: the field of \
                     {} holding the target's key (`foreign_key` names the one holding this \
                     entity's key)",
                    rel.ident,
                    lit.value()
                ),
            );
            ok = false;
        }
        Some(t) if syn::parse_str::<syn::Ident>(&t.value()).is_err() => {
            fail(
                t.span(),
                format!(
                    "`target_foreign_key` names a field, and \"{}\" is not a field name",
                    t.value()
                ),
            );
            ok = false;
        }
        Some(_) => {}
    }
    if let Some(span) = rel.cascade_delete.or(rel.delete_orphan) {
        fail(
            span,
            format!(
                "cascade `delete` / `delete-orphan` on the many-to-many `{}` is not supported: \
                 deleting an object deletes its link rows (never the objects on the other \
                 side); delete those explicitly",
                rel.ident
            ),
        );
    }
    // Parsed with the literal's span, so that a missing type or field is reported there.
    match lit.parse::<syn::Type>() {
        Ok(ty) if ok => rel.link = Some(ty),
        Ok(_) => rel.usable = false,
        Err(_) => {
            fail(
                lit.span(),
                format!(
                    "`secondary` names the link entity (a `#[derive(Entity)]` type such as \
                     \"BookTag\"), and \"{}\" is not a type",
                    lit.value()
                ),
            );
            rel.usable = false;
        }
    }
    if !ok {
        rel.usable = false;
    }
}

#[cfg(test)]
mod tests {
    use syn::{DeriveInput, parse_quote};

    use super::super::ast;
    use super::*;

    fn check_all(input: &DeriveInput) -> (Vec<String>, Vec<bool>) {
        let mut errors = Errors::default();
        let mut m = ast::model(input, &mut errors).unwrap();
        check(&mut m, &mut errors);
        let messages = errors.messages();
        (messages, m.relationships.iter().map(|r| r.usable).collect())
    }

    #[test]
    fn a_sound_struct_passes() {
        let (m, usable) = check_all(&parse_quote! {
            struct A {
                #[entity(primary_key, generated)] id: i32,
                #[entity(server_default = "now()")] at: Option<i64>,
                #[entity(relationship(foreign_key = "a_id"))] bs: Collection<B>,
            }
        });
        assert!(m.is_empty(), "{m:?}");
        assert_eq!(usable, [true]);
    }

    #[test]
    fn no_primary_key() {
        let (m, _) = check_all(&parse_quote!(
            struct Note {
                body: String,
            }
        ));
        assert_eq!(
            m,
            ["`Note` has no primary key; mark a field with #[entity(primary_key)]"]
        );
    }

    #[test]
    fn duplicate_columns_name_both_fields() {
        let (m, _) = check_all(&parse_quote! {
            struct N {
                #[entity(primary_key)] id: i32,
                title: String,
                #[entity(column = "title")] heading: String,
            }
        });
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(m[0].starts_with("duplicate column `title`: `title` and `heading`"));
        assert_eq!(m[1], "note: column `title` first mapped here");
    }

    #[test]
    fn generated_with_server_default() {
        let (m, _) = check_all(&parse_quote! {
            struct N { #[entity(primary_key, generated, server_default = "1")] id: i32 }
        });
        assert_eq!(m.len(), 1);
        assert!(m[0].contains("takes one of them"));
    }

    #[test]
    fn relationship_mistakes() {
        let (m, usable) = check_all(&parse_quote! {
            struct C {
                #[entity(primary_key)] a: i32,
                #[entity(primary_key)] b: i32,
                parent_id: i32,
                #[entity(relationship(foreign_key = "c_id"), unique)] kids: Collection<K>,
                #[entity(relationship(foreign_key = "parentid"))] parent: Reference<P>,
                #[entity(relationship(foreign_key = "not a field"))] other: Collection<K>,
            }
        });
        assert_eq!(usable, [false, false, false]);
        assert_eq!(m.len(), 5, "{m:#?}");
        assert!(m[0].contains("`kids` is a relationship, not a column"));
        assert!(m[1].contains("single-column primary key on `C`, which has 2"));
        assert!(m[2].contains("no column field `parentid`") && m[2].contains("`parent_id`?"));
        assert!(m[3].contains("single-column"));
        assert!(m[4].contains("\"not a field\" is not a field name"));
    }
}
