//! The supply-chain part of a policy, compiled: `spec.verify` rules (image
//! patterns and the [`Requirement`] they impose), `spec.verification`
//! (deadline, failure mode, cache), `spec.registries.insecure`/`auth`/`ca` and
//! `spec.mutate`.
//!
//! Compiling reads the key files and the dockerconfigjson and CA files a
//! policy names, through the caller's `SideFiles`, so that a bad key is a
//! located error of the policy rather than a failure at review time. Nothing here talks to a
//! registry: [`crate::decide::Engine`] builds the verifier from these
//! settings.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::access::{CaBundle, Credentials};
use super::requirement::Requirement;
use super::set::PatternSet;
use crate::reference::Reference;

/// The review deadline when `spec.verification.timeout` is not set.
pub const DEFAULT_VERIFICATION_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest `spec.verification.timeout` accepted: the apiserver's own
/// webhook timeout is at most 30 s, and the answer must arrive before it.
pub const MAX_VERIFICATION_TIMEOUT: Duration = Duration::from_secs(25);

/// What a review does when the registry cannot answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Deny the image with `verification_unavailable` (fail closed).
    #[default]
    Deny,
    /// Admit the image; the reason is still reported and counted.
    Allow,
}

impl OnError {
    /// The policy spelling: `deny` or `allow`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnError::Deny => "deny",
            OnError::Allow => "allow",
        }
    }
}

/// Lifetimes and bound of the caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// How long a verified digest is trusted.
    pub allow_ttl: Duration,
    /// How long a failed digest stays failed before it is checked again.
    pub deny_ttl: Duration,
    /// How long a tag → digest resolution is reused.
    pub tag_ttl: Duration,
    /// Entries per cache.
    pub max_entries: usize,
}

impl Default for CacheConfig {
    fn default() -> CacheConfig {
        CacheConfig {
            allow_ttl: Duration::from_secs(600),
            deny_ttl: Duration::from_secs(30),
            tag_ttl: Duration::from_secs(30),
            max_entries: 100_000,
        }
    }
}

/// One `spec.verify` rule, compiled.
#[derive(Debug)]
pub struct VerifyRule {
    pub(crate) images: Arc<PatternSet>,
    pub(crate) requirement: Requirement,
}

impl VerifyRule {
    /// The image patterns the rule applies to.
    pub fn images(&self) -> &PatternSet {
        &self.images
    }

    /// What the rule demands of a matching image.
    pub fn requirement(&self) -> &Requirement {
        &self.requirement
    }
}

/// The compiled supply-chain settings of a policy (empty by default: no
/// rules, nothing ever touches the network).
#[derive(Default)]
pub struct SupplyChain {
    pub(crate) rules: Vec<VerifyRule>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) on_error: OnError,
    pub(crate) cache: CacheConfig,
    pub(crate) insecure: Vec<String>,
    pub(crate) credentials: Credentials,
    /// sha256 of the dockerconfigjson text (compared on reload, never shown).
    pub(crate) credentials_id: Option<[u8; 32]>,
    /// `spec.registries.ca`: private CAs for registry TLS.
    pub(crate) ca: CaBundle,
    pub(crate) pin_digests: bool,
    /// Every file the policy names (keys, CA, auth), for watching.
    pub(crate) files: Vec<std::path::PathBuf>,
    /// Every TUF repository trusted roots are refreshed from, once each.
    pub(crate) tuf: Vec<super::TufSource>,
}

impl fmt::Debug for SupplyChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Credentials are never printed.
        f.debug_struct("SupplyChain")
            .field("rules", &self.rules)
            .field("timeout", &self.timeout())
            .field("on_error", &self.on_error)
            .field("cache", &self.cache)
            .field("insecure", &self.insecure)
            .field("auth", &self.credentials_id.is_some())
            .field("ca", &self.ca)
            .field("pin_digests", &self.pin_digests)
            .field("files", &self.files)
            .field("tuf", &self.tuf)
            .finish()
    }
}

impl SupplyChain {
    /// The `verify` rules, in policy order.
    pub fn rules(&self) -> &[VerifyRule] {
        &self.rules
    }

    /// Whether any `verify` rule exists (otherwise no review ever waits).
    pub fn has_rules(&self) -> bool {
        !self.rules.is_empty()
    }

    /// The requirements of every rule whose images match `image`, in
    /// policy order.
    pub fn requirements<'s, 'r>(
        &'s self,
        image: &'r Reference<'r>,
    ) -> impl Iterator<Item = &'s Requirement> + use<'s, 'r> {
        self.rules
            .iter()
            .filter(move |r| r.images.matches(image).is_some())
            .map(|r| &r.requirement)
    }

    /// Whether some rule applies to the image string (false for an
    /// unparseable one: the policy denies those already).
    pub fn applies_to(&self, image: &str) -> bool {
        Reference::parse(image).is_ok_and(|r| self.requirements(&r).next().is_some())
    }

    /// The one deadline of a review that verifies images.
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_VERIFICATION_TIMEOUT)
    }

    /// `spec.verification.onError`.
    pub fn on_error(&self) -> OnError {
        self.on_error
    }

    /// `spec.mutate.pinDigests`.
    pub fn pin_digests(&self) -> bool {
        self.pin_digests
    }

    /// `spec.registries.insecure`: registries reached over plain HTTP.
    pub fn insecure(&self) -> &[String] {
        &self.insecure
    }

    /// `spec.registries.auth`: basic credentials per registry.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// `spec.registries.ca`: private CAs for registry TLS.
    pub fn ca(&self) -> &CaBundle {
        &self.ca
    }

    /// `spec.verification.cache`: lifetimes and bound of the caches.
    pub fn cache(&self) -> CacheConfig {
        self.cache
    }

    /// Whether a verifier built for `other` serves this policy unchanged
    /// (same registries, credentials and cache settings), so that its
    /// cache can survive a reload. Results are keyed by requirement
    /// fingerprints (keys included), so changed rules never reuse a stale
    /// verdict.
    pub fn same_verifier(&self, other: &SupplyChain) -> bool {
        self.insecure == other.insecure
            && self.credentials_id == other.credentials_id
            && self.ca == other.ca
            && self.cache == other.cache
    }
}

/// sha256 of a credentials file's text.
pub(crate) fn text_id(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}
