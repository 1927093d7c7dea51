//! TLS for the engine's connections, with libpq's `sslmode` semantics over rustls.
//!
//! | `sslmode` | encrypted | server certificate checked |
//! |---|---|---|
//! | `disable` | never | - |
//! | `allow` | only when the server refuses a plaintext connection | no |
//! | `prefer` (the default) | when the server offers TLS; plaintext otherwise, with a warning when `prefer` was asked for | no |
//! | `require` | always | no; as `verify-ca` when `sslrootcert` is given (libpq's rule) |
//! | `verify-ca` | always | chain to `sslrootcert` |
//! | `verify-full` | always | chain to `sslrootcert`, and the host name |
//!
//! `sslrootcert` is a PEM file or `system` (the platform's trusted roots); without it the
//! verifying modes read `~/.postgresql/root.crt`, as libpq does. `sslcert` / `sslkey` are the
//! client certificate and key (PEM) for `cert` authentication; without them
//! `~/.postgresql/postgresql.crt` / `.key` are used when both exist. The options come from the
//! URL (`?sslmode=verify-full&sslrootcert=/etc/ca.pem`, or `sslmode=... ` in a key=value
//! string) or from [`EngineBuilder`](crate::EngineBuilder)'s `ssl_*` methods, which win.
//!
//! The connections are rustls over the `ring` provider: no OpenSSL, no C toolchain. Without the
//! `tls` cargo feature, `require` and the verifying modes are a configuration error and
//! `prefer` / `allow` connect in plaintext.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_postgres::config::SslMode as DriverMode;
use tokio_postgres::{CancelToken, Client, Config, NoTls};

use crate::error::{Error, Result};

/// How a connection uses TLS (libpq's `sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SslMode {
    /// Plaintext only.
    Disable,
    /// Plaintext first; TLS only when the server refuses plaintext.
    Allow,
    /// TLS when the server offers it, else plaintext (libpq's default).
    #[default]
    Prefer,
    /// TLS always; the server's certificate is not checked (unless a root certificate is
    /// given, then as [`SslMode::VerifyCa`]).
    Require,
    /// TLS always; the server's certificate must chain to a trusted root.
    VerifyCa,
    /// TLS always; the certificate must chain to a trusted root and name the host.
    VerifyFull,
}

impl SslMode {
    /// The libpq spelling: `disable`, `allow`, `prefer`, `require`, `verify-ca`, `verify-full`.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn parse(value: &str) -> Result<SslMode> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(Error::Config(format!(
                    "invalid sslmode value: \"{other}\"; expected disable, allow, prefer, \
                     require, verify-ca or verify-full"
                )));
            }
        })
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The trusted roots for the server's certificate (`sslrootcert`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RootCert {
    File(PathBuf),
    System,
}

/// The TLS options of an engine, before their files are read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsSettings {
    /// `None`: not asked for (libpq's default, `prefer`).
    pub(crate) mode: Option<SslMode>,
    pub(crate) root_cert: Option<RootCert>,
    pub(crate) cert: Option<PathBuf>,
    pub(crate) key: Option<PathBuf>,
}

const TLS_KEYS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

impl TlsSettings {
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "sslmode" => self.mode = Some(SslMode::parse(value)?),
            "sslrootcert" => {
                self.root_cert = Some(if value == "system" {
                    RootCert::System
                } else {
                    RootCert::File(value.into())
                });
            }
            "sslcert" => self.cert = Some(value.into()),
            "sslkey" => self.key = Some(value.into()),
            _ => {}
        }
        Ok(())
    }

    /// The mode connections use.
    pub(crate) fn effective_mode(&self) -> SslMode {
        match (self.mode.unwrap_or_default(), &self.root_cert) {
            (SslMode::Require, Some(_)) => SslMode::VerifyCa,
            (mode, _) => mode,
        }
    }
}

/// Takes the TLS options out of `url` (tokio-postgres refuses `verify-full`, `sslrootcert`,
/// ...), returning the rest of the URL and the options.
///
/// # Errors
/// [`Error::Config`] for an unknown `sslmode`.
pub(crate) fn split_url(url: &str) -> Result<(String, TlsSettings)> {
    let mut settings = TlsSettings::default();
    let trimmed = url.trim();
    if trimmed.contains("://") {
        let Some((base, query)) = trimmed.split_once('?') else {
            return Ok((trimmed.to_string(), settings));
        };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if TLS_KEYS.contains(&key) {
                settings.set(key, &percent_decode(value))?;
            } else {
                kept.push(pair);
            }
        }
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rest, settings));
    }
    let mut kept = Vec::new();
    for (key, value, raw) in key_values(trimmed) {
        if TLS_KEYS.contains(&key.as_str()) {
            settings.set(&key, &value)?;
        } else {
            kept.push(raw);
        }
    }
    Ok((kept.join(" "), settings))
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
                continue;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `key=value` pairs of a libpq connection string, with `'quoted values'`: (key, value, the
/// pair as written).
fn key_values(s: &str) -> Vec<(String, String, &str)> {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let start = rest;
        let eq = rest.find('=').unwrap_or(rest.len());
        let key = rest[..eq].trim().to_string();
        rest = rest[eq.min(rest.len())..]
            .trim_start_matches('=')
            .trim_start();
        let mut value = String::new();
        if let Some(quoted) = rest.strip_prefix('\'') {
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            value.push(next);
                        }
                    }
                    '\'' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            rest = &quoted[end.min(quoted.len())..];
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            value = rest[..end].to_string();
            rest = &rest[end..];
        }
        let raw = &start[..start.len() - rest.len()];
        out.push((key, value, raw.trim()));
        rest = rest.trim_start();
    }
    out
}

