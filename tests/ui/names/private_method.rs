use session_macros::{proxy_methods, publish_signatures};

pub struct Counter(i64);

#[publish_signatures]
impl Counter {
    /// The value.
    pub fn value(&self) -> i64 { self.0 }

    fn secret(&self) -> i64 { self.0 * 2 }
}

struct W(Counter);

#[proxy_methods(Counter, methods(value, secret))]
impl W {
    fn proxied(&self) -> &Counter { &self.0 }
}

fn main() {}
