#![deny(unused_must_use)]
use session_macros::{proxy_methods, publish_signatures};

pub struct Counter(i64);

#[publish_signatures]
impl Counter {
    /// The value.
    #[must_use = "reading the value does nothing else"]
    pub fn value(&self) -> i64 { self.0 }
}

struct W(Counter);

#[proxy_methods(Counter, methods(value))]
impl W {
    fn proxied(&self) -> &Counter { &self.0 }
}

fn main() {
    W(Counter(1)).value();
}