/// Opens connections with the engine's TLS options, and sends cancel requests the same way.
#[derive(Clone)]
pub(crate) struct Connector {
    mode: SslMode,
    asked: bool,
    #[cfg(feature = "tls")]
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    warned: Arc<AtomicBool>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("mode", &self.mode)
            .finish()
    }
}

/// A connection just opened, and whether it is encrypted.
pub(crate) struct Opened {
    pub(crate) client: Client,
    pub(crate) encrypted: bool,
}

impl Connector {
    /// Reads the certificate files the options name.
    ///
    /// # Errors
    /// [`Error::Config`] naming the file or option that is wrong.
    pub(crate) fn new(settings: &TlsSettings) -> Result<Connector> {
        let mode = settings.effective_mode();
        #[cfg(feature = "tls")]
        let tls = match mode {
            SslMode::Disable => None,
            _ => Some(rustls_config::make(mode, settings)?),
        };
        #[cfg(not(feature = "tls"))]
        if matches!(
            mode,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        ) {
            return Err(Error::Config(format!(
                "sslmode={mode} needs TLS, and session-core was built without its `tls` \
                 feature; enable it (it is on by default)"
            )));
        }
        Ok(Connector {
            mode,
            asked: settings.mode.is_some(),
            #[cfg(feature = "tls")]
            tls,
            warned: Arc::default(),
        })
    }

    /// The mode connections use.
    pub(crate) fn mode(&self) -> SslMode {
        self.mode
    }

    /// Whether the mode was asked for (else it is libpq's default, `prefer`).
    pub(crate) fn asked(&self) -> bool {
        self.asked
    }

    /// Opens one connection and spawns its driver task.
    pub(crate) async fn connect(
        &self,
        config: &Config,
    ) -> std::result::Result<Opened, tokio_postgres::Error> {
        let mut config = config.clone();
        match self.mode {
            SslMode::Disable => plain(&config).await,
            SslMode::Allow => match plain(config.ssl_mode(DriverMode::Disable)).await {
                Ok(opened) => Ok(opened),
                Err(plain_error) => {
                    config.ssl_mode(DriverMode::Require);
                    self.encrypted(&config).await.map_err(|_| plain_error)
                }
            },
            SslMode::Prefer => {
                config.ssl_mode(DriverMode::Prefer);
                let opened = self.encrypted(&config).await?;
                if !opened.encrypted {
                    self.warn_plaintext();
                }
                Ok(opened)
            }
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                config.ssl_mode(DriverMode::Require);
                self.encrypted(&config).await
            }
        }
    }

    fn warn_plaintext(&self) {
        if self.asked {
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    target: "session_core::tls",
                    "sslmode=prefer: the server does not offer TLS, so connections are not \
                     encrypted; use sslmode=require (or verify-full) to refuse plaintext"
                );
            }
        } else {
            tracing::debug!(
                target: "session_core::tls",
                "the server does not offer TLS; connected in plaintext (sslmode not set: prefer)"
            );
        }
    }

    #[cfg(feature = "tls")]
    async fn encrypted(
        &self,
        config: &Config,
    ) -> std::result::Result<Opened, tokio_postgres::Error> {
        let Some(tls) = &self.tls else {
            return plain(config).await;
        };
        let flag = Arc::new(AtomicBool::new(false));
        let make = recording::Recording {
            inner: tls.clone(),
            flag: flag.clone(),
        };
        let (client, connection) = config.connect(make).await?;
        spawn_driver(connection);
        Ok(Opened {
            client,
            encrypted: flag.load(Ordering::Acquire),
        })
    }

    #[cfg(not(feature = "tls"))]
    async fn encrypted(
        &self,
        config: &Config,
    ) -> std::result::Result<Opened, tokio_postgres::Error> {
        let mut config = config.clone();
        plain(config.ssl_mode(DriverMode::Disable)).await
    }

    /// Sends PostgreSQL's cancel request for `token`'s connection, encrypted when the mode
    /// may encrypt.
    pub(crate) async fn cancel(&self, token: CancelToken) {
        #[cfg(feature = "tls")]
        // `tls` is `None` exactly under `disable`.
        if let Some(tls) = &self.tls {
            let _ = token.cancel_query(tls.clone()).await;
            return;
        }
        let _ = token.cancel_query(NoTls).await;
    }
}

