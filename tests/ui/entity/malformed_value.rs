#[derive(Debug, Clone, session_core::Entity)]
#[entity(table = "")]
struct Note {
    #[entity(primary_key = true, sql_type = 30)]
    id: i64,
    #[entity(column = "body", column = "text", unique)]
    body: String,
}

fn main() {}
