//! [`RegistryError`]: why a registry could not answer, classified by kind.

/// What went wrong talking to a registry (a closed set: metric labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistryErrorKind {
    /// TCP connect or TLS handshake failed.
    Connect,
    /// A call did not finish within its timeout.
    Timeout,
    /// The registry answered with an unexpected status.
    Status,
    /// Still rate limited after the allowed retries.
    RateLimited,
    /// Authentication failed or was refused.
    Auth,
    /// A body was larger than the limit for its kind.
    TooLarge,
    /// Content did not match the digest it was fetched or announced by.
    DigestMismatch,
    /// A body or header could not be understood.
    Malformed,
    /// The exchange broke off (connection reset, bad HTTP).
    Protocol,
}

impl RegistryErrorKind {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RegistryErrorKind::Connect => "connect",
            RegistryErrorKind::Timeout => "timeout",
            RegistryErrorKind::Status => "status",
            RegistryErrorKind::RateLimited => "rate_limited",
            RegistryErrorKind::Auth => "auth",
            RegistryErrorKind::TooLarge => "too_large",
            RegistryErrorKind::DigestMismatch => "digest_mismatch",
            RegistryErrorKind::Malformed => "malformed",
            RegistryErrorKind::Protocol => "protocol",
        }
    }
}

/// A registry failure: its kind and a short detail (no secrets).
#[derive(Debug, Clone, thiserror::Error)]
#[error("registry {what}: {detail}", what = kind.as_str())]
pub struct RegistryError {
    kind: RegistryErrorKind,
    detail: String,
}

impl RegistryError {
    pub(crate) fn new(kind: RegistryErrorKind, detail: impl Into<String>) -> RegistryError {
        RegistryError {
            kind,
            detail: detail.into(),
        }
    }

    /// The failure's class.
    pub fn kind(&self) -> RegistryErrorKind {
        self.kind
    }
}
