//! Parsing, validation and expansion behind `session-macros`, on `proc_macro2`, so that
//! `session-tools` can run the very same expansion. (Filled in with the proxy and mapping
//! issues.)
