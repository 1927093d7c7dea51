//! A TCP relay between an engine and PostgreSQL that counts round trips as the network sees
//! them, independently of the library under test.
//!
//! A round trip starts each time the client sends after the server has answered (or sends
//! for the first time on a connection): requests written back to back before any answer came
//! are one flight, however many statements they carry. Run the test on a current-thread
//! runtime (plain `#[tokio::test]`), so that the relay reads what the client wrote in the order
//! it was written.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A running relay; see the [module docs](self).
pub struct RoundTrips {
    url: String,
    count: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl RoundTrips {
    /// Starts a relay in front of the server of `url` (a `postgresql://user@host:port/db`
    /// URL); [`RoundTrips::url`] is the same URL through the relay.
    ///
    /// # Panics
    /// When `url` has no `host:port` or no local port can be bound.
    pub async fn start(url: &str) -> RoundTrips {
        RoundTrips::start_with_latency(url, Duration::ZERO).await
    }

    /// [`RoundTrips::start`], with every answer of the server held for `latency` before the
    /// client gets it (a far server): what the client sends within that time after an answer
    /// went out is in one round trip for certain, not by a race with the answer.
    ///
    /// # Panics
    /// As [`RoundTrips::start`].
    pub async fn start_with_latency(url: &str, latency: Duration) -> RoundTrips {
        let (scheme, rest) = url.split_once("://").expect("a postgresql:// URL");
        let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        let (user, host_port) = match authority.rsplit_once('@') {
            Some((user, hp)) => (format!("{user}@"), hp.to_string()),
            None => (String::new(), authority.to_string()),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let port = listener.local_addr().expect("relay address").port();
        let count = Arc::new(AtomicU64::new(0));
        let counter = count.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = host_port.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        relay(client, server, counter, latency).await;
                    }
                });
            }
        });
        RoundTrips {
            url: format!("{scheme}://{user}127.0.0.1:{port}{tail}"),
            count,
            task,
        }
    }

    /// The server's URL through the relay.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Round trips since the last call (or the start), over every connection.
    pub fn take(&self) -> u64 {
        self.count.swap(0, Ordering::SeqCst)
    }
}

impl Drop for RoundTrips {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(client: TcpStream, server: TcpStream, count: Arc<AtomicU64>, latency: Duration) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // True when the server has spoken since the client last sent: the next send is a new trip.
    let answered = Arc::new(AtomicBool::new(true));
    let heard = answered.clone();
    let up = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if answered.swap(false, Ordering::SeqCst) {
                count.fetch_add(1, Ordering::SeqCst);
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            heard.store(true, Ordering::SeqCst);
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    futures::join!(up, down);
}
