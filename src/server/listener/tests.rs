use super::*;
use crate::server::limits::isolate;
use http_body_util::BodyExt;
use hyper_util::rt::TokioExecutor;

fn test_shared(limits: &Limits) -> Arc<Shared> {
    Arc::new(Shared::new(
        limits,
        IntGauge::new("open", "open").unwrap(),
        IntCounter::new("rejected", "rejected").unwrap(),
    ))
}

/// A handler that panics on `/panic`, wrapped the way the server wraps
/// its own: only the panicking request fails.
async fn panicky(req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    match isolate(async move {
        if path == "/panic" {
            panic!("test-only panic");
        }
        Response::new(Full::new(Bytes::from_static(b"ok")))
    })
    .await
    {
        Ok(response) => response,
        Err(_) => {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_costs_one_request_not_the_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shared = test_shared(&Limits::default());
    let graceful = GracefulShutdown::new();
    let server = async { accept_loop(listener, None, shared, &graceful, panicky).await };
    let client = async {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let get = |path: &'static str| {
            let mut send = send.clone();
            let req = Request::get(path).body(Full::new(Bytes::new())).unwrap();
            async move { send.send_request(req).await }
        };
        // Concurrent streams on one connection: one panics.
        let (a, b, c) = tokio::join!(get("/a"), get("/panic"), get("/c"));
        assert_eq!(a.unwrap().status(), 200);
        assert_eq!(b.unwrap().status(), 500);
        assert_eq!(c.unwrap().status(), 200);
        // ...and the same connection still serves afterwards.
        let d = send
            .send_request(Request::get("/d").body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap();
        assert_eq!(d.status(), 200);
        assert_eq!(d.into_body().collect().await.unwrap().to_bytes(), "ok");
    };
    tokio::select! {
        () = server => unreachable!("the accept loop runs until dropped"),
        () = client => {}
        () = tokio::time::sleep(Duration::from_secs(20)) => panic!("test timed out"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_are_closed_and_counted() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = Limits {
        max_connections: 1,
        ..Limits::default()
    };
    let shared = test_shared(&limits);
    let rejected = shared.rejected.clone();
    let graceful = GracefulShutdown::new();
    let server = async { accept_loop(listener, None, shared, &graceful, panicky).await };
    let client = async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut first = TcpStream::connect(addr).await.unwrap();
        first
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        first.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        // The first connection is still open: the second is refused.
        let mut second = TcpStream::connect(addr).await.unwrap();
        let mut rest = Vec::new();
        let n = second.read_to_end(&mut rest).await.unwrap_or(0);
        assert_eq!(n, 0, "the over-cap connection is closed without an answer");
        assert_eq!(rejected.get(), 1);
        drop(first);
        // Once the first closes, its slot is free again.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mut third = TcpStream::connect(addr).await.unwrap();
            third
                .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut answer = Vec::new();
            let _ = third.read_to_end(&mut answer).await;
            if answer.starts_with(b"HTTP/1.1 200") {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "slot never freed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        () = server => unreachable!(),
        () = client => {}
        () = tokio::time::sleep(Duration::from_secs(20)) => panic!("test timed out"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_after_the_header_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let shared = test_shared(&limits);
    let graceful = GracefulShutdown::new();
    let server = async { accept_loop(listener, None, shared, &graceful, panicky).await };
    let client = async {
        use tokio::io::AsyncReadExt;
        // Nothing sent at all: not even enough to tell HTTP/1 from HTTP/2.
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let started = tokio::time::Instant::now();
        let mut buf = Vec::new();
        let _ = silent.read_to_end(&mut buf).await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(250), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    };
    tokio::select! {
        () = server => unreachable!(),
        () = client => {}
        () = tokio::time::sleep(Duration::from_secs(20)) => panic!("test timed out"),
    }
}

/// After requests, the header-read timeout (the connection's [`Watchdog`]) bounds
/// the keep-alive idle time and a trickled head, while requests that keep
/// coming for longer than the timeout are all served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_requests_an_idle_or_trickling_connection_is_closed_after_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const TIMEOUT: Duration = Duration::from_millis(500);
    const GET: &[u8] = b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n";
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = Limits {
        header_read_timeout: TIMEOUT,
        ..Limits::default()
    };
    let shared = test_shared(&limits);
    let graceful = GracefulShutdown::new();
    let server = async { accept_loop(listener, None, shared, &graceful, panicky).await };
    async fn answer(stream: &mut TcpStream) {
        let mut seen = Vec::new();
        let mut buf = [0u8; 512];
        while !seen.ends_with(b"ok") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "closed early after {}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&buf[..n]);
        }
        assert!(seen.starts_with(b"HTTP/1.1 200"), "{seen:?}");
    }
    async fn closed_after(stream: &mut TcpStream, started: tokio::time::Instant) -> Duration {
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
        started.elapsed()
    }
    let client = async {
        // Requests 100 ms apart for 1.5 s, three times the timeout: each
        // head has its own deadline, none is cut by an earlier one.
        let mut busy = TcpStream::connect(addr).await.unwrap();
        for i in 0..16 {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            busy.write_all(GET).await.unwrap();
            answer(&mut busy).await;
        }
        // Then idle: closed one timeout after the last answer. (The
        // server's deadline starts as it writes the answer, a little
        // before the client has read it.)
        let started = tokio::time::Instant::now();
        let waited = closed_after(&mut busy, started).await;
        assert!(waited >= TIMEOUT * 4 / 5, "{waited:?}");
        assert!(waited < TIMEOUT * 8, "{waited:?}");

        // A second request's head trickled a byte at a time.
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(GET).await.unwrap();
        answer(&mut slow).await;
        let started = tokio::time::Instant::now();
        let trickle = async {
            for byte in GET.iter().cycle().take(200) {
                if slow.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(10), trickle).await;
        let waited = closed_after(&mut slow, started).await;
        assert!(waited >= TIMEOUT * 4 / 5, "{waited:?}");
        assert!(waited < TIMEOUT * 8, "{waited:?}");
    };
    tokio::select! {
        () = server => unreachable!(),
        () = client => {}
        () = tokio::time::sleep(Duration::from_secs(30)) => panic!("test timed out"),
    }
}
