use session_core::ColumnType;
use session_core::tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

/// A column type with no `Default`: it has no "unset" value to leave to the server.
#[derive(Debug, Clone, PartialEq)]
struct Ticket(i64);

impl ToSql for Ticket {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut session_core::tokio_postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.0.to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        <i64 as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Ticket {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        i64::from_sql(ty, raw).map(Ticket)
    }

    fn accepts(ty: &Type) -> bool {
        <i64 as FromSql>::accepts(ty)
    }
}

impl ColumnType for Ticket {
    const SQL_TYPE: &'static str = "bigint";
}

#[derive(Debug, Clone, session_core::Entity)]
struct Order {
    #[entity(primary_key)]
    id: i32,
    #[entity(server_default = "nextval('tickets')")]
    ticket: Ticket,
    // An Option is unset when None, whatever its inner type.
    #[entity(server_default = "nextval('tickets')")]
    spare: Option<Ticket>,
}

fn main() {}
