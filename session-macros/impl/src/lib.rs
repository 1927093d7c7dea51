//! Parsing, validation and expansion behind `session-macros`, on `proc_macro2`, so that
//! `session-tools` can run the very same expansion.
//!
//! # What the macros do
//!
//! SQLAlchemy's `create_proxy_methods(AsyncSession, ..., methods=[...], attributes=[...],
//! classmethods=[...])` names only the target's members and a generator writes the
//! delegating code. Here a target publishes its signatures once, and wrappers name the
//! members they want:
//!
//! ```text
//! // In the crate (and module) that defines `Counter`:
//! pub struct Counter { /* ... */ }
//!
//! #[session_macros::publish_signatures]
//! impl Counter {
//!     /// Adds `by` and returns the new value.
//!     pub fn add(&mut self, by: i64) -> i64 { /* ... */ }
//!     /// Waits, then reads the value.
//!     pub async fn read(&self) -> i64 { /* ... */ }
//!     /// The counter's label.
//!     #[proxy(attribute)]
//!     pub fn label(&self) -> String { /* ... */ }
//!     /// Renames the counter.
//!     pub fn set_label(&mut self, label: String) { /* ... */ }
//!     /// A fresh counter.
//!     pub fn new() -> Self { /* ... */ }
//! }
//!
//! // Anywhere that can name `Counter` (another module, another crate):
//! use some_crate::Counter;
//!
//! pub struct Shared(std::sync::Mutex<Counter>);
//!
//! #[session_macros::proxy_methods(Counter, methods(add, read), attributes(label), classmethods(new))]
//! impl Shared {
//!     fn proxied(&self) -> std::sync::MutexGuard<'_, Counter> { self.0.lock().unwrap() }
//!     fn proxied_mut(&mut self) -> std::sync::MutexGuard<'_, Counter> { self.0.lock().unwrap() }
//! }
//! ```
//!
//! which adds, beside the user's impl block:
//!
//! ```text
//! #[automatically_derived]
//! impl Shared {
//!     /// Adds `by` and returns the new value.
//!     ///
//!     /// Proxied for [`Counter`] on behalf of [`Shared`].
//!     #[inline]
//!     pub fn add(&mut self, by: i64) -> i64 {
//!         <Counter>::add(&mut *self.proxied_mut(), by)
//!     }
//!     /// Waits, then reads the value.
//!     ///
//!     /// Proxied for [`Counter`] on behalf of [`Shared`].
//!     #[inline]
//!     pub async fn read(&self) -> i64 {
//!         <Counter>::read(&*self.proxied()).await
//!     }
//!     // label(&self) -> String and set_label(&mut self, label: String), likewise
//!     /// A fresh counter.
//!     ///
//!     /// Proxied for [`Counter`] on behalf of [`Shared`].
//!     #[inline]
//!     pub fn new() -> Counter {
//!         <Counter>::new()
//!     }
//! }
//! ```
//!
//! # Rules
//!
//! - **Publishing.** `#[publish_signatures]` goes on an `impl Target` block *in the module
//!   that defines `Target`*; a generic target's self type lists the impl's parameters in order
//!   (`impl<'a, T: Entity> Repo<'a, T>`). It publishes every `pub fn` (signature, and the
//!   `#[doc]`, `#[cfg]`, `#[must_use]`, `#[deprecated]` and `#[track_caller]` attributes that
//!   travel with each proxied member) in a hidden `#[macro_export]` `macro_rules!` and
//!   re-exports that macro under the type's own name beside it
//!   (`pub use __session_proxy_sig_Target_<FNV-1a hash of the block> as Target;`), so every
//!   path that reaches the type reaches the macro: `crate::a::Target`, `other_crate::Target`,
//!   an imported `Target`. A path that reaches the type through a `use` of the *type only*
//!   from elsewhere (e.g. a `type` alias) does not carry the macro; the resulting error says
//!   to add or reach the published block.
//! - **Several blocks.** `#[publish_signatures(parts(a, b))]` on the main block,
//!   `#[publish_signatures(part = a)]` on each further one (inherent, or `impl Trait for
//!   Target`, whose methods are reported as trait items when listed). The main macro passes
//!   the signatures along the parts (`$crate::__session_proxy_part_Target_a!`); in the
//!   defining crate the main block needs a `scope` (its module, where the parts live).
//! - **Where names resolve.** With `#[publish_signatures(scope = crate::path)]` (the block's
//!   module, by its public path), at the target: a hidden module `__session_proxy_Target`
//!   captures the module's scope and aliases every type and trait the signatures name (see
//!   `scope.rs`), and the signatures name those aliases through `$crate::path::...`. Without
//!   `scope`, where the wrapper is: write names so they resolve there, or as `crate::` paths,
//!   rewritten to `$crate::`. `Self` becomes the wrapper's path to the target.
//! - **Generic targets** are named with the wrapper's arguments, `#[proxy_methods(Repo<U>,
//!   ...)]`; the target's parameters are replaced by them in every signature, and the
//!   target's bounds and where clauses become where clauses of the generated block.
//! - **Blocking mode.** `blocking(block_on = name, error = Error)`: async members become
//!   synchronous ones calling `self.block_on(future)`; a `Result` output keeps its type (the
//!   blocking error converts with `From`), any other output `X` becomes `Result<X, Error>`.
//! - **Attributes** are getters marked `#[proxy(attribute)]` (`pub fn name(&self) -> T`);
//!   the setter is the `pub fn set_name` taking `&self` or `&mut self` and one argument, and
//!   is proxied with its attribute when it exists.
//! - **Classmethods** are `pub fn`s without a receiver; the proxy calls `Target::name(...)`.
//! - **Accessors.** `&self` methods call `self.proxied()`, `&mut self` methods call
//!   `self.proxied_mut()`; both may return anything that derefs to the target. Rename them
//!   with `accessor = name` and `accessor_mut = name`.
//! - **Proxy of a proxy.** Put `#[publish_signatures]` on the wrapper's impl block too (either
//!   order): the generated members are published with the block's own `pub fn`s, and a
//!   further proxy stacks its "Proxied for" line above the earlier one.
//!
//! Every mistake is a compile error at the user's token, all of them in one compile, with
//! the user's impl block still emitted.