async fn plain(config: &Config) -> std::result::Result<Opened, tokio_postgres::Error> {
    let mut config = config.clone();
    let (client, connection) = config.ssl_mode(DriverMode::Disable).connect(NoTls).await?;
    spawn_driver(connection);
    Ok(Opened {
        client,
        encrypted: false,
    })
}

fn spawn_driver<F>(connection: F)
where
    F: std::future::Future<Output = std::result::Result<(), tokio_postgres::Error>>
        + Send
        + 'static,
{
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(target: "session_core::pool", %error, "connection closed with an error");
        }
    });
}

/// A `MakeTlsConnect` that notes whether the handshake happened (tokio-postgres does not say
/// whether `prefer` ended up encrypted).
#[cfg(feature = "tls")]
mod recording {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};

    pub(super) struct Recording<M> {
        pub(super) inner: M,
        pub(super) flag: Arc<AtomicBool>,
    }

    pub(super) struct RecordingConnect<T> {
        inner: T,
        flag: Arc<AtomicBool>,
    }

    impl<S, M: MakeTlsConnect<S>> MakeTlsConnect<S> for Recording<M>
    where
        <M::TlsConnect as TlsConnect<S>>::Future: Send + 'static,
    {
        type Stream = M::Stream;
        type TlsConnect = RecordingConnect<M::TlsConnect>;
        type Error = M::Error;

        fn make_tls_connect(&mut self, domain: &str) -> Result<Self::TlsConnect, Self::Error> {
            Ok(RecordingConnect {
                inner: self.inner.make_tls_connect(domain)?,
                flag: self.flag.clone(),
            })
        }
    }

    type Handshake<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

    impl<S, T> TlsConnect<S> for RecordingConnect<T>
    where
        T: TlsConnect<S>,
        T::Future: Send + 'static,
    {
        type Stream = T::Stream;
        type Error = T::Error;
        type Future = Handshake<T::Stream, T::Error>;

        fn connect(self, stream: S) -> Self::Future {
            let handshake = self.inner.connect(stream);
            let flag = self.flag;
            Box::pin(async move {
                let stream = handshake.await?;
                flag.store(true, Ordering::Release);
                Ok(stream)
            })
        }
    }
}

/// The rustls client configuration of each mode.
#[cfg(feature = "tls")]
mod rustls_config {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
    use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
    use rustls::{Error as TlsError, SignatureScheme};
    use tokio_postgres_rustls::MakeRustlsConnect;

    use super::{RootCert, SslMode, TlsSettings, home_file};
    use crate::error::{Error, Result};

