//! `#[derive(Entity)]`, phase 3: the generated code. Absolute paths only; everything a field's
//! type must satisfy goes through `::session_core::__private` helpers bounded by
//! `ColumnType` and spanned at that type, so a type that is no column is reported once per
//! use, at the user's type, with `ColumnType`'s own message.
//!
//! Expansion never judges validity: it runs on any [`Model`] marked `expandable` (also
//! beside errors, so that the rest of the user's crate still sees the impls), and copes with
//! what validation flags: no key (`Key = ()`), unusable relationships (left unloaded).

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::ast::{ColumnField, Model, Relationship};
use super::relations::{
    back_sync, cascade_visit, dependent_visit, descriptor, merge_part, private_col,
    private_fk_clear, private_fk_get, private_fk_set, relation_items, relation_visit,
    secondary_visit,
};

/// The `Column { ... }` literal of `TABLE`.
fn column_def(c: &ColumnField<'_>) -> TokenStream {
    let name = &c.name;
    let field = c.field_name();
    let ty = c.ty;
    let span = ty.span();
    let sql_type = match &c.attrs.sql_type {
        Some(t) => quote!(#t),
        None => quote_spanned!(span=> <#ty as ::session_core::ColumnType>::SQL_TYPE),
    };
    let nullable = quote_spanned!(span=> <#ty as ::session_core::ColumnType>::NULLABLE);
    let enum_type = quote_spanned!(span=> <#ty as ::session_core::ColumnType>::ENUM_TYPE);
    let a = &c.attrs;
    let (pk, generated, unique, version, system) = (
        a.primary_key.is_some(),
        a.generated.is_some(),
        a.unique.is_some(),
        a.version.is_some(),
        a.system.is_some(),
    );
    let default = match &a.server_default {
        Some(d) => quote!(::core::option::Option::Some(#d)),
        None => quote!(::core::option::Option::None),
    };
    let action = |a: &Option<(String, syn::LitStr)>| match a {
        Some((sql, _)) => quote!(::core::option::Option::Some(#sql)),
        None => quote!(::core::option::Option::None),
    };
    let fk = match &a.foreign_key {
        Some(f) => {
            let (t, col) = (&f.table, &f.column);
            let (on_delete, on_update) = (action(&a.on_delete), action(&a.on_update));
            quote!(::core::option::Option::Some(::session_core::ForeignKey {
                table: #t,
                column: #col,
                on_delete: #on_delete,
                on_update: #on_update,
            }))
        }
        None => quote!(::core::option::Option::None),
    };
    quote! {
        ::session_core::Column {
            name: #name,
            field: #field,
            sql_type: #sql_type,
            nullable: #nullable,
            primary_key: #pk,
            generated: #generated,
            server_default: #default,
            foreign_key: #fk,
            unique: #unique,
            enum_type: #enum_type,
            version: #version,
            system: #system,
        }
    }
}

/// `::session_core::__private::get::<T>(row, at)`, spanned at the field's type.
fn get(c: &ColumnField<'_>, at: &TokenStream) -> TokenStream {
    let ty = c.ty;
    quote_spanned!(ty.span()=> ::session_core::__private::get::<#ty>(row, #at)?)
}

/// `::session_core::__private::param::<T>(value)`, spanned at the field's type.
fn param(c: &ColumnField<'_>, value: &TokenStream) -> TokenStream {
    let ty = c.ty;
    quote_spanned!(ty.span()=> ::session_core::__private::param::<#ty>(#value))
}

/// The `Key` type and the bodies of `key`, `key_params` and `key_from_row`.
struct KeyParts {
    ty: TokenStream,
    key: TokenStream,
    params: TokenStream,
    from_row: TokenStream,
    /// The body of `key_arrays`: one array parameter per key column.
    arrays: TokenStream,
}

/// The primary-key columns with their indices, in column order.
fn key_columns<'m>(model: &'m Model<'_>) -> Vec<(usize, &'m ColumnField<'m>)> {
    model
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.attrs.primary_key.is_some())
        .collect()
}

fn key_parts(model: &Model<'_>) -> KeyParts {
    let keys = key_columns(model);
    let reads = keys.iter().map(|(i, c)| get(c, &quote!(offset + #i)));
    match keys.as_slice() {
        // Only beside a "no primary key" error: a placeholder that compiles.
        [] => KeyParts {
            ty: quote!(()),
            key: quote!(()),
            params: quote!(::session_core::__private::Vec::new()),
            from_row: quote!(::core::result::Result::Ok(())),
            arrays: quote!(::session_core::__private::Vec::new()),
        },
        [(_, c)] => {
            let (ty, f) = (c.ty, c.ident);
            let p = param(c, &quote!(key));
            let array = quote_spanned!(ty.span()=> ::session_core::__private::array::<#ty>(
                keys.iter().cloned().collect()
            ));
            KeyParts {
                ty: quote!(#ty),
                key: quote!(::core::clone::Clone::clone(&self.#f)),
                params: quote!(::session_core::__private::Vec::from([#p])),
                from_row: quote!(::core::result::Result::Ok(#(#reads)*)),
                arrays: quote!(::session_core::__private::Vec::from([#array])),
            }
        }
        many => {
            let tys = many.iter().map(|(_, c)| c.ty);
            let fields = many.iter().map(|(_, c)| c.ident);
            let params = many.iter().enumerate().map(|(n, (_, c))| {
                let n = syn::Index::from(n);
                param(c, &quote!(&key.#n))
            });
            let arrays = many.iter().enumerate().map(|(n, (_, c))| {
                let (ty, n) = (c.ty, syn::Index::from(n));
                quote_spanned!(ty.span()=> ::session_core::__private::array::<#ty>(
                    keys.iter().map(|k| ::core::clone::Clone::clone(&k.#n)).collect()
                ))
            });
            KeyParts {
                ty: quote!((#(#tys),*)),
                key: quote!((#(::core::clone::Clone::clone(&self.#fields)),*)),
                params: quote!(::session_core::__private::Vec::from([#(#params),*])),
                from_row: quote!(::core::result::Result::Ok((#(#reads),*))),
                arrays: quote!(::session_core::__private::Vec::from([#(#arrays),*])),
            }
        }
    }
}

/// The name of the struct behind `A::C`. It is declared inside an anonymous `const _` block,
/// so that it can collide with nothing in the user's module.
const COLUMNS_STRUCT: &str = "__SessionColumns";

/// The hidden inherent items the relationships of other entities use: a `Col` of the inner
/// type and the foreign-key accessors per column, and the single key column.
fn hidden_items(model: &Model<'_>) -> TokenStream {
    let ident = model.ident;
    let vis = &model.input.vis;
    let items = model.columns.iter().enumerate().map(|(i, c)| {
        let f = c.ident;
        let hidden = private_col(f);
        let inner = c.inner.unwrap_or(c.ty);
        let (get, set, clear) = (private_fk_get(f), private_fk_set(f), private_fk_clear(f));
        let clear_body = if c.inner.is_some() {
            quote!(::core::option::Option::take(&mut self.#f).is_some())
        } else {
            quote!(false)
        };
        let (get_body, set_body) = if c.inner.is_some() {
            (
                quote!(::core::clone::Clone::clone(&self.#f)),
                quote!(self.#f = ::core::option::Option::Some(value)),
            )
        } else {
            (
                quote!(::core::option::Option::Some(::core::clone::Clone::clone(&self.#f))),
                quote!(self.#f = value),
            )
        };
        let col = quote_spanned!(c.ty.span()=> ::session_core::Col::new(#i));
        quote! {
            #[doc(hidden)]
            #vis const #hidden: ::session_core::Col<#ident, #inner> = #col;
            #[doc(hidden)]
            #[inline]
            #vis fn #get(&self) -> ::core::option::Option<#inner> {
                #get_body
            }
            #[doc(hidden)]
            #[inline]
            #vis fn #set(&mut self, value: #inner) {
                #set_body;
            }
            #[doc(hidden)]
            #[inline]
            #vis fn #clear(&mut self) -> bool {
                #clear_body
            }
        }
    });
    let keys = key_columns(model);
    let key_const = match keys.as_slice() {
        [(i, c)] => {
            let t = c.ty;
            quote! {
                #[doc(hidden)]
                #vis const __SESSION_KEY: ::session_core::Col<#ident, #t> =
                    ::session_core::Col::new(#i);
            }
        }
        _ => quote!(),
    };
    quote! {
        #(#items)*
        #key_const
    }
}

/// `A::C`: one constant whose fields name the columns (`A::C.id`, a typed `Col`) and the
/// usable relationships (`A::C.bs`, a loader descriptor), declared with its struct inside an
/// anonymous `const _` block. One associated item, `C`, is all the derive adds to the
/// user's type under a public name, so a user's own `fn id(&self)` getter beside a field `id`
/// collides with nothing.
fn columns_const(model: &Model<'_>) -> TokenStream {
    let ident = model.ident;
    let vis = &model.input.vis;
    let strukt = format_ident!("{}", COLUMNS_STRUCT);
    let rust_type = |ty: &syn::Type| quote!(#ty).to_string().replace(" ", "");
    let mut listing = Vec::new();
    let mut fields = Vec::new();
    let mut values = Vec::new();
    for (i, c) in model.columns.iter().enumerate() {
        let (f, t) = (c.ident, c.ty);
        let line = format!(
            "`{ident}::C.{}`: column `{}.{}` (`{}`)",
            c.field_name(),
            model.table,
            c.name,
            rust_type(t)
        );
        let doc = format!("The `{}` column of `{}`.", c.name, model.table);
        fields.push(quote! {
            #[doc = #doc]
            #vis #f: ::session_core::Col<#ident, #t>
        });
        let col = quote_spanned!(t.span()=> ::session_core::Col::new(#i));
        values.push(quote!(#f: #col));
        listing.push(line);
    }
    for r in model.relationships.iter().filter(|r| r.usable) {
        let (f, target) = (r.ident, r.target);
        let (ty, value) = descriptor(ident, r);
        let doc = format!(
            "The `{ident}.{f}` relationship, for `join` and loader options such as `selectinload`."
        );
        fields.push(quote! {
            #[doc = #doc]
            #vis #f: #ty
        });
        values.push(quote!(#f: #value));
        listing.push(format!(
            "`{ident}::C.{f}`: the {} relationship to `{}`",
            if r.m2m().is_some() {
                "many-to-many"
            } else if r.many {
                "one-to-many"
            } else if r.one.is_some() {
                "one-to-one"
            } else {
                "many-to-one"
            },
            rust_type(target)
        ));
    }
    let struct_doc =
        format!("The columns and relationships of `{ident}`, as `{ident}::C` (see there).");
    let mut const_doc = vec![
        format!(
            "The columns and relationships of `{ident}` (SQLAlchemy's `{ident}.__table__.c` and \
             mapped attributes), for statements: `select::<{ident}>().filter({ident}::C.<field>.eq(...))`."
        ),
        String::new(),
    ];
    const_doc.extend(listing.iter().map(|l| format!("- {l}")));
    quote! {
        const _: () = {
            #[doc = #struct_doc]
            // Descriptors are API (`A::C.bs`), whether or not a program names every one.
            #[allow(non_camel_case_types, dead_code)]
            #vis struct #strukt {
                #(#fields,)*
            }

            #[automatically_derived]
            impl #ident {
                #(#[doc = #const_doc])*
                #vis const C: #strukt = #strukt {
                    #(#values,)*
                };
            }
        };
    }
}

/// The generated impls.
pub(crate) fn expand(model: &Model<'_>) -> TokenStream {
    let ident = model.ident;
    let table = &model.table;
    let entity = ident.to_string();
    let cols = &model.columns;
    let KeyParts {
        ty: key_ty,
        key: key_expr,
        params: key_params,
        from_row: key_from_row,
        arrays: key_arrays,
    } = key_parts(model);
    let defs = cols.iter().map(column_def);
    let idx: Vec<usize> = (0..cols.len()).collect();
    let fields: Vec<&syn::Ident> = cols.iter().map(|c| c.ident).collect();
    let params = cols.iter().map(|c| {
        let f = c.ident;
        param(c, &quote!(&self.#f))
    });
    let arrays = cols.iter().map(|c| {
        let (f, ty) = (c.ident, c.ty);
        quote_spanned! {ty.span()=>
            ::session_core::__private::array::<#ty>(
                ::core::iter::Iterator::collect(
                    ::core::iter::Iterator::map(
                        objects.iter(),
                        |o| ::core::clone::Clone::clone(&o.#f),
                    ),
                ),
            )
        }
    });
    let reads: Vec<TokenStream> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| get(c, &quote!(offset + #i)))
        .collect();
    let sets = cols.iter().map(|c| get(c, &quote!(at)));
    let sames = cols.iter().map(|c| {
        let (f, ty) = (c.ident, c.ty);
        quote_spanned!(ty.span()=> ::session_core::__private::same_as::<#ty>(&self.#f, &other.#f))
    });
    let checks = cols.iter().map(|c| {
        let (f, ty) = (c.ident, c.ty);
        quote_spanned!(ty.span()=> ::session_core::__private::check::<#ty>(&self.#f))
    });
    let mut unsets = cols
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            c.attrs.generated.is_some()
                || c.attrs.server_default.is_some()
                || c.attrs.system.is_some()
        })
        .map(|(i, c)| {
            let (f, ty) = (c.ident, c.ty);
            if c.attrs.system.is_some() {
                // Never written: the server fills it.
                return quote!(#i => true);
            }
            quote_spanned!(ty.span()=> #i => ::session_core::__private::is_unset::<#ty>(&self.#f))
        })
        .peekable();
    let version_methods = match cols.iter().find(|c| c.attrs.version.is_some()) {
        Some(c) => {
            let (f, ty) = (c.ident, c.ty);
            let get = quote_spanned!(ty.span()=>
                ::session_core::__private::version_get::<#ty>(&self.#f));
            let set = quote_spanned!(ty.span()=>
                ::session_core::__private::version_set::<#ty>(&mut self.#f, version));
            quote! {
                fn version(&self) -> ::core::option::Option<i64> {
                    ::core::option::Option::Some(#get)
                }

                fn set_version(&mut self, version: i64) {
                    #set
                }
            }
        }
        None => quote!(),
    };
    let column_is_unset = if unsets.peek().is_none() {
        // Nothing server-filled: the trait's default (false).
        quote!()
    } else {
        quote! {
            fn column_is_unset(&self, index: usize) -> bool {
                match index {
                    #(#unsets,)*
                    _ => false,
                }
            }
        }
    };
    let unloaded: Vec<TokenStream> = model
        .relationships
        .iter()
        .map(|r| {
            let label = format!("{entity}.{}", r.ident);
            if r.many {
                quote!(::session_core::Collection::unloaded(#label))
            } else {
                quote!(::session_core::Reference::unloaded(#label))
            }
        })
        .collect();
    let rel_fields: Vec<&syn::Ident> = model.relationships.iter().map(|r| r.ident).collect();
    let relation_methods = if rel_fields.is_empty() {
        quote!()
    } else {
        quote! {
            fn unload_relations(&mut self) {
                #(self.#rel_fields = #unloaded;)*
            }

            fn relations_eq(&self, other: &Self) -> bool {
                #(::core::cmp::PartialEq::eq(&self.#rel_fields, &other.#rel_fields))&&*
            }
        }
    };
    let usable: Vec<&Relationship<'_>> = model.relationships.iter().filter(|r| r.usable).collect();
    let relations = if usable.is_empty() {
        quote!()
    } else {
        let visits = usable.iter().map(|r| relation_visit(ident, r));
        quote! {
            fn relations(
                obj: &::session_core::Obj<Self>,
                visit: &mut dyn ::core::ops::FnMut(::session_core::Link),
            ) {
                #(#visits)*
            }
        }
    };
    let collections: Vec<&&Relationship<'_>> = usable
        .iter()
        .filter(|r| r.parent_side() && r.m2m().is_none())
        .collect();
    let merge_relations = if model.relationships.is_empty() {
        quote!()
    } else {
        // Every relationship field, usable or not (an unusable one is left as the target had
        // it: `merge_part` with no merge cascade).
        let parts = model.relationships.iter().map(|r| merge_part(r));
        quote! {
            #[allow(unused_mut, unused_variables)]
            fn merge_relations(
                merged: &mut Self,
                mut before: Self,
                fresh: bool,
                map: &dyn ::core::ops::Fn(&::session_core::AnyObj) -> ::core::option::Option<::session_core::AnyObj>,
            ) {
                #(#parts)*
            }
        }
    };
    let cascading: Vec<&&Relationship<'_>> = usable
        .iter()
        .filter(|r| r.cascade_expunge || r.cascade_refresh || r.cascade_merge)
        .collect();
    let cascade_targets = if cascading.is_empty() {
        quote!()
    } else {
        let visits = cascading.iter().map(|r| cascade_visit(ident, r));
        quote! {
            fn cascade_targets(
                obj: &::session_core::Obj<Self>,
                kind: ::session_core::CascadeKind,
                visit: &mut dyn ::core::ops::FnMut(::session_core::AnyObj),
            ) {
                #(#visits)*
            }
        }
    };
    let many: Vec<&&Relationship<'_>> = usable.iter().filter(|r| r.m2m().is_some()).collect();
    let secondaries = if many.is_empty() {
        quote!()
    } else {
        let visits = many.iter().map(|r| secondary_visit(ident, r));
        quote! {
            fn secondaries(
                obj: &::session_core::Obj<Self>,
                visit: &mut dyn ::core::ops::FnMut(::session_core::Secondary),
            ) {
                #(#visits)*
            }
        }
    };
    let dependents = if collections.is_empty() {
        quote!()
    } else {
        let visits = collections.iter().map(|r| dependent_visit(ident, r));
        quote! {
            fn dependents(
                obj: &::session_core::Obj<Self>,
                visit: &mut dyn ::core::ops::FnMut(::session_core::Dependent),
            ) {
                #(#visits)*
            }
        }
    };
    let indexes = model.indexes.iter().map(|ix| {
        let (name, cols, unique) = (&ix.name, &ix.columns, ix.unique);
        quote!(::session_core::Index { name: #name, columns: &[#(#cols),*], unique: #unique })
    });
    let uniques = &model.uniques;
    let table_checks = &model.checks;
    let hidden = hidden_items(model);
    let (rel_items, rel_checks) = relation_items(model);
    let back = back_sync(model);
    let columns = columns_const(model);
    quote! {
        #[automatically_derived]
        impl ::session_core::Entity for #ident {
            type Key = #key_ty;
            const TABLE: &'static ::session_core::Table = &::session_core::Table {
                name: #table,
                entity: #entity,
                columns: &[#(#defs),*],
                indexes: &[#(#indexes),*],
                uniques: &[#(&[#(#uniques),*]),*],
                checks: &[#(#table_checks),*],
            };

            #[inline]
            fn key(&self) -> Self::Key {
                #key_expr
            }

            #[inline]
            fn __mapper() -> &'static (dyn ::core::any::Any + ::core::marker::Send + ::core::marker::Sync) {
                ::session_core::__private::mapper::<Self>()
            }

            fn key_params(
                key: &Self::Key,
            ) -> ::session_core::__private::Vec<&(dyn ::session_core::__private::ToSql + ::core::marker::Sync)> {
                #key_params
            }

            fn key_arrays(
                keys: &[Self::Key],
            ) -> ::session_core::__private::Vec<::session_core::OwnedParam> {
                #key_arrays
            }

            fn column_param(
                &self,
                index: usize,
            ) -> &(dyn ::session_core::__private::ToSql + ::core::marker::Sync) {
                match index {
                    #(#idx => #params,)*
                    // Never passed by the session (indices come from `TABLE.columns`).
                    _ => ::session_core::__private::NO_PARAM,
                }
            }

            fn column_array(objects: &[&Self], index: usize) -> ::session_core::OwnedParam {
                match index {
                    #(#idx => #arrays,)*
                    // Never passed by the session (indices come from `TABLE.columns`).
                    _ => ::session_core::__private::no_array(),
                }
            }

            fn from_row(
                row: &::session_core::__private::Row,
                offset: usize,
            ) -> ::core::result::Result<Self, ::session_core::__private::Error> {
                ::core::result::Result::Ok(Self {
                    #(#fields: #reads,)*
                    #(#rel_fields: #unloaded,)*
                })
            }

            fn key_from_row(
                row: &::session_core::__private::Row,
                offset: usize,
            ) -> ::core::result::Result<Self::Key, ::session_core::__private::Error> {
                #key_from_row
            }

            fn set_column(
                &mut self,
                index: usize,
                row: &::session_core::__private::Row,
                at: usize,
            ) -> ::core::result::Result<(), ::session_core::__private::Error> {
                match index {
                    #(#idx => self.#fields = #sets,)*
                    _ => {}
                }
                ::core::result::Result::Ok(())
            }

            fn column_eq(&self, other: &Self, index: usize) -> bool {
                match index {
                    #(#idx => #sames,)*
                    _ => true,
                }
            }

            fn column_check(
                &self,
                index: usize,
            ) -> ::core::result::Result<(), ::session_core::__private::String> {
                match index {
                    #(#idx => #checks,)*
                    _ => ::core::result::Result::Ok(()),
                }
            }

            #column_is_unset
            #version_methods
            #relation_methods
            #dependents
            #secondaries
            #cascade_targets
            #merge_relations
            #back

            #relations
        }

        #[automatically_derived]
        #[allow(non_upper_case_globals, dead_code)]
        impl #ident {
            #hidden
            #rel_items
        }

        #rel_checks
        #columns
    }
}
