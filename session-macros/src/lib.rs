//! Procedural macros for the session stack: `#[proxy_methods(...)]` and the
//! signature-publishing attribute `#[publish_signatures]` (`#[derive(Entity)]` lands with the
//! mapping issue).
//!
//! A thin shell: each macro converts its input to `proc_macro2`, calls one function of
//! `session-macros-impl`, and on error emits `compile_error!` beside the user's item
//! unchanged. The rules, an example and its expansion are in `session-macros-impl`'s crate
//! documentation; `cargo run -p session-tools -- proxy expand <file.rs>` prints the expansion
//! of a file on the stable toolchain.
//!
//! ```text
//! #[session_macros::publish_signatures]
//! impl Counter {
//!     /// Adds one.
//!     pub fn increment(&mut self) -> i64 { ... }
//!     #[proxy(attribute)]
//!     pub fn label(&self) -> String { ... }
//! }
//!
//! #[session_macros::proxy_methods(Counter, methods(increment), attributes(label))]
//! impl Wrapper {
//!     fn proxied(&self) -> &Counter { &self.counter }
//!     fn proxied_mut(&mut self) -> &mut Counter { &mut self.counter }
//! }
//! ```

use proc_macro::TokenStream;

/// Publishes the signatures of an `impl Target { ... }` block's `pub fn`s, so that
/// `#[proxy_methods(Target, ...)]` can delegate to them by name.
///
/// Put it on an impl block in the module that defines `Target`; a generic target's self type
/// lists the impl's parameters (`impl<T: Entity> Repo<T>`). Mark getters that SQLAlchemy would
/// call attributes with the inert helper `#[proxy(attribute)]`; their setter is the
/// `pub fn set_<name>` taking one argument.
///
/// Arguments, all optional: `scope = crate::path::to::this_module` (the module's public
/// path) makes the signatures' names resolve here, where the target is, for wrappers in any
/// crate; without it they resolve where the wrapper is (write them as `crate::` paths,
/// rewritten to `$crate::`, or import them there). `parts(a, b)` on a type's main block and
/// `part = a` on each further block (an inherent one, or an `impl Trait for Target` whose
/// methods are then known as trait items) publish several blocks of one type.
///
/// On a wrapper that also carries `#[proxy_methods]`, the generated members are published
/// together with the block's own, so a further proxy can delegate to them.
#[proc_macro_attribute]
pub fn publish_signatures(attr: TokenStream, item: TokenStream) -> TokenStream {
    let original = proc_macro2::TokenStream::from(item.clone());
    match session_macros_impl::publish_signatures(attr.into(), item.into()) {
        Ok(tokens) => tokens.into(),
        Err(error) => fallback(error, original),
    }
}

/// Generates delegating members on a wrapper from a list of the target's member names, like
/// SQLAlchemy's `create_proxy_methods`:
///
/// `#[proxy_methods(Target, methods(a, b), attributes(x), classmethods(c), accessor = name,
/// accessor_mut = name, blocking(block_on = name, error = Error))]` on `impl Wrapper { ... }`.
/// Every section is optional. A generic target is named with the wrapper's arguments
/// (`Repo<U>`); its bounds become where clauses of the generated block. With `blocking(...)`,
/// async target members become synchronous ones that run through the wrapper's
/// `fn block_on<F: Future>(&self, future: F) -> Result<F::Output, Error>`.
///
/// `&self` methods reach the target through `self.proxied()`, `&mut self` methods through
/// `self.proxied_mut()` (or the methods named by `accessor` / `accessor_mut`); each may return
/// anything that derefs to the target. The target must carry `#[publish_signatures]`.
#[proc_macro_attribute]
pub fn proxy_methods(attr: TokenStream, item: TokenStream) -> TokenStream {
    let original = proc_macro2::TokenStream::from(item.clone());
    match session_macros_impl::proxy_methods(attr.into(), item.into()) {
        Ok(tokens) => tokens.into(),
        Err(error) => fallback(error, original),
    }
}

