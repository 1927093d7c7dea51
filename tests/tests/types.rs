//! Column types services use (uuid, numeric, jsonb, time, inet, arrays), each round-tripped
//! through a one-row insert, a batched insert of 10,000 rows, a batched update, an eager load,
//! filters and a stream, with NULLs and values at the type's limits; and the values
//! PostgreSQL cannot store exactly, refused with the column's name.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use futures::StreamExt;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use session_core::{
    AsyncSession, Collection, Engine, Entity, Error, Json, MetaData, Obj, func, insert, select,
    select_columns, selectinload,
};
use session_tests::support::{create_schema, engine};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Settings {
    theme: String,
    size: u32,
    tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Entity)]
#[entity(table = "shelf")]
struct Shelf {
    #[entity(primary_key)]
    id: Uuid,
    name: String,
    #[entity(relationship(foreign_key = "shelf_id"))]
    books: Collection<Book>,
}

#[derive(Debug, Clone, PartialEq, Entity)]
#[entity(table = "book")]
struct Book {
    #[entity(primary_key)]
    id: Uuid,
    #[entity(foreign_key = "shelf.id")]
    shelf_id: Option<Uuid>,
    price: Decimal,
    discount: Option<Decimal>,
    doc: serde_json::Value,
    settings: Json<Settings>,
    note: Option<serde_json::Value>,
    at: time::OffsetDateTime,
    local: time::PrimitiveDateTime,
    day: time::Date,
    clock: Option<time::Time>,
    stamp: NaiveDateTime,
    addr: IpAddr,
    peer: Option<IpAddr>,
    keywords: Vec<String>,
    scores: Vec<i32>,
    big: Vec<i64>,
    related: Vec<Uuid>,
    sparse: Vec<Option<i32>>,
    flags: Option<Vec<bool>>,
    amounts: Vec<Decimal>,
    times: Vec<NaiveDateTime>,
    blobs: Vec<Vec<u8>>,
    ratios: Vec<f64>,
}

fn metadata() -> MetaData {
    MetaData::new().with::<Shelf>().with::<Book>()
}

async fn types_engine(prefix: &str) -> Engine {
    let engine = engine(prefix, 4).await;
    create_schema(&engine, metadata()).await;
    engine
}

fn uuid(n: u128) -> Uuid {
    Uuid::from_u128(0x0123_4567_89ab_cdef_0000_0000_0000_0000 | n)
}

fn odt(secs: i64, micros: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(secs * 1_000_000 + micros) * 1_000)
        .unwrap()
}

/// Book `n`: every column filled, with values at the types' limits for some `n`.
fn book(n: u32, shelf: Option<Uuid>) -> Book {
    let i = i64::from(n);
    let limits = n % 7 == 0;
    Book {
        id: uuid(u128::from(n)),
        shelf_id: shelf,
        price: if limits {
            Decimal::MAX
        } else {
            Decimal::new(i * 100 + 99, 2)
        },
        discount: (n % 3 != 0).then(|| Decimal::from_str("0.000000000000000000000000001").unwrap()),
        doc: serde_json::json!({"n": n, "nested": {"list": [1, "two", null, 3.5]}, "unicode": "zß水🍣"}),
        settings: Json(Settings {
            theme: format!("theme-{n}"),
            size: n,
            tags: vec!["a\"quote".into(), "back\\slash".into(), String::new()],
        }),
        // JSON null (not SQL NULL) for every fourth book.
        note: (n % 4 == 0).then_some(serde_json::Value::Null),
        at: odt(1_700_000_000 + i, i % 1_000_000),
        local: time::PrimitiveDateTime::new(
            time::Date::from_calendar_date(if limits { 1 } else { 2026 }, time::Month::December, 1)
                .unwrap(),
            time::Time::from_hms_micro(23, 59, 59, 999_999).unwrap(),
        ),
        day: time::Date::from_calendar_date(
            if limits { 9999 } else { 2000 },
            time::Month::March,
            1,
        )
        .unwrap(),
        clock: (n % 5 != 0).then(|| time::Time::from_hms_micro(0, 0, 0, n % 1_000_000).unwrap()),
        stamp: NaiveDate::from_ymd_opt(2024, 2, 29)
            .unwrap()
            .and_time(NaiveTime::from_hms_micro_opt(12, 0, 0, n % 1_000_000).unwrap()),
        addr: if limits {
            IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, n as u16))
        } else {
            IpAddr::V4(Ipv4Addr::from(n))
        },
        peer: (n % 2 == 1).then_some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        keywords: (0..n % 4).map(|k| format!("kw{k},{{x}}")).collect(),
        scores: vec![i32::MIN, n as i32, i32::MAX],
        big: if limits {
            vec![]
        } else {
            vec![i64::MIN, i, i64::MAX]
        },
        related: vec![Uuid::nil(), Uuid::max(), uuid(u128::from(n) + 1)],
        sparse: vec![None, Some(n as i32), None],
        flags: (n % 3 == 1).then(|| vec![true, false]),
        amounts: vec![
            Decimal::new(-i, 3),
            Decimal::ZERO,
            Decimal::from_str("1.00").unwrap(),
        ],
        times: vec![
            NaiveDate::from_ymd_opt(1970, 1, 1)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap(),
        ],
        blobs: vec![vec![], vec![0, 255, n as u8]],
        ratios: vec![0.0, -0.0, f64::MAX, f64::MIN_POSITIVE, f64::INFINITY],
    }
}

