//! The webhook server: hyper on tokio, rustls, routing, limits, hot reload
//! and graceful drain. It carries bytes between the kube-apiserver and the
//! decision pipeline ([`decide`](crate::decide)), and never decides anything
//! itself.
//!
//! Layout, one job per file: `config` ([`Config`]),
//! `listener` (accept, TLS handshake, HTTP/1.1 + HTTP/2, connection
//! limits), `tls` (certificates and their hot swap), `routes` ([`App`]:
//! routing and handlers, callable without sockets), `limits` (body size and
//! time, panic isolation), `reload` and `watch` (policy and certificate
//! reload), `drain` (signals and [`ShutdownHandle`]).
//!
//! The binary calls [`run`]; embedders and tests use [`Server::bind`] to
//! learn the bound addresses before [`Server::serve`].

mod config;
mod drain;
mod h3;
mod limits;
mod listener;
mod memory;
mod record;
mod reload;
mod routes;
pub mod streams;
mod tls;
mod trust;
mod watch;

pub use config::{
    Config, DEFAULT_LOG_FILTER, DEFAULT_MAX_BODY_BYTES, Limits, LogConfig, LogFormat, PolicySource,
    Signals, TlsFiles,
};
pub use drain::ShutdownHandle;
pub use record::{RecordConfig, Recorder};
pub use reload::PolicyError;
pub use routes::App;
pub use tls::TlsError;

use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{ALT_SVC, HeaderValue};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use drain::ShutdownSignal;
use h3::H3Listener;
use listener::{Shared, accept_loop, listen};
use reload::Reloader;
use routes::Routes;
use tls::TlsState;

use crate::metrics::TransportLabel;

