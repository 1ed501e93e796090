//! Source → compiled [`Snapshot`]: checks every value, reports every
//! problem it finds with its line and column, and builds the pattern tries.
//!
//! The YAML parser stops at the first syntax or shape error (unknown field,
//! wrong type); once the file has the right shape, every semantic error is
//! collected, so one run of `policy validate` lists them all.

use std::sync::Arc;

use serde_saphyr::Location;

use super::decision::Mode;
use super::error::{CompileError, CompileErrorKind as Kind, CompileErrors};
use super::evaluate::{Rules, TagRules};
use super::namespace::NamespaceSet;
use super::set::{MatchStrategy, PatternSet, PatternSetBuilder};
use super::source::{self, PolicyFile, Text};
use super::values::is_tag;
use super::{SideFiles, Snapshot};

/// The `apiVersion` of a policy file.
pub const API_VERSION: &str = "imagegate.dev/v1alpha1";
/// The `kind` of a policy file.
pub const KIND: &str = "ImagePolicy";
/// The break-glass annotation when `spec.breakGlass.annotation` is not set.
pub const DEFAULT_BREAK_GLASS_ANNOTATION: &str = "break-glass.image-policy.k8s.io/reason";
/// Largest policy file accepted, in bytes, by every command (`serve` at
/// start and on reload, `check`, `policy validate`): room for some 100 000
/// registry patterns, and a bound on what a runaway file can make the
/// process hold.
pub const MAX_POLICY_BYTES: usize = 8 << 20;
/// Largest key or dockerconfigjson file read while compiling, in bytes.
pub const MAX_SIDE_FILE_BYTES: u64 = 1 << 20;

pub(crate) fn compile(
    text: &str,
    strategy: MatchStrategy,
    side_files: &dyn SideFiles,
) -> Result<Snapshot, CompileErrors> {
    let file = parse(text).map_err(|e| CompileErrors::new(vec![e]))?;
    let mut c = Compiler {
        errors: Vec::new(),
        strategy,
        files: Vec::new(),
        tuf: Vec::new(),
        side_files,
    };
    c.header(&file);
    let mut snapshot = c.spec(&file);
    c.files.sort();
    c.files.dedup();
    snapshot.supply.files = std::mem::take(&mut c.files);
    snapshot.supply.tuf = std::mem::take(&mut c.tuf);
    if c.errors.is_empty() {
        return Ok(snapshot);
    }
    c.errors.sort_by_key(|e| (e.line, e.column));
    Err(CompileErrors::new(c.errors))
}

/// The one message for a policy over [`MAX_POLICY_BYTES`].
pub(crate) fn too_large_message() -> String {
    format!(
        "policy is larger than {} MiB, the limit for policy files",
        MAX_POLICY_BYTES >> 20
    )
}

fn parse(text: &str) -> Result<PolicyFile, CompileError> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(CompileError::new(Kind::Syntax, 1, 1, too_large_message()));
    }
    let budget = serde_saphyr::budget! {
        max_depth: 32,
        max_nodes: 1_000_000,
        max_events: 4_000_000,
        max_aliases: 1_000,
        max_anchors: 1_000,
        max_recorded_anchor_events: 100_000,
        max_documents: 1,
        max_total_scalar_bytes: MAX_POLICY_BYTES,
    };
    let mut alias_limits = serde_saphyr::options::AliasLimits::default();
    alias_limits.max_total_replayed_events = 100_000;
    let options = serde_saphyr::options! {
        budget: budget,
        alias_limits: alias_limits,
        strict_booleans: true,
        with_snippet: false,
    };
    serde_saphyr::from_str_with_options::<PolicyFile>(text, options).map_err(|e| {
        let (line, column) = e
            .location()
            .map_or((1, 1), |l| (clamp(l.line()), clamp(l.column())));
        let rendered = e.render_with_formatter(&serde_saphyr::UserMessageFormatter);
        let suffix = format!(" at line {line}, column {column}");
        let message = rendered
            .strip_suffix(&suffix)
            .unwrap_or(&rendered)
            .to_owned();
        let blank = text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
        let message = if blank {
            "policy is empty: it needs at least apiVersion and kind".to_owned()
        } else {
            message
        };
        CompileError::new(Kind::Syntax, line, column, message)
    })
}

pub(super) fn clamp(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

pub(super) struct Compiler<'f> {
    errors: Vec<CompileError>,
    strategy: MatchStrategy,
    /// Every file the policy names (keys, registry CA, auth), read or not.
    pub(super) files: Vec<std::path::PathBuf>,
    /// Every TUF repository a rule refreshes its trusted root from, once.
    pub(super) tuf: Vec<super::TufSource>,
    /// Where those files are read from.
    pub(super) side_files: &'f dyn SideFiles,
}

