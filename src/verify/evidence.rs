//! Finding and judging the evidence for one digest: cosign `.sig` and
//! `.att` tags and Sigstore bundles among the referrers, fetched
//! concurrently, then checked against a [`Requirement`].
//!
//! Only what verified with a listed key and names this digest counts; the
//! predicate type is read from the signed statement, never from layer or
//! manifest annotations. Content the registry serves that does not match
//! its digest is evidence that does not verify (the item is skipped), not
//! an unavailable registry: `onError: allow` must not admit tampering.

use std::time::SystemTime;

use serde_json::Value;

use super::digest::Digest;
use super::dsse::{Envelope, Statement};
use super::keyless::cosign;
use super::registry::{
    Descriptor, Manifest, Registry, RegistryError, RegistryErrorKind, Repository,
};
use super::{simple_signing, vuln};
use crate::policy::{Outcome, Requirement};
use keyless::{keyless_signature, keyless_statement, verified_statement};

/// Layer media type of a cosign signature payload.
pub(crate) const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Layer media type of a cosign attestation.
pub(crate) const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
/// Predicate type of a cosign v3 signature statement.
pub(crate) const SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";
const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Items read per manifest or listing: a bound on work per digest.
const MAX_ITEMS: usize = 32;
const MAX_PAYLOAD: usize = 64 << 10;

/// What was found for one digest.
#[derive(Debug, Default)]
pub(crate) struct Evidence {
    /// A signature object of any kind exists.
    signature_present: bool,
    /// A signature verified for this digest.
    signature_valid: bool,
    /// Verified statements naming this digest.
    statements: Vec<Statement>,
    /// The first item that could not be read (the others were).
    failed: Option<RegistryError>,
}

impl Evidence {
    /// What `more` found, added to this.
    fn merge(&mut self, more: Evidence) {
        self.signature_present |= more.signature_present;
        self.signature_valid |= more.signature_valid;
        self.statements.extend(more.statements);
        if let Some(e) = more.failed {
            self.failed.get_or_insert(e);
        }
    }

    /// A verified statement naming the digest: a cosign v3 signature, or
    /// an attestation.
    fn record(&mut self, st: Statement) {
        if st.predicate_type == SIGN_PREDICATE {
            self.signature_present = true;
            self.signature_valid = true;
        } else {
            self.statements.push(st);
        }
    }
}

/// Fetches what `req` needs for `digest` and judges it at time `now`.
pub(crate) async fn check(
    registry: &Registry,
    repo: &Repository,
    digest: Digest,
    req: &Requirement,
    now: SystemTime,
) -> Result<Outcome, RegistryError> {
    let sig = async {
        if req.signature() {
            signatures(registry, repo, digest, req).await
        } else {
            Ok(Evidence::default())
        }
    };
    let att = async {
        if req.needs_attestations() {
            attestations(registry, repo, digest, req).await
        } else {
            Ok(Evidence::default())
        }
    };
    let bundles = async {
        if req.signature() || req.needs_attestations() {
            bundles::bundles(registry, repo, digest, req).await
        } else {
            Ok(Evidence::default())
        }
    };
    let (sig, att, bundles) = tokio::join!(sig, att, bundles);
    let mut evidence = Evidence::default();
    for part in [sig, att, bundles] {
        match part {
            Ok(more) => evidence.merge(more),
            Err(e) => {
                evidence.failed.get_or_insert(e);
            }
        }
    }
    let outcome = judge(&evidence, req, now);
    match evidence.failed {
        // What could not be read cannot undo a verdict reached without
        // it (any one signature or SBOM suffices), except the newest
        // vulnerability scan, which an unread one might be.
        Some(_) if outcome == Outcome::Verified && req.vulnerabilities().is_none() => Ok(outcome),
        Some(e) => Err(e),
        None => Ok(outcome),
    }
}

/// The verdict from the evidence (pure; the order of checks is the order
/// of reasons: signature, SBOM, vulnerabilities).
pub(crate) fn judge(evidence: &Evidence, req: &Requirement, now: SystemTime) -> Outcome {
    if req.signature() && !evidence.signature_valid {
        return if evidence.signature_present {
            Outcome::SignatureInvalid
        } else {
            Outcome::SignatureMissing
        };
    }
    if !req.sbom().is_empty() {
        let found = evidence.statements.iter().any(|s| {
            req.sbom()
                .iter()
                .any(|kind| kind.matches(&s.predicate_type) && sbom_shaped(*kind, &s.predicate))
        });
        if !found {
            return Outcome::SbomMissing;
        }
    }
    if let Some(limits) = req.vulnerabilities() {
        let newest = evidence
            .statements
            .iter()
            .filter(|s| s.predicate_type == vuln::VULN_PREDICATE)
            .filter_map(|s| vuln::parse(&s.predicate))
            .max_by_key(|scan| scan.finished);
        let Some(scan) = newest else {
            return Outcome::VulnReportMissing;
        };
        let age = now.duration_since(scan.finished).unwrap_or_default();
        if age > limits.max_age {
            return Outcome::VulnReportStale;
        }
        if scan.max_cvss > limits.max_cvss {
            return Outcome::Vulnerable;
        }
    }
    Outcome::Verified
}

