//! Parsing the arguments of `#[proxy_methods(Target, methods(...), attributes(...),
//! classmethods(...), accessor = name, accessor_mut = name)]`.
//!
//! Parsing is lenient: every mistake becomes an error in [`Args::errors`] and the rest is
//! still read, so that one compile reports the malformed arguments *and* (through the
//! target's published macro) the unknown names.

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::{Ident, Path};

use crate::signatures::Errors;
use crate::suggest::{code_list, did_you_mean};

/// The sections and options `#[proxy_methods]` accepts after the target.
pub(crate) const SECTIONS: [&str; 6] = [
    "methods",
    "attributes",
    "classmethods",
    "accessor",
    "accessor_mut",
    "blocking",
];

/// `blocking(block_on = name, error = Path)`: synchronous members over an async target.
#[derive(Clone)]
pub(crate) struct Blocking {
    /// The wrapper's method that runs a future to completion:
    /// `fn block_on<F: Future>(&self, future: F) -> Result<F::Output, Error>`, refusing (with
    /// an error) to block inside async code. Defaults to `block_on`.
    pub(crate) block_on: Ident,
    /// That method's error type: the error of members whose async target returns no `Result`.
    pub(crate) error: Option<Path>,
}

/// The parsed arguments.
#[derive(Default)]
pub(crate) struct Args {
    /// The target type, as the user wrote it.
    pub(crate) target: Option<Path>,
    /// `methods(...)`.
    pub(crate) methods: Vec<Ident>,
    /// `attributes(...)`.
    pub(crate) attributes: Vec<Ident>,
    /// `classmethods(...)`.
    pub(crate) classmethods: Vec<Ident>,
    /// `accessor = name`.
    pub(crate) accessor: Option<Ident>,
    /// `accessor_mut = name`.
    pub(crate) accessor_mut: Option<Ident>,
    /// `blocking(...)`.
    pub(crate) blocking: Option<Blocking>,
    /// Every mistake found while parsing.
    pub(crate) errors: Errors,
}

/// Parses the attribute's arguments; never fails, mistakes land in [`Args::errors`].
pub(crate) fn parse(attr: TokenStream) -> Args {
    let mut args = Args::default();
    let chunks = split_commas(attr);
    let mut chunks = chunks.into_iter();
    match chunks.next() {
        None => args.errors.at(
            Span::call_site(),
            "expected the target type first: #[proxy_methods(Target, methods(...), attributes(...), classmethods(...))]",
        ),
        Some(first) => match syn::parse2::<Path>(first.clone()) {
            Ok(path) if is_plain_path(&path) && !is_section(&first) => args.target = Some(path),
            _ => args.errors.push(syn::Error::new_spanned(
                &first,
                "expected the target type first, as a path (with the wrapper's generic arguments for a generic target): \
                 #[proxy_methods(Target, methods(...))] or #[proxy_methods(Repo<T>, methods(...))]",
            )),
        },
    }
    let mut seen: Vec<Ident> = Vec::new();
    for chunk in chunks {
        parse_section(chunk, &mut args, &mut seen);
    }
    args
}

fn is_section(chunk: &TokenStream) -> bool {
    let mut iter = chunk.clone().into_iter();
    matches!(
        (iter.next(), iter.next()),
        (Some(TokenTree::Ident(i)), Some(TokenTree::Group(_) | TokenTree::Punct(_)))
            if SECTIONS.iter().any(|s| i == s)
    )
}

/// A path with generic arguments, if any, only on its last segment (`a::Repo<T>`).
fn is_plain_path(path: &Path) -> bool {
    let n = path.segments.len();
    path.segments.iter().enumerate().all(|(i, s)| {
        s.arguments.is_none()
            || (i + 1 == n && matches!(s.arguments, syn::PathArguments::AngleBracketed(_)))
    })
}

fn parse_section(chunk: TokenStream, args: &mut Args, seen: &mut Vec<Ident>) {
    let mut iter = chunk.clone().into_iter();
    let Some(TokenTree::Ident(key)) = iter.next() else {
        args.errors.push(syn::Error::new_spanned(
            &chunk,
            format!("expected a section, one of {}", code_list(SECTIONS)),
        ));
        return;
    };
    let name = key.to_string();
    if !SECTIONS.contains(&name.as_str()) {
        let hint = did_you_mean(&name, SECTIONS)
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        args.errors.at(
            key.span(),
            format!(
                "unknown section `{name}`: expected one of {}{hint}",
                code_list(SECTIONS)
            ),
        );
        return;
    }
    if let Some(first) = seen.iter().find(|s| **s == key) {
        args.errors.at(
            key.span(),
            format!("`{name}` is given twice; merge the two lists"),
        );
        args.errors
            .at(first.span(), format!("`{name}` first given here"));
        return;
    }
    seen.push(key.clone());
    let rest: Vec<TokenTree> = iter.collect();
    if name == "blocking" {
        args.blocking = parse_blocking(&chunk, &rest, &mut args.errors);
        return;
    }
    if name.starts_with("accessor") {
        let value = match rest.as_slice() {
            [TokenTree::Punct(eq), TokenTree::Ident(value)] if eq.as_char() == '=' => {
                Some(value.clone())
            }
            _ => None,
        };
        match value {
            Some(value) if name == "accessor" => args.accessor = Some(value),
            Some(value) => args.accessor_mut = Some(value),
            None => args.errors.push(syn::Error::new_spanned(
                &chunk,
                format!("expected `{name} = method_name`"),
            )),
        }
        return;
    }
    let list = match rest.as_slice() {
        [TokenTree::Group(group)] if group.delimiter() == Delimiter::Parenthesis => group.stream(),
        _ => {
            args.errors.push(syn::Error::new_spanned(
                &chunk,
                format!("expected `{name}(name, name, ...)`"),
            ));
            return;
        }
    };
    let what = match name.as_str() {
        "methods" => "a method name",
        "attributes" => "an attribute name",
        _ => "an associated function name",
    };
    let mut names = Vec::new();
    for item in split_commas(list) {
        let mut tts = item.clone().into_iter();
        match (tts.next(), tts.next()) {
            (Some(TokenTree::Ident(ident)), None) => names.push(ident),
            _ => args.errors.push(syn::Error::new_spanned(
                &item,
                format!(
                    "expected {what} (a plain identifier), found `{}`",
                    item.to_token_stream().to_string().replace(" :: ", "::")
                ),
            )),
        }
    }
    match name.as_str() {
        "methods" => args.methods = names,
        "attributes" => args.attributes = names,
        _ => args.classmethods = names,
    }
}

