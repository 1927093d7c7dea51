//! A type published in two blocks, proxied in the crate that defines it (the main block has a
//! `scope`, through which its macro reaches the other part).
#![deny(warnings)]

pub struct Counter(i64);

#[session_macros::publish_signatures(scope = crate, parts(more))]
impl Counter {
    /// The value.
    pub fn value(&self) -> i64 { self.0 }
}

#[session_macros::publish_signatures(part = more)]
impl Counter {
    /// Twice the value.
    pub fn double(&self) -> i64 { self.0 * 2 }
}

pub struct W(Counter);

#[session_macros::proxy_methods(Counter, methods(value, double))]
impl W {
    fn proxied(&self) -> &Counter { &self.0 }
}

fn main() {
    let w = W(Counter(4));
    assert_eq!((w.value(), w.double()), (4, 8));
}
