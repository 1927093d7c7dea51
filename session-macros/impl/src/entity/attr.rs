//! `#[derive(Entity)]`, phase 1a: the `#[entity(...)]` attributes, read into values that keep
//! their tokens' spans. Mistakes of form (unknown or repeated keys, malformed values) are
//! pushed to [`Errors`] and the offending key is left out, so the rest is still read.

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Attribute, Ident, LitStr, Token};

use crate::signatures::Errors;
use crate::suggest::{code_list, did_you_mean};

/// Keys valid on the struct.
pub(crate) const STRUCT_KEYS: &[&str] = &["table", "index", "unique_index", "unique", "check"];

/// Keys valid on a field.
pub(crate) const FIELD_KEYS: &[&str] = &[
    "column",
    "primary_key",
    "generated",
    "server_default",
    "foreign_key",
    "unique",
    "sql_type",
    "relationship",
    "on_delete",
    "on_update",
    "index",
    "check",
    "version",
    "system",
];

/// The referential actions `on_delete` / `on_update` take, as SQL spells them.
const ACTIONS: &[&str] = &[
    "CASCADE",
    "RESTRICT",
    "SET NULL",
    "SET DEFAULT",
    "NO ACTION",
];

/// `#[entity(...)]` on the struct.
#[derive(Default)]
pub(crate) struct StructAttrs {
    /// `table = "name"`.
    pub(crate) table: Option<LitStr>,
    /// `index = "field, field"` (false) and `unique_index = "..."` (true), in order.
    pub(crate) indexes: Vec<(LitStr, bool)>,
    /// `unique = "field, field"`: a multi-column UNIQUE constraint.
    pub(crate) uniques: Vec<LitStr>,
    /// `check = "sql"`: a CHECK constraint of the table.
    pub(crate) checks: Vec<LitStr>,
}

/// `foreign_key = "table.column"`, split.
pub(crate) struct ForeignKeyAttr {
    pub(crate) table: String,
    pub(crate) column: String,
}

/// `relationship(foreign_key = "field", cascade = "...")`.
pub(crate) struct RelationshipAttr {
    /// The field holding the parent's key.
    pub(crate) foreign_key: LitStr,
    /// What `cascade = "..."` lists.
    pub(crate) cascades: CascadeFlags,
    /// A mistake in `cascade = "..."`, reported by validation: the field stays a
    /// relationship, so the mistake does not cascade into column errors.
    pub(crate) cascade_error: Option<syn::Error>,
    /// `back_populates = "field"`: the other side's relationship field.
    pub(crate) back_populates: Option<LitStr>,
    /// `uselist = false` (the literal): a one-to-one `Reference` on the side without the
    /// foreign key.
    pub(crate) uselist_false: Option<syn::LitBool>,
    /// `secondary = "LinkType"`: a many-to-many through that entity's table.
    pub(crate) secondary: Option<LitStr>,
    /// `target_foreign_key = "field"`: the link's field holding the target's key.
    pub(crate) target_foreign_key: Option<LitStr>,
    /// `passive_deletes = true` (the literal).
    pub(crate) passive_deletes: Option<syn::LitBool>,
}

/// The cascades `relationship(cascade = "...")` takes (SQLAlchemy's spelling).
const CASCADES: &[&str] = &[
    "save-update",
    "merge",
    "delete",
    "delete-orphan",
    "expunge",
    "refresh-expire",
    "all",
];

/// What `cascade = "..."` lists (each with the literal's span).
#[derive(Clone, Copy, Default)]
pub(crate) struct CascadeFlags {
    pub(crate) delete: Option<Span>,
    pub(crate) delete_orphan: Option<Span>,
    pub(crate) expunge: Option<Span>,
    pub(crate) refresh_expire: Option<Span>,
    /// `merge` (in SQLAlchemy's default, `save-update, merge`, used without `cascade = ...`).
    pub(crate) merge: bool,
}

