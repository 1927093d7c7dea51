//! The many-to-many test models (`tests/tests/many_to_many.rs`): books and tags through a
//! link entity that is also an association object, a place linked to itself, students and
//! courses through two link tables with text keys, and the helpers that read the link rows.

#![allow(missing_docs)]

use session_core::{AsyncSession, Collection, Engine, Entity, MetaData, Obj, Reference, text};

use crate::support::{create_schema, fresh_database};

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "author")]
pub struct Author {
    #[entity(primary_key, generated)]
    pub id: i32,
    #[entity(relationship(foreign_key = "author_id"))]
    pub books: Collection<Book>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "book")]
pub struct Book {
    #[entity(primary_key, generated)]
    pub id: i32,
    #[entity(foreign_key = "author.id")]
    pub author_id: Option<i32>,
    pub title: String,
    #[entity(relationship(
        secondary = "BookTag",
        foreign_key = "book_id",
        target_foreign_key = "tag_id",
        back_populates = "books"
    ))]
    pub tags: Collection<Tag>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "tag")]
pub struct Tag {
    #[entity(primary_key, generated)]
    pub id: i32,
    #[entity(unique)]
    pub name: String,
    #[entity(relationship(
        secondary = "BookTag",
        foreign_key = "tag_id",
        target_foreign_key = "book_id",
        back_populates = "tags"
    ))]
    pub books: Collection<Book>,
}

/// The link table, declared once as an entity of its own (SQLAlchemy's association object
/// pattern: it may carry columns of its own, and be queried with its many-to-ones).
#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "book_tag")]
pub struct BookTag {
    #[entity(primary_key, foreign_key = "book.id")]
    pub book_id: i32,
    #[entity(primary_key, foreign_key = "tag.id")]
    pub tag_id: i32,
    /// Left NULL by the collection's INSERTs; set through the association object.
    pub note: Option<String>,
    #[entity(relationship(foreign_key = "tag_id"))]
    pub tag: Reference<Tag>,
}

/// A table linked to itself (`place_place`), one direction only.
#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "place")]
pub struct Place {
    #[entity(primary_key, generated)]
    pub id: i32,
    pub name: String,
    #[entity(relationship(
        secondary = "PlacePlace",
        foreign_key = "pl1_id",
        target_foreign_key = "pl2_id"
    ))]
    pub places: Collection<Place>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "place_place")]
pub struct PlacePlace {
    #[entity(primary_key, foreign_key = "place.id")]
    pl1_id: i32,
    #[entity(primary_key, foreign_key = "place.id")]
    pl2_id: i32,
}

/// Two link tables between the same two tables, and text keys (SQLAlchemy's
/// `Student` / `Course` / `enroll`).
#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "student")]
pub struct Student {
    #[entity(primary_key)]
    pub name: String,
    #[entity(relationship(
        secondary = "Enroll",
        foreign_key = "student_id",
        target_foreign_key = "course_id",
        back_populates = "students"
    ))]
    pub courses: Collection<Course>,
    #[entity(relationship(
        secondary = "Waitlist",
        foreign_key = "student_id",
        target_foreign_key = "course_id"
    ))]
    pub waiting_for: Collection<Course>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "course")]
pub struct Course {
    #[entity(primary_key)]
    pub name: String,
    #[entity(relationship(
        secondary = "Enroll",
        foreign_key = "course_id",
        target_foreign_key = "student_id",
        back_populates = "courses"
    ))]
    pub students: Collection<Student>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "enroll")]
pub struct Enroll {
    #[entity(primary_key, foreign_key = "student.name")]
    pub student_id: String,
    #[entity(primary_key, foreign_key = "course.name")]
    pub course_id: String,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "waitlist")]
pub struct Waitlist {
    #[entity(primary_key, foreign_key = "student.name")]
    pub student_id: String,
    #[entity(primary_key, foreign_key = "course.name")]
    pub course_id: String,
}

pub async fn setup(prefix: &str, echo: bool) -> Engine {
    let url = fresh_database(prefix).await;
    let engine = Engine::builder(url)
        .echo(echo)
        .pool_size(4)
        .build()
        .expect("engine");
    create_schema(
        &engine,
        MetaData::new()
            .with::<Author>()
            .with::<Book>()
            .with::<Tag>()
            .with::<BookTag>()
            .with::<Place>()
            .with::<PlacePlace>()
            .with::<Student>()
            .with::<Course>()
            .with::<Enroll>()
            .with::<Waitlist>(),
    )
    .await;
    engine
}

pub fn book(title: &str) -> Obj<Book> {
    Obj::new(Book {
        title: title.into(),
        ..Book::default()
    })
}

pub fn tag(name: &str) -> Obj<Tag> {
    Obj::new(Tag {
        name: name.into(),
        ..Tag::default()
    })
}

/// The link rows as `(book title, tag name)`, sorted.
pub async fn links(engine: &Engine) -> Vec<(String, String)> {
    let s = AsyncSession::new(engine.clone());
    let rows = s
        .execute(text(
            "SELECT b.title, t.name FROM book_tag l JOIN book b ON b.id = l.book_id \
             JOIN tag t ON t.id = l.tag_id ORDER BY 1, 2",
        ))
        .await
        .unwrap()
        .all();
    s.close().await;
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

pub fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

pub fn names(tags: &[Obj<Tag>]) -> Vec<String> {
    tags.iter()
        .map(|t| t.read().unwrap().name.clone())
        .collect()
}

/// The statements of an echo log that write `table`, as `VERB table` (`INSERT book_tag`),
/// wherever the statement names it (a batched INSERT is inside a `WITH`).
pub fn writes(lines: &[&str], table: &str) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| {
            let sql = l.split("echo: ").nth(1)?;
            ["INSERT INTO", "DELETE FROM", "UPDATE"]
                .iter()
                .find(|verb| sql.contains(&format!("{verb} \"{table}\"")))
                .map(|verb| format!("{} {table}", verb.split(' ').next().unwrap_or(verb)))
        })
        .collect()
}
