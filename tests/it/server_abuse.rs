//! Hostile clients against the server over real sockets: HTTP/2 rapid
//! reset, streams past `MAX_CONCURRENT_STREAMS`, WINDOW_UPDATE floods and
//! window overflow, header blocks past the header-list limit and
//! CONTINUATION floods, slowloris at scale with a connection flood past the
//! cap, and bodies trickled byte by byte. Through each attack a
//! well-behaved client keeps getting correct answers in time, and the last
//! test watches the built binary's resident memory across a combined round.
//!
//! The frame-level attacks write raw HTTP/2 frames (prior knowledge on the
//! plain listener), as no conforming client library would send them.

// In tests a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

#[path = "server_abuse/h2_frames.rs"]
mod h2_frames;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::support::server::*;
use bytes::Bytes;
use h2_frames::*;
use http::Request;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use hyper_util::rt::{TokioExecutor, TokioIo};
use imagegate::server::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The slowest answer the well-behaved client may get while an attack
/// runs: a fifth of the apiserver's default webhook timeout (10 s), so an
/// attack that only slows the server down still fails the test.
const GOOD_LATENCY: Duration = Duration::from_secs(2);

/// Streams opened and reset in a rapid-reset round.
const RAPID_RESET_STREAMS: usize = 20_000;

/// Connections trickling header bytes in a slowloris round.
const TRICKLERS: usize = 300;

// ---------------------------------------------------------------- the good client

/// Whether the well-behaved client may open new connections during the
/// attack, or only uses the keep-alive connections it opened first (as the
/// apiserver does with its pooled connections).
#[derive(Clone, Copy, PartialEq, Eq)]
enum NewConnections {
    Open,
    KeepAliveOnly,
}

#[derive(Default)]
struct GoodStats {
    answered: AtomicUsize,
    max_latency_us: AtomicU64,
    failures: Mutex<Vec<String>>,
}

