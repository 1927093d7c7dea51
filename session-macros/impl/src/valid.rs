//! Checking a request against the target's published signatures. Produces the plan that
//! `expand` follows; every mistake becomes an error at the user's token.

use syn::Ident;

use crate::expand::returns_result;
use crate::protocol::Request;
use crate::signatures::{Errors, PubFn, Receiver, Signatures};
use crate::subst::{args_of, counts_of_args, counts_of_params};
use crate::suggest::{code_list, did_you_mean};

/// Lists of valid names are spelled out in errors when they are at most this long.
const SHORT_LIST: usize = 12;

/// What a generated member is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A method forwarded through the accessor.
    Method,
    /// An attribute's getter.
    Getter,
    /// An attribute's `set_<name>` setter.
    Setter,
    /// An associated fn calling the target's associated fn.
    Classmethod,
}

/// One member to generate.
pub(crate) struct Member<'a> {
    /// The name as the user wrote it (for spans); for setters, the attribute's name.
    pub(crate) user_name: Ident,
    /// The target fn it forwards to.
    pub(crate) target_fn: &'a PubFn,
    /// What it is.
    pub(crate) kind: Kind,
}

/// The section a published fn belongs in.
fn section_of(f: &PubFn) -> &'static str {
    if f.is_attribute {
        "attributes"
    } else if f.receiver() == Receiver::None {
        "classmethods"
    } else {
        "methods"
    }
}

fn describe(section: &str) -> &'static str {
    match section {
        "attributes" => "an attribute",
        "classmethods" => "an associated function (classmethod)",
        _ => "a method",
    }
}

