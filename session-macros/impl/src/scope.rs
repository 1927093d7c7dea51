//! Resolving a published signature's names where the target is defined.
//!
//! A proc macro cannot see what a name refers to; the compiler can, at the target's site.
//! So `#[publish_signatures(scope = crate::repo)]` emits, beside the target's impl block, a
//! hidden module that captures the target module's scope (`use super::super::*`, which brings
//! its imports, private ones included) and defines one transparent alias per type or trait
//! the signatures name:
//!
//! ```text
//! #[doc(hidden)]
//! pub mod __session_proxy_Repo {
//!     mod at {
//!         use super::super::*;
//!         pub type Rows__0<A0> = Rows<A0>;                       // a type: a type alias
//!         pub trait Entity__1: Entity {}                           // a trait: a subtrait
//!         impl<__S: ?Sized + Entity> Entity__1 for __S {}          // implemented by all
//!     }
//!     pub use self::at::{Rows__0 as Rows, Entity__1 as Entity};
//! }
//! ```
//!
//! and rewrites the published signatures to name them through the declared public path
//! (`crate::repo::__session_proxy_Repo::Rows<T>`, `$crate::` once published). A wrapper in
//! any crate then spells exactly the target's types, whatever it imports itself.
//!
//! Not rewritten: absolute paths (`::std::...`), `Self` (the wrapper's path to the target),
//! generic parameters and paths that start with one (`T::Key`), primitive types, `dyn`
//! bounds (an alias would be a different trait object), the Fn-family traits (their
//! parenthesized sugar) and the prelude's traits (see [`PRELUDE_TRAITS`]).

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::punctuated::Punctuated;
use syn::visit_mut::{self, VisitMut};
use syn::{
    GenericArgument, Ident, Lifetime, Path, PathArguments, PathSegment, Token, TraitBound,
    TraitBoundModifier, Type, TypeParamBound, TypePath,
};

use crate::signatures::{Signatures, param_name};

/// Traits of the standard prelude, left as written: they resolve alike everywhere (unless a
/// crate shadows them), and `?Sized` and auto traits must stay themselves.
pub(crate) const PRELUDE_TRAITS: [&str; 30] = [
    "Sized",
    "Send",
    "Sync",
    "Unpin",
    "Copy",
    "Clone",
    "Default",
    "Drop",
    "Eq",
    "PartialEq",
    "Ord",
    "PartialOrd",
    "Fn",
    "FnMut",
    "FnOnce",
    "AsyncFn",
    "AsyncFnMut",
    "AsyncFnOnce",
    "Iterator",
    "IntoIterator",
    "DoubleEndedIterator",
    "ExactSizeIterator",
    "Extend",
    "Future",
    "IntoFuture",
    "From",
    "Into",
    "AsRef",
    "AsMut",
    "ToOwned",
];

const PRIMITIVES: [&str; 17] = [
    "bool", "char", "str", "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64",
    "u128", "usize", "f32", "f64",
];

/// The name of the hidden module beside `target`'s impl block.
pub(crate) fn module_name(target: &Ident) -> Ident {
    format_ident!("__session_proxy_{}", target)
}

/// Whether an alias is a type alias or a subtrait.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AliasKind {
    Type,
    Trait,
}

/// One alias of the hidden module.
struct Alias {
    kind: AliasKind,
    /// The path as the target wrote it, without the last segment's arguments.
    path: Path,
    lifetimes: usize,
    types: usize,
    /// The name inside `at`, unique.
    inner: Ident,
    /// The name it is exported under.
    outer: Ident,
}

/// Rewrites `sigs` to name their types through `route` (the public path of the target's
/// module, e.g. `crate::repo`) and returns the hidden module to emit beside the impl block.
pub(crate) fn resolve_at_target(
    sigs: &mut Signatures,
    route: &Path,
    module: &Ident,
) -> TokenStream {
    let module = module.clone();
    let mut prefix = route.clone();
    prefix.segments.push(PathSegment::from(module.clone()));
    let impl_params = sigs.param_names();
    let mut aliases = Vec::new();
    {
        let mut visitor = Aliaser {
            prefix: &prefix,
            params: impl_params.clone(),
            aliases: &mut aliases,
        };
        visitor.visit_generics_mut(&mut sigs.generics);
    }
    for f in &mut sigs.fns {
        let mut params = impl_params.clone();
        params.extend(f.sig.generics.params.iter().map(param_name));
        let mut visitor = Aliaser {
            prefix: &prefix,
            params,
            aliases: &mut aliases,
        };
        visitor.visit_signature_mut(&mut f.sig);
    }
    module_tokens(&module, &aliases)
}

