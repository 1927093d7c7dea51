//! `#[publish_signatures]`: re-emit the target's impl block and publish its `pub fn`
//! signatures as a hidden `macro_rules!` reachable through the same path as the type.

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote};
use syn::Ident;
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, ItemImpl, Path, Token, parse_quote};

use crate::scope::{module_name, resolve_at_target};
use crate::signatures::Signatures;

/// The last segment of an attribute's path (`proxy_methods` for
/// `#[session_macros::proxy_methods(...)]`).
pub(crate) fn attr_name(attr: &Attribute) -> Option<String> {
    attr.path().segments.last().map(|s| s.ident.to_string())
}

/// A 64-bit FNV-1a hash of `tokens`, used to make generated names unique crate-wide.
///
/// Deterministic and the same for the compiler and for `session-tools`: it reads the tokens'
/// text one by one (identifiers, punctuation, literals, delimiters), never the spacing of a
/// `to_string()` and never `std`'s `DefaultHasher`, whose output may change between Rust
/// releases.
pub(crate) fn hash(tokens: &TokenStream) -> u64 {
    fn feed(state: &mut u64, bytes: &[u8]) {
        for b in bytes {
            *state ^= u64::from(*b);
            *state = state.wrapping_mul(0x0100_0000_01b3);
        }
        *state ^= 0xff;
        *state = state.wrapping_mul(0x0100_0000_01b3);
    }
    fn walk(state: &mut u64, tokens: TokenStream) {
        for tt in tokens {
            match tt {
                TokenTree::Group(g) => {
                    let (open, close) = match g.delimiter() {
                        Delimiter::Parenthesis => ("(", ")"),
                        Delimiter::Brace => ("{", "}"),
                        Delimiter::Bracket => ("[", "]"),
                        Delimiter::None => ("", ""),
                    };
                    feed(state, open.as_bytes());
                    walk(state, g.stream());
                    feed(state, close.as_bytes());
                }
                TokenTree::Ident(i) => feed(state, i.to_string().as_bytes()),
                TokenTree::Punct(p) => feed(state, p.as_char().to_string().as_bytes()),
                TokenTree::Literal(l) => feed(state, l.to_string().as_bytes()),
            }
        }
    }
    let mut state = 0xcbf2_9ce4_8422_2325;
    walk(&mut state, tokens.clone());
    state
}

/// The arguments of `#[publish_signatures(scope = crate::path, parts(a, b), part = a)]`.
#[derive(Default)]
struct PublishArgs {
    /// The public path, from the crate root, of the module the impl block is in.
    scope: Option<Path>,
    /// On the main block: the further published blocks of the type, in order.
    parts: Vec<Ident>,
    /// On a further block: its name (listed in the main block's `parts(...)`).
    part: Option<Ident>,
}

const PUBLISH_USAGE: &str = "#[publish_signatures] takes optional arguments: `scope = crate::path::to::this_module`, \
     `parts(name, ...)` on a type's main block, `part = name` on each further block";

impl Parse for PublishArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = PublishArgs::default();
        while !input.is_empty() {
            let key: Ident = input
                .parse()
                .map_err(|e| syn::Error::new(e.span(), PUBLISH_USAGE))?;
            match key.to_string().as_str() {
                "scope" => {
                    input.parse::<Token![=]>()?;
                    let scope = Path::parse_mod_style(input)?;
                    let starts_at_root = scope.leading_colon.is_none()
                        && scope.segments.first().is_some_and(|s| s.ident == "crate");
                    if !starts_at_root {
                        return Err(syn::Error::new_spanned(
                            &scope,
                            "`scope` is this module's public path from the crate root: `crate` or `crate::a::b`",
                        ));
                    }
                    args.scope = Some(scope);
                }
                "parts" => {
                    let content;
                    syn::parenthesized!(content in input);
                    args.parts = content
                        .parse_terminated(Ident::parse, Token![,])?
                        .into_iter()
                        .collect();
                }
                "part" => {
                    input.parse::<Token![=]>()?;
                    args.part = Some(input.parse()?);
                }
                _ => return Err(syn::Error::new(key.span(), PUBLISH_USAGE)),
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        if let (Some(part), false) = (&args.part, args.parts.is_empty()) {
            return Err(syn::Error::new(
                part.span(),
                "a block is either the main one (`parts(...)`) or a further `part = name`, not both",
            ));
        }
        Ok(args)
    }
}

