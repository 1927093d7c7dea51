#[derive(Debug, Clone, session_core::Entity)]
struct Note {
    body: String,
}

fn main() {}