impl Compiler<'_> {
    pub(super) fn error_count(&self) -> usize {
        self.errors.len()
    }

    pub(super) fn error(&mut self, kind: Kind, at: &Location, message: String) {
        self.errors.push(CompileError::new(
            kind,
            clamp(at.line()),
            clamp(at.column()),
            message,
        ));
    }

    fn header(&mut self, file: &PolicyFile) {
        if file.api_version.value != API_VERSION {
            self.error(
                Kind::Header,
                &file.api_version.referenced,
                format!(
                    "unsupported apiVersion {:?}: expected {API_VERSION:?}",
                    file.api_version.value
                ),
            );
        }
        if file.kind.value != KIND {
            self.error(
                Kind::Header,
                &file.kind.referenced,
                format!("unsupported kind {:?}: expected {KIND:?}", file.kind.value),
            );
        }
    }

    fn spec(&mut self, file: &PolicyFile) -> Snapshot {
        let name = file
            .metadata
            .as_ref()
            .and_then(|m| m.name.as_deref())
            .map(Into::into);
        let Some(spec) = &file.spec else {
            return Snapshot::new(
                name,
                everything_allowed(),
                Vec::new(),
                NamespaceSet::default(),
                None,
            );
        };

        let mode = self
            .mode(spec.mode.as_ref(), "spec.mode")
            .unwrap_or_default();
        let (allow, deny) = self.registries(spec.registries.as_ref(), "spec.registries");
        let base = Rules {
            mode,
            allow: allow.flatten(),
            deny: deny.flatten(),
            tags: self.tags(spec.tags.as_ref(), "spec.tags", TagRules::default()),
        };
        let exemptions = self.namespaces(
            spec.exemptions
                .as_ref()
                .and_then(|e| e.namespaces.as_deref()),
            "spec.exemptions.namespaces",
        );
        let mut overrides = Vec::new();
        for (i, o) in spec.overrides.iter().flatten().enumerate() {
            overrides.push(self.override_rule(o, i, &base));
        }
        let break_glass = spec.break_glass.as_ref().and_then(|b| self.break_glass(b));
        let supply = self.supply(spec);
        Snapshot::new(name, base, overrides, exemptions, break_glass).with_supply(supply)
    }

    pub(super) fn mode(&mut self, mode: Option<&Text>, field: &str) -> Option<Mode> {
        let mode = mode?;
        match mode.value.as_str() {
            "enforce" => Some(Mode::Enforce),
            "audit" => Some(Mode::Audit),
            other => {
                self.error(
                    Kind::Value,
                    &mode.referenced,
                    format!("{field}: unknown mode {other:?}: expected \"enforce\" or \"audit\""),
                );
                None
            }
        }
    }

    /// Each list is `None` when absent, `Some(None)` when given but empty.
    #[allow(clippy::type_complexity, reason = "absent vs. empty vs. patterns")]
    pub(super) fn registries(
        &mut self,
        registries: Option<&source::Registries>,
        field: &str,
    ) -> (
        Option<Option<Arc<PatternSet>>>,
        Option<Option<Arc<PatternSet>>>,
    ) {
        let Some(r) = registries else {
            return (None, None);
        };
        if field != "spec.registries" {
            // Registry access is global: one client serves every namespace.
            for (name, at) in [
                (
                    "insecure",
                    r.insecure
                        .as_ref()
                        .and_then(|l| l.first())
                        .map(|t| &t.referenced),
                ),
                ("auth", r.auth.as_ref().map(|t| &t.referenced)),
                ("ca", r.ca.as_ref().map(|t| &t.referenced)),
            ] {
                if let Some(at) = at {
                    self.error(
                        Kind::Value,
                        at,
                        format!("{field}.{name}: only allowed in spec.registries (one registry client serves every namespace)"),
                    );
                }
            }
        }
        let allow = r
            .allow
            .as_deref()
            .map(|l| self.patterns(l, &format!("{field}.allow")));
        let deny = r
            .deny
            .as_deref()
            .map(|l| self.patterns(l, &format!("{field}.deny")));
        (allow, deny)
    }

    pub(super) fn patterns(&mut self, list: &[Text], field: &str) -> Option<Arc<PatternSet>> {
        let mut builder = PatternSetBuilder::new();
        for (i, item) in list.iter().enumerate() {
            if let Err(e) = builder.add(&item.value) {
                self.error(
                    Kind::Pattern,
                    &item.referenced,
                    format!("{field}[{i}]: {e}"),
                );
            }
        }
        if builder.is_empty() {
            return None;
        }
        Some(Arc::new(builder.build_with(self.strategy)))
    }

    /// `spec.tags` over `base`: each field given replaces the base's.
    pub(super) fn tags(
        &mut self,
        tags: Option<&source::Tags>,
        field: &str,
        base: TagRules,
    ) -> TagRules {
        let Some(t) = tags else {
            return base;
        };
        let forbid = match &t.forbid {
            None => base.forbid,
            Some(list) => {
                let mut forbid = Vec::with_capacity(list.len());
                for (i, tag) in list.iter().enumerate() {
                    if is_tag(&tag.value) {
                        forbid.push(tag.value.as_str().into());
                    } else {
                        self.error(
                            Kind::Value,
                            &tag.referenced,
                            format!(
                                "{field}.forbid[{i}]: {:?} is not a valid tag (1 to 128 letters, digits, '_', '.', '-'; not starting with '.' or '-')",
                                tag.value
                            ),
                        );
                    }
                }
                forbid
            }
        };
        TagRules {
            require_tag_or_digest: t
                .require_tag_or_digest
                .unwrap_or(base.require_tag_or_digest),
            forbid,
            require_digest: t.require_digest.unwrap_or(base.require_digest),
            semver: t.semver.unwrap_or(base.semver),
        }
    }
}

fn everything_allowed() -> Rules {
    Rules {
        mode: Mode::Enforce,
        allow: None,
        deny: None,
        tags: TagRules::default(),
    }
}
