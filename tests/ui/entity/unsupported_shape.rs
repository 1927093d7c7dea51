#[derive(Debug, Clone, session_core::Entity)]
enum Status {
    Open,
    Closed,
}

#[derive(Debug, Clone, session_core::Entity)]
struct Pair(i32, String);

#[derive(Debug, Clone, session_core::Entity)]
struct Borrowed<'a> {
    #[entity(primary_key)]
    id: i32,
    name: &'a str,
}

fn main() {}
