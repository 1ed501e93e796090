//! Supply-chain verification: cosign signatures, SBOM and vulnerability
//! attestations read from the image's registry, judged against the policy's
//! [`Requirement`], cached per digest. The policy's types are implemented
//! here: a requirement in, an [`Outcome`] out.
//!
//! [`Verifier::verify`] resolves the image to its digest (tags briefly
//! cached), answers from the result cache when it can, and otherwise runs
//! one registry round per (repository, digest, requirement) however many
//! reviews ask at once. Every wait is bounded by the caller's deadline; a
//! check that runs out of time, is cancelled or meets a broken registry is
//! [`Outcome::Unavailable`], never a success. Content that does not match
//! its digest is not an outage but evidence that fails: a definite
//! failure, which `onError: allow` does not admit.
//!
//! Nothing here knows the policy file or the wire formats of reviews.

mod cache;
mod digest;
mod dsse;
mod evidence;
pub mod keyless;
pub mod registry;
mod round;
mod simple_signing;
pub mod tuf;
mod vuln;

pub use digest::{Digest, DigestError};
pub use dsse::{Envelope, Statement, pae};
pub use registry::{Registry, RegistryConfig, RegistryError, RegistryErrorKind, Repository};
pub use simple_signing::signed_image_digest;
pub use vuln::{Scan, Scanner, VULN_PREDICATE};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use dashmap::DashMap;
use tokio::sync::OnceCell;

use crate::policy::{CacheConfig, Outcome, Requirement};
use crate::reference::Reference;
use cache::{Caches, ResultKey};

/// A wall clock (scan ages are judged against it); replaceable in tests.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Settings of a [`Verifier`].
#[derive(Debug, Clone, Default)]
pub struct VerifierConfig {
    /// The registry client's settings.
    pub registry: RegistryConfig,
    /// Cache lifetimes and bound.
    pub cache: CacheConfig,
}

/// The result of one verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    /// The verdict.
    pub outcome: Outcome,
    /// The digest that was judged (known unless resolution failed).
    pub digest: Option<Digest>,
    /// Whether the verdict came from the cache.
    pub cached: bool,
}

/// Counters of the verifier's work (read by metrics and tests).
#[derive(Debug, Default)]
pub struct Stats {
    /// Results answered from the cache.
    pub cache_hits: AtomicU64,
    /// Results not in the cache.
    pub cache_misses: AtomicU64,
    /// Misses that waited on another review's registry round.
    pub coalesced: AtomicU64,
    /// Registry rounds run (one per uncached digest and requirement).
    pub rounds: AtomicU64,
    /// Tag resolutions answered from the tag cache.
    pub tag_hits: AtomicU64,
}

type InFlight = Arc<OnceCell<Outcome>>;

/// Verifies images against requirements; share it behind an `Arc`.
pub struct Verifier {
    /// Unique in the process: tells one verifier's counters from the next.
    id: u64,
    registry: Registry,
    caches: Caches,
    in_flight: DashMap<ResultKey, InFlight>,
    clock: Clock,
    stats: Stats,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("registry", &self.registry)
            .field("cache", &self.caches.config)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier with its own registry client and empty caches.
    pub fn new(config: VerifierConfig) -> Verifier {
        Verifier::with_registry(Registry::new(config.registry), config.cache)
    }

    /// A verifier around an existing client (e.g. one with an observer).
    pub fn with_registry(registry: Registry, cache: CacheConfig) -> Verifier {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Verifier {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            registry,
            caches: Caches::new(cache),
            in_flight: DashMap::new(),
            clock: Arc::new(SystemTime::now),
            stats: Stats::default(),
        }
    }

    /// Replaces the wall clock used to judge scan ages.
    pub fn with_clock(mut self, clock: Clock) -> Verifier {
        self.clock = clock;
        self
    }

    /// A number no other verifier of this process has: its counters start
    /// at zero when a reload brings a new verifier.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The work counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Registry rounds under way (digests being verified right now); each
    /// is removed when its round ends or its last waiter gives up.
    pub fn rounds_in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The registry client.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Verifies `image` against `req`, waiting until `deadline` at most.
    pub async fn verify(
        &self,
        image: &Reference<'_>,
        req: &Requirement,
        deadline: Instant,
    ) -> Verification {
        until(deadline, self.verify_inner(image, None, req)).await
    }

    /// As [`Verifier::verify`], at `digest`: the one a first rule resolved
    /// `image`'s tag to (the pipeline's rules share one digest), which
    /// replaces the tag or digest `image` names.
    pub(crate) async fn verify_at(
        &self,
        image: &Reference<'_>,
        digest: Digest,
        req: &Requirement,
        deadline: Instant,
    ) -> Verification {
        debug_assert!(
            image
                .digest()
                .is_none_or(|d| Digest::parse(d).ok() == Some(digest))
        );
        until(deadline, self.verify_inner(image, Some(digest), req)).await
    }

