//! `imagegate serve` flags ([`ServeArgs`]) and the validated [`Config`] they
//! become in one step ([`ServeArgs::into_config`]).
//!
//! Validation is pure: it checks combinations and ranges, never touches the
//! file system or the network (files are read when the server binds).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// Flags of `imagegate serve` (flattened into the binary's CLI).
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Policy file (YAML); the built-in default policy when absent. Watched
    /// and reloaded on change and on SIGHUP.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// Address of the webhook listener.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,

    /// PEM certificate chain to serve HTTPS with (requires --tls-key).
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert (requires --tls-cert).
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA bundle: clients must present a certificate it signed (mTLS;
    /// requires --tls-cert and --tls-key).
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,

    /// Extra plain-HTTP listener for /metrics, /healthz and /readyz.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// UDP address of an HTTP/3 (QUIC) listener serving the same endpoints
    /// with the same certificate and mTLS setting (requires --tls-cert and
    /// --tls-key). The TCP listener then advertises it with `Alt-Svc`.
    #[arg(long, value_name = "ADDR")]
    pub http3_listen: Option<SocketAddr>,

    /// Largest accepted request body; larger bodies get 413. A number of
    /// bytes, or with a KiB or MiB suffix. The default fits a pod UPDATE:
    /// the object and its old version, each up to etcd's 1.5 MiB as stored
    /// and larger as JSON, plus the review around them.
    #[arg(long, value_name = "SIZE", default_value = "8MiB", value_parser = parse_size)]
    pub max_body_bytes: u64,

    /// Request bodies held in memory at once, by all requests together;
    /// past it a review gets 503 (with Retry-After) instead of more memory.
    /// Bounds what many slow or parallel uploads (256 HTTP/2 streams on one
    /// connection, say) can make the process hold. At least --max-body-bytes.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    pub max_buffered_body_bytes: u64,

    /// After SIGTERM, keep serving this long (with /readyz at 503) before
    /// closing the listeners.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub shutdown_delay: Duration,

    /// After the listeners close, how long in-flight requests may take.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub grace_period: Duration,

    /// Most client connections open at once; more are closed at accept.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub max_connections: usize,

    /// Time a client has to send a request's headers (also the TLS handshake
    /// and the HTTP/1.1 keep-alive idle limit).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// Time a client has to send a request's body once its headers arrived.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub body_read_timeout: Duration,

    /// How often watched files (policy, certificate, key, client CA) are
    /// re-checked in case a file-system event was missed.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub file_poll_interval: Duration,

    /// Log line format.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter in `RUST_LOG` syntax (default: `RUST_LOG`, else `info`).
    #[arg(long, value_name = "FILTER", env = "IMAGEGATE_LOG")]
    pub log_filter: Option<String>,

    /// Append every review judged to FILE, one JSON line each, for
    /// `imagegate replay` (off by default).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,

    /// Size at which the --record file rotates to FILE.1.
    #[arg(long, value_name = "SIZE", default_value = "100MiB", value_parser = parse_size, requires = "record")]
    pub record_max_bytes: u64,

    /// Rotated --record files kept (FILE.1 ... FILE.N).
    #[arg(long, value_name = "N", default_value_t = 3, requires = "record")]
    pub record_keep: u32,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
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
pub(crate) const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

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

/// A flag value or combination that cannot work.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// Only one of the certificate/key pair was given.
    #[error("--tls-cert and --tls-key must be given together")]
    IncompleteTlsPair,
    /// mTLS without TLS.
    #[error("--client-ca requires --tls-cert and --tls-key")]
    ClientCaWithoutTls,
    /// HTTP/3 without TLS (QUIC always encrypts).
    #[error("--http3-listen requires --tls-cert and --tls-key (HTTP/3 runs only over TLS 1.3)")]
    Http3WithoutTls,
    /// Both listeners on one address.
    #[error("--metrics-listen {0} is the same address as --listen")]
    SameListenAddress(SocketAddr),
    /// A zero where a positive value is needed.
    #[error("{flag} must be greater than zero")]
    Zero {
        /// The flag, with its dashes.
        flag: &'static str,
    },
    /// The body limit does not fit this platform's memory.
    #[error("--max-body-bytes {0} is too large")]
    BodyLimitTooLarge(u64),
    /// The budget for bodies in memory cannot hold one largest body.
    #[error("--max-buffered-body-bytes {budget} is smaller than --max-body-bytes {limit}")]
    BodyBudgetTooSmall {
        /// --max-buffered-body-bytes.
        budget: u64,
        /// --max-body-bytes.
        limit: u64,
    },
    /// The log filter does not parse.
    #[error("invalid log filter {filter:?}: {message}")]
    LogFilter {
        /// The filter as given.
        filter: String,
        /// Why it does not parse.
        message: String,
    },
}