/// Every column of every book, read back in a new session, by id.
async fn all_books(engine: &Engine) -> Vec<Book> {
    let s = AsyncSession::new(engine.clone());
    let books: Vec<Book> = s
        .scalars(select::<Book>().order_by(Book::C.id.asc()))
        .await
        .unwrap()
        .all()
        .iter()
        .map(|b| b.read().unwrap().clone())
        .collect();
    s.close().await;
    books
}

#[tokio::test]
async fn every_type_round_trips_through_one_row_and_a_batch_of_ten_thousand() {
    let engine = types_engine("types_batch").await;
    let session = AsyncSession::new(engine.clone());
    // One row: the plain INSERT ... VALUES.
    let one = Obj::new(book(1, None));
    session.add(&one).unwrap();
    session.commit().await.unwrap();
    assert_eq!(all_books(&engine).await, vec![book(1, None)]);

    // 10,000 rows: one batched statement per 65,535 parameters (array columns bind a VALUES
    // list; `unnest` would flatten their arrays of arrays).
    let many: Vec<Obj<Book>> = (2..=10_001).map(|n| Obj::new(book(n, None))).collect();
    session.add_all(&many).unwrap();
    session.commit().await.unwrap();
    let back = all_books(&engine).await;
    assert_eq!(back.len(), 10_001);
    let mut expected: Vec<Book> = (1..=10_001).map(|n| book(n, None)).collect();
    expected.sort_by_key(|b| b.id);
    for (got, want) in back.iter().zip(&expected) {
        assert_eq!(got, want, "book {}", want.id);
        assert_eq!(
            got.ratios[1].to_bits(),
            (-0.0f64).to_bits(),
            "-0.0 stays -0.0"
        );
    }
    let mut conn = engine.connect().await.unwrap();
    let kinds: String = conn
        .scalar(
            "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) \
             FROM information_schema.columns WHERE table_name = 'book'",
            &[],
        )
        .await
        .unwrap();
    for want in [
        "id uuid",
        "price numeric",
        "doc jsonb",
        "at timestamp with time zone",
        "local timestamp without time zone",
        "addr inet",
        "keywords ARRAY",
        "related ARRAY",
    ] {
        assert!(kinds.contains(want), "{want} in {kinds}");
    }
    let dims: i32 = conn
        .scalar("SELECT max(array_ndims(keywords)) FROM book", &[])
        .await
        .unwrap();
    assert_eq!(dims, 1, "text[] values stay one-dimensional");
    conn.close().await;
}

