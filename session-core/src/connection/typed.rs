//! The parameter types of a statement run unnamed, in one flight (tokio-postgres's
//! `query_typed`: Parse, Bind, Execute and Sync sent together), instead of a prepare, an
//! execute and a close: one round trip instead of two. Such a statement also reaches a single
//! server connection through a transaction pooler, so it needs no transaction of its own.
//!
//! A parameter's type is what PostgreSQL would infer for it, found two ways:
//!
//! - an explicit cast in the SQL (`$1::integer[]`, as the session writes for every array it
//!   binds): a parameter cast to a type is inferred as that type, so naming it changes nothing;
//! - else the value itself, when it accepts exactly one of PostgreSQL's built-in types
//!   (`i32`: `integer`, `Uuid`: `uuid`, `DateTime<Utc>`: `timestamptz`, ...). A value that
//!   accepts several (a `String`: `text`, `varchar`, `bpchar`, ...; a JSON value: `json` and
//!   `jsonb`) could mean either, so it is left to the server.
//!
//! When any parameter is left (a cast to a type not listed here, an ambiguous value) the
//! statement runs the old way, prepared and closed.

use std::error::Error as StdError;
use std::time::Instant;

use bytes::BytesMut;
use postgres_types::{Type, WrongType};
use tokio_postgres::Row;

use super::{AsyncConnection, InFlight, Lost, Param};
use crate::error::Result;

impl AsyncConnection {
    /// With the statement cache off ([`EngineBuilder::statement_cache_size`] 0), `params` with
    /// their types when every one is known (see `typed`): the statement then runs unnamed in
    /// one flight, which reaches one server connection through a transaction pooler by itself
    /// (no transaction of its own needed).
    ///
    /// [`EngineBuilder::statement_cache_size`]: crate::EngineBuilder::statement_cache_size
    pub(super) fn typed_when_uncached<'a>(
        &self,
        sql: &str,
        params: &[Param<'a>],
    ) -> Option<Vec<(Param<'a>, Type)>> {
        let conn = self.conn.as_ref()?;
        if conn.statements.capacity() > 0 {
            return None;
        }
        bind(sql, params)
    }