/// The largest body limit accepted: far above any review, low enough that
/// one request cannot take the process's memory.
const MAX_BODY_LIMIT: u64 = 256 * 1024 * 1024;

impl ServeArgs {
    /// Validates the flags into a [`Config`]; reads `RUST_LOG` when no
    /// `--log-filter`/`IMAGEGATE_LOG` is given.
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert,
                key,
                client_ca: self.client_ca,
            }),
            (None, None) if self.client_ca.is_some() => {
                return Err(ConfigError::ClientCaWithoutTls);
            }
            (None, None) => None,
            _ => return Err(ConfigError::IncompleteTlsPair),
        };
        if self.http3_listen.is_some() && tls.is_none() {
            return Err(ConfigError::Http3WithoutTls);
        }
        // Port 0 asks the kernel for a free port, so two of them do not clash.
        if self.metrics_listen == Some(self.listen) && self.listen.port() != 0 {
            return Err(ConfigError::SameListenAddress(self.listen));
        }
        for (flag, zero) in [
            ("--max-body-bytes", self.max_body_bytes == 0),
            (
                "--max-buffered-body-bytes",
                self.max_buffered_body_bytes == 0,
            ),
            ("--max-connections", self.max_connections == 0),
            ("--header-read-timeout", self.header_read_timeout.is_zero()),
            ("--body-read-timeout", self.body_read_timeout.is_zero()),
            ("--file-poll-interval", self.file_poll_interval.is_zero()),
        ] {
            if zero {
                return Err(ConfigError::Zero { flag });
            }
        }
        if self.max_body_bytes > MAX_BODY_LIMIT {
            return Err(ConfigError::BodyLimitTooLarge(self.max_body_bytes));
        }
        let max_body_bytes = usize::try_from(self.max_body_bytes)
            .map_err(|_| ConfigError::BodyLimitTooLarge(self.max_body_bytes))?;
        if self.max_buffered_body_bytes < self.max_body_bytes {
            return Err(ConfigError::BodyBudgetTooSmall {
                budget: self.max_buffered_body_bytes,
                limit: self.max_body_bytes,
            });
        }
        // Beyond what a semaphore counts is beyond any machine's memory.
        let max_buffered_body_bytes = usize::try_from(self.max_buffered_body_bytes)
            .unwrap_or(usize::MAX)
            .min(tokio::sync::Semaphore::MAX_PERMITS);

        let filter = self
            .log_filter
            .or_else(|| {
                std::env::var("RUST_LOG")
                    .ok()
                    .filter(|s| !s.trim().is_empty())
            })
            .unwrap_or_else(|| "info".to_owned());
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&filter) {
            return Err(ConfigError::LogFilter {
                filter,
                message: e.to_string(),
            });
        }

        Ok(Config {
            policy: self
                .policy
                .map_or(PolicySource::Builtin, PolicySource::File),
            listen: self.listen,
            tls,
            metrics_listen: self.metrics_listen,
            http3_listen: self.http3_listen,
            limits: Limits {
                max_body_bytes,
                max_buffered_body_bytes,
                max_connections: self.max_connections,
                header_read_timeout: self.header_read_timeout,
                body_read_timeout: self.body_read_timeout,
                ..Limits::default()
            },
            shutdown_delay: self.shutdown_delay,
            grace_period: self.grace_period,
            file_poll_interval: self.file_poll_interval,
            reload_debounce: Duration::from_millis(200),
            log: LogConfig {
                format: self.log_format,
                filter,
            },
            signals: Signals::Handle,
            record: self.record.map(|path| super::RecordConfig {
                path,
                max_bytes: self.record_max_bytes.max(1),
                keep: self.record_keep,
            }),
        })
    }
}

/// Parses a flag's duration: the grammar of the policy file's durations
/// (see [`crate::policy::parse_duration`]), so one text means the same in
/// both places.
pub use crate::policy::parse_duration;

/// Parses a byte size: a number, optionally with a `KiB` or `MiB` suffix.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, factor) = if let Some(n) = text.strip_suffix("MiB") {
        (n, 1024 * 1024)
    } else if let Some(n) = text.strip_suffix("KiB") {
        (n, 1024)
    } else {
        (text, 1)
    };
    let number: u64 = number
        .trim()
        .parse()
        .map_err(|_| format!("invalid size {text:?}: expected bytes, or a KiB or MiB suffix"))?;
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("invalid size {text:?}: too large"))
}

#[cfg(test)]
mod tests;
