//! `imagegate serve` flags ([`ServeArgs`]) and the validated
//! [`Config`] they become in one step ([`ServeArgs::into_config`]).
//!
//! Validation is pure: it checks combinations and ranges, never touches the
//! file system or the network (files are read when the server binds).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use imagegate::policy::parse_duration;
use imagegate::server::{Config, Limits, LogConfig, LogFormat, PolicySource, Signals, TlsFiles};

/// Flags of `imagegate serve` (flattened into the binary's CLI).
#[derive(Debug, Clone, Args)]
pub(crate) struct ServeArgs {
    /// Policy file (YAML); the built-in default policy when absent. Watched
    /// and reloaded on change and on SIGHUP.
    #[arg(long, value_name = "FILE")]
    pub(crate) policy: Option<PathBuf>,

    /// Address of the webhook listener.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8443")]
    pub(crate) listen: SocketAddr,

    /// PEM certificate chain to serve HTTPS with (requires --tls-key).
    #[arg(long, value_name = "FILE")]
    pub(crate) tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert (requires --tls-cert).
    #[arg(long, value_name = "FILE")]
    pub(crate) tls_key: Option<PathBuf>,

    /// PEM CA bundle: clients must present a certificate it signed (mTLS;
    /// requires --tls-cert and --tls-key).
    #[arg(long, value_name = "FILE")]
    pub(crate) client_ca: Option<PathBuf>,

    /// Extra plain-HTTP listener for /metrics, /healthz and /readyz.
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics_listen: Option<SocketAddr>,

    /// UDP address of an HTTP/3 (QUIC) listener serving the same endpoints
    /// with the same certificate and mTLS setting (requires --tls-cert and
    /// --tls-key). The TCP listener then advertises it with `Alt-Svc`.
    #[arg(long, value_name = "ADDR")]
    pub(crate) http3_listen: Option<SocketAddr>,

    /// Largest accepted request body; larger bodies get 413. A number of
    /// bytes, or with a KiB or MiB suffix. The default fits a pod UPDATE:
    /// the object and its old version, each up to etcd's 1.5 MiB as stored
    /// and larger as JSON, plus the review around them.
    #[arg(long, value_name = "SIZE", default_value = "8MiB", value_parser = parse_size)]
    pub(crate) max_body_bytes: u64,

    /// Request bodies held in memory at once, by all requests together;
    /// past it a review gets 503 (with Retry-After) instead of more memory.
    /// Bounds what many slow or parallel uploads (256 HTTP/2 streams on one
    /// connection, say) can make the process hold. At least --max-body-bytes.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    pub(crate) max_buffered_body_bytes: u64,

    /// After SIGTERM, keep serving this long (with /readyz at 503) before
    /// closing the listeners.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub(crate) shutdown_delay: Duration,

    /// After the listeners close, how long in-flight requests may take.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub(crate) grace_period: Duration,

    /// Most client connections open at once; more are closed at accept.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub(crate) max_connections: usize,

    /// Time a client has to send a request's headers (also the TLS handshake
    /// and the HTTP/1.1 keep-alive idle limit).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub(crate) header_read_timeout: Duration,

    /// Time a client has to send a request's body once its headers arrived.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub(crate) body_read_timeout: Duration,

    /// How often watched files (policy, certificate, key, client CA) are
    /// re-checked in case a file-system event was missed.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub(crate) file_poll_interval: Duration,

    /// Log line format.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = LogFormatArg::Text)]
    pub(crate) log_format: LogFormatArg,

    /// Log filter in `RUST_LOG` syntax (default: `RUST_LOG`, else
    /// `info,rustls=error`).
    #[arg(long, value_name = "FILTER", env = "IMAGEGATE_LOG")]
    pub(crate) log_filter: Option<String>,

    /// Append every review judged to FILE, one JSON line each, for
    /// `imagegate replay` (off by default).
    #[arg(long, value_name = "FILE")]
    pub(crate) record: Option<PathBuf>,

    /// Size at which the --record file rotates to FILE.1.
    #[arg(long, value_name = "SIZE", default_value = "100MiB", value_parser = parse_size, requires = "record")]
    pub(crate) record_max_bytes: u64,

    /// Rotated --record files kept (FILE.1 ... FILE.N).
    #[arg(long, value_name = "N", default_value_t = 3, requires = "record")]
    pub(crate) record_keep: u32,
}

/// A flag value or combination that cannot work.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ConfigError {
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
    pub(crate) fn into_config(self) -> Result<Config, ConfigError> {
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
        // Beyond what a `usize` counts is beyond any machine's memory.
        let max_buffered_body_bytes =
            usize::try_from(self.max_buffered_body_bytes).unwrap_or(usize::MAX);

        let filter = self
            .log_filter
            .or_else(|| {
                std::env::var("RUST_LOG")
                    .ok()
                    .filter(|s| !s.trim().is_empty())
            })
            .unwrap_or_else(|| imagegate::server::DEFAULT_LOG_FILTER.to_owned());
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
                format: match self.log_format {
                    LogFormatArg::Text => LogFormat::Text,
                    LogFormatArg::Json => LogFormat::Json,
                },
                filter,
            },
            signals: Signals::Handle,
            record: self.record.map(|path| imagegate::server::RecordConfig {
                path,
                max_bytes: self.record_max_bytes.max(1),
                keep: self.record_keep,
            }),
        })
    }
}

/// Parses a byte size: a number, optionally with a `KiB` or `MiB` suffix.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
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

/// `--log-format`: the library's [`LogFormat`], spelled for the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormatArg {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[cfg(test)]
mod tests;
