//! `#[derive(FromRow)]` on a plain struct, a generic one, raw identifiers and renamed
//! fields, with warnings denied: the expansion names everything by absolute path.
#![deny(warnings)]
#![no_implicit_prelude]

/// A plain struct.
#[derive(::session_core::FromRow)]
pub struct Line {
    /// By name.
    pub sku: ::std::string::String,
    /// Renamed.
    #[row(rename = "in_stock")]
    pub stock: i32,
    /// A raw identifier reads the column `type`.
    pub r#type: ::std::option::Option<::std::string::String>,
}

/// A generic struct: each field type must decode.
#[derive(::session_core::FromRow)]
pub struct Tagged<T>
where
    T: ::std::fmt::Debug,
{
    /// Generic.
    pub value: T,
    /// Concrete.
    pub tag: ::std::string::String,
}

fn decode(row: &::session_core::tokio_postgres::Row) -> ::session_core::Result<Tagged<i64>> {
    let _ = <Line as ::session_core::FromRow>::from_row(row)?;
    <Tagged<i64> as ::session_core::FromRow>::from_row(row)
}

fn main() {
    let _ = decode;
}
