#[derive(Debug, Clone, session_core::Entity)]
#[entity(tabel = "notes")]
struct Note {
    #[entity(primary_key, unqiue)]
    id: i32,
}

fn main() {}
