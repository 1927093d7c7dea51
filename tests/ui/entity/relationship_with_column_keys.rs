use session_core::Collection;

#[derive(Debug, Clone, Default, session_core::Entity)]
struct Parent {
    #[entity(primary_key)]
    id: i32,
    #[entity(relationship(foreign_key = "parent_id"), unique, column = "kids")]
    children: Collection<Child>,
}

#[derive(Debug, Clone, Default, session_core::Entity)]
struct Child {
    #[entity(primary_key)]
    id: i32,
    parent_id: i32,
}

fn main() {}
