//! `#[derive(Entity)]`, phase 3 for relationships: the links the unit of work follows, the
//! dependents a delete visits, the loader descriptors (`A::C.bs`), and `back_populates`.
//!
//! Three shapes, by where the foreign key lives:
//! - `Collection<C>` (one-to-many): the key is a field of `C`;
//! - `Reference<C>` with `uselist = false` (one-to-one, the side without the key): a field of
//!   `C`, which must be `#[entity(unique)]`;
//! - `Reference<P>` (many-to-one): a field of this struct.
//!
//! The other side of a `back_populates` pair lives on another struct, which this derive cannot
//! see: the generated code names that struct's hidden items (`__session_rel_<field>`,
//! `__session_side_<field>`, `__SESSION_BACK_<field>`), spanned at the user's string, so a
//! missing or mismatched field is a compile error there.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};

use super::ast::{Model, Relationship};

pub(super) fn private_fk_get(field: &syn::Ident) -> syn::Ident {
    format_ident!("__session_fk_get_{}", field)
}

pub(super) fn private_fk_set(field: &syn::Ident) -> syn::Ident {
    format_ident!("__session_fk_set_{}", field)
}

pub(super) fn private_fk_clear(field: &syn::Ident) -> syn::Ident {
    format_ident!("__session_fk_clear_{}", field)
}

pub(super) fn private_col(field: &syn::Ident) -> syn::Ident {
    format_ident!("__session_col_{}", field)
}

fn private_rel(field: &syn::Ident) -> syn::Ident {
    format_ident!("__session_rel_{}", field)
}

fn private_side(field: &syn::Ident) -> syn::Ident {
    format_ident!("__session_side_{}", field)
}

fn private_back(field: &syn::Ident) -> syn::Ident {
    format_ident!("__SESSION_BACK_{}", field)
}

/// The field `f` of another struct named by a string literal, spanned there.
fn named(lit: &syn::LitStr) -> syn::Ident {
    syn::Ident::new(&lit.value(), lit.span())
}

