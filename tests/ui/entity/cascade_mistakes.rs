use session_core::{Collection, Entity, Reference};

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "a")]
struct A {
    #[entity(primary_key)]
    id: i32,
    #[entity(relationship(foreign_key = "a_id", cascade = "all, delete-orphan"))]
    bs: Collection<B>,
    #[entity(relationship(foreign_key = "a_id", cascade = "delete, explode"))]
    cs: Collection<B>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "b")]
struct B {
    #[entity(primary_key)]
    id: i32,
    #[entity(foreign_key = "a.id")]
    a_id: i32,
    #[entity(relationship(foreign_key = "a_id", cascade = "delete"))]
    a: Reference<A>,
}

fn main() {}
