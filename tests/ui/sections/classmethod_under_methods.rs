use session_macros::proxy_methods;
use session_tests::proxy_targets::Counter;

struct W(Counter);

#[proxy_methods(Counter, methods(with_value))]
impl W {
    fn proxied(&self) -> &Counter { &self.0 }
    fn proxied_mut(&mut self) -> &mut Counter { &mut self.0 }
}

fn main() {}
