//! Many-to-many relationships through a link table (`relationship(secondary = "...")`),
//! ported from SQLAlchemy's `test/orm/test_manytomany.py` where the scenarios apply: link rows
//! written and deleted at flush, one statement per link table and operation; both sides of a
//! `back_populates` pair kept in step and written once; duplicates refused by the database; a
//! table linked to itself; two link tables between the same tables; stale link rows; loading
//! and joining through the link table.

use session_core::{
    AsyncSession, Collection, Engine, Entity, Error, MetaData, Obj, Reference, joinedload, select,
    selectinload, text,
};
use session_tests::support::{
    LogCapture, count_rows, create_schema, echo_statements, fresh_database, kept_session as session,
};

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "book")]
struct Book {
    #[entity(primary_key, generated)]
    id: i32,
    title: String,
    #[entity(relationship(
        secondary = "BookTag",
        foreign_key = "book_id",
        target_foreign_key = "tag_id",
        back_populates = "books"
    ))]
    tags: Collection<Tag>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "tag")]
struct Tag {
    #[entity(primary_key, generated)]
    id: i32,
    #[entity(unique)]
    name: String,
    #[entity(relationship(
        secondary = "BookTag",
        foreign_key = "tag_id",
        target_foreign_key = "book_id",
        back_populates = "tags"
    ))]
    books: Collection<Book>,
}

/// The link table, declared once as an entity of its own (SQLAlchemy's association object
/// pattern: it may carry columns of its own, and be queried with its many-to-ones).
#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "book_tag")]
struct BookTag {
    #[entity(primary_key, foreign_key = "book.id")]
    book_id: i32,
    #[entity(primary_key, foreign_key = "tag.id")]
    tag_id: i32,
    /// Left NULL by the collection's INSERTs; set through the association object.
    note: Option<String>,
    #[entity(relationship(foreign_key = "tag_id"))]
    tag: Reference<Tag>,
}

/// A table linked to itself (`place_place`), one direction only.
#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "place")]
struct Place {
    #[entity(primary_key, generated)]
    id: i32,
    name: String,
    #[entity(relationship(
        secondary = "PlacePlace",
        foreign_key = "pl1_id",
        target_foreign_key = "pl2_id"
    ))]
    places: Collection<Place>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "place_place")]
struct PlacePlace {
    #[entity(primary_key, foreign_key = "place.id")]
    pl1_id: i32,
    #[entity(primary_key, foreign_key = "place.id")]
    pl2_id: i32,
}

/// Two link tables between the same two tables, and text keys (SQLAlchemy's
/// `Student` / `Course` / `enroll`).
#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "student")]
struct Student {
    #[entity(primary_key)]
    name: String,
    #[entity(relationship(
        secondary = "Enroll",
        foreign_key = "student_id",
        target_foreign_key = "course_id",
        back_populates = "students"
    ))]
    courses: Collection<Course>,
    #[entity(relationship(
        secondary = "Waitlist",
        foreign_key = "student_id",
        target_foreign_key = "course_id"
    ))]
    waiting_for: Collection<Course>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "course")]
struct Course {
    #[entity(primary_key)]
    name: String,
    #[entity(relationship(
        secondary = "Enroll",
        foreign_key = "course_id",
        target_foreign_key = "student_id",
        back_populates = "courses"
    ))]
    students: Collection<Student>,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "enroll")]
struct Enroll {
    #[entity(primary_key, foreign_key = "student.name")]
    student_id: String,
    #[entity(primary_key, foreign_key = "course.name")]
    course_id: String,
}

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "waitlist")]
struct Waitlist {
    #[entity(primary_key, foreign_key = "student.name")]
    student_id: String,
    #[entity(primary_key, foreign_key = "course.name")]
    course_id: String,
}

