//! [`Xid`]: PostgreSQL's `xid`, the type of the system column `xmin`, which makes a
//! server-generated version counter (SQLAlchemy's `version_id_col` on `xmin` with
//! `version_id_generator=False`).

use postgres_types::private::BytesMut;
use postgres_types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

use crate::model::{ArrayElement, ColumnType, VersionCounter};

/// A transaction id (`xid`): the value of a row's `xmin` system column, which PostgreSQL
/// changes on every UPDATE of the row. As an entity's version counter
/// (`#[entity(version, system)] xmin: Xid`) the server generates it: every UPDATE and DELETE
/// matches the `xmin` loaded, and an UPDATE reads the new one back.
///
/// ```
/// let loaded = session_core::Xid(741);
/// assert_eq!(loaded, session_core::Xid(741));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Xid(pub u32);

impl ToSql for Xid {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(&self.0.to_be_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::XID
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Xid {
    fn from_sql(
        _ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let bytes: [u8; 4] = raw
            .try_into()
            .map_err(|_| format!("an xid is 4 bytes, not {}", raw.len()))?;
        Ok(Xid(u32::from_be_bytes(bytes)))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::XID
    }
}

impl ColumnType for Xid {
    const SQL_TYPE: &'static str = "xid";
}

impl ArrayElement for Xid {
    const ARRAY_TYPE: &'static str = "xid[]";
}

impl VersionCounter for Xid {
    fn to_version(&self) -> i64 {
        i64::from(self.0)
    }

    /// Never called for a server-generated version (the session does not count it).
    fn from_version(version: i64) -> Self {
        Xid(u32::try_from(version).unwrap_or(u32::MAX))
    }
}
