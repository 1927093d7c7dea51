use session_core::{Collection, Entity, Reference};

// Both sides name a back_populates, but `B.a` names `others` instead of `bs`; and a
// back_populates that is no field name at all.
#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "a")]
struct A {
    #[entity(primary_key)]
    id: i32,
    #[entity(relationship(foreign_key = "a_id", back_populates = "a"))]
    bs: Collection<B>,
    #[entity(relationship(foreign_key = "a_id"))]
    others: Collection<B>,
    #[entity(relationship(foreign_key = "a_id", back_populates = "not a field"))]
    more: Collection<B>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "b")]
struct B {
    #[entity(primary_key)]
    id: i32,
    #[entity(foreign_key = "a.id")]
    a_id: Option<i32>,
    #[entity(relationship(foreign_key = "a_id", back_populates = "others"))]
    a: Reference<A>,
}

fn main() {}
