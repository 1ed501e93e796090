//! Keyless evidence: Sigstore bundles and cosign v2 keyless layers
//! verified against a rule's identities and trusted root.

use std::collections::BTreeMap;

use sigstore_verify::types::{Artifact, Bundle, Sha256Hash, SignatureContent};

use super::SIGN_PREDICATE;
use crate::policy::Keyless;
use crate::verify::digest::Digest;
use crate::verify::dsse::Statement;
use crate::verify::keyless::{self, Trust};
use crate::verify::simple_signing;

/// The statement of a bundle verified for `digest` under `keyless`; when
/// it does not verify, whether its (unverified) content claims to be a
/// signature.
pub(super) fn keyless_statement(
    blob: &[u8],
    keyless: &Keyless,
    digest: &Digest,
) -> Result<Statement, bool> {
    let text = std::str::from_utf8(blob).map_err(|_| false)?;
    let bundle = keyless::parse(text).map_err(|_| false)?;
    match claimed_statement(&bundle) {
        Some(st) if st.names(digest) && verifies(&bundle, keyless, digest) => Ok(st),
        Some(st) => Err(st.predicate_type == SIGN_PREDICATE),
        // A message signature claims to be one; a DSSE envelope whose
        // payload is no statement claims nothing.
        None => Err(!matches!(bundle.content, SignatureContent::DsseEnvelope(_))),
    }
}

/// The in-toto statement of a DSSE bundle that verifies under `keyless`
/// for `digest` (a subject of the statement). A bundle whose statement
/// does not even claim `digest` (a valid bundle of another image copied
/// here) is set aside before any signature is checked.
pub(super) fn verified_statement(
    bundle: &Bundle,
    keyless: &Keyless,
    digest: &Digest,
) -> Option<Statement> {
    claimed_statement(bundle).filter(|st| st.names(digest) && verifies(bundle, keyless, digest))
}

/// The statement a DSSE bundle carries, read before anything verifies it.
fn claimed_statement(bundle: &Bundle) -> Option<Statement> {
    match &bundle.content {
        SignatureContent::DsseEnvelope(envelope) => Statement::parse(envelope.payload.as_bytes()),
        _ => None,
    }
}

/// Whether `bundle` verifies under `keyless` for `digest` (for a DSSE
/// statement, the digest of one of its subjects).
fn verifies(bundle: &Bundle, keyless: &Keyless, digest: &Digest) -> bool {
    let artifact = Artifact::from_digest(Sha256Hash::new(*digest.bytes()));
    keyless::verify(bundle, artifact, Trust::Keyless(keyless)).is_ok()
}

/// Whether a cosign v2 keyless `.sig` layer signs `digest` as one of
/// `keyless`'s identities: the payload names the digest (checked first,
/// as it is cheap), and its bundle verifies over the payload bytes.
pub(super) fn keyless_signature(
    payload: &[u8],
    annotations: &BTreeMap<String, String>,
    keyless: &Keyless,
    digest: &Digest,
) -> bool {
    simple_signing::payload_digest(payload) == Some(*digest)
        && keyless::cosign_signature(payload, annotations, keyless)
}
