// The struct has a mistake, yet the impls are still generated: code using them reports
// nothing more than the one error.
use session_core::Entity;

#[derive(Debug, Clone, session_core::Entity)]
#[entity(tabel = "notes")]
struct Note {
    #[entity(primary_key)]
    id: i32,
    body: String,
}

fn main() {
    let note = Note { id: 1, body: String::new() };
    let key: i32 = note.key();
    let _ = (key, Note::TABLE.name, Note::C.body);
}
