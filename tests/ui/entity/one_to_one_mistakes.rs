use session_core::{Collection, Entity, Reference};

// A one-to-one whose foreign key is not unique, and `uselist = false` on a collection.
#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "a")]
struct A {
    #[entity(primary_key)]
    id: i32,
    #[entity(relationship(foreign_key = "a_id", uselist = false))]
    b: Reference<B>,
    #[entity(relationship(foreign_key = "a_id", uselist = false))]
    bs: Collection<B>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "b")]
struct B {
    #[entity(primary_key)]
    id: i32,
    #[entity(foreign_key = "a.id")]
    a_id: Option<i32>,
}

fn main() {}
