#[derive(session_core::FromRow)]
enum Status {
    Open,
    Closed,
}

#[derive(session_core::FromRow)]
struct Pair(i32, String);

#[derive(session_core::FromRow)]
struct Marker;

#[derive(session_core::FromRow)]
union Bits {
    int: i32,
    float: f32,
}

#[derive(session_core::FromRow)]
struct Borrowed<'a> {
    name: &'a str,
}

fn main() {}
