//! The verdict types: [`Reason`] codes, [`Mode`], [`Decision`], [`Warning`].
//!
//! These are the closed sets that metrics labels and logs rely on; they must
//! not carry request strings.

use std::fmt;

/// Whether deny verdicts are enforced or only reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Deny verdicts deny the review.
    #[default]
    Enforce,
    /// Deny verdicts are reported; the review is allowed.
    Audit,
}

impl Mode {
    /// The label value: `enforce` or `audit`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
        }
    }
}

/// The machine-readable reason code of a verdict.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Every rule passed.
    Allowed,
    /// The namespace is exempt from the policy.
    Exempt,
    /// A deny verdict was overridden by the break-glass annotation.
    BreakGlass,
    /// The image string is not a valid reference.
    InvalidReference,
    /// A `registries.deny` pattern matched.
    RegistryDenied,
    /// `registries.allow` is non-empty and no pattern matched.
    RegistryNotAllowed,
    /// Neither tag nor digest: the image would be pulled as `latest`.
    TagMissing,
    /// The tag is listed in `tags.forbid` and there is no digest.
    TagForbidden,
    /// `tags.requireDigest` is set and the image has no digest.
    DigestRequired,
    /// `tags.semver` is set and the tag is not a semantic version.
    TagNotSemver,
    /// A `verify` rule requires a signature and the image has none.
    SignatureMissing,
    /// Signatures exist, but none verifies for this digest with a listed key.
    SignatureInvalid,
    /// No valid SBOM attestation of an accepted kind.
    SbomMissing,
    /// The newest valid vulnerability scan has a finding above `maxCvss`.
    Vulnerable,
    /// No valid vulnerability-scan attestation.
    VulnReportMissing,
    /// The newest valid scan finished longer ago than `maxAge`.
    VulnReportStale,
    /// The registry could not answer within the review's deadline (or
    /// answered nonsense); a deny unless `onError: allow`.
    VerificationUnavailable,
}

impl Reason {
    /// Every reason code, in a stable order.
    pub const ALL: &'static [Reason] = &[
        Reason::Allowed,
        Reason::Exempt,
        Reason::BreakGlass,
        Reason::InvalidReference,
        Reason::RegistryDenied,
        Reason::RegistryNotAllowed,
        Reason::TagMissing,
        Reason::TagForbidden,
        Reason::DigestRequired,
        Reason::TagNotSemver,
        Reason::SignatureMissing,
        Reason::SignatureInvalid,
        Reason::SbomMissing,
        Reason::Vulnerable,
        Reason::VulnReportMissing,
        Reason::VulnReportStale,
        Reason::VerificationUnavailable,
    ];

    /// The code used in metrics labels, logs and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Allowed => "allowed",
            Reason::Exempt => "exempt",
            Reason::BreakGlass => "break_glass",
            Reason::InvalidReference => "invalid_reference",
            Reason::RegistryDenied => "registry_denied",
            Reason::RegistryNotAllowed => "registry_not_allowed",
            Reason::TagMissing => "tag_missing",
            Reason::TagForbidden => "tag_forbidden",
            Reason::DigestRequired => "digest_required",
            Reason::TagNotSemver => "tag_not_semver",
            Reason::SignatureMissing => "signature_missing",
            Reason::SignatureInvalid => "signature_invalid",
            Reason::SbomMissing => "sbom_missing",
            Reason::Vulnerable => "vulnerable",
            Reason::VulnReportMissing => "vuln_report_missing",
            Reason::VulnReportStale => "vuln_report_stale",
            Reason::VerificationUnavailable => "verification_unavailable",
        }
    }

    /// The reason code of a verification outcome (`allowed` when verified).
    pub fn from_outcome(outcome: super::Outcome) -> Reason {
        use super::Outcome;
        match outcome {
            Outcome::Verified => Reason::Allowed,
            Outcome::SignatureMissing => Reason::SignatureMissing,
            Outcome::SignatureInvalid => Reason::SignatureInvalid,
            Outcome::SbomMissing => Reason::SbomMissing,
            Outcome::Vulnerable => Reason::Vulnerable,
            Outcome::VulnReportMissing => Reason::VulnReportMissing,
            Outcome::VulnReportStale => Reason::VulnReportStale,
            Outcome::Unavailable => Reason::VerificationUnavailable,
        }
    }

    /// Whether this code admits the image (`allowed`, `exempt`, `break_glass`).
    pub fn is_allow(self) -> bool {
        matches!(self, Reason::Allowed | Reason::Exempt | Reason::BreakGlass)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something an allowed image does that the policy would otherwise deny.
///
/// Its text does not name the image: prefix it, or use
/// [`Decision::explain`], which does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Warning {
    kind: WarningKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WarningKind {
    /// A `tags.forbid` tag next to a digest: the digest is what runs.
    ForbiddenTagPinned,
    /// Verification could not run; admitted because `onError: allow`.
    Unverified,
}

impl Warning {
    pub(crate) fn forbidden_tag_pinned() -> Warning {
        Warning {
            kind: WarningKind::ForbiddenTagPinned,
        }
    }

    pub(crate) fn is_forbidden_tag_pinned(self) -> bool {
        self.kind == WarningKind::ForbiddenTagPinned
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            WarningKind::ForbiddenTagPinned => f.write_str(
                "the tag is forbidden by the policy, but the image is pinned by digest, which is what runs",
            ),
            WarningKind::Unverified => f.write_str(
                "the image could not be verified at its registry; admitted because verification.onError is allow",
            ),
        }
    }
}