/// A well-behaved client asking in a loop, each answer checked: an
/// ImageReview that must be allowed over HTTP/2, an AdmissionReview that
/// must be denied over HTTP/1.1, and (when allowed) a review on a fresh
/// connection.
struct GoodClient {
    stats: Arc<GoodStats>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

struct GoodSummary {
    answered: usize,
    max_latency: Duration,
    failures: Vec<String>,
}

impl GoodClient {
    async fn start(addr: SocketAddr, new: NewConnections) -> GoodClient {
        let mut h2 = connect(addr, None, Proto::H2).await.unwrap();
        let mut h1 = connect(addr, None, Proto::H1).await.unwrap();
        let stats = Arc::new(GoodStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (stats, stop) = (stats.clone(), stop.clone());
            async move {
                let allowed = image_review(&["nginx:1.25"]);
                let denied = admission_review(&["nginx"]);
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let asked = async {
                        match n % 3 {
                            0 => check(h2.send(post("/imagepolicy", allowed.clone())).await, true),
                            1 => check(h1.send(post("/validate", denied.clone())).await, false),
                            _ if new == NewConnections::Open => {
                                let mut fresh = connect(addr, None, Proto::H1)
                                    .await
                                    .map_err(|e| format!("fresh connection: {e}"))?;
                                check(
                                    fresh.send(post("/imagepolicy", allowed.clone())).await,
                                    true,
                                )
                            }
                            _ => check(h2.send(post("/validate", denied.clone())).await, false),
                        }
                    };
                    let outcome = tokio::time::timeout(DEADLINE, asked)
                        .await
                        .unwrap_or_else(|_| Err("no answer within the test deadline".to_owned()));
                    let took = started.elapsed();
                    stats
                        .max_latency_us
                        .fetch_max(took.as_micros() as u64, Ordering::Relaxed);
                    match outcome {
                        Ok(()) => {
                            stats.answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => stats.failures.lock().unwrap().push(e),
                    }
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        });
        let good = GoodClient { stats, stop, task };
        good.wait_answers(3).await;
        good
    }

    fn answered(&self) -> usize {
        self.stats.answered.load(Ordering::Relaxed)
    }

    async fn wait_answers(&self, n: usize) {
        let stats = self.stats.clone();
        eventually("the good client's answers", || {
            let stats = stats.clone();
            async move { stats.answered.load(Ordering::Relaxed) >= n }
        })
        .await;
    }

    async fn finish(self) -> GoodSummary {
        self.stop.store(true, Ordering::Relaxed);
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("the good client stops")
            .expect("the good client did not panic");
        GoodSummary {
            answered: self.stats.answered.load(Ordering::Relaxed),
            max_latency: Duration::from_micros(self.stats.max_latency_us.load(Ordering::Relaxed)),
            failures: std::mem::take(&mut *self.stats.failures.lock().unwrap()),
        }
    }

    /// Waits for three more answers than `before` (the attack is over by
    /// then), stops the client, and checks that every answer it got, during
    /// the attack and after, was right and in time.
    async fn assert_unharmed(self, before: usize) -> GoodSummary {
        self.wait_answers(before + 3).await;
        let summary = self.finish().await;
        assert!(
            summary.failures.is_empty(),
            "the good client failed: {:?}",
            summary.failures
        );
        assert!(
            summary.max_latency < GOOD_LATENCY,
            "the good client waited {:?} for an answer",
            summary.max_latency
        );
        summary
    }
}

fn check(
    answer: Result<Answer, Box<dyn std::error::Error + Send + Sync>>,
    allowed: bool,
) -> Result<(), String> {
    let (status, _, body) = answer.map_err(|e| format!("request failed: {e}"))?;
    if status != 200 {
        return Err(format!("status {status}"));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("answer is not JSON: {e}"))?;
    let got = v["status"]["allowed"]
        .as_bool()
        .or_else(|| v["response"]["allowed"].as_bool());
    if got != Some(allowed) {
        return Err(format!("wrong decision: {v}"));
    }
    Ok(())
}

fn metric(running: &Running, series: &str) -> f64 {
    let text = String::from_utf8(running.app.metrics().render()).unwrap();
    sample(&text, series).unwrap_or_else(|| panic!("{series} not rendered"))
}

// ---------------------------------------------------------------- attacks

/// What a rapid-reset round did.
#[derive(Debug)]
struct RapidReset {
    /// Streams the server took in: up to the last stream id of its GOAWAY,
    /// or every stream sent on a connection it kept open.
    streams: usize,
    connections: usize,
    /// GOAWAY error codes and debug texts received, and how often.
    goaways: BTreeMap<(u32, String), usize>,
    /// The last connection was not closed and answered a request after
    /// the attack's streams.
    kept_serving: bool,
    took: Duration,
}

/// CVE-2023-44487: complete reviews (HEADERS, DATA) each reset at once by
/// the client, written back to back, until the server has taken in
/// `streams` of them; reconnects whenever the server closes the
/// connection.
async fn rapid_reset(addr: SocketAddr, streams: usize) -> RapidReset {
    let body = image_review(&["nginx:1.25"]);
    let block = post_block("/imagepolicy", Some(body.len()));
    let started = Instant::now();
    let mut round = RapidReset {
        streams: 0,
        connections: 0,
        goaways: BTreeMap::new(),
        kept_serving: false,
        took: Duration::ZERO,
    };
    while round.streams < streams && started.elapsed() < DEADLINE {
        let mut conn = RawConn::open(addr).await.unwrap();
        round.connections += 1;
        let mut sent = 0;
        let mut id = 1u32;
        let mut closed = false;
        while round.streams + sent < streams && started.elapsed() < DEADLINE {
            let mut batch = Vec::new();
            for _ in 0..50 {
                headers(&mut batch, id, &block, false);
                data(&mut batch, id, body.as_bytes(), true);
                rst_stream(&mut batch, id, CANCEL);
                id += 2;
            }
            let written = conn.send(&batch).await;
            sent += 50;
            let seen = conn.seen();
            if !written || seen.goaway.is_some() || seen.closed {
                closed = true;
                break;
            }
        }
        if !closed {
            // The target is reached on a connection the server has not
            // closed (yet): a complete request on it tells whether it is
            // still serving or was about to be closed.
            let id = id + 2;
            let mut request = Vec::new();
            headers(&mut request, id, &block, false);
            data(&mut request, id, body.as_bytes(), true);
            let _ = conn.send(&request).await;
            let seen = conn
                .wait_for(DEADLINE, |s| s.ended.contains(&id) || s.goaway.is_some())
                .await;
            if seen.ended.contains(&id) && seen.goaway.is_none() {
                round.streams += sent;
                round.kept_serving = true;
                continue;
            }
        }
        let seen = conn.wait_closed(DEADLINE).await;
        assert!(
            seen.closed,
            "the server sent GOAWAY but kept the connection"
        );
        match seen.goaway {
            Some((last, code, debug)) => {
                let debug = String::from_utf8_lossy(&debug).into_owned();
                *round.goaways.entry((code, debug)).or_default() += 1;
                round.streams += (last as usize).div_ceil(2);
            }
            None => round.streams += sent,
        }
    }
    round.took = started.elapsed();
    round
}

/// A header block that never ends: HEADERS without END_HEADERS, then up
/// to `frames` small CONTINUATION frames (one header field each), none
/// with END_HEADERS. Returns what the server answered.
async fn continuation_flood(addr: SocketAddr, frames: usize) -> Seen {
    let mut conn = RawConn::open(addr).await.unwrap();
    let mut head = Vec::new();
    frame(&mut head, HEADERS, 0, 1, &post_block("/imagepolicy", None));
    let mut closed = !conn.send(&head).await;
    let mut field = Vec::new();
    literal(&mut field, b"x-a", b"a");
    let mut chunk = Vec::new();
    for _ in 0..1000 {
        frame(&mut chunk, CONTINUATION, 0, 1, &field);
    }
    let started = Instant::now();
    let mut sent = 0;
    while !closed && sent < frames && started.elapsed() < DEADLINE {
        closed = !conn.send(&chunk).await || conn.seen().closed;
        sent += 1000;
    }
    conn.wait_closed(DEADLINE).await
}

/// `frames` one-byte WINDOW_UPDATEs, half for the connection and half for
/// an open stream, then the stream's body: its answer must still come.
async fn window_update_flood(addr: SocketAddr, frames: usize) -> Seen {
    let mut conn = RawConn::open(addr).await.unwrap();
    let body = image_review(&["nginx:1.25"]);
    let mut head = Vec::new();
    headers(
        &mut head,
        1,
        &post_block("/imagepolicy", Some(body.len())),
        false,
    );
    assert!(conn.send(&head).await);
    let mut chunk = Vec::new();
    for _ in 0..2500 {
        window_update(&mut chunk, 0, 1);
        window_update(&mut chunk, 1, 1);
    }
    let started = Instant::now();
    let mut sent = 0;
    while sent < frames && started.elapsed() < DEADLINE {
        assert!(
            conn.send(&chunk).await,
            "connection closed during the flood"
        );
        sent += 5000;
    }
    let mut tail = Vec::new();
    data(&mut tail, 1, body.as_bytes(), true);
    assert!(conn.send(&tail).await);
    conn.wait_for(DEADLINE, |s| s.ended.contains(&1)).await
}

/// How one trickling connection ended.
#[derive(Debug, Clone, Copy)]
struct Trickled {
    /// Time from connect to the server closing it (`None`: still open when
    /// the trickler gave up).
    closed_after: Option<Duration>,
}

/// Connects and sends `head` one byte every `every` until the server
/// closes the connection or `give_up` passes.
async fn trickle(addr: SocketAddr, head: Vec<u8>, every: Duration, give_up: Duration) -> Trickled {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let mut sent = 0;
    let mut buf = [0u8; 512];
    loop {
        if started.elapsed() >= give_up {
            return Trickled { closed_after: None };
        }
        let byte = head[sent % head.len()];
        if stream.write_all(&[byte]).await.is_err() {
            break;
        }
        sent += 1;
        let sleep = tokio::time::sleep(every);
        tokio::pin!(sleep);
        // Anything the server sends (a 408) is read; EOF or a reset ends it.
        let closed = loop {
            tokio::select! {
                read = stream.read(&mut buf) => match read {
                    Ok(0) | Err(_) => break true,
                    Ok(_) => {}
                },
                () = &mut sleep => break false,
            }
        };
        if closed {
            break;
        }
    }
    Trickled {
        closed_after: Some(started.elapsed()),
    }
}

/// The trickled heads: most HTTP/1.1, one in six the HTTP/2 preface and a
/// SETTINGS frame (the server must tell the protocols apart first).
fn trickled_head(n: usize) -> Vec<u8> {
    if n % 6 == 5 {
        let mut head = PREFACE.to_vec();
        frame(&mut head, SETTINGS, 0, 0, &[]);
        head
    } else {
        format!(
            "POST /imagepolicy HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\nx-padding: {}\r\n",
            "a".repeat(2000)
        )
        .into_bytes()
    }
}

// ---------------------------------------------------------------- 1. rapid reset

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reset_is_cut_off_and_the_good_client_keeps_its_answers() {
    let server = start(config(&[])).await;
    let good = GoodClient::start(server.addr, NewConnections::Open).await;
    let before = good.answered();
    let round = rapid_reset(server.addr, RAPID_RESET_STREAMS).await;
    eprintln!(
        "rapid reset: {} streams on {} connections in {:?}, GOAWAY codes {:?}, last connection kept serving: {}",
        round.streams, round.connections, round.took, round.goaways, round.kept_serving
    );
    assert!(round.streams >= RAPID_RESET_STREAMS, "{round:?}");
    // A connection is either closed for it, with ENHANCE_YOUR_CALM (the
    // pending-accept reset limit), or still serving (checked in the round).
    // Batches of 50 reset streams arrive faster than they are taken in, so
    // the limit (20) is crossed on every connection but perhaps the last.
    let closed: usize = round.goaways.values().sum();
    assert!(
        closed + usize::from(round.kept_serving) == round.connections,
        "{round:?}"
    );
    assert!(closed >= 1, "{round:?}");
    for (code, debug) in round.goaways.keys() {
        assert_eq!(
            (*code, debug.as_str()),
            (ENHANCE_YOUR_CALM, "too_many_resets")
        );
    }
    let summary = good.assert_unharmed(before).await;
    eprintln!(
        "good client: {} answers, slowest {:?}",
        summary.answered, summary.max_latency
    );
    let (status, _, body) = once(
        server.addr,
        post("/imagepolicy", image_review(&["nginx:1.25"])),
    )
    .await;
    assert_eq!(status, 200);
    assert!(image_review_allowed(&body));
    server.stop().await;
}

// ---------------------------------------------------------------- 2. stream flood

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_past_max_concurrent_streams_are_refused() {
    let server = start(config(&["--body-read-timeout", "3s"])).await;
    let max = Limits::default().h2_max_concurrent_streams;
    let max_refused = Limits::default().h2_max_local_error_reset_streams;
    let good = GoodClient::start(server.addr, NewConnections::Open).await;
    let before = good.answered();

    // `max` streams that announce a body and never send it, then 100 more.
    let mut conn = RawConn::open(server.addr).await.unwrap();
    let block = post_block("/imagepolicy", Some(100));
    let mut flood = Vec::new();
    for n in 0..max + 100 {
        headers(&mut flood, 1 + 2 * n, &block, false);
    }
    assert!(conn.send(&flood).await);
    let seen = conn
        .wait_for(DEADLINE, |s| s.reset_with(REFUSED_STREAM) >= 100)
        .await;
    assert_eq!(seen.reset_with(REFUSED_STREAM), 100, "{seen:?}");
    let first_extra = 1 + 2 * max;
    for (id, code) in &seen.resets {
        assert!(
            *code == REFUSED_STREAM && *id >= first_extra,
            "{id}: {code}"
        );
    }
    assert!(seen.goaway.is_none() && !seen.closed, "{seen:?}");

    // The held streams end at the body-read timeout, which frees their
    // slots: a new stream on the same connection is answered.
    let seen = conn
        .wait_for(DEADLINE, |s| s.ended.len() >= max as usize)
        .await;
    assert!(seen.ended.len() >= max as usize, "{seen:?}");
    let body = image_review(&["nginx:1.25"]);
    let id = 1 + 2 * (max + 100);
    let mut request = Vec::new();
    headers(
        &mut request,
        id,
        &post_block("/imagepolicy", Some(body.len())),
        false,
    );
    data(&mut request, id, body.as_bytes(), true);
    assert!(conn.send(&request).await);
    let seen = conn.wait_for(DEADLINE, |s| s.ended.contains(&id)).await;
    assert!(seen.ended.contains(&id), "{seen:?}");
    assert!(seen.goaway.is_none(), "{seen:?}");
    // This client never answers the PING of a graceful GOAWAY: closed
    // here, it cannot hold up the drain at the end of the test.
    drop(conn);

    // Refusing forever is not free: past the local reset limit the
    // connection is closed with ENHANCE_YOUR_CALM.
    let mut conn = RawConn::open(server.addr).await.unwrap();
    let mut flood = Vec::new();
    for n in 0..max + 2 * max_refused as u32 {
        headers(&mut flood, 1 + 2 * n, &block, false);
    }
    let _ = conn.send(&flood).await;
    let seen = conn.wait_closed(DEADLINE).await;
    let refused = seen.reset_with(REFUSED_STREAM);
    eprintln!(
        "stream flood: {refused} streams refused, then {}",
        seen.goaway_text()
    );
    assert_eq!(seen.goaway_code(), Some(ENHANCE_YOUR_CALM), "{seen:?}");
    assert!(seen.closed);
    assert_eq!(refused, max_refused);
    good.assert_unharmed(before).await;
    server.stop().await;
}

// ---------------------------------------------------------------- 3. WINDOW_UPDATE

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_update_floods_are_absorbed_and_overflow_is_a_flow_control_error() {
    let server = start(config(&[])).await;
    let good = GoodClient::start(server.addr, NewConnections::Open).await;
    let before = good.answered();

    // 300,000 one-byte increments, then the request completes normally.
    let started = Instant::now();
    let seen = window_update_flood(server.addr, 300_000).await;
    eprintln!(
        "window update flood: 300000 frames absorbed in {:?}",
        started.elapsed()
    );
    assert!(seen.ended.contains(&1), "{seen:?}");
    assert!(seen.goaway.is_none() && seen.resets.is_empty(), "{seen:?}");

    // A stream window past 2^31-1: that stream is reset, the connection
    // keeps serving.
    let mut conn = RawConn::open(server.addr).await.unwrap();
    let mut frames = Vec::new();
    headers(
        &mut frames,
        1,
        &post_block("/imagepolicy", Some(100)),
        false,
    );
    window_update(&mut frames, 1, 0x7fff_ffff);
    assert!(conn.send(&frames).await);
    let seen = conn.wait_for(DEADLINE, |s| s.resets.contains_key(&1)).await;
    assert_eq!(seen.resets.get(&1), Some(&FLOW_CONTROL_ERROR), "{seen:?}");
    let body = image_review(&["nginx:1.25"]);
    let mut request = Vec::new();
    headers(
        &mut request,
        3,
        &post_block("/imagepolicy", Some(body.len())),
        false,
    );
    data(&mut request, 3, body.as_bytes(), true);
    assert!(conn.send(&request).await);
    let seen = conn.wait_for(DEADLINE, |s| s.ended.contains(&3)).await;
    assert!(seen.ended.contains(&3) && seen.goaway.is_none(), "{seen:?}");

    // The connection window past 2^31-1: a connection error.
    let mut overflow = Vec::new();
    window_update(&mut overflow, 0, 0x7fff_ffff);
    assert!(conn.send(&overflow).await);
    let seen = conn.wait_closed(DEADLINE).await;
    assert_eq!(seen.goaway_code(), Some(FLOW_CONTROL_ERROR), "{seen:?}");
    assert!(seen.closed, "{seen:?}");

    good.assert_unharmed(before).await;
    server.stop().await;
}

// ---------------------------------------------------------------- 4. header blocks

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_blocks_past_the_limit_and_continuation_floods_are_refused() {
    let server = start(config(&[])).await;
    let limit = Limits::default().h2_max_header_list_bytes as usize;
    let good = GoodClient::start(server.addr, NewConnections::Open).await;
    let before = good.answered();

    // A conforming client with 1.5 times the header-list limit: 431, and
    // its connection carries on.
    let mut conn = connect(server.addr, None, Proto::H2).await.unwrap();
    let mut big = post("/imagepolicy", image_review(&["nginx:1.25"]));
    for n in 0..limit * 3 / 2 / 1024 {
        big.headers_mut().insert(
            http::HeaderName::try_from(format!("x-pad-{n}")).unwrap(),
            http::HeaderValue::from_str(&"b".repeat(1000)).unwrap(),
        );
    }
    let (status, _, _) = conn.send(big).await.unwrap();
    assert_eq!(status, 431);
    let (status, _, body) = conn
        .send(post("/imagepolicy", image_review(&["nginx:1.25"])))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(image_review_allowed(&body));

    // One 1 MiB header block (HEADERS and 63 CONTINUATION frames, the
    // last with END_HEADERS): refused long before its end.
    let mut raw = RawConn::open(server.addr).await.unwrap();
    let mut block = post_block("/imagepolicy", None);
    for n in 0..1024 {
        literal(&mut block, format!("x-pad-{n}").as_bytes(), &[b'c'; 1000]);
    }
    let chunks: Vec<&[u8]> = block.chunks(MAX_FRAME).collect();
    let mut frames = Vec::new();
    for (n, chunk) in chunks.iter().enumerate() {
        let kind = if n == 0 { HEADERS } else { CONTINUATION };
        let flags = if n + 1 == chunks.len() {
            END_HEADERS
        } else {
            0
        };
        frame(&mut frames, kind, flags, 1, chunk);
    }
    let _ = raw.send(&frames).await;
    let seen = raw.wait_closed(DEADLINE).await;
    eprintln!("1 MiB header block: {}", seen.goaway_text());
    assert!(seen.closed, "{seen:?}");
    assert!(
        matches!(
            seen.goaway_code(),
            Some(ENHANCE_YOUR_CALM | COMPRESSION_ERROR)
        ),
        "{seen:?}"
    );
    assert!(!seen.responses.contains(&1), "{seen:?}");

    // CONTINUATION floods that never set END_HEADERS, 20 at once.
    let floods: Vec<_> = (0..20)
        .map(|_| tokio::spawn(continuation_flood(server.addr, 100_000)))
        .collect();
    for flood in floods {
        let seen = flood.await.unwrap();
        assert!(seen.closed, "{seen:?}");
        let (_, code, debug) = seen.goaway.clone().expect("GOAWAY");
        assert_eq!(code, ENHANCE_YOUR_CALM, "{seen:?}");
        assert_eq!(debug, b"too_many_continuations", "{seen:?}");
    }

    good.assert_unharmed(before).await;
    server.stop().await;
}

// ---------------------------------------------------------------- 5. slowloris

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_at_scale_and_a_connection_flood_past_the_cap() {
    // A cap just above the tricklers and the good client's two keep-alive
    // connections, so that the flood after them is what crosses it. With
    // the cap reached, a well-behaved client still gets answers on the
    // connections it holds (the apiserver keeps its pooled connections
    // alive); a new one it would open is refused like any other, which is
    // what the header-read timeout then undoes.
    const CAP: usize = TRICKLERS + 20;
    // Long enough that the flood is over before the first trickler is cut.
    const HEADER_TIMEOUT: Duration = Duration::from_secs(8);
    let cap = CAP.to_string();
    let server = start(config(&[
        "--max-connections",
        &cap,
        "--header-read-timeout",
        "8s",
    ]))
    .await;
    let good = GoodClient::start(server.addr, NewConnections::KeepAliveOnly).await;
    let before = good.answered();

    let tricklers: Vec<_> = (0..TRICKLERS)
        .map(|n| {
            tokio::spawn(trickle(
                server.addr,
                trickled_head(n),
                Duration::from_millis(250),
                HEADER_TIMEOUT * 3,
            ))
        })
        .collect();
    eventually("tricklers admitted", || async {
        metric(&server, "imagegate_connections_open") >= (TRICKLERS + 2) as f64
    })
    .await;

    // A burst of connections at once: those past the cap are closed at
    // once, none waits in (or is dropped from) the kernel's queue.
    const FLOOD: usize = 1000;
    let rejected_before = metric(&server, "imagegate_connections_rejected_total");
    let flood: Vec<_> = (0..FLOOD)
        .map(|_| {
            let addr = server.addr;
            tokio::spawn(async move {
                let started = Instant::now();
                let mut stream = TcpStream::connect(addr).await.unwrap();
                let mut buf = [0u8; 64];
                let read =
                    tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf)).await;
                // Closed without a byte: refused at accept. Still open: admitted.
                matches!(read, Ok(Ok(0) | Err(_))).then(|| started.elapsed())
            })
        })
        .collect();
    let mut refused = 0;
    let mut slowest_refusal = Duration::ZERO;
    for f in flood {
        if let Some(took) = f.await.unwrap() {
            refused += 1;
            slowest_refusal = slowest_refusal.max(took);
        }
    }
    let counted = metric(&server, "imagegate_connections_rejected_total") - rejected_before;
    let free = CAP - TRICKLERS - 2;
    eprintln!(
        "connection flood: {refused} of {FLOOD} refused at the cap ({free} slots were free), \
         the slowest told after {slowest_refusal:?}"
    );
    assert!(refused >= FLOOD - free, "{refused} refused");
    assert_eq!(counted, refused as f64);
    // A handshake the kernel dropped from a full queue is retried only
    // after the initial SYN retransmission timeout (1 s): told sooner, no
    // refused client was left to wait on that.
    assert!(
        slowest_refusal < Duration::from_secs(1),
        "{slowest_refusal:?}"
    );

