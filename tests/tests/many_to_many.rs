//! Many-to-many relationships through a link table (`relationship(secondary = "...")`),
//! ported from SQLAlchemy's `test/orm/test_manytomany.py` where the scenarios apply: link rows
//! written and deleted at flush, one statement per link table and operation; both sides of a
//! `back_populates` pair kept in step and written once; duplicates refused by the database; a
//! table linked to itself; two link tables between the same tables; stale link rows; loading
//! and joining through the link table.

use session_core::{Error, Obj, select, selectinload, text};
use session_tests::m2m::{
    Author, Book, BookTag, Course, Place, Student, Tag, book, links, names, pairs, setup, tag,
    writes,
};
use session_tests::support::{LogCapture, count_rows, echo_statements, kept_session as session};

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

/// SQLAlchemy's `test_bidirectional` / `M2MTest2.test_circular`: appending on either side
/// keeps the other in step, with text keys; taking one out removes the row.
#[tokio::test]
async fn both_sides_of_a_back_populated_pair_stay_in_step() {
    let engine = setup("m2m_both", false).await;
    let s = session(&engine);
    let student = |n: &str| {
        Obj::new(Student {
            name: n.into(),
            ..Student::default()
        })
    };
    let course = |n: &str| {
        Obj::new(Course {
            name: n.into(),
            ..Course::default()
        })
    };
    let s1 = student("Student1");
    let (c1, c2, c3) = (course("Course1"), course("Course2"), course("Course3"));
    s1.write().unwrap().courses.push(c1.clone()).unwrap();
    s1.write().unwrap().courses.push(c2.clone()).unwrap();
    c3.write().unwrap().students.push(s1.clone()).unwrap();
    assert_eq!(s1.read().unwrap().courses.len(), 3);
    assert_eq!(c1.read().unwrap().students.len(), 1);
    s.add(&s1).unwrap(); // the courses come with it (save-update cascade)
    s.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "course").await, 3);
    assert_eq!(count_rows(&engine, "enroll").await, 3);

    let s = session(&engine);
    let st = s
        .scalars(select::<Student>().options(selectinload(Student::C.courses)))
        .await
        .unwrap()
        .one()
        .unwrap();
    let courses = st.read().unwrap().courses.get().unwrap().to_vec();
    assert_eq!(courses.len(), 3);
    // The other side, loaded by its own query, holds the same student object.
    let c = s
        .get::<Course>("Course3".to_string())
        .await
        .unwrap()
        .unwrap();
    s.load(std::slice::from_ref(&c), selectinload(Course::C.students))
        .await
        .unwrap();
    assert!(c.read().unwrap().students.get().unwrap()[0].ptr_eq(&st));
    st.write().unwrap().courses.remove(&courses[1]).unwrap();
    assert_eq!(st.read().unwrap().courses.len(), 2);
    s.commit().await.unwrap();
    let left: Vec<String> = session(&engine)
        .execute(text("SELECT course_id FROM enroll ORDER BY 1"))
        .await
        .unwrap()
        .scalars::<String>()
        .unwrap()
        .all();
    assert_eq!(left, ["Course1", "Course3"]);
}

/// `test_dupliates_raise`: the same object twice in one collection is two link rows, which
/// the link table's primary key refuses; nothing of the flush is stored.
#[tokio::test]
async fn the_same_object_twice_in_a_collection_is_refused_by_the_database() {
    let engine = setup("m2m_dupes", false).await;
    let s = session(&engine);
    let b = book("b");
    let t = tag("t");
    b.write().unwrap().tags.push(t.clone()).unwrap();
    b.write().unwrap().tags.push(t.clone()).unwrap();
    s.add(&b).unwrap();
    let err = s.commit().await.unwrap_err();
    assert!(err.to_string().contains("duplicate key"), "{err}");
    s.rollback().await.unwrap();
    assert_eq!(count_rows(&engine, "book").await, 0);
    assert_eq!(count_rows(&engine, "book_tag").await, 0);
}