    /// The cached verdict for `image`, without any network: `None` when the
    /// digest (or, for a tag, its resolution) or the result is not cached.
    pub fn cached(&self, image: &Reference<'_>, req: &Requirement) -> Option<Verification> {
        let now = Instant::now();
        let repo = repo_key(image);
        let digest = match image.digest() {
            Some(d) => Digest::parse(d).ok()?,
            None => self.caches.tags.get(&tag_key(&repo, image), now)?,
        };
        let key = ResultKey {
            repo,
            digest,
            fingerprint: req.fingerprint(),
        };
        let outcome = self.caches.results.get(&key, now)?;
        Some(Verification {
            outcome,
            digest: Some(digest),
            cached: true,
        })
    }

    async fn verify_inner(
        &self,
        image: &Reference<'_>,
        at: Option<Digest>,
        req: &Requirement,
    ) -> Verification {
        let unavailable = |digest| Verification {
            outcome: Outcome::Unavailable,
            digest,
            cached: false,
        };
        let repo = Repository {
            domain: image.domain().to_owned(),
            path: image.path().to_string(),
        };
        let repo_id = repo_key(image);
        let digest = match (at, image.digest()) {
            (Some(d), _) => d,
            (None, Some(d)) => match Digest::parse(d) {
                Ok(d) => d,
                // A digest we cannot check against content (sha512,
                // sha384, ...) proves nothing, however healthy the
                // registry: a definite failure, never "unavailable", so
                // that `onError: allow` cannot admit it.
                Err(_) => {
                    return Verification {
                        outcome: Outcome::SignatureInvalid,
                        digest: None,
                        cached: false,
                    };
                }
            },
            (None, None) => {
                let key = tag_key(&repo_id, image);
                if let Some(d) = self.caches.tags.get(&key, Instant::now()) {
                    self.stats.tag_hits.fetch_add(1, Ordering::Relaxed);
                    d
                } else {
                    match self
                        .registry
                        .resolve(&repo, image.tag().unwrap_or("latest"))
                        .await
                    {
                        Ok(Some(d)) => {
                            self.caches.tags.insert(
                                key,
                                d,
                                self.caches.config.tag_ttl,
                                Instant::now(),
                            );
                            d
                        }
                        Ok(None) => {
                            return Verification {
                                outcome: req.missing(),
                                digest: None,
                                cached: false,
                            };
                        }
                        Err(e) if e.kind() == RegistryErrorKind::DigestMismatch => {
                            return Verification {
                                outcome: req.tampered(),
                                digest: None,
                                cached: false,
                            };
                        }
                        Err(_) => return unavailable(None),
                    }
                }
            }
        };
        let key = ResultKey {
            repo: repo_id,
            digest,
            fingerprint: req.fingerprint(),
        };
        if let Some(outcome) = self.caches.results.get(&key, Instant::now()) {
            self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Verification {
                outcome,
                digest: Some(digest),
                cached: true,
            };
        }
        self.stats.cache_misses.fetch_add(1, Ordering::Relaxed);
        let mut joined = true;
        let cell = self
            .in_flight
            .entry(key.clone())
            .or_insert_with(|| {
                joined = false;
                Arc::new(OnceCell::new())
            })
            .clone();
        if joined {
            self.stats.coalesced.fetch_add(1, Ordering::Relaxed);
        }
        // If the task running the round is cancelled, the cell stays empty
        // and the next waiter runs the round itself: no waiter ever sees a
        // result that was not computed. The last waiter to be cancelled
        // takes the empty entry out (a round cut by a review's deadline would
        // otherwise leave one entry per digest behind).
        let _cancelled = InFlightGuard {
            map: &self.in_flight,
            key: &key,
            cell: &cell,
        };
        let outcome = *cell
            .get_or_init(|| async {
                self.stats.rounds.fetch_add(1, Ordering::Relaxed);
                let outcome = self.round(&repo, digest, req).await;
                self.caches.store(key.clone(), outcome, Instant::now());
                self.in_flight.remove_if(&key, |_, v| Arc::ptr_eq(v, &cell));
                outcome
            })
            .await;
        Verification {
            outcome,
            digest: Some(digest),
            cached: false,
        }
    }
}

/// `verification`, or unavailable if it has not finished by `deadline`.
async fn until(
    deadline: Instant,
    verification: impl Future<Output = Verification>,
) -> Verification {
    tokio::time::timeout_at(deadline.into(), verification)
        .await
        .unwrap_or(Verification {
            outcome: Outcome::Unavailable,
            digest: None,
            cached: false,
        })
}

/// Removes an in-flight entry that no one is waiting on any more when its
/// waiter goes away (cancelled or done); a finished round has removed it
/// already.
struct InFlightGuard<'a> {
    map: &'a DashMap<ResultKey, InFlight>,
    key: &'a ResultKey,
    cell: &'a InFlight,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        // Two references: the map's and this waiter's. More means another
        // waiter, which will run (or finish) the round and clean up itself.
        self.map.remove_if(self.key, |_, v| {
            Arc::ptr_eq(v, self.cell) && Arc::strong_count(v) <= 2
        });
    }
}

fn repo_key(image: &Reference<'_>) -> String {
    format!("{}/{}", image.domain().to_ascii_lowercase(), image.path())
}

fn tag_key(repo: &str, image: &Reference<'_>) -> String {
    format!("{repo}:{}", image.tag().unwrap_or("latest"))
}