    // Every trickler is cut by the header-read timeout, not by its own end.
    let mut slowest = Duration::ZERO;
    for t in tricklers {
        let t = t.await.unwrap();
        let closed = t.closed_after.expect("a trickler was never cut off");
        assert!(closed > HEADER_TIMEOUT - Duration::from_secs(1), "{t:?}");
        assert!(closed < HEADER_TIMEOUT * 2, "{t:?}");
        slowest = slowest.max(closed);
    }
    eprintln!("slowloris: {TRICKLERS} tricklers cut, the last after {slowest:?}");

    // Their slots are free again.
    eventually("slots freed", || async {
        metric(&server, "imagegate_connections_open") <= 2.0
    })
    .await;
    let (status, _, _) = once(
        server.addr,
        post("/imagepolicy", image_review(&["nginx:1.25"])),
    )
    .await;
    assert_eq!(status, 200);
    let summary = good.assert_unharmed(before).await;
    eprintln!(
        "good client: {} answers, slowest {:?}",
        summary.answered, summary.max_latency
    );
    server.stop().await;
}

// ---------------------------------------------------------------- 6. trickled bodies

/// A request body fed from a channel, one piece at a time.
struct Trickle(tokio::sync::mpsc::Receiver<Bytes>);

impl Body for Trickle {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_trickled_byte_by_byte_are_cut_by_the_body_timeout() {
    let server = start(config(&["--body-read-timeout", "1s"])).await;
    let good = GoodClient::start(server.addr, NewConnections::Open).await;
    let before = good.answered();
    let body = image_review(&["nginx:1.25"]);
    let started = Instant::now();

