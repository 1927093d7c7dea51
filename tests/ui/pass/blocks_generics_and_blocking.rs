//! Two #[proxy_methods] blocks on one wrapper in one module (one behind a cfg that is on, one
//! behind a cfg that is off), a generic target with the wrapper's parameter mapped onto its
//! own, and a blocking wrapper over an async target that refuses to block inside async code.
#![deny(warnings)]

use std::future::Future;

pub struct Counter(i64);

#[session_macros::publish_signatures]
impl Counter {
    /// The value.
    pub fn value(&self) -> i64 { self.0 }
    /// Twice the value.
    pub fn double(&self) -> i64 { self.0 * 2 }
    /// Adds one.
    pub fn bump(&mut self) { self.0 += 1 }
}

pub struct W(Counter);

#[session_macros::proxy_methods(Counter, methods(value))]
impl W {
    fn proxied(&self) -> &Counter { &self.0 }
}

#[cfg(all())]
#[session_macros::proxy_methods(Counter, methods(double), accessor = proxied)]
impl W {}

#[cfg(any())]
#[session_macros::proxy_methods(Counter, methods(nonexistent))]
impl W {}

#[session_macros::proxy_methods(Counter, methods(bump))]
#[cfg(all())]
impl W {
    fn proxied_mut(&mut self) -> &mut Counter { &mut self.0 }
}

pub struct Stack<T>(Vec<T>);

#[session_macros::publish_signatures]
impl<T: Clone + PartialEq> Stack<T> {
    /// The top item.
    pub fn top(&self) -> Option<T> { self.0.last().cloned() }
    /// Pushes `item`; returns `self`.
    pub fn push(&mut self, item: T) -> &mut Self { self.0.push(item); self }
}

pub struct Shared<U>(Stack<U>);

#[session_macros::proxy_methods(Stack<U>, methods(top, push))]
impl<U> Shared<U> {
    fn proxied(&self) -> &Stack<U> { &self.0 }
    fn proxied_mut(&mut self) -> &mut Stack<U> { &mut self.0 }
}

pub struct Client(i64);

#[session_macros::publish_signatures]
impl Client {
    /// Fetches the value.
    pub async fn fetch(&self, plus: i64) -> Result<i64, String> { Ok(self.0 + plus) }
    /// Closes.
    pub async fn close(&self) {}
    /// The id, without I/O.
    pub fn id(&self) -> i64 { self.0 }
}

pub struct BlockingClient { client: Client, runtime: tokio::runtime::Runtime }

#[session_macros::proxy_methods(Client, blocking(error = String), methods(fetch, close, id))]
impl BlockingClient {
    fn proxied(&self) -> &Client { &self.client }
    fn block_on<F: Future>(&self, future: F) -> Result<F::Output, String> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err("called from async code".into());
        }
        Ok(self.runtime.block_on(future))
    }
}

fn main() {
    let mut w = W(Counter(2));
    assert_eq!((w.value(), w.double()), (2, 4));
    w.bump();
    assert_eq!(w.value(), 3);

    let mut s = Shared(Stack(vec![1u8]));
    s.push(2).push(3);
    assert_eq!(s.top(), Some(3));

    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let blocking = BlockingClient { client: Client(40), runtime };
    assert_eq!(blocking.fetch(2), Ok(42));
    assert_eq!(blocking.close(), Ok(()));
    assert_eq!(blocking.id(), 40);
    let inner = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let refused = inner.block_on(async { blocking.fetch(1) });
    assert_eq!(refused, Err("called from async code".to_string()));
}
