//! Expansion without a compiler, for `session-tools proxy expand`: the published signatures
//! are read from source files instead of through the published macros.

use std::collections::HashMap;

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{Item, ItemImpl, Meta};

use crate::proxy::{self, expand_request};
use crate::publish::{attr_name, publish_signatures, read_published};
use crate::signatures::{Errors, Signatures, self_type_ident};

/// The identifier that stands for `$crate` in an offline expansion: a target's `crate::`
/// paths reach the wrapper as `$crate::` through the published macro, and `proc_macro2`
/// cannot make a `$crate` token outside the compiler. `session-tools` prints it as `$crate`.
pub const DOLLAR_CRATE: &str = "__session_proxy_dollar_crate";

/// The arguments of the attribute called `name` on `item`, if it has one.
fn attr_args(item: &ItemImpl, name: &str) -> Option<TokenStream> {
    let attr = item
        .attrs
        .iter()
        .find(|a| attr_name(a).as_deref() == Some(name))?;
    Some(match &attr.meta {
        Meta::List(list) => list.tokens.clone(),
        _ => TokenStream::new(),
    })
}

/// `sigs` as the callback receives them from the published macro: `crate` as `$crate`.
fn as_received(sigs: &Signatures) -> Signatures {
    let wire = mark_dollar_crate(sigs.to_wire(false));
    syn::parse2(wire).unwrap_or_else(|_| sigs.clone())
}

fn mark_dollar_crate(tokens: TokenStream) -> TokenStream {
    use proc_macro2::{Group, Ident, TokenTree};
    tokens
        .into_iter()
        .map(|tt| match tt {
            TokenTree::Ident(i) if i == "crate" => {
                TokenTree::Ident(Ident::new(DOLLAR_CRATE, i.span()))
            }
            TokenTree::Group(g) => {
                let mut new = Group::new(g.delimiter(), mark_dollar_crate(g.stream()));
                new.set_span(g.span());
                TokenTree::Group(new)
            }
            other => other,
        })
        .collect()
}

/// The expansion of one impl block.
pub struct Expansion {
    /// What was expanded, e.g. `#[proxy_methods] impl Wrapper`.
    pub label: String,
    /// The expanded items: for `#[proxy_methods]`, the user's impl block followed by the
    /// generated one (the target's macro already resolved); for `#[publish_signatures]`, the
    /// impl block and the published macro.
    pub tokens: TokenStream,
}

/// Expands every impl block of `file` that carries `#[proxy_methods(...)]` or
/// `#[publish_signatures]`, in source order (inline modules included).
///
/// Targets are looked up by name among the `#[publish_signatures]` impl blocks of `file` and
/// of `targets` (other files, e.g. the one defining the target type); a wrapper that is
/// itself published (proxy of a proxy) is resolved too.
///
/// # Errors
///
/// Every mistake the macros would report at compile time, combined; and a target that no
/// given file publishes.
pub fn expand_source(file: &syn::File, targets: &[syn::File]) -> syn::Result<Vec<Expansion>> {
    let mut all = Vec::new();
    for f in targets.iter().chain([file]) {
        collect_impls(&f.items, &mut all);
    }
    let known = published(&all);
    let mut mine = Vec::new();
    collect_impls(&file.items, &mut mine);
    let mut errors = Errors::default();
    let mut out = Vec::new();
    for item in mine {
        let has = |name: &str| {
            item.attrs
                .iter()
                .any(|a| attr_name(a).as_deref() == Some(name))
        };
        let label = format!("impl {}", item.self_ty.to_token_stream())
            .replace(" < ", "<")
            .replace(" >", ">")
            .replace(" ,", ",");
        if has("proxy_methods") {
            match expand_proxy(item, &known) {
                Ok(tokens) => out.push(Expansion {
                    label: format!("#[proxy_methods] {label}"),
                    tokens,
                }),
                Err(e) => errors.push(e),
            }
        } else if has("publish_signatures") {
            let args = attr_args(item, "publish_signatures").unwrap_or_default();
            let mut item = item.clone();
            item.attrs
                .retain(|a| attr_name(a).as_deref() != Some("publish_signatures"));
            let tokens = publish_signatures(args, item.into_token_stream())?;
            out.push(Expansion {
                label: format!("#[publish_signatures] {label}"),
                tokens,
            });
        }
    }
    errors.finish()?;
    Ok(out)
}

fn collect_impls<'a>(items: &'a [Item], out: &mut Vec<&'a ItemImpl>) {
    for item in items {
        match item {
            Item::Impl(i) => out.push(i),
            Item::Mod(m) => {
                if let Some((_, items)) = &m.content {
                    collect_impls(items, out);
                }
            }
            _ => {}
        }
    }
}

/// Splits `#[proxy_methods(...)]` off the item: its arguments and the rest of the item.
fn split_proxy_attr(item: &ItemImpl) -> syn::Result<(TokenStream, TokenStream)> {
    let mut item = item.clone();
    let pos = item
        .attrs
        .iter()
        .position(|a| attr_name(a).as_deref() == Some("proxy_methods"))
        .ok_or_else(|| syn::Error::new_spanned(&item.self_ty, "no #[proxy_methods] here"))?;
    let attr = item.attrs.remove(pos);
    let args = match attr.meta {
        Meta::List(list) => list.tokens,
        other => {
            return Err(syn::Error::new_spanned(
                other,
                "expected #[proxy_methods(Target, ...)]",
            ));
        }
    };
    Ok((args, item.into_token_stream()))
}

