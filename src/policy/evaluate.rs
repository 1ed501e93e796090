//! Judging one image against the rules in force for a namespace.
//!
//! Order (first answer wins): parse → exemption → registry deny → registry
//! allow → missing tag → forbidden tag → required digest → semver; then
//! break-glass may admit a deny. Nothing here allocates.

use std::sync::Arc;

use super::decision::{Decision, Mode, Reason, Warning};
use super::set::PatternSet;
use super::target::Target;
use crate::reference::Reference;

/// The registry and tag rules of the base policy or of one override.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    pub(crate) mode: Mode,
    /// `None` when the allow list is empty (any registry).
    pub(crate) allow: Option<Arc<PatternSet>>,
    pub(crate) deny: Option<Arc<PatternSet>>,
    pub(crate) tags: TagRules,
}

/// `spec.tags`, compiled.
#[derive(Debug, Clone, Default)]
pub(crate) struct TagRules {
    pub(crate) require_tag_or_digest: bool,
    /// Forbidden tags as written (compared case-insensitively).
    pub(crate) forbid: Vec<Box<str>>,
    pub(crate) require_digest: bool,
    pub(crate) semver: bool,
}

impl TagRules {
    fn forbids(&self, tag: &str) -> Option<&str> {
        self.forbid
            .iter()
            .find(|f| f.eq_ignore_ascii_case(tag))
            .map(|f| &**f)
    }
}

/// What a review's namespace resolved to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resolved<'s> {
    pub(crate) rules: &'s Rules,
    /// The exemption entry that matched the namespace.
    pub(crate) exempt: Option<&'s str>,
    /// The break-glass annotation key, when break-glass is in force.
    pub(crate) break_glass: Option<&'s str>,
}

impl<'s> Resolved<'s> {
    pub(crate) fn evaluate(&self, image: &str) -> Decision<'s> {
        // An invalid reference is never exempt, never break-glass: no
        // runtime could pull it predictably, so nobody can vouch for it.
        match Reference::parse(image) {
            Ok(reference) => self.evaluate_parsed(&reference),
            Err(_) => Decision::new(Reason::InvalidReference, self.rules.mode),
        }
    }

    /// As [`Resolved::evaluate`], for a reference parsed already.
    pub(crate) fn evaluate_parsed(&self, reference: &Reference<'_>) -> Decision<'s> {
        let mode = self.rules.mode;
        let Some(target) = Target::new(reference) else {
            return Decision::new(Reason::InvalidReference, mode);
        };
        if let Some(entry) = self.exempt {
            return Decision::new(Reason::Exempt, mode).with_rule(entry);
        }
        let verdict = self.rules.judge(&target, mode);
        match self.break_glass {
            Some(annotation) if !verdict.verdict_allowed() => verdict.broken_glass(annotation),
            _ => verdict,
        }
    }
}

impl Rules {
    fn judge<'s>(&'s self, target: &Target<'_>, mode: Mode) -> Decision<'s> {
        let deny = |reason| Decision::new(reason, mode);
        if let Some(set) = &self.deny
            && let Some(i) = set.matches_target(target)
        {
            return deny(Reason::RegistryDenied).with_rule_opt(set.pattern(i));
        }
        let mut allowed_by = None;
        if let Some(set) = &self.allow {
            match set.matches_target(target) {
                Some(i) => allowed_by = set.pattern(i),
                None => return deny(Reason::RegistryNotAllowed),
            }
        }
        let reference = target.literal.reference();
        let tag = reference.tag();
        let digest = reference.digest();
        let tags = &self.tags;
        if tag.is_none() && digest.is_none() {
            let latest = tags.forbids("latest");
            if tags.require_tag_or_digest || latest.is_some() {
                return deny(Reason::TagMissing).with_rule_opt(latest);
            }
        }
        let mut warning = None;
        if let Some(entry) = tag.and_then(|t| tags.forbids(t)) {
            if digest.is_none() {
                return deny(Reason::TagForbidden).with_rule(entry);
            }
            warning = Some(Warning::forbidden_tag_pinned());
        }
        if tags.require_digest && digest.is_none() {
            return deny(Reason::DigestRequired);
        }
        if tags.semver {
            let ok = match tag {
                Some(tag) => is_semver(tag),
                None => digest.is_some(),
            };
            if !ok {
                return deny(Reason::TagNotSemver);
            }
        }
        let decision = Decision::new(Reason::Allowed, mode).with_rule_opt(allowed_by);
        match warning {
            Some(w) => decision.with_warning(w),
            None => decision,
        }
    }
}

/// Semantic Versioning 2.0.0, with an optional `v` in front. Image tags
/// cannot hold `+`, so build metadata is accepted after `_` too (the
/// spelling Helm uses for OCI tags).
pub(crate) fn is_semver(tag: &str) -> bool {
    let s = tag.strip_prefix('v').unwrap_or(tag);
    let (s, build) = match s.find(['+', '_']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (core, pre) = match s.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (s, None),
    };
    let mut parts = core.split('.');
    let core_ok =
        (0..3).all(|_| parts.next().is_some_and(is_numeric_identifier)) && parts.next().is_none();
    let pre_ok = pre.is_none_or(|p| {
        p.split('.').all(|id| {
            is_alnum_identifier(id)
                && (!id.bytes().all(|b| b.is_ascii_digit()) || is_numeric_identifier(id))
        })
    });
    let build_ok = build.is_none_or(|b| b.split('.').all(is_alnum_identifier));
    core_ok && pre_ok && build_ok
}

fn is_numeric_identifier(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

fn is_alnum_identifier(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::is_semver;

    #[test]
    fn semver() {
        for ok in [
            "1.2.3",
            "v1.2.3",
            "0.0.0",
            "10.20.30",
            "1.2.3-rc.1",
            "1.2.3-alpha",
            "1.2.3-0.3.7",
            "1.2.3-x.7.z.92",
            "1.0.0-alpha-a.b-c",
            "1.2.3+build.5",
            "1.2.3_build.5",
            "v1.2.3-rc.1_b1",
            "1.0.0-0A.is.legal",
        ] {
            assert!(is_semver(ok), "{ok}");
        }
        for bad in [
            "",
            "v",
            "1",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.02.3",
            "1.2.03",
            "1.2.3-",
            "1.2.3-01",
            "1.2.3-a..b",
            "1.2.3+",
            "1.2.3_",
            "V1.2.3",
            "vv1.2.3",
            "latest",
            "1.2.x",
            "-1.2.3",
            "1.2.3-rc_1_2",
            "a1.2.3",
            "1.2.3-rc.1+b+c",
        ] {
            assert!(!is_semver(bad), "{bad}");
        }
    }
}
