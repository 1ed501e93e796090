//! The HTTP/3 listener (`--http3-listen`): quinn for QUIC, h3 for HTTP/3,
//! serving the same [`App`] as the TCP listener.
//!
//! What it shares with the TCP listener:
//! - TLS: the TCP listener's current rustls `ServerConfig` is cloned with
//!   ALPN `h3`, so the certificate resolver (and its hot rotation) and the
//!   client-certificate verifier (mTLS) are the same objects; a new client
//!   CA is picked up at the next connection;
//! - the connection cap (one semaphore for every listener; a QUIC
//!   connection past it is refused at once and counted in
//!   `imagegate_connections_rejected_total`), and the open-connection
//!   gauges (`transport="quic"` in the per-transport one);
//! - request handling: each request's head and body become the same
//!   `Request` the TCP listener produces, handled by [`App::handle`], so
//!   routes, body size and time limits, status codes and metrics are one
//!   implementation;
//! - drain: [`H3Listener::stop_accepting`] refuses new connections and
//!   sends `GOAWAY` on open ones; in-flight requests finish, and
//!   [`H3Listener::close_all`] ends whatever is left at the end of the
//!   grace period.
//!
//! QUIC-specific limits: a Retry (address validation) before a new
//! connection is admitted while fewer than half the connection slots are
//! free, `h2_max_concurrent_streams` request streams per
//! connection, a header section of at most `h2_max_header_list_bytes`, the
//! handshake and the first request within `header_read_timeout`, and an
//! idle timeout of `h2_keep_alive_interval` (a connection that carries no
//! packet for that long closes, as an HTTP/2 connection whose pings go
//! unanswered does).
//!
//! Nothing here routes or decides; that is [`routes`](super::routes).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http::header::{CONTENT_LENGTH, HeaderValue};
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, SizeHint};
use quinn::crypto::rustls::QuicServerConfig;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::task::JoinSet;

use crate::metrics::TransportLabel;

use super::ServeError;
use super::config::Limits;
use super::limits::GaugeGuard;
use super::listener::Shared;
use super::routes::App;
use super::tls::TlsState;

type RequestStream = ::h3::server::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;
type Resolver = ::h3::server::RequestResolver<h3_quinn::Connection, Bytes>;

/// How long a draining connection whose requests are done waits for the
/// client to close it, so the last responses are acknowledged before the
/// server closes (closing at once may discard unacknowledged data).
const LINGER: Duration = Duration::from_secs(1);

/// Unidirectional streams a client may open: HTTP/3 needs three (control
/// and the two QPACK streams); the rest is room for grease streams.
const MAX_UNI_STREAMS: u32 = 16;

/// The bound UDP endpoint and what its connections share.
pub(crate) struct H3Listener {
    endpoint: quinn::Endpoint,
    addr: SocketAddr,
    tls: Arc<TlsState>,
    transport: Arc<quinn::TransportConfig>,
    limits: Limits,
    /// `true` once draining; every connection task holds a receiver, so
    /// [`watch::Sender::closed`] tells when the last one ended.
    draining: watch::Sender<bool>,
}