/// Why the server could not start (a clean shutdown is `Ok`).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The policy file could not be read or compiled.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A TLS file could not be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// HTTP/3 was asked for without TLS (QUIC always encrypts).
    #[error("an HTTP/3 listener needs TLS (HTTP/3 runs only over TLS 1.3)")]
    Http3WithoutTls,
    /// The TLS configuration cannot be used for QUIC.
    #[error("cannot build the HTTP/3 TLS configuration")]
    Http3Tls(#[source] quinn::crypto::rustls::NoInitialCipherSuite),
    /// The signal handlers could not be installed.
    #[error("cannot install signal handlers")]
    Signals(#[source] std::io::Error),
    /// The `--record` file cannot be opened.
    #[error("cannot record reviews to {}", .0.display())]
    Record(std::path::PathBuf, #[source] std::io::Error),
}

/// Installs the process-wide `tracing` subscriber (text or JSON lines on
/// stderr, filtered by `log.filter`). Does nothing if one is already set.
pub fn init_logging(log: &LogConfig) {
    let filter = tracing_subscriber::EnvFilter::builder().parse_lossy(&log.filter);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // An error only means a subscriber is already installed (tests, an
    // embedding program); theirs stays.
    let _ = match log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Runs `imagegate serve` until SIGTERM or SIGINT, then drains; returns
/// `Ok` after a clean shutdown. Installs logging first ([`init_logging`]).
pub async fn run(config: Config) -> Result<(), ServeError> {
    init_logging(&config.log);
    Server::bind(config).await?.serve().await
}

/// A bound, not yet serving server.
pub struct Server {
    app: Arc<App>,
    config: Config,
    main: TcpListener,
    main_addr: SocketAddr,
    metrics: Option<(TcpListener, SocketAddr)>,
    h3: Option<H3Listener>,
    tls: Option<Arc<TlsState>>,
    reloader: Reloader,
    shutdown: ShutdownSignal,
    handle: ShutdownHandle,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("main_addr", &self.main_addr)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), ServeError> {
    let bind_error = |source| ServeError::Bind { addr, source };
    let listener = listen(addr).map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}

impl Server {
    /// Loads the policy and TLS files, binds the listeners and installs the
    /// signal handlers; every failure here is a start-up error.
    pub async fn bind(config: Config) -> Result<Server, ServeError> {
        let (snapshot, text_digest) = reload::load_initial(&config.policy).await?;
        let tls = match &config.tls {
            Some(files) => Some(Arc::new(TlsState::load(files.clone())?)),
            None => None,
        };
        let (main, main_addr) = bind(config.listen).await?;
        let metrics = match config.metrics_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let h3 = match (config.http3_listen, &tls) {
            (Some(addr), Some(tls)) => Some(H3Listener::bind(addr, tls.clone(), &config.limits)?),
            (Some(_), None) => return Err(ServeError::Http3WithoutTls),
            (None, _) => None,
        };
        let (shutdown, handle) =
            ShutdownSignal::new(config.signals).map_err(ServeError::Signals)?;
        let mut app = App::new(snapshot, config.limits.clone());
        if let Some(record) = &config.record {
            let dropped = app.metrics().records_dropped().clone();
            let recorder = Recorder::start(record.clone(), dropped)
                .map_err(|e| ServeError::Record(record.path.clone(), e))?;
            app = app.with_recorder(recorder);
        }
        let app = Arc::new(app);
        let reloader = Reloader::new(
            app.clone(),
            &config.policy,
            text_digest,
            tls.clone(),
            config.signals,
            config.file_poll_interval,
            config.reload_debounce,
        )
        .map_err(ServeError::Signals)?;
        Ok(Server {
            app,
            config,
            main,
            main_addr,
            metrics,
            h3,
            tls,
            reloader,
            shutdown,
            handle,
        })
    }

    /// The webhook listener's address (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.main_addr
    }

    /// The metrics listener's address, if there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(_, addr)| *addr)
    }

    /// The HTTP/3 listener's UDP address, if there is one.
    pub fn http3_addr(&self) -> Option<SocketAddr> {
        self.h3.as_ref().map(|h3| h3.local_addr())
    }

    /// The shared state (policy, readiness, metrics).
    pub fn app(&self) -> Arc<App> {
        self.app.clone()
    }

    /// A handle that starts the drain, like SIGTERM.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.handle.clone()
    }

    /// Serves until a shutdown trigger, then drains: readiness off at once,
    /// serving on for the shutdown delay, listeners closed, in-flight
    /// requests given the grace period. Returns `Ok` when done.
    pub async fn serve(self) -> Result<(), ServeError> {
        let Server {
            app,
            config,
            main,
            main_addr,
            metrics,
            h3,
            tls,
            reloader,
            mut shutdown,
            handle: _handle,
        } = self;
        let shared = Arc::new(
            Shared::new(
                &config.limits,
                app.metrics().connections_open().clone(),
                app.metrics().connections_rejected().clone(),
            )
            .with_transport_gauge(
                app.metrics()
                    .transport_connections_open(TransportLabel::Tcp)
                    .clone(),
            ),
        );
        // Advertised on the main listener's answers so HTTP/3 clients can
        // switch; `ma` is how long (seconds) they may remember it.
        let alt_svc = h3.as_ref().and_then(|h3| {
            HeaderValue::from_str(&format!("h3=\":{}\"; ma=86400", h3.local_addr().port())).ok()
        });
        tracing::info!(
            policy = %config.policy,
            generation = app.engine().policy().generation(),
            listen = %main_addr,
            tls = tls.is_some(),
            mtls = config.tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
            metrics_listen = %metrics.as_ref().map(|(_, a)| a.to_string()).unwrap_or_default(),
            http3_listen = %h3.as_ref().map(|h3| h3.local_addr().to_string()).unwrap_or_default(),
            "imagegate serving"
        );

        let graceful = GracefulShutdown::new();
        let handler = |routes: Routes| {
            let app = app.clone();
            let alt_svc = alt_svc.clone().filter(|_| routes == Routes::Webhook);
            move |request| {
                let alt_svc = alt_svc.clone();
                App::serve(app.clone(), request, routes, move |app, response| {
                    app.metrics()
                        .observe_transport_request(TransportLabel::Tcp, response.status().as_u16());
                    if let Some(alt_svc) = alt_svc {
                        response.headers_mut().insert(ALT_SVC, alt_svc);
                    }
                })
            }
        };
        let main_loop = accept_loop(
            main,
            tls,
            shared.clone(),
            &graceful,
            handler(Routes::Webhook),
        );
        let metrics_loop = async {
            match metrics {
                Some((listener, _)) => {
                    accept_loop(
                        listener,
                        None,
                        shared.clone(),
                        &graceful,
                        handler(Routes::Observability),
                    )
                    .await;
                }
                None => std::future::pending().await,
            }
        };
        let h3_loop = async {
            match &h3 {
                Some(h3) => h3.accept_loop(app.clone(), shared.clone()).await,
                None => std::future::pending().await,
            }
        };
        let background = async { tokio::join!(main_loop, metrics_loop, h3_loop, reloader.run()) };
        let drain = async {
            let trigger = shutdown.recv().await;
            app.start_draining();
            tracing::info!(
                trigger = trigger.as_str(),
                shutdown_delay = ?config.shutdown_delay,
                "draining: readiness off, still serving until the shutdown delay ends"
            );
            tokio::time::sleep(config.shutdown_delay).await;
        };
        tokio::select! {
            _ = background => {}
            () = drain => {}
        }

        if let Some(h3) = &h3 {
            h3.stop_accepting();
        }
        tracing::info!(
            grace_period = ?config.grace_period,
            connections = graceful.count(),
            quic_connections = h3.as_ref().map_or(0, |h3| h3.open_connections()),
            "listeners closed, waiting for in-flight requests"
        );
        let h3_idle = async {
            if let Some(h3) = &h3 {
                h3.wait_idle().await;
            }
        };
        // Every connection closes once its in-flight requests are answered;
        // `graceful` waits for the last of them.
        shared.drain_all();
        let finished = tokio::time::timeout(config.grace_period, async {
            tokio::join!(graceful.shutdown(), h3_idle)
        })
        .await;
        if let Some(h3) = &h3 {
            // Also after a clean drain: sends the close frames of
            // connections that linger.
            h3.close_all();
        }
        if finished.is_err() {
            shared.abort_all();
            tracing::warn!("grace period over, remaining connections closed");
        }
        tracing::info!("shutdown complete");
        Ok(())
    }
}
