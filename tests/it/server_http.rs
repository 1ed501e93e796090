//! The server over real sockets, plain HTTP: HTTP/1.1 and HTTP/2 prior
//! knowledge, the metrics listener, timeouts against slow clients, the
//! body limit on the wire, drain, and `/metrics` under promtool.

// In tests a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::support::server::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_and_h2_prior_knowledge() {
    let server = start(config(&[])).await;
    for proto in [Proto::H1, Proto::H2] {
        let mut conn = connect(server.addr, None, proto).await.unwrap();
        // Several requests on one connection (keep-alive / streams).
        for _ in 0..3 {
            let (status, _, body) = conn
                .send(post(
                    "/imagepolicy?timeout=30s",
                    image_review(&["nginx:1.25"]),
                ))
                .await
                .unwrap();
            assert_eq!(status, 200, "{proto:?}");
            assert!(image_review_allowed(&body));
            let (status, _, body) = conn
                .send(post("/validate", admission_review(&["nginx"])))
                .await
                .unwrap();
            assert_eq!(status, 200, "{proto:?}");
            assert!(!admission_allowed(&body));
        }
        let (status, _, _) = conn.send(get("/healthz")).await.unwrap();
        assert_eq!(status, 200);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_name_every_contract_family_on_both_listeners() {
    let server = start(config(&["--metrics-listen", "127.0.0.1:0"])).await;
    once(
        server.addr,
        post("/imagepolicy", image_review(&["nginx:1.25"])),
    )
    .await;
    let metrics_addr = server.metrics_addr.expect("metrics listener");
    for addr in [server.addr, metrics_addr] {
        let text = metrics_text(addr).await;
        for family in [
            "imagegate_http_requests_total",
            "imagegate_http_request_duration_seconds",
            "imagegate_reviews_total",
            "imagegate_image_decisions_total",
            "imagegate_policy_reloads_total",
            "imagegate_policy_generation",
            "imagegate_build_info",
            "imagegate_decode_errors_total",
            "imagegate_connections_open",
            "imagegate_requests_in_flight",
            "imagegate_tls_reloads_total",
            "imagegate_connections_rejected_total",
        ] {
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{family} missing at {addr}"
            );
        }
        assert!(parses_as_exposition(&text), "{text}");
        assert!(sample(&text, "imagegate_connections_open").unwrap() >= 1.0);
        assert_eq!(
            sample(
                &text,
                "imagegate_http_request_duration_seconds_count{path=\"imagepolicy\"}"
            ),
            Some(1.0)
        );
    }
    // The metrics listener offers no review routes.
    let (status, _, _) = once(
        metrics_addr,
        post("/imagepolicy", image_review(&["nginx:1.25"])),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = once(metrics_addr, get("/readyz")).await;
    assert_eq!(status, 200);
    server.stop().await;
}

/// A light check of the text format: every sample line is
/// `name{labels} value` with a float value, and each name has a TYPE.
fn parses_as_exposition(text: &str) -> bool {
    let mut typed = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.insert(rest.split(' ').next().unwrap_or("").to_owned());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            return false;
        };
        if value.parse::<f64>().is_err() {
            return false;
        }
        let name = series.split('{').next().unwrap_or("");
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        if !typed.contains(name) && !typed.contains(base) {
            return false;
        }
    }
    true
}