async fn setup(prefix: &str, echo: bool) -> Engine {
    let url = fresh_database(prefix).await;
    let engine = Engine::builder(url)
        .echo(echo)
        .pool_size(4)
        .build()
        .expect("engine");
    create_schema(
        &engine,
        MetaData::new()
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

fn book(title: &str) -> Obj<Book> {
    Obj::new(Book {
        title: title.into(),
        ..Book::default()
    })
}

fn tag(name: &str) -> Obj<Tag> {
    Obj::new(Tag {
        name: name.into(),
        ..Tag::default()
    })
}

/// The link rows as `(book title, tag name)`, sorted.
async fn links(engine: &Engine) -> Vec<(String, String)> {
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

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn names(tags: &[Obj<Tag>]) -> Vec<String> {
    tags.iter()
        .map(|t| t.read().unwrap().name.clone())
        .collect()
}

/// The statements of an echo log that write `table`, as `VERB table` (`INSERT book_tag`),
/// wherever the statement names it (a batched INSERT is inside a `WITH`).
fn writes(lines: &[&str], table: &str) -> Vec<String> {
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

/// A graph of books and tags flushed in one go: one INSERT per table, one for every link row;
/// then removals, additions and a deleted book: one statement per link operation.
#[tokio::test]
async fn link_rows_are_written_with_one_statement_per_table_and_operation() {
    let engine = setup("m2m_batch", true).await;
    let capture = LogCapture::default();
    let _guard = capture.install("session_core::echo=info");
    let s = session(&engine);
    let (rust, sql, db, web) = (tag("rust"), tag("sql"), tag("db"), tag("web"));
    let books: Vec<Obj<Book>> = ["b1", "b2", "b3"].iter().map(|t| book(t)).collect();
    {
        let mut b = books[0].write().unwrap();
        b.tags.push(rust.clone()).unwrap();
        b.tags.push(sql.clone()).unwrap();
    }
    books[1].write().unwrap().tags.push(sql.clone()).unwrap();
    books[1].write().unwrap().tags.push(db.clone()).unwrap();
    // From the other side: the pair is written once.
    web.write().unwrap().books.push(books[2].clone()).unwrap();
    books[2].write().unwrap().tags.push(rust.clone()).unwrap();
    // back_populates: the other side follows in memory at once.
    assert_eq!(sql.read().unwrap().books.len(), 2);
    assert_eq!(
        names(books[2].read().unwrap().tags.get().unwrap()),
        ["web", "rust"]
    );
    let before = echo_statements(&capture.text()).len();
    s.add_all(&books).unwrap();
    s.commit().await.unwrap();
    let log = capture.text();
    let lines = &echo_statements(&log)[before..];
    assert_eq!(writes(lines, "book"), ["INSERT book"], "{lines:#?}");
    assert_eq!(writes(lines, "tag"), ["INSERT tag"], "{lines:#?}");
    assert_eq!(writes(lines, "book_tag"), ["INSERT book_tag"], "{lines:#?}");
    assert_eq!(
        links(&engine).await,
        pairs(&[
            ("b1", "rust"),
            ("b1", "sql"),
            ("b2", "db"),
            ("b2", "sql"),
            ("b3", "rust"),
            ("b3", "web")
        ])
    );

    // A new session: load both sides, change them.
    let s = session(&engine);
    let books = s
        .scalars(
            select::<Book>()
                .options(selectinload(Book::C.tags))
                .order_by(Book::C.id.asc()),
        )
        .await
        .unwrap()
        .all();
    assert_eq!(
        names(books[0].read().unwrap().tags.get().unwrap()),
        ["rust", "sql"]
    );
    let tags = s
        .scalars(
            select::<Tag>()
                .options(selectinload(Tag::C.books))
                .order_by(Tag::C.id.asc()),
        )
        .await
        .unwrap()
        .all();
    let by_name = |n: &str| {
        tags.iter()
            .find(|t| t.read().unwrap().name == n)
            .unwrap()
            .clone()
    };
    // The same objects on both sides (identity map).
    assert!(by_name("rust").read().unwrap().books.get().unwrap()[0].ptr_eq(&books[0]));
    {
        let mut b1 = books[0].write().unwrap();
        b1.tags.remove(&by_name("sql")).unwrap();
        b1.tags.push(by_name("db")).unwrap();
    }
    by_name("web")
        .write()
        .unwrap()
        .books
        .remove(&books[2])
        .unwrap();
    by_name("web")
        .write()
        .unwrap()
        .books
        .push(books[1].clone())
        .unwrap();
    // back_populates took b1 out of sql.books.
    assert_eq!(by_name("sql").read().unwrap().books.len(), 1);
    s.delete(&books[2]).unwrap(); // its rows go with it (b3-rust)
    let before = echo_statements(&capture.text()).len();
    s.commit().await.unwrap();
    let log = capture.text();
    let lines = &echo_statements(&log)[before..];
    assert_eq!(
        writes(lines, "book_tag"),
        ["DELETE book_tag", "DELETE book_tag", "INSERT book_tag"],
        "{lines:#?}"
    );
    assert_eq!(writes(lines, "book"), ["DELETE book"], "{lines:#?}");
    assert_eq!(
        links(&engine).await,
        pairs(&[
            ("b1", "db"),
            ("b1", "rust"),
            ("b2", "db"),
            ("b2", "sql"),
            ("b2", "web")
        ])
    );
    assert_eq!(count_rows(&engine, "book").await, 2);
}
