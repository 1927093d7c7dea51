use session_core::{
    create_async_engine, select, selectinload, AsyncSession, Collection, Entity, MetaData, Obj,
    Reference, Result,
};

#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "book")]
struct Book {
    #[entity(primary_key, generated)]
    id: i32,
    title: String,
    // SQLAlchemy: relationship(secondary=book_tag, back_populates="books")
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

/// The link table, declared once. Its own columns are allowed (nullable or with a server
/// default: the collections write only the two keys); mapped like any entity, it is also
/// SQLAlchemy's association object.
#[derive(Debug, Clone, Default, Entity)]
#[entity(table = "book_tag")]
struct BookTag {
    #[entity(primary_key, foreign_key = "book.id", on_delete = "cascade")]
    book_id: i32,
    #[entity(primary_key, foreign_key = "tag.id", on_delete = "cascade")]
    tag_id: i32,
    note: Option<String>,
    #[entity(relationship(foreign_key = "tag_id"))]
    tag: Reference<Tag>,
}

async fn run(url: &str) -> Result<()> {
    let engine = create_async_engine(url)?;
    let mut conn = engine.connect().await?;
    let metadata = MetaData::new().with::<Book>().with::<Tag>().with::<BookTag>();
    metadata.create_all(&mut conn).await?;
    conn.close().await;

    let session = AsyncSession::new(engine.clone());
    let (rust, sql) = (
        Obj::new(Tag { name: "rust".into(), ..Default::default() }),
        Obj::new(Tag { name: "sql".into(), ..Default::default() }),
    );
    let book = Obj::new(Book { title: "Zero to Production".into(), ..Default::default() });
    book.write()?.tags.push(rust.clone())?;
    sql.write()?.books.push(book.clone())?; // either side; the other follows in memory
    assert_eq!(rust.read()?.books.len(), 1);
    session.add(&book)?; // the tags come with it
    session.commit().await?; // one INSERT per table, then one for both link rows

    let session = AsyncSession::new(engine.clone());
    let books = session
        .scalars(select::<Book>().options(selectinload(Book::C.tags)))
        .await?
        .all();
    let tags = books[0].read()?.tags.get()?.to_vec();
    books[0].write()?.tags.remove(&tags[0])?; // one DELETE of link rows at the flush
    session.commit().await?;

    // Through the link table, and the association object with its own column.
    let session = AsyncSession::new(engine);
    let tagged_sql = session
        .scalars(select::<Book>().join(Book::C.tags).filter(Tag::C.name.eq("sql")))
        .await?
        .all();
    let links = session.scalars(select::<BookTag>()).await?.all();
    links[0].write()?.note = Some("the one left".into());
    session.commit().await?;
    println!("{} book(s) tagged sql, {} link row(s)", tagged_sql.len(), links.len());
    Ok(())
}
