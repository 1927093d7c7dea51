//! Writing the delegating members. Expansion never decides validity: it follows the plan
//! that `valid` produced.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::punctuated::Punctuated;
use syn::visit_mut::{self, VisitMut};
use syn::{
    Attribute, Expr, ExprLit, FnArg, GenericParam, Ident, ImplItem, ItemImpl, Lit, Meta, Pat, Path,
    ReturnType, Signature, Token, Type, TypePath, parse_quote,
};

use crate::attr::Blocking;
use crate::protocol::Request;
use crate::signatures::{PubFn, Receiver, Signatures, param_name, self_type_ident};
use crate::subst::{Substitution, extend_where};
use crate::valid::{Kind, Member};

/// The generated impl block and the signatures of its members (for re-publishing).
pub(crate) struct Generated {
    /// `#[automatically_derived] impl Wrapper { ... }`.
    pub(crate) block: ItemImpl,
    /// The generated members as published fns (docs already stacked).
    pub(crate) published: Vec<PubFn>,
}

/// Generates one member per planned entry, in plan order.
pub(crate) fn generate(req: &Request, sigs: &Signatures, members: &[Member<'_>]) -> Generated {
    let wrapper_name = self_type_ident(&req.wrapper.self_ty)
        .unwrap_or_else(|| Ident::new("Self", Span::call_site()));
    let subst = Substitution::new(sigs, &req.target);
    let mut items = Vec::with_capacity(members.len());
    let mut published = Vec::with_capacity(members.len());
    for member in members {
        let (item, public) = generate_member(req, &subst, &sigs.target, &wrapper_name, member);
        items.push(ImplItem::Verbatim(item));
        published.push(public);
    }
    let mut block = req.wrapper.clone();
    block.attrs = vec![parse_quote!(#[automatically_derived])];
    block.items = items;
    // The target's bounds (`impl<T: Entity> Repo<T>`), on the wrapper's arguments.
    extend_where(&mut block.generics.where_clause, subst.bounds(sigs));
    Generated { block, published }
}

fn generate_member(
    req: &Request,
    subst: &Substitution,
    target_name: &Ident,
    wrapper_name: &Ident,
    member: &Member<'_>,
) -> (TokenStream, PubFn) {
    let f = member.target_fn;
    let name = match member.kind {
        Kind::Setter => format_ident!("set_{}", member.user_name, span = member.user_name.span()),
        _ => {
            let mut name = f.name().clone();
            name.set_span(member.user_name.span());
            name
        }
    };
    let (mut sig, args) = forward_signature(&f.sig, &name);
    subst.apply_to_signature(&mut sig);
    ReplaceSelf(&req.target).visit_signature_mut(&mut sig);
    avoid_wrapper_generics(&mut sig, &req.wrapper.generics);
    let turbofish = turbofish(&sig);
    let target = &req.target;
    let receiver = match f.receiver() {
        Receiver::Mut => {
            let acc = &req.accessor_mut.name;
            Some(quote!(&mut *self.#acc()))
        }
        Receiver::Ref => {
            let acc = &req.accessor.name;
            Some(quote!(&*self.#acc()))
        }
        Receiver::None | Receiver::Unsupported => None,
    };
    let call_args = receiver.into_iter().chain(args.iter().map(|a| quote!(#a)));
    let call = quote!(<#target>::#name #turbofish(#(#call_args),*));
    let body = match (&req.blocking, sig.asyncness.take()) {
        (Some(blocking), Some(_)) => blocking_body(&mut sig, blocking, call),
        (_, asyncness) => {
            sig.asyncness = asyncness;
            let await_ = asyncness.map(|_| quote!(.await));
            quote!(#call #await_)
        }
    };
    let docs = proxied_docs(&f.attrs, target_name, wrapper_name);
    let others = forwarded_others(&f.attrs, sig.asyncness.is_some());
    // The body calls the deprecated target fn on purpose.
    let allow = others
        .iter()
        .any(|a| a.path().is_ident("deprecated"))
        .then(|| quote!(#[allow(deprecated)]));
    let item = quote! {
        #(#docs)*
        #(#others)*
        #allow
        #[inline]
        pub #sig {
            #body
        }
    };
    let attrs = docs.into_iter().chain(others).collect();
    let public = PubFn {
        attrs,
        from_trait: None,
        is_attribute: member.kind == Kind::Getter,
        sig,
    };
    (item, public)
}

/// Blocking mode: the synchronous member's body, which runs the target's future through the
/// wrapper's `block_on`, and its return type. A target returning a `Result` keeps its type
/// (the blocking error converts into the target's error with `From`); any other output `X`
/// becomes `Result<X, Error>` with the error type `blocking(error = ...)` names (checked by
/// `valid`).
fn blocking_body(sig: &mut Signature, blocking: &Blocking, call: TokenStream) -> TokenStream {
    let block_on = &blocking.block_on;
    if returns_result(&sig.output) {
        return quote! {
            match self.#block_on(#call) {
                ::core::result::Result::Ok(out) => out,
                ::core::result::Result::Err(e) => {
                    ::core::result::Result::Err(::core::convert::From::from(e))
                }
            }
        };
    }
    let output: Type = match &sig.output {
        ReturnType::Default => parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    let error = &blocking.error;
    sig.output = parse_quote!(-> ::core::result::Result<#output, #error>);
    quote!(self.#block_on(#call))
}

/// Whether a return type is a `Result` (by its last path segment, as `Result<T>` aliases are).
pub(crate) fn returns_result(output: &ReturnType) -> bool {
    match output {
        ReturnType::Type(_, ty) => match &**ty {
            Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Result"),
            _ => false,
        },
        ReturnType::Default => false,
    }
}

/// The target fn's `#[cfg]`, `#[must_use]`, `#[deprecated]` and `#[track_caller]`
/// attributes, in order (`#[track_caller]` only on a sync fn: it does nothing on an async fn).
fn forwarded_others(attrs: &[Attribute], is_async: bool) -> Vec<Attribute> {
    attrs
        .iter()
        .filter(|a| {
            let p = a.path();
            p.is_ident("cfg")
                || p.is_ident("must_use")
                || p.is_ident("deprecated")
                || (p.is_ident("track_caller") && !is_async)
        })
        .cloned()
        .collect()
}

/// The target's signature with a plain receiver, plain argument names and no `const`.
/// Returns the signature and the argument names in order.
fn forward_signature(target: &Signature, name: &Ident) -> (Signature, Vec<Ident>) {
    let mut sig = target.clone();
    sig.ident = name.clone();
    sig.constness = None;
    let taken: Vec<String> = target
        .inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(pt) => match &*pt.pat {
                Pat::Ident(pi) if pi.subpat.is_none() => Some(pi.ident.to_string()),
                _ => None,
            },
            FnArg::Receiver(_) => None,
        })
        .collect();
    let mut inputs: Punctuated<FnArg, Token![,]> = Punctuated::new();
    let mut args = Vec::new();
    for (i, input) in target.inputs.iter().enumerate() {
        match input {
            FnArg::Receiver(receiver) => {
                let lifetime = match &*receiver.ty {
                    Type::Reference(r) => r.lifetime.clone(),
                    _ => None,
                };
                let mutability = match &*receiver.ty {
                    Type::Reference(r) => r.mutability,
                    _ => None,
                };
                inputs.push(parse_quote!(& #lifetime #mutability self));
            }
            FnArg::Typed(pt) => {
                let arg = match &*pt.pat {
                    Pat::Ident(pi) if pi.subpat.is_none() => {
                        let mut ident = pi.ident.clone();
                        ident.set_span(Span::call_site());
                        ident
                    }
                    _ => {
                        let mut candidate = format!("arg{i}");
                        while taken.contains(&candidate) {
                            candidate.push('_');
                        }
                        Ident::new(&candidate, Span::call_site())
                    }
                };
                let ty = &pt.ty;
                inputs.push(parse_quote!(#arg: #ty));
                args.push(arg);
            }
        }
    }
    sig.inputs = inputs;
    (sig, args)
}

/// `::<T, N>` for the fn's type and const parameters (lifetimes are left to inference; `impl
/// Trait` arguments are not generic parameters and need none).
fn turbofish(sig: &Signature) -> TokenStream {
    let params: Vec<&Ident> = sig
        .generics
        .params
        .iter()
        .filter_map(|p| match p {
            GenericParam::Type(t) => Some(&t.ident),
            GenericParam::Const(c) => Some(&c.ident),
            GenericParam::Lifetime(_) => None,
        })
        .collect();
    if params.is_empty() {
        TokenStream::new()
    } else {
        quote!(::<#(#params),*>)
    }
}

/// Renames the fn's generic parameters that the wrapper's impl already declares (`'a` in
/// both `impl<'a> Wrapper<'a>` and `fn longer<'a>`), by appending a number.
fn avoid_wrapper_generics(sig: &mut Signature, wrapper: &syn::Generics) {
    let taken: Vec<String> = wrapper
        .params
        .iter()
        .chain(sig.generics.params.iter())
        .map(param_name)
        .collect();
    let outer: Vec<String> = wrapper.params.iter().map(param_name).collect();
    let mut renames = Vec::new();
    for param in &sig.generics.params {
        let old = param_name(param);
        if !outer.contains(&old) {
            continue;
        }
        let new = (1..)
            .map(|n| format!("{old}{n}"))
            .find(|c| !taken.contains(c) && !renames.iter().any(|(_, r)| r == c))
            .unwrap_or_else(|| format!("{old}_"));
        renames.push((old, new));
    }
    if !renames.is_empty() {
        Rename(&renames).visit_signature_mut(sig);
    }
}

/// Renames lifetimes and single-segment type or const names.
struct Rename<'a>(&'a [(String, String)]);

impl Rename<'_> {
    fn find(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(old, _)| old == name)
            .map(|(_, new)| new.as_str())
    }
}

impl VisitMut for Rename<'_> {
    fn visit_lifetime_mut(&mut self, lifetime: &mut syn::Lifetime) {
        if let Some(new) = self.find(&lifetime.to_string()) {
            *lifetime = syn::Lifetime::new(new, lifetime.span());
        }
    }

    fn visit_ident_mut(&mut self, ident: &mut Ident) {
        // Reached for generic parameter declarations, path segments and the like; a path's
        // first segment is the only place a parameter's name can appear in a signature.
        if let Some(new) = self.find(&ident.to_string()) {
            *ident = Ident::new(new, ident.span());
        }
    }

    fn visit_path_mut(&mut self, path: &mut Path) {
        if let Some(first) = path.segments.first_mut() {
            if path.leading_colon.is_none() {
                self.visit_ident_mut(&mut first.ident);
            }
            visit_mut::visit_path_arguments_mut(self, &mut first.arguments);
        }
        for segment in path.segments.iter_mut().skip(1) {
            visit_mut::visit_path_arguments_mut(self, &mut segment.arguments);
        }
    }

    fn visit_signature_mut(&mut self, sig: &mut Signature) {
        // Not the fn's own name, nor argument names.
        visit_mut::visit_generics_mut(self, &mut sig.generics);
        for input in &mut sig.inputs {
            match input {
                FnArg::Receiver(r) => visit_mut::visit_receiver_mut(self, r),
                FnArg::Typed(t) => self.visit_type_mut(&mut t.ty),
            }
        }
        visit_mut::visit_return_type_mut(self, &mut sig.output);
    }
}

/// Replaces `Self` in types with the target's path as the user wrote it.
struct ReplaceSelf<'a>(&'a Path);

impl VisitMut for ReplaceSelf<'_> {
    fn visit_receiver_mut(&mut self, _: &mut syn::Receiver) {
        // `&self` stays `&self`: its implicit type `&Self` means the wrapper now.
    }

    fn visit_type_path_mut(&mut self, ty: &mut TypePath) {
        let starts_with_self = ty.qself.is_none()
            && ty.path.leading_colon.is_none()
            && ty.path.segments.first().is_some_and(|s| s.ident == "Self");
        if starts_with_self {
            let mut path = self.0.clone();
            path.segments
                .extend(ty.path.segments.iter().skip(1).cloned());
            ty.path = path;
        }
        visit_mut::visit_type_path_mut(self, ty);
    }
}

/// The line inserted into every proxied member's docs.
pub(crate) fn proxied_line(target: &Ident, wrapper: &Ident) -> String {
    format!(" Proxied for [`{target}`] on behalf of [`{wrapper}`].")
}

/// The target's docs with the "Proxied for" line after the first paragraph (the summary),
/// as SQLAlchemy's `inject_docstring_text` does; proxying a proxy stacks the lines, newest
/// first.
pub(crate) fn proxied_docs(attrs: &[Attribute], target: &Ident, wrapper: &Ident) -> Vec<Attribute> {
    let docs: Vec<&Attribute> = attrs.iter().filter(|a| a.path().is_ident("doc")).collect();
    let line = proxied_line(target, wrapper);
    let blank = docs
        .iter()
        .position(|a| doc_text(a).is_some_and(|t| t.trim().is_empty()));
    let split = blank.unwrap_or(docs.len());
    let mut out: Vec<Attribute> = docs[..split].iter().map(|a| (*a).clone()).collect();
    if !out.is_empty() {
        out.push(parse_quote!(#[doc = ""]));
    }
    out.push(parse_quote!(#[doc = #line]));
    out.extend(docs[split..].iter().map(|a| (*a).clone()));
    out
}

/// The text of `#[doc = "..."]`; `None` for other forms (`#[doc = include_str!(..)]`).
fn doc_text(attr: &Attribute) -> Option<String> {
    match &attr.meta {
        Meta::NameValue(nv) => match &nv.value {
            Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) => Some(s.value()),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::valid::plan;
    use quote::ToTokens;

    fn doc_lines(attrs: &[Attribute]) -> Vec<String> {
        attrs.iter().filter_map(doc_text).collect()
    }

    fn ident(s: &str) -> Ident {
        Ident::new(s, Span::call_site())
    }

    #[test]
    fn docs_insert_after_the_summary_and_stack() {
        let target: Vec<Attribute> = vec![
            parse_quote!(#[doc = " Adds one."]),
            parse_quote!(#[doc = " Twice."]),
            parse_quote!(#[doc = ""]),
            parse_quote!(#[doc = " Details."]),
        ];
        let mid = proxied_docs(&target, &ident("Counter"), &ident("Mid"));
        assert_eq!(
            doc_lines(&mid),
            [
                " Adds one.",
                " Twice.",
                "",
                " Proxied for [`Counter`] on behalf of [`Mid`].",
                "",
                " Details."
            ]
        );
        let outer = proxied_docs(&mid, &ident("Mid"), &ident("Outer"));
        assert_eq!(
            doc_lines(&outer),
            [
                " Adds one.",
                " Twice.",
                "",
                " Proxied for [`Mid`] on behalf of [`Outer`].",
                "",
                " Proxied for [`Counter`] on behalf of [`Mid`].",
                "",
                " Details."
            ]
        );
    }

    #[test]
    fn docs_without_a_blank_line_or_without_docs() {
        let one: Vec<Attribute> = vec![parse_quote!(#[doc = " One line."])];
        let out = proxied_docs(&one, &ident("T"), &ident("W"));
        assert_eq!(
            doc_lines(&out),
            [" One line.", "", " Proxied for [`T`] on behalf of [`W`]."]
        );
        let out = proxied_docs(&[], &ident("T"), &ident("W"));
        assert_eq!(doc_lines(&out), [" Proxied for [`T`] on behalf of [`W`]."]);
    }

    #[test]
    fn generates_forwarding_members() {
        let mut item: ItemImpl = parse_quote! {
            impl Counter {
                /// Adds.
                pub async fn add<'a, T: Into<i64>, const N: usize>(&'a mut self, (x, _y): (T, u8), mut z: impl Fn() -> Self) -> &'a Self where T: Copy { loop {} }
                pub fn new(arg1: i64) -> Self { loop {} }
                #[proxy(attribute)]
                pub fn label(&self) -> &str { "" }
                pub fn set_label(&self, value: String) {}
            }
        };
        let sigs = Signatures::from_impl(&mut item).expect("valid");
        let req: Request = syn::parse2(quote! {
            target = crate::t::Counter; wrapper = impl<X> W<X> where X: Send {} marker = M;
            accessor = proxied true; accessor_mut = proxied_mut true;
            methods(add) attributes(label) classmethods(new)
        })
        .expect("request");
        let (members, errors) = plan(&req, &sigs);
        assert!(errors.is_empty());
        let generated = generate(&req, &sigs, &members);
        let text = generated.block.to_token_stream().to_string();
        for expected in [
            "# [automatically_derived] impl < X > W < X > where X : Send",
            "pub async fn add < 'a , T : Into < i64 > , const N : usize > (& 'a mut self , arg1 : (T , u8) , z : impl Fn () -> crate :: t :: Counter) -> & 'a crate :: t :: Counter where T : Copy",
            "< crate :: t :: Counter > :: add :: < T , N > (& mut * self . proxied_mut () , arg1 , z) . await",
            "pub fn label (& self) -> & str { < crate :: t :: Counter > :: label (& * self . proxied ()) }",
            "pub fn set_label (& self , value : String) { < crate :: t :: Counter > :: set_label (& * self . proxied () , value) }",
            "pub fn new (arg1 : i64) -> crate :: t :: Counter { < crate :: t :: Counter > :: new (arg1) }",
            "# [inline]",
        ] {
            assert!(text.contains(expected), "missing `{expected}` in\n{text}");
        }
        let names: Vec<String> = generated
            .published
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        assert_eq!(names, ["add", "label", "set_label", "new"]);
        assert!(generated.published[1].is_attribute);
        assert!(!generated.published[2].is_attribute);
    }

    #[test]
    fn method_generics_that_clash_with_the_wrappers_are_renamed() {
        let mut item: ItemImpl = parse_quote! {
            impl Counter {
                pub fn longer<'a, T: AsRef<str> + 'a>(&'a self, other: &'a T) -> &'a str where T: ?Sized { loop {} }
            }
        };
        let sigs = Signatures::from_impl(&mut item).expect("valid");
        let req: Request = syn::parse2(quote! {
            target = Counter; wrapper = impl<'a, T> W<'a, T> {} marker = M;
            accessor = proxied true; accessor_mut = proxied_mut true;
            methods(longer) attributes() classmethods()
        })
        .expect("request");
        let (members, _) = plan(&req, &sigs);
        let text = generate(&req, &sigs, &members)
            .block
            .to_token_stream()
            .to_string();
        let expected = "pub fn longer < 'a1 , T1 : AsRef < str > + 'a1 > (& 'a1 self , other : & 'a1 T1) -> & 'a1 str where T1 : ? Sized";
        assert!(text.contains(expected), "{text}");
        assert!(
            text.contains("< Counter > :: longer :: < T1 > (& * self . proxied () , other)"),
            "{text}"
        );
    }

    #[test]
    fn blocking_mode_and_generic_targets() {
        let mut item: ItemImpl = parse_quote! {
            impl<T: Clone> Repo<T> where T: Send {
                pub async fn fetch(&self, id: u32) -> Result<T, E> { loop {} }
                pub async fn close(&self) { loop {} }
                #[must_use]
                #[track_caller]
                pub fn peek(&self) -> Option<&T> { loop {} }
            }
        };
        let sigs = Signatures::from_impl(&mut item).expect("valid");
        let req: Request = syn::parse2(quote! {
            target = Repo<U>; wrapper = impl<U> W<U> {} marker = M;
            accessor = proxied true; accessor_mut = proxied_mut true;
            methods(fetch, close, peek) attributes() classmethods()
            blocking { block_on = run; error = Oops; }
        })
        .expect("request");
        let (members, errors) = plan(&req, &sigs);
        assert!(errors.is_empty(), "{:?}", errors.messages());
        let text = generate(&req, &sigs, &members)
            .block
            .to_token_stream()
            .to_string();
        for expected in [
            "impl < U > W < U > where U : Clone , U : Send",
            "pub fn fetch (& self , id : u32) -> Result < U , E > { match self . run (< Repo < U > > :: fetch (& * self . proxied () , id))",
            ":: core :: result :: Result :: Err (:: core :: convert :: From :: from (e))",
            "pub fn close (& self) -> :: core :: result :: Result < () , Oops > { self . run (< Repo < U > > :: close (& * self . proxied ())) }",
            "# [must_use] # [track_caller] # [inline] pub fn peek (& self) -> Option < & U >",
        ] {
            assert!(text.contains(expected), "missing `{expected}` in\n{text}");
        }
        assert!(
            !text.contains("async") && !text.contains(". await"),
            "{text}"
        );
    }
}