/// Rewrites `sigs` for the block's `scope` (if any) and returns the hidden alias module with
/// the check that the declared path reaches it.
fn scoped(sigs: &mut Signatures, args: &PublishArgs) -> Option<TokenStream> {
    let route = args.scope.as_ref()?;
    // A further part has an alias module of its own beside the main block's.
    let name = match &args.part {
        Some(part) => format_ident!("{}_{}", module_name(&sigs.target), part),
        None => module_name(&sigs.target),
    };
    let module = resolve_at_target(sigs, route, &name);
    // The declared path must reach this module's hidden module: a wrong `scope` is an
    // unresolved import at the user's token.
    Some(quote! {
        #module
        const _: () = {
            #[allow(unused_imports)]
            use #route::#name as _;
        };
    })
}

/// What one `#[publish_signatures(...)]` block publishes, for `session-tools`: its
/// signatures as a wrapper receives them (rewritten for its `scope`), the part it is (if it
/// is not the type's main block) and the main block's further parts, in order.
pub(crate) struct Published {
    /// The signatures.
    pub(crate) sigs: Signatures,
    /// `part = name`.
    pub(crate) part: Option<Ident>,
    /// `parts(...)`.
    pub(crate) parts: Vec<Ident>,
}

/// Reads a block as `#[publish_signatures(attr)]` would publish it.
pub(crate) fn read_published(attr: TokenStream, item: &ItemImpl) -> syn::Result<Published> {
    let args: PublishArgs = syn::parse2(attr)?;
    let mut sigs = Signatures::from_impl(&mut item.clone())?;
    scoped(&mut sigs, &args);
    Ok(Published {
        sigs,
        part: args.part,
        parts: args.parts,
    })
}

/// The `#[macro_export]` name of a further published block: crate-wide, from the type's and
/// the part's names.
fn part_macro(target: &Ident, part: &Ident) -> Ident {
    format_ident!("__session_proxy_part_{}_{}", target, part)
}

