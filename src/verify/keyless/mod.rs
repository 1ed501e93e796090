//! Verifying one Sigstore bundle against a trusted root: the certificate
//! chain to a Fulcio CA valid at signing time, the SCTs, the transparency
//! log evidence (SET or inclusion proof with a signed checkpoint, Rekor v1
//! and v2) or RFC 3161 timestamps, the signature, the consistency of the
//! log entry with the bundle; then the signer's identity against the
//! rule's. The checks are `sigstore-verify`'s (the Sigstore project's Rust
//! verifier, run against its conformance suite); identities, anchored
//! expressions and CI claims are matched here.
//!
//! Every failure is a definite rejection with its reason: nothing here
//! reads the network or the disk.

pub(crate) mod cosign;

use sigstore_verify::types::{Artifact, Bundle, DerPublicKey};
use sigstore_verify::{PublicKeyVerificationPolicy, VerificationPolicy};

use crate::policy::{Keyless, Signer, TrustRoot};

/// Who must have signed.
#[derive(Debug, Clone, Copy)]
pub enum Trust<'a> {
    /// A Fulcio certificate for one of these identities, chaining to the
    /// root.
    Keyless(&'a Keyless),
    /// A managed key; the log and timestamp evidence is checked against
    /// the root.
    Key(&'a DerPublicKey, &'a TrustRoot),
}

/// Why a bundle does not count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// Not a Sigstore bundle this verifier reads.
    #[error("not a valid Sigstore bundle: {0}")]
    Malformed(String),
    /// A check failed.
    #[error("{0}")]
    Invalid(String),
    /// Everything verified but the signer is not one of the identities.
    #[error("signed by {subject} (issuer {issuer}): not a trusted identity")]
    Identity {
        /// The certificate's subject.
        subject: String,
        /// The certificate's issuer.
        issuer: String,
    },
}

/// Parses a bundle (any of v0.1, v0.2, v0.3).
pub fn parse(json: &str) -> Result<Bundle, Rejected> {
    Bundle::from_json(json).map_err(|e| Rejected::Malformed(e.to_string()))
}

/// Verifies `bundle` for `artifact` (its bytes, or its sha256 digest: for
/// an in-toto statement, a subject's digest) under `trust`.
pub fn verify(bundle: &Bundle, artifact: Artifact<'_>, trust: Trust<'_>) -> Result<(), Rejected> {
    crate::crypto::install();
    let invalid = |e: sigstore_verify::Error| Rejected::Invalid(e.to_string());
    match trust {
        Trust::Key(key, root) => {
            let policy = PublicKeyVerificationPolicy::new(key.clone());
            root.verifier()
                .verify(artifact, bundle, &policy)
                .map_err(invalid)?;
        }
        Trust::Keyless(keyless) => {
            let result = keyless
                .root()
                .verifier()
                .verify(artifact, bundle, &VerificationPolicy::any_identity())
                .map_err(invalid)?;
            let cert = result
                .certificate()
                .ok_or_else(|| Rejected::Invalid("the bundle has no certificate".into()))?;
            let subject = cert.identity.as_ref().map_or("", |s| s.as_str());
            let issuer = cert.issuer.as_deref().unwrap_or("");
            let signer = Signer {
                subject,
                issuer,
                claims: &cert.ci_claims,
            };
            if !keyless.accepts(&signer) {
                return Err(Rejected::Identity {
                    subject: subject.to_owned(),
                    issuer: issuer.to_owned(),
                });
            }
        }
    }
    Ok(())
}

/// Whether a cosign v2 keyless `.sig` layer (its simple-signing `payload`
/// and layer annotations) is a signature verified for one of `keyless`'s
/// identities (the payload's image digest is the caller's to compare).
pub fn cosign_signature(
    payload: &[u8],
    annotations: &std::collections::BTreeMap<String, String>,
    keyless: &Keyless,
) -> bool {
    cosign::signature_bundle(payload, annotations).is_some_and(|bundle| {
        verify(
            &bundle,
            Artifact::from_blob(payload),
            Trust::Keyless(keyless),
        )
        .is_ok()
    })
}