    /// Runs `sql` unnamed, in one flight (see `typed`); `typed` is `params` with their types.
    pub(super) async fn query_typed_here(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        typed: &[(Param<'_>, Type)],
    ) -> Result<Vec<Row>> {
        let started = Instant::now();
        let result = on_client!(self, sql sql, client => client.query_typed(sql, typed));
        let rows = self.finish(sql, params, started, result)?;
        self.echo(sql, params, rows.len() as u64, started);
        Ok(rows)
    }

    /// [`AsyncConnection::query_typed_here`] for the count of rows affected.
    pub(super) async fn execute_typed_here(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        typed: &[(Param<'_>, Type)],
    ) -> Result<u64> {
        let started = Instant::now();
        let result = on_client!(self, sql sql, client => client.execute_typed(sql, typed));
        let affected = self.finish(sql, params, started, result)?;
        self.echo(sql, params, affected, started);
        Ok(affected)
    }
}

/// A SQL type name as the session writes it (`Column::sql_type`: `integer`, `bigint`, `text`,
/// `varchar(20)`, `timestamp with time zone`, `uuid[]`, ...) as a built-in [`Type`]; `None`
/// for a type not listed (an enum, a domain, a schema-qualified or quoted name).
pub(crate) fn pg_type(sql_type: &str) -> Option<Type> {
    let mut name = sql_type.trim().to_ascii_lowercase();
    let mut array = false;
    loop {
        if let Some(rest) = name.strip_suffix(" array") {
            name = rest.trim_end().to_string();
            array = true;
        } else if name.ends_with(']') {
            let open = name.rfind('[')?;
            name = name[..open].trim_end().to_string();
            array = true;
        } else {
            break;
        }
    }
    let base = base_name(&name)?;
    let (_, (scalar, arrays)) = BUILTINS
        .iter()
        .find(|(names, ..)| names.contains(&base.as_str()))?;
    Some(if array { arrays } else { scalar }.clone())
}

/// `name` without type modifiers (`varchar(20)` -> `varchar`, `timestamp(3) with time zone` ->
/// `timestamp with time zone`), its words single-spaced.
fn base_name(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut depth = 0u32;
    for c in name.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1)?,
            _ if depth > 0 => {}
            c if c.is_ascii_alphanumeric() || c == '_' || c == ' ' => out.push(c),
            _ => return None,
        }
    }
    (depth == 0).then(|| out.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The built-in types named here: their names, the type and the type of its arrays.
static BUILTINS: &[(&[&str], (Type, Type))] = &[
    (&["boolean", "bool"], (Type::BOOL, Type::BOOL_ARRAY)),
    (&["smallint", "int2"], (Type::INT2, Type::INT2_ARRAY)),
    (&["integer", "int", "int4"], (Type::INT4, Type::INT4_ARRAY)),
    (&["bigint", "int8"], (Type::INT8, Type::INT8_ARRAY)),
    (&["real", "float4"], (Type::FLOAT4, Type::FLOAT4_ARRAY)),
    (
        &["double precision", "float8"],
        (Type::FLOAT8, Type::FLOAT8_ARRAY),
    ),
    (
        &["numeric", "decimal"],
        (Type::NUMERIC, Type::NUMERIC_ARRAY),
    ),
    (&["text"], (Type::TEXT, Type::TEXT_ARRAY)),
    (
        &["varchar", "character varying"],
        (Type::VARCHAR, Type::VARCHAR_ARRAY),
    ),
    (
        &["bpchar", "char", "character"],
        (Type::BPCHAR, Type::BPCHAR_ARRAY),
    ),
    (&["name"], (Type::NAME, Type::NAME_ARRAY)),
    (&["bytea"], (Type::BYTEA, Type::BYTEA_ARRAY)),
    (&["uuid"], (Type::UUID, Type::UUID_ARRAY)),
    (&["json"], (Type::JSON, Type::JSON_ARRAY)),
    (&["jsonb"], (Type::JSONB, Type::JSONB_ARRAY)),
    (&["inet"], (Type::INET, Type::INET_ARRAY)),
    (&["cidr"], (Type::CIDR, Type::CIDR_ARRAY)),
    (&["oid"], (Type::OID, Type::OID_ARRAY)),
    (&["date"], (Type::DATE, Type::DATE_ARRAY)),
    (
        &["time", "time without time zone"],
        (Type::TIME, Type::TIME_ARRAY),
    ),
    (
        &["timestamp", "timestamp without time zone"],
        (Type::TIMESTAMP, Type::TIMESTAMP_ARRAY),
    ),
    (
        &["timestamptz", "timestamp with time zone"],
        (Type::TIMESTAMPTZ, Type::TIMESTAMPTZ_ARRAY),
    ),
    (&["interval"], (Type::INTERVAL, Type::INTERVAL_ARRAY)),
];

/// The types a value is tried against when the SQL does not cast it.
fn candidates() -> impl Iterator<Item = &'static Type> {
    BUILTINS
        .iter()
        .flat_map(|(_, (scalar, array))| [scalar, array])
}

/// Each parameter of `sql` with its type, when every type is known (see the module docs).
pub(crate) fn bind<'a>(sql: &str, params: &[Param<'a>]) -> Option<Vec<(Param<'a>, Type)>> {
    let mut types: Vec<Option<Type>> = vec![None; params.len()];
    for (n, cast) in casts(sql) {
        let slot = types.get_mut(n.checked_sub(1)?)?;
        let ty = pg_type(cast?)?;
        match slot {
            Some(seen) if *seen != ty => return None,
            _ => *slot = Some(ty),
        }
    }
    let mut scratch = BytesMut::new();
    params
        .iter()
        .zip(types)
        .map(|(&param, ty)| match ty {
            Some(ty) => Some((param, ty)),
            None => only_type(param, &mut scratch).map(|ty| (param, ty)),
        })
        .collect()
}

/// The one built-in type `param` accepts, if exactly one.
fn only_type(param: Param<'_>, scratch: &mut BytesMut) -> Option<Type> {
    let mut found = None;
    for ty in candidates() {
        scratch.clear();
        match param.to_sql_checked(ty, scratch) {
            Ok(_) if found.is_none() => found = Some(ty.clone()),
            Ok(_) => return None,
            Err(e) if is_wrong_type(&*e) => {}
            // The type fits but the value does not encode: leave it to the old path's error.
            Err(_) => return None,
        }
    }
    found
}

