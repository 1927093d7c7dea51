//! TLS against a throwaway cluster started with `ssl = on`, a CA and a server certificate for
//! `localhost` made at test time (rcgen), and a `pg_hba.conf` that refuses plaintext to every
//! user but the harness's `postgres` and asks `certuser` for a client certificate.
//!
//! Each libpq `sslmode` is checked the way a user would: where the connection landed
//! (`pg_stat_ssl`), and for refusals, the error's text.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use session_core::{Engine, Error, SslMode};
use session_tests::support::{LogCapture, fresh_database};
use session_tools::pg::{Cluster, ClusterOptions};

/// The TLS cluster and the files a client needs.
struct Tls {
    cluster: Cluster,
    dir: PathBuf,
}

impl Tls {
    fn port(&self) -> u16 {
        self.cluster.port().expect("an owned cluster")
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// `postgresql://user@host:port/postgres?query`.
    fn url(&self, user: &str, host: &str, query: &str) -> String {
        format!(
            "postgresql://{user}@{host}:{}/postgres?connect_timeout=10{query}",
            self.port()
        )
    }
}

struct Certs {
    ca: String,
    other_ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    (params.self_signed(&key).unwrap(), key)
}

fn make_certs() -> Certs {
    let (ca_cert, ca_key) = ca("session-tests CA");
    let (other, _) = ca("some other CA");
    let server_key = KeyPair::generate().unwrap();
    let mut server = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server.signed_by(&server_key, &ca_cert, &ca_key).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
    client
        .distinguished_name
        .push(DnType::CommonName, "certuser");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client.signed_by(&client_key, &ca_cert, &ca_key).unwrap();
    Certs {
        ca: ca_cert.pem(),
        other_ca: other.pem(),
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
        client_cert: client_cert.pem(),
        client_key: client_key.serialize_pem(),
    }
}

const HBA: &str = "\
local all all trust
hostssl all certuser 127.0.0.1/32 cert
hostssl all certuser ::1/128 cert
host all postgres 127.0.0.1/32 trust
hostssl all all 127.0.0.1/32 trust
hostssl all all ::1/128 trust
";

fn tls() -> &'static Tls {
    static TLS: OnceLock<Tls> = OnceLock::new();
    TLS.get_or_init(|| {
        let certs = make_certs();
        let dir = std::env::temp_dir().join(format!("session-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, pem) in [
            ("ca.pem", &certs.ca),
            ("other-ca.pem", &certs.other_ca),
            ("client.pem", &certs.client_cert),
            ("client.key", &certs.client_key),
        ] {
            std::fs::write(dir.join(name), pem).unwrap();
        }
        let setting = |k: &str, v: &str| (k.to_string(), v.to_string());
        let cluster = Cluster::start_owned_with(ClusterOptions {
            settings: vec![
                setting("ssl", "on"),
                setting("ssl_cert_file", "server.crt"),
                setting("ssl_key_file", "server.key"),
                setting("ssl_ca_file", "root.crt"),
            ],
            files: vec![
                ("server.crt".into(), certs.server_cert.into_bytes()),
                ("server.key".into(), certs.server_key.into_bytes()),
                ("root.crt".into(), certs.ca.into_bytes()),
            ],
            hba: Some(HBA.into()),
        })
        .unwrap_or_else(|e| panic!("{e}"));
        Tls { cluster, dir }
    })
}

async fn roles() -> &'static Tls {
    let t = tokio::task::spawn_blocking(tls).await.unwrap();
    static ROLES: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    ROLES
        .get_or_init(|| async {
            let admin = Engine::builder(t.url("postgres", "127.0.0.1", "&sslmode=disable"))
                .build()
                .unwrap();
            let mut conn = admin.connect().await.unwrap();
            conn.batch_execute("CREATE ROLE app LOGIN; CREATE ROLE certuser LOGIN")
                .await
                .unwrap();
            conn.close().await;
            admin.dispose().await;
        })
        .await;
    t
}

