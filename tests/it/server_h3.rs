//! The HTTP/3 listener (`--http3-listen`) driven by an independent client:
//! aioquic, through `tests/h3/h3_client.py`. Allow and deny answers, the
//! error statuses, mTLS refusals, certificate rotation, drain, and a
//! request that completes through a lossy UDP path.
//!
//! Each test is ignored, with the reason, where `python3` cannot import
//! `aioquic` at build time (`build.rs`), unless `IMAGEGATE_REQUIRE_TOOLS` is
//! set: `.ci/run` installs aioquic and sets it, so CI always runs them.

// In tests a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::support::server::*;
use imagegate::server::{Config, Server};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;
use sha2::Digest;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// What a test without the HTTP/3 client says.
const MISSING: &str =
    "python3 cannot import aioquic (pip install aioquic==1.7.2; .ci/run installs it)";

/// Fails the test when the client is missing. Tests that use it carry
/// `#[cfg_attr(not(have_aioquic), ignore = ...)]` (`build.rs`).
macro_rules! require_aioquic {
    () => {
        let here = std::process::Command::new("python3")
            .args(["-c", "import aioquic"])
            .output()
            .is_ok_and(|out| out.status.success());
        assert!(here, "{MISSING}");
    };
}

/// A server with an HTTP/3 listener beside its TCP one (the
/// [`Running`] it derefs to).
struct H3Server {
    running: Running,
    h3: SocketAddr,
}

impl std::ops::Deref for H3Server {
    type Target = Running;

    fn deref(&self) -> &Running {
        &self.running
    }
}

impl H3Server {
    async fn start(args: &[&str]) -> H3Server {
        H3Server::start_with(args, fixture("server.pem"), fixture("server.key")).await
    }

    async fn start_with(args: &[&str], cert: PathBuf, key: PathBuf) -> H3Server {
        let mut all = vec![
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--http3-listen",
            "127.0.0.1:0",
        ];
        all.extend_from_slice(args);
        let running = start(config(&all)).await;
        let h3 = running.http3_addr.expect("HTTP/3 listener bound");
        H3Server { running, h3 }
    }

    async fn stop(self) {
        self.running.stop().await;
    }
}

/// One run of the aioquic client; its JSON line.
async fn h3_client(addr: SocketAddr, args: Vec<String>) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/h3/h3_client.py");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .args(["--addr", &addr.to_string(), "--ca"])
            .arg(fixture("ca.pem"))
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "client printed no JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn post_args(path: &str, body: &str) -> Vec<String> {
    args(&["--path", path, "--body", body])
}

fn status(answer: &Value) -> u64 {
    answer["status"]
        .as_u64()
        .unwrap_or_else(|| panic!("no HTTP status: {answer}"))
}

fn body(answer: &Value) -> Vec<u8> {
    answer["body"].as_str().unwrap().as_bytes().to_vec()
}

