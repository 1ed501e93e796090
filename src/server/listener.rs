//! Accepting TCP connections and serving HTTP/1.1 and HTTP/2 on them, with
//! TLS when configured, inside the connection limits.
//!
//! Limits enforced here, per connection:
//! - a deep listen backlog ([`LISTEN_BACKLOG`]), so that a burst of
//!   connections reaches the accept loop (and the cap) instead of being
//!   dropped by the kernel;
//! - a cap on open connections (all listeners together). Past it a new
//!   connection is accepted and closed at once, and counted. Closing beats
//!   leaving it in the kernel's backlog: the client learns immediately (the
//!   ImagePolicyWebhook client retries a reset connection with back-off, an
//!   admission webhook call fails over to its `failurePolicy`) instead of
//!   spending its whole deadline waiting, and the overload shows in
//!   `imagegate_connections_rejected_total` rather than nowhere;
//! - the header-read timeout bounds the TLS handshake, the wait for the
//!   first request (also for HTTP/2, and for the protocol sniffing before
//!   HTTP/1 or HTTP/2 is known), each HTTP/1.1 request head, and the
//!   HTTP/1.1 keep-alive idle time (one timer per connection, not hyper's
//!   per head: [`Watchdog`]);
//! - head size and header count (HTTP/1.1), `MAX_CONCURRENT_STREAMS` and
//!   `MAX_HEADER_LIST_SIZE` and keep-alive pings (HTTP/2);
//! - HTTP/2 reset-stream limits: streams the client resets before they are
//!   taken in (rapid reset) and streams the server resets for the client's
//!   errors (refused past `MAX_CONCURRENT_STREAMS`, malformed) each close
//!   the connection past their count. h2 itself bounds a header block's
//!   CONTINUATION frames by `MAX_HEADER_LIST_SIZE`.
//!
//! The handler is a plain async function from request to response; it
//! never sees sockets, and routing lives in [`routes`](super::routes).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt as _;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use prometheus::{IntCounter, IntGauge};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

mod signal;
mod watchdog;

use signal::{Draining, Signal};
use watchdog::{Activity, Watchdog};

use super::config::Limits;
use super::limits::GaugeGuard;
use super::streams::{self, StreamExecutor};
use super::tls::TlsState;

/// Connections the kernel completes and queues before the accept loop
/// takes them. The usual 128 overflows in a burst (a connection flood, or
/// every apiserver reconnecting at once), and an overflow is a dropped
/// handshake that the client retries only after a second or more, even
/// with slots free. A deep queue lets the accept loop see each connection
/// and admit it or close it at once. The kernel caps it at
/// `net.core.somaxconn` (4096 since Linux 5.4).
const LISTEN_BACKLOG: u32 = 4096;

/// A TCP listener on `addr` with a [`LISTEN_BACKLOG`]-deep queue.
pub(crate) fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restarted server rebinds at once.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// What every connection of a server shares.
pub(crate) struct Shared {
    /// The HTTP/1.1 and HTTP/2 settings every connection is served with.
    limits: Limits,
    permits: Arc<Semaphore>,
    header_timeout: Duration,
    open: IntGauge,
    rejected: IntCounter,
    /// The TCP series of the per-transport open-connections gauge.
    transport_open: Option<IntGauge>,
    /// Raised when the drain starts: every connection finishes its
    /// in-flight requests and closes.
    drain: Signal,
    /// Raised when the grace period is over: every connection closes at once.
    abort: Signal,
}

impl Shared {
    pub(crate) fn new(limits: &Limits, open: IntGauge, rejected: IntCounter) -> Shared {
        Shared {
            limits: limits.clone(),
            permits: Arc::new(Semaphore::new(limits.max_connections)),
            header_timeout: limits.header_read_timeout,
            open,
            rejected,
            transport_open: None,
            drain: Signal::default(),
            abort: Signal::default(),
        }
    }

    /// The connection builder of one connection, whose HTTP/2 streams run
    /// in that connection's task (see [`streams`](super::streams)).
    fn builder(&self, streams: StreamExecutor) -> auto::Builder<StreamExecutor> {
        let limits = &self.limits;
        let mut builder = auto::Builder::new(streams);
        builder
            .http1()
            .keep_alive(true)
            // One buffer per response (head and body copied together):
            // rustls takes a vectored write by collecting its slices into
            // a new `Vec` each time, and a review's answer is small.
            .writev(false)
            // The connection's `Watchdog` bounds each head instead.
            .header_read_timeout(None)
            // hyper's floor for its read buffer is 8 KiB.
            .max_buf_size(limits.max_header_bytes.max(8192))
            .max_headers(limits.max_headers);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(limits.h2_max_concurrent_streams)
            .max_header_list_size(limits.h2_max_header_list_bytes)
            .max_pending_accept_reset_streams(limits.h2_max_pending_accept_reset_streams)
            .max_local_error_reset_streams(limits.h2_max_local_error_reset_streams)
            .keep_alive_interval(limits.h2_keep_alive_interval)
            .keep_alive_timeout(limits.h2_keep_alive_timeout);
        builder
    }

