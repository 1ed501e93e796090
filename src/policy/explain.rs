//! The human sentence behind a [`Decision`]: names the image and the rule.
//!
//! Not on the hot path: it may re-parse the image for details, and quotes
//! hostile strings escaped and cut short.

use std::fmt;

use super::decision::{Decision, Mode, Reason};

pub(super) struct Explain<'d, 's> {
    pub(super) decision: &'d Decision<'s>,
    pub(super) image: &'d str,
}

impl fmt::Display for Explain<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.decision;
        match (d.reason, d.overridden) {
            (Reason::BreakGlass, Some(inner)) => {
                explain_reason(f, inner, d.rule, self.image)?;
                write!(
                    f,
                    "; admitted by break-glass annotation {:?}",
                    d.annotation.unwrap_or("")
                )?;
            }
            (reason, _) => explain_reason(f, reason, d.rule, self.image)?,
        }
        let tag = || {
            crate::reference::Reference::parse(self.image)
                .ok()
                .and_then(|r| r.tag())
        };
        if let Some(tag) = d
            .warning
            .filter(|w| w.is_forbidden_tag_pinned())
            .and_then(|_| tag())
        {
            write!(
                f,
                ", but its tag {tag:?} is forbidden: it runs only because it is pinned by digest"
            )?;
        }
        if d.admitted_on_error {
            f.write_str("; admitted because verification.onError is allow")?;
        }
        if d.mode == Mode::Audit && !d.verdict_allowed() {
            f.write_str(" (audit mode: not enforced)")?;
        }
        Ok(())
    }
}

fn explain_reason(
    f: &mut fmt::Formatter<'_>,
    reason: Reason,
    rule: Option<&str>,
    image: &str,
) -> fmt::Result {
    use crate::reference::Reference;

    let img = Quoted(image);
    let parsed = Reference::parse(image);
    let reference = parsed.as_ref().ok();
    let tag = reference.and_then(|r| r.tag()).unwrap_or("");
    match reason {
        Reason::Allowed => match rule {
            Some(p) => write!(f, "image {img} is allowed by registry pattern {p:?}"),
            None => write!(f, "image {img} is allowed"),
        },
        Reason::Exempt => write!(
            f,
            "image {img} is allowed because the namespace is exempt ({:?})",
            rule.unwrap_or("")
        ),
        Reason::BreakGlass => write!(f, "image {img} is admitted by break-glass"),
        Reason::InvalidReference => match &parsed {
            Err(e) => write!(f, "image {img} is not a valid image reference: {e}"),
            Ok(_) => write!(
                f,
                "image {img} has no usable registry host, so runtimes would not pull it predictably"
            ),
        },
        Reason::RegistryDenied => {
            let domain_only = rule.is_some_and(|p| {
                super::pattern::Pattern::parse(p).is_ok_and(|p| p.path.is_empty())
            });
            match reference {
                Some(r) if domain_only => write!(
                    f,
                    "registry {:?} of image {img} is denied by pattern {:?}",
                    r.domain(),
                    rule.unwrap_or("")
                ),
                Some(r) => write!(
                    f,
                    "repository \"{}/{}\" of image {img} is denied by pattern {:?}",
                    r.domain(),
                    r.path(),
                    rule.unwrap_or("")
                ),
                None => write!(
                    f,
                    "image {img} is denied by pattern {:?}",
                    rule.unwrap_or("")
                ),
            }
        }
        Reason::RegistryNotAllowed => match reference {
            Some(r) => write!(
                f,
                "repository \"{}/{}\" of image {img} matches no pattern of registries.allow",
                r.domain(),
                r.path()
            ),
            None => write!(f, "image {img} matches no pattern of registries.allow"),
        },
        Reason::TagMissing => write!(
            f,
            "image {img} has no tag and would be pulled as \"latest\""
        ),
        Reason::TagForbidden => write!(
            f,
            "tag {tag:?} of image {img} is forbidden (tags.forbid: {:?})",
            rule.unwrap_or("")
        ),
        Reason::DigestRequired => write!(
            f,
            "image {img} is not pinned by digest (tags.requireDigest)"
        ),
        Reason::TagNotSemver => {
            if tag.is_empty() {
                write!(
                    f,
                    "image {img} has no tag, and tags.semver requires a semantic version"
                )
            } else {
                write!(
                    f,
                    "tag {tag:?} of image {img} is not a semantic version (as 1.2.3 or v1.2.3)"
                )
            }
        }
        Reason::SignatureMissing => write!(
            f,
            "image {img} has no cosign signature (verify rules require one)"
        ),
        Reason::SignatureInvalid
            if reference
                .and_then(|r| r.digest())
                .is_some_and(|d| !d.starts_with("sha256:")) =>
        {
            write!(
                f,
                "image {img} is pinned by a digest that cannot be checked against its content (only sha256 can): pin it by its sha256 digest"
            )
        }
        Reason::SignatureInvalid => write!(
            f,
            "image {img} has signatures, but none verifies for its digest with a key or keyless identity of the matching verify rule"
        ),
        Reason::SbomMissing => write!(
            f,
            "image {img} has no signed SBOM attestation of a kind its verify rule accepts"
        ),
        Reason::Vulnerable => write!(
            f,
            "image {img} has a vulnerability above the maxCvss of its verify rule"
        ),
        Reason::VulnReportMissing => write!(
            f,
            "image {img} has no signed vulnerability-scan attestation"
        ),
        Reason::VulnReportStale => write!(
            f,
            "the newest vulnerability scan of image {img} is older than the maxAge of its verify rule"
        ),
        Reason::VerificationUnavailable => write!(
            f,
            "image {img} could not be verified: its registry did not answer in time"
        ),
    }
}

/// Longest part of an image string repeated in a message.
const MAX_QUOTED: usize = 256;

/// An image string in quotes, escaped, cut at [`MAX_QUOTED`] characters.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(MAX_QUOTED) {
            None => write!(f, "{:?}", self.0),
            Some((cut, _)) => write!(f, "\"{}...\"", self.0[..cut].escape_debug()),
        }
    }
}
