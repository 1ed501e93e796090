//! [`Outcome`]: what verifying an image at its registry came to, as the
//! policy reads it. A policy type, so that the policy core judges with it
//! without knowing how verification is done; `verify` produces it.

/// The verdict of a verification (reason codes of CONTRACT §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Every demand of the requirement is met.
    Verified,
    /// No signature at all.
    SignatureMissing,
    /// Signatures exist, none verifies for this digest with a listed key.
    SignatureInvalid,
    /// No valid SBOM attestation of an accepted kind.
    SbomMissing,
    /// The newest valid scan has a finding above `maxCvss`.
    Vulnerable,
    /// No valid vulnerability-scan attestation.
    VulnReportMissing,
    /// The newest valid scan finished before `maxAge`.
    VulnReportStale,
    /// The registry could not answer in time (or answered nonsense).
    Unavailable,
}

impl Outcome {
    /// Every outcome, for pre-registering metric series.
    pub const ALL: [Outcome; 8] = [
        Outcome::Verified,
        Outcome::SignatureMissing,
        Outcome::SignatureInvalid,
        Outcome::SbomMissing,
        Outcome::Vulnerable,
        Outcome::VulnReportMissing,
        Outcome::VulnReportStale,
        Outcome::Unavailable,
    ];

    /// The reason code (`allowed` for [`Outcome::Verified`]).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Verified => "allowed",
            Outcome::SignatureMissing => "signature_missing",
            Outcome::SignatureInvalid => "signature_invalid",
            Outcome::SbomMissing => "sbom_missing",
            Outcome::Vulnerable => "vulnerable",
            Outcome::VulnReportMissing => "vuln_report_missing",
            Outcome::VulnReportStale => "vuln_report_stale",
            Outcome::Unavailable => "verification_unavailable",
        }
    }

    /// Which requirement it concerns (a metric label).
    pub fn kind(self) -> &'static str {
        match self {
            Outcome::Verified => "all",
            Outcome::SignatureMissing | Outcome::SignatureInvalid => "signature",
            Outcome::SbomMissing => "sbom",
            Outcome::Vulnerable | Outcome::VulnReportMissing | Outcome::VulnReportStale => {
                "vulnerabilities"
            }
            Outcome::Unavailable => "registry",
        }
    }

    /// Whether the image passes.
    pub fn is_verified(self) -> bool {
        self == Outcome::Verified
    }
}