fn is_wrong_type(e: &(dyn StdError + Sync + Send + 'static)) -> bool {
    e.is::<WrongType>()
}

/// Every `$n::type` in `sql`: the parameter number and the type's text (`None` when it is
/// quoted or schema-qualified, which [`pg_type`] does not know).
fn casts(sql: &str) -> Vec<(usize, Option<&str>)> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(at) = sql[i..].find('$') {
        let start = i + at + 1;
        let digits = bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        i = start + digits;
        if digits == 0 || !sql[i..].starts_with("::") {
            continue;
        }
        let Ok(n) = sql[start..i].parse::<usize>() else {
            continue;
        };
        let rest = &sql[i + 2..];
        let len = type_len(rest);
        let text = &rest[..len];
        let plain = !matches!(rest.as_bytes().get(len), Some(b'.' | b'"')) && len > 0;
        out.push((n, plain.then_some(text)));
        i += 2 + len;
    }
    out
}

/// The length of the type name at the start of `rest`: words (a multi-word built-in such as
/// `double precision` or `timestamp with time zone` as a whole), type modifiers in
/// parentheses, array brackets.
fn type_len(rest: &str) -> usize {
    let word = |s: &str| {
        s.bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count()
    };
    let bytes = rest.as_bytes();
    let mut len = word(rest);
    for long in [
        "double precision",
        "character varying",
        "timestamp with time zone",
        "timestamp without time zone",
        "time with time zone",
        "time without time zone",
    ] {
        let long = long.as_bytes();
        if len > 0
            && long.len() > len
            && bytes.len() >= long.len()
            && long[..len].eq_ignore_ascii_case(&bytes[..len])
            && bytes[..long.len()].eq_ignore_ascii_case(long)
            && word(&rest[long.len()..]) == 0
        {
            len = long.len();
            break;
        }
    }
    // Modifiers, then array brackets.
    if bytes.get(len) == Some(&b'(') {
        if let Some(close) = rest[len..].find(')') {
            len += close + 1;
        }
    }
    while bytes.get(len) == Some(&b'[') {
        match rest[len..].find(']') {
            Some(close) => len += close + 1,
            None => break,
        }
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_builtin_types() {
        assert_eq!(pg_type("integer"), Some(Type::INT4));
        assert_eq!(pg_type("integer[]"), Some(Type::INT4_ARRAY));
        assert_eq!(pg_type("INTEGER ARRAY"), Some(Type::INT4_ARRAY));
        assert_eq!(pg_type("bigint[][]"), Some(Type::INT8_ARRAY));
        assert_eq!(pg_type("varchar(20)[]"), Some(Type::VARCHAR_ARRAY));
        assert_eq!(pg_type("double precision"), Some(Type::FLOAT8));
        assert_eq!(
            pg_type("timestamp(3) with time zone"),
            Some(Type::TIMESTAMPTZ)
        );
        assert_eq!(pg_type("numeric(10, 2)"), Some(Type::NUMERIC));
        assert_eq!(pg_type("uuid[]"), Some(Type::UUID_ARRAY));
        assert_eq!(pg_type("mood"), None);
        assert_eq!(pg_type("public.mood"), None);
        assert_eq!(pg_type("\"Mood\""), None);
        assert_eq!(pg_type("time with time zone"), None);
    }

    #[test]
    fn casts_are_found_in_the_sql() {
        let sql = "SELECT * FROM t WHERE a = ANY($1::integer[]) AND b = $2 AND c = \
                   $3::timestamp with time zone AND d = $4::double precision[] OR e = \
                   $5::public.mood AND f = $6::varchar(9)";
        assert_eq!(
            casts(sql),
            [
                (1, Some("integer[]")),
                (3, Some("timestamp with time zone")),
                (4, Some("double precision[]")),
                (5, None),
                (6, Some("varchar(9)")),
            ]
        );
    }

    #[test]
    fn values_are_typed_by_cast_or_when_unambiguous() {
        let keys = vec![1i32, 2];
        let name = "x".to_string();
        let n = 7i64;
        let none: Option<i16> = None;
        let bound = bind("SELECT $1::integer[], $2, $3", &[&keys, &n, &none])
            .map(|b| b.into_iter().map(|(_, t)| t).collect::<Vec<_>>());
        assert_eq!(bound, Some(vec![Type::INT4_ARRAY, Type::INT8, Type::INT2]));
        // A string could be text, varchar, bpchar, ...: left to the server.
        assert!(bind("SELECT $1", &[&name]).is_none());
        assert!(bind("SELECT $1::text", &[&name]).is_some());
        // A cast to a type not listed here.
        assert!(bind("SELECT $1::mood", &[&name]).is_none());
        // No parameters: nothing to type.
        assert_eq!(bind("SELECT 1", &[]).map(|b| b.len()), Some(0));
    }
}
