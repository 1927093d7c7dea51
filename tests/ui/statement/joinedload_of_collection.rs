// joinedload is for many-to-one; a collection is loaded with selectinload.
use session_core::{Collection, Reference};

#[derive(Debug, Clone, Default, session_core::Entity)]
struct Parent {
    #[entity(primary_key)]
    id: i32,
    #[entity(relationship(foreign_key = "parent_id"))]
    children: Collection<Child>,
}

#[derive(Debug, Clone, Default, session_core::Entity)]
struct Child {
    #[entity(primary_key)]
    id: i32,
    #[entity(foreign_key = "parent.id")]
    parent_id: i32,
    #[entity(relationship(foreign_key = "parent_id"))]
    parent: Reference<Parent>,
}

fn main() {
    let _ = session_core::select::<Parent>().options(session_core::joinedload(Parent::C.children));
}