#[cfg_attr(
    not(have_promtool),
    ignore = "needs promtool (apt-get install prometheus)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_accepts_the_metrics() {
    let output = std::process::Command::new("promtool")
        .arg("--version")
        .output()
        .expect("promtool is not installed (apt-get install prometheus; .ci/run installs it)");
    assert!(output.status.success());
    let server = start(config(&[])).await;
    once(server.addr, post("/imagepolicy", image_review(&["nginx"]))).await;
    let text = metrics_text(server.addr).await;
    server.stop().await;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_headers_is_cut_off() {
    let server = start(config(&["--header-read-timeout", "500ms"])).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let started = tokio::time::Instant::now();
    let head = b"POST /imagepolicy HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\nx-padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    // One byte every 50 ms: the head would take ~8 s to arrive.
    let mut cut_off = false;
    for byte in head.iter() {
        if stream.write_all(&[*byte]).await.is_err() {
            cut_off = true;
            break;
        }
        let mut buf = [0u8; 1024];
        match tokio::time::timeout(Duration::from_millis(50), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                cut_off = true;
                break;
            }
            // hyper may answer 408 before closing.
            Ok(Ok(_)) => {}
            Err(_) => {}
        }
    }
    let elapsed = started.elapsed();
    assert!(cut_off, "the connection was never closed");
    assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_gets_408() {
    let server = start(config(&["--body-read-timeout", "300ms"])).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"POST /imagepolicy HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"kind\":")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "no answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_oversized_body_is_refused_before_it_is_sent() {
    let server = start(config(&["--max-body-bytes", "1KiB"])).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    // Headers only: the 413 must come without waiting for 10 MB.
    stream
        .write_all(b"POST /validate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 10000000\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(DEADLINE, stream.read(&mut buf))
        .await
        .expect("answer without the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // Chunked (no declared length): counted while reading.
    let mut conn = connect(server.addr, None, Proto::H2).await.unwrap();
    let big = format!("{:<2048}", image_review(&["nginx:1.25"]));
    let (status, _, _) = conn.send(post("/validate", big)).await.unwrap();
    assert_eq!(status, 413);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_turns_readyz_503_while_still_serving() {
    let server = start(config(&[
        "--shutdown-delay",
        "1500ms",
        "--grace-period",
        "5s",
    ]))
    .await;
    let mut conn = connect(server.addr, None, Proto::H2).await.unwrap();
    assert_eq!(conn.send(get("/readyz")).await.unwrap().0, 200);
    server.handle.shutdown();
    // 503 at once (no sleep: poll until it flips, bounded).
    let addr = server.addr;
    eventually("readyz 503", || async {
        once(addr, get("/readyz")).await.0 == 503
    })
    .await;
    // Still serving reviews during the shutdown delay, new connections too.
    let (status, _, _) = conn
        .send(post("/imagepolicy", image_review(&["nginx:1.25"])))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let (status, _, _) = once(
        server.addr,
        post("/imagepolicy", image_review(&["nginx:1.25"])),
    )
    .await;
    assert_eq!(status, 200);
    // Then the listener closes and serve() returns Ok.
    tokio::time::timeout(DEADLINE, server.task)
        .await
        .expect("drain ends")
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_waits_for_an_in_flight_request() {
    let server = start(config(&["--grace-period", "10s"])).await;
    // A request whose body is still arriving when the drain starts.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let body = image_review(&["nginx:1.25"]);
    let head = format!(
        "POST /imagepolicy HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..10]).await.unwrap();
    let app = server.app.clone();
    eventually("request in flight", || {
        let app = app.clone();
        async move {
            let text = String::from_utf8(app.metrics().render()).unwrap();
            sample(&text, "imagegate_requests_in_flight") == Some(1.0)
        }
    })
    .await;
    server.handle.shutdown();
    // The listener closes (shutdown delay 0) while the request is open.
    let addr = server.addr;
    eventually("listener closed", || async move {
        TcpStream::connect(addr).await.is_err()
    })
    .await;
    assert!(!server.task.is_finished());
    stream.write_all(&body.as_bytes()[10..]).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    tokio::time::timeout(DEADLINE, server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_close_at_the_drain() {
    // A grace period and a header-read timeout far longer than the check:
    // only the drain's graceful shutdown of each connection ends it early.
    let server = start(config(&["--grace-period", "60s"])).await;
    let mut open = Vec::new();
    for proto in [Proto::H1, Proto::H2] {
        let mut conn = connect(server.addr, None, proto).await.unwrap();
        let (status, _, body) = conn
            .send(post("/imagepolicy", image_review(&["nginx:1.25"])))
            .await
            .unwrap();
        assert_eq!(status, 200, "{proto:?}: {body:?}");
        open.push(conn);
    }
    let took = drain(server).await;
    assert!(
        took < Duration::from_secs(5),
        "idle connections held the drain for {took:?}"
    );
    drop(open);
}

/// Shuts `server` down and waits for it to stop: how long that took.
async fn drain(server: Running) -> Duration {
    let started = tokio::time::Instant::now();
    server.handle.shutdown();
    tokio::time::timeout(DEADLINE, server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grace_period_bounds_the_drain() {
    let server = start(config(&["--grace-period", "300ms"])).await;
    // An idle HTTP/2 connection with a request that never completes.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"POST /imagepolicy HTTP/1.1\r\nhost: localhost\r\ncontent-length: 100\r\n\r\n{")
        .await
        .unwrap();
    let app = server.app.clone();
    eventually("request in flight", || {
        let app = app.clone();
        async move {
            let text = String::from_utf8(app.metrics().render()).unwrap();
            sample(&text, "imagegate_requests_in_flight") == Some(1.0)
        }
    })
    .await;
    assert!(drain(server).await < Duration::from_secs(5));
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut rest)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_within_the_limit_pass_and_huge_heads_do_not() {
    let server = start(config(&[])).await;
    // 2.5 MiB of valid JSON (whitespace padding), under the 3 MiB default.
    let mut big = admission_review(&["nginx:1.25"]);
    big.push_str(&" ".repeat(2_621_440 - big.len()));
    for proto in [Proto::H1, Proto::H2] {
        let mut conn = connect(server.addr, None, proto).await.unwrap();
        let (status, _, body) = conn.send(post("/validate", big.clone())).await.unwrap();
        assert_eq!(status, 200, "{proto:?}");
        assert!(admission_allowed(&body));
    }
    // A 100 KiB header: refused by hyper (431), never reaching a handler.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "GET /healthz HTTP/1.1\r\nhost: localhost\r\nx-big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut answer)).await;
    assert!(closed.is_ok(), "connection left open");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // Too many header fields: also refused.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let fields: String = (0..200).map(|i| format!("x-{i}: v\r\n")).collect();
    let head = format!("GET /healthz HTTP/1.1\r\nhost: localhost\r\n{fields}\r\n");
    let _ = stream.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut answer)).await;
    assert!(closed.is_ok(), "connection left open");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    server.stop().await;
}
