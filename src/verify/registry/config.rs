//! The client's settings and the types its calls take and give.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::super::digest::Digest;
use crate::policy::{CaBundle, Credentials};

/// Limits and settings of a [`Registry`](super::Registry) client.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Registries (`host[:port]`, as in image references) reached over
    /// plain HTTP; every other one over HTTPS.
    pub insecure: Vec<String>,
    /// Basic credentials per registry.
    pub credentials: Credentials,
    /// Private CAs trusted for registry TLS, in addition to the Mozilla
    /// root set.
    pub ca: CaBundle,
    /// Timeout of one HTTP exchange (connect to last body byte).
    pub call_timeout: Duration,
    /// Largest manifest or index read (distribution's own limit is 4 MiB).
    pub max_manifest_bytes: usize,
    /// Largest blob read (signature payloads, envelopes, bundles).
    pub max_blob_bytes: usize,
    /// Retries after 429/503 (each waits `Retry-After`, at most
    /// `max_retry_wait`).
    pub max_retries: u32,
    /// Longest single wait before a retry.
    pub max_retry_wait: Duration,
    /// Pages of a referrers listing followed.
    pub max_referrer_pages: usize,
}

impl Default for RegistryConfig {
    fn default() -> RegistryConfig {
        RegistryConfig {
            insecure: Vec::new(),
            credentials: Credentials::default(),
            ca: CaBundle::default(),
            call_timeout: Duration::from_secs(3),
            max_manifest_bytes: 4 << 20,
            max_blob_bytes: 8 << 20,
            max_retries: 2,
            max_retry_wait: Duration::from_secs(2),
            max_referrer_pages: 4,
        }
    }
}

/// How long basic credentials, once asked for, are sent up front.
pub(super) const BASIC_REUSE: Duration = Duration::from_secs(600);

/// What a registry request was for (a closed set: metric labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `HEAD` a manifest by tag.
    Resolve,
    /// `GET` a manifest or index.
    Manifest,
    /// `GET` a blob.
    Blob,
    /// `GET` the referrers API.
    Referrers,
    /// `GET` a token from the token service.
    Token,
}

impl Operation {
    /// Every operation, for pre-registering metric series.
    pub const ALL: [Operation; 5] = [
        Operation::Resolve,
        Operation::Manifest,
        Operation::Blob,
        Operation::Referrers,
        Operation::Token,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Resolve => "resolve",
            Operation::Manifest => "manifest",
            Operation::Blob => "blob",
            Operation::Referrers => "referrers",
            Operation::Token => "token",
        }
    }
}

/// Called once per HTTP exchange: operation, status (`None` when no answer
/// came) and duration.
pub type Observe = Arc<dyn Fn(Operation, Option<u16>, Duration) + Send + Sync>;

/// A repository at a registry, as named by an image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repository {
    /// The reference's domain (`docker.io`, `127.0.0.1:5000`, ...).
    pub domain: String,
    /// The repository path (`library/nginx`).
    pub path: String,
}

/// A fetched manifest: its verified digest, media type and exact bytes.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// sha256 of `bytes`.
    pub digest: Digest,
    /// `Content-Type` without parameters.
    pub media_type: Option<String>,
    /// The body exactly as received.
    pub bytes: Bytes,
}