/// Whether the server sees this connection as TLS, and the engine says the same.
async fn encrypted(engine: &Engine) -> session_core::Result<bool> {
    let mut conn = engine.connect().await?;
    let ssl: bool = conn
        .scalar(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await?;
    assert_eq!(
        ssl,
        conn.is_encrypted(),
        "the engine knows what the server sees"
    );
    conn.close().await;
    Ok(ssl)
}

fn engine(url: &str) -> Engine {
    Engine::builder(url)
        .checkout_timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn message(e: &Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(" / ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn require_encrypts_and_the_engine_says_so() {
    let t = roles().await;
    let e = engine(&t.url("app", "127.0.0.1", "&sslmode=require"));
    assert!(encrypted(&e).await.unwrap());
    let conn = e.connect().await.unwrap();
    assert!(conn.is_encrypted());
    let status = e.status();
    assert_eq!((status.connections, status.encrypted), (1, 1), "{status}");
    let shown = format!("{e:?}");
    assert!(
        shown.contains("sslmode=require") && shown.contains("encrypted 1/1"),
        "{shown}"
    );
    assert_eq!(e.ssl_mode(), SslMode::Require);
    conn.close().await;
}

#[tokio::test]
async fn verify_ca_accepts_the_right_ca_and_refuses_another() {
    let t = roles().await;
    // The certificate names `localhost`; verify-ca does not compare the host name.
    let right = format!("&sslmode=verify-ca&sslrootcert={}", t.file("ca.pem"));
    assert!(
        encrypted(&engine(&t.url("app", "127.0.0.1", &right)))
            .await
            .unwrap()
    );

    let wrong = format!("&sslmode=verify-ca&sslrootcert={}", t.file("other-ca.pem"));
    let err = encrypted(&engine(&t.url("app", "127.0.0.1", &wrong)))
        .await
        .unwrap_err();
    let text = message(&err);
    assert!(matches!(err, Error::Connect { .. }), "{text}");
    assert!(
        text.contains("invalid peer certificate") && text.contains("UnknownIssuer"),
        "{text}"
    );

    // libpq's rule: `require` with a root certificate verifies the chain too.
    let require_with_root = format!("&sslmode=require&sslrootcert={}", t.file("other-ca.pem"));
    let e = engine(&t.url("app", "127.0.0.1", &require_with_root));
    assert_eq!(e.ssl_mode(), SslMode::VerifyCa);
    assert!(encrypted(&e).await.is_err());
}

#[tokio::test]
async fn verify_full_checks_the_host_name_and_names_the_mismatch() {
    let t = roles().await;
    let query = format!("&sslmode=verify-full&sslrootcert={}", t.file("ca.pem"));
    assert!(
        encrypted(&engine(&t.url("app", "localhost", &query)))
            .await
            .unwrap()
    );

    // The same server by its address: the certificate is only for `localhost`.
    let err = encrypted(&engine(&t.url("app", "127.0.0.1", &query)))
        .await
        .unwrap_err();
    let text = message(&err);
    assert!(
        text.contains("not valid for name") && text.contains("127.0.0.1"),
        "{text}"
    );
    assert!(
        text.contains("localhost"),
        "the error says what the certificate is for: {text}"
    );

    // The builder's options win over the URL's.
    let by_builder = Engine::builder(t.url("app", "localhost", "&sslmode=disable"))
        .ssl_mode(SslMode::VerifyFull)
        .ssl_root_cert(t.file("ca.pem"))
        .build()
        .unwrap();
    assert!(encrypted(&by_builder).await.unwrap());

    // The platform's roots do not know the test CA.
    let system = match Engine::builder(t.url("app", "localhost", "&sslmode=verify-full"))
        .ssl_system_roots()
        .build()
    {
        Ok(e) => message(&encrypted(&e).await.unwrap_err()),
        Err(e) => message(&e),
    };
    assert!(
        system.contains("UnknownIssuer") || system.contains("no trusted root"),
        "{system}"
    );
}

#[tokio::test]
async fn client_certificates_authenticate_cert_users() {
    let t = roles().await;
    let root = format!("&sslmode=verify-full&sslrootcert={}", t.file("ca.pem"));
    let with_cert = format!(
        "{root}&sslcert={}&sslkey={}",
        t.file("client.pem"),
        t.file("client.key")
    );
    let e = engine(&t.url("certuser", "localhost", &with_cert));
    let mut conn = e.connect().await.unwrap();
    let who: String = conn.scalar("SELECT current_user::text", &[]).await.unwrap();
    assert_eq!(who, "certuser");
    let dn: Option<String> = conn
        .scalar(
            "SELECT client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(dn.as_deref(), Some("/CN=certuser"));
    conn.close().await;

    let err = encrypted(&engine(&t.url("certuser", "localhost", &root)))
        .await
        .unwrap_err();
    let text = message(&err);
    assert!(text.contains("certificate"), "{text}");

    let half = Engine::builder(t.url("certuser", "localhost", &format!("{root}&sslcert=/x.pem")))
        .build()
        .unwrap_err();
    assert!(message(&half).contains("sslcert and sslkey"), "{half}");
    let missing = Engine::builder(t.url(
        "certuser",
        "localhost",
        &format!("{root}&sslcert=/nonexistent.pem&sslkey=/nonexistent.key"),
    ))
    .build()
    .unwrap_err();
    assert!(message(&missing).contains("/nonexistent.pem"), "{missing}");
}

#[tokio::test]
async fn prefer_and_allow_follow_the_server_and_disable_never_encrypts() {
    let t = roles().await;
    assert!(
        encrypted(&engine(&t.url("app", "127.0.0.1", "&sslmode=prefer")))
            .await
            .unwrap()
    );
    assert!(
        encrypted(&engine(&t.url("app", "127.0.0.1", "")))
            .await
            .unwrap(),
        "the default is prefer"
    );
    // The server refuses plaintext to `app`: allow tries it, then TLS.
    assert!(
        encrypted(&engine(&t.url("app", "127.0.0.1", "&sslmode=allow")))
            .await
            .unwrap()
    );
    let err = encrypted(&engine(&t.url("app", "127.0.0.1", "&sslmode=disable")))
        .await
        .unwrap_err();
    assert!(message(&err).contains("no encryption"), "{}", message(&err));
    // Plaintext where the server allows it.
    let admin = engine(&t.url("postgres", "127.0.0.1", "&sslmode=allow"));
    assert!(!encrypted(&admin).await.unwrap());
}

#[test]
fn prefer_against_a_server_without_tls_warns_and_require_refuses() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let log = LogCapture::default();
    let _guard = log.install("session_core::tls=warn");
    rt.block_on(async {
        let url = fresh_database("tls_plain").await;
        let sep = if url.contains('?') { '&' } else { '?' };
        let prefer = engine(&format!("{url}{sep}sslmode=prefer"));
        assert!(!encrypted(&prefer).await.unwrap());
        assert!(
            format!("{prefer:?}").contains("encrypted 0/1"),
            "{prefer:?}"
        );
        let require = engine(&format!("{url}{sep}sslmode=require"));
        let err = encrypted(&require).await.unwrap_err();
        assert!(message(&err).contains("TLS"), "{}", message(&err));
        // Unasked-for prefer (libpq's default) connects in plaintext without a warning.
        assert!(!encrypted(&engine(&url)).await.unwrap());
    });
    let text = log.text();
    assert_eq!(
        text.matches("connections are not encrypted").count(),
        1,
        "one warning, for the engine that asked for prefer: {text}"
    );
}

#[tokio::test]
async fn a_dropped_statement_is_cancelled_over_tls() {
    let t = roles().await;
    let url = t.url(
        "app",
        "localhost",
        &format!("&sslmode=verify-full&sslrootcert={}", t.file("ca.pem")),
    );
    let e = engine(&url);
    let mut conn = e.connect().await.unwrap();
    let pid: i32 = conn.scalar("SELECT pg_backend_pid()", &[]).await.unwrap();
    let sleep = conn.execute("SELECT pg_sleep(60)", &[]);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), sleep)
            .await
            .is_err()
    );
    drop(conn);
    let admin = engine(&t.url("postgres", "127.0.0.1", "&sslmode=disable"));
    let mut probe = admin.connect().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let running: i64 = probe
            .scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'active'",
                &[&pid],
            )
            .await
            .unwrap();
        if running == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the statement is still running 10 s after its future was dropped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    probe.close().await;
}

#[test]
fn bad_tls_options_are_configuration_errors_naming_the_option() {
    let e = Engine::builder("postgresql://u@h/db?sslmode=verify_full")
        .build()
        .unwrap_err();
    assert!(
        matches!(e, Error::Config(_)) && e.to_string().contains("sslmode"),
        "{e}"
    );
    let e =
        Engine::builder("postgresql://u@h/db?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem")
            .build()
            .unwrap_err();
    assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    let home_root = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".postgresql/root.crt"))
        .filter(|p| p.exists());
    if home_root.is_none() {
        let e = Engine::builder("postgresql://u@h/db?sslmode=verify-full")
            .build()
            .unwrap_err();
        assert!(
            e.to_string().contains("root certificate file")
                && e.to_string().contains("sslrootcert=system"),
            "{e}"
        );
    }
}