impl std::fmt::Debug for H3Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H3Listener")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl H3Listener {
    /// Binds the UDP socket; must run inside the tokio runtime.
    pub(crate) fn bind(
        addr: SocketAddr,
        tls: Arc<TlsState>,
        limits: &Limits,
    ) -> Result<H3Listener, ServeError> {
        let transport = Arc::new(transport_config(limits));
        let config = quic_config(&tls.config(), &transport)?;
        let bind_error = |source| ServeError::Bind { addr, source };
        let endpoint = quinn::Endpoint::server(config, addr).map_err(bind_error)?;
        let addr = endpoint.local_addr().map_err(bind_error)?;
        Ok(H3Listener {
            endpoint,
            addr,
            tls,
            transport,
            limits: limits.clone(),
            draining: watch::Sender::new(false),
        })
    }

    /// The bound UDP address (the real port when bound to port 0).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Accepts connections until the endpoint closes or the future is
    /// dropped; each connection runs in its own task.
    pub(crate) async fn accept_loop(&self, app: Arc<App>, shared: Arc<Shared>) {
        let mut current = self.tls.config();
        let mut config = match quic_config(&current, &self.transport) {
            Ok(config) => Arc::new(config),
            // bind() built the same config from the same provider.
            Err(error) => {
                tracing::error!(%error, "HTTP/3 listener stopped");
                return;
            }
        };
        while let Some(incoming) = self.endpoint.accept().await {
            if *self.draining.borrow() {
                incoming.refuse();
                continue;
            }
            // A spoofed source address could hold a slot of the shared cap
            // for a whole handshake timeout. Under pressure (half the slots
            // taken), a client must first prove its address with a Retry
            // round trip; a validated one then comes back here.
            if !incoming.remote_address_validated()
                && shared.free_slots() < self.limits.max_connections / 2
            {
                tracing::debug!(peer = %incoming.remote_address(), "connection slots scarce, asking for address validation (Retry)");
                if let Err(error) = incoming.retry() {
                    tracing::debug!(%error, "QUIC retry failed");
                }
                continue;
            }
            let Some(permit) = shared.try_admit() else {
                app.metrics().observe_connection_rejected();
                tracing::debug!(peer = %incoming.remote_address(), "connection limit reached, refusing QUIC connection");
                incoming.refuse();
                continue;
            };
            // The TCP listener's config changes when the client CA is
            // reloaded; follow it.
            let latest = self.tls.config();
            if !Arc::ptr_eq(&latest, &current) {
                match quic_config(&latest, &self.transport) {
                    Ok(next) => config = Arc::new(next),
                    Err(error) => tracing::error!(%error, "keeping the previous HTTP/3 TLS config"),
                }
                current = latest;
            }
            let peer = incoming.remote_address();
            match incoming.accept_with(config.clone()) {
                Ok(connecting) => {
                    tokio::spawn(connection(
                        connecting,
                        peer,
                        app.clone(),
                        self.limits.clone(),
                        permit,
                        self.draining.subscribe(),
                    ));
                }
                Err(error) => tracing::debug!(%peer, %error, "QUIC connection not accepted"),
            }
        }
    }

    /// Starts the drain: new connections are refused, open ones get
    /// `GOAWAY` and close once their in-flight requests are answered.
    pub(crate) fn stop_accepting(&self) {
        self.draining.send_replace(true);
        self.endpoint.set_server_config(None);
    }

    /// Resolves when every connection task has ended.
    pub(crate) async fn wait_idle(&self) {
        self.draining.closed().await;
    }

    /// Closes every connection now, in-flight requests included.
    pub(crate) fn close_all(&self) {
        self.endpoint
            .close(h3_code(::h3::error::Code::H3_NO_ERROR), b"shutting down");
    }

    /// Number of QUIC connections open.
    pub(crate) fn open_connections(&self) -> usize {
        self.endpoint.open_connections()
    }
}

fn h3_code(code: ::h3::error::Code) -> quinn::VarInt {
    // HTTP/3 error codes are small constants (0x100..0x110).
    quinn::VarInt::from_u64(code.value()).unwrap_or(quinn::VarInt::from_u32(0))
}

fn transport_config(limits: &Limits) -> quinn::TransportConfig {
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(quinn::VarInt::from_u32(limits.h2_max_concurrent_streams))
        .max_concurrent_uni_streams(quinn::VarInt::from_u32(MAX_UNI_STREAMS))
        // A duration too large for QUIC's varint means no idle limit, which
        // the keep-alive settings rule out in practice.
        .max_idle_timeout(quinn::IdleTimeout::try_from(limits.h2_keep_alive_interval).ok());
    transport
}

/// The TCP listener's TLS config with ALPN `h3` and no 0-RTT: same
/// certificate resolver, same client verifier.
fn quic_tls(tcp: &rustls::ServerConfig) -> rustls::ServerConfig {
    let mut tls = tcp.clone();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    // 0-RTT requests can be replayed; a review is cheap enough to wait one
    // round trip.
    tls.max_early_data_size = 0;
    tls
}

fn quic_config(
    tcp: &Arc<rustls::ServerConfig>,
    transport: &Arc<quinn::TransportConfig>,
) -> Result<quinn::ServerConfig, ServeError> {
    let crypto = QuicServerConfig::try_from(quic_tls(tcp)).map_err(ServeError::Http3Tls)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport.clone());
    Ok(config)
}