fn module_tokens(module: &Ident, aliases: &[Alias]) -> TokenStream {
    let items = aliases.iter().map(|a| {
        let lifetimes: Vec<Lifetime> = (0..a.lifetimes)
            .map(|i| Lifetime::new(&format!("'l{i}"), Span::call_site()))
            .collect();
        let types: Vec<Ident> = (0..a.types).map(|i| format_ident!("A{}", i)).collect();
        let params = if lifetimes.is_empty() && types.is_empty() {
            TokenStream::new()
        } else {
            quote!(<#(#lifetimes,)* #(#types),*>)
        };
        let body = body_path(&a.path);
        let inner = &a.inner;
        match a.kind {
            AliasKind::Type => quote!(pub type #inner #params = #body #params;),
            AliasKind::Trait => quote! {
                pub trait #inner #params: #body #params {}
                impl<#(#lifetimes,)* #(#types,)* __S: ?::core::marker::Sized + #body #params> #inner #params for __S {}
            },
        }
    });
    let exports = aliases.iter().map(|a| {
        let (inner, outer) = (&a.inner, &a.outer);
        quote!(#inner as #outer)
    });
    quote! {
        #[doc(hidden)]
        #[allow(
            non_snake_case,
            non_camel_case_types,
            unreachable_pub,
            unused_imports,
            private_bounds,
            private_interfaces,
            missing_docs,
            clippy::all
        )]
        pub mod #module {
            mod at {
                use super::super::*;
                #(#items)*
            }
            pub use self::at::{#(#exports),*};
        }
    }
}

/// The alias body's path: `self::` and `super::` are one module deeper (`at` sits two levels
/// below the target's module).
fn body_path(path: &Path) -> TokenStream {
    let first = path.segments.first().map(|s| s.ident.to_string());
    let rest: Punctuated<PathSegment, Token![::]> = path.segments.iter().skip(1).cloned().collect();
    match first.as_deref() {
        Some("self") => quote!(super::super::#rest),
        Some("super") => quote!(super::super::#path),
        _ => quote!(#path),
    }
}

struct Aliaser<'a> {
    prefix: &'a Path,
    /// Generic parameters in scope.
    params: Vec<String>,
    aliases: &'a mut Vec<Alias>,
}

impl Aliaser<'_> {
    /// Whether `path` names something the target's module resolves (and so gets an alias).
    fn is_relative(&self, path: &Path) -> bool {
        if path.leading_colon.is_some() {
            return false;
        }
        let Some(first) = path.segments.first() else {
            return false;
        };
        let name = first.ident.to_string();
        if name == "Self" || name == "$crate" || self.params.contains(&name) {
            return false;
        }
        if path.segments.len() == 1 && PRIMITIVES.contains(&name.as_str()) {
            return false;
        }
        // Arguments only on the last segment (`Vec<T>`, not `Foo::<T>::Bar`).
        let n = path.segments.len();
        path.segments
            .iter()
            .take(n - 1)
            .all(|s| s.arguments.is_none())
    }

    /// The alias for `path` with the given argument counts, made on first use.
    fn alias(&mut self, kind: AliasKind, path: &Path, lifetimes: usize, types: usize) -> Path {
        let mut bare = path.clone();
        if let Some(last) = bare.segments.last_mut() {
            last.arguments = PathArguments::None;
        }
        let key = quote!(#bare).to_string();
        let found = self.aliases.iter().find(|a| {
            let path = &a.path;
            a.kind == kind
                && a.lifetimes == lifetimes
                && a.types == types
                && quote!(#path).to_string() == key
        });
        let outer = match found {
            Some(a) => a.outer.clone(),
            None => {
                let last = bare
                    .segments
                    .last()
                    .map_or_else(|| "T".to_string(), |s| s.ident.to_string());
                let n = self.aliases.len();
                let taken = self.aliases.iter().any(|a| a.outer == last);
                let outer = if taken {
                    format_ident!("{}_{}", last, n)
                } else {
                    format_ident!("{}", last)
                };
                self.aliases.push(Alias {
                    kind,
                    path: bare,
                    lifetimes,
                    types,
                    inner: format_ident!("{}__{}", last, n),
                    outer: outer.clone(),
                });
                outer
            }
        };
        let mut out = self.prefix.clone();
        let mut last = PathSegment::from(outer);
        if let Some(orig) = path.segments.last() {
            last.arguments = orig.arguments.clone();
        }
        out.segments.push(last);
        out
    }

    /// Counts of lifetime and type arguments, or `None` when the arguments have another
    /// shape (const arguments, associated type bindings in type position, parentheses).
    fn arg_counts(path: &Path, allow_bindings: bool) -> Option<(usize, usize)> {
        match &path.segments.last()?.arguments {
            PathArguments::None => Some((0, 0)),
            PathArguments::Parenthesized(_) => None,
            PathArguments::AngleBracketed(args) => {
                let (mut lifetimes, mut types) = (0, 0);
                for arg in &args.args {
                    match arg {
                        GenericArgument::Lifetime(_) => lifetimes += 1,
                        GenericArgument::Type(_) => types += 1,
                        GenericArgument::AssocType(_) if allow_bindings => {}
                        _ => return None,
                    }
                }
                Some((lifetimes, types))
            }
        }
    }
}

impl VisitMut for Aliaser<'_> {
    fn visit_type_path_mut(&mut self, ty: &mut TypePath) {
        // Arguments first (`Vec<Key>` aliases `Key` too), then the head.
        visit_mut::visit_type_path_mut(self, ty);
        if ty.qself.is_some() || !self.is_relative(&ty.path) {
            return;
        }
        if let Some((lifetimes, types)) = Self::arg_counts(&ty.path, false) {
            ty.path = self.alias(AliasKind::Type, &ty.path, lifetimes, types);
        }
    }

    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::TraitObject(object) = ty {
            // The bounds stay (an alias trait would make another trait object); their
            // arguments are still resolved.
            for bound in &mut object.bounds {
                if let TypeParamBound::Trait(t) = bound {
                    for segment in &mut t.path.segments {
                        visit_mut::visit_path_arguments_mut(self, &mut segment.arguments);
                    }
                }
            }
            return;
        }
        visit_mut::visit_type_mut(self, ty);
    }

    fn visit_trait_bound_mut(&mut self, bound: &mut TraitBound) {
        visit_mut::visit_trait_bound_mut(self, bound);
        if bound.modifier != TraitBoundModifier::None || !self.is_relative(&bound.path) {
            return;
        }
        let single = bound.path.segments.len() == 1;
        let name = bound
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default();
        if single && PRELUDE_TRAITS.contains(&name.as_str()) {
            return;
        }
        if let Some((lifetimes, types)) = Self::arg_counts(&bound.path, true) {
            bound.path = self.alias(AliasKind::Trait, &bound.path, lifetimes, types);
        }
    }

    fn visit_ident_mut(&mut self, _: &mut Ident) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::ToTokens;
    use syn::{ItemImpl, parse_quote};

    #[test]
    fn aliases_types_and_traits_at_the_target() {
        let mut item: ItemImpl = parse_quote! {
            impl<T: Entity> Repo<T> where T: Send {
                pub fn all(&self, by: Id, rows: &mut Rows<'_, T>) -> Result<Vec<T>> { loop {} }
                pub fn first<K: Into<Key> + Display>(&self, k: K, f: impl Fn(&T) -> Item) -> ::std::option::Option<Self> where T::Key: Hash { loop {} }
                pub fn boxed(&self) -> Box<dyn Display + Send> { loop {} }
                pub fn other(&self) -> Result<(), Error> { loop {} }
                pub fn up(&self) -> super::Up { loop {} }
            }
        };
        let mut sigs = Signatures::from_impl(&mut item).expect("valid");
        let name = module_name(&sigs.target);
        let module = resolve_at_target(&mut sigs, &parse_quote!(crate::repo), &name).to_string();
        let p = "crate :: repo :: __session_proxy_Repo ::";
        let g = sigs.generics.to_token_stream().to_string();
        assert_eq!(g, format!("< T : {p} Entity >"));
        let all = sigs.fns[0].sig.to_token_stream().to_string();
        assert!(
            all.contains(&format!(
                "by : {p} Id , rows : & mut {p} Rows < '_ , T >) -> {p} Result < {p} Vec < T > >"
            )),
            "{all}"
        );
        let first = sigs.fns[1].sig.to_token_stream().to_string();
        for part in [
            format!("K : Into < {p} Key > + {p} Display"),
            format!("f : impl Fn (& T) -> {p} Item"),
            "-> :: std :: option :: Option < Self >".to_string(),
            format!("where T :: Key : {p} Hash"),
        ] {
            assert!(first.contains(&part), "missing {part} in {first}");
        }
        let boxed = sigs.fns[2].sig.to_token_stream().to_string();
        assert!(
            boxed.contains(&format!("{p} Box < dyn Display + Send >")),
            "{boxed}"
        );
        let other = sigs.fns[3].sig.to_token_stream().to_string();
        assert!(
            other.contains(&format!("{p} Result_")),
            "second arity, second name: {other}"
        );
        for part in [
            "use super :: super :: * ;",
            "pub type Rows__",
            "< 'l0 , A0 > = Rows < 'l0 , A0 > ;",
            "pub trait Entity__",
            ": Entity { }",
            "__S : ? :: core :: marker :: Sized + Entity",
            "pub type Up__",
            "= super :: super :: super :: Up ;",
            "as Result ,",
        ] {
            assert!(module.contains(part), "missing {part} in {module}");
        }
        assert!(
            !module.contains("Send__") && !module.contains("Into__"),
            "{module}"
        );
    }
}
