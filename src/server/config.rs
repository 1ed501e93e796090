//! The server's validated configuration ([`Config`]). The binary's
//! `serve` flags become one (the clap types live in the binary); embedders
//! and tests start from [`Config::new`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where the policy comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    /// The built-in default policy (`examples/policy.yaml`).
    Builtin,
    /// A file, watched and reloaded.
    File(PathBuf),
}

impl std::fmt::Display for PolicySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicySource::Builtin => f.write_str("built-in default policy"),
            PolicySource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// TLS files; the certificate and key always come as a pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA bundle for client certificates (mTLS), if any.
    pub client_ca: Option<PathBuf>,
}

/// Per-connection and per-request limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// Request body bytes held in memory by all requests together.
    pub max_buffered_body_bytes: usize,
    /// Most connections open at once (all listeners together).
    pub max_connections: usize,
    /// TLS handshake, request headers, first request and HTTP/1.1 idle limit.
    pub header_read_timeout: Duration,
    /// Limit for reading one request body.
    pub body_read_timeout: Duration,
    /// Largest HTTP/1.1 request head (start line and headers) in bytes.
    pub max_header_bytes: usize,
    /// Most HTTP/1.1 header fields per request.
    pub max_headers: usize,
    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`.
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2 `SETTINGS_MAX_HEADER_LIST_SIZE`.
    pub h2_max_header_list_bytes: u32,
    /// HTTP/2 streams reset by the client before the server took them in,
    /// held at once; one more closes the connection with
    /// `ENHANCE_YOUR_CALM` (rapid reset, CVE-2023-44487).
    pub h2_max_pending_accept_reset_streams: usize,
    /// HTTP/2 streams the server resets for the client's errors (refused
    /// past `MAX_CONCURRENT_STREAMS`, malformed) over a connection's life;
    /// one more closes the connection with `ENHANCE_YOUR_CALM`.
    pub h2_max_local_error_reset_streams: usize,
    /// Interval of HTTP/2 keep-alive pings.
    pub h2_keep_alive_interval: Duration,
    /// How long a keep-alive ping may go unanswered before the connection is closed.
    pub h2_keep_alive_timeout: Duration,
}

/// The default `--max-body-bytes`: an AdmissionReview of a pod UPDATE
/// carries `object` and `oldObject`, each up to etcd's 1.5 MiB request
/// limit as stored (protobuf) and up to about twice that as JSON, plus the
/// review around them: 2 x 3 MiB and headroom.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_buffered_body_bytes: 64 * 1024 * 1024,
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            h2_max_concurrent_streams: 256,
            h2_max_header_list_bytes: 64 * 1024,
            // The values of h2 0.4 and hyper 1.x, pinned here so that an
            // upgrade cannot loosen them unnoticed.
            h2_max_pending_accept_reset_streams: 20,
            h2_max_local_error_reset_streams: 1024,
            h2_keep_alive_interval: Duration::from_secs(30),
            h2_keep_alive_timeout: Duration::from_secs(15),
        }
    }
}

/// The log filter when none is given: `info`, except rustls's own lines
/// below `error`. rustls warns at every handshake a client makes with an
/// IP address as its server name (curl, wrk, load balancers' probes do;
/// Go's client, the apiserver's, does not), so any client could fill the
/// log; the listener logs failed handshakes itself, at `debug`.
pub const DEFAULT_LOG_FILTER: &str = "info,rustls=error";

/// Logging settings, applied by [`init_logging`](super::init_logging).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Line format.
    pub format: LogFormat,
    /// Filter directives in `RUST_LOG` syntax (already checked to parse).
    pub filter: String,
}

/// Whether the server installs its own signal handlers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signals {
    /// SIGTERM and SIGINT drain, SIGHUP reloads (the binary).
    Handle,
    /// Leave signals alone; drain only through a
    /// [`ShutdownHandle`](super::ShutdownHandle) (embedding, tests).
    Ignore,
}

/// A validated server configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where the policy comes from.
    pub policy: PolicySource,
    /// Address of the webhook listener.
    pub listen: SocketAddr,
    /// HTTPS (and mTLS) files; plain HTTP when `None`.
    pub tls: Option<TlsFiles>,
    /// Extra plain-HTTP listener for metrics and health.
    pub metrics_listen: Option<SocketAddr>,
    /// HTTP/3 (QUIC, UDP) listener; only with `tls`.
    pub http3_listen: Option<SocketAddr>,
    /// Connection and request limits.
    pub limits: Limits,
    /// Serving time between SIGTERM and closing the listeners.
    pub shutdown_delay: Duration,
    /// Time in-flight requests get after the listeners close.
    pub grace_period: Duration,
    /// Re-check interval of watched files.
    pub file_poll_interval: Duration,
    /// Quiet time that ends a burst of file events before a reload.
    pub reload_debounce: Duration,
    /// Logging settings.
    pub log: LogConfig,
    /// Signal handling.
    pub signals: Signals,
    /// Where judged reviews are recorded (`--record`), if anywhere.
    pub record: Option<super::RecordConfig>,
}

impl Config {
    /// The configuration `imagegate serve` has with no flags but
    /// `--policy` and `--listen`: plain HTTP, the default [`Limits`], no
    /// extra listener, text logs at `info`, signals handled.
    pub fn new(policy: PolicySource, listen: SocketAddr) -> Config {
        Config {
            policy,
            listen,
            tls: None,
            metrics_listen: None,
            http3_listen: None,
            limits: Limits::default(),
            shutdown_delay: Duration::ZERO,
            grace_period: Duration::from_secs(30),
            file_poll_interval: Duration::from_secs(10),
            reload_debounce: Duration::from_millis(200),
            log: LogConfig {
                format: LogFormat::Text,
                filter: DEFAULT_LOG_FILTER.to_owned(),
            },
            signals: Signals::Handle,
            record: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    /// Runs `probe` under a subscriber with the default filter, built the
    /// way `init_logging` builds the real one.
    fn with_default_filter(probe: impl FnOnce()) {
        let filter = tracing_subscriber::EnvFilter::builder()
            .parse(DEFAULT_LOG_FILTER)
            .unwrap();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::sink)
            .finish();
        tracing::subscriber::with_default(subscriber, probe);
    }

    #[test]
    fn the_default_filter_keeps_rustls_warnings_out() {
        with_default_filter(|| {
            assert!(!tracing::enabled!(target: "rustls::msgs::handshake", Level::WARN));
            assert!(tracing::enabled!(target: "rustls::msgs::handshake", Level::ERROR));
            assert!(tracing::enabled!(target: "imagegate::server", Level::INFO));
            assert!(!tracing::enabled!(target: "imagegate::server", Level::DEBUG));
        });
    }
}
