//! The published signatures of a target: what `#[publish_signatures]` reads from an
//! `impl Target { ... }` block, how they travel inside the hidden `macro_rules!`, and how the
//! callback reads them back.
//!
//! Wire format (inside the published macro, after `@signatures`):
//!
//! ```text
//! target = Counter;
//! generics { <T: Entity> where T: Send }
//! private(helper, other);
//! fns {
//!     #[doc = " Adds one."] fn increment(&mut self) -> i64;
//!     #[proxy(attribute)] #[doc = " The name."] fn name(&self) -> &str;
//! }
//! ```

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Attribute, FnArg, GenericArgument, GenericParam, Generics, Ident, ImplItem, ItemImpl,
    PathArguments, Signature, Token, TraitItemFn, Type,
};

/// The name of the inert helper attribute on a target's getters: `#[proxy(attribute)]`.
pub(crate) const HELPER: &str = "proxy";

/// How a target fn takes `self`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Receiver {
    /// No receiver: an associated fn (SQLAlchemy's classmethod).
    None,
    /// `&self`.
    Ref,
    /// `&mut self`.
    Mut,
    /// `self`, `mut self`, `self: Box<Self>` and other receivers a proxy cannot forward.
    Unsupported,
}

/// One public fn of the target.
#[derive(Clone)]
pub(crate) struct PubFn {
    /// The fn's `#[doc]` and `#[cfg]` attributes, in order.
    pub(crate) attrs: Vec<Attribute>,
    /// The trait, when the fn comes from a published `impl Trait for Target` part: never
    /// proxied, named in the error that says so.
    pub(crate) from_trait: Option<syn::Path>,
    /// Marked `#[proxy(attribute)]`: a getter, proxied under `attributes(...)`.
    pub(crate) is_attribute: bool,
    /// The signature, verbatim.
    pub(crate) sig: Signature,
}

impl PubFn {
    /// The fn's name.
    pub(crate) fn name(&self) -> &Ident {
        &self.sig.ident
    }

    /// How the fn takes `self`.
    pub(crate) fn receiver(&self) -> Receiver {
        receiver_of(&self.sig)
    }

    /// Whether this fn has the shape of a setter: a receiver and exactly one other argument.
    pub(crate) fn is_setter_shaped(&self) -> bool {
        matches!(self.receiver(), Receiver::Ref | Receiver::Mut) && self.sig.inputs.len() == 2
    }
}

/// How `sig` takes `self`.
pub(crate) fn receiver_of(sig: &Signature) -> Receiver {
    let Some(FnArg::Receiver(receiver)) = sig.inputs.first() else {
        return Receiver::None;
    };
    match &*receiver.ty {
        Type::Reference(reference) if is_self_type(&reference.elem) => {
            if reference.mutability.is_some() {
                Receiver::Mut
            } else {
                Receiver::Ref
            }
        }
        _ => Receiver::Unsupported,
    }
}

fn is_self_type(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.is_ident("Self"))
}

/// Everything a target publishes.
#[derive(Clone)]
pub(crate) struct Signatures {
    /// The target type's name (the last segment of the impl's self type).
    pub(crate) target: Ident,
    /// The impl block's generic parameters and where clause (`impl<T: Entity> Repo<T>`);
    /// the self type lists the parameters in this order.
    pub(crate) generics: Generics,
    /// Names of the impl block's fns that are not `pub` (so that listing one gets a precise
    /// error instead of "no such method").
    pub(crate) private: Vec<Ident>,
    /// The `pub` fns, in source order.
    pub(crate) fns: Vec<PubFn>,
}

