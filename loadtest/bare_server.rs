//! The load test's upper bound: a bare hyper + rustls server on the same stack
//! as imagegate's listener that answers every request with a fixed, allowed
//! ImageReview.
//!
//! It does what any webhook must do and nothing more: terminate TLS (ring,
//! ALPN `h2` and `http/1.1`), serve HTTP/1.1 and HTTP/2 through hyper-util's
//! auto builder (HTTP/1.1 keep-alive on, hyper's defaults, the same HTTP/2
//! stream limit as imagegate), read the whole request body (with the same
//! 3 MiB cap), and write a small JSON answer. No routing, no decoding, no
//! policy, no metrics, no timeouts. `loadtest/run.sh` drives it with the
//! same load as `imagegate serve`.
//!
//! Two ways to run it. By default each HTTP/2 stream is a task of its own,
//! as hyper does out of the box: the reference the targets are set against.
//! With `--inline-streams` each connection runs its streams in its own
//! task, as imagegate does (`imagegate::server::streams`): the limit of
//! imagegate's own stack, so the ratio to that run is the cost of
//! everything imagegate adds on top of it (routing, decoding, policy,
//! encoding, metrics, logging).
//!
//! It must not be used as a webhook: it allows everything.

// A stand-alone tool whose only output is a start-up line and fatal errors.
#![allow(clippy::print_stderr)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use clap::Parser;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The answer to every request: what imagegate sends for an allowed review.
const ALLOWED: &[u8] = br#"{"apiVersion":"imagepolicy.k8s.io/v1alpha1","kind":"ImageReview","status":{"allowed":true}}"#;

/// The same request body cap as imagegate's default.
const BODY_LIMIT: usize = 3 * 1024 * 1024;

/// Command line of the bare comparison server.
#[derive(Debug, Parser)]
#[command(
    name = "bare_server",
    about = "Fixed-answer hyper + rustls server (load-test limit)"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8444")]
    listen: SocketAddr,
    /// PEM certificate chain.
    #[arg(long)]
    tls_cert: PathBuf,
    /// PEM private key.
    #[arg(long)]
    tls_key: PathBuf,
    /// Run each connection's HTTP/2 streams inside the connection's task,
    /// as imagegate does (`imagegate::server::streams`), instead of hyper's
    /// default of a task per stream: the limit of imagegate's own stack.
    #[arg(long)]
    inline_streams: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tls = tls_config(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(async {
        tokio::select! {
            served = serve(args.listen, tls, args.inline_streams) => served,
            stopped = stop_signal() => stopped,
        }
    })
}

/// SIGTERM or SIGINT. The server then returns from `main`, so that the
/// process exits normally (a profiling build writes its profile at exit).
async fn stop_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    eprintln!("bare_server stopping");
    Ok(())
}

fn tls_config(args: &Args) -> anyhow::Result<Arc<ServerConfig>> {
    let certs = CertificateDer::pem_file_iter(&args.tls_cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("cannot read certificates from {}", args.tls_cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&args.tls_key).with_context(|| {
        format!(
            "cannot read the private key from {}",
            args.tls_key.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("no usable TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

async fn serve(addr: SocketAddr, tls: Arc<ServerConfig>, inline: bool) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    eprintln!(
        "bare_server listening on https://{}",
        listener.local_addr()?
    );
    let acceptor = TlsAcceptor::from(tls);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The one protocol-visible setting imagegate changes from hyper's
    // defaults that a load can meet; its timeouts and keep-alive pings are
    // protection, part of what the comparison measures.
    builder.http2().max_concurrent_streams(256);
    let builder = Arc::new(builder);
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(conn) => conn,
            // Out of file descriptors and the like: back off, keep serving the others.
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        // Small JSON answers on keep-alive connections: Nagle would only add latency.
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let builder = Arc::clone(&builder);
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            if inline {
                let streams = imagegate::server::streams::executor();
                let mut builder = auto::Builder::new(streams.clone());
                builder.http2().max_concurrent_streams(256);
                let conn = builder.serve_connection(TokioIo::new(stream), service_fn(answer));
                let _ = streams.drive(conn).await;
            } else {
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service_fn(answer))
                    .await;
            }
        });
    }
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read the whole body, as the real server must before it can decode it.
    let response = match Limited::new(request.into_body(), BODY_LIMIT)
        .collect()
        .await
    {
        Ok(body) => {
            let body = body.to_bytes();
            std::hint::black_box(&body);
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from_static(ALLOWED)))
        }
        Err(_) => Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(Full::new(Bytes::new())),
    };
    Ok(response.unwrap_or_default())
}
