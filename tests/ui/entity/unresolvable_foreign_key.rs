use session_core::Reference;

#[derive(Debug, Clone, Default, session_core::Entity)]
struct Parent {
    #[entity(primary_key)]
    id: i32,
}

#[derive(Debug, Clone, Default, session_core::Entity)]
struct Child {
    #[entity(primary_key)]
    id: i32,
    parent_id: i32,
    #[entity(relationship(foreign_key = "parentid"))]
    parent: Reference<Parent>,
}

fn main() {}
