//! `#[derive(Entity)]`: the generated code (absolute paths only).

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::parse::{ColumnField, Model, Relationship};

fn private_fk_get(field: &syn::Ident) -> syn::Ident {
    format_ident!("__session_fk_get_{}", field)
}

fn private_fk_set(field: &syn::Ident) -> syn::Ident {
    format_ident!("__session_fk_set_{}", field)
}

fn private_col(field: &syn::Ident) -> syn::Ident {
    format_ident!("__session_col_{}", field)
}

fn column_def(c: &ColumnField) -> TokenStream {
    let name = &c.column;
    let field = c.ident.to_string();
    let ty = &c.ty;
    let sql_type = match &c.sql_type {
        Some(t) => quote!(#t),
        None => quote_spanned!(ty.span()=> <#ty as ::session_core::ColumnType>::SQL_TYPE),
    };
    let (pk, generated, unique) = (c.primary_key, c.generated, c.unique);
    let default = match &c.server_default {
        Some(d) => quote!(::core::option::Option::Some(#d)),
        None => quote!(::core::option::Option::None),
    };
    let fk = match &c.foreign_key {
        Some((t, col)) => quote!(::core::option::Option::Some(::session_core::ForeignKey {
            table: #t,
            column: #col,
        })),
        None => quote!(::core::option::Option::None),
    };
    quote! {
        ::session_core::Column {
            name: #name,
            field: #field,
            sql_type: #sql_type,
            nullable: <#ty as ::session_core::ColumnType>::NULLABLE,
            primary_key: #pk,
            generated: #generated,
            server_default: #default,
            foreign_key: #fk,
            unique: #unique,
        }
    }
}

/// The generated impls.
pub(crate) fn expand(model: &Model) -> TokenStream {
    let ident = &model.ident;
    let vis = &model.vis;
    let table = &model.table;
    let entity = ident.to_string();
    let cols = &model.columns;
    let keys: Vec<(usize, &ColumnField)> = cols
        .iter()
        .enumerate()
        .filter(|(_, c)| c.primary_key)
        .collect();
    let key_tys: Vec<&syn::Type> = keys.iter().map(|(_, c)| &c.ty).collect();
    let key_fields: Vec<&syn::Ident> = keys.iter().map(|(_, c)| &c.ident).collect();
    let key_idx: Vec<usize> = keys.iter().map(|(i, _)| *i).collect();
    let single = keys.len() == 1;
    let (key_ty, key_expr, key_params, key_from_row) = if single {
        let (t, f, i) = (key_tys[0], key_fields[0], key_idx[0]);
        (
            quote!(#t),
            quote!(::core::clone::Clone::clone(&self.#f)),
            quote!(::std::vec![
                key as &(dyn ::session_core::tokio_postgres::types::ToSql + ::core::marker::Sync)
            ]),
            quote!(row.try_get(offset + #i)),
        )
    } else {
        let n: Vec<syn::Index> = (0..keys.len()).map(syn::Index::from).collect();
        (
            quote!((#(#key_tys),*)),
            quote!((#(::core::clone::Clone::clone(&self.#key_fields)),*)),
            quote!(
                ::std::vec![#(&key.#n as &(dyn ::session_core::tokio_postgres::types::ToSql + ::core::marker::Sync)),*]
            ),
            quote!(::core::result::Result::Ok((#(row.try_get(offset + #key_idx)?),*))),
        )
    };
    let defs = cols.iter().map(column_def);
    let idx: Vec<usize> = (0..cols.len()).collect();
    let fields: Vec<&syn::Ident> = cols.iter().map(|c| &c.ident).collect();
    let tys: Vec<&syn::Type> = cols.iter().map(|c| &c.ty).collect();
    let last = fields
        .last()
        .map(|f| quote!(&self.#f))
        .unwrap_or_else(|| quote!(&()));
    let first_ty = tys
        .first()
        .map(|t| quote!(#t))
        .unwrap_or_else(|| quote!(i32));
    let rel_inits = model.relationships.iter().map(|r| {
        let f = &r.ident;
        let label = format!("{entity}.{f}");
        if r.many {
            quote!(#f: ::session_core::Collection::unloaded(#label))
        } else {
            quote!(#f: ::session_core::Reference::unloaded(#label))
        }
    });
    let relations = model.relationships.iter().map(|r| relation_visit(ident, r));
    let descriptors = model
        .relationships
        .iter()
        .map(|r| descriptor(ident, vis, r));
    let consts = cols.iter().enumerate().map(|(i, c)| {
        let f = &c.ident;
        let t = &c.ty;
        let doc = format!("The `{}` column of `{table}`.", c.column);
        let hidden = private_col(f);
        let inner = c.inner.as_ref().unwrap_or(&c.ty);
        let get = private_fk_get(f);
        let set = private_fk_set(f);
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
        quote! {
            #[doc = #doc]
            #vis const #f: ::session_core::Col<#ident, #t> = ::session_core::Col::new(#i);
            #[doc(hidden)]
            #vis const #hidden: ::session_core::Col<#ident, #inner> = ::session_core::Col::new(#i);
            #[doc(hidden)]
            #[allow(dead_code)]
            #vis fn #get(&self) -> ::core::option::Option<#inner> {
                #get_body
            }
            #[doc(hidden)]
            #[allow(dead_code)]
            #vis fn #set(&mut self, value: #inner) {
                #set_body;
            }
        }
    });
    let key_const = if single {
        let i = key_idx[0];
        let t = key_tys[0];
        quote! {
            #[doc(hidden)]
            #[allow(dead_code)]
            #vis const __SESSION_KEY: ::session_core::Col<#ident, #t> = ::session_core::Col::new(#i);
        }
    } else {
        quote!()
    };
    quote! {
        #[automatically_derived]
        impl ::session_core::Entity for #ident {
            type Key = #key_ty;
            const TABLE: &'static ::session_core::Table = &::session_core::Table {
                name: #table,
                entity: #entity,
                columns: &[#(#defs),*],
            };

            fn key(&self) -> Self::Key {
                #key_expr
            }

            fn key_params(
                key: &Self::Key,
            ) -> ::std::vec::Vec<&(dyn ::session_core::tokio_postgres::types::ToSql + ::core::marker::Sync)> {
                #key_params
            }

            fn column_param(
                &self,
                index: usize,
            ) -> &(dyn ::session_core::tokio_postgres::types::ToSql + ::core::marker::Sync) {
                match index {
                    #(#idx => &self.#fields,)*
                    _ => #last,
                }
            }

            fn column_array(objects: &[&Self], index: usize) -> ::session_core::OwnedParam {
                match index {
                    #(#idx => ::std::boxed::Box::new(
                        objects
                            .iter()
                            .map(|o| ::core::clone::Clone::clone(&o.#fields))
                            .collect::<::std::vec::Vec<#tys>>(),
                    ),)*
                    _ => ::std::boxed::Box::new(::std::vec::Vec::<#first_ty>::new()),
                }
            }

            fn from_row(
                row: &::session_core::tokio_postgres::Row,
                offset: usize,
            ) -> ::core::result::Result<Self, ::session_core::tokio_postgres::Error> {
                ::core::result::Result::Ok(#ident {
                    #(#fields: row.try_get(offset + #idx)?,)*
                    #(#rel_inits,)*
                })
            }

            fn key_from_row(
                row: &::session_core::tokio_postgres::Row,
                offset: usize,
            ) -> ::core::result::Result<Self::Key, ::session_core::tokio_postgres::Error> {
                #key_from_row
            }

            fn set_column(
                &mut self,
                index: usize,
                row: &::session_core::tokio_postgres::Row,
                at: usize,
            ) -> ::core::result::Result<(), ::session_core::tokio_postgres::Error> {
                match index {
                    #(#idx => self.#fields = row.try_get(at)?,)*
                    _ => {}
                }
                ::core::result::Result::Ok(())
            }

            fn column_eq(&self, other: &Self, index: usize) -> bool {
                match index {
                    #(#idx => self.#fields == other.#fields,)*
                    _ => true,
                }
            }

            fn relations(
                obj: &::session_core::Obj<Self>,
                visit: &mut dyn ::core::ops::FnMut(::session_core::Link),
            ) {
                let _ = (&obj, &visit);
                #(#relations)*
            }
        }

        #[automatically_derived]
        #[allow(non_upper_case_globals, dead_code)]
        impl #ident {
            #(#consts)*
            #key_const
            #(#descriptors)*
        }
    }
}

fn relation_visit(parent: &syn::Ident, r: &Relationship) -> TokenStream {
    let f = &r.ident;
    let target = &r.target;
    let fk = syn::Ident::new(&r.foreign_key.value(), r.foreign_key.span());
    let get = private_fk_get(&fk);
    let set = private_fk_set(&fk);
    let span = r.foreign_key.span();
    if r.many {
        quote_spanned! {span=>
            let children: ::std::vec::Vec<::session_core::Obj<#target>> = obj
                .peek(|s| s.#f.loaded().map(|c| c.to_vec()))
                .unwrap_or_default();
            for child in &children {
                visit(::session_core::Link::new(
                    obj,
                    child,
                    |p: &#parent| <#parent as ::session_core::Entity>::key(p),
                    |c: &mut #target, k| c.#set(k),
                    |c: &#target| c.#get(),
                ));
            }
        }
    } else {
        quote_spanned! {span=>
            if let ::core::option::Option::Some(parent) =
                obj.peek(|s| s.#f.loaded().cloned())
            {
                visit(::session_core::Link::new(
                    &parent,
                    obj,
                    |p: &#target| <#target as ::session_core::Entity>::key(p),
                    |c: &mut #parent, k| c.#set(k),
                    |c: &#parent| c.#get(),
                ));
            }
        }
    }
}

fn descriptor(this: &syn::Ident, vis: &syn::Visibility, r: &Relationship) -> TokenStream {
    let f = &r.ident;
    let target = &r.target;
    let fk = syn::Ident::new(&r.foreign_key.value(), r.foreign_key.span());
    let get = private_fk_get(&fk);
    let col = private_col(&fk);
    let span = r.foreign_key.span();
    let doc = format!("The `{this}.{f}` relationship, for loader options such as `selectinload`.");
    if r.many {
        quote_spanned! {span=>
            #[doc = #doc]
            #vis fn #f() -> ::session_core::OneToMany<#this, #target, <#this as ::session_core::Entity>::Key> {
                ::session_core::OneToMany {
                    foreign_key: #target::#col,
                    parent_key: |p| <#this as ::session_core::Entity>::key(p),
                    child_key: |c| c.#get(),
                    set: |p, v| p.#f = v,
                }
            }
        }
    } else {
        quote_spanned! {span=>
            #[doc = #doc]
            #vis fn #f() -> ::session_core::ManyToOne<#this, #target, <#target as ::session_core::Entity>::Key> {
                ::session_core::ManyToOne {
                    parent_column: #target::__SESSION_KEY,
                    parent_key: |p| <#target as ::session_core::Entity>::key(p),
                    child_key: |c| c.#get(),
                    set: |c, r| c.#f = r,
                }
            }
        }
    }
}
