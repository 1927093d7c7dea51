//! Generic targets: mapping the wrapper's arguments (`#[proxy_methods(Repo<U>, ...)]`) onto
//! the target's parameters (`impl<T: Entity> Repo<T>`), in the published signatures and in
//! the target's bounds, which the generated impl block keeps as where clauses.

use syn::visit_mut::{self, VisitMut};
use syn::{
    GenericArgument, GenericParam, Lifetime, Path, PathArguments, Signature, Type, WhereClause,
    WherePredicate, parse_quote,
};

use crate::signatures::{Signatures, param_name};

/// The wrapper's argument for each of the target's parameters, by name.
pub(crate) struct Substitution {
    lifetimes: Vec<(String, Lifetime)>,
    types: Vec<(String, Type)>,
}

/// The generic arguments written on the last segment of `path`.
pub(crate) fn args_of(path: &Path) -> Vec<GenericArgument> {
    match path.segments.last().map(|s| &s.arguments) {
        Some(PathArguments::AngleBracketed(a)) => a.args.iter().cloned().collect(),
        _ => Vec::new(),
    }
}

/// How many lifetime, type and const parameters (or arguments) there are.
pub(crate) fn counts_of_params(sigs: &Signatures) -> (usize, usize, usize) {
    let mut counts = (0, 0, 0);
    for p in &sigs.generics.params {
        match p {
            GenericParam::Lifetime(_) => counts.0 += 1,
            GenericParam::Type(_) => counts.1 += 1,
            GenericParam::Const(_) => counts.2 += 1,
        }
    }
    counts
}

/// See [`counts_of_params`].
pub(crate) fn counts_of_args(args: &[GenericArgument]) -> (usize, usize, usize) {
    let mut counts = (0, 0, 0);
    for a in args {
        match a {
            GenericArgument::Lifetime(_) => counts.0 += 1,
            GenericArgument::Type(_) => counts.1 += 1,
            _ => counts.2 += 1,
        }
    }
    counts
}

impl Substitution {
    /// Pairs the target's parameters with the arguments the wrapper wrote, in order (the
    /// counts were checked by `valid`). A type argument that parses as a const expression
    /// (`N`) is taken as a type when the parameter is a type.
    pub(crate) fn new(sigs: &Signatures, target: &Path) -> Self {
        let args = args_of(target);
        let mut lifetimes = Vec::new();
        let mut types = Vec::new();
        let mut lifetime_args = args.iter().filter_map(|a| match a {
            GenericArgument::Lifetime(l) => Some(l.clone()),
            _ => None,
        });
        let mut type_args = args.iter().filter_map(|a| match a {
            GenericArgument::Type(t) => Some(t.clone()),
            _ => None,
        });
        for p in &sigs.generics.params {
            match p {
                GenericParam::Lifetime(_) => {
                    if let Some(l) = lifetime_args.next() {
                        lifetimes.push((param_name(p), l));
                    }
                }
                GenericParam::Type(_) => {
                    if let Some(t) = type_args.next() {
                        types.push((param_name(p), t));
                    }
                }
                GenericParam::Const(_) => {}
            }
        }
        Substitution { lifetimes, types }
    }

    fn is_identity(&self) -> bool {
        self.lifetimes.iter().all(|(n, l)| *n == l.to_string())
            && self
                .types
                .iter()
                .all(|(n, t)| matches!(t, Type::Path(p) if p.qself.is_none() && p.path.is_ident(n)))
    }

    /// Applies the substitution to a signature's types and bounds.
    pub(crate) fn apply_to_signature(&self, sig: &mut Signature) {
        if !self.is_identity() {
            Apply(self).visit_signature_mut(sig);
        }
    }

    /// The target's parameter bounds and where clause, substituted: what the generated impl
    /// block adds to the wrapper's where clause.
    pub(crate) fn bounds(&self, sigs: &Signatures) -> Vec<WherePredicate> {
        let mut out: Vec<WherePredicate> = Vec::new();
        for p in &sigs.generics.params {
            match p {
                GenericParam::Type(t) if !t.bounds.is_empty() => {
                    let ident = &t.ident;
                    let bounds = &t.bounds;
                    out.push(parse_quote!(#ident: #bounds));
                }
                GenericParam::Lifetime(l) if !l.bounds.is_empty() => {
                    let lifetime = &l.lifetime;
                    let bounds = &l.bounds;
                    out.push(parse_quote!(#lifetime: #bounds));
                }
                _ => {}
            }
        }
        if let Some(w) = &sigs.generics.where_clause {
            out.extend(w.predicates.iter().cloned());
        }
        let mut apply = Apply(self);
        for predicate in &mut out {
            apply.visit_where_predicate_mut(predicate);
        }
        out
    }
}

/// Appends `predicates` to `where_clause`.
pub(crate) fn extend_where(
    where_clause: &mut Option<WhereClause>,
    predicates: Vec<WherePredicate>,
) {
    if predicates.is_empty() {
        return;
    }
    let clause = where_clause.get_or_insert_with(|| parse_quote!(where));
    clause.predicates.extend(predicates);
}

struct Apply<'a>(&'a Substitution);

impl VisitMut for Apply<'_> {
    fn visit_lifetime_mut(&mut self, lifetime: &mut Lifetime) {
        let name = lifetime.to_string();
        if let Some((_, arg)) = self.0.lifetimes.iter().find(|(n, _)| *n == name) {
            *lifetime = arg.clone();
        }
    }

    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::Path(p) = ty {
            if p.qself.is_none() && p.path.leading_colon.is_none() {
                let first = p.path.segments.first().map(|s| s.ident.to_string());
                let found = first
                    .and_then(|f| self.0.types.iter().find(|(n, _)| *n == f))
                    .map(|(_, t)| t.clone());
                if let Some(arg) = found {
                    if p.path.segments.len() == 1 {
                        *ty = arg;
                        return;
                    }
                    // `T::Key`: rename when the argument is a plain name (`U::Key`).
                    if let Type::Path(a) = &arg {
                        if let (None, Some(ident)) = (&a.qself, a.path.get_ident()) {
                            p.path.segments[0].ident = ident.clone();
                        }
                    }
                }
            }
        }
        visit_mut::visit_type_mut(self, ty);
    }
}
