use session_macros::{proxy_methods, publish_signatures};

pub struct Client;

#[publish_signatures]
impl Client {
    /// Closes the client.
    pub async fn close(&self) {}
}

struct Blocking(Client);

#[proxy_methods(Client, blocking(), methods(close))]
impl Blocking {
    fn proxied(&self) -> &Client { &self.0 }
    fn block_on<F: std::future::Future>(&self, _f: F) -> Result<F::Output, String> { Err("no runtime".into()) }
}

fn main() {}
