//! `#[proxy_methods(...)]` (the request) and `__proxy_expand!` (the callback that generates
//! the members once the target's signatures arrived).

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote};
use syn::{Ident, ImplItem, ItemImpl, Path};

use crate::attr;
use crate::expand::generate;
use crate::protocol::{Accessor, CallbackInput, Request, callback_path};
use crate::publish::{attr_name, hash, published_macro};
use crate::signatures::{Errors, Signatures};
use crate::valid::plan;

/// The default accessor names (SQLAlchemy's `_proxied`).
pub(crate) const DEFAULT_ACCESSOR: &str = "proxied";
/// The default mutable accessor name.
pub(crate) const DEFAULT_ACCESSOR_MUT: &str = "proxied_mut";

/// A parsed `#[proxy_methods]` use: the user's impl (helpers stripped), the request, and the
/// mistakes found in the attribute's arguments.
pub(crate) struct Parsed {
    /// The user's impl block, without `#[publish_signatures]` and `#[proxy(...)]` helpers.
    pub(crate) item: ItemImpl,
    /// The request, when the target could be read.
    pub(crate) request: Option<Request>,
    /// Mistakes in the arguments.
    pub(crate) errors: Errors,
}

/// Parses the attribute and the impl block it sits on.
pub(crate) fn parse(attr: TokenStream, item: TokenStream) -> syn::Result<Parsed> {
    let mut item: ItemImpl = syn::parse2(item)?;
    if let Some((_, path, _)) = &item.trait_ {
        return Err(syn::Error::new_spanned(
            path,
            "#[proxy_methods] goes on an inherent `impl Wrapper { ... }` block, not on a trait impl",
        ));
    }
    let attr_tokens = attr.clone();
    let args = attr::parse(attr);
    let mut errors = args.errors;
    let publish = take_publish(&mut item, &mut errors);
    let defined: Vec<Ident> = item
        .items
        .iter()
        .filter_map(|i| match i {
            ImplItem::Fn(f) => Some(f.sig.ident.clone()),
            _ => None,
        })
        .collect();
    let accessor = make_accessor(args.accessor, DEFAULT_ACCESSOR, &defined);
    let accessor_mut = make_accessor(args.accessor_mut, DEFAULT_ACCESSOR_MUT, &defined);
    // The marker's name comes from the whole attribute and block (cfgs included), so two
    // `#[proxy_methods]` blocks on one wrapper in one module never share it.
    let seed = quote!(#attr_tokens #item);
    let request = args.target.map(|target| {
        let mut wrapper = item.clone();
        wrapper.attrs.clear();
        wrapper.items.clear();
        Request {
            marker: format_ident!("__SessionProxyPublished{:016x}", hash(&seed)),
            target,
            wrapper,
            accessor,
            accessor_mut,
            methods: args.methods,
            attributes: args.attributes,
            classmethods: args.classmethods,
            blocking: args.blocking,
            publish,
        }
    });
    Ok(Parsed {
        item,
        request,
        errors,
    })
}

fn make_accessor(explicit: Option<Ident>, default: &str, defined: &[Ident]) -> Accessor {
    match explicit {
        Some(name) => Accessor {
            name,
            available: true,
        },
        None => Accessor {
            name: Ident::new(default, Span::call_site()),
            available: defined.iter().any(|d| d == default),
        },
    }
}

/// Removes `#[publish_signatures]` from the block and reads its own signatures: they are
/// published later, together with the generated members.
fn take_publish(item: &mut ItemImpl, errors: &mut Errors) -> Option<Signatures> {
    let pos = item
        .attrs
        .iter()
        .position(|a| attr_name(a).as_deref() == Some("publish_signatures"))?;
    item.attrs.remove(pos);
    match Signatures::from_impl(item) {
        Ok(sigs) => Some(sigs),
        Err(e) => {
            errors.push(e);
            None
        }
    }
}

/// The expansion of `#[proxy_methods(...)]`: the user's impl unchanged, the argument errors,
/// a check that the target published its signatures, and the call of the target's published
/// macro that comes back as `__proxy_expand!`.
pub(crate) fn proxy_methods(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let Parsed {
        item,
        request,
        errors,
    } = parse(attr, item)?;
    let Some(request) = request else {
        return Ok(quote!(#item #errors));
    };
    let marker = &request.marker;
    let cfgs = cfgs_of(&item);
    let check = published_check(&request, marker, &cfgs);
    let callback = callback_path();
    let wire = request.to_wire();
    let bare = bare_path(&request.target);
    Ok(quote! {
        #item
        #errors
        #check
        #(#cfgs)*
        #bare! { @proxy_methods { callback = #callback; #wire } }
    })
}

/// `path` without the generic arguments of its last segment (`a::Repo` for `a::Repo<T>`):
/// the published macro's name.
pub(crate) fn bare_path(path: &Path) -> Path {
    let mut bare = path.clone();
    if let Some(last) = bare.segments.last_mut() {
        last.arguments = syn::PathArguments::None;
    }
    bare
}

/// The `#[cfg]` and `#[cfg_attr]` attributes of the user's block: every generated item carries
/// them, so a block behind a cfg generates nothing when the cfg is off.
pub(crate) fn cfgs_of(item: &ItemImpl) -> Vec<syn::Attribute> {
    item.attrs
        .iter()
        .filter(|a| a.path().is_ident("cfg"))
        .cloned()
        .collect()
}

/// A marker trait that only the target's published macro implements (through the callback),
/// and a bound on it at the user's target path: when the target has no published signatures,
/// this is the error that says what to do.
fn published_check(request: &Request, marker: &Ident, cfgs: &[syn::Attribute]) -> TokenStream {
    let target = &request.target;
    let shown = bare_path(target)
        .to_token_stream()
        .to_string()
        .replace(' ', "");
    let name = target
        .segments
        .last()
        .map_or_else(|| shown.clone(), |s| s.ident.to_string());
    let message =
        format!("`{shown}` has no published signatures, so #[proxy_methods] cannot read them");
    let label = format!("`{name}` has no `#[session_macros::publish_signatures]`");
    let (checked, proof_item) = match proof_name(request) {
        Some(proof) => {
            let spanned = Ident::new(&proof.to_string(), target.segments[0].ident.span());
            let item = quote! {
                #(#cfgs)*
                #[doc(hidden)]
                #[allow(non_camel_case_types, dead_code)]
                struct #proof;
            };
            (quote!(#spanned), item)
        }
        None => (quote!(#target), TokenStream::new()),
    };
    let note = format!(
        "add `#[session_macros::publish_signatures]` to `impl {name} {{ ... }}` (in the module that defines `{name}`), \
         and name `{name}` here through a path that also reaches that module"
    );
    let same_cause = format!(
        "the error \"cannot find macro `{name}`\" beside this one has the same cause: the published \
         signatures are a hidden macro named like the type, which `#[session_macros::publish_signatures]` defines"
    );
    quote! {
        #(#cfgs)*
        #[doc(hidden)]
        #[allow(non_camel_case_types, dead_code)]
        #[diagnostic::on_unimplemented(
            message = #message,
            label = #label,
            note = #note,
            note = #same_cause
        )]
        trait #marker {}
        #(#cfgs)*
        #proof_item
        #(#cfgs)*
        const _: () = {
            const fn __session_proxy_published<T: ?::core::marker::Sized + #marker>() {}
            __session_proxy_published::<#checked>();
        };
    }
}

/// The type the marker is implemented for: the target itself, or for a generic target (whose
/// instances need the target's bounds) a unit struct standing in for it.
pub(crate) fn proof_name(request: &Request) -> Option<Ident> {
    let generic = request
        .target
        .segments
        .last()
        .is_some_and(|s| !s.arguments.is_none());
    generic.then(|| format_ident!("{}Proof", request.marker))
}

/// Validates a request against the target's signatures and generates what it asks for:
/// the delegating impl block, every error at the user's tokens, and, when the wrapper also
/// publishes, its published macro (own members plus generated ones).
pub(crate) fn expand_request(
    request: &Request,
    sigs: &Signatures,
) -> (TokenStream, Option<Signatures>, Errors) {
    let (members, errors) = plan(request, sigs);
    let generated = generate(request, sigs, &members);
    let block = &generated.block;
    let mut republished = None;
    let mut published_tokens = TokenStream::new();
    if let Some(own) = &request.publish {
        let mut all = own.clone();
        all.fns.extend(generated.published);
        let wire = all.to_wire(false);
        let seed = quote!(#block #wire);
        published_tokens = published_macro(&all, &seed);
        republished = Some(all);
    }
    (quote!(#block #published_tokens), republished, errors)
}

/// The expansion of `__proxy_expand!`, the callback the published macro invokes.
pub(crate) fn proxy_expand(input: TokenStream) -> syn::Result<TokenStream> {
    let CallbackInput {
        signatures,
        request,
    } = syn::parse2(input)?;
    let (generated, _, errors) = expand_request(&request, &signatures);
    let bare = bare_path(&request.target);
    let marker = &request.marker;
    // Implemented for every instance of a generic target (with the target's own bounds):
    // the marker only proves that the target published its signatures.
    let marker_impl = match proof_name(&request) {
        Some(proof) => quote!(impl #marker for #proof {}),
        None => quote!(impl #marker for #bare {}),
    };
    Ok(quote! {
        #[automatically_derived]
        #marker_impl
        #errors
        #generated
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_carries_names_and_accessors() {
        let parsed = parse(
            quote!(a::Target, methods(x), accessor_mut = get_mut),
            quote!(
                impl<T> W<T> {
                    fn proxied(&self) -> &a::Target {
                        loop {}
                    }
                }
            ),
        )
        .expect("parses");
        assert!(parsed.errors.is_empty());
        let req = parsed.request.expect("request");
        assert!(req.accessor.available, "proxied is defined in the block");
        assert_eq!(req.accessor_mut.name, "get_mut");
        assert!(req.wrapper.items.is_empty());
        assert_eq!(req.wrapper.self_ty.to_token_stream().to_string(), "W < T >");
    }

    #[test]
    fn expansion_calls_the_targets_macro() {
        let out = proxy_methods(quote!(a::Target, methods(x)), quote!(impl W {}))
            .expect("ok")
            .to_string();
        assert!(out.starts_with("impl W { }"), "{out}");
        assert!(
            out.contains(
                "a :: Target ! { @ proxy_methods { callback = :: session_macros :: __proxy_expand ;"
            ),
            "{out}"
        );
        assert!(
            out.contains("__session_proxy_published :: < a :: Target >"),
            "{out}"
        );
        assert!(out.contains("accessor = proxied false ;"), "{out}");
        assert!(
            out.contains("has no published signatures")
                && out.contains("the error \\\"cannot find macro `Target`\\\" beside this one"),
            "{out}"
        );
    }

    #[test]
    fn argument_errors_keep_the_item_and_the_call() {
        let out = proxy_methods(quote!(Target, method(x), methods(y)), quote!(impl W {}))
            .expect("ok")
            .to_string();
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.contains("methods (y)"), "{out}");
        let out = proxy_methods(quote!(), quote!(impl W {}))
            .expect("ok")
            .to_string();
        assert!(
            out.starts_with("impl W { }")
                && out.contains("compile_error")
                && !out.contains("proxy_methods {")
        );
    }

    #[test]
    fn trait_impls_are_rejected() {
        let err = proxy_methods(quote!(T), quote!(impl Clone for W {})).expect_err("error");
        assert!(err.to_string().contains("inherent"));
    }

    #[test]
    fn callback_generates_and_reports() {
        let out = proxy_expand(quote! {
            @signatures { target = Counter; generics {} private(); fns { fn get(&self) -> i64; } }
            @request {
                target = Counter; wrapper = impl W {} marker = M;
                accessor = proxied true; accessor_mut = proxied_mut false;
                methods(get, gett) attributes() classmethods()
            }
        })
        .expect("expands")
        .to_string();
        assert!(
            out.starts_with("# [automatically_derived] impl M for Counter { }"),
            "{out}"
        );
        assert!(out.contains("did you mean `get`?"), "{out}");
        assert!(out.contains("pub fn get (& self) -> i64"), "{out}");
    }
}
