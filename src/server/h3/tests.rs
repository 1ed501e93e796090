use super::*;
use crate::server::config::TlsFiles;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

#[test]
fn quic_config_is_the_tcp_config_with_alpn_h3() {
    let tls = TlsState::load(TlsFiles {
        cert: fixture("server.pem"),
        key: fixture("server.key"),
        client_ca: Some(fixture("ca.pem")),
    })
    .unwrap();
    let tcp = tls.config();
    let quic = quic_tls(&tcp);
    assert_eq!(quic.alpn_protocols, vec![b"h3".to_vec()]);
    assert_eq!(quic.max_early_data_size, 0);
    // The same resolver object: a certificate reload reaches both.
    assert!(Arc::ptr_eq(&quic.cert_resolver, &tcp.cert_resolver));
    // The TCP listener keeps its own ALPN list.
    assert_eq!(
        tcp.alpn_protocols,
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    // quinn accepts it (TLS 1.3 and its initial suite are there).
    let transport = Arc::new(transport_config(&Limits::default()));
    quic_config(&tcp, &transport).unwrap();
}
