use session_core::Entity;

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "doc")]
struct Doc {
    #[entity(primary_key)]
    id: i32,
    #[entity(version)]
    version: String,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "note")]
struct Note {
    #[entity(primary_key, version)]
    id: i32,
    #[entity(version)]
    other: i64,
}

fn main() {}
