// sum() applies to numeric columns only.
#[derive(Debug, Clone, Default, session_core::Entity)]
struct Note {
    #[entity(primary_key)]
    id: i32,
    body: String,
}

fn main() {
    let _ = session_core::select_columns(session_core::func::sum(Note::C.body));
}
