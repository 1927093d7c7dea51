#[derive(Debug, Clone, session_core::Entity)]
struct Note {
    #[entity(primary_key)]
    id: i32,
    title: String,
    #[entity(column = "title")]
    heading: String,
}

fn main() {}
