#[derive(Debug, Clone, session_core::Entity)]
struct Note {
    #[entity(primary_key, primary_key)]
    id: i32,
}

fn main() {}