fn sbom_shaped(kind: crate::policy::SbomKind, predicate: &Value) -> bool {
    use crate::policy::SbomKind;
    match kind {
        SbomKind::CycloneDx => {
            predicate.get("bomFormat").and_then(Value::as_str) == Some("CycloneDX")
        }
        // SPDX JSON, or the tag-value text legacy cosign embeds as a string.
        SbomKind::Spdx => {
            predicate.get("spdxVersion").is_some()
                || predicate.get("@context").is_some()
                || predicate
                    .as_str()
                    .is_some_and(|t| t.contains("SPDXVersion:"))
        }
    }
}

async fn signatures(
    registry: &Registry,
    repo: &Repository,
    digest: Digest,
    req: &Requirement,
) -> Result<Evidence, RegistryError> {
    let mut ev = Evidence::default();
    let Some(manifest) = tagged(registry, repo, &format!("{}.sig", digest.tag())).await? else {
        return Ok(ev);
    };
    for layer in manifest
        .layers
        .iter()
        .filter(|l| l.media_type == SIMPLE_SIGNING)
        .take(MAX_ITEMS)
    {
        ev.signature_present = true;
        let Some(payload) = layer_blob(registry, repo, layer, MAX_PAYLOAD).await? else {
            continue;
        };
        if let Some(keyless) = req.keyless()
            && cosign::is_keyless(&layer.annotations)
            && keyless_signature(&payload, &layer.annotations, keyless, &digest)
        {
            ev.signature_valid = true;
            break;
        }
        let sig = layer
            .annotations
            .get(SIGNATURE_ANNOTATION)
            .map_or("", String::as_str);
        if simple_signing::check(&payload, sig, req.keys(), &digest) == simple_signing::Check::Valid
        {
            ev.signature_valid = true;
            break;
        }
    }
    Ok(ev)
}

async fn attestations(
    registry: &Registry,
    repo: &Repository,
    digest: Digest,
    req: &Requirement,
) -> Result<Evidence, RegistryError> {
    let mut ev = Evidence::default();
    let Some(manifest) = tagged(registry, repo, &format!("{}.att", digest.tag())).await? else {
        return Ok(ev);
    };
    let limit = registry.config().max_blob_bytes;
    for layer in manifest
        .layers
        .iter()
        .filter(|l| l.media_type == DSSE_ENVELOPE)
        .take(MAX_ITEMS)
    {
        let Some(blob) = layer_blob(registry, repo, layer, limit).await? else {
            continue;
        };
        if let Some(keyless) = req.keyless()
            && cosign::is_keyless(&layer.annotations)
            && let Some(bundle) = cosign::attestation_bundle(&blob, &layer.annotations)
            && let Some(st) = verified_statement(&bundle, keyless, &digest)
        {
            ev.statements.push(st);
            continue;
        }
        let Ok(envelope) = serde_json::from_slice::<Envelope>(&blob) else {
            continue;
        };
        if let Some(st) = statement(&envelope, req, &digest) {
            ev.statements.push(st);
        }
    }
    Ok(ev)
}

/// The statement inside a verified envelope, if it names `digest`.
fn statement(envelope: &Envelope, req: &Requirement, digest: &Digest) -> Option<Statement> {
    let body = envelope.verified_payload(req.keys())?;
    Statement::parse(&body).filter(|s| s.names(digest))
}

async fn tagged(
    registry: &Registry,
    repo: &Repository,
    tag: &str,
) -> Result<Option<Manifest>, RegistryError> {
    let Some(fetched) = untampered(registry.manifest(repo, tag, None).await)? else {
        return Ok(None);
    };
    Ok(Manifest::parse(
        &fetched.bytes,
        fetched.media_type.as_deref(),
    ))
}

/// A layer's blob, size-checked against its descriptor and `limit`.
async fn layer_blob(
    registry: &Registry,
    repo: &Repository,
    layer: &Descriptor,
    limit: usize,
) -> Result<Option<bytes::Bytes>, RegistryError> {
    let Ok(d) = Digest::parse(&layer.digest) else {
        return Ok(None);
    };
    if layer.size > limit as u64 {
        return Ok(None);
    }
    let blob = untampered(registry.blob(repo, d, limit).await)?;
    Ok(blob.filter(|b| b.len() as u64 == layer.size))
}

/// Content that does not match its digest as no content: the item is
/// skipped like one whose size or signature is wrong.
fn untampered<T>(fetched: Result<Option<T>, RegistryError>) -> Result<Option<T>, RegistryError> {
    match fetched {
        Err(e) if e.kind() == RegistryErrorKind::DigestMismatch => Ok(None),
        other => other,
    }
}

mod bundles;
mod keyless;
#[cfg(test)]
mod tests;
