//! The policy engine: a YAML `ImagePolicy` compiled into an immutable
//! [`Snapshot`] that judges image references.
//!
//! Data flows one way: `source` (serde types of the YAML) → `compile`
//! (values checked, every error with its line and column) → pattern tries
//! → [`Snapshot`]. A review resolves its namespace once with
//! [`Snapshot::scope`] and then calls [`Scope::evaluate`] per image; that
//! path borrows from the snapshot and does not allocate.
//!
//! This module is pure: no I/O, no async, nothing of `verify` or `server`
//! (it depends on `reference` alone). Reading the policy file is the
//! caller's job ([`crate::load`]); the key, CA and credential files a policy
//! names are read through the caller's [`SideFiles`] while compiling, so a
//! bad key is a located policy error. The requirements a `verify` rule
//! imposes ([`Requirement`]) and what verifying comes to ([`Outcome`]) are
//! this module's types; `verify` implements them, and
//! [`crate::decide::Engine`] pairs a snapshot with its verifier.

mod access;
mod compile;
mod compile_keyless;
mod compile_scope;
mod compile_supply;
mod compile_tuf;
mod decision;
mod error;
mod evaluate;
mod explain;
mod keyless;
mod keys;
mod namespace;
mod outcome;
mod pattern;
mod requirement;
mod scope;
mod set;
mod source;
mod supply;
mod target;
mod trie;
mod tuf;
mod values;

#[cfg(test)]
mod tests;

pub use access::{CaBundle, CaBundleError, Credentials, CredentialsError};
pub(crate) use compile::too_large_message;
pub use compile::{
    API_VERSION, DEFAULT_BREAK_GLASS_ANNOTATION, KIND, MAX_POLICY_BYTES, MAX_SIDE_FILE_BYTES,
};
pub use decision::{Decision, Mode, Reason, Warning};
pub use error::{CompileError, CompileErrorKind, CompileErrors};
pub use keyless::{Claim, Identity, Keyless, Matcher, Signer, TrustRoot, TrustRootError};
pub use keys::{KeyError, KeySet, PublicKey};
pub use outcome::Outcome;
pub use pattern::PatternError;
pub use requirement::{MultiArch, Requirement, SbomKind, VulnLimits};
pub use scope::{Context, ImageJudgement, Scope, User};
pub use set::{MatchStrategy, PatternSet, PatternSetBuilder};
pub use supply::{
    CacheConfig, DEFAULT_VERIFICATION_TIMEOUT, MAX_VERIFICATION_TIMEOUT, OnError, SupplyChain,
    VerifyRule,
};
pub use tuf::{
    DEFAULT_TUF_REFRESH, DEFAULT_TUF_TARGET, PUBLIC_GOOD_TUF_URL, SIGSTORE_TUF_ROOT, TufSource,
};

use std::fmt;

use evaluate::{Resolved, Rules};
use namespace::NamespaceSet;

/// The one duration grammar of imagegate, for policy fields and for
/// command-line flags alike: humantime's (`500ms`, `30s`, `10m`, `168h`,
/// `7d`, `1h30m`, `2 weeks`), and a bare `0`. The error says what was
/// written and how to write it.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let trimmed = text.trim();
    if trimmed == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    humantime::parse_duration(trimmed)
        .map_err(|e| format!("invalid duration {text:?}: {e} (write it as 500ms, 5s, 10m or 168h)"))
}

/// The built-in default policy: the text of `examples/policy.yaml`.
pub const BUILTIN_POLICY: &str = include_str!("../../examples/policy.yaml");

/// A compiled, immutable policy; `Send + Sync`, shared behind one `ArcSwap`.
#[derive(Debug)]
pub struct Snapshot {
    generation: u64,
    name: Option<Box<str>>,
    base: Rules,
    overrides: Vec<Override>,
    exemptions: NamespaceSet,
    break_glass: Option<BreakGlass>,
    supply: SupplyChain,
}

/// `spec.overrides[i]`, compiled.
#[derive(Debug)]
struct Override {
    namespaces: NamespaceSet,
    rules: Rules,
}

/// `spec.breakGlass`, compiled; present only when enabled.
#[derive(Debug)]
struct BreakGlass {
    annotation: Box<str>,
    /// `None`: every namespace.
    namespaces: Option<NamespaceSet>,
    /// `None`: anyone who may create the pod.
    who: Option<BreakGlassWho>,
}

/// `spec.breakGlass.users` / `groups`: who may break the glass.
#[derive(Debug)]
struct BreakGlassWho {
    users: Vec<Box<str>>,
    groups: Vec<Box<str>>,
}

impl BreakGlassWho {
    /// Whether `user` is listed or in a listed group; a review without a
    /// user (ImageReview) never is.
    fn admits(&self, user: Option<&User<'_>>) -> bool {
        user.is_some_and(|u| {
            self.users.iter().any(|n| **n == *u.name)
                || u.groups
                    .iter()
                    .any(|g| self.groups.iter().any(|n| **n == **g))
        })
    }
}