/// The hidden inherent items of the usable relationships (the field's accessor, the parent
/// side for `back_populates` on the other struct, the name this field back-populates), and
/// beside them (module items) the compile-time checks of the pair and of a one-to-one's
/// unique foreign key.
pub(super) fn relation_items(model: &Model<'_>) -> (TokenStream, TokenStream) {
    let ident = model.ident;
    let vis = &model.input.vis;
    let mut out = TokenStream::new();
    let mut checks = TokenStream::new();
    for r in model.relationships.iter().filter(|r| r.usable) {
        let (f, target) = (r.ident, r.target);
        let (rel, back) = (private_rel(f), private_back(f));
        let ty = if r.many {
            quote!(::session_core::Collection<#target>)
        } else {
            quote!(::session_core::Reference<#target>)
        };
        let back_name = r
            .back_populates
            .as_ref()
            .map(syn::LitStr::value)
            .unwrap_or_default();
        out.extend(quote! {
            #[doc(hidden)]
            #[inline]
            #vis fn #rel(&mut self) -> &mut #ty {
                &mut self.#f
            }
            #[doc(hidden)]
            #vis const #back: &'static str = #back_name;
        });
        if r.parent_side() {
            let side = private_side(f);
            let variant = if r.many { quote!(Many) } else { quote!(One) };
            out.extend(quote! {
                #[doc(hidden)]
                #[inline]
                #vis fn #side() -> ::session_core::ParentSide<#ident, #target> {
                    ::session_core::ParentSide::#variant(<#ident>::#rel)
                }
            });
        }
        if let Some(span) = r.one {
            let fk = named(&r.foreign_key);
            let col = private_col(&fk);
            let message = format!(
                "the one-to-one `{ident}.{f}` (uselist = false) needs its foreign key `{}` to be \
                 #[entity(unique)] on the target: one row per parent, which the database's \
                 UNIQUE constraint enforces",
                r.foreign_key.value()
            );
            checks.extend(quote_spanned! {span=>
                const _: () = ::core::assert!(
                    <#target as ::session_core::Entity>::TABLE.columns
                        [<#target>::#col.index()].unique,
                    #message
                );
            });
        }
        if let Some(lit) = &r.back_populates {
            let other = named(lit);
            let other_back = private_back(&other);
            let message = format!(
                "`{ident}.{f}` has back_populates = \"{}\", but that field does not name `{f}` \
                 in its own back_populates: give both sides of the pair back_populates, each \
                 naming the other",
                lit.value()
            );
            let mine = f.to_string();
            checks.extend(quote_spanned! {lit.span()=>
                const _: () = ::core::assert!(
                    ::session_core::__private::str_eq(<#target>::#other_back, #mine),
                    #message
                );
            });
        }
    }
    (out, checks)
}

/// `sync_back_references`, when any relationship has `back_populates`.
pub(super) fn back_sync(model: &Model<'_>) -> TokenStream {
    let ident = model.ident;
    let parts: Vec<TokenStream> = model
        .relationships
        .iter()
        .filter(|r| r.usable)
        .filter_map(|r| {
            r.back_populates
                .as_ref()
                .map(|lit| back_part(ident, r, lit))
        })
        .collect();
    if parts.is_empty() {
        return quote!();
    }
    quote! {
        fn sync_back_references(
            obj: &::session_core::Obj<Self>,
            value: &mut Self,
            initial: bool,
        ) {
            #(#parts)*
        }
    }
}

/// The pair's functions and what one field's log turns into.
fn back_part(this: &syn::Ident, r: &Relationship<'_>, lit: &syn::LitStr) -> TokenStream {
    let (f, target) = (r.ident, r.target);
    let other = named(lit);
    if r.m2m().is_some() {
        let other_rel = private_rel(&other);
        let pair = quote_spanned! {lit.span()=>
            ::session_core::ManyBack::<#this, #target> { other: <#target>::#other_rel }
        };
        return quote! {
            {
                let fresh = !value.#f.__track();
                let (added, removed) = if initial || fresh {
                    (
                        ::session_core::__private::Vec::from(value.#f.loaded().unwrap_or_default()),
                        ::session_core::__private::Vec::new(),
                    )
                } else {
                    ::session_core::__private::split_changes(value.#f.__take_changes())
                };
                if !added.is_empty() || !removed.is_empty() {
                    #pair.changed(obj, added, removed);
                }
            }
        };
    }
    let fk = named(&r.foreign_key);
    let (get, set, clear) = (
        private_fk_get(&fk),
        private_fk_set(&fk),
        private_fk_clear(&fk),
    );
    let span = lit.span();
    if r.parent_side() {
        let child_ref = private_rel(&other);
        let side = private_side(f);
        let pair = quote_spanned! {span=>
            ::session_core::BackPopulates::<#this, #target, <#this as ::session_core::Entity>::Key> {
                parent_key: |p: &#this| <#this as ::session_core::Entity>::key(p),
                fk_get: |c: &#target| c.#get(),
                fk_set: |c: &mut #target, k| c.#set(k),
                fk_clear: |c: &mut #target| c.#clear(),
                child_ref: <#target>::#child_ref,
                parent_side: <#this>::#side(),
            }
        };
        let changes = if r.many {
            quote! {
                if initial || fresh {
                    (
                        ::session_core::__private::Vec::from(
                            value.#f.loaded().unwrap_or_default(),
                        ),
                        ::session_core::__private::Vec::new(),
                    )
                } else {
                    ::session_core::__private::split_changes(value.#f.__take_changes())
                }
            }
        } else {
            quote! {
                if initial || fresh {
                    (
                        ::core::iter::Iterator::collect(
                            ::core::iter::IntoIterator::into_iter(value.#f.loaded().cloned()),
                        ),
                        ::session_core::__private::Vec::new(),
                    )
                } else {
                    match value.#f.__take_change() {
                        ::core::option::Option::Some(old) => ::session_core::__private::one_change(
                            old,
                            value.#f.loaded().cloned(),
                        ),
                        ::core::option::Option::None => (
                            ::session_core::__private::Vec::new(),
                            ::session_core::__private::Vec::new(),
                        ),
                    }
                }
            }
        };
        quote! {
            {
                let fresh = !value.#f.__track();
                let (added, removed) = #changes;
                if !added.is_empty() || !removed.is_empty() {
                    #pair.parent_side_changed(obj, added, removed);
                }
            }
        }
    } else {
        let side = private_side(&other);
        let rel = private_rel(f);
        let pair = quote_spanned! {span=>
            ::session_core::BackPopulates::<#target, #this, <#target as ::session_core::Entity>::Key> {
                parent_key: |p: &#target| <#target as ::session_core::Entity>::key(p),
                fk_get: |c: &#this| c.#get(),
                fk_set: |c: &mut #this, k| c.#set(k),
                fk_clear: |c: &mut #this| c.#clear(),
                child_ref: <#this>::#rel,
                parent_side: <#target>::#side(),
            }
        };
        quote! {
            {
                let fresh = !value.#f.__track();
                if initial || fresh {
                    if let ::core::option::Option::Some(p) = value.#f.loaded().cloned() {
                        #pair.child_side_changed(obj, ::core::option::Option::None,
                            ::core::option::Option::Some(p));
                    }
                } else if let ::core::option::Option::Some(old) = value.#f.__take_change() {
                    let now = value.#f.loaded().cloned();
                    #pair.child_side_changed(obj, old, now);
                }
            }
        }
    }
}

