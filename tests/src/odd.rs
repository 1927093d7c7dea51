//! Entities for the bad-input tests: names that need quoting, and a wide table. Hand-written
//! through a small declarative macro (single-column keys, no relationships).

use session_core::tokio_postgres::Row;
use session_core::tokio_postgres::types::ToSql;
use session_core::{Column, ColumnType, Entity, OwnedParam, Table};

macro_rules! plain_entity {
    (
        $(#[$doc:meta])*
        $name:ident, table = $table:literal, key = $key:ident : $kty:ty,
        columns = [$($field:ident : $ty:ty => $col:literal),* $(,)?]
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name {
            /// Primary key.
            pub $key: $kty,
            $(
                #[doc = concat!("Column `", $col, "`.")]
                pub $field: $ty,
            )*
        }

        impl $name {
            const COLUMNS: &'static [Column] = &[
                Column {
                    name: stringify!($key),
                    field: stringify!($key),
                    sql_type: <$kty as ColumnType>::SQL_TYPE,
                    nullable: false,
                    primary_key: true,
                    generated: false,
                    server_default: None,
                    foreign_key: None,
                    unique: false,
                },
                $(Column {
                    name: $col,
                    field: stringify!($field),
                    sql_type: <$ty as ColumnType>::SQL_TYPE,
                    nullable: <$ty as ColumnType>::NULLABLE,
                    primary_key: false,
                    generated: false,
                    server_default: None,
                    foreign_key: None,
                    unique: false,
                },)*
            ];
            const TABLE_DEF: Table = Table {
                name: $table,
                entity: stringify!($name),
                columns: Self::COLUMNS,
            };
        }

        impl Entity for $name {
            type Key = $kty;
            const TABLE: &'static Table = &Self::TABLE_DEF;

            fn key(&self) -> $kty {
                self.$key.clone()
            }
            fn key_params(key: &$kty) -> Vec<&(dyn ToSql + Sync)> {
                vec![key]
            }
            #[allow(unused_assignments)]
            fn column_param(&self, index: usize) -> &(dyn ToSql + Sync) {
                let mut i = 0usize;
                if index == i { return &self.$key; }
                $(i += 1; if index == i { return &self.$field; })*
                &self.$key
            }
            #[allow(unused_assignments)]
            fn column_array(objects: &[&Self], index: usize) -> OwnedParam {
                let mut i = 0usize;
                if index == i {
                    return Box::new(objects.iter().map(|o| o.$key.clone()).collect::<Vec<_>>());
                }
                $(
                    i += 1;
                    if index == i {
                        return Box::new(
                            objects.iter().map(|o| o.$field.clone()).collect::<Vec<_>>(),
                        );
                    }
                )*
                Box::new(Vec::<$kty>::new())
            }
            #[allow(unused_assignments)]
            fn from_row(
                row: &Row,
                offset: usize,
            ) -> Result<Self, session_core::tokio_postgres::Error> {
                let mut i = offset;
                let $key = row.try_get(i)?;
                $(i += 1; let $field = row.try_get(i)?;)*
                Ok($name { $key, $($field),* })
            }
            fn key_from_row(
                row: &Row,
                offset: usize,
            ) -> Result<$kty, session_core::tokio_postgres::Error> {
                row.try_get(offset)
            }
            #[allow(unused_assignments)]
            fn set_column(
                &mut self,
                index: usize,
                row: &Row,
                at: usize,
            ) -> Result<(), session_core::tokio_postgres::Error> {
                let mut i = 0usize;
                if index == i { self.$key = row.try_get(at)?; }
                $(i += 1; if index == i { self.$field = row.try_get(at)?; })*
                Ok(())
            }
            #[allow(unused_assignments)]
            fn column_eq(&self, other: &Self, index: usize) -> bool {
                let mut i = 0usize;
                if index == i { return self.$key == other.$key; }
                $(i += 1; if index == i { return self.$field == other.$field; })*
                true
            }
        }
    };
}

plain_entity! {
    /// A table and columns whose names need quoting: a keyword, mixed case, a quote, a space.
    Odd, table = "select \"Odd\" Table", key = id: i64,
    columns = [
        order: String => "order",
        mixed: Option<f64> => "MixedCase",
        quoted: String => "quote\"d col",
    ]
}

plain_entity! {
    /// Ten columns, for flushes far beyond the 65,535-parameter limit of a VALUES list.
    Wide, table = "wide", key = id: i64,
    columns = [
        c1: i64 => "c1", c2: i64 => "c2", c3: String => "c3", c4: String => "c4",
        c5: Option<i32> => "c5", c6: bool => "c6", c7: f64 => "c7", c8: String => "c8",
        c9: Option<String> => "c9",
    ]
}
