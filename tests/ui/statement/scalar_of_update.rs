// An UPDATE without RETURNING returns no rows: `scalar` of it does not compile (SQLAlchemy
// raises "This result object does not return rows" at run time).
#[derive(Debug, Clone, Default, session_core::Entity)]
struct Note {
    #[entity(primary_key)]
    id: i32,
    body: String,
}

async fn run(session: &session_core::AsyncSession) {
    let _ = session
        .scalar(session_core::update::<Note>().set(Note::C.body, "x"))
        .await;
}

fn main() {
    let _ = run;
}