impl Signatures {
    /// Reads the signatures of an inherent impl block and strips the inert
    /// `#[proxy(...)]` helpers from it. Every mistake is collected into one error.
    pub(crate) fn from_impl(item: &mut ItemImpl) -> syn::Result<Self> {
        let mut errors = Errors::default();
        let from_trait = item.trait_.as_ref().map(|(_, path, _)| path.clone());
        if let Err(e) = check_self_args(item) {
            errors.push(e);
        }
        let target = match self_type_ident(&item.self_ty) {
            Some(ident) => ident,
            None => {
                errors.push(syn::Error::new_spanned(
                    &item.self_ty,
                    "#[publish_signatures] needs a named type: `impl Type { ... }`",
                ));
                Ident::new("Unknown", item.self_ty.span())
            }
        };
        let mut fns = Vec::new();
        let mut private = Vec::new();
        for impl_item in &mut item.items {
            let ImplItem::Fn(f) = impl_item else { continue };
            let mut is_attribute = false;
            let mut kept = Vec::with_capacity(f.attrs.len());
            for attr in f.attrs.drain(..) {
                if attr.path().is_ident(HELPER) {
                    match parse_helper(&attr) {
                        Ok(()) => is_attribute = true,
                        Err(e) => errors.push(e),
                    }
                } else {
                    kept.push(attr);
                }
            }
            f.attrs = kept;
            // A trait impl's fns are as public as the trait.
            let public = from_trait.is_some() || matches!(f.vis, syn::Visibility::Public(_));
            if !public {
                if is_attribute {
                    errors.push(syn::Error::new_spanned(
                        &f.sig.ident,
                        format!(
                            "`#[proxy(attribute)]` on `{}`, which is not `pub`; only `pub fn`s are published",
                            f.sig.ident
                        ),
                    ));
                }
                private.push(f.sig.ident.clone());
                continue;
            }
            if is_attribute && (receiver_of(&f.sig) != Receiver::Ref || f.sig.inputs.len() != 1) {
                errors.push(syn::Error::new_spanned(
                    &f.sig.ident,
                    format!(
                        "`#[proxy(attribute)]` marks a getter: `pub fn {}(&self) -> T`, with no other argument",
                        f.sig.ident
                    ),
                ));
            }
            let attrs = f
                .attrs
                .iter()
                .filter(|a| is_forwarded_attr(a))
                .cloned()
                .collect();
            fns.push(PubFn {
                attrs,
                from_trait: from_trait.clone(),
                is_attribute,
                sig: f.sig.clone(),
            });
        }
        errors.finish()?;
        Ok(Signatures {
            target,
            generics: item.generics.clone(),
            private,
            fns,
        })
    }

    /// The names of the impl block's generic parameters (`'a`, `T`, `N`), in order.
    pub(crate) fn param_names(&self) -> Vec<String> {
        self.generics.params.iter().map(param_name).collect()
    }

    /// The pub fn called `name`, if any.
    pub(crate) fn get(&self, name: &str) -> Option<&PubFn> {
        self.fns
            .iter()
            .find(|f| f.name() == name && f.from_trait.is_none())
            .or_else(|| self.fns.iter().find(|f| f.name() == name))
    }

    /// Appends a further published part (another `impl Target` block, or an
    /// `impl Trait for Target` one) to these signatures.
    pub(crate) fn merge(&mut self, part: Signatures, from_trait: Option<syn::Path>) {
        self.private.extend(part.private);
        self.fns.extend(part.fns.into_iter().map(|mut f| {
            f.from_trait = from_trait.clone();
            f
        }));
    }

    /// Whether `name` is a private fn of the target's published impl block.
    pub(crate) fn is_private(&self, name: &str) -> bool {
        self.private.iter().any(|p| p == name)
    }

    /// The setter of attribute `name`: `set_<name>` with a receiver and one argument.
    pub(crate) fn setter_of(&self, name: &str) -> Option<&PubFn> {
        self.get(&format!("set_{name}"))
            .filter(|f| f.is_setter_shaped())
    }

