//! A closed-loop load driver that speaks HTTP/2 (hyper over rustls) and
//! HTTP/3 (h3 over quinn) with the same request, the same concurrency
//! model and the same measurement, so `loadtest/h3.sh` compares the two
//! listeners of one imagegate process rather than two load tools.
//!
//! `--connections C --streams S`: C connections, each with S requests in
//! flight; each stream sends its next request when the previous answer has
//! been read. Requests finishing during `--warmup` are not recorded. One
//! JSON line on stdout: requests, errors, requests per second, latency
//! percentiles in milliseconds.
//!
//! A load tool, not a client library; it trusts only the given CA.

// A stand-alone tool whose only output is its result line and fatal errors.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::{Buf, Bytes};
use clap::{Parser, ValueEnum};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Proto {
    H2,
    H3,
}

#[derive(Debug, Parser)]
#[command(about = "closed-loop HTTP/2 and HTTP/3 load driver for imagegate")]
struct Args {
    /// Protocol: h2 (TCP + TLS) or h3 (QUIC).
    #[arg(long, value_enum)]
    proto: Proto,
    /// Server address (TCP for h2, UDP for h3).
    #[arg(long)]
    addr: SocketAddr,
    /// PEM CA that signed the server certificate.
    #[arg(long)]
    ca: PathBuf,
    /// TLS server name.
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// Request path.
    #[arg(long, default_value = "/imagepolicy?timeout=30s")]
    path: String,
    /// Request body (JSON) file.
    #[arg(long)]
    body: PathBuf,
    /// Connections.
    #[arg(long, default_value_t = 3)]
    connections: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 21)]
    streams: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Unrecorded seconds before the measurement.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// h3 only: route each connection through an in-process UDP relay that
    /// drops this percentage of datagrams in each direction.
    #[arg(long, default_value_t = 0)]
    loss: u64,
}

fn client_tls(args: &Args, alpn: &[u8]) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&args.ca).context("reading --ca")? {
        roots.add(cert.context("parsing --ca")?)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}

/// What one stream recorded.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
}

struct Clock {
    record_from: Instant,
    stop_at: Instant,
}

fn uri(args: &Args) -> String {
    format!(
        "https://{}:{}{}",
        args.server_name,
        args.addr.port(),
        args.path
    )
}

async fn h2_connection(args: Arc<Args>, body: Bytes, clock: Arc<Clock>) -> anyhow::Result<Tally> {
    let tls = tokio_rustls::TlsConnector::from(Arc::new(client_tls(&args, b"h2")?));
    let tcp = tokio::net::TcpStream::connect(args.addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from(args.server_name.clone())?;
    let stream = tls.connect(name, tcp).await?;
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut streams = tokio::task::JoinSet::new();
    for _ in 0..args.streams {
        let (mut sender, body, clock, uri) =
            (sender.clone(), body.clone(), clock.clone(), uri(&args));
        streams.spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < clock.stop_at {
                let started = Instant::now();
                let request = Request::post(uri.as_str())
                    .header("content-type", "application/json")
                    .body(Full::new(body.clone()))
                    .expect("static request parts are valid");
                let ok = async {
                    sender.ready().await?;
                    let response = sender.send_request(request).await?;
                    let status = response.status();
                    response.into_body().collect().await?;
                    anyhow::Ok(status == 200)
                }
                .await;
                record(&mut tally, &clock, started, matches!(ok, Ok(true)));
            }
            tally
        });
    }
    Ok(merge(streams.join_all().await))
}

async fn h3_connection(args: Arc<Args>, body: Bytes, clock: Arc<Clock>) -> anyhow::Result<Tally> {
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(client_tls(&args, b"h3")?)?;
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    let target = if args.loss > 0 {
        lossy_relay(args.addr, args.loss).await?
    } else {
        args.addr
    };
    let conn = endpoint
        .connect(target, &args.server_name)?
        .await
        .context("QUIC handshake")?;
    let (mut driver, sender) = h3::client::new(h3_quinn::Connection::new(conn)).await?;
    tokio::spawn(async move {
        let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
    });
    let mut streams = tokio::task::JoinSet::new();
    for _ in 0..args.streams {
        let (mut sender, body, clock, uri) =
            (sender.clone(), body.clone(), clock.clone(), uri(&args));
        streams.spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < clock.stop_at {
                let started = Instant::now();
                let request = Request::post(uri.as_str())
                    .header("content-type", "application/json")
                    .header("content-length", body.len())
                    .body(())
                    .expect("static request parts are valid");
                let ok = async {
                    let mut stream = sender.send_request(request).await?;
                    stream.send_data(body.clone()).await?;
                    stream.finish().await?;
                    let response = stream.recv_response().await?;
                    while let Some(mut chunk) = stream.recv_data().await? {
                        chunk.advance(chunk.remaining());
                    }
                    anyhow::Ok(response.status() == 200)
                }
                .await;
                record(&mut tally, &clock, started, matches!(ok, Ok(true)));
            }
            tally
        });
    }
    let tally = merge(streams.join_all().await);
    endpoint.close(0u32.into(), b"done");
    Ok(tally)
}