fn fingerprint(name: &str) -> String {
    let der = CertificateDer::from_pem_file(fixture(name)).unwrap();
    sha2::Sha256::digest(der.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http3_without_tls_is_a_start_up_error() {
    let mut config: Config = config(&[]);
    config.http3_listen = Some("127.0.0.1:0".parse().unwrap());
    let error = Server::bind(config).await.unwrap_err();
    assert!(
        error.to_string().contains("an HTTP/3 listener needs TLS"),
        "{error}"
    );
}

#[cfg_attr(
    not(have_aioquic),
    ignore = "needs python3 with aioquic (pip install aioquic==1.7.2)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_and_deny_answers_over_http3() {
    require_aioquic!();
    let server = H3Server::start(&[]).await;

    let allowed = h3_client(
        server.h3,
        post_args("/imagepolicy?timeout=30s", &image_review(&["nginx:1.25"])),
    )
    .await;
    assert_eq!(status(&allowed), 200, "{allowed}");
    assert_eq!(allowed["alpn"], "h3");
    assert_eq!(allowed["headers"]["content-type"], "application/json");
    assert!(image_review_allowed(&body(&allowed)));
    assert_eq!(allowed["peer_cert_sha256"], fingerprint("server.pem"));

    let denied = h3_client(
        server.h3,
        post_args("/imagepolicy", &image_review(&["nginx:1.25", "nginx"])),
    )
    .await;
    assert_eq!(status(&denied), 200, "{denied}");
    assert!(!image_review_allowed(&body(&denied)));

    // Several requests on one connection, AdmissionReview this time.
    let mut repeated = post_args("/validate", &admission_review(&["nginx:latest"]));
    repeated.extend(args(&["--repeat", "3"]));
    let denied = h3_client(server.h3, repeated).await;
    assert_eq!(denied["statuses"], serde_json::json!([200, 200, 200]));
    assert!(!admission_allowed(&body(&denied)));
    let allowed = h3_client(
        server.h3,
        post_args("/validate", &admission_review(&["nginx:1.25"])),
    )
    .await;
    assert!(admission_allowed(&body(&allowed)));

    let health = h3_client(server.h3, args(&["--path", "/healthz"])).await;
    assert_eq!(status(&health), 200);
    assert_eq!(health["body"], "ok\n");

    // The TCP listener points HTTP/3 clients at the UDP port.
    let mut tcp = connect(
        server.addr,
        Some(client_tls(&[b"h2", b"http/1.1"], None)),
        Proto::H1,
    )
    .await
    .unwrap();
    let (code, headers, _) = tcp.send(get("/healthz")).await.unwrap();
    assert_eq!(code, 200);
    assert_eq!(
        headers["alt-svc"],
        format!("h3=\":{}\"; ma=86400", server.h3.port())
    );

    // Same metric families, with the transport broken down.
    let metrics = h3_client(server.h3, args(&["--path", "/metrics"])).await;
    assert_eq!(status(&metrics), 200);
    let text = metrics["body"].as_str().unwrap();
    for (series, want) in [
        (
            "imagegate_http_requests_total{code=\"200\",path=\"imagepolicy\"}",
            2.0,
        ),
        (
            "imagegate_http_requests_total{code=\"200\",path=\"validate\"}",
            4.0,
        ),
        (
            "imagegate_transport_requests_total{code=\"200\",transport=\"quic\"}",
            7.0,
        ),
        (
            "imagegate_transport_requests_total{code=\"200\",transport=\"tcp\"}",
            1.0,
        ),
        (
            "imagegate_reviews_total{api=\"imagereview\",decision=\"deny\",mode=\"enforce\"}",
            1.0,
        ),
        (
            "imagegate_transport_connections_open{transport=\"quic\"}",
            1.0,
        ),
        ("imagegate_connections_open", 2.0),
    ] {
        assert_eq!(sample(text, series), Some(want), "{series}\n{text}");
    }
    drop(tcp);
    server.stop().await;
}

#[cfg_attr(
    not(have_aioquic),
    ignore = "needs python3 with aioquic (pip install aioquic==1.7.2)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_refused_requests_get_the_tcp_statuses() {
    require_aioquic!();
    let server = H3Server::start(&["--max-body-bytes", "1KiB"]).await;
    let cases: Vec<(Vec<String>, u64, &str)> = vec![
        (post_args("/imagepolicy", "not json"), 400, "not valid JSON"),
        (post_args("/validate", "{\"kind\":\"Pod\"}"), 400, ""),
        (post_args("/imagepolicy", "[1,2"), 400, ""),
        (post_args("/imagepolicy", &"x".repeat(2048)), 413, "limit"),
        (
            {
                let mut a = post_args("/imagepolicy", &image_review(&["nginx:1.25"]));
                a.extend(args(&["--content-type", "text/plain"]));
                a
            },
            415,
            "content-type",
        ),
        (args(&["--path", "/imagepolicy"]), 405, ""),
        (args(&["--path", "/nope"]), 404, ""),
    ];
    for (request, want, says) in cases {
        let answer = h3_client(server.h3, request.clone()).await;
        assert_eq!(status(&answer), want, "{request:?} -> {answer}");
        let error: Value = serde_json::from_slice(&body(&answer)).unwrap();
        assert!(
            error["error"].as_str().unwrap().contains(says),
            "{request:?} -> {answer}"
        );
    }
    // The server is still fine.
    let ok = h3_client(
        server.h3,
        post_args("/imagepolicy", &image_review(&["nginx:1.25"])),
    )
    .await;
    assert_eq!(status(&ok), 200);
    let decode_errors = server
        .app
        .metrics()
        .render()
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"imagegate_decode_errors_total{"))
        .map(|l| {
            let l = String::from_utf8_lossy(l);
            l.rsplit(' ').next().unwrap().parse::<f64>().unwrap()
        })
        .sum::<f64>();
    assert_eq!(decode_errors, 3.0);
    server.stop().await;
}