    /// The wire format. With `dollar_crate`, a path segment `crate` becomes `$crate`, so that
    /// `crate::` paths in signatures resolve to the target's crate wherever the published
    /// macro is expanded (only meaningful inside a `macro_rules!` body).
    pub(crate) fn to_wire(&self, dollar_crate: bool) -> TokenStream {
        let target = &self.target;
        let private = &self.private;
        let fns = self.fns.iter().map(|f| {
            let attrs = &f.attrs;
            let helper = f.is_attribute.then(|| quote!(#[proxy(attribute)]));
            let sig = &f.sig;
            quote!(#helper #(#attrs)* #sig;)
        });
        let fns: TokenStream = fns.collect();
        let fns = if dollar_crate {
            dollar_crate_paths(fns)
        } else {
            fns
        };
        let params = &self.generics;
        let where_clause = &self.generics.where_clause;
        let generics = quote!(#params #where_clause);
        let generics = if dollar_crate {
            dollar_crate_paths(generics)
        } else {
            generics
        };
        let from_trait = self
            .fns
            .iter()
            .find_map(|f| f.from_trait.as_ref())
            .map(|t| quote!(trait = #t;));
        quote! {
            target = #target;
            generics { #generics }
            #from_trait
            private(#(#private),*);
            fns { #fns }
        }
    }
}

impl Parse for Signatures {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        keyword(input, "target")?;
        input.parse::<Token![=]>()?;
        let target: Ident = input.parse()?;
        input.parse::<Token![;]>()?;
        keyword(input, "generics")?;
        let content;
        syn::braced!(content in input);
        let mut generics: Generics = content.parse()?;
        generics.where_clause = content.parse()?;
        let from_trait = if input.peek(Token![trait]) {
            input.parse::<Token![trait]>()?;
            input.parse::<Token![=]>()?;
            let path: syn::Path = input.parse()?;
            input.parse::<Token![;]>()?;
            Some(path)
        } else {
            None
        };
        keyword(input, "private")?;
        let content;
        syn::parenthesized!(content in input);
        let private = Punctuated::<Ident, Token![,]>::parse_terminated(&content)?;
        input.parse::<Token![;]>()?;
        keyword(input, "fns")?;
        let content;
        syn::braced!(content in input);
        let mut fns = Vec::new();
        while !content.is_empty() {
            let mut f: TraitItemFn = content.parse()?;
            let before = f.attrs.len();
            f.attrs.retain(|a| !a.path().is_ident(HELPER));
            let is_attribute = f.attrs.len() != before;
            fns.push(PubFn {
                attrs: f.attrs,
                from_trait: from_trait.clone(),
                is_attribute,
                sig: f.sig,
            });
        }
        Ok(Signatures {
            target,
            generics,
            private: private.into_iter().collect(),
            fns,
        })
    }
}

/// Parses the identifier `word` (a contextual keyword of the wire formats).
pub(crate) fn keyword(input: ParseStream<'_>, word: &str) -> syn::Result<Ident> {
    let ident: Ident = input.parse()?;
    if ident == word {
        Ok(ident)
    } else {
        Err(syn::Error::new(ident.span(), format!("expected `{word}`")))
    }
}

/// Attributes that travel with a published fn to every proxied member: docs (with
/// `#[doc(alias)]`), cfgs, `#[must_use]`, `#[deprecated]` and `#[track_caller]`.
pub(crate) const FORWARDED: [&str; 5] = ["doc", "cfg", "must_use", "deprecated", "track_caller"];

/// Whether `attr` travels with a published fn (see [`FORWARDED`]).
pub(crate) fn is_forwarded_attr(attr: &Attribute) -> bool {
    FORWARDED.iter().any(|name| attr.path().is_ident(name))
}

/// The name of a generic parameter as written (`'a`, `T`, `N`).
pub(crate) fn param_name(param: &GenericParam) -> String {
    match param {
        GenericParam::Lifetime(l) => l.lifetime.to_string(),
        GenericParam::Type(t) => t.ident.to_string(),
        GenericParam::Const(c) => c.ident.to_string(),
    }
}

/// A generic target's self type must list the impl's parameters, in order
/// (`impl<'a, T: Entity> Repo<'a, T>`), so that a wrapper's `Repo<'x, U>` maps onto them.
fn check_self_args(item: &ItemImpl) -> syn::Result<()> {
    let params: Vec<String> = item.generics.params.iter().map(param_name).collect();
    let args: Vec<String> = match &*item.self_ty {
        Type::Path(p) => match p.path.segments.last().map(|s| &s.arguments) {
            Some(PathArguments::AngleBracketed(a)) => a
                .args
                .iter()
                .map(|arg| match arg {
                    GenericArgument::Lifetime(l) => l.to_string(),
                    other => quote!(#other).to_string(),
                })
                .collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    if params == args {
        return Ok(());
    }
    let shown = params.join(", ");
    Err(syn::Error::new_spanned(
        &item.self_ty,
        format!(
            "#[publish_signatures] needs the self type to list the impl's generic parameters in order: \
             `impl<{shown}> {}<{shown}>`",
            self_type_ident(&item.self_ty)
                .map(|i| i.to_string())
                .unwrap_or_default()
        ),
    ))
}

/// `#[proxy(attribute)]` is the only accepted form.
fn parse_helper(attr: &Attribute) -> syn::Result<()> {
    let inner: Ident = attr
        .parse_args()
        .map_err(|_| syn::Error::new_spanned(attr, "expected `#[proxy(attribute)]`"))?;
    if inner == "attribute" {
        Ok(())
    } else {
        Err(syn::Error::new(
            inner.span(),
            format!("unknown `#[proxy({inner})]`; the only helper is `#[proxy(attribute)]`"),
        ))
    }
}

/// The last segment of a path type, e.g. `Counter` for `crate::a::Counter`.
pub(crate) fn self_type_ident(ty: &Type) -> Option<Ident> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().map(|s| s.ident.clone()),
        Type::Group(g) => self_type_ident(&g.elem),
        Type::Paren(p) => self_type_ident(&p.elem),
        _ => None,
    }
}

/// Inserts `$` before every `crate` identifier (in signatures, `crate` only starts paths).
fn dollar_crate_paths(tokens: TokenStream) -> TokenStream {
    let mut out = TokenStream::new();
    let mut prev_dollar = false;
    for tt in tokens {
        match &tt {
            TokenTree::Ident(ident) if ident == "crate" && !prev_dollar => {
                out.extend([TokenTree::Punct(proc_macro2::Punct::new(
                    '$',
                    proc_macro2::Spacing::Alone,
                ))]);
                out.extend([tt]);
                prev_dollar = false;
                continue;
            }
            TokenTree::Group(group) => {
                let mut new =
                    proc_macro2::Group::new(group.delimiter(), dollar_crate_paths(group.stream()));
                new.set_span(group.span());
                out.extend([TokenTree::Group(new)]);
                prev_dollar = false;
                continue;
            }
            TokenTree::Punct(p) => prev_dollar = p.as_char() == '$',
            _ => prev_dollar = false,
        }
        out.extend([tt]);
    }
    out
}

/// Collects errors and joins them with [`syn::Error::combine`], so that one compile reports
/// every mistake.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    /// Adds one error.
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// Adds an error at `span`.
    pub(crate) fn at(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }

    /// `Err` with every collected error, or `Ok` when there was none.
    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }

    /// Whether no error was collected.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The collected messages, in order.
    #[cfg(test)]
    pub(crate) fn messages(&self) -> Vec<String> {
        self.0
            .iter()
            .flat_map(|e| e.into_iter().map(|e| e.to_string()))
            .collect()
    }

    /// The collected errors as `compile_error!` invocations (empty when there are none).
    pub(crate) fn to_compile_errors(&self) -> TokenStream {
        self.0
            .as_ref()
            .map(syn::Error::to_compile_error)
            .unwrap_or_default()
    }
}

impl ToTokens for Errors {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        tokens.extend(self.to_compile_errors());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sigs(item: TokenStream) -> syn::Result<(Signatures, ItemImpl)> {
        let mut item: ItemImpl = syn::parse2(item)?;
        let sigs = Signatures::from_impl(&mut item)?;
        Ok((sigs, item))
    }

    #[test]
    fn reads_pub_fns_attributes_and_private_names() {
        let (s, item) = sigs(quote! {
            impl Counter {
                /// Adds one.
                #[inline]
                pub fn increment(&mut self) -> i64 { 1 }
                #[proxy(attribute)]
                pub fn name(&self) -> &str { "" }
                pub fn set_name(&mut self, name: String) {}
                pub fn new() -> Self { Counter }
                fn helper(&self) {}
                pub(crate) fn internal(&self) {}
            }
        })
        .expect("valid impl");
        assert_eq!(s.target, "Counter");
        let names: Vec<String> = s.fns.iter().map(|f| f.name().to_string()).collect();
        assert_eq!(names, ["increment", "name", "set_name", "new"]);
        assert_eq!(s.private.len(), 2);
        assert!(s.is_private("helper") && s.is_private("internal"));
        let inc = s.get("increment").expect("increment");
        assert_eq!(inc.receiver(), Receiver::Mut);
        assert_eq!(inc.attrs.len(), 1, "the doc is kept, #[inline] is not");
        assert!(s.get("name").expect("name").is_attribute);
        assert!(s.setter_of("name").is_some());
        assert_eq!(s.get("new").expect("new").receiver(), Receiver::None);
        let stripped = item.to_token_stream().to_string();
        assert!(!stripped.contains("proxy"), "helper stripped: {stripped}");
    }

    #[test]
    fn wire_format_round_trips() {
        let (s, _) = sigs(quote! {
            impl T {
                #[proxy(attribute)]
                pub fn a(&self) -> crate::X { loop {} }
                pub async fn b<'a, U: Into<i64>>(&'a self, u: U, v: impl Fn()) -> &'a str where U: Copy { "" }
                fn c(&self) {}
            }
        })
        .expect("valid impl");
        let back: Signatures = syn::parse2(s.to_wire(false)).expect("parses back");
        assert_eq!(back.target, "T");
        assert_eq!(back.fns.len(), 2);
        assert!(back.fns[0].is_attribute);
        assert!(back.fns[1].sig.asyncness.is_some());
        assert!(back.is_private("c"));
        let dollar = s.to_wire(true).to_string();
        assert!(dollar.contains("$ crate :: X"), "{dollar}");
    }

    #[test]
    fn collects_every_mistake() {
        let err = sigs(quote! {
            impl<T> Wrap<i32> {
                #[proxy(atribute)]
                pub fn a(&self) {}
                #[proxy(attribute)]
                pub fn b(&self, x: i32) -> i32 { x }
                #[proxy(attribute)]
                fn c(&self) {}
            }
        })
        .err()
        .expect("errors");
        let messages: Vec<String> = err.into_iter().map(|e| e.to_string()).collect();
        assert_eq!(messages.len(), 4, "{messages:#?}");
        assert!(
            messages[0].contains("list the impl's generic parameters in order"),
            "{}",
            messages[0]
        );
        assert!(messages[1].contains("unknown `#[proxy(atribute)]`"));
        assert!(messages[2].contains("marks a getter"));
        assert!(messages[3].contains("not `pub`"));
    }

    #[test]
    fn receivers() {
        let f: TraitItemFn = syn::parse_quote!(
            fn f(self: &Self);
        );
        assert_eq!(receiver_of(&f.sig), Receiver::Ref);
        let f: TraitItemFn = syn::parse_quote!(
            fn f(&'a mut self);
        );
        assert_eq!(receiver_of(&f.sig), Receiver::Mut);
        let f: TraitItemFn = syn::parse_quote!(
            fn f(self);
        );
        assert_eq!(receiver_of(&f.sig), Receiver::Unsupported);
        let f: TraitItemFn = syn::parse_quote!(
            fn f(self: Box<Self>);
        );
        assert_eq!(receiver_of(&f.sig), Receiver::Unsupported);
    }
}