#[tokio::test]
async fn batched_updates_write_every_type_and_change_detection_sees_scale_and_sign() {
    let engine = types_engine("types_update").await;
    let session = AsyncSession::builder()
        .bind(engine.clone())
        .expire_on_commit(false)
        .build();
    let books: Vec<Obj<Book>> = (1..=300).map(|n| Obj::new(book(n, None))).collect();
    session.add_all(&books).unwrap();
    session.commit().await.unwrap();

    for (i, b) in books.iter().enumerate() {
        let mut b = b.write().unwrap();
        b.keywords.push(format!("new {i}"));
        b.related = vec![];
        b.sparse.push(None);
        b.doc["n"] = serde_json::json!(-1);
        b.settings.0.theme = "light".into();
        b.discount = None;
        b.note = Some(serde_json::json!([1, 2]));
        b.clock = Some(time::Time::MIDNIGHT);
        b.peer = None;
        b.flags = Some(vec![]);
    }
    session.commit().await.unwrap();
    let back = all_books(&engine).await;
    assert_eq!(back.len(), 300);
    for got in &back {
        assert_eq!(got.keywords.last().unwrap().split(' ').next(), Some("new"));
        assert!(got.related.is_empty());
        assert_eq!(got.doc["n"], serde_json::json!(-1));
        assert_eq!(got.settings.0.theme, "light");
        assert_eq!(got.discount, None);
        assert_eq!(got.note, Some(serde_json::json!([1, 2])));
        assert_eq!(got.clock, Some(time::Time::MIDNIGHT));
        assert_eq!(got.flags, Some(vec![]));
        assert_eq!(got.sparse.len(), 4);
    }

    // 1.00 -> 1.0 is the same number, but an unconstrained numeric keeps the scale.
    let first = &books[0];
    first.write().unwrap().amounts[2] = Decimal::from_str("1.0").unwrap();
    assert!(session.is_modified(first), "a change of scale is a change");
    first.write().unwrap().ratios[0] = -0.0;
    session.commit().await.unwrap();
    let mut conn = engine.connect().await.unwrap();
    let text: String = conn
        .scalar(
            "SELECT amounts[3]::text || ' ' || ratios[1]::text FROM book WHERE id = $1",
            &[&first.read().unwrap().id],
        )
        .await
        .unwrap();
    assert_eq!(text, "1.0 -0");
    conn.close().await;
}

#[tokio::test]
async fn eager_loads_filters_and_streams_over_uuid_keys_and_new_types() {
    let engine = types_engine("types_load").await;
    let session = AsyncSession::new(engine.clone());
    let shelves: Vec<Obj<Shelf>> = (0..3)
        .map(|n| {
            Obj::new(Shelf {
                id: uuid(1_000_000 + n),
                name: format!("shelf {n}"),
                books: Collection::new(),
            })
        })
        .collect();
    session.add_all(&shelves).unwrap();
    let books: Vec<Obj<Book>> = (1..=60)
        .map(|n| Obj::new(book(n, Some(uuid(1_000_000 + u128::from(n % 3))))))
        .collect();
    session.add_all(&books).unwrap();
    session.commit().await.unwrap();

    let s = AsyncSession::new(engine.clone());
    let loaded = s
        .scalars(
            select::<Shelf>()
                .options(selectinload(Shelf::C.books))
                .order_by(Shelf::C.id.asc()),
        )
        .await
        .unwrap()
        .all();
    let counts: Vec<usize> = loaded
        .iter()
        .map(|sh| sh.read().unwrap().books.get().unwrap().len())
        .collect();
    assert_eq!(counts, [20, 20, 20]);
    for shelf in &loaded {
        let shelf = shelf.read().unwrap();
        for b in shelf.books.get().unwrap() {
            let b = b.read().unwrap();
            let n = b.settings.0.size;
            assert_eq!(*b, book(n, Some(shelf.id)));
        }
    }

    let cheap = s
        .scalars(
            select::<Book>()
                .filter(Book::C.price.lt(Decimal::new(1_099, 2)))
                .filter(Book::C.discount.ne(None))
                .filter(Book::C.at.gt(odt(1_700_000_000, 0)))
                .filter(
                    Book::C
                        .day
                        .eq(time::Date::from_calendar_date(2000, time::Month::March, 1).unwrap()),
                )
                .filter(
                    Book::C
                        .id
                        .in_([uuid(1), uuid(2), uuid(3), uuid(4), uuid(5)]),
                ),
        )
        .await
        .unwrap()
        .all();
    let mut ns: Vec<u32> = cheap
        .iter()
        .map(|b| b.read().unwrap().settings.0.size)
        .collect();
    ns.sort_unstable();
    // price < 10.99: n <= 9; discount set: n % 3 != 0; day 2000: n % 7 != 0.
    assert_eq!(ns, [1, 2, 4, 5]);
    let by_addr = s
        .scalars(select::<Book>().filter(Book::C.addr.eq(IpAddr::V4(Ipv4Addr::from(8)))))
        .await
        .unwrap()
        .all();
    assert_eq!(by_addr.len(), 1);
    assert!(by_addr[0].ptr_eq(&books[7]) || by_addr[0].read().unwrap().settings.0.size == 8);

    let top: Option<Option<Decimal>> = s
        .scalar(select_columns(func::max(Book::C.price)))
        .await
        .unwrap();
    assert_eq!(top, Some(Some(Decimal::MAX)));

    let mut stream = s
        .stream_scalars(select::<Book>().order_by(Book::C.at.asc()))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Some(b) = stream.next().await {
        let b = b.unwrap();
        let b = b.read().unwrap();
        assert_eq!(*b, book(b.settings.0.size, b.shelf_id));
        seen.push(b.settings.0.size);
    }
    assert_eq!(seen, (1..=60).collect::<Vec<_>>());
}

