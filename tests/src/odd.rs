//! Entities for the bad-input tests: names that need quoting, and a wide table. Both go
//! through `#[derive(Entity)]`, the quoted names through `#[entity(table = "...")]` and
//! `#[entity(column = "...")]`.

use session_core::Entity;

/// A table and columns whose names need quoting: a keyword, mixed case, a quote, a space.
#[derive(Debug, Clone, Default, PartialEq, Entity)]
#[entity(table = "select \"Odd\" Table")]
pub struct Odd {
    /// Primary key (explicit, not generated).
    #[entity(primary_key)]
    pub id: i64,
    /// Column `order` (a keyword).
    #[entity(column = "order")]
    pub order: String,
    /// Column `MixedCase` (mixed case), nullable.
    #[entity(column = "MixedCase")]
    pub mixed: Option<f64>,
    /// Column `quote"d col` (a quote and a space).
    #[entity(column = "quote\"d col")]
    pub quoted: String,
}

/// Ten columns, for flushes far beyond the 65,535-parameter limit of a VALUES list.
#[derive(Debug, Clone, Default, PartialEq, Entity)]
#[entity(table = "wide")]
pub struct Wide {
    /// Primary key (explicit, not generated).
    #[entity(primary_key)]
    pub id: i64,
    /// Column `c1`.
    pub c1: i64,
    /// Column `c2`.
    pub c2: i64,
    /// Column `c3`.
    pub c3: String,
    /// Column `c4`.
    pub c4: String,
    /// Column `c5`, nullable.
    pub c5: Option<i32>,
    /// Column `c6`.
    pub c6: bool,
    /// Column `c7`.
    pub c7: f64,
    /// Column `c8`.
    pub c8: String,
    /// Column `c9`, nullable.
    pub c9: Option<String>,
}