    // 60 HTTP/1.1 connections, one body byte every 100 ms: 2000 bytes would
    // take 200 s.
    let h1: Vec<_> = (0..60)
        .map(|_| {
            let addr = server.addr;
            let body = body.clone();
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                stream
                    .write_all(b"POST /imagepolicy HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 2000\r\n\r\n")
                    .await
                    .unwrap();
                let mut answer = Vec::new();
                let mut buf = [0u8; 1024];
                for byte in body.bytes().cycle().take(2000) {
                    if stream.write_all(&[byte]).await.is_err() {
                        break;
                    }
                    match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await {
                        Ok(Ok(0) | Err(_)) => break,
                        Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
                        Err(_) => {}
                    }
                }
                let _ = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut answer)).await;
                String::from_utf8_lossy(&answer).into_owned()
            })
        })
        .collect();

    // 40 HTTP/2 streams on one connection, trickled the same way.
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let h2: Vec<_> = (0..40)
        .map(|_| {
            let mut sender = sender.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let (tx, rx) = tokio::sync::mpsc::channel(1);
                let request = Request::post("http://localhost/imagepolicy")
                    .header("content-type", "application/json")
                    .body(Trickle(rx))
                    .unwrap();
                let feed = tokio::spawn(async move {
                    for byte in body.bytes().cycle().take(2000) {
                        if tx.send(Bytes::from(vec![byte])).await.is_err() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                });
                let response = sender.send_request(request).await.unwrap();
                let status = response.status();
                let _ = response.into_body().collect().await;
                feed.abort();
                status
            })
        })
        .collect();

    for answer in h1 {
        let answer = tokio::time::timeout(DEADLINE, answer)
            .await
            .unwrap()
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    for status in h2 {
        let status = tokio::time::timeout(DEADLINE, status)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status, 408);
    }
    let took = started.elapsed();
    eprintln!("trickled bodies: 60 HTTP/1.1 and 40 HTTP/2 cut in {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    good.assert_unharmed(before).await;
    server.stop().await;
}

