//! Several hosts in one URL, and which of them a connection reached.
//!
//! A URL may name several servers, libpq's way: `postgresql://u@db1:5432,db2:5432/app` or
//! `host=db1,db2 port=5432,5432 dbname=app`, with `target_session_attrs=read-write` (the
//! first server that accepts writes: a primary, not a standby) or `any` (the default).
//! tokio-postgres tries them in order for every new connection; the engine passes both
//! through untouched (the TLS options are the only ones it takes out of the URL).
//!
//! After a failover (the primary stopped, a standby promoted), connections to the old primary
//! are closed: a statement in flight on one fails with a disconnect error
//! ([`Error::is_disconnect`](crate::Error::is_disconnect)), the pool discards closed connections
//! (and, with `test_on_checkout`, the default, checks idle ones before handing them out), and
//! the next connection it opens goes to the first host that answers as `target_session_attrs`
//! asks, the promoted standby.

use tokio_postgres::{Client, Config, SimpleQueryMessage};

use crate::telemetry::{Server, configured_server};

/// The server `client` reached: the URL's host when it names one, else the one whose port
/// the server reports (`inet_server_port()`, one query when the connection opens), else the
/// server's own address.
pub(crate) async fn server_of(config: &Config, client: &Client) -> Server {
    let hosts = config.get_hosts().len();
    if hosts <= 1 {
        return configured_server(config, 0);
    }
    let Ok(messages) = client
        .simple_query("SELECT inet_server_addr()::text, inet_server_port()")
        .await
    else {
        return Server::default();
    };
    let Some(row) = messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => Some(row),
        _ => None,
    }) else {
        return Server::default();
    };
    let address = row
        .get(0)
        .map(|a| a.split('/').next().unwrap_or(a).to_string());
    let port = row.get(1).and_then(|p| p.parse::<u16>().ok());
    let matching: Vec<Server> = (0..hosts)
        .map(|i| configured_server(config, i))
        .filter(|s| s.port == port)
        .collect();
    match matching.as_slice() {
        [one] => one.clone(),
        _ => Server {
            address: address.map(Into::into),
            port,
        },
    }
}

#[cfg(test)]
mod tests {
    use tokio_postgres::config::TargetSessionAttrs;

    #[test]
    fn several_hosts_and_target_session_attrs_pass_through() {
        let url = "postgresql://app:secret@db1:5433,db2:5434/shop?target_session_attrs=read-write\
                   &sslmode=disable&connect_timeout=3";
        let (rest, tls) = crate::tls::split_url(url).unwrap();
        assert_eq!(tls.mode, Some(crate::SslMode::Disable));
        let config = crate::url::parse(&rest).unwrap();
        assert_eq!(config.get_hosts().len(), 2);
        assert_eq!(config.get_ports(), &[5433, 5434]);
        assert_eq!(
            config.get_target_session_attrs(),
            TargetSessionAttrs::ReadWrite
        );
        assert_eq!(
            crate::url::display(&config),
            "postgresql://app@db1:5433,db2:5434/shop"
        );

        let kv = "host=db1,db2 port=5433,5434 dbname=shop target_session_attrs=read-write \
                  sslmode=require";
        let (rest, tls) = crate::tls::split_url(kv).unwrap();
        assert_eq!(tls.mode, Some(crate::SslMode::Require));
        let config = crate::url::parse(&rest).unwrap();
        assert_eq!(config.get_hosts().len(), 2);
        assert_eq!(
            config.get_target_session_attrs(),
            TargetSessionAttrs::ReadWrite
        );
    }
}
