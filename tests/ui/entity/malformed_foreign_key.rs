#[derive(Debug, Clone, session_core::Entity)]
struct Note {
    #[entity(primary_key)]
    id: i64,
    #[entity(foreign_key = "users")]
    owner: i64,
    #[entity(foreign_key = "app.users.id")]
    editor: i64,
}

fn main() {}