/// The parent side's loaded objects (`None` when not loaded), as `dependents` and
/// `relations` read them.
fn loaded_children(r: &Relationship<'_>, of: TokenStream) -> TokenStream {
    let f = r.ident;
    if r.many {
        quote!(#of.#f.loaded().map(|c| c.to_vec()))
    } else {
        quote! {
            if #of.#f.is_loaded() {
                ::core::option::Option::Some(::core::iter::Iterator::collect(
                    ::core::iter::IntoIterator::into_iter(#of.#f.loaded().cloned()),
                ))
            } else {
                ::core::option::Option::None
            }
        }
    }
}

/// One `visit(Dependent::new(...))` of `dependents` for the parent-side relationship `r`.
pub(super) fn dependent_visit(parent: &syn::Ident, r: &Relationship<'_>) -> TokenStream {
    let target = r.target;
    let fk_name = r.foreign_key.value();
    let fk = named(&r.foreign_key);
    let (get, clear) = (private_fk_get(&fk), private_fk_clear(&fk));
    let delete = r.cascade_delete.is_some();
    let delete_orphan = r.delete_orphan.is_some();
    let passive = r.passive_deletes.is_some();
    let span: Span = r.foreign_key.span();
    let children = loaded_children(r, quote!(p));
    quote_spanned! {span=>
        visit(::session_core::Dependent::new(
            obj,
            #fk_name,
            ::session_core::Cascades {
                delete: #delete,
                delete_orphan: #delete_orphan,
                passive_deletes: #passive,
            },
            (
                |p: &#parent| #children,
                |p: &#parent| <#parent as ::session_core::Entity>::key(p),
                |c: &#target| c.#get(),
                |c: &mut #target| c.#clear(),
            ),
        ));
    }
}

/// The `visit(Link::new(...))`s of `relations` for `r`.
pub(super) fn relation_visit(parent: &syn::Ident, r: &Relationship<'_>) -> TokenStream {
    let f = r.ident;
    let target = r.target;
    if r.m2m().is_some() {
        return quote_spanned! {r.foreign_key.span()=>
            let children: ::session_core::__private::Vec<::session_core::Obj<#target>> = obj
                .peek(|s: &#parent| s.#f.loaded().map(|c| c.to_vec()))
                .unwrap_or_default();
            for child in &children {
                visit(::session_core::Link::cascade_only(obj, child));
            }
        };
    }
    let fk = named(&r.foreign_key);
    let (get, set) = (private_fk_get(&fk), private_fk_set(&fk));
    let span: Span = r.foreign_key.span();
    if r.parent_side() {
        let children = loaded_children(r, quote!(s));
        quote_spanned! {span=>
            let children: ::session_core::__private::Vec<::session_core::Obj<#target>> = obj
                .peek(|s| #children)
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

/// The type and the constant value of a relationship's loader descriptor (`A::C.bs`).
pub(super) fn descriptor(this: &syn::Ident, r: &Relationship<'_>) -> (TokenStream, TokenStream) {
    let f = r.ident;
    let target = r.target;
    let fk = named(&r.foreign_key);
    let get = private_fk_get(&fk);
    let col = private_col(&fk);
    let span = r.foreign_key.span();
    let label = format!("{this}.{f}");
    // A loaded back-populated field logs its changes from the start.
    let (set_p, set_c) = if r.back_populates.is_some() {
        (
            quote!(|p, mut v| { v.__track(); p.#f = v; }),
            quote!(|c, mut v| { v.__track(); c.#f = v; }),
        )
    } else {
        (quote!(|p, v| p.#f = v), quote!(|c, v| c.#f = v))
    };
    if let Some((link, target_fk)) = r.m2m() {
        let remote = private_col(&named(target_fk));
        return (
            quote_spanned! {span=>
                ::session_core::ManyToMany<
                    #this,
                    #target,
                    #link,
                    <#this as ::session_core::Entity>::Key,
                    <#target as ::session_core::Entity>::Key,
                >
            },
            quote_spanned! {span=>
                ::session_core::ManyToMany {
                    parent_column: <#this>::__SESSION_KEY,
                    local: <#link>::#col,
                    remote: <#link>::#remote,
                    target_column: <#target>::__SESSION_KEY,
                    parent_key: |p| <#this as ::session_core::Entity>::key(p),
                    set: #set_p,
                    is_loaded: |p| p.#f.is_loaded(),
                    name: #label,
                }
            },
        );
    }
    let kind = if r.many {
        quote!(OneToMany)
    } else if r.one.is_some() {
        quote!(OneToOne)
    } else {
        quote!(ManyToOne)
    };
    if r.parent_side() {
        let back = match &r.back_populates {
            Some(lit) => {
                let rel = private_rel(&named(lit));
                quote_spanned!(lit.span()=> ::core::option::Option::Some(<#target>::#rel))
            }
            None => quote!(::core::option::Option::None),
        };
        (
            quote_spanned! {span=>
                ::session_core::#kind<#this, #target, <#this as ::session_core::Entity>::Key>
            },
            quote_spanned! {span=>
                ::session_core::#kind {
                    parent_column: <#this>::__SESSION_KEY,
                    foreign_key: <#target>::#col,
                    parent_key: |p| <#this as ::session_core::Entity>::key(p),
                    child_key: |c| c.#get(),
                    set: #set_p,
                    is_loaded: |p| p.#f.is_loaded(),
                    back: #back,
                    name: #label,
                }
            },
        )
    } else {
        (
            quote_spanned! {span=>
                ::session_core::ManyToOne<#this, #target, <#target as ::session_core::Entity>::Key>
            },
            quote_spanned! {span=>
                ::session_core::ManyToOne {
                    foreign_key: <#this>::#col,
                    parent_column: <#target>::__SESSION_KEY,
                    parent_key: |p| <#target as ::session_core::Entity>::key(p),
                    child_key: |c| c.#get(),
                    set: #set_c,
                    is_loaded: |c| c.#f.is_loaded(),
                    name: #label,
                }
            },
        )
    }
}

/// One `visit(Secondary::new(...))` of `secondaries` for the many-to-many `r`.
pub(super) fn secondary_visit(parent: &syn::Ident, r: &Relationship<'_>) -> TokenStream {
    let Some((link, target_fk)) = r.m2m() else {
        return quote!();
    };
    let (f, target) = (r.ident, r.target);
    let local = private_col(&named(&r.foreign_key));
    let remote = private_col(&named(target_fk));
    let passive = r.passive_deletes.is_some();
    quote_spanned! {r.foreign_key.span()=>
        visit(::session_core::Secondary::new::<#parent, #target, #link>(
            obj,
            (<#link>::#local.index(), <#link>::#remote.index()),
            #passive,
            |p: &#parent| p.#f.loaded().map(|c| c.to_vec()),
        ));
    }
}

/// The body of `cascade_targets` for `r`: its loaded objects when its cascade has `kind`.
pub(super) fn cascade_visit(parent: &syn::Ident, r: &Relationship<'_>) -> TokenStream {
    let f = r.ident;
    let (expunge, refresh, merge) = (r.cascade_expunge, r.cascade_refresh, r.cascade_merge);
    let objects = if r.many {
        quote!(obj.peek(|s: &#parent| s.#f.loaded().map(|c| c.to_vec())).unwrap_or_default())
    } else {
        quote! {
            ::core::iter::Iterator::collect::<::session_core::__private::Vec<_>>(
                ::core::iter::IntoIterator::into_iter(obj.peek(|s: &#parent| s.#f.loaded().cloned())),
            )
        }
    };
    quote! {
        if (#expunge && kind == ::session_core::CascadeKind::Expunge)
            || (#refresh && kind == ::session_core::CascadeKind::RefreshExpire)
            || (#merge && kind == ::session_core::CascadeKind::Merge)
        {
            for other in #objects {
                visit(other.erase());
            }
        }
    }
}

/// One relationship's part of `merge_relations` (see `Entity::merge_relations`).
pub(super) fn merge_part(r: &Relationship<'_>) -> TokenStream {
    let (f, target) = (r.ident, r.target);
    let (kind, empty) = if r.many {
        (
            quote!(Collection),
            quote!(::session_core::Collection::new()),
        )
    } else {
        (quote!(Reference), quote!(::session_core::Reference::none()))
    };
    let mapped = if r.many {
        quote! {
            merged.#f.loaded().map(|items| {
                ::session_core::Collection::<#target>::from_vec(
                    items
                        .iter()
                        .filter_map(|o| map(&o.erase()).and_then(|m| m.downcast::<#target>()))
                        .collect(),
                )
            })
        }
    } else {
        quote! {
            if merged.#f.is_loaded() {
                ::core::option::Option::Some(
                    match merged.#f.loaded().and_then(|o| map(&o.erase())) {
                        ::core::option::Option::Some(m) => match m.downcast::<#target>() {
                            ::core::option::Option::Some(m) => ::session_core::Reference::to(m),
                            ::core::option::Option::None => ::session_core::Reference::none(),
                        },
                        ::core::option::Option::None => ::session_core::Reference::none(),
                    },
                )
            } else {
                ::core::option::Option::None
            }
        }
    };
    let merge = r.cascade_merge && r.usable;
    quote! {
        {
            let mapped: ::core::option::Option<::session_core::#kind<#target>> =
                if #merge { #mapped } else { ::core::option::Option::None };
            merged.#f = match mapped {
                ::core::option::Option::Some(v) => v,
                ::core::option::Option::None if fresh => #empty,
                ::core::option::Option::None => ::core::mem::replace(&mut before.#f, #empty),
            };
        }
    }
}
