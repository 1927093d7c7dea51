//! The request `#[proxy_methods]` sends through the target's published macro, and the input
//! the callback (`__proxy_expand!`) receives back.
//!
//! `#[proxy_methods(Target, ...)]` expands to
//!
//! ```text
//! Target! { @proxy_methods { callback = ::session_macros::__proxy_expand; <request> } }
//! ```
//!
//! and the published macro answers with
//!
//! ```text
//! ::session_macros::__proxy_expand! { @signatures { <signatures> } @request { <request> } }
//! ```
//!
//! where `<request>` is
//!
//! ```text
//! target = path::to::Target;
//! wrapper = impl<'a, T> Wrapper<'a, T> where T: Send {}
//! marker = __SessionProxyPublished1a2b;
//! accessor = proxied true;          // the accessor's name, and whether it can be called
//! accessor_mut = proxied_mut false;
//! methods(a, b) attributes(x) classmethods(c)
//! publish { <signatures> }          // only when the wrapper publishes its own signatures
//! ```
//!
//! All names keep the spans of the user's tokens, so errors point at them.

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Ident, ItemImpl, LitBool, Path, Token};

use crate::attr::Blocking;
use crate::signatures::{Signatures, keyword};

/// The path of the callback proc macro, as written in every request.
pub(crate) fn callback_path() -> TokenStream {
    quote!(::session_macros::__proxy_expand)
}

/// A method of the wrapper that reaches the target.
#[derive(Clone)]
pub(crate) struct Accessor {
    /// The method's name.
    pub(crate) name: Ident,
    /// Named explicitly (`accessor = name`) or defined in the wrapper's impl block.
    pub(crate) available: bool,
}

/// What the user asked `#[proxy_methods]` for, after parsing.
#[derive(Clone)]
pub(crate) struct Request {
    /// The target type as the user wrote it.
    pub(crate) target: Path,
    /// The wrapper's impl header (generics, self type, where clause) with no items.
    pub(crate) wrapper: ItemImpl,
    /// The name of the marker trait that proves the target published its signatures.
    pub(crate) marker: Ident,
    /// How `&self` methods reach the target.
    pub(crate) accessor: Accessor,
    /// How `&mut self` methods reach the target.
    pub(crate) accessor_mut: Accessor,
    /// `methods(...)`.
    pub(crate) methods: Vec<Ident>,
    /// `attributes(...)`.
    pub(crate) attributes: Vec<Ident>,
    /// `classmethods(...)`.
    pub(crate) classmethods: Vec<Ident>,
    /// `blocking(...)`: async target members become synchronous ones.
    pub(crate) blocking: Option<Blocking>,
    /// The wrapper's own signatures, when it also carries `#[publish_signatures]`: the
    /// generated members are then published together with them.
    pub(crate) publish: Option<Signatures>,
}