/// `M2MTest2.test_delete`: deleting an object from either side clears its link rows, also
/// when its collection was never loaded (one DELETE by key, no load first).
#[tokio::test]
async fn deleting_either_side_clears_its_link_rows_loaded_or_not() {
    let engine = setup("m2m_delete", false).await;
    let s = session(&engine);
    let (b1, b2) = (book("b1"), book("b2"));
    let (t1, t2) = (tag("t1"), tag("t2"));
    for b in [&b1, &b2] {
        for t in [&t1, &t2] {
            b.write().unwrap().tags.push(t.clone()).unwrap();
        }
    }
    s.add_all(&[b1, b2]).unwrap();
    s.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "book_tag").await, 4);

    // From the tag side, collection not loaded.
    let s = session(&engine);
    let t1 = s
        .scalars(select::<Tag>().filter(Tag::C.name.eq("t1")))
        .await
        .unwrap()
        .one()
        .unwrap();
    assert!(!t1.read().unwrap().books.is_loaded());
    s.delete(&t1).unwrap();
    s.commit().await.unwrap();
    assert_eq!(links(&engine).await, pairs(&[("b1", "t2"), ("b2", "t2")]));

    // From the book side, collection loaded.
    let s = session(&engine);
    let b1 = s
        .scalars(
            select::<Book>()
                .filter(Book::C.title.eq("b1"))
                .options(selectinload(Book::C.tags)),
        )
        .await
        .unwrap()
        .one()
        .unwrap();
    s.delete(&b1).unwrap();
    s.commit().await.unwrap();
    assert_eq!(links(&engine).await, pairs(&[("b2", "t2")]));
    assert_eq!(count_rows(&engine, "tag").await, 1);
}

/// `test_circular`: a many-to-many from a table to itself; seven places linked, reloaded,
/// then all deleted in one flush.
#[tokio::test]
async fn a_table_linked_to_itself() {
    let engine = setup("m2m_self", false).await;
    let s = session(&engine);
    let p: Vec<Obj<Place>> = (1..=7)
        .map(|i| {
            Obj::new(Place {
                name: format!("place{i}"),
                ..Place::default()
            })
        })
        .collect();
    s.add_all(&p).unwrap();
    for (from, to) in [
        (0, 1),
        (0, 2),
        (4, 5),
        (5, 0),
        (6, 0),
        (0, 4),
        (3, 2),
        (2, 3),
    ] {
        p[from].write().unwrap().places.push(p[to].clone()).unwrap();
    }
    s.flush().await.unwrap();
    s.commit().await.unwrap();

    let s = session(&engine);
    let l = s
        .scalars(
            select::<Place>()
                .options(selectinload(Place::C.places))
                .order_by(Place::C.id.asc()),
        )
        .await
        .unwrap()
        .all();
    let of = |i: usize| -> Vec<String> {
        l[i].read()
            .unwrap()
            .places
            .get()
            .unwrap()
            .iter()
            .map(|p| p.read().unwrap().name.clone())
            .collect()
    };
    assert_eq!(of(0), ["place2", "place3", "place5"]);
    assert_eq!(of(4), ["place6"]);
    assert_eq!(of(6), ["place1"]);
    assert_eq!(of(5), ["place1"]);
    assert_eq!(of(3), ["place3"]);
    assert_eq!(of(2), ["place4"]);
    assert!(of(1).is_empty());
    assert!(l[0].read().unwrap().places.get().unwrap()[0].ptr_eq(&l[1]));
    s.delete_all(&l).unwrap();
    s.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "place_place").await, 0);
    assert_eq!(count_rows(&engine, "place").await, 0);
}

/// `test_double`: two link tables between the same two tables are two relationships.
#[tokio::test]
async fn two_link_tables_between_the_same_tables() {
    let engine = setup("m2m_double", false).await;
    let s = session(&engine);
    let st = Obj::new(Student {
        name: "s".into(),
        ..Student::default()
    });
    let (a, b) = (
        Obj::new(Course {
            name: "a".into(),
            ..Course::default()
        }),
        Obj::new(Course {
            name: "b".into(),
            ..Course::default()
        }),
    );
    st.write().unwrap().courses.push(a.clone()).unwrap();
    st.write().unwrap().waiting_for.push(b.clone()).unwrap();
    st.write().unwrap().waiting_for.push(a.clone()).unwrap();
    s.add(&st).unwrap();
    s.commit().await.unwrap();
    assert_eq!(count_rows(&engine, "enroll").await, 1);
    assert_eq!(count_rows(&engine, "waitlist").await, 2);

    let s = session(&engine);
    let st = s
        .scalars(
            select::<Student>()
                .options(selectinload(Student::C.courses))
                .options(selectinload(Student::C.waiting_for)),
        )
        .await
        .unwrap()
        .one()
        .unwrap();
    let names = |c: &[Obj<Course>]| -> Vec<String> {
        c.iter().map(|c| c.read().unwrap().name.clone()).collect()
    };
    assert_eq!(names(st.read().unwrap().courses.get().unwrap()), ["a"]);
    assert_eq!(
        names(st.read().unwrap().waiting_for.get().unwrap()),
        ["a", "b"]
    );
}