impl Snapshot {
    fn new(
        name: Option<Box<str>>,
        base: Rules,
        overrides: Vec<Override>,
        exemptions: NamespaceSet,
        break_glass: Option<BreakGlass>,
    ) -> Snapshot {
        Snapshot {
            generation: 0,
            name,
            base,
            overrides,
            exemptions,
            break_glass,
            supply: SupplyChain::default(),
        }
    }

    fn with_supply(mut self, supply: SupplyChain) -> Snapshot {
        self.supply = supply;
        self
    }

    /// Parses and compiles a policy; every error carries its line and
    /// column, and all semantic errors are reported, not just the first.
    /// Files the policy names are read through `side_files`
    /// ([`crate::load::Disk`] reads them from disk).
    pub fn compile(text: &str, side_files: &dyn SideFiles) -> Result<Snapshot, CompileErrors> {
        compile::compile(text, MatchStrategy::Trie, side_files)
    }

    /// As [`Snapshot::compile`] with no files: a policy that names a key,
    /// CA or credentials file is a located error.
    pub fn from_yaml(text: &str) -> Result<Snapshot, CompileErrors> {
        compile::compile(text, MatchStrategy::Trie, &NoFiles)
    }

    /// As [`Snapshot::from_yaml`], with registry patterns matched by the
    /// given strategy (the linear scan exists for tests and benchmarks).
    pub fn from_yaml_with(text: &str, strategy: MatchStrategy) -> Result<Snapshot, CompileErrors> {
        compile::compile(text, strategy, &NoFiles)
    }

    /// The built-in default policy ([`BUILTIN_POLICY`]): any registry, a
    /// tag or digest required, `latest` forbidden.
    pub fn builtin() -> Snapshot {
        Snapshot::from_yaml(BUILTIN_POLICY).expect("the built-in policy compiles (tested)")
    }

    /// The generation set by [`Snapshot::with_generation`]; 0 by default.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Returns the snapshot with its generation number set.
    pub fn with_generation(mut self, generation: u64) -> Snapshot {
        self.generation = generation;
        self
    }

    /// `metadata.name` of the policy, when given.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The supply-chain settings: `verify` rules, deadline, failure mode,
    /// cache, registry access and digest pinning.
    pub fn supply_chain(&self) -> &SupplyChain {
        &self.supply
    }

    /// Every file the policy names besides itself (key files, registry CA
    /// and auth files), sorted: the server watches them like the policy,
    /// so that replacing a key revokes the old one without a restart.
    pub fn files(&self) -> &[std::path::PathBuf] {
        &self.supply.files
    }

    /// Every TUF repository a rule refreshes its trusted root from, once
    /// each: the server keeps them fresh and recompiles when one changes.
    pub fn tuf_sources(&self) -> &[TufSource] {
        &self.supply.tuf
    }

    /// The policy's base mode (an override may set another per namespace).
    pub fn mode(&self) -> Mode {
        self.base.mode
    }

    /// Resolves exemption, override and break-glass for one review.
    pub fn scope<'s>(&'s self, ctx: &Context<'_>) -> Scope<'s> {
        let ns = ctx.namespace;
        let rules = self
            .overrides
            .iter()
            .find(|o| o.namespaces.find(ns).is_some())
            .map_or(&self.base, |o| &o.rules);
        let break_glass = self.break_glass.as_ref().and_then(|b| {
            let in_scope = b
                .namespaces
                .as_ref()
                .is_none_or(|set| set.find(ns).is_some());
            let requested = ctx
                .annotations
                .iter()
                .any(|(k, v)| *k == &*b.annotation && !v.trim().is_empty());
            let permitted = b
                .who
                .as_ref()
                .is_none_or(|who| who.admits(ctx.user.as_ref()));
            (in_scope && requested && permitted).then_some(&*b.annotation)
        });
        Scope {
            resolved: Resolved {
                rules,
                exempt: self.exemptions.find(ns),
                break_glass,
            },
            on_error: self.supply.on_error,
        }
    }
}

/// Where compiling finds the files a policy names (keys, registry CA and
/// auth): the policy core reads none itself.
pub trait SideFiles {
    /// The text of the file at `path`, or why it cannot be had (a message
    /// that names the path).
    fn read(&self, path: &str) -> Result<String, String>;

    /// The latest verified target of a TUF source (a `trusted_root.json`),
    /// when one has been fetched: the rule uses it instead of its
    /// `trustedRoot` file or the embedded root. None by default.
    fn tuf_target(&self, source: &TufSource) -> Option<String> {
        let _ = source;
        None
    }
}

/// No files at all: every file a policy names is a located error.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFiles;

impl SideFiles for NoFiles {
    fn read(&self, path: &str) -> Result<String, String> {
        Err(format!("cannot read {path:?}: files are not read here"))
    }
}

/// Files held in memory, by path (for tests and embedders).
impl<S: std::hash::BuildHasher> SideFiles for std::collections::HashMap<String, String, S> {
    fn read(&self, path: &str) -> Result<String, String> {
        self.get(path)
            .cloned()
            .ok_or_else(|| format!("cannot read {path:?}: no such file"))
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
