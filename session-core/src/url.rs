//! Database URLs: parsed by tokio-postgres's own [`Config`], shown without the password.

use std::fmt::Write as _;
use std::str::FromStr;

use tokio_postgres::Config;
use tokio_postgres::config::Host;

use crate::error::{Error, Result};

/// Parses a `postgresql://` / `postgres://` URL (or a libpq `key=value` string) into a
/// tokio-postgres [`Config`].
///
/// SQLAlchemy-style driver suffixes (`postgresql+asyncpg://`) and other schemes are refused with
/// an error that names the part to change.
pub(crate) fn parse(url: &str) -> Result<Config> {
    let trimmed = url.trim();
    if trimmed.is_empty() {
        return Err(Error::Config(
            "the database URL is empty; expected postgresql://user:password@host:port/database"
                .into(),
        ));
    }
    if let Some((scheme, _)) = trimmed.split_once("://") {
        if let Some((base, driver)) = scheme.split_once('+') {
            return Err(Error::Config(format!(
                "the URL scheme `{scheme}` names a Python driver (`+{driver}`); \
                 this engine always uses tokio-postgres, write `{base}://...`"
            )));
        }
        if scheme != "postgresql" && scheme != "postgres" {
            return Err(Error::Config(format!(
                "unsupported URL scheme `{scheme}`; expected `postgresql://` or `postgres://`"
            )));
        }
    }
    Config::from_str(trimmed).map_err(|e| {
        let cause = std::error::Error::source(&e)
            .map(|c| c.to_string())
            .unwrap_or_else(|| e.to_string());
        Error::Config(format!(
            "malformed database URL `{}`: {cause}",
            redact_raw(trimmed)
        ))
    })
}

/// The URL in SQLAlchemy's `repr` shape, without the password:
/// `postgresql://user@host:port/database`.
pub(crate) fn display(config: &Config) -> String {
    let mut out = String::from("postgresql://");
    if let Some(user) = config.get_user() {
        out.push_str(user);
        out.push('@');
    }
    let ports = config.get_ports();
    let mut sockets = Vec::new();
    let mut first = true;
    for (i, host) in config.get_hosts().iter().enumerate() {
        match host {
            Host::Tcp(name) => {
                if !first {
                    out.push(',');
                }
                first = false;
                if name.contains(':') {
                    let _ = write!(out, "[{name}]");
                } else {
                    out.push_str(name);
                }
                if let Some(port) = ports.get(i).or(ports.first()) {
                    let _ = write!(out, ":{port}");
                }
            }
            Host::Unix(path) => sockets.push(path.display().to_string()),
        }
    }
    out.push('/');
    if let Some(db) = config.get_dbname() {
        out.push_str(db);
    }
    if !sockets.is_empty() {
        let _ = write!(out, "?host={}", sockets.join(","));
    }
    out
}

/// Masks the password of a URL that could not be parsed, for error messages.
fn redact_raw(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // key=value form: mask `password=...`
        return url
            .split_whitespace()
            .map(|kv| {
                if kv.starts_with("password=") {
                    "password=***"
                } else {
                    kv
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{hosts}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_hides_password() {
        let c = parse("postgresql://scott:tiger@db.example:5433/test").unwrap();
        assert_eq!(display(&c), "postgresql://scott@db.example:5433/test");
    }

    #[test]
    fn redacts_unparsable_urls() {
        assert_eq!(
            redact_raw("postgresql://scott:tiger@host:notaport/db"),
            "postgresql://scott:***@host:notaport/db"
        );
        assert_eq!(redact_raw("host=x password=secret"), "host=x password=***");
    }

    #[test]
    fn refuses_driver_suffix() {
        let e = parse("postgresql+asyncpg://u@h/db")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`+asyncpg`"), "{e}");
        assert!(e.contains("postgresql://"), "{e}");
    }
}