#[tokio::test]
async fn values_postgres_would_change_are_refused_with_the_column_name() {
    let engine = types_engine("types_exact").await;
    let session = AsyncSession::builder()
        .bind(engine.clone())
        .expire_on_commit(false)
        .build();
    let mut b = book(1, None);
    b.stamp = NaiveDate::from_ymd_opt(2026, 12, 1)
        .unwrap()
        .and_hms_nano_opt(10, 0, 0, 123_456_789)
        .unwrap();
    session.add(&Obj::new(b.clone())).unwrap();
    let e = session.commit().await.unwrap_err();
    assert!(
        matches!(&e, Error::Value { column, .. } if column == "book.stamp"),
        "{e}"
    );
    assert!(e.to_string().contains("nanoseconds"), "{e}");
    session.rollback().await.unwrap();

    // A leap second, in an array element, in a batch.
    let mut leap = book(2, None);
    leap.times = vec![
        NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_milli_opt(23, 59, 59, 1_500)
            .unwrap(),
    ];
    session
        .add_all(&[Obj::new(book(3, None)), Obj::new(leap)])
        .unwrap();
    let e = session.commit().await.unwrap_err();
    assert!(
        e.to_string().contains("book.times") && e.to_string().contains("leap second"),
        "{e}"
    );
    session.rollback().await.unwrap();

    // time's types, in an update.
    let kept = Obj::new(book(4, None));
    session.add(&kept).unwrap();
    session.commit().await.unwrap();
    kept.write().unwrap().at = odt(1_700_000_000, 0) + time::Duration::nanoseconds(1);
    let e = session.commit().await.unwrap_err();
    assert!(e.to_string().contains("book.at"), "{e}");
    session.rollback().await.unwrap();

    // An INSERT statement's values.
    let e = session
        .execute(
            insert::<Book>().value(
                Book::C.stamp,
                NaiveDate::from_ymd_opt(2026, 1, 1)
                    .unwrap()
                    .and_hms_nano_opt(0, 0, 0, 1)
                    .unwrap(),
            ),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("book.stamp"), "{e}");
    session.rollback().await.unwrap();

    // A filter value PostgreSQL would round: refused, not compared after rounding.
    let ns = NaiveDate::from_ymd_opt(2024, 2, 29)
        .unwrap()
        .and_hms_nano_opt(12, 0, 0, 4_000_001)
        .unwrap();
    for statement in [
        select::<Book>().filter(Book::C.stamp.eq(ns)),
        select::<Book>().filter(Book::C.stamp.between(ns, ns)),
        select::<Book>().filter(Book::C.stamp.in_([ns])),
    ] {
        let e = session.scalars(statement).await.unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("book.stamp") && text.contains("nanoseconds") && text.contains("filter"),
            "{text}"
        );
    }
    let e = session
        .execute(
            session_core::update::<Book>()
                .filter(Book::C.stamp.lt(ns))
                .set(Book::C.price, Decimal::ONE),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("book.stamp"), "{e}");

    // Nothing of it reached the table: only book 4 as first committed.
    let back = all_books(&engine).await;
    assert_eq!(back, vec![book(4, None)]);
}

#[derive(Debug, Clone, PartialEq, Entity)]
#[entity(table = "mistyped")]
struct Mistyped {
    #[entity(primary_key)]
    id: i32,
    amount: i64,
}

#[tokio::test]
async fn a_column_of_another_type_is_an_error_naming_the_column_and_both_types() {
    let engine = engine("types_mistyped", 2).await;
    let mut conn = engine.connect().await.unwrap();
    conn.batch_execute(
        "CREATE TABLE mistyped (id integer PRIMARY KEY, amount numeric); \
                        INSERT INTO mistyped VALUES (1, 2.5)",
    )
    .await
    .unwrap();
    conn.close().await;
    let s = AsyncSession::new(engine.clone());
    let e = s.get::<Mistyped>(1).await.unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(&e, Error::Decode { column, pg_type, .. } if column == "amount" && pg_type == "numeric"),
        "{text}"
    );
    assert!(text.contains("i64"), "the Rust type is named: {text}");
    assert!(text.contains("[SQL: SELECT"), "{text}");
    let e = s
        .execute(select_columns(Mistyped::C.amount))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Decode { .. }), "{e}");
}
