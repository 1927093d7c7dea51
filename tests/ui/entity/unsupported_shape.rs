#[derive(Debug, Clone, session_core::Entity)]
enum Status {
    Open,
    Closed,
}

#[derive(Debug, Clone, session_core::Entity)]
struct Pair(i32, String);

#[derive(Debug, Clone, session_core::Entity)]
struct Marker;

#[derive(Clone, Copy, session_core::Entity)]
union Bits {
    int: i32,
    float: f32,
}

#[derive(Debug, Clone, session_core::Entity)]
struct Borrowed<'a> {
    #[entity(primary_key)]
    id: i32,
    name: &'a str,
}

#[derive(Debug, Clone, session_core::Entity)]
struct Generic<T> {
    #[entity(primary_key)]
    id: T,
}

fn main() {}