/// Parses `cascade = "save-update, delete"`.
fn cascade(meta: &ParseNestedMeta<'_>) -> syn::Result<CascadeFlags> {
    let lit = nonempty_str(meta, "cascade")?;
    let mut flags = CascadeFlags::default();
    let span = Some(lit.span());
    for part in lit
        .value()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        match part {
            "delete" => flags.delete = span,
            "delete-orphan" => flags.delete_orphan = span,
            "expunge" => flags.expunge = span,
            "refresh-expire" => flags.refresh_expire = span,
            "merge" => flags.merge = true,
            // SQLAlchemy's `all`: save-update, merge, refresh-expire, expunge, delete.
            "all" => {
                flags.merge = true;
                flags.expunge = span;
                flags.refresh_expire = span;
                flags.delete = span;
            }
            "save-update" => {}
            _ => {
                return Err(syn::Error::new(
                    lit.span(),
                    format!(
                        "unknown cascade `{part}`; the cascades are {} (as SQLAlchemy spells \
                         them, comma-separated)",
                        CASCADES.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(flags)
}

/// `#[entity(...)]` on a field. Flags keep the span of their key.
#[derive(Default)]
pub(crate) struct FieldAttrs {
    pub(crate) column: Option<LitStr>,
    pub(crate) primary_key: Option<Span>,
    pub(crate) generated: Option<Span>,
    pub(crate) server_default: Option<LitStr>,
    pub(crate) foreign_key: Option<ForeignKeyAttr>,
    pub(crate) unique: Option<Span>,
    pub(crate) sql_type: Option<LitStr>,
    pub(crate) relationship: Option<RelationshipAttr>,
    /// `on_delete = "cascade"`: the action, as SQL spells it, and the literal.
    pub(crate) on_delete: Option<(String, LitStr)>,
    /// `on_update = "cascade"`.
    pub(crate) on_update: Option<(String, LitStr)>,
    /// `index`: a single-column index.
    pub(crate) index: Option<Span>,
    /// `check = "sql"`: a CHECK constraint on the column.
    pub(crate) check: Option<LitStr>,
    /// `version`: the row's version counter (SQLAlchemy's `version_id_col`).
    pub(crate) version: Option<Span>,
    /// `system`: a system column such as `xmin` (never written, not in `CREATE TABLE`).
    pub(crate) system: Option<Span>,
    /// Every key read, in source order, with the span of its name.
    pub(crate) keys: Vec<(String, Span)>,
}

impl FieldAttrs {
    /// Spans of the column-only keys given, in source order (they mean nothing on a
    /// relationship field).
    pub(crate) fn column_keys(&self) -> Vec<Span> {
        self.keys
            .iter()
            .filter(|(name, _)| name != "relationship" && FIELD_KEYS.contains(&name.as_str()))
            .map(|(_, span)| *span)
            .collect()
    }
}

/// The key's name (`""` for a multi-segment path, which is never valid).
fn key_name(meta: &ParseNestedMeta<'_>) -> String {
    meta.path
        .get_ident()
        .map(|i| syn::ext::IdentExt::unraw(i).to_string())
        .unwrap_or_default()
}

/// Consumes the rest of a rejected key (`= expr`, `(...)`, or a malformed value), up to the
/// next `,`, so that the keys after it are still read.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    meta.input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tt, next)) = rest.token_tree() {
            if matches!(&tt, proc_macro2::TokenTree::Punct(p) if p.as_char() == ',') {
                break;
            }
            rest = next;
        }
        Ok(((), rest))
    })
}

fn unknown_key(meta: &ParseNestedMeta<'_>, valid: &[&str]) -> syn::Error {
    let path = &meta.path;
    let name = match path.get_ident() {
        Some(i) => i.to_string(),
        None => quote::quote!(#path).to_string().replace(' ', ""),
    };
    let hint = did_you_mean(&name, valid.iter().copied())
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default();
    meta.error(format!(
        "unknown entity attribute `{name}`{hint} (valid: {})",
        code_list(valid.iter().copied())
    ))
}

/// `= "text"`, not empty.
fn nonempty_str(meta: &ParseNestedMeta<'_>, what: &str) -> syn::Result<LitStr> {
    let lit: LitStr = meta.value()?.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            format!("`{what}` takes a string literal: `{what} = \"...\"`"),
        )
    })?;
    if lit.value().trim().is_empty() {
        return Err(syn::Error::new(
            lit.span(),
            format!("`{what}` must not be empty"),
        ));
    }
    Ok(lit)
}

