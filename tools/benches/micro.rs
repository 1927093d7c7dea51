//! Microbenchmarks (`cargo bench -p session-tools`): scoped-registry lookup, and making and
//! closing a session with a factory (no I/O).

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use session_core::{AsyncSession, async_sessionmaker, create_async_engine};
use session_scoped::{ScopedRegistry, async_scoped_session, scope};

fn registry(c: &mut Criterion) {
    let registry = ScopedRegistry::new(|| 42u64, || 7u64);
    registry.call();
    c.bench_function("registry lookup (hit, constant key)", |b| {
        b.iter(|| black_box(registry.call()))
    });
    let by_thread = ScopedRegistry::thread_local(|| 42u64);
    by_thread.call();
    c.bench_function("registry lookup (hit, thread key)", |b| {
        b.iter(|| black_box(by_thread.call()))
    });
}

fn sessions(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let engine = create_async_engine("postgresql://bench@localhost/bench").expect("engine");
    let maker = async_sessionmaker(engine).expire_on_commit(false);
    c.bench_function("session create + close (factory, no I/O)", |b| {
        b.to_async(&runtime).iter(|| async {
            let session = maker.session();
            session.close().await;
        })
    });
    let scoped = async_scoped_session(maker.clone(), scope::current_thread);
    scoped.call();
    c.bench_function("scoped session: current scope's session (hit)", |b| {
        b.iter(|| black_box(scoped.proxied().autoflush()))
    });
}

/// A plain wrapper whose members #[proxy_methods] writes.
struct Plain(AsyncSession);

#[session_macros::proxy_methods(AsyncSession, methods(is_modified), attributes(autoflush, info))]
impl Plain {
    fn proxied(&self) -> &AsyncSession {
        &self.0
    }
}

fn proxy(c: &mut Criterion) {
    let engine = create_async_engine("postgresql://bench@localhost/bench").expect("engine");
    let session = AsyncSession::new(engine.clone());
    let plain = Plain(AsyncSession::new(engine));
    c.bench_function("direct call: session.autoflush()", |b| {
        b.iter(|| black_box(black_box(&session).autoflush()))
    });
    c.bench_function("proxied call: wrapper.autoflush()", |b| {
        b.iter(|| black_box(black_box(&plain).autoflush()))
    });
    // The blocking Session's members are written by #[proxy_methods] in blocking mode.
    let blocking = session_core::blocking::Session::new(engine_for_blocking()).expect("session");
    c.bench_function("direct call: async_session().in_transaction()", |b| {
        b.iter(|| black_box(black_box(&blocking).async_session().in_transaction()))
    });
    c.bench_function(
        "proxied call (blocking mode): blocking.in_transaction()",
        |b| b.iter(|| black_box(black_box(&blocking).in_transaction())),
    );
}

fn engine_for_blocking() -> session_core::Engine {
    create_async_engine("postgresql://bench@localhost/bench").expect("engine")
}

criterion_group!(benches, registry, sessions, proxy);
criterion_main!(benches);
