//! Procedural macros for the session stack: `#[proxy_methods(...)]`, the signature-publishing
//! attribute, and `#[derive(Entity)]`. A thin shell: the logic lives in `session-macros-impl`.
//! (The macros land with the proxy and mapping issues.)