/// A flag (`primary_key`): stored in `slot`. Given a value (`primary_key = true`) it still
/// counts, beside an error, so that no "no primary key" follows from it.
fn flag(slot: &mut Option<Span>, meta: &ParseNestedMeta<'_>, name: &str) -> syn::Result<()> {
    set_once(slot, meta, name, || Ok(meta.path.segments[0].ident.span()))?;
    if meta.input.peek(Token![=]) || meta.input.peek(syn::token::Paren) {
        skip_value(meta)?;
        return Err(meta.error(format!(
            "`{name}` is a flag and takes no value: write `#[entity({name})]`"
        )));
    }
    Ok(())
}

fn foreign_key(meta: &ParseNestedMeta<'_>) -> syn::Result<ForeignKeyAttr> {
    let lit: LitStr = meta.value()?.parse()?;
    let value = lit.value();
    match value.split_once('.') {
        Some((table, column))
            if !table.trim().is_empty() && !column.trim().is_empty() && !column.contains('.') =>
        {
            Ok(ForeignKeyAttr {
                table: table.to_string(),
                column: column.to_string(),
            })
        }
        _ => Err(syn::Error::new(
            lit.span(),
            format!(
                "`foreign_key` names the referenced column as \"table.column\" (e.g. \"a.id\"), \
                 not \"{value}\""
            ),
        )),
    }
}

