// A target in this crate, in a submodule: few attributes, so the error lists them.
mod model {
    pub struct Settings {
        name: String,
        limit: usize,
    }

    #[session_macros::publish_signatures]
    impl Settings {
        /// The name.
        #[proxy(attribute)]
        pub fn name(&self) -> &str { &self.name }
        /// The limit.
        #[proxy(attribute)]
        pub fn limit(&self) -> usize { self.limit }
        /// Resets both.
        pub fn reset(&mut self) { self.name.clear(); self.limit = 0; }
    }
}

use model::Settings;

struct W(Settings);

#[session_macros::proxy_methods(Settings, attributes(nmae, limits, colour))]
impl W {
    fn proxied(&self) -> &Settings { &self.0 }
}

fn main() {}
