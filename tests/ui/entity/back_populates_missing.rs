use session_core::{Collection, Entity, Reference};

// `back_populates` naming a field the other struct does not have.
#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "a")]
struct A {
    #[entity(primary_key)]
    id: i32,
    #[entity(relationship(foreign_key = "a_id", back_populates = "parent"))]
    bs: Collection<B>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "b")]
struct B {
    #[entity(primary_key)]
    id: i32,
    #[entity(foreign_key = "a.id")]
    a_id: Option<i32>,
    #[entity(relationship(foreign_key = "a_id", back_populates = "bs"))]
    a: Reference<A>,
}

fn main() {}
