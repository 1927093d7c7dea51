//! `#[publish_signatures]`: re-emit the target's impl block and publish its `pub fn`
//! signatures as a hidden `macro_rules!` reachable through the same path as the type.

use std::hash::{DefaultHasher, Hash, Hasher};

use proc_macro2::TokenStream;
use quote::{ToTokens, format_ident, quote};
use syn::{Attribute, ItemImpl, parse_quote};

use crate::signatures::Signatures;

/// The last segment of an attribute's path (`proxy_methods` for
/// `#[session_macros::proxy_methods(...)]`).
pub(crate) fn attr_name(attr: &Attribute) -> Option<String> {
    attr.path().segments.last().map(|s| s.ident.to_string())
}

/// A stable 64-bit hash of `text`, used to make the hidden macro's name unique crate-wide.
pub(crate) fn hash(text: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// The expansion of `#[publish_signatures]` on `item`.
pub(crate) fn publish_signatures(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut item: ItemImpl = syn::parse2(item)?;
    if !attr.is_empty() {
        return Err(syn::Error::new_spanned(
            attr,
            "#[publish_signatures] takes no arguments",
        ));
    }
    // Above `#[proxy_methods]`: let that one run first; it publishes the generated members
    // together with this block's own (see `proxy_methods`).
    if let Some(pos) = item
        .attrs
        .iter()
        .position(|a| attr_name(a).as_deref() == Some("proxy_methods"))
    {
        item.attrs.insert(
            pos + 1,
            parse_quote!(#[::session_macros::publish_signatures]),
        );
        return Ok(item.into_token_stream());
    }
    let seed = item.to_token_stream().to_string();
    Ok(match Signatures::from_impl(&mut item) {
        Ok(sigs) => {
            let published = published_macro(&sigs, &seed);
            quote!(#item #published)
        }
        Err(errors) => {
            let errors = errors.to_compile_error();
            quote!(#item #errors)
        }
    })
}

/// The hidden macro carrying `sigs`, and the `pub use` that names it like the type.
///
/// `#[macro_export]` puts the macro at the crate root under a unique name (the target's name
/// and a hash of `seed`); the `pub use ... as Target;` beside the impl block gives it a second
/// name in the macro namespace of the type's module, so any path that reaches the type
/// (`crate::a::Target`, `other_crate::Target`, an imported `Target`) reaches the macro too.
/// It is never named through the crate root, which rustc forbids for macro-expanded
/// `#[macro_export]` macros.
pub(crate) fn published_macro(sigs: &Signatures, seed: &str) -> TokenStream {
    let target = &sigs.target;
    let name = format_ident!("__session_proxy_sig_{}_{:016x}", target, hash(seed));
    let wire = sigs.to_wire(true);
    quote! {
        #[doc(hidden)]
        #[macro_export]
        macro_rules! #name {
            (@proxy_methods { callback = $callback:path; $($request:tt)* }) => {
                $callback! { @signatures { #wire } @request { $($request)* } }
            };
        }
        #[doc(hidden)]
        #[allow(unused_imports, unreachable_pub)]
        pub use #name as #target;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_and_strips_helpers() {
        let out = publish_signatures(
            TokenStream::new(),
            quote! {
                impl Counter {
                    #[proxy(attribute)]
                    pub fn value(&self) -> crate::Value { loop {} }
                }
            },
        )
        .expect("expands")
        .to_string();
        assert!(
            out.contains("macro_rules ! __session_proxy_sig_Counter_"),
            "{out}"
        );
        assert!(
            out.contains("pub use __session_proxy_sig_Counter_"),
            "{out}"
        );
        assert!(out.contains("as Counter ;"), "{out}");
        assert!(out.contains("$ crate :: Value"), "{out}");
        let impl_part = &out[..out.find("macro_rules").expect("macro")];
        assert!(!impl_part.contains("proxy"), "helper stripped: {impl_part}");
    }

    #[test]
    fn defers_to_proxy_methods_when_above_it() {
        let out = publish_signatures(
            TokenStream::new(),
            quote! {
                #[proxy_methods(T, methods(a))]
                impl W { fn proxied(&self) -> &T { &self.0 } }
            },
        )
        .expect("expands")
        .to_string();
        assert!(
            out.starts_with(
                "# [proxy_methods (T , methods (a))] # [:: session_macros :: publish_signatures]"
            ),
            "{out}"
        );
    }

    #[test]
    fn errors_keep_the_stripped_item() {
        let out = publish_signatures(
            TokenStream::new(),
            quote!(impl Counter { #[proxy(atribute)] pub fn v(&self) {} }),
        )
        .expect("expands")
        .to_string();
        assert!(out.contains("compile_error"), "{out}");
        assert!(
            out.starts_with("impl Counter { pub fn v (& self) { } }"),
            "{out}"
        );
    }

    #[test]
    fn arguments_are_rejected() {
        let err = publish_signatures(quote!(x), quote!(impl C {})).expect_err("error");
        assert!(err.to_string().contains("takes no arguments"));
    }
}