/// Checks `req` against `sigs`; returns the members to generate (in output order: methods,
/// attributes, classmethods, each in list order) and every error found.
pub(crate) fn plan<'a>(req: &Request, sigs: &'a Signatures) -> (Vec<Member<'a>>, Errors) {
    let mut errors = Errors::default();
    let mut members = Vec::new();
    let mut seen: Vec<&Ident> = Vec::new();
    let target = &sigs.target;
    if let Some(message) = generic_mismatch(req, sigs) {
        // Nothing can be generated with the wrong arguments: report that alone.
        errors.push(syn::Error::new_spanned(&req.target, message));
        return (members, errors);
    }
    let sections = [
        ("methods", &req.methods),
        ("attributes", &req.attributes),
        ("classmethods", &req.classmethods),
    ];
    let generated_setters: Vec<String> = req
        .attributes
        .iter()
        .filter(|a| sigs.setter_of(&a.to_string()).is_some())
        .map(|a| format!("set_{a}"))
        .collect();
    for (section, names) in sections {
        for name in names {
            if let Some(first) = seen.iter().find(|s| **s == name) {
                errors.at(name.span(), format!("`{name}` is listed twice"));
                errors.at(first.span(), format!("`{name}` is first listed here"));
                continue;
            }
            seen.push(name);
            let Some(f) = sigs.get(&name.to_string()) else {
                errors.at(name.span(), unknown(sigs, section, name));
                continue;
            };
            if let Some(t) = &f.from_trait {
                let t = quote::quote!(#t).to_string().replace(' ', "");
                errors.at(
                    name.span(),
                    format!(
                        "`{name}` is a method of trait `{t}` (`impl {t} for {target}`), not an inherent `pub fn` of `{target}`; \
                         #[proxy_methods] forwards inherent members only: implement `{t}` for the wrapper \
                         (delegating to the target), or add an inherent `pub fn` to `{target}` that calls it"
                    ),
                );
                continue;
            }
            let belongs = section_of(f);
            if belongs != section {
                errors.at(
                    name.span(),
                    format!(
                        "`{name}` is {} of `{target}`, not {}; list it under `{belongs}(...)`",
                        describe(belongs),
                        describe(section),
                    ),
                );
                continue;
            }
            if section == "methods" && generated_setters.iter().any(|s| name == s) {
                let attribute = name.to_string();
                let attribute = attribute.trim_start_matches("set_");
                errors.at(
                    name.span(),
                    format!("`{name}` is already generated as the setter of attribute `{attribute}`; remove it from `methods(...)`"),
                );
                continue;
            }
            if let Some(problem) = blocking_problem(req, f) {
                errors.at(
                    name.span(),
                    format!("`{name}` cannot be proxied in blocking mode: {problem}"),
                );
                continue;
            }
            if let Some(problem) = unforwardable(f) {
                errors.at(
                    name.span(),
                    format!("`{name}` cannot be proxied: {problem}"),
                );
                continue;
            }
            match section {
                "methods" => members.push(Member {
                    user_name: name.clone(),
                    target_fn: f,
                    kind: Kind::Method,
                }),
                "attributes" => {
                    members.push(Member {
                        user_name: name.clone(),
                        target_fn: f,
                        kind: Kind::Getter,
                    });
                    if let Some(setter) = sigs.setter_of(&name.to_string()) {
                        members.push(Member {
                            user_name: name.clone(),
                            target_fn: setter,
                            kind: Kind::Setter,
                        });
                    }
                }
                _ => members.push(Member {
                    user_name: name.clone(),
                    target_fn: f,
                    kind: Kind::Classmethod,
                }),
            }
        }
    }
    accessors(req, sigs, &members, &mut errors);
    // Members whose accessor is missing are not generated: the error above says what to do,
    // and rustc's "no method named `proxied`" would only repeat it.
    members.retain(|m| match m.target_fn.receiver() {
        Receiver::Ref => req.accessor.available,
        Receiver::Mut => req.accessor_mut.available,
        Receiver::None | Receiver::Unsupported => true,
    });
    (members, errors)
}

/// The message for a name the target does not publish.
fn unknown(sigs: &Signatures, section: &str, name: &Ident) -> String {
    let target = &sigs.target;
    let name_str = name.to_string();
    if sigs.is_private(&name_str) {
        return format!(
            "`{name}` is not `pub` in `impl {target}`; #[publish_signatures] publishes only `pub fn`s, so make it `pub` to proxy it"
        );
    }
    let valid: Vec<String> = sigs
        .fns
        .iter()
        .filter(|f| section_of(f) == section)
        .map(|f| f.name().to_string())
        .collect();
    let all: Vec<String> = sigs.fns.iter().map(|f| f.name().to_string()).collect();
    let mut msg = format!("`{target}` has no public {} `{name}`", noun(section));
    if let Some(guess) = did_you_mean(&name_str, valid.iter().map(String::as_str)) {
        msg.push_str(&format!("; did you mean `{guess}`?"));
    } else if let Some(guess) = did_you_mean(&name_str, all.iter().map(String::as_str)) {
        let other = sigs.get(guess).map(section_of).unwrap_or("methods");
        msg.push_str(&format!("; did you mean `{guess}` (under `{other}(...)`)?"));
    }
    if valid.is_empty() {
        msg.push_str(&format!("\n`{target}` publishes no {}", plural(section)));
    } else if valid.len() <= SHORT_LIST {
        msg.push_str(&format!(
            "\nthe {} of `{target}` are: {}",
            plural(section),
            code_list(valid.iter().map(String::as_str))
        ));
    }
    msg
}

fn noun(section: &str) -> &'static str {
    match section {
        "attributes" => "attribute",
        "classmethods" => "associated function",
        _ => "method",
    }
}

fn plural(section: &str) -> &'static str {
    match section {
        "attributes" => "attributes (getters marked `#[proxy(attribute)]`)",
        "classmethods" => "associated functions",
        _ => "methods",
    }
}