#[cfg_attr(
    not(have_aioquic),
    ignore = "needs python3 with aioquic (pip install aioquic==1.7.2)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_accepts_the_right_client_and_refuses_others() {
    require_aioquic!();
    let ca = fixture("ca.pem");
    let server = H3Server::start(&["--client-ca", ca.to_str().unwrap()]).await;
    let identity = |cert: &str, key: &str| {
        args(&[
            "--cert",
            fixture(cert).to_str().unwrap(),
            "--key",
            fixture(key).to_str().unwrap(),
        ])
    };
    let mut ok = post_args("/validate", &admission_review(&["nginx:1.25"]));
    ok.extend(identity("client.pem", "client.key"));
    let answer = h3_client(server.h3, ok).await;
    assert_eq!(status(&answer), 200, "{answer}");
    assert!(admission_allowed(&body(&answer)));

    for refused in [args(&[]), identity("other-client.pem", "other-client.key")] {
        let mut request = args(&["--path", "/healthz", "--timeout", "8"]);
        request.extend(refused.clone());
        let answer = h3_client(server.h3, request).await;
        assert!(
            answer.get("status").is_none() && answer.get("error").is_some(),
            "client {refused:?} must be refused: {answer}"
        );
    }
    server.stop().await;
}

/// cert-manager style rotation: HTTP/3 handshakes pick up the new pair,
/// because the QUIC config shares the TCP listener's certificate resolver.
#[cfg_attr(
    not(have_aioquic),
    ignore = "needs python3 with aioquic (pip install aioquic==1.7.2)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_rotation_reaches_http3() {
    require_aioquic!();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    std::fs::copy(fixture("server.pem"), &cert).unwrap();
    std::fs::copy(fixture("server.key"), &key).unwrap();
    let server = H3Server::start_with(
        &["--file-poll-interval", "200ms"],
        cert.clone(),
        key.clone(),
    )
    .await;
    let before = h3_client(server.h3, args(&["--path", "/healthz"])).await;
    assert_eq!(before["peer_cert_sha256"], fingerprint("server.pem"));

    replace_file(&cert, &std::fs::read(fixture("server2.pem")).unwrap());
    replace_file(&key, &std::fs::read(fixture("server2.key")).unwrap());
    let want = fingerprint("server2.pem");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let answer = h3_client(server.h3, args(&["--path", "/healthz"])).await;
        assert_eq!(status(&answer), 200, "{answer}");
        if answer["peer_cert_sha256"] == want {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "new certificate never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;
}

/// SIGTERM-style drain while a request is in flight: the request (whose
/// body arrives after the drain began) is answered, the server exits, and
/// new connections are refused.
#[cfg_attr(
    not(have_aioquic),
    ignore = "needs python3 with aioquic (pip install aioquic==1.7.2)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_finishes_in_flight_requests() {
    require_aioquic!();
    let server = H3Server::start(&["--grace-period", "10s"]).await;
    let h3 = server.h3;
    let mut slow = post_args("/imagepolicy", &image_review(&["nginx:1.25"]));
    slow.extend(args(&["--body-delay", "1.5"]));
    let in_flight = tokio::spawn(h3_client(h3, slow));
    let gauge = server.app.metrics().requests_in_flight().clone();
    eventually("the slow request is in flight", || {
        let gauge = gauge.clone();
        async move { gauge.get() >= 1 }
    })
    .await;
    server.stop().await;
    let answer = tokio::time::timeout(DEADLINE, in_flight)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status(&answer), 200, "{answer}");
    assert!(image_review_allowed(&body(&answer)));

    let after = h3_client(h3, args(&["--path", "/healthz", "--timeout", "3"])).await;
    assert!(after.get("error").is_some(), "{after}");
}

/// One cap for every listener: while a TCP connection holds the only slot,
/// a QUIC connection is refused at once (and counted); once it closes,
/// HTTP/3 is served again.
#[cfg_attr(
    not(have_aioquic),
    ignore = "needs python3 with aioquic (pip install aioquic==1.7.2)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_covers_quic_too() {
    require_aioquic!();
    let server = H3Server::start(&["--max-connections", "1"]).await;
    let mut tcp = connect(server.addr, Some(client_tls(&[b"h2"], None)), Proto::H1)
        .await
        .unwrap();
    let (code, _, _) = tcp.send(get("/healthz")).await.unwrap();
    assert_eq!(code, 200);
    let refused = h3_client(server.h3, args(&["--path", "/healthz", "--timeout", "5"])).await;
    assert!(refused.get("error").is_some(), "{refused}");
    let rejected = server.app.metrics().connections_rejected().get();
    assert!(rejected >= 1, "refusal counted: {rejected}");
    drop(tcp);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let answer = h3_client(server.h3, args(&["--path", "/healthz", "--timeout", "5"])).await;
        if answer.get("status").is_some() {
            assert_eq!(status(&answer), 200);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;
}