impl Request {
    /// The wire format.
    pub(crate) fn to_wire(&self) -> TokenStream {
        let Request {
            target,
            wrapper,
            marker,
            methods,
            attributes,
            classmethods,
            ..
        } = self;
        let (acc, acc_ok) = (&self.accessor.name, self.accessor.available);
        let (acc_mut, acc_mut_ok) = (&self.accessor_mut.name, self.accessor_mut.available);
        let publish = self.publish.as_ref().map(|s| {
            let wire = s.to_wire(false);
            quote!(publish { #wire })
        });
        let blocking = self.blocking.as_ref().map(|b| {
            let block_on = &b.block_on;
            let error = b.error.as_ref().map(|e| quote!(error = #e;));
            quote!(blocking { block_on = #block_on; #error })
        });
        quote! {
            target = #target;
            wrapper = #wrapper
            marker = #marker;
            accessor = #acc #acc_ok;
            accessor_mut = #acc_mut #acc_mut_ok;
            methods(#(#methods),*)
            attributes(#(#attributes),*)
            classmethods(#(#classmethods),*)
            #blocking
            #publish
        }
    }
}

impl Parse for Request {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        keyword(input, "target")?;
        input.parse::<Token![=]>()?;
        let target: Path = input.parse()?;
        input.parse::<Token![;]>()?;
        keyword(input, "wrapper")?;
        input.parse::<Token![=]>()?;
        let wrapper: ItemImpl = input.parse()?;
        keyword(input, "marker")?;
        input.parse::<Token![=]>()?;
        let marker: Ident = input.parse()?;
        input.parse::<Token![;]>()?;
        let accessor = parse_accessor(input, "accessor")?;
        let accessor_mut = parse_accessor(input, "accessor_mut")?;
        let methods = parse_list(input, "methods")?;
        let attributes = parse_list(input, "attributes")?;
        let classmethods = parse_list(input, "classmethods")?;
        let blocking = if input.peek(Ident) && input.fork().parse::<Ident>()? == "blocking" {
            keyword(input, "blocking")?;
            let content;
            syn::braced!(content in input);
            keyword(&content, "block_on")?;
            content.parse::<Token![=]>()?;
            let block_on: Ident = content.parse()?;
            content.parse::<Token![;]>()?;
            let error = if content.is_empty() {
                None
            } else {
                keyword(&content, "error")?;
                content.parse::<Token![=]>()?;
                let error: Path = content.parse()?;
                content.parse::<Token![;]>()?;
                Some(error)
            };
            Some(Blocking { block_on, error })
        } else {
            None
        };
        let publish = if input.is_empty() {
            None
        } else {
            keyword(input, "publish")?;
            let content;
            syn::braced!(content in input);
            Some(content.parse()?)
        };
        Ok(Request {
            target,
            wrapper,
            marker,
            accessor,
            accessor_mut,
            methods,
            attributes,
            classmethods,
            blocking,
            publish,
        })
    }
}

fn parse_accessor(input: ParseStream<'_>, word: &str) -> syn::Result<Accessor> {
    keyword(input, word)?;
    input.parse::<Token![=]>()?;
    let name: Ident = input.parse()?;
    let available: LitBool = input.parse()?;
    input.parse::<Token![;]>()?;
    Ok(Accessor {
        name,
        available: available.value,
    })
}

fn parse_list(input: ParseStream<'_>, word: &str) -> syn::Result<Vec<Ident>> {
    keyword(input, word)?;
    let content;
    syn::parenthesized!(content in input);
    Ok(Punctuated::<Ident, Token![,]>::parse_terminated(&content)?
        .into_iter()
        .collect())
}

/// What the callback receives: the target's signatures and the user's request.
pub(crate) struct CallbackInput {
    /// The target's published signatures.
    pub(crate) signatures: Signatures,
    /// The user's request.
    pub(crate) request: Request,
}

impl Parse for CallbackInput {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        // The main block's signatures, then those of each further part, in chain order.
        let mut signatures: Option<Signatures> = None;
        loop {
            input.parse::<Token![@]>()?;
            let word: Ident = input.parse()?;
            if word == "request" {
                break;
            }
            if word != "signatures" {
                return Err(syn::Error::new(
                    word.span(),
                    "expected `signatures` or `request`",
                ));
            }
            let content;
            syn::braced!(content in input);
            let part: Signatures = content.parse()?;
            match &mut signatures {
                None => signatures = Some(part),
                Some(all) => {
                    let from_trait = part.fns.iter().find_map(|f| f.from_trait.clone());
                    all.merge(part, from_trait);
                }
            }
        }
        let signatures = signatures.ok_or_else(|| input.error("expected `@signatures { ... }`"))?;
        let content;
        syn::braced!(content in input);
        let request = content.parse()?;
        Ok(CallbackInput {
            signatures,
            request,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips() {
        let wire = quote! {
            target = crate::t::Target;
            wrapper = impl<'a, T> Wrapper<'a, T> where T: Send {}
            marker = M;
            accessor = proxied true;
            accessor_mut = proxied_mut false;
            methods(a, b)
            attributes()
            classmethods(c,)
        };
        let req: Request = syn::parse2(wire).expect("parses");
        assert_eq!(req.methods.len(), 2);
        assert!(req.attributes.is_empty());
        assert_eq!(req.classmethods[0], "c");
        assert!(req.accessor.available && !req.accessor_mut.available);
        assert!(req.publish.is_none());
        let again: Request = syn::parse2(req.to_wire()).expect("round trip");
        assert_eq!(again.to_wire().to_string(), req.to_wire().to_string());
    }

    #[test]
    fn callback_input_parses() {
        let input = quote! {
            @signatures { target = T; generics {} private(); fns { fn a(&self); } }
            @request {
                target = T; wrapper = impl W {} marker = M;
                accessor = proxied true; accessor_mut = proxied_mut true;
                methods(a) attributes() classmethods()
                publish { target = W; generics {} private(p); fns {} }
            }
        };
        let parsed: CallbackInput = syn::parse2(input).expect("parses");
        assert_eq!(parsed.signatures.fns.len(), 1);
        assert!(parsed.request.publish.expect("publish").is_private("p"));
    }
}