/// The message when the wrapper's arguments on the target (`Repo<U>`) do not match the
/// target's generic parameters (`impl<T: Entity> Repo<T>`).
fn generic_mismatch(req: &Request, sigs: &Signatures) -> Option<String> {
    let args = args_of(&req.target);
    let want = counts_of_params(sigs);
    let have = counts_of_args(&args);
    if want == have {
        return None;
    }
    let target = &sigs.target;
    let params = sigs.param_names();
    if params.is_empty() {
        return Some(format!(
            "`{target}` is not generic (`impl {target}`), so name it without arguments: `#[proxy_methods({target}, ...)]`"
        ));
    }
    let list = params.join(", ");
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let describe = |(l, t, c): (usize, usize, usize)| {
        let mut parts = Vec::new();
        if l > 0 {
            parts.push(count(l, "lifetime"));
        }
        if t > 0 {
            parts.push(count(t, "type"));
        }
        if c > 0 {
            parts.push(count(c, "const"));
        }
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    };
    Some(format!(
        "`{target}` is generic (`impl<{list}> {target}<{list}>`): name it with {} argument(s), {} given; \
         pass the wrapper's own parameters, e.g. `#[proxy_methods({target}<{list}>, ...)]` on `impl<{list}> Wrapper<{list}>`",
        describe(want),
        describe(have),
    ))
}