    /// Also counts this server's open TCP connections in the given
    /// per-transport gauge.
    pub(crate) fn with_transport_gauge(mut self, open: IntGauge) -> Shared {
        self.transport_open = Some(open);
        self
    }

    /// A slot under the connection cap, which every listener shares (the
    /// HTTP/3 listener too); `None` when the cap is reached.
    pub(crate) fn try_admit(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }

    /// Slots left under the connection cap.
    pub(crate) fn free_slots(&self) -> usize {
        self.permits.available_permits()
    }

    /// Asks every connection to close once its in-flight requests are
    /// answered (HTTP/2: GOAWAY; HTTP/1.1: no keep-alive).
    pub(crate) fn drain_all(&self) {
        self.drain.raise();
    }

    /// Closes every connection now, in-flight requests included.
    pub(crate) fn abort_all(&self) {
        self.abort.raise();
    }
}

/// Accepts connections until the future is dropped; each connection runs
/// in its own task, watched by `graceful` so a drain can wait for it.
pub(crate) async fn accept_loop<H, Fut>(
    listener: TcpListener,
    tls: Option<Arc<TlsState>>,
    shared: Arc<Shared>,
    graceful: &GracefulShutdown,
    handler: H,
) where
    H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Per-connection failures (reset before accept) are noise;
                // anything else (EMFILE...) gets a pause so the loop does
                // not spin while the condition lasts.
                if !is_connection_error(&error) {
                    tracing::error!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                continue;
            }
        };
        let Some(permit) = shared.try_admit() else {
            shared.rejected.inc();
            tracing::debug!(%peer, "connection limit reached, closing new connection");
            drop(stream);
            continue;
        };
        let tls = tls.as_ref().map(|t| t.config());
        let watcher = graceful.watcher();
        tokio::spawn(connection(
            stream,
            peer,
            tls,
            shared.clone(),
            watcher,
            permit,
            handler.clone(),
        ));
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset | Interrupted
    )
}

async fn connection<H, Fut>(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    shared: Arc<Shared>,
    watcher: Watcher,
    permit: OwnedSemaphorePermit,
    handler: H,
) where
    H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let _permit = permit;
    let _open = GaugeGuard::new(&shared.open);
    let _transport_open = shared.transport_open.as_ref().map(GaugeGuard::new);
    // Reviews are small request/response exchanges: send at once.
    let _ = stream.set_nodelay(true);
    match tls {
        None => serve(TokioIo::new(stream), &shared, watcher, handler).await,
        Some(config) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            match tokio::time::timeout(shared.header_timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => serve(TokioIo::new(stream), &shared, watcher, handler).await,
                Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}

/// Serves one connection. `watcher` is held until the connection ends, so
/// that the drain can wait for it; the drain itself is signalled through
/// [`Shared::drain_all`].
async fn serve<I, H, Fut>(io: I, shared: &Shared, watcher: Watcher, handler: H)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let activity = Arc::new(Activity::default());
    let service = hyper::service::service_fn({
        let activity = activity.clone();
        move |request: Request<Incoming>| {
            activity.start(request.version());
            let answered = activity.clone();
            // A combinator, not an `async` block: the block would hold the
            // handler's future twice (captured, then awaited).
            handler(request).map(move |response| {
                answered.answer();
                Ok::<_, Infallible>(response)
            })
        }
    });
    let streams = streams::executor();
    let builder = shared.builder(streams.clone());
    let _watcher = watcher;
    let conn = streams.drive(Draining::new(
        builder.serve_connection(io, service),
        shared.drain.raised(),
        auto::Connection::graceful_shutdown,
    ));
    let watchdog = Watchdog::new(shared.header_timeout, activity);
    // Polled in this order on every wake-up of the connection (one per
    // request over HTTP/1.1): the connection first (a request it starts is
    // seen by the watchdog in the same wake-up), then the guards.
    tokio::select! {
        biased;
        result = conn => {
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
        }
        () = shared.abort.raised() => tracing::debug!("connection aborted at the end of the grace period"),
        () = watchdog => tracing::debug!("no request within the header-read timeout, closing"),
    }
}

#[cfg(test)]
mod tests;
