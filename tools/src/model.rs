//! The seed's `A` / `B` schema (plus a composite-key `Item`), shared by the demo, the
//! benchmarks and the tests. The [`Entity`] impls are written by hand, exactly what
//! `#[derive(Entity)]` generates, so that the session's tests do not depend on the macro.

use chrono::NaiveDateTime;
use session_core::tokio_postgres::Row;
use session_core::tokio_postgres::types::ToSql;
use session_core::{
    Col, Collection, Column, ColumnType, Entity, ForeignKey, Link, ManyToOne, MetaData, Obj,
    OneToMany, OwnedParam, Reference, Table,
};

const fn col(name: &'static str, sql_type: &'static str, nullable: bool) -> Column {
    Column {
        name,
        field: name,
        sql_type,
        nullable,
        primary_key: false,
        generated: false,
        server_default: None,
        foreign_key: None,
        unique: false,
    }
}

/// `a`: id serial, data varchar, create_date timestamp default now().
#[derive(Debug, Clone, Default, PartialEq)]
pub struct A {
    /// Generated key.
    pub id: i32,
    /// Payload.
    pub data: String,
    /// Server default `now()`.
    pub create_date: Option<NaiveDateTime>,
    /// One-to-many: the `B`s whose `a_id` is this `id`.
    pub bs: Collection<B>,
}

/// `b`: id serial, a_id references a, data varchar.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct B {
    /// Generated key.
    pub id: i32,
    /// Parent.
    pub a_id: i32,
    /// Payload.
    pub data: String,
    /// Many-to-one: the `A` of `a_id`.
    pub a: Reference<A>,
}

/// `item`: composite key (shop, sku), explicit keys, a nullable price.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Item {
    /// Key part 1.
    pub shop: String,
    /// Key part 2.
    pub sku: i64,
    /// Nullable column.
    pub price: Option<f64>,
}

static A_TABLE: Table = Table {
    name: "a",
    entity: "A",
    columns: &[
        Column {
            primary_key: true,
            generated: true,
            ..col("id", <i32 as ColumnType>::SQL_TYPE, false)
        },
        col("data", <String as ColumnType>::SQL_TYPE, false),
        Column {
            server_default: Some("now()"),
            ..col("create_date", <NaiveDateTime as ColumnType>::SQL_TYPE, true)
        },
    ],
};

static B_TABLE: Table = Table {
    name: "b",
    entity: "B",
    columns: &[
        Column {
            primary_key: true,
            generated: true,
            ..col("id", "integer", false)
        },
        Column {
            foreign_key: Some(ForeignKey {
                table: "a",
                column: "id",
            }),
            ..col("a_id", "integer", false)
        },
        col("data", "varchar", false),
    ],
};

static ITEM_TABLE: Table = Table {
    name: "item",
    entity: "Item",
    columns: &[
        Column {
            primary_key: true,
            ..col("shop", "varchar", false)
        },
        Column {
            primary_key: true,
            ..col("sku", "bigint", false)
        },
        col("price", "double precision", true),
    ],
};

macro_rules! field_dispatch {
    ($self:ident, $index:ident, [$($i:literal => $f:ident),*]) => {
        match $index { $($i => &$self.$f as &(dyn ToSql + Sync),)* _ => &None::<i32> }
    };
}

impl Entity for A {
    type Key = i32;
    const TABLE: &'static Table = &A_TABLE;