async fn connection(
    connecting: quinn::Connecting,
    peer: SocketAddr,
    app: Arc<App>,
    limits: Limits,
    permit: OwnedSemaphorePermit,
    mut draining: watch::Receiver<bool>,
) {
    let _permit = permit;
    let _open = GaugeGuard::new(app.metrics().connections_open());
    let _quic_open = GaugeGuard::new(
        app.metrics()
            .transport_connections_open(TransportLabel::Quic),
    );
    let timeout = limits.header_read_timeout;
    let conn = match tokio::time::timeout(timeout, connecting).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "QUIC handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "QUIC handshake timed out");
            return;
        }
    };
    let mut builder = ::h3::server::builder();
    builder.max_field_section_size(u64::from(limits.h2_max_header_list_bytes));
    let mut h3_conn = match tokio::time::timeout(
        timeout,
        builder.build::<_, Bytes>(h3_quinn::Connection::new(conn.clone())),
    )
    .await
    {
        Ok(Ok(h3_conn)) => h3_conn,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "HTTP/3 connection setup failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "HTTP/3 connection setup timed out");
            return;
        }
    };

    let mut requests = JoinSet::new();
    let mut served = false;
    let first_request = tokio::time::sleep(timeout);
    tokio::pin!(first_request);
    let mut drain_now = *draining.borrow();
    while !drain_now {
        tokio::select! {
            accepted = h3_conn.accept() => match accepted {
                Ok(Some(resolver)) => {
                    served = true;
                    requests.spawn(request(resolver, app.clone(), limits.clone()));
                }
                Ok(None) => break,
                Err(error) => {
                    if !error.is_h3_no_error() {
                        tracing::debug!(%peer, %error, "HTTP/3 connection ended with an error");
                    }
                    break;
                }
            },
            Some(_) = requests.join_next(), if !requests.is_empty() => {}
            _ = draining.wait_for(|d| *d) => drain_now = true,
            () = &mut first_request, if !served => {
                tracing::debug!(%peer, "no request within the header-read timeout, closing");
                return;
            }
        }
    }
    if drain_now {
        // GOAWAY: requests already started finish, later ones are refused.
        if let Err(error) = h3_conn.shutdown(0).await {
            tracing::debug!(%peer, %error, "cannot send GOAWAY");
        }
    }
    while requests.join_next().await.is_some() {}
    if drain_now {
        // Let the client close, so the last responses are acknowledged.
        let _ = tokio::time::timeout(LINGER, conn.closed()).await;
    }
}

async fn request(resolver: Resolver, app: Arc<App>, limits: Limits) {
    let resolved = tokio::time::timeout(limits.header_read_timeout, resolver.resolve_request());
    let (head, mut stream) = match resolved.await {
        Ok(Ok(resolved)) => resolved,
        Ok(Err(error)) => {
            // h3 answers malformed and oversized heads itself.
            tracing::debug!(%error, "HTTP/3 request head refused");
            return;
        }
        Err(_) => {
            tracing::debug!("HTTP/3 request head not received in time");
            return;
        }
    };
    let (parts, ()) = head.into_parts();
    let is_head = parts.method == Method::HEAD;
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = RecvBody {
        stream: &mut stream,
        declared,
        done: false,
    };
    let response = app.handle(Request::from_parts(parts, body)).await;
    app.metrics()
        .observe_transport_request(TransportLabel::Quic, response.status().as_u16());
    // A client that stops reading cannot hold the stream forever.
    match tokio::time::timeout(
        limits.header_read_timeout,
        respond(&mut stream, response, is_head),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!(%error, "cannot send HTTP/3 response"),
        Err(_) => tracing::debug!("HTTP/3 response not taken in time"),
    }
}

async fn respond(
    stream: &mut RequestStream,
    response: Response<Full<Bytes>>,
    is_head: bool,
) -> Result<(), ::h3::error::StreamError> {
    let (mut parts, body) = response.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    parts
        .headers
        .entry(CONTENT_LENGTH)
        .or_insert_with(|| HeaderValue::from(body.len()));
    stream
        .send_response(Response::from_parts(parts, ()))
        .await?;
    if !is_head && !body.is_empty() {
        stream.send_data(body).await?;
    }
    stream.finish().await
}

/// A request body read from the HTTP/3 stream as it arrives, so the
/// handler's size and time limits apply exactly as over TCP.
struct RecvBody<'a> {
    stream: &'a mut RequestStream,
    /// `Content-Length`, when the client sent one: a declared size over
    /// the limit is refused before reading.
    declared: Option<u64>,
    done: bool,
}

impl Body for RecvBody<'_> {
    type Data = Bytes;
    type Error = ::h3::error::StreamError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match ready!(this.stream.poll_recv_data(cx)) {
            Ok(Some(mut data)) => {
                let len = data.remaining();
                Poll::Ready(Some(Ok(Frame::data(data.copy_to_bytes(len)))))
            }
            Ok(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Err(error) => {
                this.done = true;
                Poll::Ready(Some(Err(error)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        match self.declared {
            Some(length) => SizeHint::with_exact(length),
            None => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests;
