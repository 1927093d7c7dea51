use session_core::{Collection, Entity, Reference};

// `A.bs` names `B.c`, which leads to `C`, not back to `A`.
#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "a")]
struct A {
    #[entity(primary_key)]
    id: i32,
    #[entity(relationship(foreign_key = "a_id", back_populates = "c"))]
    bs: Collection<B>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "c")]
struct C {
    #[entity(primary_key)]
    id: i32,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "b")]
struct B {
    #[entity(primary_key)]
    id: i32,
    #[entity(foreign_key = "a.id")]
    a_id: Option<i32>,
    #[entity(foreign_key = "c.id")]
    c_id: Option<i32>,
    #[entity(relationship(foreign_key = "c_id", back_populates = "bs"))]
    c: Reference<C>,
}

fn main() {}
