//! `rediss://`: the Redis backend over TLS (rustls, no OpenSSL), with the
//! server's certificate verified against the system's roots, which honour
//! `SSL_CERT_FILE` (how an operator trusts a private CA).
//!
//! One test in its own binary: it sets `SSL_CERT_FILE` before any other
//! thread of this process exists.

mod common;

use std::time::Duration;

use common::redis::RedisServer;
use docusign_gateway::session::redis::{BackendError, Invalidation, RedisBackend, Sealer, Target};

const LONG: Duration = Duration::from_secs(60);

fn tls_backend(url: String) -> RedisBackend {
    RedisBackend::connect(
        Target::Standalone(url),
        "dsgw",
        Duration::from_millis(1000),
        Duration::from_millis(500),
        Sealer::new(b"tls-test-secret-0123456789abcdef0123456789", None),
    )
    .expect("a valid target")
}

#[test]
fn rediss_verifies_the_server_certificate() {
    let trusted = RedisServer::start_tls();
    let untrusted = RedisServer::start_tls();
    // SAFETY of set_var: no other thread of this test binary runs yet (one
    // test; the runtime is built below).
    std::env::set_var("SSL_CERT_FILE", trusted.cert_path());
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let backend = tls_backend(format!("rediss://127.0.0.1:{}", trusted.port));
        backend.ping().await.expect("TLS to the trusted server");
        backend.put("tls", 1, b"over tls", LONG).await.unwrap();
        assert_eq!(
            backend.get("tls").await.unwrap(),
            Some((1, b"over tls".to_vec()))
        );
        let mut rx = backend.subscribe(4);
        let first = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        assert_eq!(
            first.unwrap(),
            Some(Invalidation::Resync),
            "subscribed over TLS"
        );
        backend.delete("tls").await.unwrap();
        let next = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        let tag = Invalidation::Session(backend.keys("tls").tag);
        assert_eq!(next.unwrap(), Some(tag));

        let refused = tls_backend(format!("rediss://127.0.0.1:{}", untrusted.port))
            .ping()
            .await;
        assert!(
            matches!(refused, Err(BackendError::Unavailable(_))),
            "a certificate outside the roots is refused: {refused:?}"
        );
    });
}
