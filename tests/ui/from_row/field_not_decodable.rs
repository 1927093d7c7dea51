struct Opaque;

#[derive(session_core::FromRow)]
struct Line {
    sku: String,
    handle: Opaque,
}

fn main() {}
