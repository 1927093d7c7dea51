use session_macros::proxy_methods;
use session_tests::proxy_targets::Counter;

struct W(Counter);

#[proxy_methods(Counter, methods(get, increment, add_later), attributes(label))]
impl W {
    fn proxied(&self) -> &Counter { &self.0 }
}

fn main() {}
