#[derive(Debug, Clone, session_core::Entity)]
struct Note {
    #[entity(primary_key, generated, server_default = "nextval('s')")]
    id: i64,
}

fn main() {}