/// `test_stale_conditions`: a link row another writer deleted meanwhile cannot be deleted;
/// the flush fails with SQLAlchemy's StaleDataError message and stores nothing, whether
/// COMMIT travels with the statements or not.
#[tokio::test]
async fn a_link_row_deleted_meanwhile_is_stale_data() {
    let engine = setup("m2m_stale", false).await;
    for ride in [true, false] {
        {
            let s = session(&engine);
            let b = book("b");
            b.write()
                .unwrap()
                .tags
                .push(tag(&format!("t{ride}")))
                .unwrap();
            s.add(&b).unwrap();
            s.commit().await.unwrap();
        }
        let s = session(&engine);
        let b = s
            .scalars(select::<Book>().options(selectinload(Book::C.tags)))
            .await
            .unwrap()
            .one()
            .unwrap();
        let other = session(&engine);
        other.execute(text("DELETE FROM book_tag")).await.unwrap();
        other.commit().await.unwrap();
        let t = b.read().unwrap().tags.get().unwrap()[0].clone();
        {
            let mut w = b.write().unwrap();
            w.tags.remove(&t).unwrap();
            w.title = "changed".into();
        }
        let err = if ride {
            s.commit().await.unwrap_err()
        } else {
            s.flush().await.unwrap_err()
        };
        assert!(matches!(err, Error::StaleData(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "DELETE statement on table 'book_tag' expected to delete 1 row(s); Only 0 were \
             matched."
        );
        s.rollback().await.unwrap();
        let title: Vec<String> = session(&engine)
            .execute(text("SELECT title FROM book"))
            .await
            .unwrap()
            .scalars::<String>()
            .unwrap()
            .all();
        assert_eq!(title, ["b"], "ride = {ride}");
        let s2 = session(&engine);
        s2.execute(text("DELETE FROM book")).await.unwrap();
        s2.execute(text("DELETE FROM tag")).await.unwrap();
        s2.commit().await.unwrap();
    }
}

/// Joins go through the link table; the link entity itself can be queried (the association
/// object pattern: its own columns, its own many-to-ones); a collection replaced while it was
/// not loaded rewrites the object's link rows.
#[tokio::test]
async fn joins_the_association_object_and_a_replaced_collection() {
    let engine = setup("m2m_join", false).await;
    let s = session(&engine);
    let (rust, sql) = (tag("rust"), tag("sql"));
    let (b1, b2) = (book("b1"), book("b2"));
    b1.write().unwrap().tags.push(rust.clone()).unwrap();
    b1.write().unwrap().tags.push(sql.clone()).unwrap();
    b2.write().unwrap().tags.push(sql.clone()).unwrap();
    s.add_all(&[b1, b2]).unwrap();
    s.commit().await.unwrap();

    let s = session(&engine);
    let tagged_rust = s
        .scalars(
            select::<Book>()
                .join(Book::C.tags)
                .filter(Tag::C.name.eq("rust")),
        )
        .await
        .unwrap()
        .all();
    assert_eq!(tagged_rust.len(), 1);
    assert_eq!(tagged_rust[0].read().unwrap().title, "b1");
    let outer = s
        .scalars(
            select::<Tag>()
                .outerjoin(Tag::C.books)
                .filter(Book::C.title.eq("b2")),
        )
        .await
        .unwrap()
        .all();
    assert_eq!(names(&outer), ["sql"]);

    // The association object: its own column, written through the entity.
    let rows = s
        .scalars(
            select::<BookTag>()
                .options(session_core::joinedload(BookTag::C.tag))
                .order_by(BookTag::C.book_id.asc())
                .order_by(BookTag::C.tag_id.asc()),
        )
        .await
        .unwrap()
        .all();
    assert_eq!(rows.len(), 3);
    assert!(rows[0].read().unwrap().note.is_none());
    rows[0].write().unwrap().note = Some("first".into());
    let linked = rows[0].read().unwrap().tag.get().unwrap().cloned().unwrap();
    assert_eq!(linked.read().unwrap().name, "rust");
    s.commit().await.unwrap();
    let notes: Vec<Option<String>> = session(&engine)
        .execute(text("SELECT note FROM book_tag ORDER BY book_id, tag_id"))
        .await
        .unwrap()
        .scalars::<Option<String>>()
        .unwrap()
        .all();
    assert_eq!(notes, [Some("first".to_string()), None, None]);

    // Replaced while not loaded: the session cannot tell what was there, so the book's link
    // rows are deleted and the new collection written.
    let s = session(&engine);
    let b1 = s
        .scalars(select::<Book>().filter(Book::C.title.eq("b1")))
        .await
        .unwrap()
        .one()
        .unwrap();
    let web = tag("web");
    assert!(!b1.read().unwrap().tags.is_loaded());
    b1.write().unwrap().tags.set(vec![web]);
    s.commit().await.unwrap();
    assert_eq!(links(&engine).await, pairs(&[("b1", "web"), ("b2", "sql")]));
}

/// A book whose only change is a new tag, also reached as the child of a loaded one-to-many
/// (whose foreign-key copy looks at it and finds nothing to change): the link row is written.
#[tokio::test]
async fn a_collection_change_survives_a_foreign_key_copy_that_changes_nothing() {
    let engine = setup("m2m_image", false).await;
    let s = session(&engine);
    let author = Obj::new(Author::default());
    let b = book("b");
    author.write().unwrap().books.push(b.clone()).unwrap();
    s.add(&author).unwrap();
    s.commit().await.unwrap();

    let s = session(&engine);
    let author = s
        .scalars(select::<Author>().options(selectinload(Author::C.books)))
        .await
        .unwrap()
        .one()
        .unwrap();
    let b = author.read().unwrap().books.get().unwrap()[0].clone();
    s.load(std::slice::from_ref(&b), selectinload(Book::C.tags))
        .await
        .unwrap();
    b.write().unwrap().tags.push(tag("new")).unwrap();
    author.write().unwrap(); // the author is looked at by the flush too
    s.commit().await.unwrap();
    assert_eq!(links(&engine).await, pairs(&[("b", "new")]));
}

/// `test_backref_mutations.py`'s many-to-many cases: an append undone before the flush writes
/// nothing (`test_add_remove_pending_backref`, `test_remove_add_pending_backref`); a bulk
/// replace moves the object between the other side's loaded collections (`test_bulk_replace`);
/// emptying one side takes it out of every collection it was in, repeats included
/// (`test_backref_pop_m2m`).
#[tokio::test]
async fn back_references_follow_appends_removals_and_replacements() {
    let engine = setup("m2m_backref", false).await;
    let s = session(&engine);
    let (k1, k2, k3) = (tag("k1"), tag("k2"), tag("k3"));
    let (i1, i2) = (book("i1"), book("i2"));
    i1.write().unwrap().tags.set(vec![k1.clone(), k2.clone()]);
    i2.write().unwrap().tags.set(vec![k3.clone()]);
    // Bulk replace.
    i1.write().unwrap().tags.set(vec![k2.clone(), k3.clone()]);
    let books_of = |t: &Obj<Tag>| -> Vec<String> {
        t.read()
            .unwrap()
            .books
            .get()
            .unwrap()
            .iter()
            .map(|b| b.read().unwrap().title.clone())
            .collect()
    };
    assert_eq!(books_of(&k3), ["i2", "i1"]);
    assert!(books_of(&k1).is_empty());
    s.add_all(&[i1.clone(), i2.clone()]).unwrap();
    s.add(&k1).unwrap(); // no longer reached through a collection
    s.commit().await.unwrap();
    assert_eq!(
        links(&engine).await,
        pairs(&[("i1", "k2"), ("i1", "k3"), ("i2", "k3")])
    );

    // Undone before the flush: nothing written either way.
    let s = session(&engine);
    let i1 = s
        .scalars(select::<Book>().filter(Book::C.title.eq("i1")))
        .await
        .unwrap()
        .one()
        .unwrap();
    let k1 = s
        .scalars(
            select::<Tag>()
                .filter(Tag::C.name.eq("k1"))
                .options(selectinload(Tag::C.books)),
        )
        .await
        .unwrap()
        .one()
        .unwrap();
    let k2 = s
        .scalars(
            select::<Tag>()
                .filter(Tag::C.name.eq("k2"))
                .options(selectinload(Tag::C.books)),
        )
        .await
        .unwrap()
        .one()
        .unwrap();
    k1.write().unwrap().books.push(i1.clone()).unwrap();
    k1.write().unwrap().books.remove(&i1).unwrap();
    k2.write().unwrap().books.remove(&i1).unwrap();
    k2.write().unwrap().books.push(i1.clone()).unwrap();
    s.commit().await.unwrap();
    assert_eq!(
        links(&engine).await,
        pairs(&[("i1", "k2"), ("i1", "k3"), ("i2", "k3")])
    );

    // Emptying one side (in memory; nothing flushed).
    let (k1, k2, i1) = (tag("a"), tag("b"), book("c"));
    k1.write().unwrap().books.push(i1.clone()).unwrap();
    k2.write().unwrap().books.push(i1.clone()).unwrap();
    k2.write().unwrap().books.push(i1.clone()).unwrap();
    assert_eq!(i1.read().unwrap().tags.len(), 2);
    i1.write().unwrap().tags.set(Vec::new());
    assert!(k1.read().unwrap().books.is_empty());
    k2.write().unwrap().books.remove(&i1).unwrap();
    assert!(k2.read().unwrap().books.is_empty());
}

/// `joinedload` of a collection, one-to-many and many-to-many (through the link table): one
/// query whose join repeats each parent per child, each parent returned once with its whole
/// collection; with LIMIT it is refused (the limit would count rows, not parents).
#[tokio::test]
async fn joinedload_of_a_collection_returns_each_parent_once_with_its_children() {
    let engine = setup("m2m_joined", false).await;
    let s = session(&engine);
    let author = Obj::new(Author::default());
    let (b1, b2, b3) = (book("b1"), book("b2"), book("b3"));
    let (t1, t2) = (tag("t1"), tag("t2"));
    b1.write().unwrap().tags.set(vec![t1.clone(), t2.clone()]);
    b2.write().unwrap().tags.push(t2.clone()).unwrap();
    author
        .write()
        .unwrap()
        .books
        .set(vec![b1.clone(), b2.clone()]);
    s.add_all(&[b1, b2, b3]).unwrap();
    s.add(&author).unwrap();
    s.commit().await.unwrap();

    let s = session(&engine);
    let query = select::<Book>()
        .options(session_core::joinedload(Book::C.tags))
        .order_by(Book::C.title.asc());
    let (sql, _) = query.to_sql();
    assert!(
        sql.contains("LEFT OUTER JOIN \"book_tag\" AS \"book_tag_1\"")
            && sql.contains("LEFT OUTER JOIN \"tag\" AS \"tag_1\""),
        "{sql}"
    );
    let books = s.scalars(query).await.unwrap().all();

    assert_eq!(books.len(), 3, "each book once");
    let tags_of = |b: &Obj<Book>| names(b.read().unwrap().tags.get().unwrap());
    let mut first = tags_of(&books[0]);
    first.sort();
    assert_eq!(first, ["t1", "t2"]);
    assert_eq!(tags_of(&books[1]), ["t2"]);
    assert!(
        tags_of(&books[2]).is_empty(),
        "a book without tags: loaded, empty"
    );
    // Loaded from the join: a change diffs against it (one link row taken out).
    let t2 = books[0]
        .read()
        .unwrap()
        .tags
        .get()
        .unwrap()
        .iter()
        .find(|t| t.read().unwrap().name == "t2")
        .cloned()
        .unwrap();
    books[0].write().unwrap().tags.remove(&t2).unwrap();
    s.commit().await.unwrap();
    assert_eq!(links(&engine).await, pairs(&[("b1", "t1"), ("b2", "t2")]));

    // One-to-many, with a many-to-many joined beside it (the rows multiply; each child once).
    let s = session(&engine);
    let authors = s
        .scalars(
            select::<Author>()
                .options(session_core::joinedload(Author::C.books).selectinload(Book::C.tags)),
        )
        .await
        .unwrap()
        .all();
    assert_eq!(authors.len(), 1);
    let books = authors[0].read().unwrap().books.get().unwrap().to_vec();
    assert_eq!(books.len(), 2);
    assert!(books.iter().all(|b| b.read().unwrap().tags.is_loaded()));

    let err = s
        .scalars(
            select::<Book>()
                .options(session_core::joinedload(Book::C.tags))
                .limit(1),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("use selectinload"), "{err}");
}
