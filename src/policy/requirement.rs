//! [`Requirement`]: what one `verify` rule demands of an image, with a
//! fingerprint that keys cached results, and the [`Outcome`] an image
//! that is missing or tampered with comes to under it.

use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::keyless::Keyless;
use super::keys::KeySet;
use super::outcome::Outcome;

/// An SBOM format accepted as an attestation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SbomKind {
    /// CycloneDX (`https://cyclonedx.org/bom`, versioned forms by prefix).
    CycloneDx,
    /// SPDX (`https://spdx.dev/Document`, versioned forms by prefix).
    Spdx,
}

impl SbomKind {
    /// The policy spelling: `cyclonedx` or `spdx`.
    pub fn as_str(self) -> &'static str {
        match self {
            SbomKind::CycloneDx => "cyclonedx",
            SbomKind::Spdx => "spdx",
        }
    }

    /// Parses the policy spelling.
    pub fn parse(text: &str) -> Option<SbomKind> {
        match text {
            "cyclonedx" => Some(SbomKind::CycloneDx),
            "spdx" => Some(SbomKind::Spdx),
            _ => None,
        }
    }

    /// The predicate type URI stem.
    pub fn predicate_type(self) -> &'static str {
        match self {
            SbomKind::CycloneDx => "https://cyclonedx.org/bom",
            SbomKind::Spdx => "https://spdx.dev/Document",
        }
    }

    /// Whether `uri` is this kind's predicate type (exact or `stem/...`).
    pub fn matches(self, uri: &str) -> bool {
        let stem = self.predicate_type();
        uri == stem
            || uri
                .strip_prefix(stem)
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

/// Limits on the newest vulnerability scan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VulnLimits {
    /// Deny when any finding scores above this (equal passes).
    pub max_cvss: f64,
    /// Deny when the newest scan finished longer ago than this.
    pub max_age: Duration,
}

/// Which digest of a multi-platform image must carry the evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MultiArch {
    /// The digest the reference names (for a tag, the index it resolves
    /// to): what `cosign sign` signs by default.
    #[default]
    Index,
    /// That digest, or else every platform manifest its index lists
    /// (images whose build signed each platform: `cosign sign --recursive`,
    /// per-architecture pipelines). Not "any one platform": an index that
    /// lists one signed manifest beside an unsigned one would pass, and
    /// nodes of the unsigned one's platform would run it.
    AllPlatforms,
}

impl MultiArch {
    /// The policy spelling: `index` or `allPlatforms`.
    pub fn as_str(self) -> &'static str {
        match self {
            MultiArch::Index => "index",
            MultiArch::AllPlatforms => "allPlatforms",
        }
    }

    /// Parses the policy spelling.
    pub fn parse(text: &str) -> Option<MultiArch> {
        match text {
            "index" => Some(MultiArch::Index),
            "allPlatforms" => Some(MultiArch::AllPlatforms),
            _ => None,
        }
    }
}

/// What one `verify` rule requires; compare by [`Requirement::fingerprint`].
#[derive(Debug, Clone)]
pub struct Requirement {
    keys: KeySet,
    keyless: Option<Keyless>,
    multi_arch: MultiArch,
    signature: bool,
    sbom: Vec<SbomKind>,
    vulnerabilities: Option<VulnLimits>,
    fingerprint: u128,
}

impl Requirement {
    /// A requirement; `sbom` lists the acceptable kinds (empty: no SBOM
    /// needed).
    pub fn new(
        keys: KeySet,
        signature: bool,
        mut sbom: Vec<SbomKind>,
        vulnerabilities: Option<VulnLimits>,
    ) -> Requirement {
        sbom.sort();
        sbom.dedup();
        let mut r = Requirement {
            keys,
            keyless: None,
            multi_arch: MultiArch::Index,
            signature,
            sbom,
            vulnerabilities,
            fingerprint: 0,
        };
        r.fingerprint = r.digest();
        r
    }

    /// The same requirement, also satisfied by a keyless signature of one
    /// of `keyless`'s identities.
    pub fn with_keyless(mut self, keyless: Keyless) -> Requirement {
        self.keyless = Some(keyless);
        self.fingerprint = self.digest();
        self
    }

    /// The same requirement, with the evidence looked for where
    /// `multi_arch` says.
    pub fn with_multi_arch(mut self, multi_arch: MultiArch) -> Requirement {
        self.multi_arch = multi_arch;
        self.fingerprint = self.digest();
        self
    }

    /// Which digest of a multi-platform image must carry the evidence.
    pub fn multi_arch(&self) -> MultiArch {
        self.multi_arch
    }

    fn digest(&self) -> u128 {
        let mut h = Sha256::new();
        h.update(b"imagegate-requirement-v1\0");
        let mut ids: Vec<[u8; 32]> = self.keys.keys().iter().map(|k| k.id()).collect();
        ids.sort();
        ids.dedup();
        for id in &ids {
            h.update(id);
        }
        h.update([u8::from(self.signature), 0]);
        for kind in &self.sbom {
            h.update(kind.as_str().as_bytes());
            h.update([0]);
        }
        if let Some(v) = self.vulnerabilities {
            h.update(v.max_cvss.to_bits().to_be_bytes());
            h.update(v.max_age.as_nanos().to_be_bytes());
        }
        if let Some(keyless) = &self.keyless {
            keyless.fingerprint(&mut h);
        }
        if self.multi_arch != MultiArch::Index {
            h.update(b"multiArch\0");
            h.update(self.multi_arch.as_str().as_bytes());
        }
        let out = h.finalize();
        let mut fp = [0u8; 16];
        fp.copy_from_slice(&out[..16]);
        u128::from_be_bytes(fp)
    }

    /// The keyless identities and their root, if the rule lists any.
    pub fn keyless(&self) -> Option<&Keyless> {
        self.keyless.as_ref()
    }

    /// The trusted keys.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Whether a signature is required.
    pub fn signature(&self) -> bool {
        self.signature
    }

    /// Acceptable SBOM kinds (empty: none required).
    pub fn sbom(&self) -> &[SbomKind] {
        &self.sbom
    }

    /// Vulnerability limits, if a scan is required.
    pub fn vulnerabilities(&self) -> Option<VulnLimits> {
        self.vulnerabilities
    }

    /// Whether any attestation is needed.
    pub fn needs_attestations(&self) -> bool {
        !self.sbom.is_empty() || self.vulnerabilities.is_some()
    }

    /// A digest of keys and demands: equal for equal requirements.
    pub fn fingerprint(&self) -> u128 {
        self.fingerprint
    }

    /// The reason used when the image does not exist at all.
    pub fn missing(&self) -> Outcome {
        if self.signature {
            Outcome::SignatureMissing
        } else if !self.sbom.is_empty() {
            Outcome::SbomMissing
        } else if self.vulnerabilities.is_some() {
            Outcome::VulnReportMissing
        } else {
            Outcome::Verified
        }
    }

    /// The reason used when the registry serves the image's manifest under
    /// a digest its bytes do not have: no evidence can be tied to the
    /// image, which fails its first demand (a resolution alone, which
    /// demands nothing, is unavailable).
    pub fn tampered(&self) -> Outcome {
        if self.signature {
            Outcome::SignatureInvalid
        } else if !self.sbom.is_empty() {
            Outcome::SbomMissing
        } else if self.vulnerabilities.is_some() {
            Outcome::VulnReportMissing
        } else {
            Outcome::Unavailable
        }
    }
}

#[cfg(test)]
mod tests;
