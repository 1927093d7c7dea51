//! The query vocabulary real services need, against a real PostgreSQL: upserts with the
//! identity map kept true, expression updates and functions, jsonb and array operators, raw
//! fragments inside filters, keyset pages, row locks (NOWAIT, SKIP LOCKED, OF, FOR SHARE) seen
//! from a second session, and raw SQL with row counts and rows decoded into structs.

mod expressions;
mod locks;
mod raw_sql;
mod shop;
mod upsert;
