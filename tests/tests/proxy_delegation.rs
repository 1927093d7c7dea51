//! `#[proxy_methods]` run-pass tests: wrappers in this crate proxy `Counter` from
//! `session_tests::proxy_targets` (another crate) through a `&mut Counter`, an
//! `Arc<Counter>` and a `Mutex` guard, and a proxy of a proxy; every generated member must
//! really reach the target.

use std::sync::{Arc, Mutex, MutexGuard};

use session_macros::proxy_methods;
use session_tests::proxy_targets::{Boxed, Counter, Snapshot};

/// Borrows a counter mutably; `&self` methods go through `proxied`, `&mut self` ones through
/// `proxied_mut`.
struct ByRef<'a> {
    counter: &'a mut Counter,
}

#[proxy_methods(
    Counter,
    methods(
        increment, get, add, extend_log, apply, longer, sum_pair, read_later, add_later, snapshot,
        absorb
    ),
    attributes(label, log_len),
    classmethods(with_value, create_later)
)]
impl<'a> ByRef<'a> {
    fn proxied(&self) -> &Counter {
        self.counter
    }

    fn proxied_mut(&mut self) -> &mut Counter {
        self.counter
    }
}

/// Shares a counter through an `Arc`: only `&self` members.
struct ByArc(Arc<Counter>);

#[proxy_methods(
    session_tests::proxy_targets::Counter,
    methods(get, sum_pair, read_later),
    attributes(log_len)
)]
impl ByArc {
    fn proxied(&self) -> Arc<Counter> {
        Arc::clone(&self.0)
    }
}

/// Guards a counter with a `Mutex`; both accessors are the same method, named explicitly.
/// (No async members: clippy's `await_holding_lock` rightly flags a std guard held across
/// the target's `.await`.)
struct ByMutex(Mutex<Counter>);

#[proxy_methods(Counter, methods(increment, get), attributes(log_len), accessor = lock, accessor_mut = lock)]
impl ByMutex {
    fn lock(&self) -> MutexGuard<'_, Counter> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A proxy of the proxy `Boxed`: its generated members and its own `describe`.
struct Outer(Boxed);

#[proxy_methods(
    Boxed,
    methods(increment, get, read_later, describe),
    attributes(label),
    classmethods(new)
)]
impl Outer {
    fn proxied(&self) -> &Boxed {
        &self.0
    }

    fn proxied_mut(&mut self) -> &mut Boxed {
        &mut self.0
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn sync_methods_delegate_through_a_reference() {
    let mut counter = Counter::with_value(10);
    {
        let mut w = ByRef {
            counter: &mut counter,
        };
        assert_eq!(w.increment(), 11);
        assert_eq!(w.get(), 11);
        assert_eq!(w.add(4_i32), 15, "generic argument");
        assert_eq!(w.add(5_u8), 20);
        assert_eq!(w.extend_log(["a", "b"]), 2, "generic with a where clause");
        assert_eq!(w.extend_log(vec![1, 2, 3]), 5);
        assert_eq!(w.apply(|v| v * 2), 40, "impl Trait argument");
        assert_eq!(w.sum_pair((1, 2)), 43, "pattern argument renamed");
        assert_eq!(
            w.snapshot(),
            Snapshot {
                value: 40,
                label: String::new()
            },
            "crate:: path type"
        );
        assert_eq!(w.absorb(Counter::with_value(2)), 42, "Self argument");
    }
    assert_eq!(counter.get(), 42, "the state changed on the target");
    assert_eq!(counter.log_len(), 5);
}

#[test]
fn lifetimes_are_forwarded() {
    let mut counter = Counter::with_value(0);
    counter.set_label("abc");
    let w = ByRef {
        counter: &mut counter,
    };
    let other = String::from("longer label");
    let longest: &str = w.longer(&other);
    assert_eq!(longest, "longer label");
    assert_eq!(w.longer("x"), "abc");
}

#[test]
fn attributes_get_and_set() {
    let mut counter = Counter::default();
    {
        let mut w = ByRef {
            counter: &mut counter,
        };
        assert_eq!(w.label(), "");
        w.set_label("renamed");
        assert_eq!(w.label(), "renamed");
        w.set_label(String::from("again"));
        assert_eq!(w.log_len(), 0);
    }
    assert_eq!(counter.label(), "again");
}

#[test]
fn classmethods_call_the_target_type() {
    let c: Counter = ByRef::with_value(7);
    assert_eq!(c.get(), 7);
    let c: Counter = runtime().block_on(ByRef::create_later(8));
    assert_eq!(c.get(), 8);
}

#[test]
fn async_methods_delegate_and_await() {
    let rt = runtime();
    let mut counter = Counter::with_value(1);
    {
        let mut w = ByRef {
            counter: &mut counter,
        };
        assert_eq!(rt.block_on(w.add_later(2)), 3);
        assert_eq!(rt.block_on(w.read_later()), 3);
    }
    assert_eq!(counter.get(), 3);
}

#[test]
fn arc_accessor() {
    let mut counter = Counter::with_value(5);
    counter.extend_log(["x"]);
    let shared = Arc::new(counter);
    let w = ByArc(Arc::clone(&shared));
    assert_eq!(w.get(), 5);
    assert_eq!(w.sum_pair((1, 1)), 7);
    assert_eq!(w.log_len(), 1);
    assert_eq!(runtime().block_on(w.read_later()), 5);
    assert_eq!(
        Arc::strong_count(&shared),
        2,
        "the accessor's temporary Arc was dropped"
    );
}

#[test]
fn mutex_guard_accessor() {
    let mut w = ByMutex(Mutex::new(Counter::with_value(0)));
    assert_eq!(w.increment(), 1);
    assert_eq!(w.increment(), 2);
    assert_eq!(w.increment(), 3);
    assert_eq!(w.get(), 3);
    assert_eq!(w.log_len(), 0);
    assert!(
        w.0.try_lock().is_ok(),
        "the guard is released after each call"
    );
    assert_eq!(w.0.lock().expect("lock").get(), 3);
}

#[test]
fn proxy_of_a_proxy() {
    let mut outer = Outer(Boxed::new(Counter::with_value(1)));
    assert_eq!(outer.increment(), 2);
    assert_eq!(outer.get(), 2);
    assert_eq!(runtime().block_on(outer.read_later()), 2);
    outer.set_label("deep");
    assert_eq!(outer.label(), "deep");
    assert_eq!(outer.describe(), "deep=2");
    let fresh: Boxed = Outer::new(Counter::with_value(9));
    assert_eq!(fresh.get(), 9);
}