// ---------------------------------------------------------------- 7. memory

/// The binary under test; `IMAGEGATE_TEST_BIN` points the test at another
/// build (a release binary, say).
fn binary() -> String {
    std::env::var("IMAGEGATE_TEST_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_imagegate").to_owned())
}

/// The served child process, killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `VmRSS`-style line of /proc/<pid>/status, in KiB.
fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The built binary serving on a free loopback port with `extra` flags,
/// and the address it reports in its start-up log line.
fn spawn_server(extra: &[&str]) -> (Child, SocketAddr) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(binary())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--log-filter",
            "info",
        ])
        .args(extra)
        .env_remove("RUST_LOG")
        .env_remove("IMAGEGATE_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn imagegate");
    let stderr = child.stderr.take().unwrap();
    let child = Child(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let addr: SocketAddr = loop {
        let line = rx.recv_timeout(DEADLINE).expect("imagegate serving");
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
            && v["message"] == "imagegate serving"
        {
            break v["listen"].as_str().unwrap().parse().unwrap();
        }
    };
    (child, addr)
}

/// Samples a process's resident memory every 50 ms until stopped; the
/// task's result is the highest sample, in KiB.
fn sample_peak_rss(pid: u32, sampling: Arc<AtomicBool>) -> JoinHandle<u64> {
    tokio::spawn(async move {
        let mut peak = 0;
        while sampling.load(Ordering::Relaxed) {
            peak = peak.max(proc_status_kib(pid, "VmRSS"));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        peak
    })
}

/// A request body that sends `total` bytes in 64 KiB chunks, then stalls
/// without ending: an upload that holds its buffer on the server.
struct Stalling {
    left: usize,
}

impl Body for Stalling {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        static CHUNK: [u8; 64 * 1024] = [b' '; 64 * 1024];
        if self.left == 0 {
            return Poll::Pending; // never woken: stalls for good
        }
        let n = self.left.min(CHUNK.len());
        self.left -= n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&CHUNK[..n])))))
    }
}

