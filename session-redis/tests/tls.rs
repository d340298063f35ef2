//! `rediss://` with rustls against a TLS-only `redis-server` of the test's own, with
//! certificates made by `openssl` for the occasion.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use session_core::{ErrorKind, Record, SessionId, SessionStore, Timestamp};
use session_redis::{RedisConfig, RedisStore, redis};
use session_testkit::{TestError, TestResult, Tests, Trial};
use support::RedisServer;

fn main() -> std::process::ExitCode {
    Tests::new([Trial::tokio(
        "rediss_connects_with_rustls_and_verifies_the_certificate",
        rediss_connects_with_rustls_and_verifies_the_certificate,
    )
    .multi_thread(2)])
    .main()
}

/// A test CA (`ca.pem`) and a certificate it issued for 127.0.0.1 (`cert.pem`,
/// `key.pem`) in `dir`; `false` without `openssl`.
fn make_certificates(dir: &Path) -> bool {
    let openssl = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").is_ok()
        && openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=session-redis test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ])
        && openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "key.pem",
            "-out",
            "server.csr",
        ])
        && openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "cert.pem",
        ])
}

async fn round_trip(store: &RedisStore) {
    let key = SessionId::generate(32).expect("id").store_key();
    let record = Record {
        expires_at: Timestamp::now() + Duration::from_secs(60),
        created_at: Timestamp::now(),
        ..Record::default()
    };
    assert!(store.create(&key, &record).await.expect("create over TLS"));
    assert_eq!(store.load(&key).await.expect("load over TLS"), Some(record));
}

async fn rediss_connects_with_rustls_and_verifies_the_certificate() -> TestResult {
    let certs = tempfile::tempdir().expect("temp dir");
    if !make_certificates(certs.path()) {
        return Err(TestError::skip("no openssl to make a test certificate"));
    }
    let cert = certs.path().join("cert.pem");
    let key = certs.path().join("key.pem");
    let args = vec![
        "--port".to_owned(),
        "0".to_owned(),
        "--tls-port".to_owned(),
        "{port}".to_owned(),
        "--tls-cert-file".to_owned(),
        cert.display().to_string(),
        "--tls-key-file".to_owned(),
        key.display().to_string(),
        "--tls-auth-clients".to_owned(),
        "no".to_owned(),
    ];
    let server = RedisServer::start_with(args).ok_or_else(support::no_redis_server)?;
    let url = format!("rediss://127.0.0.1:{}", server.port());
    let config = RedisConfig::new(&url)
        .with_prefix("tls:")
        .with_connect_timeout(Duration::from_secs(2));

    // Verified against the test CA.
    let client = redis::Client::build_with_tls(
        url.as_str(),
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(std::fs::read(certs.path().join("ca.pem")).expect("CA")),
        },
    )
    .expect("TLS client");
    round_trip(
        &RedisStore::from_client(client, &config)
            .await
            .expect("from_client"),
    )
    .await;

    // The system roots do not know the test CA: refused, not a panic.
    let err = RedisStore::connect(&config)
        .await
        .expect_err("unknown issuer");
    assert!(
        matches!(err.kind(), ErrorKind::Backend | ErrorKind::Timeout),
        "{err}"
    );
    Ok(())
}
