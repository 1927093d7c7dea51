use session_core::{Collection, Entity};

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "book")]
struct Book {
    #[entity(primary_key)]
    id: i32,
    // A misspelled link field.
    #[entity(relationship(secondary = "BookTag", foreign_key = "bok_id", target_foreign_key = "tag_id"))]
    a: Collection<Tag>,
    // A link column whose type is not the target's key.
    #[entity(relationship(secondary = "BookTag", foreign_key = "book_id", target_foreign_key = "label"))]
    b: Collection<Tag>,
    // No such link entity.
    #[entity(relationship(secondary = "BookTags", foreign_key = "book_id", target_foreign_key = "tag_id"))]
    c: Collection<Tag>,
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
    label: String,
}

fn main() {}
