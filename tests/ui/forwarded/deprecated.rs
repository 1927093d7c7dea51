#![deny(deprecated)]
use session_macros::{proxy_methods, publish_signatures};

pub struct Counter(i64);

#[publish_signatures]
impl Counter {
    /// The value, under its old name.
    #[deprecated(since = "0.2.0", note = "use `value`")]
    pub fn get(&self) -> i64 { self.0 }
}

struct W(Counter);

// Proxying a deprecated member is fine; calling it through the wrapper warns as the target does.
#[proxy_methods(Counter, methods(get))]
impl W {
    fn proxied(&self) -> &Counter { &self.0 }
}

fn main() {
    let _ = W(Counter(1)).get();
}