/// The verdict for one image. It is `Copy` and borrows rule text from the
/// snapshot, so judging an image allocates nothing.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'s> {
    pub(super) reason: Reason,
    pub(super) mode: Mode,
    pub(super) warning: Option<Warning>,
    /// The rule that decided, as written: a registry pattern, a forbidden
    /// tag, an exemption entry.
    pub(super) rule: Option<&'s str>,
    /// For `break_glass`: the deny reason that was set aside.
    pub(super) overridden: Option<Reason>,
    /// For `break_glass`: the annotation key.
    pub(super) annotation: Option<&'s str>,
    /// A `verification_unavailable` admitted by `onError: allow`.
    pub(super) admitted_on_error: bool,
}

impl<'s> Decision<'s> {
    pub(crate) fn new(reason: Reason, mode: Mode) -> Decision<'s> {
        Decision {
            reason,
            mode,
            warning: None,
            rule: None,
            overridden: None,
            annotation: None,
            admitted_on_error: false,
        }
    }

    /// The deny verdict, admitted because `verification.onError` is allow.
    pub(crate) fn admitted_on_error(mut self) -> Decision<'s> {
        self.admitted_on_error = true;
        self.warning = Some(Warning {
            kind: WarningKind::Unverified,
        });
        self
    }

    pub(crate) fn with_rule(mut self, rule: &'s str) -> Decision<'s> {
        self.rule = Some(rule);
        self
    }

    pub(crate) fn with_rule_opt(mut self, rule: Option<&'s str>) -> Decision<'s> {
        self.rule = rule;
        self
    }

    pub(crate) fn with_warning(mut self, warning: Warning) -> Decision<'s> {
        self.warning = Some(warning);
        self
    }

    /// The deny verdict, admitted by the break-glass annotation.
    pub(crate) fn broken_glass(mut self, annotation: &'s str) -> Decision<'s> {
        self.overridden = Some(self.reason);
        self.reason = Reason::BreakGlass;
        self.annotation = Some(annotation);
        self
    }

    /// The verdict's reason code (a deny code even in audit mode).
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// What the policy says, before audit mode (a `verification_unavailable`
    /// admitted by `onError: allow` counts as allowed; its reason stays).
    pub fn verdict_allowed(&self) -> bool {
        self.reason.is_allow() || self.admitted_on_error
    }

    /// Whether a `verification_unavailable` was admitted because
    /// `verification.onError` is `allow`.
    pub fn is_admitted_on_error(&self) -> bool {
        self.admitted_on_error
    }

    /// The effective result: the verdict, or true in audit mode.
    pub fn allowed(&self) -> bool {
        self.verdict_allowed() || self.mode == Mode::Audit
    }

    /// The mode in force for this image's namespace.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// A warning to report even though the image is allowed.
    pub fn warning(&self) -> Option<Warning> {
        self.warning
    }

    /// For `break_glass`, the deny reason that the annotation set aside.
    pub fn overridden(&self) -> Option<Reason> {
        self.overridden
    }

    /// The policy entry that decided, as written (a registry pattern, a
    /// forbidden tag, an exemption entry), when there is one.
    pub fn rule(&self) -> Option<&'s str> {
        self.rule
    }

    /// One human sentence naming the image and the rule, as
    /// `image "nginx" has no tag and would be pulled as "latest"`.
    /// `image` must be the string that was judged.
    pub fn explain<'d>(&'d self, image: &'d str) -> impl fmt::Display + 'd {
        super::explain::Explain {
            decision: self,
            image,
        }
    }
}