/// Signatures published by `items`, by target name; wrappers that publish (proxies of
/// proxies) are resolved once their own target is known.
fn published(items: &[&ItemImpl]) -> HashMap<String, Signatures> {
    let mut known = HashMap::new();
    let mut parts: HashMap<(String, String), Signatures> = HashMap::new();
    let mut mains: Vec<(String, Vec<String>)> = Vec::new();
    let mut pending = Vec::new();
    for item in items {
        let has = |name: &str| {
            item.attrs
                .iter()
                .any(|a| attr_name(a).as_deref() == Some(name))
        };
        if !has("publish_signatures") {
            continue;
        }
        if has("proxy_methods") {
            pending.push(*item);
            continue;
        }
        let args = attr_args(item, "publish_signatures").unwrap_or_default();
        let Ok(published) = read_published(args, item) else {
            continue;
        };
        let sigs = as_received(&published.sigs);
        let target = sigs.target.to_string();
        match published.part {
            Some(part) => {
                parts.insert((target, part.to_string()), sigs);
            }
            None => {
                let names = published.parts.iter().map(|p| p.to_string()).collect();
                mains.push((target.clone(), names));
                known.insert(target, sigs);
            }
        }
    }
    // A main block's further parts, in its `parts(...)` order, as the chain appends them.
    for (target, names) in mains {
        for name in names {
            if let (Some(part), Some(all)) = (
                parts.remove(&(target.clone(), name)),
                known.get_mut(&target),
            ) {
                let from_trait = part.fns.iter().find_map(|f| f.from_trait.clone());
                all.merge(part, from_trait);
            }
        }
    }
    loop {
        let before = pending.len();
        pending.retain(|item| {
            let resolved = split_proxy_attr(item)
                .and_then(|(args, rest)| proxy::parse(args, rest))
                .ok()
                .and_then(|parsed| parsed.request)
                .and_then(|req| {
                    let target = req.target.segments.last()?.ident.to_string();
                    let sigs = known.get(&target)?;
                    expand_request(&req, sigs).1
                });
            match resolved {
                Some(sigs) => {
                    known.insert(sigs.target.to_string(), sigs);
                    false
                }
                None => true,
            }
        });
        if pending.is_empty() || pending.len() == before {
            return known;
        }
    }
}

fn expand_proxy(item: &ItemImpl, known: &HashMap<String, Signatures>) -> syn::Result<TokenStream> {
    let (args, rest) = split_proxy_attr(item)?;
    let parsed = proxy::parse(args, rest)?;
    let mut errors = parsed.errors;
    let user_item = parsed.item;
    let mut tokens = quote!(#user_item);
    if let Some(req) = parsed.request {
        let target = req
            .target
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default();
        match known.get(&target) {
            Some(sigs) => {
                let (generated, _, more) = expand_request(&req, sigs);
                tokens.extend(generated);
                if let Err(e) = more.finish() {
                    errors.push(e);
                }
            }
            None => errors.push(syn::Error::new_spanned(
                &req.target,
                format!(
                    "no `#[publish_signatures] impl {target}` in the given files; pass the file that defines `{target}`"
                ),
            )),
        }
    }
    let wrapper = self_type_ident(&user_item.self_ty);
    errors.finish().map_err(|e| {
        let mut with_context = syn::Error::new_spanned(
            &user_item.self_ty,
            format!(
                "in #[proxy_methods] on `impl {}`:",
                wrapper.map(|w| w.to_string()).unwrap_or_default()
            ),
        );
        with_context.combine(e);
        with_context
    })?;
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_a_file_with_its_target_and_a_proxy_of_a_proxy() {
        let targets: syn::File = syn::parse_quote! {
            pub struct Counter;
            #[session_macros::publish_signatures]
            impl Counter {
                /// Gets.
                pub fn get(&self) -> i64 { 0 }
            }
        };
        let file: syn::File = syn::parse_quote! {
            mod m {
                #[session_macros::proxy_methods(Mid, methods(get))]
                impl Outer { fn proxied(&self) -> &Mid { &self.0 } }
            }
            #[proxy_methods(Counter, methods(get))]
            #[publish_signatures]
            impl Mid { fn proxied(&self) -> &Counter { &self.0 } }
        };
        let out = expand_source(&file, &[targets]).expect("expands");
        let labels: Vec<&str> = out.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(
            labels,
            ["#[proxy_methods] impl Outer", "#[proxy_methods] impl Mid"]
        );
        let outer = out[0].tokens.to_string();
        assert!(
            outer.contains("Proxied for [`Mid`] on behalf of [`Outer`]."),
            "{outer}"
        );
        assert!(
            outer.contains("Proxied for [`Counter`] on behalf of [`Mid`]."),
            "{outer}"
        );
        assert!(
            outer.contains("< Mid > :: get (& * self . proxied ())"),
            "{outer}"
        );
        let mid = out[1].tokens.to_string();
        assert!(
            mid.contains("macro_rules ! __session_proxy_sig_Mid_"),
            "{mid}"
        );
    }

    #[test]
    fn reports_mistakes_and_missing_targets() {
        let file: syn::File = syn::parse_quote! {
            #[publish_signatures]
            impl Counter { pub fn get(&self) -> i64 { 0 } }
            #[proxy_methods(Counter, methods(gett))]
            impl A { fn proxied(&self) -> &Counter { &self.0 } }
            #[proxy_methods(Nowhere, methods(x))]
            impl B {}
        };
        let err = expand_source(&file, &[]).err().expect("errors");
        let messages: Vec<String> = err.into_iter().map(|e| e.to_string()).collect();
        assert!(
            messages.iter().any(|m| m.contains("did you mean `get`?")),
            "{messages:#?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m.contains("no `#[publish_signatures] impl Nowhere`")),
            "{messages:#?}"
        );
    }
}