mod attr;
pub mod column_type;
pub mod entity;
mod expand;
pub mod from_row;
mod offline;
mod protocol;
mod proxy;
mod publish;
mod scope;
mod signatures;
mod subst;
mod suggest;
mod valid;

use proc_macro2::TokenStream;

pub use offline::{DOLLAR_CRATE, Expansion, expand_source};

/// `#[publish_signatures]` on `impl Target { ... }`: the impl block (without its
/// `#[proxy(...)]` helpers) and the hidden macro carrying its `pub fn` signatures.
///
/// # Errors
///
/// The item is not an impl block, or the attribute has arguments. Mistakes inside the block
/// come back as `compile_error!`s beside the block in the `Ok` value.
pub fn publish_signatures(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    publish::publish_signatures(attr, item)
}

/// `#[proxy_methods(Target, methods(...), attributes(...), classmethods(...))]` on
/// `impl Wrapper { ... }`: the impl block unchanged and a call of `Target!`, the target's
/// published macro, which calls back [`proxy_expand`] with the signatures.
///
/// # Errors
///
/// The item is not an inherent impl block. Mistakes in the arguments come back as
/// `compile_error!`s beside the block in the `Ok` value, so that the names that are fine
/// are still checked.
pub fn proxy_methods(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    proxy::proxy_methods(attr, item)
}

/// `__proxy_expand! { @signatures { ... } @request { ... } }`, invoked by a target's
/// published macro: the delegating impl block, every mistake as a `compile_error!` at the
/// user's token, and the marker impl that proves the target was published.
///
/// # Errors
///
/// The input is not in the published macro's format (it was written by hand).
pub fn proxy_expand(input: TokenStream) -> syn::Result<TokenStream> {
    proxy::proxy_expand(input)
}