/// Why an async fn cannot become a synchronous member, if it cannot.
fn blocking_problem(req: &Request, f: &PubFn) -> Option<String> {
    let blocking = req.blocking.as_ref()?;
    f.sig.asyncness?;
    if f.receiver() == Receiver::None {
        return Some(format!(
            "it is an async associated function, and the wrapper's `{}` needs `&self`; leave it out, or write it by hand",
            blocking.block_on
        ));
    }
    if blocking.error.is_none() && !returns_result(&f.sig.output) {
        let output = match &f.sig.output {
            syn::ReturnType::Default => "()".to_string(),
            syn::ReturnType::Type(_, ty) => quote::quote!(#ty).to_string(),
        };
        return Some(format!(
            "its async target returns `{output}`, not a `Result`, so the synchronous member returns \
             `Result<{output}, E>` with the error of the wrapper's `{}`: name that error with \
             `blocking(error = path::to::Error)`",
            blocking.block_on
        ));
    }
    None
}

/// Why a published fn cannot be forwarded, if it cannot.
fn unforwardable(f: &PubFn) -> Option<String> {
    if f.receiver() == Receiver::Unsupported {
        return Some(
            "only `&self` and `&mut self` receivers can be forwarded through an accessor".into(),
        );
    }
    if f.sig.unsafety.is_some() {
        return Some("it is an `unsafe fn`".into());
    }
    if f.sig.abi.is_some() {
        return Some("it has an explicit ABI (`extern`)".into());
    }
    if f.sig.variadic.is_some() {
        return Some("it is variadic".into());
    }
    None
}

/// Reports a missing accessor once, at the first member that needs it.
fn accessors(req: &Request, sigs: &Signatures, members: &[Member<'_>], errors: &mut Errors) {
    let target = &sigs.target;
    let need_ref = members
        .iter()
        .find(|m| m.target_fn.receiver() == Receiver::Ref);
    let need_mut = members
        .iter()
        .find(|m| m.target_fn.receiver() == Receiver::Mut);
    if let (Some(m), false) = (need_ref, req.accessor.available) {
        let acc = &req.accessor.name;
        errors.at(
            m.user_name.span(),
            format!(
                "`{}` takes `&self`, so this impl block must define the accessor `fn {acc}(&self) -> &{target}` \
                 (or return anything that derefs to `{target}`: an `Arc<{target}>`, a lock guard); \
                 or name another method with `accessor = name`",
                m.target_fn.name()
            ),
        );
    }
    if let (Some(m), false) = (need_mut, req.accessor_mut.available) {
        let acc = &req.accessor_mut.name;
        errors.at(
            m.user_name.span(),
            format!(
                "`{}` takes `&mut self`, so this impl block must define the accessor `fn {acc}(&mut self) -> &mut {target}` \
                 (or return anything that derefs mutably to `{target}`, e.g. a lock guard); \
                 or name another method with `accessor_mut = name`",
                m.target_fn.name()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn sigs() -> Signatures {
        let mut item: syn::ItemImpl = syn::parse_quote! {
            impl Counter {
                pub fn increment(&mut self) -> i64 { 0 }
                pub fn get(&self) -> i64 { 0 }
                #[proxy(attribute)]
                pub fn label(&self) -> String { String::new() }
                pub fn set_label(&mut self, label: String) {}
                pub fn new() -> Self { Counter }
                pub fn consume(self) {}
                fn helper(&self) {}
            }
        };
        Signatures::from_impl(&mut item).expect("valid")
    }

    fn request(lists: proc_macro2::TokenStream, acc: bool, acc_mut: bool) -> Request {
        syn::parse2(quote! {
            target = Counter; wrapper = impl W {} marker = M;
            accessor = proxied #acc; accessor_mut = proxied_mut #acc_mut;
            #lists
        })
        .expect("request")
    }

    #[test]
    fn plans_in_output_order() {
        let s = sigs();
        let req = request(
            quote!(methods(get, increment) attributes(label) classmethods(new)),
            true,
            true,
        );
        let (members, errors) = plan(&req, &s);
        assert!(errors.is_empty(), "{:?}", errors.messages());
        let kinds: Vec<(String, Kind)> = members
            .iter()
            .map(|m| (m.target_fn.name().to_string(), m.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("get".to_string(), Kind::Method),
                ("increment".into(), Kind::Method),
                ("label".into(), Kind::Getter),
                ("set_label".into(), Kind::Setter),
                ("new".into(), Kind::Classmethod),
            ]
        );
    }

    #[test]
    fn reports_every_mistake() {
        let s = sigs();
        let req = request(
            quote!(methods(incremnt, label, get, get, helper, consume, new, set_label) attributes(get, label) classmethods(increment)),
            true,
            true,
        );
        let (_, errors) = plan(&req, &s);
        let m = errors.messages();
        assert!(
            m[0].contains("no public method `incremnt`; did you mean `increment`?"),
            "{}",
            m[0]
        );
        assert!(
            m[0].contains("the methods of `Counter` are: `increment`, `get`, `set_label`"),
            "{}",
            m[0]
        );
        assert!(m[1].contains(
            "`label` is an attribute of `Counter`, not a method; list it under `attributes(...)`"
        ));
        assert!(m[2].contains("`get` is listed twice"));
        assert!(m[3].contains("first listed here"));
        assert!(m[4].contains("`helper` is not `pub`"));
        assert!(m[5].contains("`consume` cannot be proxied"));
        assert!(m[6].contains("under `classmethods(...)`"));
        assert!(m[7].contains("already generated as the setter"), "{}", m[7]);
        assert!(m[8].contains("`get` is listed twice"), "{}", m[8]);
        assert!(m[10].contains("`label` is listed twice"), "{}", m[10]);
        assert!(
            m[12].contains("`increment` is a method of `Counter`, not an associated function"),
            "{}",
            m[12]
        );
        assert_eq!(m.len(), 13, "{m:#?}");
    }

    #[test]
    fn missing_accessors_are_reported_once() {
        let s = sigs();
        let req = request(
            quote!(methods(get, increment) attributes() classmethods(new)),
            false,
            false,
        );
        let (members, errors) = plan(&req, &s);
        let m = errors.messages();
        assert_eq!(m.len(), 2, "{m:#?}");
        let planned: Vec<String> = members
            .iter()
            .map(|m| m.target_fn.name().to_string())
            .collect();
        assert_eq!(
            planned,
            ["new"],
            "members without their accessor are not generated"
        );
        assert!(
            m[0].contains("`get` takes `&self`") && m[0].contains("fn proxied(&self) -> &Counter")
        );
        assert!(
            m[1].contains("`increment` takes `&mut self`") && m[1].contains("accessor_mut = name")
        );
        let req = request(
            quote!(methods() attributes() classmethods(new)),
            false,
            false,
        );
        assert!(plan(&req, &s).1.is_empty(), "classmethods need no accessor");
    }
}
