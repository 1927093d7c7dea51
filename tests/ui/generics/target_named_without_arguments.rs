use session_macros::{proxy_methods, publish_signatures};

pub struct Repo<T>(Vec<T>);

#[publish_signatures]
impl<T: Clone> Repo<T> {
    /// The first item.
    pub fn first(&self) -> Option<T> { self.0.first().cloned() }
}

struct W<U>(Repo<U>);

#[proxy_methods(Repo, methods(first))]
impl<U: Clone> W<U> {
    fn proxied(&self) -> &Repo<U> { &self.0 }
}

fn main() {}
