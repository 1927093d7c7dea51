//! `#[derive(ColumnType)]`: enums stored as text and as PostgreSQL enums (created by
//! `create_all`), and transparent newtypes, through one-row and batched flushes, updates,
//! filters, arrays of them and aggregates, against a real PostgreSQL.

use rust_decimal::Decimal;
use session_core::{
    AsyncSession, ColumnType, Engine, Entity, Error, MetaData, Obj, func, select, select_columns,
};
use session_tests::support::{create_schema, engine};

#[derive(Debug, Clone, Copy, PartialEq, ColumnType)]
#[column(rename_all = "snake_case")]
enum Status {
    Draft,
    OnHold,
    #[column(rename = "live")]
    Published,
}

#[derive(Debug, Clone, Copy, PartialEq, ColumnType)]
#[column(pg_enum = "mood")]
enum Mood {
    Sad,
    Ok,
    Happy,
}

#[derive(Debug, Clone, PartialEq, ColumnType)]
struct Price(Decimal);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ColumnType)]
struct BookId {
    value: i64,
}

#[derive(Debug, Clone, PartialEq, ColumnType)]
struct Tags(Vec<String>);

#[derive(Debug, Clone, PartialEq, Entity)]
#[entity(table = "post")]
struct Post {
    #[entity(primary_key)]
    id: BookId,
    status: Status,
    mood: Mood,
    moods: Vec<Mood>,
    price: Price,
    old_price: Option<Price>,
    history: Vec<Status>,
    tags: Tags,
}

fn post(n: i64) -> Post {
    let statuses = [Status::Draft, Status::OnHold, Status::Published];
    let moods = [Mood::Sad, Mood::Ok, Mood::Happy];
    Post {
        id: BookId { value: n },
        status: statuses[(n % 3) as usize],
        mood: moods[(n % 3) as usize],
        moods: vec![Mood::Happy, moods[(n % 3) as usize]],
        price: Price(Decimal::new(n * 100 + 5, 2)),
        old_price: (n % 2 == 0).then(|| Price(Decimal::new(n, 0))),
        history: vec![Status::Draft, Status::Published],
        tags: Tags(vec![format!("t{n}")]),
    }
}

async fn posts_engine(prefix: &str) -> Engine {
    let engine = engine(prefix, 4).await;
    create_schema(&engine, MetaData::new().with::<Post>()).await;
    engine
}

#[test]
fn the_mapping_names_the_sql_types_and_the_enum_type() {
    assert_eq!(<Status as ColumnType>::SQL_TYPE, "text");
    assert_eq!(<Mood as ColumnType>::SQL_TYPE, "mood");
    assert_eq!(<Vec<Mood> as ColumnType>::SQL_TYPE, "mood[]");
    assert_eq!(<Price as ColumnType>::SQL_TYPE, "numeric");
    assert_eq!(<Tags as ColumnType>::SQL_TYPE, "varchar[]");
    let mood = <Mood as ColumnType>::ENUM_TYPE.unwrap();
    assert_eq!(
        (mood.name, mood.labels),
        ("mood", &["Sad", "Ok", "Happy"][..])
    );
    let ddl = MetaData::new().with::<Post>().create_statements();
    assert!(
        ddl[0].contains("CREATE TYPE mood AS ENUM ('Sad', 'Ok', 'Happy')"),
        "{ddl:?}"
    );
    assert!(ddl[1].contains("\"mood\" mood NOT NULL"), "{ddl:?}");
    let drop = MetaData::new().with::<Post>().drop_statements();
    assert_eq!(
        drop,
        ["DROP TABLE IF EXISTS \"post\"", "DROP TYPE IF EXISTS mood"]
    );
}

#[tokio::test]
async fn derived_types_round_trip_through_flushes_filters_and_aggregates() {
    let engine = posts_engine("column_derive").await;
    let session = AsyncSession::new(engine.clone());
    session.add(&Obj::new(post(1))).unwrap();
    session.commit().await.unwrap();
    let batch: Vec<Obj<Post>> = (2..=500).map(|n| Obj::new(post(n))).collect();
    session.add_all(&batch).unwrap();
    session.commit().await.unwrap();

    // What the database holds, as SQL sees it.
    let mut conn = engine.connect().await.unwrap();
    let row = conn
        .query_one(
            "SELECT status, mood::text, moods::text, history::text, price::text, \
             pg_typeof(mood)::text FROM post WHERE id = 4",
            &[],
        )
        .await
        .unwrap();
    let got: (String, String, String, String, String, String) = (
        row.get(0),
        row.get(1),
        row.get(2),
        row.get(3),
        row.get(4),
        row.get(5),
    );
    assert_eq!(
        got,
        (
            "on_hold".into(),
            "Ok".into(),
            "{Happy,Ok}".into(),
            "{draft,live}".into(),
            "4.05".into(),
            "mood".into()
        )
    );
    conn.close().await;

    let s = AsyncSession::new(engine.clone());
    let all = s
        .scalars(select::<Post>().order_by(Post::C.id.asc()))
        .await
        .unwrap()
        .all();
    let back: Vec<Post> = all.iter().map(|p| p.read().unwrap().clone()).collect();
    assert_eq!(back, (1..=500).map(post).collect::<Vec<_>>());

    // Filters, ordering by the enum's order, aggregates over newtypes.
    let happy = s
        .scalars(
            select::<Post>()
                .filter(Post::C.mood.eq(Mood::Happy))
                .filter(Post::C.status.eq(Status::Published)),
        )
        .await
        .unwrap()
        .all();
    assert_eq!(happy.len(), 167);
    let (top, total, biggest): (Option<Price>, Option<Decimal>, Option<BookId>) = s
        .execute(select_columns((
            func::max(Post::C.price),
            func::sum(Post::C.old_price),
            func::max(Post::C.id),
        )))
        .await
        .unwrap()
        .one()
        .unwrap();
    assert_eq!(top, Some(Price(Decimal::new(50_005, 2))));
    assert_eq!(
        total,
        Some(Decimal::from((1..=250).map(|n| n * 2).sum::<i64>()))
    );
    assert_eq!(biggest, Some(BookId { value: 500 }));
    let loved: Option<Option<Mood>> = s
        .scalar(select_columns(func::max(Post::C.mood)))
        .await
        .unwrap();
    assert_eq!(
        loved,
        Some(Some(Mood::Happy)),
        "max follows the enum's order"
    );

    // A batched update of enum, array-of-enum and newtype columns.
    for p in &all {
        let mut p = p.write().unwrap();
        p.status = Status::OnHold;
        p.moods.push(Mood::Sad);
        p.old_price = None;
    }
    s.commit().await.unwrap();
    let mut conn = engine.connect().await.unwrap();
    let held: i64 = conn
        .scalar(
            "SELECT count(*) FROM post WHERE status = 'on_hold' AND moods[3] = 'Sad' \
             AND old_price IS NULL",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(held, 500);

    // A label the Rust enum does not have is an error naming it, never a guess.
    conn.execute("UPDATE post SET status = 'archived' WHERE id = 1", &[])
        .await
        .unwrap();
    conn.close().await;
    let fresh = AsyncSession::new(engine.clone());
    let e = fresh.get::<Post>(BookId { value: 1 }).await.unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(&e, Error::Decode { column, pg_type, .. } if column == "status" && pg_type == "text"),
        "{text}"
    );
    assert!(
        text.contains("cannot read column 'status' (text)"),
        "{text}"
    );
    assert!(
        text.contains("`archived` is not a label of Status"),
        "{text}"
    );
}
