use session_macros::proxy_methods;

/// A target whose impl block never got `#[session_macros::publish_signatures]`.
pub struct Plain(i64);

impl Plain {
    pub fn value(&self) -> i64 {
        self.0
    }
}

struct W(Plain);

#[proxy_methods(Plain, methods(value))]
impl W {
    fn proxied(&self) -> &Plain { &self.0 }
}

fn main() {}