    pub(super) fn make(mode: SslMode, settings: &TlsSettings) -> Result<MakeRustlsConnect> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(format!("TLS: {e}")))?;
        let builder = match mode {
            SslMode::VerifyFull | SslMode::VerifyCa => {
                let roots = Arc::new(roots(mode, settings.root_cert.as_ref())?);
                let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|e| Error::Config(format!("sslrootcert: {e}")))?;
                let verifier: Arc<dyn ServerCertVerifier> = if mode == SslMode::VerifyCa {
                    Arc::new(ChainOnly(verifier))
                } else {
                    verifier
                };
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(verifier)
            }
            _ => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unverified(provider))),
        };
        let config = match client_identity(settings)? {
            Some((certs, key)) => builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| Error::Config(format!("sslcert / sslkey: {e}")))?,
            None => builder.with_no_client_auth(),
        };
        Ok(MakeRustlsConnect::new(config))
    }

    fn roots(mode: SslMode, root: Option<&RootCert>) -> Result<RootCertStore> {
        let mut store = RootCertStore::empty();
        let path: PathBuf = match root {
            Some(RootCert::System) => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = store.add_parsable_certificates(found.certs);
                if added == 0 {
                    return Err(Error::Config(format!(
                        "sslrootcert=system: no trusted root certificates found on this system \
                         ({} errors: {}); install the CA certificates (Debian: \
                         ca-certificates) or name a file",
                        found.errors.len(),
                        found
                            .errors
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; ")
                    )));
                }
                return Ok(store);
            }
            Some(RootCert::File(path)) => path.clone(),
            None => match home_file("root.crt") {
                Some(path) if path.is_file() => path,
                other => {
                    return Err(Error::Config(format!(
                        "sslmode={mode}: root certificate file \"{}\" does not exist. Either \
                         provide the file (sslrootcert=<file>), use the system's trusted roots \
                         with sslrootcert=system, or change sslmode to disable server \
                         certificate verification.",
                        other.map_or_else(
                            || "~/.postgresql/root.crt".into(),
                            |p| p.display().to_string()
                        )
                    )));
                }
            },
        };
        let certs = read_certs(&path, "sslrootcert")?;
        let (added, ignored) = store.add_parsable_certificates(certs);
        if added == 0 {
            return Err(Error::Config(format!(
                "sslrootcert \"{}\": no usable certificate ({ignored} unparsable)",
                path.display()
            )));
        }
        Ok(store)
    }

    fn read_certs(path: &Path, option: &str) -> Result<Vec<CertificateDer<'static>>> {
        let certs: std::result::Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
            .map_err(|e| Error::Config(format!("{option} \"{}\": {e}", path.display())))?
            .collect();
        let certs =
            certs.map_err(|e| Error::Config(format!("{option} \"{}\": {e}", path.display())))?;
        if certs.is_empty() {
            return Err(Error::Config(format!(
                "{option} \"{}\" holds no PEM certificate",
                path.display()
            )));
        }
        Ok(certs)
    }

    type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

    fn client_identity(settings: &TlsSettings) -> Result<Option<Identity>> {
        let (cert, key) = match (&settings.cert, &settings.key) {
            (Some(cert), Some(key)) => (cert.clone(), key.clone()),
            (Some(_), None) | (None, Some(_)) => {
                return Err(Error::Config(
                    "a client certificate needs both sslcert and sslkey".into(),
                ));
            }
            (None, None) => match (home_file("postgresql.crt"), home_file("postgresql.key")) {
                (Some(c), Some(k)) if c.is_file() && k.is_file() => (c, k),
                _ => return Ok(None),
            },
        };
        let certs = read_certs(&cert, "sslcert")?;
        let key = PrivateKeyDer::from_pem_file(&key)
            .map_err(|e| Error::Config(format!("sslkey \"{}\": {e}", key.display())))?;
        Ok(Some((certs, key)))
    }

    /// `require`: encrypted, the certificate not checked (libpq's behaviour); the handshake's
    /// signatures still are.
    #[derive(Debug)]
    struct Unverified(Arc<CryptoProvider>);

    impl ServerCertVerifier for Unverified {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> std::result::Result<ServerCertVerified, TlsError> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> std::result::Result<HandshakeSignatureValid, TlsError> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> std::result::Result<HandshakeSignatureValid, TlsError> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    /// `verify-ca`: the chain must reach a trusted root; the host name is not compared.
    #[derive(Debug)]
    struct ChainOnly(Arc<WebPkiServerVerifier>);

    impl ServerCertVerifier for ChainOnly {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            ocsp_response: &[u8],
            now: UnixTime,
        ) -> std::result::Result<ServerCertVerified, TlsError> {
            // webpki checks the chain before the name: a name error means the chain is good.
            match self.0.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ) {
                Err(TlsError::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                )) => Ok(ServerCertVerified::assertion()),
                other => other,
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> std::result::Result<HandshakeSignatureValid, TlsError> {
            self.0.verify_tls12_signature(message, cert, dss)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> std::result::Result<HandshakeSignatureValid, TlsError> {
            self.0.verify_tls13_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.supported_verify_schemes()
        }
    }
}

/// `~/.postgresql/<name>`, where libpq looks for default certificates.
fn home_file(name: &str) -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| Path::new(&home).join(".postgresql").join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_options_leave_the_url() {
        let (rest, s) = split_url(
            "postgresql://u@h/db?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgresql://u@h/db?application_name=x");
        assert_eq!(s.mode, Some(SslMode::VerifyFull));
        assert_eq!(s.root_cert, Some(RootCert::File("/etc/ca.pem".into())));
        let (rest, s) =
            split_url("host=h sslmode=require sslrootcert='/a b/ca.pem' dbname=d").unwrap();
        assert_eq!(rest, "host=h dbname=d");
        assert_eq!(
            s.effective_mode(),
            SslMode::VerifyCa,
            "libpq: a root cert means verify-ca"
        );
        assert_eq!(s.root_cert, Some(RootCert::File("/a b/ca.pem".into())));
        // libpq's URIs percent-decode only: a `+` in a path stays a `+`.
        let (_, s) = split_url("postgresql://h/db?sslrootcert=/etc/c%2B+d.pem").unwrap();
        assert_eq!(s.root_cert, Some(RootCert::File("/etc/c++d.pem".into())));
        let (_, s) = split_url("postgresql://h/db?sslrootcert=system").unwrap();
        assert_eq!(s.root_cert, Some(RootCert::System));
        let e = split_url("postgresql://h/db?sslmode=verify_full").unwrap_err();
        assert!(e.to_string().contains("verify-full"), "{e}");
    }
}
