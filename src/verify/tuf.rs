//! Refreshing a Sigstore trusted root from a TUF repository, as Sigstore
//! publishes its roots: the Sigstore project's TUF client
//! (`sigstore-tuf`: root rotation, timestamp, snapshot, targets, every
//! signature threshold, version, expiry, length and hash checked) over this
//! crate's HTTP transport. The result is a `trusted_root.json` that also
//! builds as a [`TrustRoot`]; what it replaces is the caller's business.
//!
//! [`TufRoots`] holds the latest verified target of every source, shared by
//! the refresh tasks and the policy compile that reads it
//! ([`SideFiles::tuf_target`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, StatusCode};
use sigstore_tuf::transport::FetchFuture;
use sigstore_tuf::{MemoryStore, Updater, UpdaterConfig};

use super::registry::{Destination, Transport};
use crate::policy::{CaBundle, SideFiles, TrustRoot, TufSource};

/// Longest a single metadata or target download may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest `trusted_root.json` accepted (the public-good one is ~7 KiB).
const TARGET_LIMIT: u64 = 1 << 20;

/// The TUF repository at a source's URL, over HTTP(S): metadata at
/// `URL/<name>`, targets at `URL/targets/<path>`. 404 and 403 are "not
/// there" (the end of the root chain), as python-tuf treats them.
pub(crate) struct HttpRepository {
    transport: Arc<Transport>,
    https: bool,
    authority: String,
    /// The URL's path, without a trailing slash.
    base: String,
}

