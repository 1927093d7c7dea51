//! Targets for the `#[proxy_methods]` tests, in a crate other than the test binaries so that
//! every use of them is a cross-crate use: `Counter` publishes its signatures, `Boxed`
//! proxies `Counter` and publishes its own members together with the generated ones (a
//! proxy of a proxy starts from it).

/// What [`Counter::snapshot`] returns; named as `crate::proxy_targets::Snapshot` in the
/// signature, so it resolves in the wrapper's crate through `$crate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The value at the time.
    pub value: i64,
    /// The label at the time.
    pub label: String,
}

/// A small stateful target with every kind of member the proxy generator forwards.
///
/// Types in its published signatures are written so that they resolve anywhere (`::std::`,
/// `crate::` paths, prelude types): they are resolved where the wrapper is.
#[derive(Debug, Default)]
pub struct Counter {
    value: i64,
    label: String,
    log: Vec<String>,
}

#[session_macros::publish_signatures]
impl Counter {
    /// Adds one and returns the new value.
    ///
    /// Saturates at `i64::MAX`.
    pub fn increment(&mut self) -> i64 {
        self.value = self.value.saturating_add(1);
        self.value
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.value
    }

    /// Adds anything that converts into an `i64`; returns the new value.
    pub fn add<T: Into<i64>>(&mut self, by: T) -> i64 {
        self.value += by.into();
        self.value
    }

    /// Appends every item to the log; returns the log's new length.
    pub fn extend_log<I>(&mut self, items: I) -> usize
    where
        I: IntoIterator,
        I::Item: ::std::fmt::Display,
    {
        self.log.extend(items.into_iter().map(|i| i.to_string()));
        self.log.len()
    }

    /// Replaces the value with `f(value)`; returns it.
    pub fn apply(&mut self, f: impl FnOnce(i64) -> i64) -> i64 {
        self.value = f(self.value);
        self.value
    }

    /// The longer of the label and `other`.
    pub fn longer<'a>(&'a self, other: &'a str) -> &'a str {
        if other.len() > self.label.len() {
            other
        } else {
            &self.label
        }
    }

    /// The value plus both halves of a pair (the argument is a pattern).
    pub fn sum_pair(&self, (a, b): (i64, i64)) -> i64 {
        self.value + a + b
    }

    /// The value, read after yielding to the runtime once.
    pub async fn read_later(&self) -> i64 {
        tokio::task::yield_now().await;
        self.value
    }

    /// Adds `by` after yielding to the runtime once; returns the new value.
    pub async fn add_later(&mut self, by: i64) -> i64 {
        tokio::task::yield_now().await;
        self.value += by;
        self.value
    }

    /// The counter's label.
    #[proxy(attribute)]
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Renames the counter.
    pub fn set_label(&mut self, label: impl Into<String>) {
        self.label = label.into();
    }

    /// How many entries the log holds (read-only: there is no `set_log_len`).
    #[proxy(attribute)]
    pub fn log_len(&self) -> usize {
        self.log.len()
    }

    /// The value and label, copied out.
    pub fn snapshot(&self) -> crate::proxy_targets::Snapshot {
        Snapshot {
            value: self.value,
            label: self.label.clone(),
        }
    }

    /// Takes over `other`'s value (a `Self` argument); returns the new value.
    pub fn absorb(&mut self, other: Self) -> i64 {
        self.value += other.value;
        self.value
    }

    /// A counter starting at `value`.
    pub fn with_value(value: i64) -> Self {
        Counter {
            value,
            ..Counter::default()
        }
    }

    /// A counter starting at `value`, made after yielding to the runtime once.
    pub async fn create_later(value: i64) -> Self {
        tokio::task::yield_now().await;
        Counter::with_value(value)
    }

    /// Consumes the counter (by value: cannot be proxied through an accessor).
    pub fn into_value(self) -> i64 {
        self.value
    }

    #[allow(
        dead_code,
        reason = "listed by a compile-fail case that expects `is not pub`"
    )]
    fn secret(&self) -> i64 {
        self.value
    }
}

/// A proxy of [`Counter`] that owns it in a `Box`, and publishes its signatures (its own
/// `describe` and the generated members) for a proxy of a proxy.
#[derive(Debug)]
pub struct Boxed {
    inner: Box<Counter>,
}

#[session_macros::proxy_methods(Counter, methods(increment, get, read_later), attributes(label))]
#[session_macros::publish_signatures]
impl Boxed {
    /// Boxes `inner`.
    pub fn new(inner: Counter) -> Self {
        Boxed {
            inner: Box::new(inner),
        }
    }

    /// "label=value".
    pub fn describe(&self) -> String {
        format!("{}={}", self.inner.label, self.inner.value)
    }

    fn proxied(&self) -> &Counter {
        &self.inner
    }

    fn proxied_mut(&mut self) -> &mut Counter {
        &mut self.inner
    }
}
