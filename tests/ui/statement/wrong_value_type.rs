// Comparing a text column with a number does not compile.
#[derive(Debug, Clone, Default, session_core::Entity)]
struct Note {
    #[entity(primary_key)]
    id: i32,
    body: String,
}

fn main() {
    let _ = session_core::select::<Note>().filter(Note::C.body.eq(5));
}