impl HttpRepository {
    /// The repository at `url` (checked by the policy compile: `http(s)`,
    /// a host, no query).
    pub(crate) fn new(url: &str, transport: Arc<Transport>) -> Result<HttpRepository, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("{url:?}: {e}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(format!("{url:?}: not an http(s) URL")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("{url:?}: no host"))?
            .as_str()
            .to_owned();
        Ok(HttpRepository {
            transport,
            https,
            authority,
            base: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    async fn get(&self, path: &str, limit: u64) -> sigstore_tuf::Result<Option<Vec<u8>>> {
        let target = Destination {
            https: self.https,
            authority: self.authority.clone(),
            path: format!("{}/{}", self.base, encode_path(path)),
        };
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let call = self
            .transport
            .send(&Method::GET, &target, None, None, limit);
        let reply = tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| sigstore_tuf::Error::transport(format!("{path}: timed out")))?
            .map_err(|e| sigstore_tuf::Error::transport(format!("{path}: {e}")))?;
        match reply.status {
            s if s.is_success() => Ok(Some(reply.body.to_vec())),
            StatusCode::NOT_FOUND | StatusCode::FORBIDDEN => Ok(None),
            s => Err(sigstore_tuf::Error::transport(format!(
                "{path}: HTTP status {s}"
            ))),
        }
    }
}

impl sigstore_tuf::Repository for HttpRepository {
    fn fetch_metadata<'a>(&'a self, name: &'a str, max_length: u64) -> FetchFuture<'a> {
        Box::pin(self.get(name, max_length))
    }

    fn fetch_target<'a>(&'a self, path: &'a str, max_length: u64) -> FetchFuture<'a> {
        Box::pin(async move { self.get(&format!("targets/{path}"), max_length).await })
    }
}

/// A repository-relative path as a URL path: `/` kept, every byte outside
/// the unreserved set percent-encoded (names come from signed metadata,
/// which is still not trusted to be a well-formed URL).
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One source's refresh state: the metadata verified so far (the newest
/// root, and the versions a later refresh may not go below).
pub struct TufClient {
    source: TufSource,
    transport: Arc<Transport>,
    store: Arc<MemoryStore>,
}

impl TufClient {
    /// A client for `source`, reaching it with the registry CA bundle `ca`.
    pub fn new(source: TufSource, ca: &CaBundle) -> TufClient {
        TufClient {
            source,
            transport: Arc::new(Transport::new(ca)),
            store: Arc::new(MemoryStore::new()),
        }
    }

    /// The source.
    pub fn source(&self) -> &TufSource {
        &self.source
    }

    /// Runs the TUF workflow from the newest root seen so far and returns
    /// the verified target, which must be a usable trusted root.
    pub async fn refresh(&self) -> Result<String, String> {
        crate::crypto::install();
        let repo = HttpRepository::new(self.source.url(), self.transport.clone())?;
        let mut config = UpdaterConfig::default();
        config.target_max_length = TARGET_LIMIT;
        // Cached roots, timestamp, snapshot and targets are re-verified from
        // the pinned root and set the floor for this refresh (anti-rollback
        // across refreshes).
        let mut updater = Updater::new(repo, self.source.root())
            .map_err(|e| format!("TUF root: {}", chain(&e)))?
            .with_config(config)
            .with_store(self.store.clone());
        let now = jiff::Timestamp::now();
        updater.refresh(now).await.map_err(|e| chain(&e))?;
        let bytes = updater
            .get_target(self.source.target(), now)
            .await
            .map_err(|e| chain(&e))?;
        let text =
            String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8", self.source.target()))?;
        TrustRoot::from_json(&text).map_err(|e| {
            format!(
                "{}: not a usable Sigstore trusted root: {e}",
                self.source.target()
            )
        })?;
        Ok(text)
    }
}

/// An error with its sources, on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// The latest verified target of every TUF source, by source id.
#[derive(Debug, Default)]
pub struct TufRoots {
    latest: Mutex<HashMap<[u8; 32], Arc<str>>>,
}

impl TufRoots {
    /// Records `text` as the source's latest target; whether it differs
    /// from the one before.
    pub fn put(&self, id: [u8; 32], text: &str) -> bool {
        let mut latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        if latest.get(&id).is_some_and(|t| **t == *text) {
            return false;
        }
        latest.insert(id, text.into());
        true
    }

    /// The latest target of `id`.
    pub fn get(&self, id: &[u8; 32]) -> Option<Arc<str>> {
        let latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        latest.get(id).cloned()
    }

    /// Forgets every source not in `keep`.
    pub fn retain(&self, keep: &[[u8; 32]]) {
        let mut latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        latest.retain(|id, _| keep.contains(id));
    }
}

/// Files from `files`, TUF targets from `roots`: what the server compiles
/// a policy with.
pub struct WithTufRoots<'a, F: ?Sized> {
    /// Where files come from.
    pub files: &'a F,
    /// Where refreshed roots come from.
    pub roots: &'a TufRoots,
}

impl<F: SideFiles + ?Sized> SideFiles for WithTufRoots<'_, F> {
    fn read(&self, path: &str) -> Result<String, String> {
        self.files.read(path)
    }

    fn tuf_target(&self, source: &TufSource) -> Option<String> {
        self.roots.get(&source.id()).map(|t| t.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_encoded() {
        assert_eq!(encode_path("2.root.json"), "2.root.json");
        assert_eq!(
            encode_path("targets/abc.trusted_root.json"),
            "targets/abc.trusted_root.json"
        );
        assert_eq!(encode_path("a b?c#d%"), "a%20b%3Fc%23d%25");
        assert_eq!(encode_path("é"), "%C3%A9");
    }

    #[test]
    fn roots_are_kept_per_source() {
        let roots = TufRoots::default();
        assert!(roots.put([1; 32], "a"));
        assert!(!roots.put([1; 32], "a"), "unchanged");
        assert!(roots.put([1; 32], "b"));
        assert!(roots.put([2; 32], "c"));
        assert_eq!(roots.get(&[1; 32]).as_deref(), Some("b"));
        roots.retain(&[[2; 32]]);
        assert_eq!(roots.get(&[1; 32]), None);
        assert_eq!(roots.get(&[2; 32]).as_deref(), Some("c"));
    }
}