/// The callback of a target's published macro. Not for direct use.
#[doc(hidden)]
#[proc_macro]
pub fn __proxy_expand(input: TokenStream) -> TokenStream {
    match session_macros_impl::proxy_expand(input.into()) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

/// Maps a struct to a table: implements `session_core::Entity`, and adds one constant `A::C`
/// whose fields are the typed columns (`A::C.id`) and the relationship descriptors
/// (`A::C.bs`) that statements and loader options take. `C` is the only public name the
/// derive adds to the type (like SQLAlchemy's `table.c`), so the struct's own methods may
/// share its fields' names (a getter `fn id(&self)` beside the field `id`).
///
/// On the struct: `#[entity(table = "name")]` (default: the struct's name in snake_case). On a
/// field: `column = "sql_name"`, `primary_key`, `generated` (SERIAL / IDENTITY),
/// `server_default = "now()"`, `foreign_key = "table.column"`, `unique`,
/// `sql_type = "varchar(30)"`, `on_delete = "cascade"`, `index`, `check = "..."`, `version`
/// (a version counter; with `system` on an `xmin: Xid` field, one the server generates), and
/// `relationship(foreign_key = "field")` on a `Collection<Child>` (the child's field holding
/// this key), a `Reference<Parent>` (this struct's field holding the parent's key) or a
/// `Reference<Child>` with `uselist = false` (a one-to-one). A relationship also takes
/// `back_populates = "field"`, `cascade = "save-update, merge, delete, delete-orphan, expunge,
/// refresh-expire"` (or `all`; without it, SQLAlchemy's default `save-update, merge`),
/// `passive_deletes = true`, and for a many-to-many `secondary = "LinkEntity"` with
/// `target_foreign_key = "field"` (`foreign_key` then names the link's field holding this
/// key). Mistakes are compile errors at the attribute. The struct must derive (or implement)
/// `Clone` and `Debug` itself; every field's type must implement `session_core::ColumnType`.
#[proc_macro_derive(Entity, attributes(entity))]
pub fn derive_entity(input: TokenStream) -> TokenStream {
    match session_macros_impl::entity::derive_entity(input.into()) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

/// Maps a Rust enum or newtype to a column type: implements `ToSql`, `FromSql`,
/// `session_core::ColumnType` and `session_core::ArrayElement` for it.
///
/// - An enum of unit variants is stored as `text` (each variant's name, or as
///   `#[column(rename_all = "snake_case")]` / `#[column(rename = "...")]` say), or as the
///   PostgreSQL enum type `#[column(pg_enum = "name")]` names, which `MetaData::create_all`
///   creates. A label the enum does not know is a decode error naming it.
/// - A struct of one field (`struct Price(Decimal);`) is stored as the type it wraps
///   (`#[column(sql_type = "...")]` overrides the SQL type), with `max` / `min` / `sum` / `avg`
///   whenever the wrapped type has them.
///
/// ```text
/// #[derive(Debug, Clone, Copy, PartialEq, session_core::ColumnType)]
/// #[column(pg_enum = "order_status", rename_all = "snake_case")]
/// enum OrderStatus { New, OnHold, Shipped }
/// ```
#[proc_macro_derive(ColumnType, attributes(column))]
pub fn derive_column_type(input: TokenStream) -> TokenStream {
    match session_macros_impl::column_type::derive_column_type(input.into()) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

/// Decodes a struct with named fields from a row of raw SQL, each field from the column of
/// its name (`#[row(rename = "sql_name")]` for another): implements `session_core::FromRow`,
/// which `RowResult::rows_as::<S>()` uses.
#[proc_macro_derive(FromRow, attributes(row))]
pub fn derive_from_row(input: TokenStream) -> TokenStream {
    match session_macros_impl::from_row::derive_from_row(input.into()) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

/// The error beside the user's item, unchanged, so the rest of the crate keeps compiling.
fn fallback(error: syn::Error, original: proc_macro2::TokenStream) -> TokenStream {
    let mut tokens = error.to_compile_error();
    tokens.extend(original);
    tokens.into()
}
