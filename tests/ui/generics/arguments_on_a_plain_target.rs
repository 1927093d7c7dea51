use session_macros::{proxy_methods, publish_signatures};

pub struct Plain(i64);

#[publish_signatures]
impl Plain {
    /// The value.
    pub fn value(&self) -> i64 { self.0 }
}

struct W(Plain);

#[proxy_methods(Plain<i64>, methods(value))]
impl W {
    fn proxied(&self) -> &Plain { &self.0 }
}

fn main() {}
