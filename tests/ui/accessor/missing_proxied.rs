use session_macros::proxy_methods;
use session_tests::proxy_targets::Counter;

struct W(Counter);

#[proxy_methods(Counter, methods(get, increment), classmethods(with_value))]
impl W {
    fn counter(&self) -> &Counter { &self.0 }
}

fn main() {}
