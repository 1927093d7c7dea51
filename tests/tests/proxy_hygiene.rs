//! The generated code names nothing through the prelude or relative paths: it compiles
//! beside items that shadow `Result`, `Ok`, `Option`, `Some`, `None`, `Sized`, `core` and
//! `std`, under `#![deny(warnings)]`.
#![deny(warnings)]

use session_macros::proxy_methods;
use session_tests::proxy_targets::{Boxed, Counter};

struct Result;
struct Ok;
struct Option;
struct Some;
struct None;
struct Sized;
mod core {}
mod std {}

/// Proxies every kind of member, sync and async, through both accessors.
pub struct Shadowed {
    counter: Counter,
}

#[proxy_methods(
    Counter,
    methods(
        increment, get, add, extend_log, apply, sum_pair, read_later, add_later, snapshot
    ),
    attributes(label, log_len),
    classmethods(with_value, create_later)
)]
impl Shadowed {
    fn proxied(&self) -> &Counter {
        &self.counter
    }

    fn proxied_mut(&mut self) -> &mut Counter {
        &mut self.counter
    }
}

/// A proxy of a proxy, in the same shadowed module.
pub struct ShadowedOuter(Boxed);

#[proxy_methods(Boxed, methods(get, describe), attributes(label))]
impl ShadowedOuter {
    fn proxied(&self) -> &Boxed {
        &self.0
    }

    fn proxied_mut(&mut self) -> &mut Boxed {
        &mut self.0
    }
}

#[test]
fn compiles_and_delegates_beside_shadowing_items() {
    let _shadows = (Result, Ok, Option, Some, None, Sized);
    let mut w = Shadowed {
        counter: Shadowed::with_value(1),
    };
    assert_eq!(w.increment(), 2);
    assert_eq!(w.add(3_i8), 5);
    w.set_label("x");
    assert_eq!(w.label(), "x");
    assert_eq!(w.snapshot().value, 5);
    let rt = ::tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    assert_eq!(rt.block_on(w.add_later(1)), 6);
    let outer = ShadowedOuter(Boxed::new(w.counter));
    assert_eq!(outer.describe(), "x=6");
}