    fn key(&self) -> i32 {
        self.id
    }
    fn key_params(key: &i32) -> Vec<&(dyn ToSql + Sync)> {
        vec![key]
    }
    fn column_param(&self, index: usize) -> &(dyn ToSql + Sync) {
        field_dispatch!(self, index, [0 => id, 1 => data, 2 => create_date])
    }
    fn column_array(objects: &[&Self], index: usize) -> OwnedParam {
        match index {
            0 => Box::new(objects.iter().map(|o| o.id).collect::<Vec<_>>()),
            1 => Box::new(objects.iter().map(|o| o.data.clone()).collect::<Vec<_>>()),
            _ => Box::new(objects.iter().map(|o| o.create_date).collect::<Vec<_>>()),
        }
    }
    fn from_row(row: &Row, offset: usize) -> Result<Self, session_core::tokio_postgres::Error> {
        Ok(A {
            id: row.try_get(offset)?,
            data: row.try_get(offset + 1)?,
            create_date: row.try_get(offset + 2)?,
            bs: Collection::unloaded("A.bs"),
        })
    }
    fn key_from_row(row: &Row, offset: usize) -> Result<i32, session_core::tokio_postgres::Error> {
        row.try_get(offset)
    }
    fn set_column(
        &mut self,
        index: usize,
        row: &Row,
        at: usize,
    ) -> Result<(), session_core::tokio_postgres::Error> {
        match index {
            0 => self.id = row.try_get(at)?,
            1 => self.data = row.try_get(at)?,
            2 => self.create_date = row.try_get(at)?,
            _ => {}
        }
        Ok(())
    }
    fn column_eq(&self, other: &Self, index: usize) -> bool {
        match index {
            0 => self.id == other.id,
            1 => self.data == other.data,
            2 => self.create_date == other.create_date,
            _ => true,
        }
    }
    fn relations(obj: &Obj<Self>, visit: &mut dyn FnMut(Link)) {
        let children: Vec<Obj<B>> = obj
            .peek(|a| a.bs.loaded().map(<[Obj<B>]>::to_vec))
            .unwrap_or_default();
        for child in &children {
            visit(Link::new(
                obj,
                child,
                |a: &A| a.id,
                |b: &mut B, k| b.a_id = k,
                |b: &B| Some(b.a_id),
            ));
        }
    }
}

impl Entity for B {
    type Key = i32;
    const TABLE: &'static Table = &B_TABLE;

    fn key(&self) -> i32 {
        self.id
    }
    fn key_params(key: &i32) -> Vec<&(dyn ToSql + Sync)> {
        vec![key]
    }
    fn column_param(&self, index: usize) -> &(dyn ToSql + Sync) {
        field_dispatch!(self, index, [0 => id, 1 => a_id, 2 => data])
    }
    fn column_array(objects: &[&Self], index: usize) -> OwnedParam {
        match index {
            0 => Box::new(objects.iter().map(|o| o.id).collect::<Vec<_>>()),
            1 => Box::new(objects.iter().map(|o| o.a_id).collect::<Vec<_>>()),
            _ => Box::new(objects.iter().map(|o| o.data.clone()).collect::<Vec<_>>()),
        }
    }
    fn from_row(row: &Row, offset: usize) -> Result<Self, session_core::tokio_postgres::Error> {
        Ok(B {
            id: row.try_get(offset)?,
            a_id: row.try_get(offset + 1)?,
            data: row.try_get(offset + 2)?,
            a: Reference::unloaded("B.a"),
        })
    }
    fn key_from_row(row: &Row, offset: usize) -> Result<i32, session_core::tokio_postgres::Error> {
        row.try_get(offset)
    }
    fn set_column(
        &mut self,
        index: usize,
        row: &Row,
        at: usize,
    ) -> Result<(), session_core::tokio_postgres::Error> {
        match index {
            0 => self.id = row.try_get(at)?,
            1 => self.a_id = row.try_get(at)?,
            2 => self.data = row.try_get(at)?,
            _ => {}
        }
        Ok(())
    }
    fn column_eq(&self, other: &Self, index: usize) -> bool {
        match index {
            0 => self.id == other.id,
            1 => self.a_id == other.a_id,
            2 => self.data == other.data,
            _ => true,
        }
    }
    fn relations(obj: &Obj<Self>, visit: &mut dyn FnMut(Link)) {
        if let Some(parent) = obj.peek(|b| b.a.loaded().cloned()) {
            visit(Link::new(
                &parent,
                obj,
                |a: &A| a.id,
                |b: &mut B, k| b.a_id = k,
                |b: &B| Some(b.a_id),
            ));
        }
    }
}

