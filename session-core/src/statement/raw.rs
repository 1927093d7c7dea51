//! Raw SQL fragments inside typed statements: [`sql_expr`], whose `$1..$k` are renumbered
//! after the statement's own parameters.

use postgres_types::ToSql;

use super::expr::{Expr, raw};
use crate::model::OwnedParam;

/// The bind parameters of a [`sql_expr`] fragment: `()` or a tuple of up to eight values,
/// `$1` being the first.
pub trait SqlParams {
    /// The values, in order (plumbing).
    #[doc(hidden)]
    fn into_params(self) -> Vec<OwnedParam>;
}

impl SqlParams for () {
    fn into_params(self) -> Vec<OwnedParam> {
        Vec::new()
    }
}

macro_rules! sql_params {
    ($($name:ident $index:tt)*) => {
        impl<$($name: ToSql + Sync + Send + 'static),*> SqlParams for ($($name,)*) {
            fn into_params(self) -> Vec<OwnedParam> {
                vec![$(Box::new(self.$index) as OwnedParam),*]
            }
        }
    };
}

sql_params!(A 0);
sql_params!(A 0 B 1);
sql_params!(A 0 B 1 C 2);
sql_params!(A 0 B 1 C 2 D 3);
sql_params!(A 0 B 1 C 2 D 3 E 4);
sql_params!(A 0 B 1 C 2 D 3 E 4 F 5);
sql_params!(A 0 B 1 C 2 D 3 E 4 F 5 G 6);
sql_params!(A 0 B 1 C 2 D 3 E 4 F 5 G 6 H 7);

/// A raw SQL condition with its own bind parameters, for what the typed vocabulary does not
/// say: `$1`, `$2`, ... are `params`' values, renumbered after the statement's parameters
/// when it renders. The fragment is bracketed, so it stays one operand of `AND` / `OR`.
///
/// Each of `$1..$k` must appear, and no other `$n`; a mistake is an
/// [`Error::InvalidRequest`](crate::Error::InvalidRequest) when the statement runs. `$`
/// inside quoted literals and identifiers is left alone; dollar-quoted strings (`$$...$$`)
/// are not supported inside a fragment.
///
/// ```
/// use session_core::{select, sql_expr};
/// # #[derive(Debug, Clone, Default, session_core::Entity)]
/// # struct Author { #[entity(primary_key)] id: i32, name: String }
/// let q = select::<Author>()
///     .filter(Author::C.id.gt(10))
///     .filter(sql_expr("lower(name) = $1", ("ada".to_string(),)));
/// assert!(format!("{q:?}").ends_with(r#"WHERE "author"."id" > $1 AND (lower(name) = $2)"#));
/// ```
pub fn sql_expr(sql: impl Into<String>, params: impl SqlParams) -> Expr {
    let sql = sql.into();
    let params = params.into_params();
    let error = check(&sql, params.len());
    raw(sql, params, error)
}

/// Splits `sql` into text and the `$n` placeholders outside quotes, in order, through `out`.
fn scan(sql: &str, mut out: impl FnMut(Piece<'_>)) {
    let bytes = sql.as_bytes();
    let mut i = 0;
    let mut start = 0;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'\'' || b == b'"' => quote = Some(b),
            None if b == b'$' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let end = (i + 1..bytes.len())
                    .find(|&j| !bytes[j].is_ascii_digit())
                    .unwrap_or(bytes.len());
                out(Piece::Text(&sql[start..i]));
                out(Piece::Param(sql[i + 1..end].parse().unwrap_or(usize::MAX)));
                start = end;
                i = end;
                continue;
            }
            None => {}
        }
        i += 1;
    }
    out(Piece::Text(&sql[start..]));
}

/// A part of a fragment: text, or the number of a `$n`.
enum Piece<'a> {
    Text(&'a str),
    Param(usize),
}

/// What is wrong with the fragment's placeholders, if anything.
fn check(sql: &str, count: usize) -> Option<String> {
    let mut seen = vec![false; count];
    let mut wrong = None;
    scan(sql, |piece| {
        if let Piece::Param(n) = piece {
            match n.checked_sub(1).and_then(|i| seen.get_mut(i)) {
                Some(slot) => *slot = true,
                None => wrong = wrong.or(Some(n)),
            }
        }
    });
    if let Some(n) = wrong {
        return Some(format!(
            "sql_expr({sql:?}) refers to ${n}, but it has {count} parameter(s): give one value \
             per $1..${count}"
        ));
    }
    seen.iter().position(|s| !s).map(|i| {
        format!(
            "sql_expr({sql:?}) has {count} parameter(s) but never uses ${}: every value needs \
             its $n",
            i + 1
        )
    })
}

/// `sql` with each `$n` outside quotes made `$(n + base)`.
pub(crate) fn renumber(sql: &str, base: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    scan(sql, |piece| match piece {
        Piece::Text(text) => out.push_str(text),
        Piece::Param(n) => {
            out.push('$');
            out.push_str(&(n + base).to_string());
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::{check, renumber};

    #[test]
    fn renumbers_outside_quotes_only() {
        assert_eq!(
            renumber("a = $1 AND b = '$1' AND \"$2\" = $2", 3),
            "a = $4 AND b = '$1' AND \"$2\" = $5"
        );
        assert_eq!(renumber("$10 + $1", 1), "$11 + $2");
        assert_eq!(renumber("cost > $", 1), "cost > $");
    }

    #[test]
    fn reports_missing_and_unknown_placeholders() {
        assert_eq!(check("x = $1", 1), None);
        assert!(check("x = $2", 1).unwrap().contains("refers to $2"));
        assert!(check("x = $0", 1).unwrap().contains("refers to $0"));
        assert!(check("x = 1", 1).unwrap().contains("never uses $1"));
    }
}