/// `on_delete = "cascade"` -> `CASCADE` (any case, `_` or space between words).
fn action(meta: &ParseNestedMeta<'_>, what: &str) -> syn::Result<(String, LitStr)> {
    let lit = nonempty_str(meta, what)?;
    let spelled = lit
        .value()
        .trim()
        .replace('_', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase();
    if ACTIONS.contains(&spelled.as_str()) {
        Ok((spelled, lit))
    } else {
        Err(syn::Error::new(
            lit.span(),
            format!(
                "`{what}` takes \"cascade\", \"restrict\", \"set null\", \"set default\" or \
                 \"no action\" (any case), not \"{}\"",
                lit.value()
            ),
        ))
    }
}

fn relationship(meta: &ParseNestedMeta<'_>) -> syn::Result<RelationshipAttr> {
    let span = meta.path.segments[0].ident.span();
    let mut fk: Option<LitStr> = None;
    let mut cascades: Option<CascadeFlags> = None;
    let mut cascade_error: Option<syn::Error> = None;
    let mut first_error: Option<syn::Error> = None;
    let mut back_populates: Option<LitStr> = None;
    let mut uselist: Option<syn::LitBool> = None;
    let mut secondary: Option<LitStr> = None;
    let mut target_fk: Option<LitStr> = None;
    let mut passive: Option<syn::LitBool> = None;
    meta.parse_nested_meta(|inner| {
        let read = if inner.path.is_ident("foreign_key") && fk.is_none() {
            nonempty_str(&inner, "foreign_key").map(|lit| fk = Some(lit))
        } else if inner.path.is_ident("secondary") && secondary.is_none() {
            nonempty_str(&inner, "secondary").map(|lit| secondary = Some(lit))
        } else if inner.path.is_ident("target_foreign_key") && target_fk.is_none() {
            nonempty_str(&inner, "target_foreign_key").map(|lit| target_fk = Some(lit))
        } else if inner.path.is_ident("back_populates") && back_populates.is_none() {
            nonempty_str(&inner, "back_populates").map(|lit| back_populates = Some(lit))
        } else if inner.path.is_ident("passive_deletes") && passive.is_none() {
            let lit: syn::LitBool = inner.value()?.parse()?;
            passive = Some(lit);
            Ok(())
        } else if inner.path.is_ident("uselist") && uselist.is_none() {
            let lit: syn::LitBool = inner.value()?.parse()?;
            uselist = Some(lit);
            Ok(())
        } else if inner.path.is_ident("cascade") && cascades.is_none() {
            match cascade(&inner) {
                Ok(d) => cascades = Some(d),
                Err(e) => {
                    cascades = Some(CascadeFlags::default());
                    cascade_error = Some(e);
                }
            }
            Ok(())
        } else {
            Err(inner.error(
                "`relationship` takes one `foreign_key = \"field\"`: the field holding the \
                 parent's key (on the child for a `Collection` or a `uselist = false` \
                 `Reference`, on this struct for a many-to-one `Reference`, on the link entity \
                 for a many-to-many), and at most one each of `cascade = \"...\"`, \
                 `back_populates = \"field\"`, `uselist = false`, `passive_deletes = true`, \
                 `secondary = \"LinkEntity\"` and `target_foreign_key = \"field\"`",
            ))
        };
        if let Err(e) = read {
            first_error.get_or_insert(e);
            skip_value(&inner)?;
        }
        Ok(())
    })?;
    if let Some(e) = first_error {
        return Err(e);
    }
    match fk {
        Some(foreign_key) => Ok(RelationshipAttr {
            foreign_key,
            // Without `cascade = ...`: SQLAlchemy's default, save-update and merge.
            cascades: cascades.unwrap_or(CascadeFlags {
                merge: true,
                ..CascadeFlags::default()
            }),
            cascade_error,
            back_populates,
            uselist_false: uselist.filter(|u| !u.value),
            secondary,
            target_foreign_key: target_fk,
            passive_deletes: passive.filter(|p| p.value),
        }),
        None => Err(syn::Error::new(
            span,
            "`relationship` needs `foreign_key = \"field\"` naming the field that holds the \
             parent's key",
        )),
    }
}

/// Stores `value` in `slot` unless the key was given before (then a "duplicate" error).
fn set_once<T>(
    slot: &mut Option<T>,
    meta: &ParseNestedMeta<'_>,
    name: &str,
    value: impl FnOnce() -> syn::Result<T>,
) -> syn::Result<()> {
    if slot.is_some() {
        skip_value(meta)?;
        return Err(meta.error(format!("duplicate entity attribute `{name}`")));
    }
    *slot = Some(value()?);
    Ok(())
}

/// Runs `each` on every key of every `#[entity(...)]` among `attrs`; an error from one key
/// is recorded and reading goes on with the next key.
fn for_each_key(
    attrs: &[Attribute],
    errors: &mut Errors,
    mut each: impl FnMut(&ParseNestedMeta<'_>, &str) -> syn::Result<()>,
) {
    for attr in attrs.iter().filter(|a| a.path().is_ident("entity")) {
        let mut pending: Vec<syn::Error> = Vec::new();
        let result = attr.parse_nested_meta(|meta| {
            let name = key_name(&meta);
            if let Err(e) = each(&meta, &name) {
                pending.push(e);
                // Step over the rest of this key so the next one is read.
                skip_value(&meta)?;
            }
            Ok(())
        });
        for e in pending {
            errors.push(e);
        }
        if let Err(e) = result {
            errors.push(e);
        }
    }
}

/// Reads the struct's `#[entity(...)]` attributes.
pub(crate) fn struct_attrs(attrs: &[Attribute], errors: &mut Errors) -> StructAttrs {
    let mut out = StructAttrs::default();
    for_each_key(attrs, errors, |meta, name| match name {
        "table" => set_once(&mut out.table, meta, name, || nonempty_str(meta, name)),
        "index" | "unique_index" => {
            let lit = nonempty_str(meta, name)?;
            out.indexes.push((lit, name == "unique_index"));
            Ok(())
        }
        "unique" => nonempty_str(meta, name).map(|lit| out.uniques.push(lit)),
        "check" => nonempty_str(meta, name).map(|lit| out.checks.push(lit)),
        _ => Err(unknown_key(meta, STRUCT_KEYS)),
    });
    out
}

/// Reads a field's `#[entity(...)]` attributes.
pub(crate) fn field_attrs(attrs: &[Attribute], errors: &mut Errors) -> FieldAttrs {
    let mut out = FieldAttrs::default();
    for_each_key(attrs, errors, |meta, name| {
        out.keys.push((name.to_string(), meta.path.span()));
        field_key(&mut out, meta, name)
    });
    out
}

fn field_key(out: &mut FieldAttrs, meta: &ParseNestedMeta<'_>, name: &str) -> syn::Result<()> {
    match name {
        "column" => set_once(&mut out.column, meta, name, || nonempty_str(meta, name)),
        "primary_key" => flag(&mut out.primary_key, meta, name),
        "generated" => flag(&mut out.generated, meta, name),
        "system" => flag(&mut out.system, meta, name),
        "unique" => flag(&mut out.unique, meta, name),
        "server_default" => set_once(&mut out.server_default, meta, name, || {
            nonempty_str(meta, name)
        }),
        "sql_type" => set_once(&mut out.sql_type, meta, name, || nonempty_str(meta, name)),
        "foreign_key" => set_once(&mut out.foreign_key, meta, name, || foreign_key(meta)),
        "relationship" => set_once(&mut out.relationship, meta, name, || relationship(meta)),
        "on_delete" => set_once(&mut out.on_delete, meta, name, || action(meta, name)),
        "on_update" => set_once(&mut out.on_update, meta, name, || action(meta, name)),
        "index" => flag(&mut out.index, meta, name),
        "check" => set_once(&mut out.check, meta, name, || nonempty_str(meta, name)),
        "version" => flag(&mut out.version, meta, name),
        _ => Err(unknown_key(meta, FIELD_KEYS)),
    }
}

/// `UserAccount` → `user_account`, `HTTPServer` → `http_server`, `Order2Line` → `order2_line`.
pub(crate) fn snake_case(ident: &Ident) -> String {
    let name = syn::ext::IdentExt::unraw(ident).to_string();
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &ch) in chars.iter().enumerate() {
        if ch.is_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                None | Some('_') => false,
                Some(p) if p.is_lowercase() || p.is_ascii_digit() => true,
                // The last capital of an acronym starts the next word: `HTTPServer`.
                Some(p) => p.is_uppercase() && next.is_some_and(char::is_lowercase),
            };
            if boundary {
                out.push('_');
            }
            out.extend(ch.to_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use quote::format_ident;
    use syn::parse_quote;

    use super::*;

    fn messages(errors: Errors) -> Vec<String> {
        errors.messages()
    }

    #[test]
    fn snake_case_names() {
        for (from, to) in [
            ("UserAccount", "user_account"),
            ("A", "a"),
            ("HTTPServer", "http_server"),
            ("Order2Line", "order2_line"),
            ("already_snake", "already_snake"),
            ("Item_Row", "item_row"),
        ] {
            assert_eq!(snake_case(&format_ident!("{from}")), to, "{from}");
        }
        assert_eq!(snake_case(&format_ident!("r#Type")), "type");
    }

    #[test]
    fn reads_every_field_key() {
        let attrs: Vec<Attribute> = vec![
            parse_quote!(#[entity(column = "sku", primary_key, generated, unique)]),
            parse_quote!(#[entity(server_default = "now()", sql_type = "varchar(30)")]),
            parse_quote!(#[entity(foreign_key = "a.id")]),
            parse_quote!(#[doc = "not ours"]),
        ];
        let mut errors = Errors::default();
        let a = field_attrs(&attrs, &mut errors);
        assert!(messages(errors).is_empty());
        assert_eq!(a.column.unwrap().value(), "sku");
        assert!(a.primary_key.is_some() && a.generated.is_some() && a.unique.is_some());
        assert_eq!(a.server_default.unwrap().value(), "now()");
        assert_eq!(a.sql_type.unwrap().value(), "varchar(30)");
        let fk = a.foreign_key.unwrap();
        assert_eq!((fk.table.as_str(), fk.column.as_str()), ("a", "id"));
        assert!(a.relationship.is_none());
    }

    #[test]
    fn reads_a_relationship() {
        let attrs = vec![parse_quote!(#[entity(relationship(foreign_key = "a_id"))])];
        let mut errors = Errors::default();
        let a = field_attrs(&attrs, &mut errors);
        assert!(messages(errors).is_empty());
        assert_eq!(a.relationship.unwrap().foreign_key.value(), "a_id");
    }

    #[test]
    fn mistakes_are_all_reported_and_reading_goes_on() {
        let attrs: Vec<Attribute> = vec![
            parse_quote!(#[entity(unqiue, primary_key, weird(x, y), column = "c")]),
            parse_quote!(#[entity(primary_key, foreign_key = "users", generated = true)]),
            parse_quote!(#[entity(sql_type = " ", relationship(table = "x"))]),
            parse_quote!(#[entity(server_default = 5 + 1, unique)]),
        ];
        let mut errors = Errors::default();
        let a = field_attrs(&attrs, &mut errors);
        let m = messages(errors);
        assert_eq!(m.len(), 8, "{m:#?}");
        assert!(
            m[0].contains("`unqiue`; did you mean `unique`?"),
            "{}",
            m[0]
        );
        assert!(m[1].contains("`weird`") && !m[1].contains("did you mean"));
        assert!(m[2].contains("duplicate entity attribute `primary_key`"));
        assert!(m[3].contains("\"table.column\"") && m[3].contains("not \"users\""));
        assert!(m[4].contains("`generated` is a flag"));
        assert!(m[5].contains("`sql_type` must not be empty"));
        assert!(m[6].contains("`relationship` takes one `foreign_key"));
        assert!(
            m[7].contains("`server_default` takes a string literal"),
            "{}",
            m[7]
        );
        assert!(a.unique.is_some(), "read after a malformed value");
        // What was well formed was kept.
        assert_eq!(a.column.unwrap().value(), "c");
        assert!(a.primary_key.is_some() && a.foreign_key.is_none() && a.generated.is_some());
        assert!(a.sql_type.is_none() && a.relationship.is_none());
    }

    #[test]
    fn ddl_keys() {
        let attrs = vec![
            parse_quote!(#[entity(foreign_key = "a.id", on_delete = "set_null", on_update = "Cascade", index, check = "x > 0")]),
        ];
        let mut errors = Errors::default();
        let a = field_attrs(&attrs, &mut errors);
        assert!(errors.is_empty());
        assert_eq!(a.on_delete.unwrap().0, "SET NULL");
        assert_eq!(a.on_update.unwrap().0, "CASCADE");
        assert!(a.index.is_some());
        assert_eq!(a.check.unwrap().value(), "x > 0");
        let attrs = vec![parse_quote!(#[entity(on_delete = "explode")])];
        let mut errors = Errors::default();
        let _ = field_attrs(&attrs, &mut errors);
        let m = messages(errors);
        assert!(
            m[0].contains("\"set null\"") && m[0].contains("not \"explode\""),
            "{m:?}"
        );
    }

    #[test]
    fn struct_keys() {
        let attrs = vec![parse_quote!(#[entity(table = "t", tabel = "u", table = "v")])];
        let mut errors = Errors::default();
        let a = struct_attrs(&attrs, &mut errors);
        let m = messages(errors);
        assert_eq!(a.table.unwrap().value(), "t");
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(
            m[0].contains("did you mean `table`? (valid: `table`, `index`"),
            "{}",
            m[0]
        );
        assert!(m[1].contains("duplicate entity attribute `table`"));
    }

    #[test]
    fn malformed_foreign_keys() {
        for bad in ["a", ".id", "a.", "s.a.id", " . "] {
            let attrs = vec![parse_quote!(#[entity(foreign_key = #bad)])];
            let mut errors = Errors::default();
            let a = field_attrs(&attrs, &mut errors);
            assert!(a.foreign_key.is_none(), "{bad}");
            assert_eq!(messages(errors).len(), 1, "{bad}");
        }
    }
}