/// The expansion of `#[publish_signatures]` on `item`.
pub(crate) fn publish_signatures(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut item: ItemImpl = syn::parse2(item)?;
    let args: PublishArgs = syn::parse2(attr.clone())?;
    // Above `#[proxy_methods]`: let that one run first; it publishes the generated members
    // together with this block's own (see `proxy_methods`).
    if let Some(pos) = item
        .attrs
        .iter()
        .position(|a| attr_name(a).as_deref() == Some("proxy_methods"))
    {
        item.attrs.insert(
            pos + 1,
            parse_quote!(#[::session_macros::publish_signatures(#attr)]),
        );
        return Ok(item.into_token_stream());
    }
    let seed = item.to_token_stream();
    Ok(match Signatures::from_impl(&mut item) {
        Ok(mut sigs) => {
            let route = args.scope.clone();
            let scope = scoped(&mut sigs, &args);
            let published = match &args.part {
                Some(part) => part_macro_tokens(&sigs, part),
                None => chained_macro(&sigs, &seed, &args.parts, route.as_ref()),
            };
            quote!(#item #scope #published)
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
pub(crate) fn published_macro(sigs: &Signatures, seed: &TokenStream) -> TokenStream {
    chained_macro(sigs, seed, &[], None)
}

/// [`published_macro`], passing the signatures on to the type's further parts first. The
/// parts are reached through `scope` (the main block's module, where the parts live) when
/// given, else at the crate root (which only other crates may do).
fn chained_macro(
    sigs: &Signatures,
    seed: &TokenStream,
    parts: &[Ident],
    scope: Option<&Path>,
) -> TokenStream {
    let target = &sigs.target;
    let name = format_ident!("__session_proxy_sig_{}_{:016x}", target, hash(seed));
    let wire = sigs.to_wire(true);
    let body = match parts.split_first() {
        None => quote!($callback! { @signatures { #wire } @request { $($request)* } }),
        Some((first, rest)) => {
            let route = |part: &Ident| match scope {
                Some(scope) => {
                    let at = format_ident!("{}_at", part_macro(target, part));
                    let rest: Vec<_> = scope.segments.iter().skip(1).collect();
                    quote!($crate #(::#rest)* :: #at)
                }
                None => {
                    let name = part_macro(target, part);
                    quote!($crate::#name)
                }
            };
            let first = route(first);
            let rest = rest.iter().map(route);
            quote! {
                #first! {
                    @chain { next = [#(#rest),*]; callback = $callback; }
                    @signatures { #wire }
                    @request { $($request)* }
                }
            }
        }
    };
    quote! {
        #[doc(hidden)]
        #[macro_export]
        macro_rules! #name {
            (@proxy_methods { callback = $callback:path; $($request:tt)* }) => {
                #body
            };
        }
        #[doc(hidden)]
        #[allow(unused_imports, unreachable_pub)]
        pub use #name as #target;
    }
}

/// A further part's macro: appends its signatures and passes on to the next part or to the
/// callback; re-exported beside the block as `<name>_at`, the path the main block's macro
/// uses when it has a `scope` (the crate itself may not name a macro-expanded
/// `#[macro_export]` macro by its absolute path).
fn part_macro_tokens(sigs: &Signatures, part: &Ident) -> TokenStream {
    let name = part_macro(&sigs.target, part);
    let at = format_ident!("{}_at", name);
    let wire = sigs.to_wire(true);
    quote! {
        #[doc(hidden)]
        #[macro_export]
        macro_rules! #name {
            (@chain { next = [$next:path $(, $rest:path)*]; callback = $callback:path; }
             $(@signatures { $($sig:tt)* })* @request { $($request:tt)* }) => {
                $next! {
                    @chain { next = [$($rest),*]; callback = $callback; }
                    $(@signatures { $($sig)* })* @signatures { #wire } @request { $($request)* }
                }
            };
            (@chain { next = []; callback = $callback:path; }
             $(@signatures { $($sig:tt)* })* @request { $($request:tt)* }) => {
                $callback! { $(@signatures { $($sig)* })* @signatures { #wire } @request { $($request)* } }
            };
        }
        #[doc(hidden)]
        #[allow(unused_imports, unreachable_pub)]
        pub use #name as #at;
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
                "# [proxy_methods (T , methods (a))] # [:: session_macros :: publish_signatures ()]"
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
    fn arguments_are_checked() {
        let err = publish_signatures(quote!(x), quote!(impl C {})).expect_err("error");
        assert!(
            err.to_string().contains("takes optional arguments"),
            "{err}"
        );
        let err =
            publish_signatures(quote!(scope = self::a), quote!(impl C {})).expect_err("error");
        assert!(err.to_string().contains("from the crate root"), "{err}");
        let out = publish_signatures(
            quote!(scope = crate::a),
            quote!(impl C { pub fn f(&self) -> K { loop {} } }),
        )
        .expect("expands")
        .to_string();
        assert!(out.contains("pub mod __session_proxy_C"), "{out}");
        assert!(
            out.contains("use crate :: a :: __session_proxy_C as _ ;"),
            "{out}"
        );
        assert!(
            out.contains("-> $ crate :: a :: __session_proxy_C :: K"),
            "{out}"
        );
    }

    #[test]
    fn hash_ignores_spacing_and_is_fixed() {
        let a: TokenStream = "impl  A { fn f ( & self ) }".parse().expect("tokens");
        let b: TokenStream = "impl A{fn f(&self)}".parse().expect("tokens");
        assert_eq!(hash(&a), hash(&b));
        assert_ne!(hash(&a), hash(&quote!(impl B {})));
        // Fixed across releases and platforms: FNV-1a, no random or std-version-dependent state.
        assert_eq!(hash(&TokenStream::new()), 0xcbf2_9ce4_8422_2325);
    }
}
