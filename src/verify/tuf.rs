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

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, StatusCode};
use sigstore_tuf::transport::FetchFuture;
use sigstore_tuf::{MetadataStore, Updater, UpdaterConfig};

use super::registry::{self, Destination, Transport};
use crate::policy::{CaBundle, SideFiles, TrustRoot, TufSource};

/// Longest a single metadata or target download may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest `trusted_root.json` accepted (the public-good one is ~7 KiB).
const TARGET_LIMIT: u64 = 1 << 20;
/// Redirects followed for one download.
const MAX_REDIRECTS: usize = 3;

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
        let fail = |why: String| sigstore_tuf::Error::transport(format!("{path}: {why}"));
        let mut target = Destination {
            https: self.https,
            authority: self.authority.clone(),
            path: format!("{}/{}", self.base, encode_path(path)),
        };
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        // A few redirects are followed (mirrors on object stores use them),
        // never from HTTPS to plain HTTP; what is fetched is verified all
        // the same.
        for _ in 0..=MAX_REDIRECTS {
            let call = self
                .transport
                .send(&Method::GET, &target, None, None, limit);
            let reply = tokio::time::timeout(CALL_TIMEOUT, call)
                .await
                .map_err(|_| fail("timed out".into()))?
                .map_err(|e| fail(e.to_string()))?;
            match reply.status {
                s if s.is_success() => return Ok(Some(reply.body.to_vec())),
                StatusCode::NOT_FOUND | StatusCode::FORBIDDEN => return Ok(None),
                s if s.is_redirection() => {
                    let location = reply
                        .headers
                        .get(http::header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .ok_or_else(|| fail(format!("HTTP status {s} without a location")))?;
                    target = redirect(&target, location).map_err(fail)?;
                }
                s => return Err(fail(format!("HTTP status {s}"))),
            }
        }
        Err(fail(format!("more than {MAX_REDIRECTS} redirects")))
    }
}

/// Where a redirect from `from` to `location` goes: the registry client's
/// rules, with plain HTTP only from plain HTTP (never from HTTPS down),
/// and no credentials in the URL.
fn redirect(from: &Destination, location: &str) -> Result<Destination, String> {
    let credentials = location
        .parse::<http::Uri>()
        .ok()
        .and_then(|uri| uri.authority().map(|a| a.as_str().contains('@')))
        .unwrap_or(false);
    if credentials {
        return Err(format!(
            "refusing a redirect with credentials: {location:?}"
        ));
    }
    registry::redirect(from, location, |_| !from.https)
        .map_err(|why| format!("{why}: {location:?}"))
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

/// The metadata of one source verified so far, in memory: the newest
/// root and its history (a later refresh starts from it), and the
/// timestamp, snapshot and targets a later refresh may not go below. Kept
/// by the caller for as long as the source is in the policy, so that a new
/// client for it (another interval, another CA) keeps the floors.
/// The versioned copies of the snapshot (`N.snapshot.json`, up to 2 MB
/// each, one per publication) are not kept: `snapshot.json` is the one the
/// floors are read from.
#[derive(Debug, Default)]
pub struct TufStore {
    files: Mutex<HashMap<String, Vec<u8>>>,
}

impl MetadataStore for TufStore {
    fn load(&self, name: &str) -> sigstore_tuf::Result<Option<Vec<u8>>> {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        Ok(files.get(name).cloned())
    }

    fn store(&self, name: &str, bytes: &[u8]) -> sigstore_tuf::Result<()> {
        let versioned_snapshot = name
            .strip_suffix(".snapshot.json")
            .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
        if !versioned_snapshot {
            let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
            files.insert(name.to_owned(), bytes.to_vec());
        }
        Ok(())
    }
}

/// One source's client: the source, its transport, and the metadata
/// verified so far.
pub struct TufClient {
    source: TufSource,
    transport: Arc<Transport>,
    store: Arc<TufStore>,
}

impl TufClient {
    /// A client for `source`, reaching it with the registry CA bundle `ca`,
    /// starting from what `store` holds.
    pub fn new(source: TufSource, ca: &CaBundle, store: Arc<TufStore>) -> TufClient {
        TufClient {
            source,
            transport: Arc::new(Transport::new(ca)),
            store,
        }
    }

    /// The source.
    pub fn source(&self) -> &TufSource {
        &self.source
    }

    /// Runs the TUF workflow from the newest root seen so far and returns
    /// the verified target, which must be a usable trusted root.
    pub async fn refresh(&self) -> Result<String, String> {
        self.refresh_at(jiff::Timestamp::now()).await
    }

    /// [`TufClient::refresh`] with expiry judged at `now`.
    pub async fn refresh_at(&self, now: jiff::Timestamp) -> Result<String, String> {
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

/// The latest verified target of every TUF source, by source id, and
/// whether the policy in force was compiled with the latest of them.
#[derive(Debug, Default)]
pub struct TufRoots {
    state: Mutex<RootsState>,
}

#[derive(Debug, Default)]
struct RootsState {
    latest: HashMap<[u8; 32], Arc<str>>,
    /// The sources of the policy in force: a late answer for another is
    /// dropped.
    wanted: HashSet<[u8; 32]>,
    /// Bumped by every change of `latest`.
    generation: u64,
    /// The generation the policy in force was compiled with.
    applied: u64,
}

impl TufRoots {
    fn state(&self) -> std::sync::MutexGuard<'_, RootsState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `text` as the source's latest target; whether the policy
    /// must be compiled again for it (a different root, or an earlier one
    /// not yet in force).
    pub fn put(&self, id: [u8; 32], text: &str) -> bool {
        let mut state = self.state();
        if !state.wanted.contains(&id) {
            return false;
        }
        if state.latest.get(&id).is_none_or(|t| **t != *text) {
            state.latest.insert(id, text.into());
            state.generation += 1;
        }
        state.generation != state.applied
    }

    /// The latest target of `id`.
    pub fn get(&self, id: &[u8; 32]) -> Option<Arc<str>> {
        self.state().latest.get(id).cloned()
    }

    /// The sources of the policy in force: every other is forgotten.
    pub fn retain(&self, keep: &[[u8; 32]]) {
        let mut state = self.state();
        state.wanted = keep.iter().copied().collect();
        let RootsState { latest, wanted, .. } = &mut *state;
        latest.retain(|id, _| wanted.contains(id));
    }

    /// The current generation; read before a compile, given to
    /// [`TufRoots::applied`] once its policy is in force.
    pub fn generation(&self) -> u64 {
        self.state().generation
    }

    /// The policy compiled at `generation` is in force.
    pub fn applied(&self, generation: u64) {
        let mut state = self.state();
        state.applied = state.applied.max(generation);
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
mod tests;