/// `blocking`, `blocking()` or `blocking(block_on = name, error = path::Error)`.
fn parse_blocking(
    chunk: &TokenStream,
    rest: &[TokenTree],
    errors: &mut Errors,
) -> Option<Blocking> {
    let mut blocking = Blocking {
        block_on: Ident::new("block_on", Span::call_site()),
        error: None,
    };
    let list = match rest {
        [] => return Some(blocking),
        [TokenTree::Group(group)] if group.delimiter() == Delimiter::Parenthesis => group.stream(),
        _ => {
            errors.push(syn::Error::new_spanned(
                chunk,
                "expected `blocking(block_on = method, error = ErrorType)` (both optional)",
            ));
            return None;
        }
    };
    for option in split_commas(list) {
        let mut tts = option.clone().into_iter();
        let key = match (tts.next(), tts.next()) {
            (Some(TokenTree::Ident(key)), Some(TokenTree::Punct(eq))) if eq.as_char() == '=' => key,
            _ => {
                errors.push(syn::Error::new_spanned(
                    &option,
                    "expected `block_on = method` or `error = ErrorType`",
                ));
                continue;
            }
        };
        let value: TokenStream = tts.collect();
        match key.to_string().as_str() {
            "block_on" => match syn::parse2::<Ident>(value.clone()) {
                Ok(ident) => blocking.block_on = ident,
                Err(_) => errors.push(syn::Error::new_spanned(
                    &value,
                    "expected the name of the wrapper's method that blocks on a future",
                )),
            },
            "error" => match syn::parse2::<Path>(value.clone()) {
                Ok(path) => blocking.error = Some(path),
                Err(_) => errors.push(syn::Error::new_spanned(
                    &value,
                    "expected the error type of the wrapper's `block_on`",
                )),
            },
            other => {
                let hint = did_you_mean(other, ["block_on", "error"])
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                errors.at(
                    key.span(),
                    format!("unknown option `{other}` of `blocking(...)`: expected `block_on` or `error`{hint}"),
                );
            }
        }
    }
    Some(blocking)
}

/// Splits a token stream at its top-level commas, dropping empty pieces (a trailing comma).
fn split_commas(tokens: TokenStream) -> Vec<TokenStream> {
    let mut out = Vec::new();
    let mut cur = TokenStream::new();
    for tt in tokens {
        match &tt {
            TokenTree::Punct(p) if p.as_char() == ',' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.extend([tt]),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn messages(args: &Args) -> Vec<String> {
        args.errors.messages()
    }

    #[test]
    fn parses_all_sections() {
        let args = parse(quote! {
            crate::a::Target,
            methods(a, b,),
            attributes(x),
            classmethods(c),
            accessor = get,
            accessor_mut = get_mut,
        });
        assert!(messages(&args).is_empty(), "{:?}", messages(&args));
        assert_eq!(
            args.target.expect("target").to_token_stream().to_string(),
            "crate :: a :: Target"
        );
        assert_eq!(args.methods.len(), 2);
        assert_eq!(args.attributes[0], "x");
        assert_eq!(args.classmethods[0], "c");
        assert_eq!(args.accessor.expect("accessor"), "get");
        assert_eq!(args.accessor_mut.expect("accessor_mut"), "get_mut");
    }

    #[test]
    fn sections_may_be_omitted() {
        let args = parse(quote!(Target));
        assert!(messages(&args).is_empty());
        assert!(args.methods.is_empty() && args.accessor.is_none());
    }

    #[test]
    fn reports_every_mistake() {
        let args = parse(quote! {
            Target,
            method(a),
            methods(a, b::c, "d"),
            attributes(x),
            attributes(y),
            accessor(z),
        });
        let m = messages(&args);
        assert_eq!(m.len(), 6, "{m:#?}");
        assert!(
            m[0].contains("unknown section `method`") && m[0].contains("did you mean `methods`")
        );
        assert!(m[1].contains("found `b::c`"));
        assert!(m[2].contains("found `\"d\"`"), "{}", m[2]);
        assert!(m[3].contains("given twice"));
        assert!(m[4].contains("first given here"));
        assert!(m[5].contains("expected `accessor = method_name`"));
        assert_eq!(args.methods.len(), 1, "the valid names are kept");
    }

    #[test]
    fn target_must_come_first() {
        let args = parse(quote!(methods(a)));
        assert!(args.target.is_none());
        assert!(messages(&args)[0].contains("target type first"));
        let args = parse(quote!());
        assert!(messages(&args)[0].contains("target type first"));
        let args = parse(quote!(Target<T>, methods(a)));
        assert!(
            args.target.is_some(),
            "a generic target takes the wrapper's arguments"
        );
        let args = parse(quote!(a::<T>::Target, methods(a)));
        assert!(args.target.is_none());
    }
}