/// With fewer than half the slots free, a new QUIC client must first
/// answer a Retry (address validation); a real client does, and is served.
#[cfg_attr(
    not(have_aioquic),
    ignore = "needs python3 with aioquic (pip install aioquic==1.7.2)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_connection_pressure_clients_pass_a_retry_and_are_served() {
    require_aioquic!();
    let server = H3Server::start(&["--max-connections", "4"]).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut tcp = connect(server.addr, Some(client_tls(&[b"h2"], None)), Proto::H1)
            .await
            .unwrap();
        assert_eq!(tcp.send(get("/healthz")).await.unwrap().0, 200);
        held.push(tcp);
    }
    let answer = h3_client(
        server.h3,
        post_args("/imagepolicy", &image_review(&["nginx:1.25"])),
    )
    .await;
    assert_eq!(status(&answer), 200, "{answer}");
    assert_eq!(server.app.metrics().connections_rejected().get(), 0);
    drop(held);
    server.stop().await;
}

/// A UDP relay between the client and the server that drops a share of
/// the datagrams in each direction (deterministically, from a seed).
struct LossyProxy {
    addr: SocketAddr,
    dropped: Arc<AtomicU64>,
    forwarded: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl LossyProxy {
    async fn start(server: SocketAddr, loss_percent: u64, seed: u64) -> LossyProxy {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        back.connect(server).await.unwrap();
        let addr = front.local_addr().unwrap();
        let dropped = Arc::new(AtomicU64::new(0));
        let forwarded = Arc::new(AtomicU64::new(0));
        let (d, f) = (dropped.clone(), forwarded.clone());
        let task = tokio::spawn(async move {
            let mut rng = seed | 1;
            let mut lose = move || {
                // xorshift64: reproducible, no extra crate.
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng % 100 < loss_percent
            };
            let mut client: Option<SocketAddr> = None;
            let mut up = vec![0u8; 65536];
            let mut down = vec![0u8; 65536];
            loop {
                tokio::select! {
                    Ok((n, from)) = front.recv_from(&mut up) => {
                        client = Some(from);
                        if lose() {
                            d.fetch_add(1, Ordering::Relaxed);
                        } else {
                            f.fetch_add(1, Ordering::Relaxed);
                            let _ = back.send(&up[..n]).await;
                        }
                    }
                    Ok(n) = back.recv(&mut down) => {
                        if let Some(client) = client {
                            if lose() {
                                d.fetch_add(1, Ordering::Relaxed);
                            } else {
                                f.fetch_add(1, Ordering::Relaxed);
                                let _ = front.send_to(&down[..n], client).await;
                            }
                        }
                    }
                }
            }
        });
        LossyProxy {
            addr,
            dropped,
            forwarded,
            task,
        }
    }
}

#[cfg_attr(
    not(have_aioquic),
    ignore = "needs python3 with aioquic (pip install aioquic==1.7.2)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_complete_through_packet_loss() {
    require_aioquic!();
    let server = H3Server::start(&[]).await;
    let proxy = LossyProxy::start(server.h3, 15, 0x5eed_1234_abcd_0001).await;
    // A body larger than one datagram, so its packets can be lost too.
    let images: Vec<String> = (0..200)
        .map(|n| format!("registry.example/team/app{n}:1.{n}"))
        .collect();
    let images: Vec<&str> = images.iter().map(String::as_str).collect();
    let mut request = post_args("/imagepolicy", &image_review(&images));
    request.extend(args(&["--repeat", "5", "--timeout", "60"]));
    let answer = h3_client(proxy.addr, request).await;
    assert_eq!(
        answer["statuses"],
        serde_json::json!([200, 200, 200, 200, 200]),
        "{answer}"
    );
    assert!(image_review_allowed(&body(&answer)));
    let (dropped, forwarded) = (
        proxy.dropped.load(Ordering::Relaxed),
        proxy.forwarded.load(Ordering::Relaxed),
    );
    assert!(dropped > 0, "the proxy must have dropped datagrams");
    eprintln!("lossy proxy: {dropped} dropped, {forwarded} forwarded");
    proxy.task.abort();
    server.stop().await;
}
