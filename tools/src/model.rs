//! The seed's `A` / `B` schema (plus a composite-key `Item`), shared by the demo, the
//! benchmarks and the tests: SQLAlchemy's
//!
//! ```python
//! class A(Base):
//!     __tablename__ = "a"
//!     id: Mapped[int] = mapped_column(primary_key=True)
//!     data: Mapped[str]
//!     create_date: Mapped[datetime.datetime] = mapped_column(server_default=func.now())
//!     bs: Mapped[list[B]] = relationship()
//!
//! class B(Base):
//!     __tablename__ = "b"
//!     id: Mapped[int] = mapped_column(primary_key=True)
//!     a_id: Mapped[int] = mapped_column(ForeignKey("a.id"))
//!     data: Mapped[str]
//! ```

use chrono::NaiveDateTime;
use session_core::{Collection, Entity, MetaData, Reference};

/// `a`: id serial, data varchar, create_date timestamp default now(), and its `B`s.
#[derive(Debug, Clone, Default, PartialEq, Entity)]
#[entity(table = "a")]
pub struct A {
    /// Generated key.
    #[entity(primary_key, generated)]
    pub id: i32,
    /// Payload.
    pub data: String,
    /// Server default `now()`.
    #[entity(server_default = "now()")]
    pub create_date: Option<NaiveDateTime>,
    /// One-to-many: the `B`s whose `a_id` is this `id`.
    #[entity(relationship(foreign_key = "a_id"))]
    pub bs: Collection<B>,
}

/// `b`: id serial, a_id references a, data varchar.
#[derive(Debug, Clone, Default, PartialEq, Entity)]
#[entity(table = "b")]
pub struct B {
    /// Generated key.
    #[entity(primary_key, generated)]
    pub id: i32,
    /// Parent.
    #[entity(foreign_key = "a.id")]
    pub a_id: i32,
    /// Payload.
    pub data: String,
    /// Many-to-one: the `A` of `a_id`.
    #[entity(relationship(foreign_key = "a_id"))]
    pub a: Reference<A>,
}

/// `item`: composite key (shop, sku), explicit keys, a nullable price.
#[derive(Debug, Clone, Default, PartialEq, Entity)]
#[entity(table = "item")]
pub struct Item {
    /// Key part 1.
    #[entity(primary_key)]
    pub shop: String,
    /// Key part 2.
    #[entity(primary_key)]
    pub sku: i64,
    /// Nullable column.
    pub price: Option<f64>,
}

/// The test schema: the seed's `a` and `b`, plus `item`.
pub fn metadata() -> MetaData {
    seed_metadata().with::<Item>()
}

/// The seed's metadata (SQLAlchemy's `Base.metadata`): `a` and `b`.
pub fn seed_metadata() -> MetaData {
    MetaData::new().with::<B>().with::<A>()
}