/// Many HTTP/2 connections each filling every stream it may open with a
/// body just under the size limit, never finished: without a budget for
/// bodies in memory, one connection alone made the server hold ~1 GiB.
/// With it, resident memory stays within the budget plus slack, the
/// uploads past it are answered 503 with Retry-After, and the server
/// answers normally once they are gone.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_uploads_are_held_to_the_body_budget() {
    const BUDGET_MIB: u64 = 64; // the default of --max-buffered-body-bytes
    const SLACK_MIB: u64 = 48;
    const CONNECTIONS: usize = 8;
    let (child, addr) = spawn_server(&["--body-read-timeout", "4s"]);
    let pid = child.0.id();
    let good = GoodClient::start(addr, NewConnections::KeepAliveOnly).await;
    good.wait_answers(30).await;
    let baseline = proc_status_kib(pid, "VmRSS");
    let sampling = Arc::new(AtomicBool::new(true));
    let peak = sample_peak_rss(pid, sampling.clone());

    let streams = Limits::default().h2_max_concurrent_streams as usize;
    let body_size = Limits::default().max_body_bytes - 1;
    let started = Instant::now();
    let mut uploads = Vec::new();
    for _ in 0..CONNECTIONS {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        for _ in 0..streams {
            let mut send = send.clone();
            let request = Request::post("/imagepolicy")
                .header("content-type", "application/json")
                .body(Stalling { left: body_size })
                .unwrap();
            uploads.push(tokio::spawn(async move {
                let response = send.send_request(request).await?;
                let retry_after = response.headers().contains_key("retry-after");
                Ok::<_, hyper::Error>((response.status().as_u16(), retry_after))
            }));
        }
    }
    let mut statuses = BTreeMap::new();
    for upload in uploads {
        match tokio::time::timeout(DEADLINE, upload).await {
            Ok(Ok(Ok((status, retry_after)))) => {
                if status == 503 {
                    assert!(retry_after, "a 503 without Retry-After");
                }
                *statuses.entry(status.to_string()).or_insert(0usize) += 1;
            }
            Ok(Ok(Err(e))) => *statuses.entry(format!("error: {e}")).or_insert(0) += 1,
            Ok(Err(e)) => panic!("upload task: {e}"),
            Err(_) => panic!("an upload got no answer within {DEADLINE:?}"),
        }
    }
    let took = started.elapsed();
    sampling.store(false, Ordering::Relaxed);
    let peak = peak.await.unwrap();
    let hwm = proc_status_kib(pid, "VmHWM");
    let before = good.answered();
    good.wait_answers(before + 5).await;
    let summary = good.finish().await;
    eprintln!(
        "uploads: {CONNECTIONS} connections x {streams} streams x {body_size} bytes, answered {statuses:?} \
         in {took:?}; RSS baseline {baseline} KiB, peak sampled {peak} KiB, high-water {hwm} KiB; \
         good client {} answers, failures {:?}, slowest {:?}",
        summary.answered, summary.failures, summary.max_latency
    );
    assert!(
        statuses.get("503").copied().unwrap_or(0) > 0,
        "the budget was never reached: {statuses:?}"
    );
    for status in statuses.keys() {
        assert!(
            status == "503" || status == "408",
            "an upload got {status}: {statuses:?}"
        );
    }
    let bound = (BUDGET_MIB + SLACK_MIB) * 1024;
    assert!(
        peak.max(hwm) < baseline + bound,
        "peak {} KiB over baseline {baseline} KiB",
        peak.max(hwm)
    );
    // The well-behaved client may be told 503 while the budget is spent
    // (it retries; the apiserver's failurePolicy decides), never anything
    // else, and it is answered again afterwards.
    for failure in &summary.failures {
        assert!(failure.starts_with("status 503"), "{:?}", summary.failures);
    }
    drop(child);
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resident_memory_stays_bounded_through_a_combined_abuse_round() {
    const BOUND_MIB: u64 = 64;
    let (child, addr) = spawn_server(&["--header-read-timeout", "3s"]);
    let pid = child.0.id();

    // Warm up on ordinary traffic, then take the baseline.
    let good = GoodClient::start(addr, NewConnections::Open).await;
    good.wait_answers(60).await;
    let baseline = proc_status_kib(pid, "VmRSS");
    let before = good.answered();

    let sampling = Arc::new(AtomicBool::new(true));
    let peak = sample_peak_rss(pid, sampling.clone());
    let started = Instant::now();
    let tricklers: Vec<_> = (0..TRICKLERS)
        .map(|n| {
            tokio::spawn(trickle(
                addr,
                trickled_head(n),
                Duration::from_millis(250),
                Duration::from_secs(15),
            ))
        })
        .collect();
    let floods: Vec<_> = (0..20)
        .map(|_| tokio::spawn(continuation_flood(addr, 100_000)))
        .collect();
    let (reset, window) = tokio::join!(
        rapid_reset(addr, RAPID_RESET_STREAMS),
        window_update_flood(addr, 300_000)
    );
    assert!(reset.streams >= RAPID_RESET_STREAMS, "{reset:?}");
    assert!(window.ended.contains(&1), "{window:?}");
    for flood in floods {
        assert_eq!(flood.await.unwrap().goaway_code(), Some(ENHANCE_YOUR_CALM));
    }
    for t in tricklers {
        assert!(
            t.await.unwrap().closed_after.is_some(),
            "a trickler was never cut off"
        );
    }
    let took = started.elapsed();
    sampling.store(false, Ordering::Relaxed);
    let peak = peak.await.unwrap();
    let after = proc_status_kib(pid, "VmRSS");
    let hwm = proc_status_kib(pid, "VmHWM");
    let summary = good.assert_unharmed(before).await;
    eprintln!(
        "RSS: baseline {baseline} KiB, peak sampled {peak} KiB, high-water {hwm} KiB, after {after} KiB \
         (round of {took:?}: {} reset streams on {} connections, 20 CONTINUATION floods, \
         300000 WINDOW_UPDATEs, {TRICKLERS} tricklers; good client {} answers, slowest {:?})",
        reset.streams, reset.connections, summary.answered, summary.max_latency
    );
    let bound = BOUND_MIB * 1024;
    assert!(
        peak.max(hwm) < baseline + bound,
        "peak {} KiB over baseline {baseline} KiB",
        peak.max(hwm)
    );
    assert!(
        after < baseline + bound,
        "after {after} KiB over baseline {baseline} KiB"
    );
    drop(child);
}
