use session_core::{Collection, Entity, Reference};

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "book")]
struct Book {
    #[entity(primary_key)]
    id: i32,
    // No target_foreign_key.
    #[entity(relationship(secondary = "BookTag", foreign_key = "book_id"))]
    a: Collection<Tag>,
    // A Reference.
    #[entity(relationship(secondary = "BookTag", foreign_key = "book_id", target_foreign_key = "tag_id"))]
    b: Reference<Tag>,
    // A delete cascade.
    #[entity(relationship(
        secondary = "BookTag",
        foreign_key = "book_id",
        target_foreign_key = "tag_id",
        cascade = "delete"
    ))]
    c: Collection<Tag>,
    // Not a type.
    #[entity(relationship(secondary = "Book Tag", foreign_key = "book_id", target_foreign_key = "tag_id"))]
    d: Collection<Tag>,
    // target_foreign_key without secondary.
    #[entity(relationship(foreign_key = "book_id", target_foreign_key = "tag_id"))]
    e: Collection<Tag>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "tag")]
struct Tag {
    #[entity(primary_key)]
    id: i32,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "book_tag")]
struct BookTag {
    #[entity(primary_key, foreign_key = "book.id")]
    book_id: i32,
    #[entity(primary_key, foreign_key = "tag.id")]
    tag_id: i32,
}

fn main() {}