impl Entity for Item {
    type Key = (String, i64);
    const TABLE: &'static Table = &ITEM_TABLE;

    fn key(&self) -> (String, i64) {
        (self.shop.clone(), self.sku)
    }
    fn key_params(key: &(String, i64)) -> Vec<&(dyn ToSql + Sync)> {
        vec![&key.0, &key.1]
    }
    fn column_param(&self, index: usize) -> &(dyn ToSql + Sync) {
        field_dispatch!(self, index, [0 => shop, 1 => sku, 2 => price])
    }
    fn column_array(objects: &[&Self], index: usize) -> OwnedParam {
        match index {
            0 => Box::new(objects.iter().map(|o| o.shop.clone()).collect::<Vec<_>>()),
            1 => Box::new(objects.iter().map(|o| o.sku).collect::<Vec<_>>()),
            _ => Box::new(objects.iter().map(|o| o.price).collect::<Vec<_>>()),
        }
    }
    fn from_row(row: &Row, offset: usize) -> Result<Self, session_core::tokio_postgres::Error> {
        Ok(Item {
            shop: row.try_get(offset)?,
            sku: row.try_get(offset + 1)?,
            price: row.try_get(offset + 2)?,
        })
    }
    fn key_from_row(
        row: &Row,
        offset: usize,
    ) -> Result<(String, i64), session_core::tokio_postgres::Error> {
        Ok((row.try_get(offset)?, row.try_get(offset + 1)?))
    }
    fn set_column(
        &mut self,
        index: usize,
        row: &Row,
        at: usize,
    ) -> Result<(), session_core::tokio_postgres::Error> {
        match index {
            0 => self.shop = row.try_get(at)?,
            1 => self.sku = row.try_get(at)?,
            2 => self.price = row.try_get(at)?,
            _ => {}
        }
        Ok(())
    }
    fn column_eq(&self, other: &Self, index: usize) -> bool {
        match index {
            0 => self.shop == other.shop,
            1 => self.sku == other.sku,
            2 => self.price == other.price,
            _ => true,
        }
    }
}

/// The test schema: the seed's `a` and `b`, plus `item`.
pub fn metadata() -> MetaData {
    seed_metadata().with::<Item>()
}

/// The seed's metadata (SQLAlchemy's `Base.metadata`): `a` and `b`.
pub fn seed_metadata() -> MetaData {
    MetaData::new().with::<B>().with::<A>()
}

// Columns and relationships as `#[derive(Entity)]` generates them (SQLAlchemy's `A.id`,
// `A.bs`).
#[allow(non_upper_case_globals)]
impl A {
    /// `a.id`.
    pub const id: Col<A, i32> = Col::new(0);
    /// `a.data`.
    pub const data: Col<A, String> = Col::new(1);
    /// `a.create_date`.
    pub const create_date: Col<A, Option<NaiveDateTime>> = Col::new(2);

    /// `A.bs`.
    pub fn bs() -> OneToMany<A, B, i32> {
        OneToMany {
            foreign_key: B::a_id,
            parent_key: |a| a.id,
            child_key: |b| Some(b.a_id),
            set: |a, bs| a.bs = bs,
        }
    }
}

#[allow(non_upper_case_globals)]
impl B {
    /// `b.id`.
    pub const id: Col<B, i32> = Col::new(0);
    /// `b.a_id`.
    pub const a_id: Col<B, i32> = Col::new(1);
    /// `b.data`.
    pub const data: Col<B, String> = Col::new(2);

    /// `B.a`.
    pub fn a() -> ManyToOne<B, A, i32> {
        ManyToOne {
            parent_column: A::id,
            parent_key: |a| a.id,
            child_key: |b| Some(b.a_id),
            set: |b, a| b.a = a,
        }
    }
}

#[allow(non_upper_case_globals)]
impl Item {
    /// `item.shop`.
    pub const shop: Col<Item, String> = Col::new(0);
    /// `item.sku`.
    pub const sku: Col<Item, i64> = Col::new(1);
    /// `item.price`.
    pub const price: Col<Item, Option<f64>> = Col::new(2);
}