/// Records one answer; `ok` is a 200 read to its end.
/// A loopback UDP relay to `server` that drops `percent`% of the datagrams
/// each way (xorshift, fixed seed: the same pattern every run); returns the
/// address to send to. Runs until the process ends.
async fn lossy_relay(server: SocketAddr, percent: u64) -> anyhow::Result<SocketAddr> {
    let front = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let back = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    back.connect(server).await?;
    let addr = front.local_addr()?;
    tokio::spawn(async move {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut lose = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % 100 < percent
        };
        let mut client = None;
        let (mut up, mut down) = (vec![0u8; 65536], vec![0u8; 65536]);
        loop {
            tokio::select! {
                Ok((n, from)) = front.recv_from(&mut up) => {
                    client = Some(from);
                    if !lose() {
                        let _ = back.send(&up[..n]).await;
                    }
                }
                Ok(n) = back.recv(&mut down) => {
                    if let Some(client) = client && !lose() {
                        let _ = front.send_to(&down[..n], client).await;
                    }
                }
            }
        }
    });
    Ok(addr)
}

fn record(tally: &mut Tally, clock: &Clock, started: Instant, ok: bool) {
    if started < clock.record_from {
        return;
    }
    if ok {
        let us = started.elapsed().as_micros();
        tally
            .latencies_us
            .push(u32::try_from(us).unwrap_or(u32::MAX));
    } else {
        tally.errors += 1;
    }
}

fn merge(parts: Vec<Tally>) -> Tally {
    let mut all = Tally::default();
    for part in parts {
        all.latencies_us.extend(part.latencies_us);
        all.errors += part.errors;
    }
    all
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    if args.connections == 0 || args.streams == 0 || args.duration == 0 {
        bail!("--connections, --streams and --duration must be positive");
    }
    if args.loss >= 100 || (args.loss > 0 && args.proto != Proto::H3) {
        bail!("--loss is a percentage below 100, for --proto h3 only");
    }
    let body = Bytes::from(std::fs::read(&args.body).context("reading --body")?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let tally = runtime.block_on(async {
        let start = Instant::now();
        let clock = Arc::new(Clock {
            record_from: start + Duration::from_secs(args.warmup),
            stop_at: start + Duration::from_secs(args.warmup + args.duration),
        });
        let mut connections = tokio::task::JoinSet::new();
        for _ in 0..args.connections {
            let (args, body, clock) = (args.clone(), body.clone(), clock.clone());
            connections.spawn(async move {
                match args.proto {
                    Proto::H2 => h2_connection(args, body, clock).await,
                    Proto::H3 => h3_connection(args, body, clock).await,
                }
            });
        }
        let mut parts = Vec::new();
        for result in connections.join_all().await {
            parts.push(result?);
        }
        anyhow::Ok(merge(parts))
    })?;
    let mut sorted = tally.latencies_us;
    sorted.sort_unstable();
    let seconds = args.duration as f64;
    println!(
        "{}",
        serde_json::json!({
            "proto": match args.proto { Proto::H2 => "h2", Proto::H3 => "h3" },
            "loss_percent": args.loss,
            "connections": args.connections,
            "streams": args.streams,
            "seconds": seconds,
            "requests": sorted.len(),
            "errors": tally.errors,
            "rps": sorted.len() as f64 / seconds,
            "p50_ms": percentile(&sorted, 50.0),
            "p90_ms": percentile(&sorted, 90.0),
            "p99_ms": percentile(&sorted, 99.0),
            "max_ms": percentile(&sorted, 100.0),
        })
    );
    Ok(())
}
