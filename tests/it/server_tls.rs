//! The server over TLS: ALPN `h2` and `http/1.1`, mTLS accepted and
//! refused, and certificate rotation under traffic.

// In tests a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::support::server::*;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

fn tls_args<'a>(cert: &'a str, key: &'a str) -> Vec<&'a str> {
    vec!["--tls-cert", cert, "--tls-key", key]
}

fn der(name: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(fixture(name)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpn_negotiates_h2_and_http11() {
    let cert = fixture("server.pem");
    let key = fixture("server.key");
    let server = start(config(&tls_args(
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
    )))
    .await;
    for (alpn, want_alpn, want_proto) in [
        (&[&b"h2"[..], b"http/1.1"][..], Some(&b"h2"[..]), Proto::H2),
        (&[&b"http/1.1"[..]][..], Some(&b"http/1.1"[..]), Proto::H1),
        (&[][..], None, Proto::H1),
    ] {
        let mut conn = connect(server.addr, Some(client_tls(alpn, None)), Proto::H1)
            .await
            .unwrap();
        assert_eq!(conn.alpn.as_deref(), want_alpn);
        assert_eq!(conn.proto, want_proto);
        assert_eq!(conn.peer_cert, Some(der("server.pem")));
        for _ in 0..2 {
            let (status, _, body) = conn
                .send(post(
                    "/imagepolicy?timeout=30s",
                    image_review(&["nginx:1.25"]),
                ))
                .await
                .unwrap();
            assert_eq!(status, 200);
            assert!(image_review_allowed(&body));
        }
    }
    // Plain HTTP on the TLS port gets nowhere.
    let plain = tokio::time::timeout(DEADLINE, async {
        match connect(server.addr, None, Proto::H1).await {
            Ok(mut conn) => conn.send(get("/healthz")).await.is_err(),
            Err(_) => true,
        }
    })
    .await
    .unwrap();
    assert!(plain, "plain HTTP must not be answered on the TLS listener");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_accepts_the_right_client_and_refuses_others() {
    let cert = fixture("server.pem");
    let key = fixture("server.key");
    let ca = fixture("ca.pem");
    let mut args = tls_args(cert.to_str().unwrap(), key.to_str().unwrap());
    args.extend(["--client-ca", ca.to_str().unwrap()]);
    let server = start(config(&args)).await;
    let alpn: &[&[u8]] = &[b"h2", b"http/1.1"];

    let mut ok = connect(
        server.addr,
        Some(client_tls(alpn, Some(("client.pem", "client.key")))),
        Proto::H1,
    )
    .await
    .unwrap();
    let (status, _, _) = ok
        .send(post("/validate", admission_review(&["nginx:1.25"])))
        .await
        .unwrap();
    assert_eq!(status, 200);

    // No certificate, and a certificate from another CA: the handshake
    // (TLS 1.3: the first read after it) fails, no request is answered.
    for identity in [None, Some(("other-client.pem", "other-client.key"))] {
        for alpn in [alpn, &[&b"http/1.1"[..]][..]] {
            let refused = tokio::time::timeout(DEADLINE, async {
                match connect(server.addr, Some(client_tls(alpn, identity)), Proto::H1).await {
                    Err(_) => true,
                    Ok(mut conn) => conn.send(get("/healthz")).await.is_err(),
                }
            })
            .await
            .unwrap();
            assert!(refused, "client {identity:?} must be refused");
        }
    }
    server.stop().await;
}

fn copy(from: &str, to: &Path) {
    std::fs::copy(fixture(from), to).unwrap();
}

/// Clients loop on fresh TLS connections while the certificate and key are
/// replaced by atomic renames: no request fails, and the new certificate
/// is soon served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_rotation_under_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    copy("server.pem", &cert);
    copy("server.key", &key);
    let server = start(config(&tls_args(
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
    )))
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let saw_new = Arc::new(AtomicBool::new(false));
    let new_der = der("server2.pem");
    let mut clients = Vec::new();
    for n in 0..2 {
        let (stop, ok, saw_new, new_der) =
            (stop.clone(), ok.clone(), saw_new.clone(), new_der.clone());
        let addr = server.addr;
        clients.push(tokio::spawn(async move {
            let alpn: &[&[u8]] = if n == 0 { &[b"h2"] } else { &[b"http/1.1"] };
            let tls = client_tls(alpn, None);
            while !stop.load(Ordering::Relaxed) {
                let mut conn = connect(addr, Some(tls.clone()), Proto::H1)
                    .await
                    .expect("handshake during rotation");
                let (status, _, _) = conn
                    .send(post("/imagepolicy", image_review(&["nginx:1.25"])))
                    .await
                    .expect("request during rotation");
                assert_eq!(status, 200);
                ok.fetch_add(1, Ordering::Relaxed);
                if conn.peer_cert.as_ref() == Some(&new_der) {
                    saw_new.store(true, Ordering::Relaxed);
                }
            }
        }));
    }
    eventually("traffic flowing", || {
        let ok = ok.clone();
        async move { ok.load(Ordering::Relaxed) > 20 }
    })
    .await;

    // cert-manager style: each file replaced by an atomic rename.
    replace_file(&cert, &std::fs::read(fixture("server2.pem")).unwrap());
    replace_file(&key, &std::fs::read(fixture("server2.key")).unwrap());
    eventually("new certificate served", || {
        let saw_new = saw_new.clone();
        async move { saw_new.load(Ordering::Relaxed) }
    })
    .await;
    let after = ok.load(Ordering::Relaxed);
    eventually("traffic after rotation", || {
        let ok = ok.clone();
        async move { ok.load(Ordering::Relaxed) > after + 20 }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        tokio::time::timeout(DEADLINE, client)
            .await
            .unwrap()
            .expect("no failed request");
    }
    let text = metrics_text_tls(server.addr).await;
    assert!(sample(&text, "imagegate_tls_reloads_total{result=\"success\"}").unwrap() >= 1.0);
    server.stop().await;
}

async fn metrics_text_tls(addr: std::net::SocketAddr) -> String {
    let mut conn = connect(addr, Some(client_tls(&[b"h2"], None)), Proto::H1)
        .await
        .unwrap();
    let (status, _, body) = conn.send(get("/metrics")).await.unwrap();
    assert_eq!(status, 200);
    String::from_utf8(body.to_vec()).unwrap()
}

/// Kubernetes Secret volume style: the files are symlinks through `..data`,
/// which is swapped. A broken pair is refused (counted), the old one stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_volume_swap_and_a_bad_pair() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let version = |name: &str, cert: &[u8], key: &[u8]| {
        std::fs::create_dir(d.join(name)).unwrap();
        std::fs::write(d.join(name).join("tls.crt"), cert).unwrap();
        std::fs::write(d.join(name).join("tls.key"), key).unwrap();
        let tmp = d.join("..data_tmp");
        std::os::unix::fs::symlink(name, &tmp).unwrap();
        std::fs::rename(&tmp, d.join("..data")).unwrap();
    };
    let read = |name: &str| std::fs::read(fixture(name)).unwrap();
    version("..v1", &read("server.pem"), &read("server.key"));
    std::os::unix::fs::symlink("..data/tls.crt", d.join("tls.crt")).unwrap();
    std::os::unix::fs::symlink("..data/tls.key", d.join("tls.key")).unwrap();
    let cert = d.join("tls.crt");
    let key = d.join("tls.key");
    let server = start(config(&tls_args(
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
    )))
    .await;
    let addr = server.addr;
    let served = || async move {
        let mut conn = connect(addr, Some(client_tls(&[b"h2"], None)), Proto::H1)
            .await
            .unwrap();
        assert_eq!(conn.send(get("/healthz")).await.unwrap().0, 200);
        conn.peer_cert.unwrap()
    };
    assert_eq!(served().await, der("server.pem"));

    // A mismatched pair (new certificate, old key): refused and counted.
    version("..v2", &read("server2.pem"), &read("server.key"));
    eventually("tls reload error counted", || async move {
        let text = metrics_text_tls(addr).await;
        sample(&text, "imagegate_tls_reloads_total{result=\"error\"}") == Some(1.0)
    })
    .await;
    assert_eq!(served().await, der("server.pem"));

    // Garbage: refused too.
    version("..v3", b"not a certificate", b"not a key");
    eventually("second tls reload error counted", || async move {
        let text = metrics_text_tls(addr).await;
        sample(&text, "imagegate_tls_reloads_total{result=\"error\"}") == Some(2.0)
    })
    .await;
    assert_eq!(served().await, der("server.pem"));

    // A good new pair: served.
    version("..v4", &read("server2.pem"), &read("server2.key"));
    eventually("new pair served", || async move {
        served().await == der("server2.pem")
    })
    .await;
    let text = metrics_text_tls(addr).await;
    assert_eq!(
        sample(&text, "imagegate_tls_reloads_total{result=\"success\"}"),
        Some(1.0)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tls_files_are_start_up_errors() {
    use imagegate::server::{ServeError, Server};
    for (cert, key) in [
        ("server.pem", "missing.key"),
        ("server.pem", "server2.key"),
        ("server.key", "server.key"),
        ("ca.pem", "server.key"),
    ] {
        let c = fixture(cert);
        let k = fixture(key);
        let err = Server::bind(config(&tls_args(c.to_str().unwrap(), k.to_str().unwrap())))
            .await
            .expect_err("must refuse");
        assert!(matches!(err, ServeError::Tls(_)), "{cert} {key}: {err}");
        assert!(!err.to_string().is_empty());
    }
}

/// The client CA is reloaded too: after it is replaced by another CA, the
/// old CA's clients are refused and the new CA's clients accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ca_reload() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.crt");
    copy("ca.pem", &ca);
    let cert = fixture("server.pem");
    let key = fixture("server.key");
    let mut args = tls_args(cert.to_str().unwrap(), key.to_str().unwrap());
    args.extend(["--client-ca", ca.to_str().unwrap()]);
    let server = start(config(&args)).await;
    let addr = server.addr;
    let answered = |identity: (&'static str, &'static str)| async move {
        match connect(addr, Some(client_tls(&[b"h2"], Some(identity))), Proto::H1).await {
            Err(_) => false,
            Ok(mut conn) => matches!(conn.send(get("/healthz")).await, Ok((s, _, _)) if s == 200),
        }
    };
    assert!(answered(("client.pem", "client.key")).await);
    assert!(!answered(("other-client.pem", "other-client.key")).await);

    replace_file(&ca, &std::fs::read(fixture("other-ca.pem")).unwrap());
    eventually("new client CA in force", || async move {
        answered(("other-client.pem", "other-client.key")).await
    })
    .await;
    assert!(!answered(("client.pem", "client.key")).await);

    // A CA file that is not PEM: refused, the current CA stays.
    replace_file(&ca, b"garbage");
    eventually("bad CA counted", || async move {
        let mut conn = connect(
            addr,
            Some(client_tls(
                &[b"h2"],
                Some(("other-client.pem", "other-client.key")),
            )),
            Proto::H1,
        )
        .await
        .unwrap();
        let (_, _, body) = conn.send(get("/metrics")).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        sample(&text, "imagegate_tls_reloads_total{result=\"error\"}") == Some(1.0)
    })
    .await;
    assert!(answered(("other-client.pem", "other-client.key")).await);
    server.stop().await;
}
