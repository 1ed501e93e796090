//! The built binary: `imagegate serve` drains on SIGTERM under traffic
//! with no failed request and exits 0, a start-up error exits non-zero
//! with a one-line reason, and the allocator runs with the settings built
//! in from `.cargo/config.toml`.

// In tests a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::support::process::{Serve, binary};
use crate::support::server::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_traffic_drains_and_exits_zero() {
    let mut serve = Serve::spawn(&[
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
        "--log-filter",
        "info",
        "--shutdown-delay",
        "2s",
        "--grace-period",
        "10s",
    ]);
    let started = serve.wait_for_log("imagegate serving");
    let addr: SocketAddr = started["listen"].as_str().unwrap().parse().unwrap();
    assert_eq!(started["generation"], 1);

    // Traffic on keep-alive connections, both protocols.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for proto in [Proto::H1, Proto::H2] {
        let (stop, ok) = (stop.clone(), ok.clone());
        clients.push(tokio::spawn(async move {
            let mut conn = connect(addr, None, proto).await.unwrap();
            while !stop.load(Ordering::Relaxed) {
                let (status, _, _) = conn
                    .send(post("/imagepolicy", image_review(&["nginx:1.25"])))
                    .await
                    .expect("request during drain");
                assert_eq!(status, 200);
                ok.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // A request in flight across the whole drain: its body arrives late.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let body = image_review(&["nginx:1.25"]);
    let head = format!(
        "POST /imagepolicy HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.write_all(&body.as_bytes()[..5]).await.unwrap();
    eventually("traffic flowing", || {
        let ok = ok.clone();
        async move { ok.load(Ordering::Relaxed) > 50 }
    })
    .await;

    serve.signal("TERM");
    // Readiness off at once, while reviews are still answered.
    eventually("readyz 503", || async move {
        once(addr, get("/readyz")).await.0 == 503
    })
    .await;
    let at_503 = ok.load(Ordering::Relaxed);
    eventually("traffic after SIGTERM", || {
        let ok = ok.clone();
        async move { ok.load(Ordering::Relaxed) > at_503 + 20 }
    })
    .await;
    // The endpoint is gone from the Service: clients stop sending.
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        tokio::time::timeout(DEADLINE, client)
            .await
            .unwrap()
            .expect("no failed request");
    }

    serve.wait_for_log("listeners closed, waiting for in-flight requests");
    assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
    // The in-flight request completes after the listener closed.
    slow.write_all(&body.as_bytes()[5..]).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(DEADLINE, slow.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    serve.wait_for_log("shutdown complete");
    let status = serve.wait_exit();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_exits_zero() {
    let mut serve = Serve::spawn(&["--listen", "127.0.0.1:0", "--log-format", "json"]);
    serve.wait_for_log("imagegate serving");
    serve.signal("INT");
    assert_eq!(serve.wait_exit().code(), Some(0));
}

#[test]
fn start_up_errors_exit_non_zero_with_one_line() {
    for (args, names) in [
        (
            &["--policy", "/nonexistent/policy.yaml"][..],
            "/nonexistent/policy.yaml",
        ),
        (
            &[
                "--tls-cert",
                "/nonexistent/tls.crt",
                "--tls-key",
                "/nonexistent/tls.key",
            ],
            "/nonexistent/tls.crt",
        ),
        (&["--tls-cert", "/nonexistent/tls.crt"], "--tls-key"),
    ] {
        let out = Command::new(binary())
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(
            lines.len(),
            1,
            "{args:?}: one line expected, got:\n{stderr}"
        );
        assert!(lines[0].contains(names), "{args:?}: {stderr}");
    }
}

/// The allocator's settings come from the build's environment
/// (`.cargo/config.toml`); a build without them would still work and
/// would keep a reload's garbage resident (loadtest/RESULTS-memory.md).
/// jemalloc prints its options at exit when asked to.
#[test]
fn the_allocator_runs_with_the_built_in_settings() {
    let out = Command::new(binary())
        .arg("--version")
        .env("_RJEM_MALLOC_CONF", "stats_print:true")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let stats = String::from_utf8_lossy(&out.stderr);
    for option in [
        "opt.background_thread: true",
        "opt.dirty_decay_ms: 1000",
        "opt.muzzy_decay_ms: 0",
        "opt.thp: \"never\"",
    ] {
        assert!(
            stats.lines().any(|l| l.trim_start().starts_with(option)),
            "{option} missing from the allocator's options:\n{stats}"
        );
    }
}
